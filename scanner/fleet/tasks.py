"""The work a Dask worker does, as plain functions of picklable values (no Dask import
here: the same functions run in a plain loop, and in tests without a cluster).

One task per repository normally lists its objects, reads the ones the state has not
seen, and attributes the findings: the three steps of scanner.sources.history. A
repository with much to read comes back as a ``RepoSplit`` instead, and the client fans
its object slices out as tasks of their own, then one attribution task.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from scanner.engine.rules import RuleSet
from scanner.errors import GitError, KeysweepError
from scanner.fleet.refs import refs_state
from scanner.fleet.targets import Target, open_repository
from scanner.sources import git, history
from scanner.sources.git import ObjectInfo, Repository
from scanner.sources.history import HistoryScan, ObjectListing, ObjectMatches, ObjectScan, PackedObjects

# A repository with more than this to read is split over the workers (the history scan's
# own threshold for going parallel).
SPLIT_BYTES = history.PARALLEL_MIN_BYTES
SLICES_PER_WORKER = 4


@dataclass(frozen=True)
class AuditSettings:
    cache: Path | None  # where URL targets are mirrored (None: the worker's user cache)
    max_size: int
    split_slices: int  # how many slices a large repository is cut into (1: never split)
    split_bytes: int = SPLIT_BYTES
    rules: str | None = None  # the ruleset's digest: a worker thread keeps one ruleset per digest (shared_ruleset)


@dataclass(frozen=True)
class Known:
    """What the state remembers of one repository (empty for --full or a first audit)."""

    scanned: frozenset[str] = frozenset()  # objects already read with the same rules
    finding_objects: frozenset[str] = frozenset()  # objects holding open findings: re-read to report them
    refs: str | None = None  # refs digest at the last audit


@dataclass
class RepoDone:
    name: str
    history: HistoryScan | None  # None: nothing changed; findings are rebuilt from the state
    recheck: dict[str, ObjectMatches]  # matches of the re-read finding objects (when unchanged)
    new_objects: list[str]  # objects read for the first time, to remember
    objects: int  # objects read that the state had not seen
    rechecked: int  # objects re-read because they hold known findings
    bytes: int
    refs: str
    seconds: float
    # Findings rebuilt from the state alone, their objects not read: a re-audit in which
    # nothing moved and no value is needed (command.audit_targets decides).
    from_state: bool = False


@dataclass
class RepoSplit:
    name: str
    listing: ObjectListing  # what attribution needs: the objects to read are in the slices
    slices: list[PackedObjects]
    new_objects: list[str]
    rechecked: int
    refs: str
    seconds: float
    log: str | None = None  # the log walk started beside the slices, on this worker (started_log)


# The split path's log walk, started by the task that splits a repository and taken by its
# attribution task when that runs on the same worker process (the client asks for it): the
# walk (about 5 s of git on aws-cli) runs while the slices are scanned, as a plain history
# scan's does. Anywhere else the attribution walks the log itself. A few are kept at most:
# an attribution that ran elsewhere leaves its walk here, discarded when newer ones come.
MAX_STARTED_LOGS = 4
_started_logs: dict[str, git.Prefetch] = {}
_started_lock = threading.Lock()


def keep_log(log: git.Prefetch) -> str:
    import uuid

    token = uuid.uuid4().hex
    with _started_lock:
        _started_logs[token] = log
        stale = [_started_logs.pop(next(iter(_started_logs))) for _ in range(len(_started_logs) - MAX_STARTED_LOGS)]
    for old in stale:
        # In the background: the walk may still be running, and its end is awaited.
        threading.Thread(target=_discard, args=(old,), daemon=True).start()
    return token


def started_log(token: str | None) -> git.Prefetch | None:
    if token is None:
        return None
    with _started_lock:
        return _started_logs.pop(token, None)


def drop_started_log(token: str) -> bool:
    """Run on a worker by the client once an attribution is over: a walk it did not take
    (it ran on another worker) stops holding git and a temporary file here. True when one
    was left."""
    log = started_log(token)
    if log is None:
        return False
    threading.Thread(target=_discard, args=(log,), daemon=True).start()
    return True


def _discard(log: git.Prefetch) -> None:
    chunks = log.chunks()
    try:
        next(chunks, None)  # waits for git, then the temporary file is closed
    except GitError:
        pass
    finally:
        close = getattr(chunks, "close", None)  # a generator: its own cleanup closes the file
        if close is not None:
            close()


@dataclass
class SliceResult:
    scan: ObjectScan = field(default_factory=ObjectScan)
    seconds: float = 0.0


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Reading history allocates one buffer per object, often megabytes: kept in the heap up to
# this size, as glibc's own adaptive threshold would (its ceiling on 64-bit systems).
_MMAP_THRESHOLD = 32 * 2**20
_TRIM_THRESHOLD = 2 * _MMAP_THRESHOLD


def undo_trim_threshold() -> None:
    """Dask's nanny starts every worker with MALLOC_TRIM_THRESHOLD_=65536 (its
    ``distributed.nanny.pre-spawn-environ``). That fixes glibc's thresholds for good: every
    allocation over 128 KiB is mmapped and unmapped again, and each of its pages faults in
    fresh. Measured on aws-cli's large blobs: 7x the page faults in Python and 3x in
    ``git cat-file`` (which inherits the variable), 2-3x their system time; the main cause
    of a worker scanning slower than a plain process. Undone once per worker process: the
    variable is dropped for the git processes it starts, and glibc is given thresholds an
    ordinary process would reach by itself. Does nothing where the variable is not set."""
    if os.environ.pop("MALLOC_TRIM_THRESHOLD_", None) is None or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
    except (OSError, AttributeError):
        pass  # not glibc: the variable meant nothing to this process either


_worker_rules = threading.local()


def shared_ruleset(ruleset: RuleSet, settings: AuditSettings) -> RuleSet:
    """The ruleset every task of this worker thread uses, the first one it was sent.

    Each task arrives with its own unpickled copy, and a fresh copy builds its Hyperscan
    prefilter again after 4 MiB (~0.1 s of CPU): measured on the 50 generated repositories,
    that made a worker spend half its time compiling. Per thread (a prefilter's scratch
    space is not for concurrent use), and per task its health is the one sent: a rule that
    timed out on one repository is not left disabled for the next."""
    if settings.rules is None:
        return ruleset
    cached: tuple[str, RuleSet] | None = getattr(_worker_rules, "current", None)
    if cached is None or cached[0] != settings.rules:
        _worker_rules.current = (settings.rules, ruleset)
        return ruleset
    kept = cached[1]
    kept.health.disabled = set(ruleset.health.disabled)
    kept.health.events = []
    return kept


def recheck(repo: Repository, name: str, known: Known, refs: str, started: float, ruleset: RuleSet) -> RepoDone:
    """A repository whose refs all stand where they stood: the reachable history is the
    same, so are the findings and their attribution, kept in the state. Objects no ref
    reaches do not count (an audit reads history, not --all-objects), so the object database
    is not even listed. Only the objects holding findings are read again, for the secrets
    the state never stores."""
    holders = [ObjectInfo(sha, "blob", 0) for sha in sorted(known.finding_objects)]
    found: dict[str, ObjectMatches] = {}
    read = 0
    if holders:
        scan = history.scan_slice(repo, holders, ruleset)
        if scan.problems:
            raise GitError(unreadable_holders(scan.problems))
        found, read = scan.found, scan.bytes
    return RepoDone(name, None, found, [], 0, len(holders), read, refs, time.monotonic() - started)


def unreadable_holders(problems: Sequence[tuple[str, str]]) -> str:
    """An object holding a known finding that cannot be read, while every ref stands where
    it stood, is damage, not a finding gone: the repository is reported with this error and
    its findings stay open in the state."""
    sha, problem = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return (f"object {sha}{more}, holding findings of an earlier audit, could not be read ({problem}): "
            "the repository is damaged")


def _to_read(listing: ObjectListing, known: Known) -> tuple[list[ObjectInfo], list[str], int]:
    """Objects to read in pack order: the ones never read, and the ones holding findings."""
    to_read: list[ObjectInfo] = []
    new: list[str] = []
    rechecked = 0
    for obj in listing.to_scan:
        if obj.sha not in known.scanned:
            to_read.append(obj)
            new.append(obj.sha)
        elif obj.sha in known.finding_objects:
            to_read.append(obj)
            rechecked += 1
    return to_read, new, rechecked


def audit_repository(target: Target, known: Known, settings: AuditSettings, ruleset: RuleSet) -> RepoDone | RepoSplit:
    started = time.monotonic()
    undo_trim_threshold()
    ruleset = shared_ruleset(ruleset, settings)
    repo = open_repository(target, settings.cache, refresh=True)
    refs = refs_state(repo)
    if known.refs is not None and refs == known.refs:
        # Usually decided by the client before any task (local targets); a URL's mirror is
        # only fetched here, on the worker.
        return recheck(repo, target.name, known, refs, started, ruleset)
    listing = history.list_history(repo, settings.max_size)
    to_read, new, rechecked = _to_read(listing, known)
    total = sum(o.size for o in to_read)
    if settings.split_slices > 1 and total >= settings.split_bytes:
        # More slices than workers: the other repositories' tasks fill the gaps, and no
        # worker is left with the one long slice at the end.
        count = min(SLICES_PER_WORKER * settings.split_slices, max(2, total // settings.split_bytes))
        slices = [PackedObjects.pack(part) for part in history.byte_slices(to_read, count)]
        # The attribution never looks at the objects to scan, nor (outside --all-objects) the commits.
        attribution = replace(listing, to_scan=[], commit_objects=[])
        token = keep_log(history.start_log(repo, listing, all_objects=False))
        return RepoSplit(target.name, attribution, slices, new, rechecked, refs, time.monotonic() - started, token)
    log = history.start_log(repo, listing, all_objects=False)
    scanned = history.scan_slice(repo, to_read, ruleset)
    result = history.attribute(repo, listing, scanned, log.chunks(), all_objects=False, max_size=settings.max_size)
    return _done(target.name, with_whereabouts(repo, result), scanned, listing, new, rechecked, refs,
                 time.monotonic() - started)


@dataclass
class BatchItem:
    """One repository of a batch: what its audit returned, or why it failed."""

    name: str
    result: RepoDone | RepoSplit | None
    error: str | None = None


def error_text(exc: BaseException) -> str:
    """A task's failure as the report names it: keysweep's own message, or the exception's type and text."""
    return str(exc) if isinstance(exc, KeysweepError) else f"{type(exc).__name__}: {exc}"


