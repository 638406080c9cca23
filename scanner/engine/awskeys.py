"""Offline facts about AWS access key IDs: the account they belong to, and canary accounts."""

from __future__ import annotations

import base64
import binascii
import functools

# Modern key IDs carry the account ID in bits 7..46 of the base32-decoded body; older ones
# (the fifth character in A-P, such as AKIAI… and AKIAJ…) do not.
_ACCOUNT_MASK = 0x7FFFFFFFFF80
_MODERN_FIFTH = frozenset("QRSTUVWXYZ234567")


def account_id_from_key_id(key_id: str) -> str | None:
    """The 12-digit AWS account ID a key ID encodes, or None when it carries none."""
    if len(key_id) != 20 or key_id[4] not in _MODERN_FIFTH:
        return None
    try:
        body = base64.b32decode(key_id[4:])
    except (binascii.Error, ValueError):
        return None
    account = (int.from_bytes(body[:6], "big") & _ACCOUNT_MASK) >> 7
    if account > 999_999_999_999:
        return None
    return f"{account:012d}"


def key_type(key_id: str) -> str:
    prefix = key_id[:4]
    return {
        "AKIA": "long-term IAM user key",
        "ASIA": "temporary (STS) key",
        "ABIA": "AWS STS service bearer token",
        "ACCA": "context-specific credential",
    }.get(prefix, "access key")


@functools.cache
def canary_accounts() -> frozenset[str]:
    """Account IDs known to host canary tokens: keys from them are tripwires, never sent to AWS."""
    import importlib.resources

    text = (importlib.resources.files("scanner") / "data" / "aws-canary-accounts.txt").read_text(encoding="utf-8")
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    )


def is_canary(account_id: str | None) -> bool:
    return account_id is not None and account_id in canary_accounts()
