"""Git history: every object read once, scanned in parallel, then attributed.

1. List every object (``cat-file --batch-all-objects --batch-check``): cheap, no contents.
2. Read blobs, commits and annotated tags through long-lived ``cat-file --batch``
   processes, one per worker, each over a contiguous slice of pack order, and scan them.
3. Only for the objects that produced matches, walk the log once (``--raw -c``, so merges
   that introduce content of their own are seen) to find which commit first introduced
   each blob at which path.

Memory stays bounded: a worker holds one object at a time and the main process keeps
object IDs, never contents.
"""

from __future__ import annotations

import os
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TypeVar

from scanner.engine.detect import Match, as_scannable, detect
from scanner.engine.rules import RuleSet, switched_off_messages
from scanner.errors import GitError
from scanner.findings import CommitInfo, Finding, Occurrences, findings_from_matches
from scanner.sources import git
from scanner.sources.git import ObjectInfo, Repository

if TYPE_CHECKING:
    import multiprocessing
    import multiprocessing.process
    from multiprocessing.connection import Connection

SCANNED_KINDS = ("blob", "commit", "tag")
# Below this much content, worker processes cost more than they save.
PARALLEL_MIN_BYTES = 16 * 1024 * 1024
REPORT_EVERY_OBJECTS = 512
REPORT_EVERY_BYTES = 16 * 1024 * 1024
GITLINK_MODE = "160000"
_GITLINK_MODE_BYTES = GITLINK_MODE.encode()
WORKER_EXIT_GRACE = 5.0  # seconds
MAX_NAMED_MISSING = 20  # a partial clone lacks thousands: name a few, count the rest

Progress = Callable[[int, int, int, int], None]


@dataclass(frozen=True, slots=True)
class ObjectMatches:
    sha: str
    kind: str
    matches: tuple[Match, ...]


@dataclass
class ObjectScan:
    found: dict[str, ObjectMatches] = field(default_factory=dict)
    blobs: int = 0
    commits: int = 0
    bytes: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)  # (object, what went wrong)
    timeouts: list[tuple[str, str]] = field(default_factory=list)  # (rule, object): rule disabled there

    def add(self, other: _Batch) -> None:
        for item in other.found:
            self.found[item.sha] = item
        self.blobs += other.blobs
        self.commits += other.commits
        self.bytes += other.bytes
        self.problems += other.problems
        self.timeouts += other.timeouts


@dataclass
class _Batch:
    found: list[ObjectMatches] = field(default_factory=list)
    objects: int = 0
    blobs: int = 0
    commits: int = 0
    bytes: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)
    timeouts: list[tuple[str, str]] = field(default_factory=list)


def message_of(data: bytes) -> bytes:
    """The message of a commit or tag object: everything after the header's blank line."""
    _, sep, message = data.partition(b"\n\n")
    return message if sep else b""


def scan_object(kind: str, data: bytes, ruleset: RuleSet) -> tuple[Match, ...]:
    if kind == "blob":
        text = as_scannable(data)
        return tuple(detect(text, ruleset)) if text is not None else ()
    return tuple(detect(message_of(data), ruleset))


def _scan_stream(repo: Repository, objects: Sequence[ObjectInfo], ruleset: RuleSet) -> Iterator[_Batch]:
    batch = _Batch()
    for obj in git.read_objects(repo, [o.sha for o in objects]):
        batch.objects += 1
        if obj.data is None:
            batch.problems.append((obj.sha, obj.problem or obj.kind))
        else:
            batch.bytes += len(obj.data)
            if obj.kind == "blob":
                batch.blobs += 1
            elif obj.kind == "commit":
                batch.commits += 1
            matches = scan_object(obj.kind, obj.data, ruleset)
            batch.timeouts += [(rule_id, obj.sha) for rule_id in ruleset.health.take()]
            if matches:
                batch.found.append(ObjectMatches(obj.sha, obj.kind, matches))
        if batch.objects >= REPORT_EVERY_OBJECTS or batch.bytes >= REPORT_EVERY_BYTES:
            yield batch
            batch = _Batch()
    yield batch


