"""Findings: what was found, where it came from, and its stable identity."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from scanner.engine.awskeys import BedrockKey, account_id_from_key_id, bedrock_key_facts, is_canary
from scanner.engine.decode import DecodingKind
from scanner.engine.detect import Match
from scanner.secret import Secret

SourceKind = Literal["file", "git-blob", "commit-message", "tag-message", "staged", "unreachable-blob"]
VerificationStatus = Literal["valid", "invalid", "unknown", "canary", "skipped"]
Severity = Literal["critical", "high", "medium", "low"]
AccessFlag = Literal["admin", "iam-write", "data-read"]


@dataclass(frozen=True, slots=True)
class CommitInfo:
    """The commit a finding came from, as reports show it."""

    sha: str
    author: str
    email: str
    date: str  # ISO 8601, the author date
    summary: str


@dataclass(frozen=True, slots=True)
class Occurrences:
    """Where else the same secret stands in history, beyond the reported place."""

    commits: int
    paths: int


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
class Finding:
    """One secret in one place, with what is known about it."""

    rule_id: str
    secret: Secret
    path: str | None
    line: int
    column: int
    source: SourceKind
    fingerprint: str
    commit: CommitInfo | None = None
    blob: str | None = None
    account_id: str | None = None
    canary: bool = False
    decoded: DecodingKind | None = None
    pair: str | None = None  # fingerprint of the key ID or secret this one belongs with
    session_token: str | None = None  # on a key ID: fingerprint of its session token
    occurrences: Occurrences | None = None
    reachable: bool = True
    verification: Verification | None = None
    repository: str | None = None  # keysweep audit: the repository (URL or path) it was found in
    severity: Severity | None = None
    exposure: Exposure | None = None
    access: Access | None = None
    bedrock: BedrockKey | None = None  # what a Bedrock API key carries, decoded offline
    # Where the value still lives (repository scans only; None elsewhere): in HEAD's tree or
    # the work tree today, and the refs whose history reaches the introducing commit
    # (the first MAX_REFS in order: HEAD's branch, branches, remotes, tags, stash, others;
    # refs_total counts them all). () with in_head False: no ref reaches it.
    in_head: bool | None = None
    refs: tuple[str, ...] | None = None
    refs_total: int = 0


def fingerprint(rule_id: str, secret: Secret, place: str) -> str:
    """Stable across runs, line moves and commits: the rule, the secret (hashed) and the place.

    ``place`` is the path for a file or blob, or the kind of source (commit-message) for text
    that has no path.
    """
    import hashlib

    return hashlib.sha256(f"{rule_id}\0{secret.digest}\0{place}".encode()).hexdigest()[:32]


def findings_from_matches(
    matches: Sequence[Match],
    *,
    path: str | None,
    source: SourceKind,
    commit: CommitInfo | None = None,
    blob: str | None = None,
    reachable: bool = True,
) -> list[Finding]:
    place = path if path is not None else source
    prints = [fingerprint(m.rule_id, m.secret, place) for m in matches]
    findings = []
    for match, print_ in zip(matches, prints, strict=True):
        account = account_id_from_key_id(match.secret.reveal()) if match.secret.kind == "key-id" else None
        bedrock = bedrock_key_facts(match.secret.reveal()) if match.secret.kind == "bearer-token" else None
        if bedrock is not None:
            account = bedrock.account
        findings.append(
            Finding(
                rule_id=match.rule_id, secret=match.secret, path=path, line=match.line, column=match.column,
                source=source, fingerprint=print_, commit=commit, blob=blob, account_id=account,
                canary=is_canary(account), decoded=match.decoded,
                pair=prints[match.pair] if match.pair is not None else None,
                session_token=prints[match.session_token] if match.session_token is not None else None,
                reachable=reachable, bedrock=bedrock,
            )
        )
    return _inherit_account(findings)


def _inherit_account(findings: list[Finding]) -> list[Finding]:
    """A secret or token carries the account and canary flag of the key ID it is paired with."""
    by_print = {f.fingerprint: f for f in findings}
    result = []
    for finding in findings:
        partner = by_print.get(finding.pair) if finding.pair else None
        if finding.secret.kind != "key-id" and partner is not None:
            finding = replace(finding, account_id=partner.account_id, canary=partner.canary)
        result.append(finding)
    return result


@dataclass(frozen=True, slots=True)
class Skipped:
    """Something not scanned, reported so that nothing is dropped silently."""

    path: str
    reason: str


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


@dataclass(frozen=True, slots=True)
class ScanReport:
    """Everything one scan produced, as the reporters render it."""

    findings: tuple[Finding, ...]
    skipped: tuple[Skipped, ...]
    warnings: tuple[str, ...]
    files_scanned: int
    blobs_scanned: int
    commits_scanned: int
    bytes_scanned: int
    duration_seconds: float
    target: str
    remediation: tuple[RemediationOutcome, ...] = ()
    # What could not be read (corrupt objects, a broken history walk, a rule that ran out of
    # time): the findings are real but the scan is incomplete, so it must not pass as clean.
    errors: tuple[str, ...] = ()
    head: str | None = None  # a repository scan: HEAD's branch, or "detached at <sha>"
