"""keysweep audit: many repositories on a Dask cluster (an embedded LocalCluster by default),
incrementally against a state file, merged into one report."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import logging
import os
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from scanner.baseline import Baseline, load_baseline
from scanner.diagnostics import get_logger
from scanner.engine.rules import RuleSet, load_ruleset
from scanner.errors import GitError, KeysweepError, UsageError
from scanner.exitcodes import EXIT_CLEAN, EXIT_FAILURE, EXIT_FINDINGS
from scanner.findings import Finding, ScanReport, Severity, Skipped, evolve
from scanner.fleet import state as state_module
from scanner.fleet.state import AuditState, StoredFinding, rebuild, rules_digest
from scanner.fleet.targets import Target, estimated_size, expand_targets, read_targets_file
from scanner.fleet.refs import git_dir_of, local_refs_state
from scanner.fleet.tasks import (AuditSettings, BatchItem, Known, RepoDone, RepoSplit, attribute_task, audit_batch,
                                 audit_repository, drop_started_log, error_text, scan_slice_task, unreadable_holders)
from scanner.reporters import ReportFormat, render
from scanner.scan import DEFAULT_MAX_FILE_SIZE
from scanner.sources.git import GitObject, Repository, read_objects
from scanner.sources.history import ObjectMatches

if TYPE_CHECKING:
    from scanner.reporters.html import HtmlContext

log = get_logger(__name__)

INSTALL_HINT = "keysweep audit runs on Dask: install it with  pip install 'keysweep[fleet]'"
TASK_RETRIES = 2  # a failed task (clone error, git died) is tried this many more times
CONNECT_TIMEOUT = "20s"
SEVERITIES = ("low", "medium", "high", "critical")


@dataclass
class RepoResult:
    target: Target
    done: RepoDone | None = None
    error: str | None = None
    findings: list[Finding] = field(default_factory=list)
    stored: list[StoredFinding] = field(default_factory=list)


Progress = Callable[[int, int, int], None]  # repositories done, total, bytes read so far


def dask_log_level() -> int:
    from scanner import diagnostics

    return logging.WARNING if diagnostics.level() <= diagnostics.DEBUG else logging.CRITICAL


def _silence_dask() -> None:
    # A worker lost mid-audit is handled (its tasks run again): Dask's own log lines
    # about it would only alarm a user reading the report. With -vv they are shown.
    level = dask_log_level()
    for name in ("distributed", "dask", "tornado", "asyncio", "bokeh"):
        logging.getLogger(name).setLevel(level)


def run_fleet(client: Any, targets: Sequence[Target], knowns: dict[str, Known], settings: AuditSettings,
              ruleset: RuleSet, progress: Progress | None = None) -> dict[str, RepoResult]:
    """Every target through the cluster behind ``client``; a failed repository is a result
    with its error, never an exception that loses the others."""
    return collect_fleet(client, submit_fleet(client, targets, knowns, settings, ruleset), ruleset, progress)


@dataclass
class Submitted:
    targets: list[Target]
    owner: dict[str, list[Target]]  # task key -> the repositories it audits (several for a batch)
    pending: Any  # distributed.as_completed
    run: str
    settings: AuditSettings  # as sent (with the rules digest)
    ruleset: RuleSet
    knowns: dict[str, Known] = field(default_factory=dict)
    number: dict[str, int] = field(default_factory=dict)  # repository -> its index, for task keys


# A repository whose packs are smaller than this goes into a batch with others of its size,
# up to this many bytes of packs per batch (a generated 4 MB repository packs to ~1.3 MB and
# takes ~80 ms of CPU to audit: three of them make a task of a quarter second).
BATCH_BYTES = 4 * 2**20
MAX_BATCH = 8  # repositories in one batch at most: progress and retries stay fine-grained
TASKS_PER_WORKER = 4  # batches are kept small enough that each worker gets at least this many tasks


def plan_batches(targets: Sequence[Target], sizes: dict[str, int], workers: int) -> list[list[Target]]:
    """The tasks to submit, largest first. A URL (its clone's cost is unknown, and a failed
    clone is retried by Dask) and a repository with BATCH_BYTES of packs or more are a task
    each; smaller local repositories are grouped, neighbours in size order, up to BATCH_BYTES
    of packs and MAX_BATCH repositories, and never so few batches that a worker would idle."""
    ordered = sorted(targets, key=lambda t: -sizes[t.name])  # stable: equal sizes keep their order
    alone = [[t] for t in ordered if t.url is not None or sizes[t.name] >= BATCH_BYTES]
    small = [t for t in ordered if t.url is None and sizes[t.name] < BATCH_BYTES]
    most = max(1, min(MAX_BATCH, -(-len(small) // (TASKS_PER_WORKER * max(1, workers)))))
    batches: list[list[Target]] = []
    current: list[Target] = []
    held = 0
    for target in small:
        if current and (len(current) >= most or held + sizes[target.name] > BATCH_BYTES):
            batches.append(current)
            current, held = [], 0
        current.append(target)
        held += sizes[target.name]
    if current:
        batches.append(current)
    return alone + batches


def submit_fleet(client: Any, targets: Sequence[Target], knowns: dict[str, Known], settings: AuditSettings,
                 ruleset: RuleSet, *, batch: bool = True) -> Submitted:
    from distributed import as_completed

    if settings.rules is None:
        settings = replace(settings, rules=rules_digest(ruleset))
    # The ruleset is passed with each task (8 KB), not scattered: scattered data lives only
    # on workers and cannot be recomputed, so a worker lost at the wrong moment would fail
    # every repository.
    run = uuid.uuid4().hex[:8]
    submitted = Submitted(list(targets), {}, as_completed(), run, settings, ruleset, knowns,
                          {t.name: n for n, t in enumerate(targets)})
    sizes = {t.name: estimated_size(t) for t in targets}
    # Dask runs tasks of equal priority in submission order: the largest go first.
    tasks = plan_batches(targets, sizes, worker_count(client)) if batch else \
        [[t] for t in sorted(targets, key=lambda t: -sizes[t.name])]
    for group in tasks:
        _submit(client, submitted, group)
    return submitted


def _submit(client: Any, submitted: Submitted, group: list[Target]) -> None:
    knowns, settings, ruleset = submitted.knowns, submitted.settings, submitted.ruleset
    first = submitted.number[group[0].name]
    if len(group) == 1:
        target = group[0]
        future = client.submit(audit_repository, target, knowns.get(target.name, Known()), settings, ruleset,
                               key=f"keysweep-audit-{submitted.run}-{first}", retries=TASK_RETRIES, pure=False)
    else:
        future = client.submit(audit_batch, group, [knowns.get(t.name, Known()) for t in group], settings, ruleset,
                               1 + TASK_RETRIES, key=f"keysweep-batch-{submitted.run}-{first}",
                               retries=TASK_RETRIES, pure=False)
    submitted.owner[future.key] = group
    submitted.pending.add(future)


def collect_fleet(client: Any, submitted: Submitted, ruleset: RuleSet,
                  progress: Progress | None = None) -> dict[str, RepoResult]:
    targets, owner, pending, run = submitted.targets, submitted.owner, submitted.pending, submitted.run
    settings = submitted.settings
    results = {t.name: RepoResult(t) for t in targets}
    by_name = {t.name: t for t in targets}
    done = read = 0
    if progress is not None:
        progress(0, len(targets), 0)
    # Attribution key -> the log walk its split started, and where: dropped there once the
    # attribution is over (Dask may run it elsewhere, as work stealing or a busy worker decides).
    walks: dict[str, tuple[str, list[str] | None]] = {}
    for future in pending:
        group = owner.pop(future.key)
        if future.key in walks:
            _drop_walk(client, *walks.pop(future.key))
        try:
            value = future.result()
        except Exception as exc:  # noqa: BLE001 - any task failure is its repositories' error
            if len(group) > 1:
                # A batch that failed as a whole (its worker died at each try: one of its
                # repositories may be what kills it): each repository again, alone, so that
                # only the one at fault fails.
                for target in group:
                    _submit(client, submitted, [target])
                continue
            value = [BatchItem(group[0].name, None, error_text(exc))]
        items = value if isinstance(value, list) else [BatchItem(group[0].name, value)]
        for item in items:
            target = by_name[item.name]
            if isinstance(item.result, RepoSplit):
                # A large repository: its slices go to every worker, then one task attributes.
                # Ahead of the small repositories still queued: the large one is the long pole.
                number = submitted.number[target.name]
                log.info("%s: %d object(s) to read, split into %d slices over the workers", shown_name(target),
                         len(item.result.new_objects) + item.result.rechecked, len(item.result.slices))
                parts = [client.submit(scan_slice_task, target, settings, part, ruleset, retries=TASK_RETRIES,
                                       pure=False, priority=1, key=f"keysweep-slice-{run}-{number}-{n}")
                         for n, part in enumerate(item.result.slices)]
                # A task's own result goes worker to worker (aws-cli's split is 7.7 MB); one
                # from a batch (a small pack that inflated large: rare, and small) from here.
                split = future if isinstance(value, RepoSplit) else item.result
                # Where the split was made, its log walk is under way: attributed there if that
                # worker is still up (anywhere else, the log is walked again).
                where = _holders(client, future)
                final = client.submit(attribute_task, target, settings, split, *parts, retries=TASK_RETRIES,
                                      pure=False, priority=1, key=f"keysweep-attribute-{run}-{number}",
                                      workers=where, allow_other_workers=True)
                owner[final.key] = [target]
                if item.result.log is not None:
                    walks[final.key] = (item.result.log, where)
                pending.add(final)
                continue
            if item.error is not None:
                results[target.name].error = item.error
                log.info("%s: failed (reported at the end)", shown_name(target))
            elif isinstance(item.result, RepoDone):
                results[target.name].done = item.result
                read += item.result.bytes
                log.info("%s: %d new object(s), %d re-read, %.1f MiB in %.2fs", shown_name(target), item.result.objects,
                         item.result.rechecked, item.result.bytes / 2**20, item.result.seconds)
            done += 1
        if progress is not None:
            progress(done, len(targets), read)
    return results


def shown_name(target: Target) -> str:
    """A repository's name as a message shows it before the audit knows what it found: what
    looks like a key masked (the report also redacts the values found)."""
    from scanner.errors import mask_credentials

    return mask_credentials(target.name, quoted=False)


def _drop_walk(client: Any, token: str, where: list[str] | None) -> None:
    """Drop the log walk a split left where it was made, on the workers still there: a
    worker gone took its walk with it, and a call to its old address waited 30 s for the
    connection, each time, in the loop that collects every result."""
    try:
        alive = set(client.scheduler_info().get("workers", {}))
        targets = [address for address in (where or sorted(alive)) if address in alive]
        if targets:
            client.run(drop_started_log, token, workers=targets)
    except Exception as exc:  # noqa: BLE001 - a placement clean-up only: the audit goes on
        log.debug("a started log walk could not be dropped: %s", type(exc).__name__)


def _holders(client: Any, future: Any) -> list[str] | None:
    """The workers holding a task's result (None when the scheduler cannot say)."""
    try:
        holders = list(client.who_has([future]).get(future.key, ()))
    except Exception:  # noqa: BLE001 - a placement hint only: any worker can attribute
        return None
    return holders or None


