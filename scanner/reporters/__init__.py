"""Reporters: a ScanReport in, text out. Secrets are redacted unless show_secrets is set."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from scanner.engine.rules import RuleSet
from scanner.findings import ScanReport

if TYPE_CHECKING:
    from scanner.reporters.html import HtmlContext

ReportFormat = Literal["text", "json", "jsonl", "sarif", "html"]
FORMATS: tuple[ReportFormat, ...] = ("text", "json", "jsonl", "sarif", "html")


def render(report: ScanReport, fmt: ReportFormat, ruleset: RuleSet, *, show_secrets: bool, color: bool,
           html: HtmlContext | None = None) -> str:
    if fmt == "html":
        # Always redacted, whatever show_secrets says: the HTML report is made to be shared.
        from scanner.reporters.html import render_html

        return render_html(report, ruleset, html)
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
