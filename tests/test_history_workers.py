"""History workers under attack: a worker that dies mid-slice must fail the scan at once."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from scanner.engine.rules import load_ruleset
from scanner.errors import GitError
from scanner.sources import history
from scanner.sources.git import find_repository
from tests.gitrepo import GitRepo


class _Hung(Exception):
    pass


def _on_alarm(_signum: int, _frame: object) -> None:
    raise _Hung


def test_worker_killed_mid_slice_fails_the_scan_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = GitRepo(tmp_path / "repo")
    for i in range(1600):  # written here and added at once: one git add per file is slow
        repo.write(f"d{i % 10}/f{i}.txt", f"line {i}\n" * (i % 7 + 1))
    repo.git("add", "-A")
    repo.commit("many")
    found = find_repository(repo.path, search_parents=False)
    assert found is not None
    monkeypatch.setattr(history, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(history, "MIN_SLICE_BYTES", 1)
    monkeypatch.setattr(history, "GUIDED_MIN_SHARE", 0.0)
    objects = history.list_history(found, 10**7).to_scan
    acted: list[int] = []

    def progress(*_counts: int) -> None:
        if acted:
            return
        alive = [p for p in multiprocessing.active_children() if p.is_alive() and p.pid is not None]
        assert len(alive) == 2  # the test needs a worker to kill and one still working
        # The other worker is stopped: it stands for one blocked for good on the task queue's
        # lock, which a worker killed inside tasks.get() never releases.
        os.kill(alive[1].pid, signal.SIGSTOP)  # type: ignore[arg-type]
        os.kill(alive[0].pid, signal.SIGKILL)  # type: ignore[arg-type]
        acted.append(1)

    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(15)
    started = time.monotonic()
    try:
        with pytest.raises(GitError, match="died unexpectedly"):
            history.scan_objects(found, objects, load_ruleset(), 2, progress)
    except _Hung:
        pytest.fail("the scan waited for a worker stuck behind a dead one")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert acted
    assert time.monotonic() - started < 20
    assert not [p for p in multiprocessing.active_children() if p.is_alive()]
