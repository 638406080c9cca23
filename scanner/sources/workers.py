"""Worker processes: started and stopped so that an interrupted scan leaves nothing behind.

A worker ignores the terminal's Ctrl-C (the main process decides what an interrupt means
and stops every worker itself) and dies with its parent, so even a main process killed
outright (SIGKILL) leaves no orphan reading the repository for minutes.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

_PR_SET_PDEATHSIG = 1
_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Interrupting signals that arrive during the block are delivered after it.

    Not by blocking them: a process started meanwhile would inherit the blocked mask.
    """
    received: list[int] = []
    previous = {signum: signal.getsignal(signum) for signum in _STOP_SIGNALS}

    def record(signum: int, _frame: object) -> None:
        received.append(signum)

    for signum in _STOP_SIGNALS:
        if previous[signum] != signal.SIG_IGN:
            signal.signal(signum, record)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if received:
            signal.raise_signal(received[0])


def start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker (the helper process that unlinks a spawn
    context's semaphores) deaf to SIGHUP, before any queue or pipe needs it.

    It ignores SIGINT and SIGTERM itself, not SIGHUP: a closed terminal (SIGHUP to the whole
    process group) killed it, and the main process, stopping its workers, started a new one
    that printed a KeyError traceback for every semaphore it had never seen. An ignored
    signal stays ignored across exec; the tracker still ends when this process does (its
    pipe closes)."""
    from multiprocessing import resource_tracker

    hangup = getattr(signal, "SIGHUP", None)
    if hangup is None:
        resource_tracker.ensure_running()
        return
    previous = signal.signal(hangup, signal.SIG_IGN)
    try:
        resource_tracker.ensure_running()
    finally:
        signal.signal(hangup, previous)


def detach_worker() -> None:
    """Run first in every worker process."""
    # A forked worker inherits the main process's handlers, which turn SIGTERM into an
    # exception (and a traceback); a worker told to stop just stops.
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl: the main process still stops its workers on every way out it sees


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now: queued work is dropped and running workers are terminated."""
    processes = list(getattr(pool, "_processes", None) or {})
    handles = getattr(pool, "_processes", None) or {}
    # Taken now: shutdown() drops the executor's reference to its manager thread.
    manager = getattr(pool, "_executor_manager_thread", None)
    for pid in processes:
        process = handles.get(pid)
        if process is not None and process.is_alive():
            process.kill()  # SIGKILL: a worker still starting has not yet installed its handlers
    pool.shutdown(wait=False, cancel_futures=True)
    for pid in processes:
        process = handles.get(pid)
        if process is not None:
            process.join(timeout=5)
    # The executor's manager thread closes its wake-up pipe as it ends; the interpreter's exit
    # hook writes to that pipe, and racing with the close it prints a traceback (EBADF). Let
    # the thread finish first.
    if manager is not None:
        manager.join(timeout=5)
