"""The JSON and JSON Lines reports: the stable contract documented in README.md."""

from __future__ import annotations

import json
from dataclasses import asdict
from collections.abc import Callable, Iterator
from typing import Any

from scanner import __version__
from scanner.engine.rules import RuleSet
from scanner.findings import Finding, RemediationOutcome, ScanReport
from scanner.reporters.text import escape_json
from scanner.secret import Secret

SCHEMA_VERSION = 1


def finding_dict(finding: Finding, ruleset: RuleSet, *, show_secrets: bool) -> dict[str, Any]:
    try:
        description = ruleset.by_id(finding.rule_id).description
    except KeyError:
        description = finding.rule_id
    data: dict[str, Any] = {
        "rule": finding.rule_id,
        "description": description,
        "kind": finding.secret.kind,
        "secret": finding.secret.reveal() if show_secrets else finding.secret.redacted,
        "redacted": not show_secrets,
        "fingerprint": finding.fingerprint,
        "path": finding.path,
        "line": finding.line,
        "column": finding.column,
        "source": finding.source,
        "commit": asdict(finding.commit) if finding.commit else None,
        "blob": finding.blob,
        "reachable": finding.reachable,
        "decoded": finding.decoded,
        "account_id": finding.account_id,
        "canary": finding.canary,
        "pair": finding.pair,
        "session_token": finding.session_token,
        "occurrences": asdict(finding.occurrences) if finding.occurrences else None,
        "verification": _verification(finding),
        "severity": finding.severity,
        "exposure": exposure_dict(finding),
        "access": access_dict(finding),
        "bedrock": _bedrock(finding, show_secrets),
        "in_head": finding.in_head,
        "refs": list(finding.refs) if finding.refs is not None else None,
        "refs_total": finding.refs_total if finding.refs is not None else None,
    }
    if finding.repository is not None:
        data["repository"] = finding.repository
    return data


def _bedrock(finding: Finding, show_secrets: bool) -> dict[str, Any] | None:
    if finding.bedrock is None:
        return None
    data = asdict(finding.bedrock)
    signer = data.get("signer_key_id")
    if signer and not show_secrets:
        data["signer_key_id"] = Secret("key-id", signer).redacted  # as every key ID in a report
    return data


def _tristate(value: bool | None) -> bool | str:
    return "unknown" if value is None else value


def exposure_dict(finding: Finding) -> dict[str, Any] | None:
    exposure = finding.exposure
    if exposure is None:
        return None
    return {
        "leaked_at": exposure.leaked_at,
        "leaked_by": exposure.leaked_by,
        "pushed": _tristate(exposure.pushed),
        "key_created": exposure.key_created,
        "key_status": exposure.key_status,
        "last_used": asdict(exposure.last_used) if exposure.last_used else None,
        "used_after_leak": _tristate(exposure.used_after_leak),
        "errors": list(exposure.errors),
    }


def access_dict(finding: Finding) -> dict[str, Any] | None:
    access = finding.access
    if access is None:
        return None
    return {
        "principal": access.principal,
        "root": access.root,
        "groups": list(access.groups),
        "policies": [asdict(p) for p in access.policies],
        "flags": list(access.flags),
        "errors": list(access.errors),
    }


def _verification(finding: Finding) -> dict[str, Any] | None:
    if finding.verification is None:
        return None
    data = {k: v for k, v in asdict(finding.verification).items() if v not in (None, "")}
    return data


