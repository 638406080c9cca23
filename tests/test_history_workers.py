"""History workers under attack: a worker that dies mid-slice must fail the scan at once."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from scanner.engine.rules import load_ruleset
from scanner.errors import GitError
from scanner.sources import history
from scanner.sources.git import ObjectInfo, Repository, find_repository
from tests.gitrepo import GitRepo


class _Hung(Exception):
    pass


def _on_alarm(_signum: int, _frame: object) -> None:
    raise _Hung


def _committed_with_small_slices(repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> Repository:
    """The files written so far committed; history scans of any size use workers, many slices."""
    repo.git("add", "-A")
    repo.commit("files")
    found = find_repository(repo.path, search_parents=False)
    assert found is not None
    monkeypatch.setattr(history, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(history, "MIN_SLICE_BYTES", 1)
    monkeypatch.setattr(history, "GUIDED_MIN_SHARE", 0.0)
    return found


def _scan_fails_without_hanging(repo: Repository, objects: Sequence[ObjectInfo], progress: Callable[..., None],
                                seconds: int, hung: str) -> None:
    """scan_objects with 2 workers must raise "died unexpectedly" within ``seconds``."""
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(seconds)
    try:
        with pytest.raises(GitError, match="died unexpectedly"):
            history.scan_objects(repo, objects, load_ruleset(), 2, progress)
    except _Hung:
        pytest.fail(hung)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_worker_killed_mid_slice_fails_the_scan_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = GitRepo(tmp_path / "repo")
    for i in range(1600):  # written here and added at once: one git add per file is slow
        repo.write(f"d{i % 10}/f{i}.txt", f"line {i}\n" * (i % 7 + 1))
    found = _committed_with_small_slices(repo, monkeypatch)
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

    started = time.monotonic()
    _scan_fails_without_hanging(found, objects, progress, 15, "the scan waited for a worker stuck behind a dead one")
    assert acted
    assert time.monotonic() - started < 20
    assert not [p for p in multiprocessing.active_children() if p.is_alive()]


def test_log_fields_a_repository_forges_do_not_break_or_spoof_attribution(tmp_path: Path) -> None:
    """A commit's author and message are the repository's: the log's separators in them
    (\\x1f between fields, \\x01 between commits) must not fail the scan or make up a commit."""
    from tests.conftest import run_keysweep
    from tests.keygen import KeySet

    repo = GitRepo(tmp_path / "repo")
    keys = KeySet.generate()
    repo.write("creds.env", f"AWS_ACCESS_KEY_ID={keys.key_id}\nAWS_SECRET_ACCESS_KEY={keys.secret}\n")
    repo.git("add", "creds.env")
    forged = "f" * 40
    env = {**repo.env(), "GIT_AUTHOR_NAME": "Mal\x1flory\x1fNaN"}
    subprocess.run(["git", "commit", "-q", "-m", f"tidy \x01{forged}\x1f\x1fSpoofer\x1fs@x\x1f2001-01-01\x1f1\x1fok"],
                   cwd=repo.path, env=env, check=True)
    real = repo.git("rev-parse", "HEAD")
    result = run_keysweep("scan", "--history-only", "--no-progress", "-f", "json", repo.path)
    assert result.returncode == 1, result.stderr
    findings = json.loads(result.stdout)["findings"]
    assert findings and {f["commit"]["sha"] for f in findings} == {real}
    assert all(f["commit"]["author"] == "Mal\x1flory\x1fNaN" for f in findings)
    assert all(f["commit"]["summary"].startswith(f"tidy \x01{forged}\x1f") for f in findings)


_INTERRUPTED_AT_START = """
import contextlib, multiprocessing, sys
from pathlib import Path
from scanner.engine.rules import load_ruleset
from scanner.sources import history, workers
from scanner.sources.git import find_repository

@contextlib.contextmanager
def interrupted_while_starting():
    yield
    raise KeyboardInterrupt  # what signals_deferred does when Ctrl-C came during its block

workers.signals_deferred = interrupted_while_starting
history.PARALLEL_MIN_BYTES = 0
history.MIN_SLICE_BYTES = 1
history.GUIDED_MIN_SHARE = 0.0
repo = find_repository(Path(sys.argv[1]), search_parents=False)
try:
    history.scan_objects(repo, history.list_history(repo, 10**7).to_scan, load_ruleset(), 2)
