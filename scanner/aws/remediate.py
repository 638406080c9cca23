"""Remediation of leaked access keys through IAM: a plan first, changes only with --apply.

Signed with the operator's own credentials (the standard boto3 chain, or --profile), never
the leaked key unless asked. Each key is looked up in the operator's account
(GetAccessKeyLastUsed gives its user, even for an inactive key), then deactivated, and for
``delete`` deleted after deactivation. Every step and its outcome goes to the audit log.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from scanner.aws.audit import AuditLog
from scanner.aws.clients import KeyPair, client, error_code, error_message, operator_session, session_for_pair
from scanner.engine.awskeys import account_id_from_key_id
from scanner.errors import AwsError, bounded
from scanner.findings import RemediationOutcome as Outcome

RemediationMode = Literal["deactivate", "delete"]
Action = Literal["deactivate", "delete", "quarantine"]
QUARANTINE_POLICY = "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV3"

ROOT_ADVICE = (
    "it is the root user's key: IAM cannot manage root keys. The account owner must sign in as the root "
    "user, open Security credentials, deactivate and delete the key, and turn on MFA for root"
)
TEMPORARY_ADVICE = (
    "it is a temporary (STS) key: it cannot be deactivated, it expires by itself. To cut it off now, "
    "revoke the role's active sessions (IAM console: Roles > the role > Revoke active sessions, which "
    "attaches a policy denying tokens issued before now), then rotate whatever credentials issued it"
)
EXPIRED_OPERATOR = "the operator's AWS credentials have expired: refresh them (for example `aws sso login`) and run again"


@dataclass(frozen=True)
class Target:
    """A key to remediate, with what the scan knows of it."""

    key_id: str
    account_hint: str | None = None  # decoded offline, or from verification
    live: bool = False  # verification said valid
    arn: str | None = None
    pair: KeyPair | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Operator:
    session: Any
    account: str
    arn: str
    own_key_id: str | None
    leaked: bool  # signed with the leaked key itself (--use-leaked-key)


@dataclass(frozen=True)
class Plan:
    key_id: str
    account: str | None
    user: str | None
    status: str | None  # Active / Inactive, as IAM reports it
    actions: tuple[Action, ...]
    refusal: str | None = None
    note: str = ""
    # The key could not be looked up (AccessDenied, throttling, endpoint down): it may well be
    # live and untouched, so this is a failure of the run (exit 3), not a refusal.
    failure: str | None = None


def connect(profile: str | None, region: str | None, leaked: KeyPair | None = None) -> Operator:
    """Who the operator is (STS GetCallerIdentity with the operator's credentials)."""
    import botocore.exceptions

    session = session_for_pair(leaked, region) if leaked is not None else operator_session(profile, region)
    try:
        identity = client(session, "sts").get_caller_identity()
    except botocore.exceptions.NoCredentialsError:
        raise AwsError("no AWS credentials found for the operator: configure a profile (--profile) or "
                       "the AWS_* environment variables; the leaked key is never used unless --use-leaked-key") from None
    except botocore.exceptions.ClientError as exc:
        code = error_code(exc)
        if code in ("ExpiredToken", "ExpiredTokenException", "RequestExpired"):
            raise AwsError(EXPIRED_OPERATOR) from None
        raise AwsError(f"cannot identify the operator ({code}: {error_message(exc)})") from None
    except (botocore.exceptions.BotoCoreError, OSError) as exc:
        raise AwsError(f"cannot reach AWS STS: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - an answer that is not STS's (ResponseParserError, KeyError)
        raise AwsError(f"cannot identify the operator: STS's answer could not be read ({type(exc).__name__}: "
                       f"{bounded(str(exc), 120)})") from None
    if not identity.get("Account") or not str(identity.get("Arn") or "").startswith("arn:"):
        raise AwsError("cannot identify the operator: STS answered without an account or ARN")
    credentials = session.get_credentials()
    own = credentials.access_key if credentials is not None else None
    return Operator(session, str(identity["Account"]), str(identity["Arn"]), own, leaked is not None)


def plan(targets: Sequence[Target], mode: RemediationMode, operator: Operator, *, quarantine: bool = False,
         allow_accounts: frozenset[str] = frozenset()) -> list[Plan]:
    iam = client(operator.session, "iam")
    return [_plan_one(t, mode, operator, iam, quarantine, allow_accounts) for t in targets]


def _plan_one(target: Target, mode: RemediationMode, operator: Operator, iam: Any, quarantine: bool,
              allow_accounts: frozenset[str]) -> Plan:
    import botocore.exceptions

    key_id = target.key_id
    account = target.account_hint or account_id_from_key_id(key_id)

    def refuse(why: str, user: str | None = None) -> Plan:
        return Plan(key_id, account, user, None, (), refusal=why)

    if key_id.startswith("ASIA"):
        return refuse(TEMPORARY_ADVICE)
    if allow_accounts and account not in allow_accounts:
        return refuse(f"account {account or 'unknown'} is not in --allow-account")
    if account is not None and account != operator.account:
        return refuse(f"the key belongs to account {account}, but the operator is signed in to account "
                      f"{operator.account}; run again with credentials of account {account} (--profile)")
    if key_id == operator.own_key_id and not operator.leaked:
        return refuse("it is the key keysweep is signed with; use other credentials to remediate it")
    if target.arn is not None and target.arn.endswith(":root"):
        return refuse(ROOT_ADVICE, "root")

    def failed(call: str, exc: Exception, user: str | None = None) -> Plan:
        code = error_code(exc) if isinstance(exc, botocore.exceptions.ClientError) else type(exc).__name__
        if code in ("ExpiredToken", "ExpiredTokenException"):
            raise AwsError(EXPIRED_OPERATOR) from None
        hint = " (the operator lacks the IAM permission for this)" if code in ("AccessDenied", "AccessDeniedException") else ""
        return Plan(key_id, account, user, None, (), failure=f"cannot look the key up: {call}: {code}: "
                    f"{error_message(exc)}{hint}; nothing was changed")

    try:
        user = iam.get_access_key_last_used(AccessKeyId=key_id).get("UserName")
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return Plan(key_id, account, None, None, (), note=f"not found in account {operator.account}: "
                        "already deleted, or never in this account")
        return failed("GetAccessKeyLastUsed", exc)
    except Exception as exc:  # noqa: BLE001 - endpoint down, or an answer botocore cannot read: a read, so failed
        return failed("GetAccessKeyLastUsed", exc)
    if not user or user == "root" or user == "<root_account>":
        return refuse(ROOT_ADVICE, "root")
    try:
        status = _status(iam, user, key_id)
    except Exception as exc:  # noqa: BLE001 - as above
        return failed("ListAccessKeys", exc, user)
    if status is None:
        return Plan(key_id, account or operator.account, user, None, (), note="not found: already deleted")
    actions: list[Action] = []
    if mode == "deactivate":
        if status == "Active":
            actions.append("deactivate")
    else:
        if status == "Active" and not (operator.leaked and key_id == operator.own_key_id):
            actions.append("deactivate")  # deactivate first: a delete that then fails leaves the key off
        actions.append("delete")
    if quarantine:
        actions.append("quarantine")
    note = "already inactive" if status == "Inactive" and mode == "deactivate" else ""
    return Plan(key_id, account or operator.account, user, status, tuple(actions), note=note)


def _status(iam: Any, user: str, key_id: str) -> str | None:
    paginator = iam.get_paginator("list_access_keys")
    for page in paginator.paginate(UserName=user):
        for key in page.get("AccessKeyMetadata", []):
            if key.get("AccessKeyId") == key_id:
                return str(key.get("Status"))
    return None


def apply(plans: Sequence[Plan], operator: Operator, audit: AuditLog, *, dry_run: bool) -> list[Outcome]:
    """Carry out (or with dry_run, only record) each plan; one key's failure does not stop the others."""

    def call(iam: Any, item: Plan, action: Action) -> None:
        if action == "deactivate":
            iam.update_access_key(UserName=item.user, AccessKeyId=item.key_id, Status="Inactive")
        elif action == "delete":
            iam.delete_access_key(UserName=item.user, AccessKeyId=item.key_id)
        else:
            iam.attach_user_policy(UserName=item.user, PolicyArn=QUARANTINE_POLICY)

    return carry_out(plans, operator, audit, call, dry_run=dry_run)


IamCall = Callable[[Any, Plan, Action], None]


def carry_out(plans: Sequence[Plan], operator: Operator, audit: AuditLog, call: IamCall, *, dry_run: bool,
              audit_fields: dict[str, str] | None = None, may_have_landed: str = "") -> list[Outcome]:
    """The write-ahead protocol every remediation follows, whatever IAM call ``call`` makes.

    The audit log is probed before any change; each mutating call has a synced ``intent`` line
    before it and a ``result`` line after; an answer lost in flight is ``uncertain`` (never
    ``failed``, which would say the credential is untouched), a signal mid-call ``interrupted``.
    One plan's failure does not stop the others; a failed action skips the plan's next one.
    """
    import botocore.exceptions

    may_have_landed = may_have_landed or MAY_HAVE_LANDED
    fields: dict[str, Any] = dict(audit_fields or {})
    iam = client(operator.session, "iam")
    outcomes: list[Outcome] = []

    if not dry_run:
        audit.check_writable()  # nothing is changed without its record

    def record(outcome: Outcome) -> None:
        outcomes.append(outcome)
        audit.append(phase="result", key_id=outcome.key_id, **fields, account=outcome.account, user=outcome.user,
                     action=outcome.action, result=outcome.result, detail=outcome.detail, operator=operator.arn,
                     dry_run=outcome.dry_run)

    for item in plans:
        base = (item.key_id, item.account, item.user)
        if item.refusal is not None:
            record(Outcome(*base, "none", "refused", item.refusal, dry_run))
            continue
        if item.failure is not None:
            record(Outcome(*base, "none", "failed", item.failure, dry_run))
            continue
        if not item.actions:
            result: Literal["already-inactive", "not-found"] = "already-inactive" if item.status == "Inactive" else "not-found"
            record(Outcome(*base, "none", result, item.note, dry_run))
            continue
        for action in item.actions:
            if dry_run:
                record(Outcome(*base, action, "planned", "", dry_run))
                continue
            # Written (and synced) before the call: if the run is killed while the call is in
            # flight, this line says which change may have landed.
            audit.append(phase="intent", sync=True, key_id=item.key_id, **fields, account=item.account, user=item.user,
                         action=action, operator=operator.arn, dry_run=False)
            try:
                call(iam, item, action)
            except botocore.exceptions.ClientError as exc:
                code = error_code(exc)
                if code == "NoSuchEntity" and action in ("deactivate", "delete"):
                    record(Outcome(*base, action, "already-deleted", error_message(exc), dry_run))
                    break
                if code in ("ExpiredToken", "ExpiredTokenException"):
                    record(Outcome(*base, action, "failed", EXPIRED_OPERATOR, dry_run))
                    break
                if _server_side(exc):
                    # AWS failed while handling it: the change may or may not have been made.
                    record(Outcome(*base, action, "uncertain", f"{code}: {error_message(exc)}; {may_have_landed}",
                                   dry_run))
                    break
                hint = " (the operator lacks the IAM permission for this)" if code in ("AccessDenied", "AccessDeniedException") else ""
                record(Outcome(*base, action, "failed", f"{code}: {error_message(exc)}{hint}", dry_run))
                break
            except (botocore.exceptions.BotoCoreError, OSError) as exc:
                if _never_sent(exc):
                    record(Outcome(*base, action, "failed", f"{type(exc).__name__}: {exc}", dry_run))
                else:
                    # The request went out and its answer was lost (a read timeout, a dropped
                    # connection): "failed" would tell the operator the key is untouched.
                    record(Outcome(*base, action, "uncertain", f"{type(exc).__name__}: {exc}; {may_have_landed}",
                                   dry_run))
                break
            except Exception as exc:  # noqa: BLE001 - an answer botocore cannot read (not IAM's): sent, so maybe done
                record(Outcome(*base, action, "uncertain", f"{type(exc).__name__}: {bounded(str(exc), 200)}; "
                               f"{may_have_landed}", dry_run))
                break
            except KeyboardInterrupt:
                # Ctrl-C, SIGTERM or SIGHUP while the call was in flight: AWS may have done it.
                record(Outcome(*base, action, "interrupted", f"the call was in flight: {may_have_landed}", dry_run))
                raise
            record(Outcome(*base, action, "ok", "", dry_run))
    return outcomes


MAY_HAVE_LANDED = "it may have landed; check the key's status in IAM"


def _never_sent(exc: BaseException) -> bool:
    """The request certainly did not reach AWS: no connection was made, or it was refused
    before it was sent. Anything else (read timeout, connection closed mid-answer) may have
    landed."""
    import botocore.exceptions

    if isinstance(exc, botocore.exceptions.HTTPClientError):
        return False
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return True  # could not connect, no credentials, bad parameters: all before sending
    return isinstance(exc, ConnectionRefusedError)


def _server_side(exc: BaseException) -> bool:
    response = getattr(exc, "response", None)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") if isinstance(response, dict) else None
    return isinstance(status, int) and status >= 500


def describe(item: Plan) -> str:
    """One line of the plan, for people."""
    who = f"user {item.user}" if item.user else "no user"
    where = f"account {item.account}" if item.account else "account unknown"
    if item.refusal is not None:
        return f"{item.key_id}: refused: {item.refusal}"
    if item.failure is not None:
        return f"{item.key_id}: failed: {item.failure}"
    if not item.actions:
        return f"{item.key_id} ({who}, {where}): nothing to do: {item.note or 'no action needed'}"
    steps = " then ".join(item.actions)
    status = f", now {item.status}" if item.status else ""
    return f"{item.key_id} ({who}, {where}{status}): {steps}"