class ClusterOnDemand:
    """The Dask client, connected (or its LocalCluster started) when the first task is
    submitted: a re-audit in which no ref moved needs no cluster at all."""

    def __init__(self, scheduler: str | None, workers: int | None) -> None:
        self.scheduler = scheduler
        self.workers = workers
        self.started = False
        self._client: Any = None
        self._cluster: Any = None

    def get(self) -> Any:
        if self._client is None:
            self.started = True
            began = time.monotonic()
            self._client, self._cluster = _start_client(self.scheduler, self.workers)
            where = f"scheduler {self.scheduler}" if self.scheduler else "embedded LocalCluster"
            log.info("cluster: %s, %d worker(s), ready in %.2fs", where, worker_count(self._client),
                     time.monotonic() - began)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()


# The embedded cluster's settings, measured on this project's 2-core machine:
# - Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which costs a history
#   scan 10-25% more CPU (tasks.undo_trim_threshold): the workers start without it.
# - An idle LocalCluster(1) used 0.6 CPU-s per 10 s (6% of a core, taken from the scan):
#   the workers' sampling profiler (every 10 ms), the event loops' 20 ms tick, the system
#   monitor (500 ms) and the memory monitor (100 ms). Without the profiler and with slower
#   ticks: 0.1 CPU-s per 10 s. Nothing here reads those figures; the memory limit is still
#   enforced, once a second.
LOCAL_CLUSTER_CONFIG: dict[str, object] = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
    # Ctrl-C reaches the workers too (the terminal's process group): they ignore it, the
    # command stops them (scanner/fleet/worker_setup.py).
    "distributed.worker.preload": ["scanner.fleet.worker_setup"],
}


