"""SARIF 2.1.0 for code scanning. Carries no secret material at all, not even a redacted prefix."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

from scanner import __version__
from scanner.engine.rules import Rule, RuleSet
from scanner.findings import Finding, ScanReport
from scanner.reporters.json import ITEMS, dump_document
from scanner.reporters.text import escape_control

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
FINGERPRINT_KEY = "keysweep/v1"
# GitHub code scanning reads security-severity as CVSS-like: >=9 critical, >=7 high, >=4 medium.
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "2.0"}
LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}


# Markdown's special characters, escaped in a rule file's words: a repository's rule file
# wrote links, images and HTML into the alerts code scanning renders.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")


def _rule_descriptor(rule: Rule) -> dict[str, Any]:
    # A rule file's description and help are the scanned repository's words: control and
    # bidirectional characters shown as escapes, Markdown written out as text.
    description = rule.description if rule.builtin else escape_control(rule.description)
    help_text = (rule.help if rule.builtin else escape_control(rule.help)) or description
    short, full = (description, help_text) if rule.builtin else (
        _MARKDOWN_SPECIAL.sub(r"\\\1", description), _MARKDOWN_SPECIAL.sub(r"\\\1", help_text))
    return {
        "id": rule.id,
        "name": "".join(part.capitalize() for part in rule.id.split("-")),
        "shortDescription": {"text": description},
        "fullDescription": {"text": help_text},
        "help": {
            "text": help_text,
            "markdown": f"**{short}**\n\n{full}\n\nIf this is a false positive, add "
            "`keysweep:allow` in a comment on the line, or record it in a baseline "
            "(`keysweep baseline create`).",
        },
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": ["security", "secret", "aws"], "security-severity": "9.0", "precision": "high"},
    }


def _message(finding: Finding, description: str) -> str:
    parts = [description]
    if finding.account_id:
        parts.append(f"of AWS account {finding.account_id}" + (" (a known canary-token account)" if finding.canary else ""))
    if finding.commit is not None:
        parts.append(f"introduced in commit {finding.commit.sha[:12]} by {finding.commit.author}")
    if finding.source in ("commit-message", "tag-message"):
        parts.append(f"in a {finding.source.replace('-', ' ')}")
    if finding.decoded:
        parts.append(f"inside a {finding.decoded}-encoded value")
    return escape_control(" ".join(parts) + ". Rotate the key and remove it from the repository.")


def _place(finding: Finding) -> str:
    """The artifact a result points at. GitHub rejects a whole SARIF file if any result has
    no location, so text without a path (a commit or tag message, a blob no ref reaches) is
    anchored at a stable pseudo-path that names the object."""
    if finding.path is not None:
        return finding.path
    name = finding.commit.sha if finding.commit is not None else (finding.blob or "unknown")
    return f"{finding.source}/{name}"


def _result(finding: Finding, index: int, description: str) -> dict[str, Any]:
    properties: dict[str, Any] = {"source": finding.source, "reachable": finding.reachable}
    if finding.commit is not None:
        properties.update(
            commit=finding.commit.sha, author=finding.commit.author, email=finding.commit.email,
            date=finding.commit.date, commitSummary=finding.commit.summary,
        )
    for name, value in (("accountId", finding.account_id), ("blob", finding.blob), ("decoded", finding.decoded)):
        if value:
            properties[name] = value
    if finding.canary:
        properties["canary"] = True
    if finding.in_head is not None:
        properties["inHead"] = finding.in_head
    if finding.refs is not None:
        properties["refs"] = list(finding.refs)
        properties["refsTotal"] = finding.refs_total
    if finding.repository is not None:
        properties["repository"] = finding.repository
    if finding.verification is not None:
        properties["verification"] = finding.verification.status
    if finding.severity is not None:
        properties["severity"] = finding.severity
        properties["security-severity"] = SECURITY_SEVERITY[finding.severity]
    if finding.access is not None:
        properties["accessFlags"] = list(finding.access.flags)
    if finding.exposure is not None:
        flags: tuple[tuple[str, bool | None], ...] = (
            ("pushed", finding.exposure.pushed), ("usedAfterLeak", finding.exposure.used_after_leak))
        for flag, known in flags:
            properties[flag] = "unknown" if known is None else known
    result: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "ruleIndex": index,
        "level": LEVEL[finding.severity] if finding.severity is not None else "error",
        "message": {"text": _message(finding, description)},
        "partialFingerprints": {FINGERPRINT_KEY: finding.fingerprint},
        "properties": properties,
    }
    result["locations"] = [
        {
            "physicalLocation": {
                # A URI reference: spaces and other reserved characters percent-encoded.
                "artifactLocation": {"uri": urllib.parse.quote(_place(finding), safe="/"), "uriBaseId": "%SRCROOT%"},
                "region": {"startLine": finding.line, "startColumn": finding.column},
            }
        }
    ]
    return result


def render_sarif(report: ScanReport, ruleset: RuleSet) -> str:
    index = {rule.id: i for i, rule in enumerate(ruleset.rules)}
    descriptions = {rule.id: rule.description for rule in ruleset.rules}
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "keysweep",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": [_rule_descriptor(rule) for rule in ruleset.rules],
                    }
                },
                "automationDetails": {"id": "keysweep/"},
                "columnKind": "unicodeCodePoints",
                "invocations": [
                    {
                        # An incomplete scan (unreadable objects, a rule out of time) is
                        # reported as a failed execution, so code scanning does not take it as clean.
                        "executionSuccessful": not report.errors,
                        "toolExecutionNotifications": [
                            {"level": "error", "message": {"text": error}} for error in report.errors
                        ],
                    }
                ],
                "results": ITEMS,
            }
        ],
    }
    return dump_document(document, len(report.findings), lambda: (
        _result(f, index.get(f.rule_id, 0), descriptions.get(f.rule_id, f.rule_id)) for f in report.findings))
