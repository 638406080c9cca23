"""Amazon Bedrock API keys: verify (read-only) and remediate through IAM.

A long-term Bedrock API key is an IAM service-specific credential (ServiceName
``bedrock.amazonaws.com``). IAM never returns the key's secret again, so the credential is
found by the public name the key carries (``BedrockAPIKey-<identifier>-at-<account>``), which
is matched against each credential's ServiceUserName and ServiceCredentialAlias from
ListServiceSpecificCredentials (AllUsers). Then, as for access keys: a plan first; with
--apply, UpdateServiceSpecificCredential Inactive, and for ``delete`` then
DeleteServiceSpecificCredential; every step in the audit log.

A short-term key is a pre-signed URL: nothing in IAM can switch it off on its own. The plan
says what to do instead (revoke the signing principal's sessions, or its access key).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from scanner.aws.audit import AuditLog
from scanner.aws.clients import client, error_code, error_message
from scanner.aws.remediate import (
    EXPIRED_OPERATOR, Action, Operator, Plan, RemediationMode, carry_out,
)
from scanner.engine.awskeys import BedrockKey
from scanner.errors import AwsError, bounded
from scanner.findings import RemediationOutcome as Outcome

SERVICE_NAME = "bedrock.amazonaws.com"
MAX_PAGES = 200  # ListServiceSpecificCredentials pages (100 items each at most): bounded
SHORT_TERM_ADVICE = (
    "it is a short-term Bedrock API key (a pre-signed URL, valid until {expires}): IAM cannot "
    "deactivate it by itself. It acts as the principal that signed it ({signer}): revoke that "
    "principal's sessions (for a role: IAM console > Roles > the role > Revoke active sessions, which "
    "denies tokens issued before now), or, if an IAM user's access key signed it, revoke that key "
    "(keysweep revoke KEY_ID)"
)


@dataclass(frozen=True)
class Credential:
    """A Bedrock service-specific credential to remediate: by its key's facts, or by its ID."""

    label: str  # what the plan calls it: the credential ID, or the key's public name
    facts: BedrockKey | None = None
    credential_id: str | None = None


def _credentials(iam: Any) -> Iterator[dict[str, Any]]:
    marker: str | None = None
    for _ in range(MAX_PAGES):
        kwargs: dict[str, Any] = {"ServiceName": SERVICE_NAME, "AllUsers": True}
        if marker:
            kwargs["Marker"] = marker
        page = iam.list_service_specific_credentials(**kwargs)
        yield from page.get("ServiceSpecificCredentials", [])
        marker = page.get("Marker")
        if not page.get("IsTruncated") or not marker:
            return


def _matches(item: dict[str, Any], target: Credential) -> bool:
    if target.credential_id is not None:
        return bool(item.get("ServiceSpecificCredentialId") == target.credential_id)
    name = target.facts.name if target.facts else None
    return name is not None and name in (item.get("ServiceUserName"), item.get("ServiceCredentialAlias"))