def local_cluster(workers: int) -> Any:
    """The embedded cluster: processes, one thread each (a history scan holds the GIL),
    loopback only, and any free port for the scheduler's HTTP server (Dask's default port,
    taken by another cluster, would cost a warning)."""
    import dask
    from distributed import LocalCluster

    with warnings.catch_warnings(), dask.config.set(LOCAL_CLUSTER_CONFIG):
        warnings.simplefilter("ignore")
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                            dashboard_address="127.0.0.1:0", silence_logs=dask_log_level())


def _start_client(scheduler: str | None, workers: int | None) -> tuple[Any, Any]:
    try:
        from distributed import Client
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    _silence_dask()
    if scheduler is not None:
        try:
            return Client(scheduler, timeout=CONNECT_TIMEOUT), None
        except (ValueError, TypeError) as exc:
            raise UsageError(f"--scheduler {scheduler!r}: not a scheduler address (tcp://HOST:PORT): {exc}") from None
        except (OSError, TimeoutError) as exc:
            raise KeysweepError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    _quiet_cluster_exit()
    cluster = local_cluster(workers or os.cpu_count() or 1)
    try:
        return Client(cluster), cluster
    except BaseException:
        cluster.close()
        raise


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int | None) -> Iterator[ClusterOnDemand]:
    """A cluster started on first use, and stopped on the way out. Dask must be installed
    even when no task turns out to be needed: the command says so up front."""
    import importlib.util

    try:
        found = importlib.util.find_spec("distributed") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise UsageError(INSTALL_HINT)
    on_demand = ClusterOnDemand(scheduler, workers)
    try:
        yield on_demand
    finally:
        on_demand.close()


