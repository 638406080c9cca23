"""What each command does, between the parsed arguments and the library."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

import regex

from scanner.config import Config, find_config, load_config
from scanner.engine.rules import RuleSet, load_ruleset
from scanner.errors import UsageError
from scanner.exitcodes import EXIT_CLEAN, EXIT_FAILURE, EXIT_FINDINGS, EXIT_USAGE
from scanner.findings import Finding, RemediationOutcome, ScanReport
from scanner.pathfilter import PathFilter
from scanner.progress import ProgressLine
from scanner.reporters import ReportFormat, render
from scanner.scan import DEFAULT_MAX_FILE_SIZE, HistoryMode, ScanOptions, default_jobs, run_scan

if TYPE_CHECKING:
    # scanner.aws pulls in boto3 (~0.1 s): imported where a command uses it, never by a plain scan.
    from scanner.aws.audit import AuditLog
    from scanner.aws.remediate import Plan
    from scanner.reporters.html import HtmlContext


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


BLOCKED_COMMIT_HELP = """\
keysweep blocked this commit: the staged change adds the credentials listed above.
  - If they are real: remove them from the files (keep them in a secret store or the
    environment), `git add` again, and rotate the key: `keysweep revoke KEY_ID --apply`
    (a committed key may already be copied, even if the commit never leaves this machine).
  - If one is a false positive: add a `keysweep:allow` comment on its line, or record it
    in the baseline: `keysweep baseline create` (then pass --baseline or set it in .keysweep.yaml).
"""


def _scan_root(target: Path) -> Path:
    from scanner.errors import GitError
    from scanner.sources.git import find_repository

    try:
        repo = find_repository(target, search_parents=True) if target.exists() else None
    except GitError:
        return target  # a repository git refuses to open: the scan itself says so, if it needs it
    if repo is not None and repo.worktree is not None:
        return repo.worktree
    return target


def _push_revisions() -> tuple[str, ...]:
    """The commits a pre-push hook is about to send, from the pre-commit framework's variables."""
    to_ref = os.environ.get("PRE_COMMIT_TO_REF") or os.environ.get("PRE_COMMIT_SOURCE")
    from_ref = os.environ.get("PRE_COMMIT_FROM_REF") or os.environ.get("PRE_COMMIT_ORIGIN")
    if to_ref and from_ref:
        return (f"{from_ref}..{to_ref}",)
    # A push that brings its root commit along (a new repository): pre-commit names only the
    # branch and the remote. Everything the remote does not have yet is being pushed.
    local = os.environ.get("PRE_COMMIT_LOCAL_BRANCH")
    remote = os.environ.get("PRE_COMMIT_REMOTE_NAME")
    if local and remote:
        return (local, "--not", f"--remotes={remote}")
    raise UsageError("--pre-push needs the variables pre-commit sets for a pre-push hook "
                     "(PRE_COMMIT_FROM_REF and PRE_COMMIT_TO_REF)")


def _settings(args: argparse.Namespace, target: Path) -> tuple[Config, RuleSet]:
    config = load_config(args.config if args.config is not None else find_config(_scan_root(target)))
    return config, load_ruleset([*config.rules, *args.rules])


def _scan(args: argparse.Namespace, config: Config, ruleset: RuleSet, *, history: HistoryMode) -> ScanReport:
    target = Path(args.path)
    if getattr(args, "jobs", None) is not None and args.jobs < 1:
        raise UsageError("--jobs must be 1 or more")
    revision_range = getattr(args, "revision_range", None)
    if getattr(args, "since", None):
        revision_range = f"{args.since}..HEAD"
    push_revisions = _push_revisions() if getattr(args, "pre_push", False) else ()
    show_progress = not getattr(args, "no_progress", False) and sys.stderr.isatty()
    progress = ProgressLine() if show_progress else None
    max_size = getattr(args, "max_file_size", None) or config.max_file_size or DEFAULT_MAX_FILE_SIZE
    options = ScanOptions(
        target=target,
        history=history,
        all_objects=getattr(args, "all_objects", False),
        staged=getattr(args, "staged", False),
        revision_range=revision_range,
        push_revisions=push_revisions,
        max_file_size=max_size,
        jobs=getattr(args, "jobs", None) or default_jobs(),
        excludes=PathFilter((*config.exclude, *getattr(args, "exclude", []))),
        allow_values=config.allow_values,
        progress=progress,
    )
    try:
        report = run_scan(options, ruleset)
    finally:
        if progress is not None:
            progress.close()
    _print_warnings(report)
    return report


