"""Run in each worker process of the embedded cluster as it starts (Dask's preload).

Ctrl-C on a terminal goes to every process of the foreground group: the command stops its
cluster itself (and says "interrupted"), but each worker process also got the signal and
printed Dask's traceback of it. A worker ignores it, as the history scan's workers do.
"""

from __future__ import annotations

import signal
from typing import Any


def dask_setup(worker: Any) -> None:
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:
        pass  # not the process's main thread: Dask runs it there, but nothing depends on it
