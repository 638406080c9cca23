"""Offline facts about AWS access key IDs: the account they belong to, and canary accounts."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import re

# Modern key IDs carry the account ID in bits 7..46 of the base32-decoded body; older ones
# (the fifth character in A-P, such as AKIAI… and AKIAJ…) do not.
_ACCOUNT_MASK = 0x7FFFFFFFFF80
_MODERN_FIFTH = frozenset("QRSTUVWXYZ234567")
_BASE32 = {char: value for value, char in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")}


def account_id_from_key_id(key_id: str) -> str | None:
    """The 12-digit AWS account ID a key ID encodes, or None when it carries none."""
    if len(key_id) != 20 or key_id[4] not in _MODERN_FIFTH:
        return None
    # The first 10 base32 characters are the body's first 50 bits (6 bytes and 2 bits): a
    # table look-up each, not base64.b32decode (a scan calls this for every key ID found).
    bits = 0
    for char in key_id[4:14]:
        value = _BASE32.get(char)
        if value is None:
            return None
        bits = bits << 5 | value
    if any(char not in _BASE32 for char in key_id[14:]):
        return None
    account = ((bits >> 2) & _ACCOUNT_MASK) >> 7
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


@dataclasses.dataclass(frozen=True, slots=True)
class BedrockKey:
    """What a Bedrock API key carries, decoded offline (no secret part is kept here).

    Long-term: ``ABSK`` + base64 of ``BedrockAPIKey-<identifier>-at-<account>:<secret>``; the
    part before the colon is the public name IAM lists for the credential.
    Short-term: ``bedrock-api-key-`` + base64 of a SigV4 pre-signed URL whose X-Amz-Credential
    names the access key that signed it.
    """

    term: str  # "long-term" or "short-term"
    account: str | None = None
    name: str | None = None  # long-term: BedrockAPIKey-<identifier>-at-<account>
    signer_key_id: str | None = None  # short-term: the access key ID that signed the URL
    region: str | None = None
    issued_at: str | None = None  # ISO 8601 (X-Amz-Date)
    expires_at: str | None = None  # issued_at + X-Amz-Expires


AWS_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+){1,3}-\d{1,2}")  # us-east-1, us-gov-west-1, ap-southeast-5
_LONG_TERM = re.compile(r"(BedrockAPIKey-[A-Za-z0-9_.+=,@\-]{1,200}-at-(\d{12})):.+", re.S)


def _b64(text: str) -> str | None:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


def bedrock_key_facts(value: str) -> BedrockKey | None:
    """The account, name or signer and expiry inside a Bedrock API key, or None if it is not one."""
    if value.startswith("ABSK"):
        decoded = _b64(value[4:])
        match = _LONG_TERM.fullmatch(decoded) if decoded else None
        if match is None:
            return None
        return BedrockKey("long-term", account=match.group(2), name=match.group(1))
    if value.startswith("bedrock-api-key-"):
        import datetime
        import urllib.parse

        decoded = _b64(value[len("bedrock-api-key-"):])
        if decoded is None or "?" not in decoded:
            return None
        query = dict(urllib.parse.parse_qsl(decoded.split("?", 1)[1]))
        parts = query.get("X-Amz-Credential", "").split("/")
        signer = parts[0] if parts and re.fullmatch(r"A[A-Z0-9]{3}[A-Z2-7]{16}", parts[0]) else None
        # The region names the host verification calls: only an AWS region's shape, never a host.
        region = parts[2] if len(parts) >= 3 and AWS_REGION.fullmatch(parts[2]) else None
        issued = expires = None
        try:
            start = datetime.datetime.strptime(query.get("X-Amz-Date", ""), "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc)
            issued = start.isoformat()
            seconds = int(query.get("X-Amz-Expires", ""))
            if 0 <= seconds <= 7 * 86400:
                expires = (start + datetime.timedelta(seconds=seconds)).isoformat()
        except (ValueError, OverflowError):  # hostile input: issued late in year 9999 overflows the expiry
            pass
        return BedrockKey("short-term", account=account_id_from_key_id(signer) if signer else None,
                          signer_key_id=signer, region=region, issued_at=issued, expires_at=expires)
    return None