def scan_command(args: argparse.Namespace) -> int:
    from scanner.cli import write_output

    if args.apply and not args.remediate:
        raise UsageError("--apply carries out a remediation: give --remediate deactivate|delete with it")
    _accounts(args)
    started = datetime.datetime.now(datetime.timezone.utc)
    config, ruleset = _settings(args, Path(args.path))
    baseline_path = args.baseline or config.baseline
    baseline = None
    if baseline_path is not None:
        from scanner.baseline import load_baseline

        baseline = load_baseline(baseline_path)
    report = _scan(args, config, ruleset, history=_history_mode(args))
    if baseline is not None:
        report = dataclasses.replace(report, findings=tuple(baseline.new(report.findings)))
    if args.verify:
        from scanner.aws.verify import verify_findings

        verified = verify_findings(report.findings, allow_accounts=_accounts(args), include_canary=args.verify_canary,
                                   region=args.region)
        report = dataclasses.replace(report, findings=tuple(verified))
    failed = False
    if args.remediate:
        outcomes = remediate_findings(args, report.findings)
        report = dataclasses.replace(report, remediation=tuple(outcomes))
        failed = any(o.result == "failed" for o in outcomes)
    fmt = cast(ReportFormat, args.format or config.format or "text")
    if fmt != "text" or args.output is not None:
        # The text report lists what was skipped; a machine-readable one keeps it in its
        # summary, so a person watching the terminal is told here.
        for skipped in report.skipped:
            print(f"keysweep: warning: skipped {skipped.path}: {skipped.reason}", file=sys.stderr)
    html = _html_context(args, started) if fmt == "html" else None
    write_output(render(report, fmt, ruleset, show_secrets=args.show_secrets, color=_color(args), html=html),
                 args.output)
    if report.findings and (args.staged or args.pre_push):
        print(BLOCKED_COMMIT_HELP.replace("this commit", "this push") if args.pre_push else BLOCKED_COMMIT_HELP,
              file=sys.stderr, end="")
    if failed:
        return EXIT_FAILURE
    return EXIT_FINDINGS if report.findings else EXIT_CLEAN


def _scope(args: argparse.Namespace) -> str:
    if args.staged:
        return "staged change"
    if args.pre_push:
        return "commits being pushed"
    if args.revision_range or args.since:
        return f"commits in {args.revision_range or args.since + '..HEAD'}"
    scope = {"none": "work tree", "only": "history"}.get(_history_mode(args), "work tree and history")
    return scope + (" and all objects" if args.all_objects else "")


def _html_context(args: argparse.Namespace, started: datetime.datetime) -> HtmlContext:
    return html_context([Path(args.path)], scope=_scope(args), started=started, audit_log=args.audit_log)


def html_context(targets: Sequence[Path], *, scope: str, started: datetime.datetime, audit_log: Path | None,
                 repository_errors: Sequence[str] = ()) -> HtmlContext:
    """What the HTML report shows beyond the scan: scope, start time, each target's web remote
    for commit links (keyed as the report names the repository: str(target)), and remediation
    already recorded in an --audit-log given to the report."""
    from scanner.errors import GitError
    from scanner.reporters.html import HtmlContext, read_audit_log, web_base
    from scanner.sources.git import find_repository, remote_url

    remotes: dict[str, str] = {}
    for target in targets:
        try:
            repo = find_repository(target, search_parents=True) if target.exists() else None
            base = web_base(remote_url(repo)) if repo is not None else None
        except GitError:
            base = None  # no link is no loss: the report shows the commit id
        if base is not None:
            remotes[str(target)] = base
    records = read_audit_log(audit_log) if audit_log is not None and audit_log.exists() else ()
    return HtmlContext(scope=scope, targets=tuple(str(t.resolve()) for t in targets), started=started,
                       web_remotes=remotes, audit_records=records, repository_errors=tuple(repository_errors))


def _print_warnings(report: ScanReport) -> None:
    for warning in report.warnings:
        print(f"keysweep: warning: {warning}", file=sys.stderr)


def baseline_create_command(args: argparse.Namespace) -> int:
    from scanner.baseline import BASELINE_FILE, render_baseline
    from scanner.cli import write_output

    target = Path(args.path)
    config, ruleset = _settings(args, target)
    report = _scan(args, config, ruleset, history="none" if args.no_history else "default")
    root = _scan_root(target)
    output = args.output or (root if root.is_dir() else root.parent) / BASELINE_FILE
    write_output(render_baseline(report.findings), output)
    print(f"keysweep: wrote {output} with {len({f.fingerprint for f in report.findings})} known finding(s); "
          f"scan with --baseline {output} to report only new ones", file=sys.stderr)
    return EXIT_CLEAN