def audit_batch(targets: Sequence[Target], knowns: Sequence[Known], settings: AuditSettings, ruleset: RuleSet,
                attempts: int = 1) -> list[BatchItem]:
    """Several small repositories in one task: a Dask task costs ~6 ms of CPU on the client,
    scheduler and worker, against ~70-90 ms of work for a small repository. Each repository
    keeps its own outcome: one that fails (a corrupt pack) is that item's error, tried
    ``attempts`` times as Dask would have retried a task of its own, and the others are still
    audited. A worker lost mid-batch makes Dask run the whole batch again (it is a function
    of its arguments only), and the client takes each repository's result once."""
    items: list[BatchItem] = []
    for target, known in zip(targets, knowns, strict=True):
        for attempt in range(attempts):
            try:
                items.append(BatchItem(target.name, audit_repository(target, known, settings, ruleset)))
                break
            except Exception as exc:  # noqa: BLE001 - this repository's error, not the batch's
                if attempt == attempts - 1:
                    items.append(BatchItem(target.name, None, error_text(exc)))
    return items


def with_whereabouts(repo: Repository, result: HistoryScan) -> HistoryScan:
    """The findings with where they still live, as ``scan`` reports them: ``in_head`` (the
    value is in a blob of HEAD's tree: an audit reads history, never a work tree) and the
    refs reaching each finding's commit. Asked on the worker, which has the repository; a
    re-audit in which no ref moved takes them from the state (they cannot have changed)."""
    if not result.findings:
        return result
    from scanner.sources.whereabouts import add_whereabouts

    try:
        result.findings = add_whereabouts(repo, result.findings, secrets_by_blob=result.secrets_by_blob,
                                          worktree_secrets=set())
    except GitError as exc:
        # The findings stand; only where they live is unknown (as for scan).
        result.warnings.append(f"cannot tell which refs reach the findings' commits: {exc}")
    return result