OBJECT_KINDS = ("blob", "commit", "tag", "tree")


@dataclass(frozen=True)
class PackedObjects:
    """A list of ObjectInfo as three flat buffers, for sending to another process: aws-cli's
    144,000 objects as dataclasses pickle to 8.4 MB in 0.76 s and unpickle in 0.73 s; packed,
    4.2 MB, 0.08 s, and 0.31 s to unpack (measured on this project's 2-core machine). A
    history scan's slices go to its worker processes so, and a fleet audit's split
    repository travels worker -> client -> workers."""

    shas: bytes  # ``width`` bytes each
    kinds: bytes  # one byte each: an index into OBJECT_KINDS
    sizes: bytes  # array("Q")
    width: int = 20  # bytes of an object id: 20 (SHA-1), 32 in a SHA-256 repository

    @classmethod
    def pack(cls, objects: Sequence[ObjectInfo]) -> PackedObjects:
        width = len(objects[0].sha) // 2 if objects else 20
        if any(len(o.sha) != 2 * width for o in objects):
            raise ValueError("object ids of different lengths in one list")
        return cls(b"".join(bytes.fromhex(o.sha) for o in objects), bytes(OBJECT_KINDS.index(o.kind) for o in objects),
                   array("Q", (o.size for o in objects)).tobytes(), width)

    def unpack(self) -> list[ObjectInfo]:
        sizes = array("Q")
        sizes.frombytes(self.sizes)
        shas, width = self.shas, self.width
        return [ObjectInfo(shas[width * i : width * i + width].hex(), OBJECT_KINDS[kind], size)
                for i, (kind, size) in enumerate(zip(self.kinds, sizes, strict=True))]

    def __len__(self) -> int:
        return len(self.kinds)


def _worker(repo: Repository, tasks: multiprocessing.Queue, ruleset: RuleSet,  # type: ignore[type-arg]
            results: Connection) -> None:
    from scanner.sources.workers import detach_worker

    detach_worker()
    try:
        while (packed := tasks.get()) is not None:
            for batch in _scan_stream(repo, packed.unpack(), ruleset):
                results.send(("batch", batch))
        results.send(("done", None))
    except Exception as exc:  # noqa: BLE001 - carried to the main process, which raises it
        results.send(("error", f"{type(exc).__name__}: {exc}"))


def _exit_codes(workers: Sequence[multiprocessing.process.BaseProcess]) -> str:
    return ", ".join(str(w.exitcode) for w in workers)


def _slices(objects: Sequence[ObjectInfo], count: int) -> list[Sequence[ObjectInfo]]:
    """Contiguous slices of about equal content size: each worker keeps pack locality."""
    total = sum(o.size for o in objects)
    slices: list[Sequence[ObjectInfo]] = []
    start, acc = 0, 0
    for index, obj in enumerate(objects):
        acc += obj.size
        if acc >= total * (len(slices) + 1) / count and len(slices) < count - 1:
            slices.append(objects[start : index + 1])
            start = index + 1
    slices.append(objects[start:])
    return [s for s in slices if s]


# Guided slicing: each slice is this share of what is left per worker, so the slices shrink
# as the scan goes on and the last ones are small: equal halves of aws-cli's history took
# 12 and 7 CPU-s of git (delta chains are not spread evenly), and one worker ran alone for
# the last 4 s. No slice is smaller than MIN_SLICE_BYTES (each starts its own cat-file, whose
# delta cache starts cold) or than GUIDED_MIN_SHARE of the whole.
GUIDED_SHARE = 0.5
GUIDED_MIN_SHARE = 0.01
MIN_SLICE_BYTES = 8 * 1024 * 1024