KEY_ID = regex.compile(r"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}")


def _accounts(args: argparse.Namespace) -> frozenset[str]:
    accounts = frozenset(a.strip() for a in args.allow_account)
    for account in accounts:
        if not regex.fullmatch(r"\d{12}", account):
            raise UsageError(f"--allow-account {account!r}: an AWS account ID is 12 digits")
    return accounts


def _audit(args: argparse.Namespace) -> AuditLog:
    from scanner.aws.audit import AuditLog, default_audit_log

    return AuditLog(args.audit_log or default_audit_log())


def _print_outcomes(plans: list[Plan], outcomes: list[RemediationOutcome], applied: bool, audit: AuditLog) -> None:
    from scanner.aws.remediate import describe

    heading = "remediation" if applied else "remediation plan (dry run: nothing changed; add --apply to carry it out)"
    print(f"keysweep: {heading} (audit log: {audit.path}):", file=sys.stderr)
    for item in plans:
        print(f"  {describe(item)}", file=sys.stderr)
    if applied:
        for outcome in outcomes:
            if outcome.action != "none":
                detail = f": {outcome.detail}" if outcome.detail else ""
                print(f"  {outcome.key_id}: {outcome.action}: {outcome.result}{detail}", file=sys.stderr)


def remediate_findings(args: argparse.Namespace, findings: Sequence[Finding]) -> list[RemediationOutcome]:
    """Plan (and with --apply, carry out) remediation of every key ID the scan found."""
    from scanner.aws import remediate
    from scanner.aws.clients import KeyPair
    from scanner.aws.verify import pairs_in

    targets: dict[str, remediate.Target] = {}
    for key, secret, token in pairs_in(findings).values():
        key_id = key.secret.reveal()
        if key.canary or key_id in targets:
            continue
        verification = key.verification
        if verification is not None and verification.status in ("canary", "skipped"):
            continue
        pair = KeyPair(key_id, secret.secret.reveal(), token.secret.reveal() if token else None) if secret else None
        targets[key_id] = remediate.Target(
            key_id, account_hint=key.account_id or (verification.account if verification else None),
            live=verification is not None and verification.status == "valid",
            arn=verification.arn if verification else None, pair=pair,
        )
    if not targets:
        print("keysweep: remediation: no access key IDs to remediate", file=sys.stderr)
        return []
    mode: remediate.RemediationMode = args.remediate
    groups: list[tuple[KeyPair | None, list[remediate.Target]]]
    if args.use_leaked_key:
        groups = [(t.pair, [t]) for t in targets.values() if t.pair is not None]
    else:
        groups = [(None, list(targets.values()))]
    plans: list[Plan] = []
    outcomes: list[RemediationOutcome] = []
    for leaked, group in groups:
        operator = remediate.connect(args.profile, args.region, leaked)
        group_plans = remediate.plan(group, mode, operator, quarantine=args.quarantine, allow_accounts=_accounts(args))
        plans += group_plans
        outcomes += remediate.apply(group_plans, operator, _audit(args), dry_run=not args.apply)
    _print_outcomes(plans, outcomes, args.apply, _audit(args))
    return outcomes


def revoke_command(args: argparse.Namespace) -> int:
    from scanner.aws import remediate

    key_id = args.key_id.strip()
    if not KEY_ID.fullmatch(key_id):
        raise UsageError(f"{key_id!r} is not an AWS access key ID (AKIA… or ASIA… followed by 16 characters)")
    if args.use_leaked_key:
        raise UsageError("revoke knows only the key ID; --use-leaked-key needs the secret, so use it with scan --remediate")
    operator = remediate.connect(args.profile, args.region)
    mode: remediate.RemediationMode = "delete" if args.delete else "deactivate"
    plans = remediate.plan([remediate.Target(key_id)], mode, operator, quarantine=args.quarantine,
                           allow_accounts=_accounts(args))
    outcomes = remediate.apply(plans, operator, _audit(args), dry_run=not args.apply)
    _print_outcomes(plans, outcomes, args.apply, _audit(args))
    if any(o.result == "failed" for o in outcomes):
        return EXIT_FAILURE
    if any(o.result == "refused" for o in outcomes):
        return EXIT_USAGE
    return EXIT_CLEAN

