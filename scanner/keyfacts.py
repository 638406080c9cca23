"""What is known of a found key beyond where it is: whether it is live (STS), how far the
leak went, what its principal may do (IAM), and what remediation did.

Kept apart from scanner.findings so that a scan that verifies nothing (the pre-commit hook)
does not build these classes (each dataclass costs its import ~1 ms). scanner.findings still
exports every name here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from scanner.findings import AccessFlag, VerificationStatus


@dataclass(frozen=True, slots=True)
class Verification:
    """What STS said of a key pair (or why it was not asked)."""

    status: VerificationStatus
    reason: str = ""
    arn: str | None = None
    account: str | None = None
    user: str | None = None


@dataclass(frozen=True, slots=True)
class LastUsed:
    """GetAccessKeyLastUsed: when and where the key last signed a request (None: never)."""

    date: str | None
    service: str | None
    region: str | None


@dataclass(frozen=True, slots=True)
class Exposure:
    """How far a leak went: when, whether it left the machine, whether the key was used since."""

    leaked_at: str | None  # the introducing commit's author date (ISO 8601)
    leaked_by: str | None  # its author
    pushed: bool | None  # None: unknown (no repository, or no commit to look for)
    key_created: str | None = None
    key_status: str | None = None  # Active / Inactive, as IAM reports it
    last_used: LastUsed | None = None
    used_after_leak: bool | None = None  # None: unknown
    errors: tuple[str, ...] = ()
    head: str | None = None  # a repository scan: HEAD's branch, or "detached at <sha>"


@dataclass(frozen=True, slots=True)
class PolicyRef:
    """A policy that grants a principal its permissions."""

    name: str
    kind: Literal["managed", "inline"]
    attached_to: str  # "user", "role" or "group:<name>"
    arn: str | None = None


@dataclass(frozen=True, slots=True)
class Access:
    """What a live key's principal may do, read from IAM with the operator's credentials."""

    principal: str | None  # the caller ARN
    root: bool
    groups: tuple[str, ...] = ()
    policies: tuple[PolicyRef, ...] = ()
    flags: tuple[AccessFlag, ...] = ()
    errors: tuple[str, ...] = ()  # permission errors while reading: the picture may be incomplete


@dataclass(frozen=True, slots=True)
class RemediationOutcome:
    """One remediation step for one key, as carried out (or planned, in a dry run)."""

    key_id: str
    account: str | None
    user: str | None
    action: str  # deactivate, delete, quarantine, or none
    result: Literal["ok", "already-inactive", "already-deleted", "not-found", "refused", "failed", "planned",
                    "unconfirmed", "not-compromised", "skipped", "interrupted", "uncertain"]
    detail: str = ""
    dry_run: bool = True
