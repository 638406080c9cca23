"""One scan, end to end: choose sources from the options, run them, merge their findings."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

from scanner.diagnostics import get_logger
from scanner.engine.rules import RuleSet
from scanner.errors import GitError, UsageError
from scanner.findings import Finding, ScanReport, Skipped, findings_from_matches
from scanner.pathfilter import PathFilter
from scanner.sources.git import Repository, StagedChange, display_path, find_repository

if TYPE_CHECKING:
    import regex

    # Each source is imported by the branch that uses it: the pre-commit hook loads
    # neither the work-tree walker nor the history workers.
    from scanner.sources.changes import StagedScan
    from scanner.sources.files import FileEntry
    from scanner.sources.history import HistoryScan

log = get_logger(__name__)

HistoryMode = Literal["default", "none", "only"]
DEFAULT_MAX_FILE_SIZE = 25 * 1024 * 1024

# Past this many workers a scan is bound by git and the disk, not by scanning.
MAX_DEFAULT_JOBS = 8


def default_jobs() -> int:
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_JOBS))


ProgressCallback = Callable[[int, int, int, int], None]  # objects done, objects total, bytes done, bytes total


@dataclass(frozen=True)
class ScanOptions:
    """What one scan reads and how, from the command line and configuration."""

    target: Path
    history: HistoryMode = "default"
    all_objects: bool = False
    staged: bool = False
    revision_range: str | None = None
    push_revisions: tuple[str, ...] = ()  # git log arguments for a pre-push scan
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    jobs: int = field(default_factory=default_jobs)
    excludes: PathFilter = field(default_factory=PathFilter)
    allow_values: tuple[regex.Pattern[str], ...] = ()
    progress: ProgressCallback | None = None
    # With staged: the files pre-commit passed. All staged changes: only their added lines;
    # any that is not (pre-commit --all-files or --files): the files on disk, whole.
    files: tuple[str, ...] = ()


@dataclass
class _Tally:
    """The findings and counts of one scan, as its sources add to them."""

    findings: list[Finding] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    switched_off: list[tuple[str, str]] = field(default_factory=list)  # rules switched off: (event, where)
    files: int = 0
    blobs: int = 0
    commits: int = 0
    bytes: int = 0


def check_target(target: Path) -> None:
    """A target that cannot be read is the user's error (exit 2), found before any git runs."""
    if not target.exists():
        raise UsageError(f"{target}: no such file or folder")
    needed = os.R_OK | os.X_OK if target.is_dir() else os.R_OK
    if not os.access(target, needed):
        raise UsageError(f"{target}: permission denied")
    git_dir = target / ".git" if target.is_dir() else None
    if git_dir is not None and git_dir.exists() and not os.access(git_dir, os.R_OK | (os.X_OK if git_dir.is_dir() else 0)):
        # Scanning it as a plain folder would report "no secrets found" without reading history.
        raise UsageError(f"{git_dir}: permission denied: the repository's history cannot be read")
    objects = git_dir / "objects" if git_dir is not None and git_dir.is_dir() else None
    if objects is not None and objects.exists() and not os.access(objects, os.R_OK | os.X_OK):
        # git then says "not a git repository", and the folder would be scanned as plain files.
        raise UsageError(f"{objects}: permission denied: the repository's history cannot be read")


def check_revisions(revisions: Iterable[str]) -> None:
    """A revision beginning with '-' would reach git as an option (--output=FILE writes files)."""
    for revision in revisions:
        if revision.startswith("-"):
            raise UsageError(f"revision {revision!r} begins with '-': not a revision")