def _quiet_cluster_exit() -> None:
    """A signal while the embedded cluster starts interrupts its constructor, so no one holds
    the cluster to close it; Dask's own exit hook then closes it and fails on the worker still
    starting (an assertion), printing a traceback after "stopped by SIGTERM". The hook still
    runs (its processes are stopped as far as Dask can), without the traceback."""
    import atexit

    from distributed.deploy import spec

    hook = getattr(spec, "close_clusters", None)
    if hook is None or getattr(hook, "__wrapped_quiet__", False):
        return

    def close_clusters() -> None:
        with contextlib.suppress(Exception):
            hook()

    close_clusters.__wrapped_quiet__ = True  # type: ignore[attr-defined]
    atexit.unregister(hook)
    atexit.register(close_clusters)
    spec.close_clusters = close_clusters


def worker_count(client: Any) -> int:
    return max(1, len(client.scheduler_info().get("workers", {})))


class FleetProgress:
    """Repositories done of total, bytes read, rate and ETA, on standard error."""

    def __init__(self, interval: float = 0.25) -> None:
        self.started = time.monotonic()
        self.last = 0.0
        self.drawn = False
        self.interval = interval

    def __call__(self, done: int, total: int, read: int) -> None:
        now = time.monotonic()
        if now - self.last < self.interval and done < total:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-6)
        eta = elapsed / done * (total - done) if done else 0.0
        sys.stderr.write(f"\rauditing: {done}/{total} repositories, {read / 2**20:.1f} MiB, "
                         f"{read / 2**20 / elapsed:.1f} MiB/s, ETA {eta:.0f}s ")
        sys.stderr.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def audit_targets(client: Any, targets: Sequence[Target], state: AuditState, ruleset: RuleSet, *, full: bool,
                  cache: Path | None, progress: Progress | None = None,
                  baseline: Baseline | None = None, values: bool = True) -> list[RepoResult]:
    """One audit: what the state knows, the cluster's work, and the state brought up to date.

    ``client``: a Dask client, or a ``ClusterOnDemand`` (started only if a task is needed).
    A local repository whose refs all stand where the state saw them is decided here, with
    a few file reads and no task: its findings come from the state, their secrets from one
    ``git cat-file`` over the objects holding them. Without ``values`` (no secret is shown
    or verified), an audit in which nothing moved at all reads no object (``from_state``)."""
    rules = rules_digest(ruleset)
    run = uuid.uuid4().hex[:12]
    knowns = {t.name: Known() if full else state.known(t.name, rules, objects=False) for t in targets}
    unchanged: list[Target] = []
    submitted: list[Target] = []
    for target in targets:
        known = knowns[target.name]
        moved = known.refs is None or target.url is not None or local_refs_state(Path(target.name)) != known.refs
        (submitted if moved else unchanged).append(target)
        if moved and known.refs is not None:
            knowns[target.name] = replace(known, scanned=state.scanned(target.name))
    results: dict[str, RepoResult] = {}
    when = state_module.now_iso()
    log.info("%d repositories: %d with every ref where the last audit saw it (re-checked here), %d to read on "
             "the cluster%s", len(targets), len(unchanged), len(submitted), " (--full)" if full else "")
    if not values and not submitted and unchanged:
        standing = from_state(unchanged, knowns, state)
        if standing is not None:
            log.info("nothing moved and no value is needed: findings from the state, no object read")
            if progress is not None:
                progress(len(targets), len(targets), 0)
            for result, described in standing:
                _finalise(result, state, rules, when, baseline, described, run)
            return [result for result, _ in standing]
    if submitted:
        connect = client.get if isinstance(client, ClusterOnDemand) else (lambda: client)
        live = connect()
        settings = AuditSettings(cache=cache, max_size=DEFAULT_MAX_FILE_SIZE, split_slices=worker_count(live), rules=rules)
        offset = len(unchanged)

        def shifted(done: int, total: int, read: int) -> None:
            if progress is not None:
                progress(done + offset, total + offset, read)

        # The tasks run while the unchanged repositories are re-read here.
        futures = submit_fleet(live, submitted, knowns, settings, ruleset)
        results.update(recheck_locally(unchanged, knowns, ruleset))
        results.update(collect_fleet(live, futures, ruleset, shifted if progress is not None else None))
    else:
        results.update(recheck_locally(unchanged, knowns, ruleset))
        if progress is not None:
            progress(len(targets), len(targets), 0)
    found = {name: _found(result, state) for name, result in results.items()}
    # The state keeps the commit as reports show it: a secret used bare in a commit subject or
    # an author name (found elsewhere, in any repository) is redacted before it is stored.
    from scanner.redact import redact_report

    everything = [f for findings in found.values() if findings for f in findings]
    redacted = iter(redact_report(ScanReport(
        findings=tuple(everything), skipped=(), warnings=(), files_scanned=0, blobs_scanned=0, commits_scanned=0,
        bytes_scanned=0, duration_seconds=0.0, target="")).findings)
    for name, result in results.items():
        findings = found[name]
        if findings is not None:
            # The path stays as found: it is part of each finding's fingerprint, which the next
            # audit recomputes from it (reports still redact it).
            _finalise(result, state, rules, when, baseline, [_stored_texts(f, next(redacted)) for f in findings], run)
    return [results[t.name] for t in targets]


