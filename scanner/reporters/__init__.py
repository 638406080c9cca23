"""Reporters: a ScanReport in, text out. Secrets are redacted unless show_secrets is set."""

from __future__ import annotations

from typing import Literal

from scanner.engine.rules import RuleSet
from scanner.findings import ScanReport

ReportFormat = Literal["text", "json", "jsonl", "sarif"]
FORMATS: tuple[ReportFormat, ...] = ("text", "json", "jsonl", "sarif")


def render(report: ScanReport, fmt: ReportFormat, ruleset: RuleSet, *, show_secrets: bool, color: bool) -> str:
    if fmt == "json":
        from scanner.reporters.json import render_json

        return render_json(report, ruleset, show_secrets=show_secrets)
    if fmt == "jsonl":
        from scanner.reporters.json import render_jsonl

        return render_jsonl(report, ruleset, show_secrets=show_secrets)
    if fmt == "sarif":
        from scanner.reporters.sarif import render_sarif

        return render_sarif(report, ruleset)
    from scanner.reporters.text import render_text

    return render_text(report, show_secrets=show_secrets, color=color)