def run_scan(options: ScanOptions, ruleset: RuleSet) -> ScanReport:
    started = time.monotonic()
    target = options.target
    check_target(target)
    tally = _Tally()
    revisions = options.push_revisions or ((options.revision_range,) if options.revision_range is not None else ())
    git_mode = options.staged or bool(revisions) or options.history == "only" or options.all_objects
    if options.all_objects and (options.history == "none" or options.staged or revisions):
        raise UsageError("--all-objects widens a full-history scan; it does not combine with "
                         "--no-history, --staged, --range, --since or --pre-push")
    if options.revision_range is not None:
        check_revisions(options.revision_range.split(".."))
    repo = None
    head: str | None = None
    subtree = ""  # a folder inside a repository: work tree and history limited to it (git log -- sub)
    if options.history != "none" or options.staged:
        try:
            repo = find_repository(target, search_parents=git_mode or (target.is_dir() and options.history == "default"))
        except GitError:
            if git_mode:
                raise
            # A repository above the folder that git refuses: the folder is still scanned as files.
            repo = find_repository(target, search_parents=False)
        subtree = _subtree(repo, target) if not (options.staged or revisions) else ""
        if repo is None and git_mode:
            raise UsageError(f"{target}: not a git repository (history, --staged and --range need one)")
        if repo is not None and options.staged and repo.worktree is None:
            raise UsageError(f"{target}: a bare repository has no index: --staged needs a work tree")
    staged: list[StagedChange] | None = None
    if repo is not None and options.staged:
        from scanner.sources.git import staged_changes

        # Files, as pre-commit passes them: a folder among them was dropped by the files-on-disk
        # branch, which then said "scanned whole" over nothing and exited 0.
        for name in options.files:
            if os.path.isdir(name) and not os.path.islink(name):  # a link is a blob to git
                raise UsageError(f"{_shown(name)}: a folder; with --staged, FILE arguments name files (scan the "
                                 "folder without --staged, or name the files in it)")

        # Read once: whether the files given are staged changes, and what the staged scan reads.
        staged = staged_changes(repo)
    if repo is None:
        scan_worktree(target, options, ruleset, tally)
    elif (options.staged and options.files and repo.worktree is not None and staged is not None
          and not _all_staged(repo, options.files, staged)):
        tally.warnings.append(f"{len(options.files)} file(s) given are not all staged changes "
                              "(pre-commit --all-files or --files): scanned whole, as they are on disk")
        scan_named_files(repo.worktree, options, ruleset, tally)
    elif options.staged:
        from scanner.sources.changes import scan_staged

        log.info("scanning the lines the staged change adds")

        _merge(tally, scan_staged(repo, ruleset, options.max_file_size,
                                  paths=frozenset(map(_shown, _repo_relative(repo.worktree, options.files)))
                                  if options.files else None,
                                  changes=staged))
    elif revisions:
        from scanner.sources.changes import scan_range

        log.info("scanning the commits of %d revision argument(s)", len(revisions))

        _merge(tally, scan_range(repo, ruleset, revisions, max_size=options.max_file_size,
                                 jobs=options.jobs, progress=options.progress))
    else:
        from scanner.sources.history import scan_history

        log.info("scanning history%s%s with %d job(s)", " (all objects)" if options.all_objects else "",
                 " of a subfolder" if subtree else "", options.jobs)
        phase = time.monotonic()
        if subtree:
            # Only the folder's history is read (git log -- ':(top,literal)sub'), not every object.
            from scanner.sources.subtree import scan_subtree_history

            if options.all_objects:
                tally.warnings.append("--all-objects: objects no ref reaches have no path, so a scan limited to "
                                      "a folder leaves them out (scan the repository's top folder for them)")
            history = scan_subtree_history(repo, ruleset, subtree, max_size=options.max_file_size,
                                           jobs=options.jobs, progress=options.progress)
        else:
            history = scan_history(repo, ruleset, all_objects=options.all_objects, max_size=options.max_file_size,
                                   jobs=options.jobs, progress=options.progress)
        log.info("history: %d blob(s), %d commit(s), %.1f MiB in %.2fs", history.blobs, history.commits,
                 history.bytes / 2**20, time.monotonic() - phase)
        if subtree:
            # git's pathspec already limits the changes; kept as the definition of the scope.
            history.findings[:] = [f for f in history.findings if f.path is not None and f.path.startswith(subtree)]
        worktree_secrets: set[str] = set()
        if options.history != "only" and repo.worktree is not None:
            scan_worktree(repo.worktree / subtree if subtree else repo.worktree, options, ruleset, tally,
                          prefix=subtree)
            worktree_secrets = {f.secret.digest for f in tally.findings}
            # A secret that history already reports (same rule, secret and path) is
            # reported once, with its commit, not again as a file on disk.
            known = {f.fingerprint for f in history.findings}
            tally.findings = [f for f in tally.findings if f.fingerprint not in known]
        _merge(tally, history)
        head = _add_whereabouts(repo, tally, history.secrets_by_blob, worktree_secrets)
    # An excluded path hides a finding, not its secret: its value is still redacted elsewhere.
    excluded = [f.secret for f in tally.findings if f.path is not None and options.excludes.excluded(f.path)]
    tally.findings = [f for f in tally.findings if f.path is None or not options.excludes.excluded(f.path)]
    findings = [f for f in tally.findings if not _value_allowed(f, options.allow_values)]
    if excluded:
        tally.warnings.append(f"{len(excluded)} finding(s) not reported: their paths are excluded "
                              "(the configuration's exclude or --exclude)")
    if len(findings) < len(tally.findings):
        # Said, not hidden: the configuration may be the repository's own, and a hostile
        # commit's `allow-values: ['.']` would otherwise silence the scan without a word.
        tally.warnings.append(f"{len(tally.findings) - len(findings)} finding(s) not reported: their values match "
                              "the configuration's allow-values")
    from scanner.engine.rules import switched_off_messages
    from scanner.redact import redact_report

    # Rules switched off in the work tree's files, then in this process on a text no source
    # named (staged files).
    tally.errors += switched_off_messages(ruleset, [*tally.switched_off,
                                                    *((event, "a scanned text") for event in ruleset.health.take())])

    return redact_report(ScanReport(
        findings=tuple(findings), skipped=tuple(tally.skipped), warnings=tuple(tally.warnings), errors=tuple(tally.errors),
        files_scanned=tally.files, blobs_scanned=tally.blobs, commits_scanned=tally.commits,
        bytes_scanned=tally.bytes, duration_seconds=time.monotonic() - started,
        target=f"{repo.worktree} (work tree and history limited to {subtree})" if subtree and repo else str(target),
        head=head, hidden_by_allow_values=len(tally.findings) - len(findings), hidden_by_exclude=len(excluded),
    ), also=excluded)