def guided_slices(objects: Sequence[ObjectInfo], workers: int) -> list[Sequence[ObjectInfo]]:
    """Contiguous slices in pack order, largest first, shrinking towards the end."""
    total = sum(o.size for o in objects)
    floor = max(MIN_SLICE_BYTES, int(total * GUIDED_MIN_SHARE))
    slices: list[Sequence[ObjectInfo]] = []
    start, acc, remaining = 0, 0, total
    target = max(floor, int(remaining * GUIDED_SHARE / workers))
    for index, obj in enumerate(objects):
        acc += obj.size
        if acc >= target:
            slices.append(objects[start : index + 1])
            start, remaining, acc = index + 1, remaining - acc, 0
            target = max(floor, int(remaining * GUIDED_SHARE / workers))
    if start < len(objects):
        slices.append(objects[start:])
    return slices


def scan_objects(repo: Repository, objects: Sequence[ObjectInfo], ruleset: RuleSet, jobs: int,
                 progress: Progress | None = None) -> ObjectScan:
    result = ObjectScan()
    total_objects = len(objects)
    total_bytes = sum(o.size for o in objects)
    done_objects = done_bytes = 0

    def report(batch: _Batch) -> None:
        nonlocal done_objects, done_bytes
        result.add(batch)
        done_objects += batch.objects
        done_bytes += batch.bytes
        if progress is not None:
            progress(done_objects, total_objects, done_bytes, total_bytes)

    if jobs <= 1 or total_bytes < PARALLEL_MIN_BYTES:
        for batch in _scan_stream(repo, objects, ruleset):
            report(batch)
        return result
    # Imported here: the pre-commit hook and small scans never start workers (~8 ms to import).
    import multiprocessing
    from multiprocessing.connection import Connection
    from multiprocessing.connection import wait as wait_for_any

    from scanner.sources.workers import signals_deferred, start_resource_tracker

    context = multiprocessing.get_context("spawn")
    start_resource_tracker()
    # Workers take the next slice when they finish one: a worker whose slices were cheaper
    # does not sit idle while the other finishes.
    tasks: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
    slices = guided_slices(objects, jobs)
    jobs = min(jobs, len(slices))
    for part in slices:
        tasks.put(PackedObjects.pack(part))
    for _ in range(jobs):
        tasks.put(None)
    # One pipe per worker, its sending end held by that worker alone: a worker killed in the
    # middle of sending a batch leaves its pipe at end-of-file, not a half message that a
    # shared queue would wait on for good (the other workers keep a shared pipe open).
    channels = [context.Pipe(duplex=False) for _ in range(jobs)]
    workers = [context.Process(target=_worker, args=(repo, tasks, ruleset, sending), daemon=True)
               for _, sending in channels]
    running = len(workers)
    try:
        # A signal while a worker is being handed its work would leave it half-started (and
        # printing a traceback): delivered once every worker has started, inside the try, so
        # that they are stopped and the slices not handed out dropped (their feeder thread,
        # blocked on a full pipe, would otherwise hold up the exit for good).
        with signals_deferred():
            for worker in workers:
                worker.start()
        for _, sending in channels:
            sending.close()  # the worker has its own copy; this one would hide its end-of-file
        listening = {receiving: worker for (receiving, _), worker in zip(channels, workers)}
        finished: set[int] = set()
        while listening:
            # A worker killed mid-slice (OOM killer, SIGKILL) fails the scan now: the others
            # may be blocked for good on a queue lock it held, or would read on for minutes.
            if any(w.exitcode not in (None, 0) for w in workers):
                raise GitError(f"a history worker process died unexpectedly (exit codes {_exit_codes(workers)})")
            for receiving in wait_for_any(list(listening), timeout=1.0):
                assert isinstance(receiving, Connection)
                try:
                    kind, payload = receiving.recv()
                except (EOFError, OSError):  # OSError: killed mid-message ("got end of file during message")
                    worker = listening.pop(receiving)
                    if id(worker) not in finished:
                        worker.join(timeout=WORKER_EXIT_GRACE)
                        raise GitError("a history worker process died unexpectedly "
                                       f"(exit codes {_exit_codes(workers)})") from None
                    continue
                if kind == "batch":
                    report(payload)
                elif kind == "done":
                    finished.add(id(listening[receiving]))
                    running -= 1
                else:
                    raise GitError(f"reading history failed: {payload}")
    finally:
        for worker in workers:
            if worker.is_alive() and running:
                # SIGKILL: a worker still starting up has not installed its own handlers.
                worker.kill()
        for worker in workers:
            if worker.pid is None:
                continue  # never started (start() itself failed)
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
                worker.join()
        for receiving, sending in channels:
            receiving.close()
            sending.close()
        tasks.close()
        # The feeder thread may still hold slices no worker took (an interrupt): dropped.
        tasks.cancel_join_thread()
    return result


