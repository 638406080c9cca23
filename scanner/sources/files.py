"""Files on disk: walk a folder (or take one file), read, sniff and scan in parallel."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from scanner.engine.detect import Match, as_scannable, detect
from scanner.engine.rules import RuleSet
from scanner.pathfilter import PathFilter

# Below this much work, starting worker processes costs more than it saves.
PARALLEL_MIN_FILES = 48
PARALLEL_MIN_BYTES = 4 * 1024 * 1024
BATCH_FILES = 32


@dataclass(frozen=True, slots=True)
class FileEntry:
    absolute: str
    relative: str  # to the scanned root, '/'-separated
    size: int


@dataclass(frozen=True, slots=True)
class FileResult:
    relative: str
    matches: tuple[Match, ...]
    skipped: str | None  # why the file was not scanned, if it was not
    size: int
    timed_out: tuple[str, ...] = ()  # rules disabled while scanning it (out of time)


@dataclass(frozen=True, slots=True)
class WalkProblem:
    relative: str
    reason: str


def _display(path: str) -> str:
    """File names that are not UTF-8 reach Python as surrogates; reports show them escaped."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def walk(root: Path, excludes: PathFilter) -> Iterator[FileEntry | WalkProblem]:
    """Every regular file under ``root`` except .git/, without following symlinks.

    A symlink is not followed: its target, if inside ``root``, is scanned at its own path,
    and one pointing outside is not ours to read.
    """
    if root.is_file():
        yield FileEntry(str(root), _display(root.name), root.stat().st_size)
        return
    problems: list[WalkProblem] = []

    def on_error(error: OSError) -> None:
        where = os.path.relpath(error.filename, root) if error.filename else str(root)
        problems.append(WalkProblem(_display(Path(where).as_posix()), error.strerror or str(error)))

    for folder, dirs, files in os.walk(root, onerror=on_error):
        yield from problems
        problems.clear()
        rel_folder = os.path.relpath(folder, root)
        rel_folder = "" if rel_folder == "." else Path(rel_folder).as_posix() + "/"
        dirs[:] = sorted(d for d in dirs if d != ".git" and not excludes.excluded_folder(rel_folder + d))
        for name in sorted(files):
            relative = rel_folder + name
            relative = _display(relative)
            if name == ".git" or excludes.excluded(relative):
                continue
            absolute = os.path.join(folder, name)
            try:
                info = os.lstat(absolute)
            except OSError as exc:
                yield WalkProblem(relative, exc.strerror or str(exc))
                continue
            if stat.S_ISREG(info.st_mode):
                yield FileEntry(absolute, relative, info.st_size)
    yield from problems


def scan_file(entry: FileEntry, ruleset: RuleSet, max_size: int) -> FileResult:
    if entry.size > max_size:
        return FileResult(entry.relative, (), f"larger than the {max_size}-byte limit ({entry.size} bytes)", entry.size)
    try:
        with open(entry.absolute, "rb") as handle:
            data = handle.read(max_size + 1)
    except FileNotFoundError:
        return FileResult(entry.relative, (), "vanished during the scan", 0)
    except OSError as exc:
        return FileResult(entry.relative, (), f"cannot be read: {exc.strerror or exc}", 0)
    if len(data) > max_size:
        return FileResult(entry.relative, (), f"larger than the {max_size}-byte limit (grew during the scan)", len(data))
    text = as_scannable(data)
    if text is None:
        return FileResult(entry.relative, (), "binary", len(data))
    matches = tuple(detect(text, ruleset))
    return FileResult(entry.relative, matches, None, len(data), tuple(ruleset.health.take()))


_worker_ruleset: RuleSet | None = None


def _init_worker(ruleset: RuleSet) -> None:
    from scanner.sources.workers import detach_worker  # noqa: PLC0415 - already imported by the parent (fork)

    detach_worker()
    global _worker_ruleset
    _worker_ruleset = ruleset


def _scan_batch(batch: Sequence[FileEntry], max_size: int) -> list[FileResult]:
    assert _worker_ruleset is not None
    return [scan_file(entry, _worker_ruleset, max_size) for entry in batch]


def scan_files(entries: Sequence[FileEntry], ruleset: RuleSet, max_size: int, jobs: int) -> Iterator[FileResult]:
    """Scan files, in worker processes when there is enough work to pay for them."""
    total = sum(min(e.size, max_size) for e in entries)
    if jobs <= 1 or (len(entries) < PARALLEL_MIN_FILES and total < PARALLEL_MIN_BYTES):
        for entry in entries:
            yield scan_file(entry, ruleset, max_size)
        return
    from scanner.sources.workers import signals_deferred, stop_pool

    batches = [entries[i : i + BATCH_FILES] for i in range(0, len(entries), BATCH_FILES)]
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker, initargs=(ruleset,))
    try:
        # The workers are forked during map's first submit. A Ctrl-C handled in the middle of a
        # fork runs in an at-fork callback (logging registers some), where Python drops the
        # exception it raises: the scan would run on. Delivered once the workers exist.
        with signals_deferred():
            futures = [pool.submit(_scan_batch, batch, max_size) for batch in batches]
        # Not pool.map: its iterator cancels the pending futures from this thread as an
        # interrupt passes through it, while the executor's own thread, finding its workers
        # killed, sets an error on each (Python 3.11 then prints an InvalidStateError
        # traceback from that thread). stop_pool cancels them in the executor's thread.
        for future in futures:
            yield from future.result()
    except BaseException:
        # Interrupted (a signal, an error, the consumer stopped early): the executor's own
        # exit would first run every queued batch, holding a Ctrl-C for the whole scan.
        stop_pool(pool)
        raise
    pool.shutdown()