def _stored_texts(finding: Finding, redacted: Finding) -> Finding:
    """The finding with the texts the state keeps as reports show them: its commit (subject,
    author) and the names of the refs reaching it."""
    return evolve(finding, commit=redacted.commit, refs=redacted.refs)


def from_state(targets: Sequence[Target], knowns: dict[str, Known],
               state: AuditState) -> list[tuple[RepoResult, list[Finding]]] | None:
    """Every repository unchanged, and no value needed: the findings as the state describes
    them, without reading their objects (their secrets stay unknown: ``StoredSecret``).

    Only when every repository was last recorded by one same audit: that audit redacted
    each stored text (commit subjects, authors) of every value it found in any of them, so
    the texts need no redaction now, which would take the values. None (the objects are
    read, as when values are needed) otherwise, or when the state lacks what a finding
    shows without its value (a state from an older keysweep, a Bedrock key's decoded facts).
    A damaged object database goes unnoticed here: it is found by the next audit that
    reads (refs moved, --full, --verify, --show-secrets, HTML)."""
    started = time.monotonic()
    audits = {state.audit_of(t.name) for t in targets}
    if len(audits) != 1 or None in audits:
        return None
    standing: list[tuple[RepoResult, list[Finding]]] = []
    for target in targets:
        built = [state_module.standalone(s) for s in state.live_findings(target.name)]
        findings = [replace(f, repository=target.name) for f in built if f is not None]
        if len(findings) != len(built):
            return None
        result = RepoResult(target)
        result.done = RepoDone(target.name, None, {}, [], 0, 0, 0, knowns[target.name].refs or "",
                               time.monotonic() - started, from_state=True)
        standing.append((result, findings))
    return standing