# --- the log walk: which commit introduced which blob at which path ---------------------

# Names and messages are the repository's, and may hold \x01 or \x1f themselves: a forged
# separator would fail the scan (a name where the timestamp goes) or make up a commit
# to attribute a secret to. Each separator carries a random mark an author cannot guess.
_MARK = os.urandom(8).hex()
_RECORD = f"\x01{_MARK}".encode()
_FIELD = f"\x1f{_MARK}"
LOG_FORMAT = f"%x01{_MARK}" + f"%x1f{_MARK}".join(["%H", "%P", "%an", "%ae", "%aI", "%ct", "%s"])


@dataclass(frozen=True, slots=True)
class Change:
    """One path changed by one commit: its new blob and the blobs it replaced (one per parent)."""

    commit: str
    path: str
    new: str
    old: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CommitRecord:
    info: CommitInfo
    timestamp: int
    order: int  # position in the log walk; larger is older for equal timestamps


def log_command(revisions: Sequence[str], stdin_revisions: Sequence[str] = (), *,
                renames: bool = False) -> tuple[list[str], list[bytes] | None]:
    """The git log that lists each commit followed by the paths it changes.

    ``-c`` makes a merge list the paths whose result differs from every parent: exactly
    the content a merge introduces itself (an "evil merge"), and nothing it only carries.
    With ``renames``, a moved file is compared with its old content (range scans: moving
    a file does not introduce its secrets); without, every path is its own introduction.
    """
    rename_flag = "-M" if renames else "--no-renames"
    args = ["log", "--raw", "-c", rename_flag, "--no-abbrev", "--root", "-z", f"--format={LOG_FORMAT}", *revisions]
    if not stdin_revisions:
        return args, None
    return [*args, "--stdin"], [f"{sha}\n".encode() for sha in stdin_revisions]


def walk_log(repo: Repository, revisions: Sequence[str], stdin_revisions: Sequence[str] = (), *,
             renames: bool = False) -> Iterator[CommitRecord | Change]:
    """Each commit (newest first), followed by the paths it changes."""
    args, stdin = log_command(revisions, stdin_revisions, renames=renames)
    return parse_log(git.stream(repo, args, stdin_lines=stdin))


def parse_log(chunks: Iterable[bytes], wanted: Callable[[str], bool] | None = None) -> Iterator[CommitRecord | Change]:
    """The log's commits and changes; with ``wanted``, only the changes whose new blob it
    accepts (attribution needs a handful of a history's hundreds of thousands)."""
    rest = b""
    order = 0
    for chunk in chunks:
        records = (rest + chunk).split(_RECORD)
        rest = records.pop()
        for record in records:
            if record:
                order += 1
                yield from _parse_record(record, order, wanted)
    if rest:
        yield from _parse_record(rest, order + 1, wanted)


