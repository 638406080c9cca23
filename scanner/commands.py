"""What each command does, between the parsed arguments and the library."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

from scanner.config import Config, find_config, load_config
from scanner.diagnostics import get_logger
from scanner.engine.lazyregex import lazy_compile
from scanner.engine.rules import RuleSet, load_ruleset
from scanner.errors import UsageError, bounded
from scanner.exitcodes import EXIT_CLEAN, EXIT_FAILURE, EXIT_FINDINGS, EXIT_USAGE
from scanner.findings import Finding, ScanReport
from scanner.pathfilter import PathFilter
from scanner.progress import ProgressLine
from scanner.reporters import ReportFormat, render
from scanner.reporters.text import escape_control
from scanner.scan import DEFAULT_MAX_FILE_SIZE, HistoryMode, ScanOptions, default_jobs, run_scan

log = get_logger(__name__)

if TYPE_CHECKING:
    import datetime

    # scanner.aws pulls in boto3 (~0.1 s): imported where a command uses it, never by a plain scan.
    from scanner.aws.audit import AuditLog
    from scanner.aws.exposure import KeyActivity
    from scanner.aws.remediate import Plan
    from scanner.findings import RemediationOutcome, Severity
    from scanner.reporters.html import HtmlContext


def _history_mode(args: argparse.Namespace) -> HistoryMode:
    if getattr(args, "no_history", False):
        return "none"
    if getattr(args, "history_only", False):
        return "only"
    return "default"


def _color(args: argparse.Namespace) -> bool:
    """--color (or its old alias --no-color) wins; then NO_COLOR, then FORCE_COLOR
    (no-color.org, force-color.org); then colour only on a terminal."""
    choice = "never" if args.no_color else getattr(args, "color", None) or "auto"
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR", "") not in ("", "0", "false"):
        return True
    if args.output is not None:
        return False
    return sys.stdout.isatty()


BLOCKED_COMMIT_HELP = """\
keysweep blocked this commit: the staged change adds the credentials listed above.
  - If they are real: remove them from the files (keep them in a secret store or the
    environment), `git add` again, and rotate the key (a committed key may already be copied,
    even if the commit never leaves this machine): `keysweep revoke KEY_ID --apply`, with the
    full key ID, which `keysweep scan --staged --show-secrets` prints (on your terminal only).
  - If one is a false positive: add a `keysweep:allow` comment on its line, or record it
    in the baseline: `keysweep baseline create` (then pass --baseline or set it in .keysweep.yaml).
"""

BLOCKED_PUSH_HELP = """\
keysweep blocked this push: commits being pushed add the credentials listed above.
  - If they are real: rotate the key first (it is in a commit, which may already be copied):
    `keysweep revoke KEY_ID --apply`, with the full key ID, which
    `keysweep scan --range @{upstream}..HEAD --show-secrets` prints (on your terminal only).
    Then take the secret out of the commits: edit the file and `git commit --amend` for the
    last commit, or `git rebase -i` from before the first commit that adds it; push again.
  - If one is a false positive: add a `keysweep:allow` comment on its line, or record it
    in the baseline: `keysweep baseline create` (then pass --baseline or set it in .keysweep.yaml).
"""

BLOCKED_FILES_HELP = """\
keysweep found the credentials listed above in the files it was given (pre-commit --all-files
or --files scans files whole, not only staged lines).
  - If they are real: remove them from the files and rotate the key: `keysweep revoke KEY_ID
    --apply`, with the full key ID, which `keysweep scan --no-history --show-secrets` prints (on
    your terminal only). A key that was committed stays in history: `keysweep scan` shows where.
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
    from scanner.scan import check_target

    if str(target) == "-":
        target = Path(".")  # standard input: the configuration of the current folder's repository
    else:
        check_target(target)
    if getattr(args, "no_config", False):
        if args.config is not None:
            raise UsageError("--config and --no-config exclude each other")
        # A pull request's own .keysweep.yaml could allow its own secret, and its own
        # "keysweep:allow" comment mark it: CI checking untrusted changes takes neither.
        return Config(), load_ruleset(given=args.rules, inline_allow=False)
    config = load_config(args.config if args.config is not None else find_config(_scan_root(target)),
                         confine=args.config is None)
    return config, load_ruleset(config.rules, given=args.rules)