def _add_whereabouts(repo: Repository, tally: _Tally, secrets_by_blob: dict[str, frozenset[str]],
                     worktree_secrets: set[str]) -> str | None:
    """Mark where each finding still lives (in_head, refs); returns HEAD's name for the report."""
    if not tally.findings:
        return None
    from scanner.sources.whereabouts import add_whereabouts, head_name

    started = time.monotonic()
    try:
        tally.findings = add_whereabouts(repo, tally.findings, secrets_by_blob=secrets_by_blob,
                                         worktree_secrets=worktree_secrets)
        head = head_name(repo)
    except GitError as exc:
        # Not worth failing the scan: the findings stand, only where they live is unknown.
        tally.warnings.append(f"cannot tell which refs reach the findings' commits: {exc}")
        return None
    log.info("refs and HEAD looked up in %.2fs", time.monotonic() - started)
    return head


def _subtree(repo: Repository | None, target: Path) -> str:
    """``target``'s path inside the repository's work tree, '/'-terminated; '' for its root."""
    if repo is None or repo.worktree is None or not target.is_dir():
        return ""
    try:
        inside = Path(os.path.realpath(target)).relative_to(os.path.realpath(repo.worktree)).as_posix()
    except ValueError:
        return ""
    return "" if inside == "." else inside + "/"


def scan_stream(stream: BinaryIO, name: str, options: ScanOptions, ruleset: RuleSet) -> ScanReport:
    """Standard input (``keysweep scan -``), scanned as one file called ``name``."""
    from scanner.engine.detect import as_scannable, detect
    from scanner.engine.rules import switched_off_messages
    from scanner.redact import redact_report

    started = time.monotonic()
    tally = _Tally()
    data = stream.read(options.max_file_size + 1)  # bounded: input may never end
    text = as_scannable(data) if len(data) <= options.max_file_size else None
    if len(data) > options.max_file_size:
        tally.skipped.append(Skipped(name, f"larger than the {options.max_file_size}-byte limit"))
    elif text is not None:
        tally.files, tally.bytes = 1, len(data)
        tally.findings += findings_from_matches(tuple(detect(text, ruleset)), path=name, source="file")
        tally.errors += switched_off_messages(ruleset, [(event, name) for event in ruleset.health.take()])
    findings = [f for f in tally.findings if not _value_allowed(f, options.allow_values)]
    allowed = len(tally.findings) - len(findings)
    return redact_report(ScanReport(
        findings=tuple(findings), skipped=tuple(tally.skipped),
        warnings=(f"{allowed} finding(s) not reported: their values match the configuration's allow-values",)
        if allowed else (), errors=tuple(tally.errors),
        files_scanned=tally.files, blobs_scanned=0, commits_scanned=0, bytes_scanned=tally.bytes,
        duration_seconds=time.monotonic() - started, target="standard input", hidden_by_allow_values=allowed,
    ))