def _parse_record(record: bytes, order: int, wanted: Callable[[str], bool] | None = None) -> Iterator[CommitRecord | Change]:
    header, _, body = record.partition(b"\x00")
    # As paths are shown (git.display_path): a byte that is not UTF-8 as an escape, which the
    # redactor also finds when a found value holds it.
    fields = header.decode("utf-8", "backslashreplace").split(_FIELD)
    sha, _parents, author, email, date, timestamp, summary = (fields + [""] * 7)[:7]
    yield CommitRecord(CommitInfo(sha, author, email, date, summary), int(timestamp or 0), order)
    tokens = body.split(b"\x00")
    index = 0
    while index < len(tokens):
        meta = tokens[index].lstrip(b"\n")
        index += 1
        if not meta.startswith(b":"):
            continue
        parts = meta.lstrip(b":").split(b" ")
        parents = len(meta) - len(meta.lstrip(b":"))  # one colon per parent (-c: octopus merges too)
        if parents == 1 and parts[-1][:1] in (b"R", b"C"):
            index += 1  # a rename or copy names the old path first, then the new one
        path_index = index
        index += 1
        if len(parts) < 2 * parents + 2 or parts[parents] == _GITLINK_MODE_BYTES:
            continue
        new = parts[2 * parents + 1].decode()
        if git.is_null(new) or (wanted is not None and not wanted(new)):
            continue  # deleted here, or not asked about
        path = git.display_path(tokens[path_index]) if path_index < len(tokens) else ""
        old = tuple(p.decode() for p in parts[parents + 1 : 2 * parents + 1])
        yield Change(sha, path, new, tuple(s for s in old if not git.is_null(s)))


# --- attribution ------------------------------------------------------------------------


def redact_summary(record: CommitRecord, found: ObjectMatches | None) -> CommitRecord:
    """A commit whose message holds a secret must not print it in every report's summary line."""
    if found is None or found.kind != "commit":
        return record
    summary = record.info.summary
    for match in found.matches:
        summary = summary.replace(match.secret.reveal(), match.secret.redacted)
    return replace(record, info=replace(record.info, summary=summary))


def earliest_findings(candidates: list[tuple[CommitRecord | None, Finding]]) -> list[Finding]:
    """One finding per fingerprint: the earliest introduction, with how far the secret spread."""
    spread_commits: dict[tuple[str, str], set[str]] = {}
    spread_paths: dict[tuple[str, str], set[str]] = {}
    best: dict[str, tuple[tuple[int, int], Finding]] = {}
    for record, finding in candidates:
        secret_key = (finding.rule_id, finding.secret.digest)
        if finding.commit is not None:
            spread_commits.setdefault(secret_key, set()).add(finding.commit.sha)
        if finding.path is not None:
            spread_paths.setdefault(secret_key, set()).add(finding.path)
        age = (record.timestamp, -record.order) if record is not None else (2**62, 0)
        current = best.get(finding.fingerprint)
        if current is None or age < current[0]:
            best[finding.fingerprint] = (age, finding)
    result = []
    for _, finding in best.values():
        secret_key = (finding.rule_id, finding.secret.digest)
        occurrences = Occurrences(len(spread_commits.get(secret_key, ())), len(spread_paths.get(secret_key, ())))
        result.append(replace(finding, occurrences=occurrences))
    result.sort(key=lambda f: (f.path or "", f.line, f.rule_id, f.commit.date if f.commit else ""))
    return result


_Listed = TypeVar("_Listed")


def _listed(ask: Callable[[], dict[str, _Listed]], what: str, errors: list[str]) -> dict[str, _Listed]:
    """What git lists, asked for only when a finding needs it; nothing (and an error naming
    ``what``) when git fails: the findings are still reported, with less detail."""
    try:
        return ask()
    except GitError as exc:
        errors.append(f"could not list {what} ({exc})")
        return {}


def tag_info(sha: str, name: str, data: bytes | None) -> CommitInfo:
    tagger, email, date = "", "", ""
    if data:
        for line in data.split(b"\n\n", 1)[0].split(b"\n"):
            if line.startswith(b"tagger "):
                text = line[7:].decode("utf-8", "backslashreplace")
                who, _, rest = text.partition(" <")
                email, _, stamp = rest.partition("> ")
                tagger = who
                date = _epoch_to_iso(stamp)
    return CommitInfo(sha, tagger, email, date, f"tag {name}")


def _epoch_to_iso(stamp: str) -> str:
    import datetime

    try:
        seconds, zone = stamp.split()
        sign = -1 if zone.startswith("-") else 1
        offset = datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5])) * sign
        moment = datetime.datetime.fromtimestamp(int(seconds), datetime.timezone(offset))
        return moment.isoformat()
    except (ValueError, IndexError, OverflowError, OSError):
        # A tag object is hostile input: a tagger date past time_t (or year 9999) is no date.
        return ""