def _scan(args: argparse.Namespace, config: Config, ruleset: RuleSet, *, history: HistoryMode) -> ScanReport:
    target = Path(args.path)
    if getattr(args, "jobs", None) is not None and args.jobs < 1:
        raise UsageError("--jobs must be 1 or more")
    jobs = getattr(args, "jobs", None) or default_jobs()
    most_jobs = 4 * (os.cpu_count() or 1)
    if jobs > most_jobs:
        # Each job is a process with its own git: thousands would exhaust the machine.
        log.warning("--jobs %d is more than 4x the %d core(s); using %d", jobs, os.cpu_count() or 1, most_jobs)
        jobs = most_jobs
    revision_range = getattr(args, "revision_range", None)
    if getattr(args, "since", None):
        if args.since.startswith("-"):
            raise UsageError(f"--since {args.since!r}: a revision cannot begin with '-'")
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
        jobs=jobs,
        excludes=PathFilter((*config.exclude, *getattr(args, "exclude", []))),
        allow_values=config.allow_values,
        progress=progress,
        files=tuple(getattr(args, "files", None) or ()),
    )
    try:
        if str(target) == "-":
            from scanner.scan import scan_stream

            if history == "only" or options.staged or revision_range or push_revisions or options.all_objects:
                raise UsageError("scan - reads standard input: it has no history, index or revisions to scan")
            if sys.stdin is None:  # started with standard input closed (<&-)
                raise UsageError("scan - reads standard input, but it is closed")
            report = scan_stream(sys.stdin.buffer, getattr(args, "stdin_name", None) or "<stdin>", options, ruleset)
        else:
            log.debug("%d rule(s), %d exclude pattern(s), max file size %d bytes", len(ruleset.rules),
                      len(config.exclude) + len(getattr(args, "exclude", [])), max_size)
            report = run_scan(options, ruleset)
        log.info("%d finding(s) in %.2fs", len(report.findings), report.duration_seconds)
    finally:
        if progress is not None:
            progress.close()
    _print_warnings(report)
    return report