def plan(targets: Sequence[Credential], mode: RemediationMode, operator: Operator, *,
         allow_accounts: frozenset[str] = frozenset()) -> list[Plan]:
    import botocore.exceptions

    iam = client(operator.session, "iam")
    listed: list[dict[str, Any]] | None = None
    plans = []
    for target in targets:
        facts = target.facts
        account = facts.account if facts else None

        def refuse(why: str, label: str = target.label, account: str | None = account) -> Plan:
            return Plan(label, account, None, None, (), refusal=why)

        if facts is not None and facts.term == "short-term":
            signer = facts.signer_key_id[:8] + "…" if facts.signer_key_id else "unknown"
            plans.append(refuse(SHORT_TERM_ADVICE.format(expires=facts.expires_at or "unknown", signer=signer)))
            continue
        if allow_accounts and account not in allow_accounts:
            plans.append(refuse(f"account {account or 'unknown'} is not in --allow-account"))
            continue
        if account is not None and account != operator.account:
            plans.append(refuse(f"the key belongs to account {account}, but the operator is signed in to account "
                                f"{operator.account}; run again with credentials of account {account} (--profile)"))
            continue
        if listed is None:
            try:
                listed = list(_credentials(iam))
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, OSError) as exc:
                code = error_code(exc)
                if code in ("ExpiredToken", "ExpiredTokenException"):
                    raise AwsError(EXPIRED_OPERATOR) from None
                why = f"cannot list Bedrock API keys ({code}: {error_message(exc)})"
                plans += [refuse(why, t.label, t.facts.account if t.facts else None) for t in targets[len(plans):]]
                return plans
        found = [item for item in listed if _matches(item, target)]
        if not found:
            plans.append(Plan(target.label, account or operator.account, None, None, (),
                              note=f"no Bedrock API key by that name in account {operator.account}: "
                                   "already deleted, or never in this account"))
            continue
        if len(found) > 1:
            plans.append(refuse(f"{len(found)} Bedrock API keys match {target.label}: revoke each by its "
                                "credential ID (keysweep revoke ID)"))
            continue
        item = found[0]
        status = str(item.get("Status"))
        actions: list[Action] = []
        if status == "Active":
            actions.append("deactivate")  # first: a delete that then fails leaves the key off
        if mode == "delete":
            actions.append("delete")
        plans.append(Plan(str(item.get("ServiceSpecificCredentialId")), operator.account, str(item.get("UserName")),
                          status, tuple(actions), note="already inactive" if not actions else ""))
    return plans


def apply(plans: Sequence[Plan], operator: Operator, audit: AuditLog, *, dry_run: bool) -> list[Outcome]:
    """Carry out (or with dry_run, only record) each plan; one failure does not stop the others.
    The same write-ahead protocol as access keys (remediate.carry_out)."""

    def call(iam: Any, item: Plan, action: Action) -> None:
        if action == "deactivate":
            iam.update_service_specific_credential(UserName=item.user, ServiceSpecificCredentialId=item.key_id,
                                                   Status="Inactive")
        else:
            iam.delete_service_specific_credential(UserName=item.user, ServiceSpecificCredentialId=item.key_id)

    return carry_out(plans, operator, audit, call, dry_run=dry_run, audit_fields={"credential": "bedrock-api-key"},
                     may_have_landed="it may have landed; check the credential's status in IAM")


def _endpoint(region: str) -> str:
    import os

    # The variables botocore honours, so a test endpoint (or a VPC endpoint) applies here too.
    base = os.environ.get("AWS_ENDPOINT_URL_BEDROCK") or os.environ.get("AWS_ENDPOINT_URL")
    return (base.rstrip("/") if base else f"https://bedrock.{region}.amazonaws.com") + "/foundation-models"


