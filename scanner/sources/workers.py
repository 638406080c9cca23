"""Worker processes: started and stopped so that an interrupted scan leaves nothing behind.

A worker ignores the terminal's Ctrl-C (the main process decides what an interrupt means
and stops every worker itself) and dies with its parent, so even a main process killed
outright (SIGKILL) leaves no orphan reading the repository for minutes.
"""

from __future__ import annotations

import signal
import sys
from concurrent.futures import ProcessPoolExecutor

_PR_SET_PDEATHSIG = 1


def detach_worker() -> None:
    """Run first in every worker process."""
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
    for pid in processes:
        process = handles.get(pid)
        if process is not None and process.is_alive():
            process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    for pid in processes:
        process = handles.get(pid)
        if process is not None:
            process.join(timeout=5)
