"""A progress line on standard error for long scans, only when it is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressLine:
    """Objects and bytes done, rate and ETA, redrawn at most a few times a second."""

    def __init__(self, stream: TextIO = sys.stderr, interval: float = 0.25) -> None:
        self.stream = stream
        self.interval = interval
        self.started = time.monotonic()
        self.last = 0.0
        self.drawn = False

    def __call__(self, done: int, total: int, done_bytes: int, total_bytes: int) -> None:
        now = time.monotonic()
        if now - self.last < self.interval and done < total:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-6)
        rate = done_bytes / elapsed
        eta = (total_bytes - done_bytes) / rate if rate > 0 else 0.0
        percent = 100.0 * done_bytes / total_bytes if total_bytes else 100.0
        line = (f"\rscanning history: {done}/{total} objects, {done_bytes / 2**20:.0f}/{total_bytes / 2**20:.0f} MiB "
                f"({percent:.0f}%), {rate / 2**20:.1f} MiB/s, ETA {eta:.0f}s ")
        self.stream.write(line)
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