def scan_command(args: argparse.Namespace) -> int:
    from scanner.cli import write_output

    if args.apply and not args.remediate:
        raise UsageError("--apply carries out a remediation: give --remediate deactivate|delete with it")
    if args.files and not args.staged:
        raise UsageError("scan takes one PATH; FILE arguments after it are for --staged (the pre-commit hook)")
    _accounts(args)
    if args.remediate:
        _audit_outside_repository(args, Path(args.path))
    started = time.time()  # a datetime only for the HTML report: datetime is not imported by a scan
    config, ruleset = _settings(args, Path(args.path))
    baseline_path = args.baseline or config.baseline
    baseline = None
    if baseline_path is not None:
        from scanner.baseline import load_baseline

        baseline = load_baseline(baseline_path)
    report = _scan(args, config, ruleset, history=_history_mode(args))
    if baseline is not None:
        new = tuple(baseline.new(report.findings))
        report = dataclasses.replace(report, findings=new, hidden_by_baseline=len(report.findings) - len(new))
    report = _add_exposure(report, Path(args.path))
    if args.verify or args.remediate:
        # Remediation acts only on keys proven live: it verifies every pair itself.
        from scanner.aws.verify import verify_findings

        activity = _last_use_before_verifying(args, report.findings)
        verified = verify_findings(report.findings, allow_accounts=_accounts(args), include_canary=args.verify_canary,
                                   region=args.region)
        if any(f.bedrock is not None for f in verified):
            from scanner.aws import bedrock

            verified = bedrock.verify_findings(verified, allow_accounts=_accounts(args),
                                               include_canary=args.verify_canary, region=args.region)
        report = dataclasses.replace(report, findings=tuple(_add_incident(args, verified, activity)))
    report = _add_severity(report, args)
    failed = False
    if args.remediate:
        outcomes = remediate_findings(args, report.findings) + remediate_bedrock_findings(args, report.findings)
        report = dataclasses.replace(report, remediation=tuple(outcomes))
        failed = any(o.result in ("failed", "uncertain", "interrupted") for o in outcomes)
    fmt = cast(ReportFormat, args.format or config.format or "text")
    if fmt != "text" or args.output is not None:
        # The text report lists what was skipped; a machine-readable one keeps it in its
        # summary, so a person watching the terminal is told here.
        for skipped in report.skipped:
            log.warning("skipped %s: %s", skipped.path, skipped.reason)
    html = _html_context(args, _utc(started)) if fmt == "html" else None
    # The HTML report is always redacted, so it is never a private file on that account.
    write_output(render(report, fmt, ruleset, show_secrets=args.show_secrets, color=_color(args), html=html),
                 args.output, private=args.show_secrets and fmt != "html")
    failing = _failing(report.findings, getattr(args, "fail_on", None))
    if failing and (args.staged or args.pre_push):
        if args.pre_push:
            advice = BLOCKED_PUSH_HELP
        elif any(f.source == "file" for f in report.findings):
            advice = BLOCKED_FILES_HELP
        else:
            advice = BLOCKED_COMMIT_HELP
        print(advice, file=sys.stderr, end="")
    for error in report.errors:
        log.error("%s", error)
    if failed or report.errors:
        return EXIT_FAILURE  # an incomplete scan is never reported as clean, nor as only findings
    return EXIT_FINDINGS if failing else EXIT_CLEAN


def _add_exposure(report: ScanReport, target: Path) -> ScanReport:
    """Leak date, author and whether the leaking commit was pushed (git only, no network)."""
    if not report.findings:
        return report
    from scanner.exposure import add_exposure

    findings, warnings = add_exposure(report.findings, target)
    for warning in warnings:
        log.warning("%s", warning)
    return dataclasses.replace(report, findings=tuple(findings), warnings=(*report.warnings, *warnings))


def _last_use_before_verifying(args: argparse.Namespace, findings: Sequence[Finding]) -> dict[str, KeyActivity]:
    """IAM's record of each key's last use, read before verification signs a call with it."""
    from scanner.aws.exposure import snapshot
    from scanner.aws.verify import pairs_in

    accounts = _accounts(args)
    key_ids = [key.secret.reveal() for key, secret, _ in pairs_in(findings).values()
               if secret is not None and (not key.canary or args.verify_canary)
               and (not accounts or key.account_id in accounts)]
    return snapshot(key_ids, args.profile, args.region)


def _add_incident(args: argparse.Namespace, findings: list[Finding], activity: dict[str, KeyActivity]) -> list[Finding]:
    """For each valid key: its IAM record (created, status, last use) and what it can do."""
    from scanner.aws.access import add_access
    from scanner.aws.exposure import add_key_activity

    findings = add_key_activity(findings, activity, args.profile, args.region)
    findings = add_access(findings, args.profile, args.region)
    if any(f.bedrock is not None for f in findings):
        from scanner.aws.bedrock import add_owner

        findings = add_owner(findings, args.profile, args.region)
    return findings


def _add_severity(report: ScanReport, args: argparse.Namespace) -> ScanReport:
    from scanner.severity import assign_severity

    return dataclasses.replace(report, findings=tuple(assign_severity(report.findings)))


def _failing(findings: Sequence[Finding], fail_on: str | None) -> bool:
    """Does any finding reach the --fail-on severity (default: any finding at all)?"""
    if fail_on is None:
        return bool(findings)
    from scanner.severity import at_least

    return any(at_least(f.severity, cast("Severity", fail_on)) for f in findings)