def _merge(tally: _Tally, scan: HistoryScan | StagedScan) -> None:
    tally.findings += scan.findings
    tally.warnings += scan.warnings
    tally.errors += scan.errors
    tally.skipped += [Skipped(where, reason) for where, reason in scan.skipped]
    tally.blobs += scan.blobs
    tally.commits += scan.commits
    tally.bytes += scan.bytes


def _value_allowed(finding: Finding, allow: Iterable[regex.Pattern[str]]) -> bool:
    """Whether a configured ``allow-values`` pattern matches the value. The configuration may
    be the repository's own (hostile): a pattern that backtracks past the time budget allows
    nothing, so the finding is reported rather than the scan held up."""
    from scanner.engine.detect import PATTERN_TIMEOUT

    for pattern in allow:
        try:
            if pattern.search(finding.secret.reveal(), timeout=PATTERN_TIMEOUT):
                return True
        except (TimeoutError, MemoryError, RecursionError):
            continue
    return False


def _repo_relative(root: Path | None, names: Iterable[str]) -> list[str]:
    """Names as pre-commit passes them (relative to the current folder) as repository paths."""
    base = Path.cwd()
    out = []
    for name in names:
        absolute = Path(os.path.abspath(base / name))
        try:
            out.append(absolute.relative_to(root).as_posix() if root is not None else name)
        except ValueError:
            raise UsageError(f"{name}: not inside the repository {root}") from None
    return out


def _all_staged(repo: Repository, files: Iterable[str], changes: Iterable[StagedChange]) -> bool:
    staged = {change.path for change in changes}
    return all(_shown(path) in staged for path in _repo_relative(repo.worktree, files))


def _shown(name: str) -> str:
    """A path as git's listings and the reports show it: a name that is not UTF-8 reaches
    Python (from the command line, from the disk) as surrogates, and is shown escaped
    (sources.git.display_path). Compared with a staged change's path, and reported."""
    return display_path(os.fsencode(name))


def scan_named_files(root: Path, options: ScanOptions, ruleset: RuleSet, tally: _Tally) -> None:
    """The files named (each whole, as on disk); symlinks and folders are not followed."""
    import stat

    from scanner.sources.files import FileEntry

    entries = []
    for relative in _repo_relative(root, options.files):
        shown = _shown(relative)
        if options.excludes.excluded(shown):
            continue
        try:
            info = os.lstat(root / relative)
        except OSError as exc:
            tally.skipped.append(Skipped(shown, f"cannot be read: {exc.strerror or exc}"))
            continue
        if stat.S_ISREG(info.st_mode):
            entries.append(FileEntry(str(root / relative), shown, info.st_size))
    _scan_entries(entries, options, ruleset, tally)


def scan_worktree(root: Path, options: ScanOptions, ruleset: RuleSet, tally: _Tally, *, prefix: str = "") -> None:
    from scanner.sources.files import FileEntry, WalkProblem, walk

    started, files, size = time.monotonic(), tally.files, tally.bytes

    entries: list[FileEntry] = []
    for item in walk(root, options.excludes):
        if isinstance(item, WalkProblem):
            tally.skipped.append(Skipped(item.relative, f"cannot be read: {item.reason}"))
        else:
            entries.append(item)
    log.debug("work tree: %d file(s) listed in %.2fs", len(entries), time.monotonic() - started)
    _scan_entries(entries, options, ruleset, tally, prefix=prefix)
    log.info("work tree: %d file(s), %.1f MiB in %.2fs", tally.files - files, (tally.bytes - size) / 2**20,
             time.monotonic() - started)


def _scan_entries(entries: list[FileEntry], options: ScanOptions, ruleset: RuleSet, tally: _Tally, *,
                  prefix: str = "") -> None:
    from scanner.sources.files import scan_files

    for result in scan_files(entries, ruleset, options.max_file_size, options.jobs):
        tally.switched_off += [(event, result.relative) for event in result.timed_out]
        if result.skipped is not None:
            if result.skipped != "binary":
                tally.skipped.append(Skipped(result.relative, result.skipped))
            continue
        tally.files += 1
        tally.bytes += result.size
        tally.findings += findings_from_matches(result.matches, path=prefix + result.relative, source="file")
