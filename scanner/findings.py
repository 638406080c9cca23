"""Findings: what was found, where it came from, and its stable identity."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from scanner.engine.awskeys import BedrockKey, account_id_from_key_id, bedrock_key_facts, is_canary
from scanner.engine.decode import DecodingKind
from scanner.engine.detect import Match
from scanner.secret import Secret

SourceKind = Literal["file", "git-blob", "commit-message", "tag-message", "staged", "unreachable-blob"]
VerificationStatus = Literal["valid", "invalid", "unknown", "canary", "skipped"]
Severity = Literal["critical", "high", "medium", "low"]
AccessFlag = Literal["admin", "iam-write", "data-read"]

# What AWS (and git, for the exposure) says of a found key lives in scanner.keyfacts: a scan
# that verifies nothing (the pre-commit hook) does not build those classes. Still importable
# from here, as they always were.
_KEY_FACTS = ("Access", "Exposure", "LastUsed", "PolicyRef", "RemediationOutcome", "Verification")

if TYPE_CHECKING:
    from scanner.keyfacts import Access as Access
    from scanner.keyfacts import Exposure as Exposure
    from scanner.keyfacts import LastUsed as LastUsed
    from scanner.keyfacts import PolicyRef as PolicyRef
    from scanner.keyfacts import RemediationOutcome as RemediationOutcome
    from scanner.keyfacts import Verification as Verification


def __getattr__(name: str) -> Any:
    if name in _KEY_FACTS:
        from scanner import keyfacts

        return getattr(keyfacts, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


_FINDING_FIELDS: tuple[str, ...] = tuple(Finding.__dataclass_fields__)
_FINDING_VALUES = operator.attrgetter(*_FINDING_FIELDS)
_FINDING_INDEX = {name: index for index, name in enumerate(_FINDING_FIELDS)}


def evolve(finding: Finding, **changes: Any) -> Finding:
    """``dataclasses.replace`` for a Finding, at half its cost (~5 µs against ~10 µs a call):
    every stage of a scan (exposure, severity, redaction) makes a new finding of each, and
    a hostile file can hold 50,000 of them per MiB. An unknown field is a TypeError, as there."""
    values = list(_FINDING_VALUES(finding))
    for name, value in changes.items():
        index = _FINDING_INDEX.get(name)
        if index is None:
            raise TypeError(f"Finding has no field {name!r}")
        values[index] = value
    return Finding(*values)


def fingerprint(rule_id: str, secret: Secret, place: str) -> str:
    """Stable across runs, line moves and commits: the rule, the secret (hashed) and the place.

    ``place`` is the path for a file or blob, or the kind of source (commit-message) for text
    that has no path.
    """
    import hashlib

    # surrogateescape: a name that is not UTF-8 (from the disk or the command line) still hashes.
    return hashlib.sha256(f"{rule_id}\0{secret.digest}\0{place}".encode("utf-8", "surrogateescape")).hexdigest()[:32]


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
            finding = evolve(finding, account_id=partner.account_id, canary=partner.canary)
        result.append(finding)
    return result


@dataclass(frozen=True, slots=True)
class Skipped:
    """Something not scanned, reported so that nothing is dropped silently."""

    path: str
    reason: str


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
    # Findings the configuration's allow-values kept out of the report: counted, so a
    # repository's own configuration cannot make a scan look clean without a trace.
    hidden_by_allow_values: int = 0
    hidden_by_exclude: int = 0  # found in a path excluded after reading it (history, ranges)
    hidden_by_baseline: int = 0