except KeyboardInterrupt:
    print("alive", len([p for p in multiprocessing.active_children() if p.is_alive()]), flush=True)
"""


def test_interrupt_while_workers_start_stops_them_and_exits(tmp_path: Path) -> None:
    """Ctrl-C while the workers start is delivered once they have: the scan must still stop
    them and drop the slices not yet handed out (more than a pipe holds), or the process
    waits for good at exit on the thread still writing them."""
    repo = GitRepo(tmp_path / "repo")
    stream = b"".join(b"blob\nmark :%d\ndata %d\n%s\n" % (i + 1, len(b"f%d\n" % i), b"f%d\n" % i) for i in range(3000))
    stream += b"commit refs/heads/main\ncommitter t <t@e> 1700000000 +0000\ndata 2\nc\n"
    stream += b"".join(b"M 100644 :%d f%d.txt\n" % (i + 1, i) for i in range(3000)) + b"\n"
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo.path, input=stream, check=True)
    try:
        proc = subprocess.run([sys.executable, "-c", _INTERRUPTED_AT_START, str(repo.path)],
                              capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("the interrupted scan never exited")
    assert proc.stdout.strip() == "alive 0", proc.stderr
    assert proc.returncode == 0, proc.stderr


def test_worker_killed_while_sending_a_large_batch_fails_the_scan_and_does_not_hang(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker killed halfway through sending a batch (more than a pipe holds: a file with
    thousands of findings) must not leave a half message the main process waits on for good."""
    from tests.keygen import key_id

    if not Path("/proc/self/wchan").exists():
        pytest.skip("needs /proc/PID/wchan to see a worker blocked writing to its pipe")
    repo = GitRepo(tmp_path / "repo")
    # Two dense files, one slice each: each worker's first batch is megabytes of matches.
    for name in ("a.txt", "b.txt"):
        repo.write(name, " ".join(key_id() for _ in range(12_000)) + "\n")
    found = _committed_with_small_slices(repo, monkeypatch)
    objects = [o for o in history.list_history(found, 10**7).to_scan if o.kind == "blob"]
    assert len(objects) == 2
    caught: list[int] = []
    tried: list[bool] = []

    def progress(*_counts: int) -> None:
        # The main process stops reading here, as a slow one would: the other worker fills its
        # pipe mid-message and blocks; it is killed there.
        if tried:
            return
        tried.append(True)
        deadline = time.monotonic() + 15
        while not caught and time.monotonic() < deadline:
            for child in multiprocessing.active_children():
                if child.pid is None or not child.is_alive():
                    continue
                try:
                    waiting = Path(f"/proc/{child.pid}/wchan").read_text()
                except OSError:
                    continue
                if "pipe_write" in waiting:  # pipe_write, anon_pipe_write (kernel versions)
                    os.kill(child.pid, signal.SIGKILL)
                    caught.append(child.pid)
                    break
            time.sleep(0.01)

    _scan_fails_without_hanging(found, objects, progress, 40, "the scan hung on the killed worker's half-sent batch")
    if not caught:
        pytest.skip("no worker was caught writing to a full pipe (kernel names its wait otherwise)")


def test_a_rule_switched_off_in_every_worker_is_reported_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each worker process switches a flooding rule off in its own; the scan says so once."""
    from scanner.engine.rules import RuleSet, parse_rule_file

    repo = GitRepo(tmp_path / "repo")
    for i in range(400):
        repo.write(f"d{i % 10}/f{i}.txt", "abc1 de2 fgh3 " * 400 + f"{i}\n")  # 480,000 values in all
    found = _committed_with_small_slices(repo, monkeypatch)
    custom = parse_rule_file(
        "version: 1\nrules:\n  - id: any-digit\n    description: a digit after letters\n    kind: secret\n"
        "    patterns: ['[a-z]{0,30}(?P<secret>[0-9])']\n"
        "    examples: {positive: ['abc1'], negative: ['abc']}\n", "digits.yaml")
    ruleset = RuleSet(load_ruleset().rules + tuple(custom))
    result = history.scan_history(found, ruleset, all_objects=False, max_size=10**7, jobs=2)
    switched_off = [error for error in result.errors if "'any-digit'" in error]
    assert len(switched_off) == 1, result.errors
    assert "digits.yaml" in switched_off[0]