@dataclass
class HistoryScan:
    findings: list[Finding]
    blobs: int
    commits: int
    bytes: int
    warnings: list[str]
    skipped: list[tuple[str, str]]  # (path or object, reason)
    errors: list[str] = field(default_factory=list)  # what could not be read: the scan is incomplete
    # Blob -> digests of the values found in it: which values HEAD's tree still holds.
    secrets_by_blob: dict[str, frozenset[str]] = field(default_factory=dict)


@dataclass
class ObjectListing:
    """What ``cat-file --batch-all-objects`` says is in a repository, sorted for the scan."""

    existing_blobs: set[str] = field(default_factory=set)
    commit_objects: list[str] = field(default_factory=list)
    to_scan: list[ObjectInfo] = field(default_factory=list)
    too_large: dict[str, int] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)


def list_history(repo: Repository, max_size: int) -> ObjectListing:
    """Step 1: every object, and which of them are to be read (no contents yet), each right
    after the object it is a delta against (see delta_order)."""
    listing = ObjectListing()
    listed: list[ObjectInfo] = []
    bases: list[str | None] = []
    for obj, base in git.list_objects_and_bases(repo):
        listed.append(obj)
        bases.append(base)
    for index in delta_order([obj.sha for obj in listed], bases):
        obj = listed[index]
        if obj.kind == "unreadable":
            listing.unreadable.append(obj.sha)
            listing.existing_blobs.add(obj.sha)  # named once below, not again as missing
            continue
        if obj.kind == "blob":
            listing.existing_blobs.add(obj.sha)
            if obj.size > max_size:
                listing.too_large[obj.sha] = obj.size
                continue
        elif obj.kind == "commit":
            listing.commit_objects.append(obj.sha)
        if obj.kind in SCANNED_KINDS:
            listing.to_scan.append(obj)
    return listing


def delta_order(shas: Sequence[str], bases: Sequence[str | None]) -> list[int]:
    """Indexes of ``shas`` with every object right after its delta base (depth first), roots
    and siblings in their given (pack) order.

    git inflates an object by applying its delta to the base, which it keeps in a small cache
    (core.deltaBaseCacheLimit, 96 MiB): read in pack order, a base is often evicted before
    the next version of the same file needs it and is rebuilt from its own chain. Depth first,
    each file's versions come together: aws-cli's history costs git 20 % less CPU. A base that
    is not listed (a tree, another repository's) makes its object a root; a cycle, which only
    a corrupt pack could hold, is read after the rest, in pack order.
    """
    position = {sha: index for index, sha in enumerate(shas)}
    children: dict[int, list[int]] = {}
    roots: list[int] = []
    for index, base in enumerate(bases):
        parent = position.get(base) if base is not None else None
        if parent is None or parent == index:
            roots.append(index)
        else:
            children.setdefault(parent, []).append(index)
    order: list[int] = []
    seen = bytearray(len(shas))
    stack = roots[::-1]
    while stack:
        index = stack.pop()
        if seen[index]:
            continue
        seen[index] = 1
        order.append(index)
        below = children.get(index)
        if below:
            stack.extend(reversed(below))
    if len(order) < len(shas):
        order += [index for index in range(len(shas)) if not seen[index]]
    return order


def byte_slices(objects: Sequence[ObjectInfo], count: int) -> list[Sequence[ObjectInfo]]:
    """Step 2's split, public for callers that spread slices over their own workers."""
    return _slices(objects, count)


def scan_slice(repo: Repository, objects: Sequence[ObjectInfo], ruleset: RuleSet) -> ObjectScan:
    """Step 2 for one slice, in this process (what each history worker process does)."""
    result = ObjectScan()
    for batch in _scan_stream(repo, objects, ruleset):
        result.add(batch)
    return result


def start_log(repo: Repository, listing: ObjectListing, *, all_objects: bool) -> git.Prefetch:
    """Step 3's log walk, started in the background while the objects are read."""
    stash = git.stash_commits(repo)
    log_args, log_stdin = log_command(["--all"], list(stash) + (listing.commit_objects if all_objects else []))
    return git.Prefetch(repo, log_args, log_stdin)


