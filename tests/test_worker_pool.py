"""stop_pool leaves no executor thread behind for the interpreter's exit hook to race with."""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import process as futures_process

from scanner.sources.workers import detach_worker, stop_pool


def test_stop_pool_ends_the_executor_thread_before_returning() -> None:
    pool = ProcessPoolExecutor(max_workers=2, initializer=detach_worker)
    futures = [pool.submit(time.sleep, 30) for _ in range(4)]
    while not any(f.running() for f in futures):
        time.sleep(0.01)
    manager = pool._executor_manager_thread  # type: ignore[attr-defined]
    assert manager is not None and manager.is_alive()
    started = time.monotonic()
    stop_pool(pool)
    # Python's exit hook writes to the wake-up pipe of every executor thread it still knows;
    # a thread closing that pipe at the same moment made it print an EBADF traceback.
    assert not manager.is_alive()
    assert all(not thread.is_alive() for thread in list(futures_process._threads_wakeups))
    assert time.monotonic() - started < 10, "stop_pool waited for the sleeping work"
    assert all(f.cancelled() or f.done() for f in futures)