def _scope(args: argparse.Namespace) -> str:
    if args.staged:
        return "staged change"
    if args.pre_push:
        return "commits being pushed"
    if args.revision_range or args.since:
        return f"commits in {args.revision_range or args.since + '..HEAD'}"
    scope = {"none": "work tree", "only": "history"}.get(_history_mode(args), "work tree and history")
    return scope + (" and all objects" if args.all_objects else "")


def _utc(stamp: float) -> datetime.datetime:
    import datetime

    return datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc)


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
        log.warning("%s", warning)


def baseline_create_command(args: argparse.Namespace) -> int:
    from scanner.baseline import BASELINE_FILE, render_baseline
    from scanner.cli import _printable, write_output

    target = Path(args.path)
    config, ruleset = _settings(args, target)
    report = _scan(args, config, ruleset, history="none" if args.no_history else "default")
    root = _scan_root(target)
    output = args.output or (root if root.is_dir() else root.parent) / BASELINE_FILE
    write_output(render_baseline(report.findings), output)
    print(_printable(f"keysweep: wrote {output} with {len({f.fingerprint for f in report.findings})} known finding(s); "
                     f"scan with --baseline {output} to report only new ones"), file=sys.stderr)
    return EXIT_CLEAN


# revoke only: compiled there, not by every scan (lazy_compile).
KEY_ID = lazy_compile(r"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}")


def _accounts(args: argparse.Namespace) -> frozenset[str]:
    accounts = frozenset(a.strip() for a in args.allow_account)
    for account in accounts:
        if not re.fullmatch(r"[0-9]{12}", account):
            raise UsageError(f"--allow-account {bounded(account)}: an AWS account ID is 12 digits")
    return accounts


def _audit(args: argparse.Namespace) -> AuditLog:
    from scanner.aws.audit import AuditLog, default_audit_log

    return AuditLog(args.audit_log or default_audit_log())


def _audit_outside_repository(args: argparse.Namespace, target: Path) -> None:
    """The audit log names whole key IDs: inside the scanned repository's work tree it would
    be committed with the next `git add -A`, and found again by the next scan."""
    from scanner.aws.audit import default_audit_log

    audit = Path(args.audit_log or default_audit_log()).resolve()
    root = _scan_root(target)
    if not (root / ".git").exists():
        return  # not a repository work tree: nothing commits the log
    root = root.resolve()
    if root == audit or root in audit.parents:
        raise UsageError(f"the audit log {audit} is inside the repository {root}: it holds whole key IDs, which "
                         "must never be committed; give --audit-log a path outside it")


def _shown_key(key_id: str, show_secrets: bool) -> str:
    from scanner.secret import Secret

    return key_id if show_secrets else Secret("key-id", key_id).redacted


def _print_outcomes(plans: list[Plan], outcomes: list[RemediationOutcome], applied: bool, audit: AuditLog,
                    held: Sequence[RemediationOutcome] = (), show_secrets: bool = True) -> None:
    from scanner.aws.remediate import describe

    def shown(text: str, key_id: str) -> str:
        return text.replace(key_id, _shown_key(key_id, show_secrets))

    heading = "remediation" if applied else "remediation plan (dry run: nothing changed; add --apply to carry it out)"
    print(f"keysweep: {heading} (audit log: {audit.path}):", file=sys.stderr)
    for item in plans:
        print(f"  {shown(describe(item), item.key_id)}", file=sys.stderr)
    for outcome in held:
        print(f"  {shown(outcome.key_id, outcome.key_id)}: left alone ({outcome.result}): "
              f"{shown(outcome.detail, outcome.key_id)}", file=sys.stderr)
    if applied:
        for outcome in outcomes:
            if outcome.action != "none":
                detail = f": {outcome.detail}" if outcome.detail else ""
                print(f"  {shown(outcome.key_id, outcome.key_id)}: {outcome.action}: {outcome.result}"
                      f"{shown(detail, outcome.key_id)}", file=sys.stderr)