RECHECK_THREADS = 4  # git processes reading at once for the client's re-checks


def recheck_locally(targets: Sequence[Target], knowns: dict[str, Known], ruleset: RuleSet) -> dict[str, RepoResult]:
    """Unchanged repositories, on the client: the objects holding their findings are read by
    a few threads (each mostly waits for its git process), and scanned here, one at a time
    (a ruleset's matcher is not for concurrent use)."""
    from concurrent.futures import ThreadPoolExecutor

    from scanner.sources.history import scan_object

    def read(target: Target) -> tuple[float, list[GitObject]]:
        started = time.monotonic()
        shas = sorted(knowns[target.name].finding_objects)
        if not shas:
            return started, []
        repo = Repository(git_dir=git_dir_of(Path(target.name)) or Path(target.name), worktree=None, shallow=False)
        return started, list(read_objects(repo, shas))

    results: dict[str, RepoResult] = {}
    with ThreadPoolExecutor(max_workers=RECHECK_THREADS) as pool:
        for target, outcome in zip(targets, [pool.submit(read, t) for t in targets], strict=True):
            result = results[target.name] = RepoResult(target)
            try:
                started, objects = outcome.result()
            except (GitError, OSError) as exc:
                result.error = str(exc) if isinstance(exc, KeysweepError) else f"{type(exc).__name__}: {exc}"
                continue
            problems = [(obj.sha, obj.problem or obj.kind) for obj in objects if obj.data is None]
            if problems:
                result.error = unreadable_holders(problems)
                continue
            found: dict[str, ObjectMatches] = {}
            for obj in objects:
                if obj.data is not None and (matches := scan_object(obj.kind, obj.data, ruleset)):
                    found[obj.sha] = ObjectMatches(obj.sha, obj.kind, matches)
            ruleset.health.take()  # a rule timing out here was already reported by the audit that read it
            known = knowns[target.name]
            result.done = RepoDone(target.name, None, found, [], 0, len(objects), sum(len(o.data or b"") for o in objects),
                                   known.refs or "", time.monotonic() - started)
    return results


def _targets(args: argparse.Namespace) -> list[Target]:
    texts = list(args.targets)
    if args.targets_file is not None:
        texts += read_targets_file(args.targets_file)
    if not texts:
        raise UsageError("audit needs at least one target: a repository, a folder of repositories, "
                         "a git URL, or --targets FILE")
    return expand_targets(texts)


def _found(result: RepoResult, state: AuditState) -> list[Finding] | None:
    """The repository's findings: from its scan, or rebuilt from the state (None: it failed)."""
    done = result.done
    if done is None:
        return None
    name = result.target.name
    if done.history is not None:
        findings = list(done.history.findings)
    else:
        rebuilt = (rebuild(stored, done.recheck.get(stored.object)) for stored in state.live_findings(name))
        findings = [f for f in rebuilt if f is not None]
    return [replace(f, repository=name) for f in findings]


def _finalise(result: RepoResult, state: AuditState, rules: str, when: str, baseline: Baseline | None,
              findings: list[Finding], run: str | None = None) -> None:
    """The repository's findings remembered. Findings in the baseline are remembered as
    baselined and not reported."""
    done = result.done
    assert done is not None
    known = baseline.fingerprints if baseline is not None else frozenset()
    result.stored = state.record(result.target.name, rules=rules, refs=done.refs, new_objects=done.new_objects,
                                 findings=findings, when=when, baselined=known, audit=run)
    result.findings = [f for f in findings if f.fingerprint not in known]