def scan_history(repo: Repository, ruleset: RuleSet, *, all_objects: bool, max_size: int, jobs: int,
                 progress: Progress | None = None) -> HistoryScan:
    # The log is walked while the workers read blobs; it is parsed once they are done, when
    # it is known which blobs need attributing. Outside --all-objects it needs nothing from
    # the listing, so it starts first and walks beside it, on the core the listing leaves
    # idle (aws-cli: the listing takes ~1.2 s, the walk 2.6 CPU-s).
    early_log = None if all_objects else start_log(repo, ObjectListing(), all_objects=False)
    listing = list_history(repo, max_size)
    log = early_log or start_log(repo, listing, all_objects=all_objects)
    # With --all-objects the log walk is not what refs reach (attribute asks rev-list): that
    # list is made beside the scan too, not after it, when one core idles.
    reachable = start_reachable(repo) if all_objects else None
    scanned = scan_objects(repo, listing.to_scan, ruleset, jobs, progress)
    return attribute(repo, listing, scanned, log.chunks(), all_objects=all_objects, max_size=max_size,
                     ruleset=ruleset, reachable_walk=reachable)


def start_reachable(repo: Repository) -> git.Prefetch:
    """The commits refs (and every stash entry) reach, listed in the background."""
    return git.Prefetch(repo, ["rev-list", "--all", "--stdin"], [f"{sha}\n".encode() for sha in git.stash_commits(repo)])