REVOKE_ADVICE = ("to rotate it anyway: `keysweep revoke KEY_ID --delete --apply` with the full key ID "
                 "(--show-secrets prints it)")


def _held(key_id: str, account: str | None, result: Literal["unconfirmed", "not-compromised", "skipped"], detail: str,
          dry_run: bool) -> RemediationOutcome:
    from scanner.keyfacts import RemediationOutcome

    return RemediationOutcome(key_id, account, None, "none", result, detail, dry_run)


def remediate_findings(args: argparse.Namespace, findings: Sequence[Finding]) -> list[RemediationOutcome]:
    """Plan (and with --apply, carry out) remediation of the keys the scan proved live.

    Only a key whose found secret signs (verification ``valid``) is acted on: a key whose
    secret does not sign is not compromised by this leak, and a key ID found alone (or whose
    check failed) is acted on only with --include-unconfirmed. Everything left alone is
    listed with the reason.
    """
    from scanner.aws import remediate
    from scanner.aws.clients import KeyPair
    from scanner.aws.verify import pairs_in

    dry_run = not args.apply
    allow = _accounts(args)
    include_unconfirmed = getattr(args, "include_unconfirmed", False)
    # Every place a key ID was found: one valid pair anywhere proves the key live.
    seen: dict[str, list[tuple[Finding, Finding | None, Finding | None]]] = {}
    for key, secret, token in pairs_in(findings).values():
        seen.setdefault(key.secret.reveal(), []).append((key, secret, token))
    targets: list[remediate.Target] = []
    held: list[RemediationOutcome] = []
    for key_id, places in seen.items():
        account = next((k.account_id for k, _, _ in places if k.account_id), None)
        statuses = [k.verification for k, _, _ in places if k.verification is not None]
        if any(k.canary for k, _, _ in places) or any(v.status == "canary" for v in statuses):
            held.append(_held(key_id, account, "skipped", "a canary-token key: never sent to AWS", dry_run))
            continue
        if allow and account not in allow:
            # Decided offline, before any call: a key of another account signs nothing.
            held.append(_held(key_id, account, "skipped", f"account {account or 'unknown'} is not in --allow-account",
                              dry_run))
            continue
        valid = next(((k, s, t) for k, s, t in places
                      if k.verification is not None and k.verification.status == "valid" and s is not None), None)
        if valid is not None:
            k, s, t = valid
            verification = k.verification
            assert verification is not None and s is not None
            targets.append(remediate.Target(
                key_id, account_hint=account or verification.account, live=True, arn=verification.arn,
                pair=KeyPair(key_id, s.secret.reveal(), t.secret.reveal() if t else None),
            ))
            continue
        # A pair whose check failed (throttled, network) may be the one that signs: the key
        # is unconfirmed, not cleared, even if another place's secret was wrong.
        checked_unknown = any(s is not None and k.verification is not None and k.verification.status == "unknown"
                              for k, s, _ in places)
        invalid = next((v for v in statuses if v.status == "invalid"), None)
        if invalid is not None and not checked_unknown:
            held.append(_held(key_id, account, "not-compromised",
                              f"the secret found with it does not sign for it ({invalid.reason}): this leak does not "
                              f"compromise the key; {REVOKE_ADVICE}", dry_run))
            continue
        reasons = sorted({v.reason for v in statuses if v.reason} or {"no secret access key was found with it"})
        if include_unconfirmed:
            targets.append(remediate.Target(key_id, account_hint=account))
            continue
        held.append(_held(key_id, account, "unconfirmed",
                          f"not proven live ({'; '.join(reasons)}); --include-unconfirmed acts on it, or "
                          f"{REVOKE_ADVICE}", dry_run))
    audit = _audit(args)
    if not targets:
        if not held:
            print("keysweep: remediation: no access key IDs to remediate", file=sys.stderr)
        else:
            _print_outcomes([], [], args.apply, audit, held, args.show_secrets)
            for outcome in held:
                audit.append(phase="result", key_id=outcome.key_id, account=outcome.account, user=None, action="none",
                             result=outcome.result, detail=outcome.detail, dry_run=dry_run)
        return held
    if not dry_run:
        audit.check_writable()  # before any change: an unwritable log changes nothing
    mode: remediate.RemediationMode = args.remediate
    groups: list[tuple[KeyPair | None, list[remediate.Target]]]
    if args.use_leaked_key:
        groups = [(t.pair, [t]) for t in targets if t.pair is not None]
        held += [_held(t.key_id, t.account_hint, "unconfirmed", "--use-leaked-key needs the key's secret", dry_run)
                 for t in targets if t.pair is None]
    else:
        groups = [(None, targets)]
    plans: list[Plan] = []
    outcomes: list[RemediationOutcome] = []
    for leaked, group in groups:
        operator = remediate.connect(args.profile, args.region, leaked)
        group_plans = remediate.plan(group, mode, operator, quarantine=args.quarantine, allow_accounts=allow)
        plans += group_plans
        outcomes += remediate.apply(group_plans, operator, audit, dry_run=dry_run)
    for outcome in held:
        audit.append(phase="result", key_id=outcome.key_id, account=outcome.account, user=None, action="none",
                     result=outcome.result, detail=outcome.detail, dry_run=dry_run)
    _print_outcomes(plans, outcomes, args.apply, audit, held, args.show_secrets)
    return outcomes + held


