"""What each command does, between the parsed arguments and the library."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from scanner.engine.rules import RuleSet, load_ruleset
from scanner.errors import UsageError
from scanner.findings import ScanReport
from scanner.progress import ProgressLine
from scanner.reporters import ReportFormat, render
from scanner.scan import DEFAULT_MAX_FILE_SIZE, HistoryMode, ScanOptions, run_scan

EXIT_CLEAN, EXIT_FINDINGS = 0, 1


def _history_mode(args: argparse.Namespace) -> HistoryMode:
    if getattr(args, "no_history", False):
        return "none"
    if getattr(args, "history_only", False):
        return "only"
    return "default"


def _color(args: argparse.Namespace) -> bool:
    if args.no_color or os.environ.get("NO_COLOR") or args.output is not None:
        return False
    return sys.stdout.isatty()


def scan_command(args: argparse.Namespace) -> int:
    from scanner.cli import write_output

    target = Path(args.path)
    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be 1 or more")
    ruleset = load_ruleset(args.rules)
    progress = ProgressLine() if not args.no_progress and sys.stderr.isatty() else None
    revision_range = args.revision_range
    if args.since:
        revision_range = f"{args.since}..HEAD"
    options = ScanOptions(
        target=target,
        history=_history_mode(args),
        all_objects=args.all_objects,
        staged=args.staged,
        revision_range=revision_range,
        max_file_size=args.max_file_size or DEFAULT_MAX_FILE_SIZE,
        jobs=args.jobs or os.cpu_count() or 1,
        progress=progress,
    )
    try:
        report = run_scan(options, ruleset)
    finally:
        if progress is not None:
            progress.close()
    _print_warnings(report)
    fmt: ReportFormat = args.format or "text"
    write_output(render(report, fmt, ruleset, show_secrets=args.show_secrets, color=_color(args)), args.output)
    return EXIT_FINDINGS if report.findings else EXIT_CLEAN


def _print_warnings(report: ScanReport) -> None:
    for warning in report.warnings:
        print(f"keysweep: warning: {warning}", file=sys.stderr)


def baseline_create_command(args: argparse.Namespace) -> int:
    raise UsageError("baselines are not available yet")


def revoke_command(args: argparse.Namespace) -> int:
    raise UsageError("revoke is not available yet")


__all__ = ["scan_command", "baseline_create_command", "revoke_command", "RuleSet"]
