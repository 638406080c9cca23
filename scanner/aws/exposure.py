"""Was a leaked key used after the leak? IAM's own record, read with the operator's credentials.

GetAccessKeyLastUsed is read *before* keysweep verifies the key: verification signs an STS
call with the key, which IAM may then record as its last use. ListAccessKeys on the owner
gives the key's creation date and status.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from scanner.aws.clients import client, error_code, error_message
from scanner.errors import bounded
from scanner.findings import Exposure, Finding, LastUsed


@dataclass(frozen=True)
class KeyActivity:
    user: str | None
    last_used: LastUsed | None
    error: str | None = None


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return str(value.astimezone(datetime.timezone.utc).isoformat(timespec="seconds"))
    return str(value)


def _parse(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=datetime.timezone.utc)


def last_used_of(iam: Any, key_id: str) -> KeyActivity:
    import botocore.exceptions

    try:
        response = iam.get_access_key_last_used(AccessKeyId=key_id)
    except botocore.exceptions.ClientError as exc:
        return KeyActivity(None, None, f"GetAccessKeyLastUsed: {error_code(exc)}: {error_message(exc)}")
    except Exception as exc:  # noqa: BLE001 - botocore raises KeyError, ResponseParserError… on an answer not IAM's
        return KeyActivity(None, None, f"GetAccessKeyLastUsed: {type(exc).__name__}: {bounded(str(exc), 200)}")
    used = response.get("AccessKeyLastUsed") or {}
    date = _iso(used.get("LastUsedDate"))
    # IAM answers "N/A" for service and region of a key never used.
    service = used.get("ServiceName")
    region = used.get("Region")
    last = LastUsed(date, None if service in (None, "N/A") else str(service), None if region in (None, "N/A") else str(region))
    return KeyActivity(response.get("UserName"), last)


def snapshot(key_ids: Iterable[str], profile: str | None, region: str | None) -> dict[str, KeyActivity]:
    """Last use of each long-term key ID, before anything keysweep does could count as one."""
    wanted = sorted({k for k in key_ids if k.startswith("AKIA")})
    if not wanted:
        return {}
    from scanner.aws.clients import operator_session
    from scanner.errors import UsageError

    try:
        iam = client(operator_session(profile, region), "iam")
    except UsageError as exc:
        return {k: KeyActivity(None, None, str(exc)) for k in wanted}
    return {k: last_used_of(iam, k) for k in wanted}


def used_after(last_used: LastUsed | None, leaked_at: str | None) -> bool | None:
    if last_used is None:
        return None
    if last_used.date is None:
        return False  # never used at all
    used, leaked = _parse(last_used.date), _parse(leaked_at)
    if used is None or leaked is None:
        return None
    if leaked > datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1):
        # An author date is whatever the committer's clock or a rebase says: a leak "in the
        # future" is no date to clear a key by.
        return None
    return used > leaked


def _metadata(iam: Any, user: str, key_id: str) -> tuple[str | None, str | None, str | None]:
    import botocore.exceptions

    try:
        for page in iam.get_paginator("list_access_keys").paginate(UserName=user):
            for key in page.get("AccessKeyMetadata", []):
                if key.get("AccessKeyId") == key_id:
                    return _iso(key.get("CreateDate")), str(key.get("Status")), None
    except botocore.exceptions.ClientError as exc:
        return None, None, f"ListAccessKeys: {error_code(exc)}: {error_message(exc)}"
    except Exception as exc:  # noqa: BLE001 - an answer not IAM's: this key's error, not the scan's end
        return None, None, f"ListAccessKeys: {type(exc).__name__}: {bounded(str(exc), 200)}"
    return None, None, "ListAccessKeys: the key is not among its user's keys"


def add_key_activity(findings: Sequence[Finding], activity: dict[str, KeyActivity], profile: str | None,
                     region: str | None) -> list[Finding]:
    """Valid keys (and their secrets) get creation date, status, last use and used_after_leak."""
    from scanner.aws.clients import operator_session
    from scanner.aws.verify import pairs_in

    iam: Any = None
    updates: dict[str, Exposure] = {}
    for key, secret, token in pairs_in(findings).values():
        verification = key.verification
        if verification is None or verification.status != "valid":
            continue
        base = key.exposure or Exposure(key.commit.date if key.commit else None,
                                        key.commit.author if key.commit else None, None)
        key_id = key.secret.reveal()
        known = activity.get(key_id)
        if known is None:
            reason = "temporary keys have no IAM record" if key_id.startswith("ASIA") else "not looked up"
            exposure = replace(base, errors=(*base.errors, f"last use unknown: {reason}"))
        else:
            errors = list(base.errors)
            if known.error:
                errors.append(known.error)
            created = status = None
            user = known.user or verification.user
            if user and user not in ("root", "<root_account>") and known.error is None:
                if iam is None:
                    iam = client(operator_session(profile, region), "iam")
                created, status, problem = _metadata(iam, user, key_id)
                if problem:
                    errors.append(problem)
            exposure = replace(base, key_created=created, key_status=status, last_used=known.last_used,
                               used_after_leak=used_after(known.last_used, base.leaked_at), errors=tuple(errors))
        for member in (key, secret, token):
            if member is not None:
                # Each member keeps its own leak place (its commit); the key's IAM record is shared.
                own = member.exposure or base
                updates[member.fingerprint] = replace(
                    exposure, leaked_at=own.leaked_at, leaked_by=own.leaked_by, pushed=own.pushed,
                    used_after_leak=used_after(exposure.last_used, own.leaked_at)
                    if exposure.last_used is not None else exposure.used_after_leak,
                )
    return [replace(f, exposure=updates[f.fingerprint]) if f.fingerprint in updates else f for f in findings]