def remediate_bedrock_findings(args: argparse.Namespace, findings: Sequence[Finding]) -> list[RemediationOutcome]:
    """Plan (and with --apply, carry out) remediation of every Bedrock API key the scan found.

    Only keys proven live are acted on (verified here if the scan did not verify them), unless
    --include-unconfirmed (the "Trust" rule for access keys, applied to Bedrock keys too).
    """
    found = [f for f in findings if f.bedrock is not None and not f.canary]
    if not found:
        return []
    from scanner.aws import bedrock, remediate

    include_unconfirmed = bool(getattr(args, "include_unconfirmed", False))
    long_term = [f for f in found if f.bedrock is not None and f.bedrock.term == "long-term"]
    if not include_unconfirmed and any(f.verification is None for f in long_term):
        checked = {f.fingerprint: f for f in bedrock.verify_findings(
            long_term, allow_accounts=_accounts(args), include_canary=args.verify_canary, region=args.region)}
        found = [checked.get(f.fingerprint, f) for f in found]
    # One credential can stand in several places with different secrets (reset keeps its public
    # name): it is proven live if any of them is accepted, whichever was found last.
    keys: dict[str, Finding] = {}
    for finding in found:
        label = finding.bedrock.name or finding.fingerprint if finding.bedrock is not None else finding.fingerprint
        kept = keys.get(label)
        if kept is None or (_bedrock_valid(finding) and not _bedrock_valid(kept)):
            keys[label] = finding
    targets = []
    unproven: list[remediate.Plan] = []
    for label, finding in keys.items():
        verification = finding.verification
        if verification is not None and verification.status in ("canary", "skipped"):
            continue
        facts = finding.bedrock
        assert facts is not None
        if facts.term == "short-term":
            if verification is not None and verification.status == "invalid":
                continue  # expired or refused by Bedrock: nothing left to revoke
            label = f"short-term Bedrock API key at {finding.path or finding.source}:{finding.line}"
        elif not include_unconfirmed and (verification is None or verification.status != "valid"):
            status = f"{verification.status}: {verification.reason}" if verification else "not verified"
            unproven.append(remediate.Plan(label, facts.account, None, None, (), refusal=(
                f"not proven live ({status}); keysweep acts only on keys Bedrock accepts "
                "(--include-unconfirmed to act anyway)")))
            continue
        targets.append(bedrock.Credential(label, facts=facts))
    if not targets and not unproven:
        return []
    operator = remediate.connect(args.profile, args.region)
    mode: remediate.RemediationMode = args.remediate
    plans = unproven + (bedrock.plan(targets, mode, operator, allow_accounts=_accounts(args)) if targets else [])
    outcomes = bedrock.apply(plans, operator, _audit(args), dry_run=not args.apply)
    _print_outcomes(plans, outcomes, args.apply, _audit(args))
    return outcomes