def summary_dict(report: ScanReport, *, show_secrets: bool = False) -> dict[str, Any]:
    by_rule: dict[str, int] = {}
    by_severity: dict[str, int] = {}
    for finding in report.findings:
        by_rule[finding.rule_id] = by_rule.get(finding.rule_id, 0) + 1
        if finding.severity is not None:
            by_severity[finding.severity] = by_severity.get(finding.severity, 0) + 1
    return {
        "findings": len(report.findings),
        "by_rule": by_rule,
        "by_severity": by_severity,
        "target": report.target,
        "files_scanned": report.files_scanned,
        "blobs_scanned": report.blobs_scanned,
        "commits_scanned": report.commits_scanned,
        "bytes_scanned": report.bytes_scanned,
        "duration_seconds": round(report.duration_seconds, 3),
        "skipped": [asdict(s) for s in report.skipped],
        "hidden_by_allow_values": report.hidden_by_allow_values,
        "hidden_by_exclude": report.hidden_by_exclude,
        "hidden_by_baseline": report.hidden_by_baseline,
        "warnings": list(report.warnings),
        "errors": list(report.errors),
        "remediation": [_remediation(o, show_secrets) for o in report.remediation],
    }


def render_json(report: ScanReport, ruleset: RuleSet, *, show_secrets: bool) -> str:
    document = {
        "version": SCHEMA_VERSION,
        "tool": {"name": "keysweep", "version": __version__},
        "findings": ITEMS,
        "summary": summary_dict(report, show_secrets=show_secrets),
    }
    return dump_document(document, len(report.findings),
                         lambda: (finding_dict(f, ruleset, show_secrets=show_secrets) for f in report.findings))


# Indented JSON goes through the json module's pure-Python encoder (the C one takes no
# indent): ~0.2 ms a finding, 10 s for a file made of 50,000 key IDs. Past this many
# findings the document is written compact, by the C encoder; the content is the same.
INDENT_UP_TO_FINDINGS = 2000


# Stands in a large document for its list of findings, which is written item by item.
_ITEMS = "\x00keysweep: the findings\x00"


def dump_document(document: Any, findings: int, items: Callable[[], Iterator[Any]] | None = None) -> str:
    """A report document as JSON text: indented for people, compact when it is large.

    ``items``: the document's one list that grows with the findings, given as a generator
    and left out of ``document`` (the key it goes under holds ``ITEMS``). In a large
    document each item is made and written one at a time: 50,000 findings as dicts all at
    once held ~100 MB more than their text."""
    if findings > INDENT_UP_TO_FINDINGS:
        text = escape_json(json.dumps(document, ensure_ascii=False, separators=(",", ":")))
        if items is None:
            return text + "\n"
        before, marker, after = text.partition(json.dumps(_ITEMS, ensure_ascii=False))
        assert marker, "the document holds no ITEMS"
        # One join of every piece: each concatenation of a large text is one more copy of it.
        parts = [before, "["]
        for item in items():
            parts += (escape_json(json.dumps(item, ensure_ascii=False, separators=(",", ":"))), ",")
        if parts[-1] == ",":
            parts.pop()
        parts += ("]", after, "\n")
        return "".join(parts)
    if items is not None:
        document = _filled(document, list(items()))
    return escape_json(json.dumps(document, indent=2, ensure_ascii=False)) + "\n"


ITEMS = _ITEMS


def _filled(value: Any, items: list[Any]) -> Any:
    """The document with its ITEMS marker replaced by the items."""
    if isinstance(value, dict):
        return {key: _filled(entry, items) for key, entry in value.items()}
    if isinstance(value, list):
        return [_filled(entry, items) for entry in value]
    return items if value == _ITEMS else value


def render_jsonl(report: ScanReport, ruleset: RuleSet, *, show_secrets: bool) -> str:
    return "".join(
        escape_json(json.dumps(finding_dict(f, ruleset, show_secrets=show_secrets), ensure_ascii=False)) + "\n"
        for f in report.findings
    )


def _remediation(outcome: RemediationOutcome, show_secrets: bool) -> dict[str, Any]:
    entry = asdict(outcome)
    if not show_secrets:
        shown = Secret("key-id", outcome.key_id).redacted
        entry["key_id"] = shown
        entry["detail"] = outcome.detail.replace(outcome.key_id, shown)
    return entry