def quiet() -> bool:
    """-q: nothing on standard error but errors (the per-repository summary is left out too)."""
    from scanner import diagnostics

    return diagnostics.level() >= diagnostics.ERROR


def _failing(findings: Sequence[Finding], fail_on: str | None) -> list[Finding]:
    if fail_on is None:
        return list(findings)
    from scanner.severity import at_least

    return [f for f in findings if at_least(f.severity, cast(Severity, fail_on))]


def repository_summary(result: RepoResult, redact: Callable[[str], str] = str) -> dict[str, Any]:
    """What the report says of one repository; ``redact``: of every value the audit found
    (a folder, a URL, a path or git's message can hold one)."""
    done = result.done
    gone = [s for s in result.stored if s.status == "gone"]
    summary: dict[str, Any] = {
        "repository": redact(result.target.name),
        "objects": done.objects if done else 0,
        "rechecked": done.rechecked if done else 0,
        "bytes": done.bytes if done else 0,
        "findings": len(result.findings),
        "baselined": sum(1 for s in result.stored if s.status == "baselined"),
        "gone": [{"fingerprint": s.fingerprint, "rule": s.data["rule_id"], "path": redact(str(s.data["path"])),
                  "secret": s.data["redacted"], "first_seen": s.first_seen, "last_seen": s.last_seen} for s in gone],
        "errors": [redact(result.error)] if result.error else [],
        "warnings": [redact(w) for w in done.history.warnings] if done and done.history else [],
        "seconds": round(done.seconds, 3) if done else 0.0,
    }
    return summary


def _summary_text(summaries: list[dict[str, Any]]) -> str:
    failed = sum(1 for s in summaries if s["errors"])
    lines = [f"repositories: {len(summaries)} audited, {len(summaries) - failed} read, {failed} failed"]
    for s in summaries:
        if s["errors"]:
            lines.append(f"  {s['repository']}: error: {s['errors'][0]}")
            continue
        lines.append(f"  {s['repository']}: {s['objects']} new object(s), {s['rechecked']} re-read, "
                     f"{s['bytes'] / 2**20:.1f} MiB, {s['findings']} finding(s), {s['baselined']} baselined, "
                     f"{len(s['gone'])} gone, {s['seconds']:.2f}s")
    from scanner.reporters.text import escape_control

    return "\n".join(escape_control(line) for line in lines) + "\n"


def _with_history(rendered: str, report: ScanReport, results: Sequence[RepoResult],
                  summaries: list[dict[str, Any]], redact: Callable[[str], str] = str) -> str:
    """The JSON report, each finding with its first/last seen and status, and the
    per-repository summaries."""
    document = json.loads(rendered)
    seen = {(redact(r.target.name), s.fingerprint): s for r in results for s in r.stored}  # as findings name it
    for item, finding in zip(document["findings"], report.findings, strict=True):
        stored = seen.get((finding.repository or "", finding.fingerprint))
        if stored is not None:
            item.update(first_seen=stored.first_seen, last_seen=stored.last_seen, status=stored.status)
    document["summary"]["repositories"] = summaries
    from scanner.reporters.text import escape_json

    return escape_json(json.dumps(document, indent=2, ensure_ascii=False)) + "\n"


def _html_context(args: argparse.Namespace, results: Sequence[RepoResult], started: datetime.datetime) -> HtmlContext:
    """The HTML report's header and commit links: each repository's web page from its URL, or
    from the origin of a local one (credentials never kept: web_base drops them)."""
    from scanner.reporters.html import HtmlContext, web_base
    from scanner.sources.git import find_repository, remote_url

    remotes: dict[str, str] = {}
    for result in results:
        base = web_base(result.target.url) if result.target.url else None
        if base is None and result.target.url is None:
            try:
                repo = find_repository(Path(result.target.name), search_parents=False)
                base = web_base(remote_url(repo)) if repo is not None else None
            except GitError:
                base = None  # the report shows the commit id instead
        if base is not None:
            remotes[result.target.name] = base
    scope = "history, every object (--full)" if args.full else "history: objects earlier audits had not read"
    return HtmlContext(scope=scope, targets=tuple(r.target.name for r in results), started=started,
                       web_remotes=remotes,
                       repository_errors=tuple(f"{r.target.name}: {r.error}" for r in results if r.error))