def _bedrock_valid(finding: Finding) -> bool:
    return finding.verification is not None and finding.verification.status == "valid"


SERVICE_CREDENTIAL_ID = lazy_compile(r"[A-Za-z0-9_]{20,128}")


def _revoke_bedrock(args: argparse.Namespace, credential_id: str) -> int:
    from scanner.aws import bedrock, remediate

    operator = remediate.connect(args.profile, args.region)
    mode: remediate.RemediationMode = "delete" if args.delete else "deactivate"
    plans = bedrock.plan([bedrock.Credential(credential_id, credential_id=credential_id)], mode, operator,
                         allow_accounts=_accounts(args))
    audit = _audit(args)
    return _revoke_result(plans, bedrock.apply(plans, operator, audit, dry_run=not args.apply), args.apply, audit)


def _revoke_result(plans: list[Plan], outcomes: list[RemediationOutcome], applied: bool, audit: AuditLog) -> int:
    """Print what revoke did (or plans) and choose its exit code: a failure or an uncertain
    call is 3, a refusal 2."""
    _print_outcomes(plans, outcomes, applied, audit)
    if any(o.result in ("failed", "uncertain", "interrupted") for o in outcomes):
        return EXIT_FAILURE
    if any(o.result == "refused" for o in outcomes):
        return EXIT_USAGE
    return EXIT_CLEAN


def revoke_command(args: argparse.Namespace) -> int:
    from scanner.aws import remediate

    key_id = args.key_id.strip()
    # An access key ID (AKIA…, ASIA…) or else a Bedrock API key's service-specific credential ID
    # (ListServiceSpecificCredentials shows it; such IDs start ACCA).
    if not (KEY_ID.fullmatch(key_id) and not key_id.startswith("ACCA")):
        if SERVICE_CREDENTIAL_ID.fullmatch(key_id):
            if getattr(args, "use_leaked_key", False):
                raise UsageError("--use-leaked-key is for access keys; a Bedrock API key cannot sign IAM calls")
            return _revoke_bedrock(args, key_id)
        raise UsageError(f"{bounded(key_id)} is not an AWS access key ID (AKIA… or ASIA… followed by 16 characters), "
                         "nor a Bedrock API key's service-specific credential ID (20 to 128 letters and digits)")
    if getattr(args, "use_leaked_key", False):
        raise UsageError("revoke knows only the key ID; --use-leaked-key needs the secret, so use it with scan --remediate")
    allow = _accounts(args)
    if allow:
        # Decided offline, before any call (the operator's identity included), as scan does.
        from scanner.engine.awskeys import account_id_from_key_id

        account = account_id_from_key_id(key_id)
        if account not in allow:
            why = f"account {account}" if account else "its account (unknown offline: an old-style key ID)"
            raise UsageError(f"{key_id}: {why} is not in --allow-account; nothing was sent to AWS")
    operator = remediate.connect(args.profile, args.region)
    mode: remediate.RemediationMode = "delete" if args.delete else "deactivate"
    plans = remediate.plan([remediate.Target(key_id)], mode, operator, quarantine=args.quarantine,
                           allow_accounts=allow)
    audit = _audit(args)
    return _revoke_result(plans, remediate.apply(plans, operator, audit, dry_run=not args.apply), args.apply, audit)