def verify_key(value: str, facts: BedrockKey, region: str | None = None) -> Any:
    """Is a Bedrock API key live? A read-only GET ListFoundationModels with the key as bearer token.

    200: valid. 401, or 403 naming a bad or expired token: invalid. A 403 AccessDenied means
    the token was accepted but may not list models: live, so valid (with that reason).
    """
    import datetime
    import urllib.error
    import urllib.request

    from scanner.findings import Verification

    if facts.expires_at is not None:
        expires = datetime.datetime.fromisoformat(facts.expires_at)
        if expires < datetime.datetime.now(datetime.timezone.utc):
            return Verification("invalid", reason=f"expired at {facts.expires_at} (not sent to AWS)",
                                account=facts.account)
    from scanner.engine.awskeys import AWS_REGION

    # facts.region came from the key, written by whoever wrote the repository: it picks a host
    # only when it is an AWS region (the decoder checks too).
    found = facts.region if facts.region and AWS_REGION.fullmatch(facts.region) else None
    request = urllib.request.Request(_endpoint(region or found or "us-east-1"),
                                     headers={"Authorization": f"Bearer {value}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 - https or a configured endpoint
            response.read(1 << 16)
        return Verification("valid", reason="ListFoundationModels accepted the key", account=facts.account)
    except urllib.error.HTTPError as exc:
        body = exc.read(1 << 16).decode("utf-8", "replace")
        try:
            error = json.loads(body)
        except ValueError:
            error = {}
        kind = str(exc.headers.get("x-amzn-ErrorType", "") or (error.get("__type", "") if isinstance(error, dict) else ""))
        message = str(error.get("message") or error.get("Message") or body) if isinstance(error, dict) else body
        # An answer can quote the request (the Authorization header): the reason is printed in
        # every report, so the key goes before the message is cut (a cut must not leave half of it).
        message = message.replace(value, "********")[:200]
        reason = f"HTTP {exc.code} {kind.split(':')[0]}: {message}".strip()
        if exc.code == 401 or any(w in (kind + message).lower() for w in ("invalid", "expired", "unrecognized")):
            return Verification("invalid", reason=reason, account=facts.account)
        if exc.code == 403 and "accessdenied" in kind.lower():
            return Verification("valid", reason=f"authenticated, but {reason}", account=facts.account)
        return Verification("unknown", reason=reason, account=facts.account)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return Verification("unknown", reason=f"{type(exc).__name__}: {exc}", account=facts.account)


def verify_findings(findings: Sequence[Any], *, allow_accounts: frozenset[str] = frozenset(),
                    include_canary: bool = False, region: str | None = None) -> list[Any]:
    """Each Bedrock API key finding with a verification (canary and --allow-account as for key pairs)."""
    from dataclasses import replace

    from scanner.findings import Verification

    result = []
    for finding in findings:
        facts = finding.bedrock
        if facts is None or finding.verification is not None:
            result.append(finding)
            continue
        if finding.canary and not include_canary:
            outcome = Verification("canary", reason=f"account {facts.account} hosts canary tokens: not sent to AWS")
        elif allow_accounts and facts.account not in allow_accounts:
            outcome = Verification("skipped", reason=f"account {facts.account or 'unknown'} is not in --allow-account")
        else:
            outcome = verify_key(finding.secret.reveal(), facts, region)
        result.append(replace(finding, verification=outcome))
    return result


def add_owner(findings: Sequence[Any], profile: str | None, region: str | None) -> list[Any]:
    """Valid long-term Bedrock keys: owner, status and creation date from ListServiceSpecificCredentials,
    and the owner's groups and policies. No flags: the key can call Bedrock only, whatever else the
    user may do (that is what a service-specific credential is)."""
    from dataclasses import replace

    import botocore.exceptions

    from scanner.aws.access import analyse
    from scanner.aws.clients import operator_session
    from scanner.errors import UsageError
    from scanner.findings import Access, Exposure

    live = [f for f in findings if f.bedrock is not None and f.bedrock.term == "long-term"
            and f.verification is not None and f.verification.status == "valid"]
    if not live:
        return list(findings)
    errors: list[str] = []
    listed: list[dict[str, Any]] = []
    iam: Any = None
    try:
        iam = client(operator_session(profile, region), "iam")
        listed = list(_credentials(iam))
    except UsageError as exc:
        errors.append(str(exc))
    except botocore.exceptions.ClientError as exc:
        errors.append(f"ListServiceSpecificCredentials: {error_code(exc)}: {error_message(exc)}")
    except (botocore.exceptions.BotoCoreError, OSError) as exc:
        errors.append(f"ListServiceSpecificCredentials: {type(exc).__name__}: {exc}")
    updates: dict[str, Any] = {}
    for finding in live:
        facts = finding.bedrock
        found = [item for item in listed if _matches(item, Credential("", facts=facts))]
        base = finding.exposure or Exposure(finding.commit.date if finding.commit else None,
                                            finding.commit.author if finding.commit else None, None)
        if len(found) != 1:
            why = errors or [f"{len(found)} Bedrock API keys in IAM match this key's name"]
            updates[finding.fingerprint] = replace(finding, exposure=replace(base, errors=(*base.errors, *why)),
                                                   access=Access(None, False, errors=tuple(why)))
            continue
        item = found[0]
        user = str(item.get("UserName"))
        arn = f"arn:aws:iam::{facts.account}:user/{user}"
        owner = analyse(iam, arn)
        created: Any = item.get("CreateDate")
        exposure = replace(base, key_status=str(item.get("Status")),
                           key_created=created.isoformat() if created is not None and hasattr(created, "isoformat")
                           else None)
        access = replace(owner, flags=())
        updates[finding.fingerprint] = replace(finding, exposure=exposure, access=access)
    return [updates.get(f.fingerprint, f) for f in findings]