def audit_command(args: argparse.Namespace) -> int:
    from scanner.cli import write_output

    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be 1 or more")
    targets = _targets(args)
    ruleset = load_ruleset()
    baseline = load_baseline(args.baseline) if args.baseline is not None else None
    state = AuditState(args.state or state_module.default_state_path())
    started = time.monotonic()
    started_at = datetime.datetime.now(datetime.timezone.utc)
    fmt = cast(ReportFormat, args.format or "text")
    # The values are read again only where they are used: shown, verified, or in the HTML
    # report (which matches findings to remediation records by key ID).
    values = bool(args.verify or args.show_secrets or fmt == "html")
    try:
        show_progress = not args.no_progress and sys.stderr.isatty()
        progress = FleetProgress() if show_progress else None
        with dask_client(args.scheduler, args.workers) as client:
            try:
                ordered = audit_targets(client, targets, state, ruleset, full=args.full, cache=args.cache,
                                        progress=progress, baseline=baseline, values=values)
            finally:
                if progress is not None:
                    progress.close()
    finally:
        state.close()
    findings = [f for r in ordered for f in r.findings]
    if args.verify:
        from scanner.aws.verify import verify_findings

        findings = verify_findings(findings, region=args.region)
    from scanner.severity import assign_severity

    findings = assign_severity(findings)
    skipped = [Skipped(f"{r.target.name}: {where}", why) for r in ordered if r.done and r.done.history
               for where, why in r.done.history.skipped]
    warnings = [f"{r.target.name}: {w}" for r in ordered if r.done and r.done.history for w in r.done.history.warnings]
    errors = [f"{r.target.name}: {e}" for r in ordered if r.done and r.done.history for e in r.done.history.errors]
    report = ScanReport(
        findings=tuple(findings), skipped=tuple(skipped), warnings=tuple(warnings), files_scanned=0,
        blobs_scanned=sum(r.done.history.blobs for r in ordered if r.done and r.done.history),
        commits_scanned=sum(r.done.history.commits for r in ordered if r.done and r.done.history),
        bytes_scanned=sum(r.done.bytes for r in ordered if r.done), duration_seconds=time.monotonic() - started,
        target=f"{len(ordered)} repositories", errors=tuple(errors),
    )
    from scanner.redact import name_redactor, redact_report, redactor_for

    from scanner.reporters.text import escape_control

    # Findings from the state alone: every commit text was redacted when stored, by the audit
    # that knew all their values; their values are not known now, so names (paths, the
    # repositories') get the masking of what looks like a key only.
    from_state_only = all(r.done is not None and r.done.from_state for r in ordered)
    redactor = redactor_for([] if from_state_only else [f.secret for f in report.findings])
    report = redact_report(report, redactor=redactor)
    redact = name_redactor(redactor)
    # Repository names (folder names, URLs) and git's messages are repository text: escaped
    # on a terminal like every other (the log handler does), and the warnings redacted like
    # the report's.
    for warning in report.warnings:
        log.warning("%s", warning)
    for result in ordered:
        if result.error:
            print(escape_control(redact(f"keysweep: error: {result.target.name}: {result.error}")), file=sys.stderr)
    summaries = [repository_summary(r, redact) for r in ordered]
    html = _html_context(args, ordered, started_at) if fmt == "html" else None
    rendered = render(report, fmt, ruleset, show_secrets=args.show_secrets, color=False, html=html)
    if fmt == "json":
        rendered = _with_history(rendered, report, ordered, summaries, redact)
    elif fmt == "text":
        rendered += _summary_text(summaries)
    elif not quiet():
        sys.stderr.write(_summary_text(summaries))
    write_output(rendered, args.output, private=args.show_secrets and fmt != "html")  # html: always redacted
    for error in report.errors:
        print(escape_control(f"keysweep: error: {error}"), file=sys.stderr)
    log.info("audit: %d repositories, %.1f MiB read, %d finding(s) in %.2fs; state %s", len(ordered),
             report.bytes_scanned / 2**20, len(report.findings), time.monotonic() - started,
             args.state or state_module.default_state_path())
    if any(r.error for r in ordered) or report.errors:
        return EXIT_FAILURE
    return EXIT_FINDINGS if _failing(report.findings, args.fail_on) else EXIT_CLEAN

