"""Severity of each finding, from what is known of its key: offline shape, verification, access.

critical  the root user's key, or a valid key that is admin or can write IAM (persistence)
high      a valid key; a key ID found with its secret, offline (no --verify) or whose check failed
medium    unconfirmed: no secret found with it, verification skipped
low       invalid, a canary-account key, or a key IAM reports inactive
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from scanner.findings import Finding, Severity, evolve

SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low")
RANK: dict[Severity, int] = {name: index for index, name in enumerate(SEVERITIES)}
CRITICAL_FLAGS = frozenset({"admin", "iam-write"})
FailOn = Literal["critical", "high", "medium", "low"]


def _of_key(key: Finding, has_secret: bool) -> Severity:
    if key.canary:
        return "low"
    verification = key.verification
    exposure = key.exposure
    access = key.access
    if access is not None and access.root:
        return "critical"
    if verification is None:
        return "high" if has_secret else "medium"
    if verification.status in ("invalid", "canary"):
        return "low"
    if verification.status == "unknown":
        # The check failed (throttling, an outage, the clock): nothing learnt, so what the scan
        # knows offline stands. Lower would let an AWS outage pass a `--fail-on high` gate.
        return "high" if has_secret else "medium"
    if verification.status != "valid":
        return "medium"
    if verification.arn is not None and verification.arn.endswith(":root"):
        return "critical"
    if exposure is not None and exposure.key_status == "Inactive":
        return "low"
    if access is not None and CRITICAL_FLAGS & set(access.flags):
        return "critical"
    return "high"


def _of_bearer(finding: Finding) -> Severity:
    """A Bedrock API key is a whole credential on its own: high unless shown dead or expired."""
    import datetime

    if finding.canary:
        return "low"
    verification = finding.verification
    if verification is not None:
        if verification.status in ("invalid", "canary"):
            return "low"
        if verification.status not in ("valid", "unknown"):  # unknown: not shown dead, so high
            return "medium"
    bedrock = finding.bedrock
    if bedrock is not None and bedrock.expires_at is not None:
        expires = datetime.datetime.fromisoformat(bedrock.expires_at)
        if expires < datetime.datetime.now(datetime.timezone.utc):
            return "low"
    if finding.exposure is not None and finding.exposure.key_status == "Inactive":
        return "low"
    return "high"


def assign_severity(findings: Sequence[Finding]) -> list[Finding]:
    """Each finding with its severity; a secret or token takes its key ID's."""
    by_print = {f.fingerprint: f for f in findings}
    # An SES SMTP password proves the secret existed as much as the secret itself does.
    smtp_of = {f.pair for f in findings if f.secret.kind == "smtp-password" and f.pair}
    of_key: dict[str, Severity] = {}
    for finding in findings:
        if finding.secret.kind == "key-id":
            partner = by_print.get(finding.pair) if finding.pair else None
            of_key[finding.fingerprint] = _of_key(finding, partner is not None or finding.fingerprint in smtp_of)
    result = []
    for finding in findings:
        if finding.severity is not None:  # set by a more specific analysis (a Bedrock key's own)
            result.append(finding)
            continue
        if finding.secret.kind == "key-id":
            severity = of_key[finding.fingerprint]
        elif finding.secret.kind == "bearer-token":
            severity = _of_bearer(finding)
        elif finding.pair and finding.pair in of_key:
            severity = of_key[finding.pair]
        else:
            severity = "low" if finding.canary else "medium"  # a secret with no key ID: unconfirmable
        result.append(evolve(finding, severity=severity))
    return result


def at_least(severity: Severity | None, threshold: Severity) -> bool:
    return severity is not None and RANK[severity] <= RANK[threshold]


def by_severity(findings: Sequence[Finding]) -> list[Finding]:
    """Most severe first; otherwise in the order found (stable)."""
    return sorted(findings, key=lambda f: RANK[f.severity] if f.severity is not None else len(SEVERITIES))
