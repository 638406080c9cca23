"""Redaction of text that comes from the repository (commit subjects, author names, paths,
tag names, warnings) of every value the scan found anywhere.

A secret found in one file can stand, bare and without any keyword, in another commit's
subject line: the detector rightly does not report it there (nothing marks it as a secret),
but every report would print it. So once the scan knows every value, each piece of
repository text is rewritten before any report, baseline, plan or message sees it.
"""

from __future__ import annotations

import base64
import dataclasses
import urllib.parse
from collections.abc import Iterable

import regex

from scanner.findings import CommitInfo, Finding, ScanReport, Skipped
from scanner.secret import Secret


@dataclasses.dataclass(frozen=True)
class Redactor:
    """One alternation of every found value (and its common encodings), built once."""

    pattern: regex.Pattern[str] | None
    replacements: dict[str, str]

    def __call__(self, text: str) -> str:
        if self.pattern is None or not text:
            return text
        return self.pattern.sub(lambda m: self.replacements[m.group()], text)


def _forms(secret: Secret) -> Iterable[str]:
    value = secret.reveal()
    yield value
    quoted = urllib.parse.quote(value, safe="")
    if quoted != value:
        yield quoted
        yield quoted.lower()  # %2f as well as %2F
    yield base64.b64encode(value.encode()).decode().rstrip("=")


def redactor_for(secrets: Iterable[Secret]) -> Redactor:
    replacements: dict[str, str] = {}
    for secret in secrets:
        for form in _forms(secret):
            if len(form) >= 8:  # a shorter value would redact ordinary words
                replacements.setdefault(form, secret.redacted)
    if not replacements:
        return Redactor(None, {})
    # A named list: at each position `regex` looks the text up in a set, one probe per
    # distinct length (longest first), so the cost does not grow with the number of values.
    return Redactor(regex.compile(r"\L<values>", values=list(replacements)), replacements)


def _commit(info: CommitInfo | None, redact: Redactor) -> CommitInfo | None:
    if info is None:
        return None
    return dataclasses.replace(info, author=redact(info.author), email=redact(info.email), summary=redact(info.summary))


def _finding(finding: Finding, redact: Redactor) -> Finding:
    return dataclasses.replace(
        finding,
        path=redact(finding.path) if finding.path is not None else None,
        commit=_commit(finding.commit, redact),
    )


def redact_report(report: ScanReport) -> ScanReport:
    """The report with every repository-supplied text redacted of every found value.

    Fingerprints are computed before this (from the real path), so baselines still match.
    """
    redact = redactor_for(f.secret for f in report.findings)
    if redact.pattern is None:
        return report
    return dataclasses.replace(
        report,
        findings=tuple(_finding(f, redact) for f in report.findings),
        skipped=tuple(Skipped(redact(s.path), redact(s.reason)) for s in report.skipped),
        warnings=tuple(redact(w) for w in report.warnings),
        errors=tuple(redact(e) for e in report.errors),
        target=redact(report.target),
    )