def attribute(repo: Repository, listing: ObjectListing, scanned: ObjectScan, log_chunks: Iterable[bytes], *,
              all_objects: bool, max_size: int, ruleset: RuleSet | None = None,
              reachable_walk: git.Prefetch | None = None) -> HistoryScan:
    """Step 3: the commit (and path) that first introduced each object with matches."""
    warnings: list[str] = []
    if repo.shallow:
        warnings.append("shallow clone: history before the shallow boundary is not scanned "
                        "(run `git fetch --unshallow` for a complete audit)")
    existing_blobs, too_large = listing.existing_blobs, listing.too_large
    stash = git.stash_commits(repo)
    errors: list[str] = []
    for sha in listing.unreadable:
        errors.append(f"object {sha} is corrupt and could not be read; the scan went on without it")
    for sha, problem in scanned.problems:
        errors.append(f"object {sha} could not be read ({problem}); the scan went on without it")
    errors += switched_off_messages(ruleset, [(event, f"object {sha}") for event, sha in scanned.timeouts])

    def ask_reachable() -> set[str] | None:
        try:
            if reachable_walk is not None:  # started beside the scan (--all-objects)
                return set(b"".join(reachable_walk.chunks()).decode().split())
            return git.reachable_commits(repo, stash)
        except GitError as exc:
            errors.append(f"could not list the commits refs reach ({exc}); findings are marked reachable as the log "
                          "walk saw them")
            return None

    # Outside --all-objects the log walk starts where rev-list would (every ref and the stash):
    # what it walks is what refs reach, unless it stops early. One git process less per scan.
    reachable = ask_reachable() if all_objects else None
    tags: dict[str, str] | None = None  # asked for only if a tag object holds a finding
    interesting_blobs = {s for s, m in scanned.found.items() if m.kind == "blob"} | set(too_large)
    interesting_commits = {s for s, m in scanned.found.items() if m.kind == "commit"}
    records: dict[str, CommitRecord] = {}
    introductions: dict[str, list[tuple[str, str]]] = {}
    missing: dict[str, tuple[str, str]] = {}
    current: CommitRecord | None = None
    walked: set[str] = set()
    walk_failed = False
    try:
        # Only the changes that introduce a blob with findings, or one the repository lacks.
        for item in parse_log(log_chunks, lambda new: new in interesting_blobs or new not in existing_blobs):
            if isinstance(item, CommitRecord):
                item = redact_summary(item, scanned.found.get(item.info.sha))
                current = item
                walked.add(item.info.sha)
                if item.info.sha in interesting_commits:
                    records[item.info.sha] = item
                continue
            if item.new in interesting_blobs:
                introductions.setdefault(item.new, []).append((item.commit, item.path))
                if current is not None:
                    records[current.info.sha] = current
            elif item.new not in existing_blobs and item.new not in missing:
                missing[item.new] = (item.path, item.commit)
    except GitError as exc:
        walk_failed = True
        # A corrupt commit or tree stops git's walk: what it walked is attributed, and what
        # was found in blobs it never reached is still reported, without a commit.
        errors.append(f"the history walk stopped early ({exc}); findings in blobs it did not reach are "
                      "reported without their commit")
    if reachable is None and walk_failed and not all_objects:
        reachable = ask_reachable()
    if reachable is None:
        reachable = walked
    named = sorted(missing.items(), key=lambda kv: kv[1])
    for sha, (path, commit) in named[:MAX_NAMED_MISSING]:
        warnings.append(f"blob {sha} ({path} in commit {commit[:12]}) is missing from the repository; not scanned")
    if len(named) > MAX_NAMED_MISSING:
        warnings.append(f"{len(named) - MAX_NAMED_MISSING} more blobs are missing from the repository (a partial "
                        "clone or a damaged pack?); not scanned: `git fetch --refetch` or a full clone completes it")

    candidates: list[tuple[CommitRecord | None, Finding]] = []
    skipped: list[tuple[str, str]] = []
    for sha, size in too_large.items():
        places = sorted({path for _, path in introductions.get(sha, [])})
        if places or all_objects:
            where = ", ".join(places) if places else f"unreachable blob {sha}"
            skipped.append((where, f"blob {sha[:12]} larger than the {max_size}-byte limit ({size} bytes)"))
    behind_refs: dict[str, list[str]] | None = None
    for sha, found in scanned.found.items():
        if found.kind == "blob":
            intros = introductions.get(sha, [])
            if not intros:
                if behind_refs is None:
                    behind_refs = _listed(lambda: git.blobs_behind_refs(repo), "blobs that tags reach", errors)
                for place in behind_refs.get(sha, []):
                    for finding in findings_from_matches(found.matches, path=place, source="git-blob", blob=sha):
                        candidates.append((None, finding))
                if sha in behind_refs:
                    continue
                if all_objects:
                    for finding in findings_from_matches(found.matches, path=None, source="unreachable-blob", blob=sha, reachable=False):
                        candidates.append((None, finding))
                elif walk_failed:
                    # The walk that would name its commit and path broke: reported by blob.
                    for finding in findings_from_matches(found.matches, path=None, source="git-blob", blob=sha):
                        candidates.append((None, finding))
                continue
            for commit, path in intros:
                record = records[commit]
                for finding in findings_from_matches(found.matches, path=path, source="git-blob", commit=record.info,
                                                     blob=sha, reachable=commit in reachable):
                    candidates.append((record, finding))
        elif found.kind == "commit":
            commit_record = records.get(sha)
            if commit_record is None:
                continue  # a commit no ref reaches, outside --all-objects
            for finding in findings_from_matches(found.matches, path=None, source="commit-message",
                                                 commit=commit_record.info, reachable=sha in reachable):
                candidates.append((commit_record, finding))
        elif found.kind == "tag":
            if tags is None:
                tags = _listed(lambda: git.tag_objects(repo), "tags", errors)
            name = tags.get(sha)
            if name is None and not all_objects:
                continue
            data = next(git.read_objects(repo, [sha])).data
            info = tag_info(sha, name or "(no ref)", data)
            for finding in findings_from_matches(found.matches, path=None, source="tag-message", commit=info,
                                                 reachable=name is not None):
                candidates.append((None, finding))
    secrets_by_blob = {sha: frozenset(m.secret.digest for m in found.matches)
                       for sha, found in scanned.found.items() if found.kind == "blob"}
    return HistoryScan(earliest_findings(candidates), scanned.blobs, scanned.commits, scanned.bytes, warnings, skipped,
                       errors, secrets_by_blob)