def _done(name: str, result: HistoryScan, scanned: ObjectScan, listing: ObjectListing, new: list[str],
          rechecked: int, refs: str, seconds: float) -> RepoDone:
    # An object that could not be read is not remembered as read, and neither are the refs:
    # the next audit lists the repository again and retries it. (Blobs missing altogether,
    # as in a partial clone, do not count: no retry brings them without a fetch, and a
    # fetch that changes nothing else is read by --full.)
    failed = {sha for sha, _ in scanned.problems}
    remembered = [sha for sha in new if sha not in failed]
    damaged = bool(failed) or bool(listing.unreadable)
    return RepoDone(name, result, {}, remembered, len(new), rechecked, scanned.bytes, "" if damaged else refs, seconds)


def scan_slice_task(target: Target, settings: AuditSettings, objects: PackedObjects | Sequence[ObjectInfo],
                    ruleset: RuleSet) -> SliceResult:
    started = time.monotonic()
    undo_trim_threshold()
    ruleset = shared_ruleset(ruleset, settings)
    repo = open_repository(target, settings.cache, refresh=False)
    scan = history.scan_slice(repo, objects.unpack() if isinstance(objects, PackedObjects) else objects, ruleset)
    return SliceResult(scan, time.monotonic() - started)


def attribute_task(target: Target, settings: AuditSettings, split: RepoSplit, *parts: SliceResult) -> RepoDone:
    started = time.monotonic()
    undo_trim_threshold()
    repo = open_repository(target, settings.cache, refresh=False)
    scanned = ObjectScan()
    for part in parts:
        scanned.found.update(part.scan.found)
        scanned.blobs += part.scan.blobs
        scanned.commits += part.scan.commits
        scanned.bytes += part.scan.bytes
        scanned.problems += part.scan.problems
    log = started_log(split.log) or history.start_log(repo, split.listing, all_objects=False)
    result = history.attribute(repo, split.listing, scanned, log.chunks(), all_objects=False,
                               max_size=settings.max_size)
    result = with_whereabouts(repo, result)
    seconds = split.seconds + sum(p.seconds for p in parts) + time.monotonic() - started
    return _done(target.name, result, scanned, split.listing, split.new_objects, split.rechecked, split.refs, seconds)
