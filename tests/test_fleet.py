"""keysweep audit on real Dask clusters: an in-process LocalCluster, and a real `dask
scheduler` with `dask worker` processes on 127.0.0.1 driven by the CLI (--scheduler)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from scanner.engine.rules import load_ruleset
from scanner.fleet.targets import Target, expand_targets, is_url, read_targets_file
from scanner.fleet.refs import files_digest, git_dir_of, local_refs_state, refs_state
from scanner.fleet.tasks import AuditSettings, Known, RepoDone, shared_ruleset
from scanner.scan import DEFAULT_MAX_FILE_SIZE
from scanner.sources.git import find_repository
from scanner.sources.history import scan_history
from tests.conftest import CliResult, run_keysweep
from tests.gitrepo import GitRepo
from tests.keygen import KeySet

distributed = pytest.importorskip("distributed")

WAIT = 60.0  # seconds: the longest any wait in these tests may take


def env_file(keys: KeySet) -> str:
    return f"AWS_ACCESS_KEY_ID={keys.key_id}\nAWS_SECRET_ACCESS_KEY={keys.secret}\n"


def make_repo(path: Path, index: int, *, filler: int = 0) -> GitRepo:
    """A small repository: a secret added then deleted, one still in the tree, some filler text."""
    repo = GitRepo(path)
    repo.commit("initial", {"README.md": f"# project {index}\n" + "lorem ipsum dolor sit amet\n" * filler})
    repo.commit("add settings", {"config/old.env": env_file(KeySet.generate())})
    repo.commit("remove settings", {"config/old.env": None})
    repo.commit("deploy", {f"deploy/{index}.env": env_file(KeySet.generate())})
    return repo


def corrupt(repo: GitRepo) -> None:
    """Pack everything, then overwrite the pack's contents: git cannot read the history."""
    repo.git("gc", "-q")
    for pack in (repo.path / ".git" / "objects" / "pack").glob("*.pack"):
        os.chmod(pack, 0o644)
        data = bytearray(pack.read_bytes())
        data[20:] = b"\0" * (len(data) - 20)
        pack.write_bytes(bytes(data))


def plain_findings(path: Path) -> set[tuple[str, str, str, str]]:
    """What a plain history scan (no Dask, no state) finds: the reference."""
    repo = find_repository(path, search_parents=False)
    assert repo is not None
    result = scan_history(repo, load_ruleset(), all_objects=False, max_size=DEFAULT_MAX_FILE_SIZE, jobs=1)
    return {(str(path), f.fingerprint, f.commit.sha if f.commit else "", f.secret.reveal()) for f in result.findings}


def audit_findings(result: CliResult) -> set[tuple[str, str, str, str]]:
    document = result.json()
    return {(f["repository"], f["fingerprint"], f["commit"]["sha"] if f["commit"] else "", f["secret"])
            for f in document["findings"]}


def summaries(result: CliResult) -> dict[str, dict[str, Any]]:
    return {s["repository"]: s for s in result.json()["summary"]["repositories"]}


# --- a real scheduler and workers, in processes of their own ------------------------------


class DaskProcesses:
    def __init__(self, folder: Path, workers: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.scheduler_file = folder / "scheduler.json"
        dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
        self.scheduler = subprocess.Popen(
            [*dask, "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(self.scheduler_file)],
            cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + WAIT
        while not self.scheduler_file.exists():
            assert time.monotonic() < deadline, "the dask scheduler did not start"
            assert self.scheduler.poll() is None, "the dask scheduler exited"
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written whole, but give its writer a moment
        self.address = json.loads(self.scheduler_file.read_text())["address"]
        self.workers = [self.start_worker(f"w{n}") for n in range(workers)]
        self.wait_for_workers(workers)

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        # --no-nanny: killing the worker's process loses the worker (a nanny would hide it).
        return subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", self.address, "--nthreads", "1", "--no-nanny", "--name", name,
             "--no-dashboard", "--host", "127.0.0.1", "--local-directory", str(self.folder)],
            cwd=self.folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def client(self) -> Any:
        return distributed.Client(self.address, timeout="30s")

    def wait_for_workers(self, count: int) -> None:
        with self.client() as client:
            client.wait_for_workers(count, timeout=WAIT)

    def close(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc.poll() is None:
                proc.terminate()
        for proc in [*self.workers, self.scheduler]:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskProcesses]:
    cluster = DaskProcesses(tmp_path_factory.mktemp("dask"), workers=2)
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """19 repositories in a folder (one of them corrupt, one bare, one nested two levels
    down), built once for every test that only reads them."""
    root = tmp_path_factory.mktemp("fleet") / "org"
    for index in range(19):
        where = root / "team" / f"nested-{index}" if index == 5 else root / f"repo-{index:02}"
        make_repo(where, index, filler=200)
    bare = root / "mirror-07.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(root / "repo-07"), str(bare)], check=True)
    subprocess.run(["rm", "-rf", str(root / "repo-07")], check=True)
    corrupt(GitRepo(root / "repo-13", init=False))
    return root, root / "repo-13"


def run_audit(*args: str | Path, timeout: float = 120) -> CliResult:
    return run_keysweep("audit", "--no-progress", *args, timeout=timeout)


# --- tests ----------------------------------------------------------------------------------


def test_targets_are_found_in_folders_and_files(fleet: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = fleet
    found = expand_targets([str(root)])
    assert len(found) == 19
    assert Target(str(root / "team" / "nested-5")) in found and Target(str(root / "mirror-07.git")) in found
    listing = tmp_path / "targets.txt"
    listing.write_text(f"# the organisation\n{root / 'repo-00'}\n\ngit@example.invalid:org/x.git  # a comment\n"
                       "https://example.invalid/org/y.git#main\n")
    assert read_targets_file(listing) == [str(root / "repo-00"), "git@example.invalid:org/x.git",
                                          "https://example.invalid/org/y.git#main"]
    assert is_url("ssh://host/x") and is_url("file:///x") and not is_url("/some/path") and not is_url("a:b")
    # "-": standard input, as a pipe from a listing command gives it.
    piped = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                            "from scanner.fleet.targets import read_targets_file; "
                            "print(read_targets_file(Path('-')))"],
                           input=listing.read_bytes(), capture_output=True, check=True)
    assert piped.stdout.decode().strip() == repr(read_targets_file(listing))
    # A token in a URL never reaches a report or the state.
    [with_token] = expand_targets(["https://ci:glpat-abc123@git.example.invalid/org/x.git"])
    assert with_token.name == "https://ci:***@git.example.invalid/org/x.git" and "glpat-abc123" in str(with_token.url)


def test_local_cluster_in_process_splits_a_repository_and_attributes_after(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from distributed import Client

    from scanner.fleet import command
    from scanner.fleet.command import local_cluster, run_fleet

    # Three repositories, one task per worker at least: a batch of two and one alone, so a
    # split comes back both inside a batch and as a task's own result.
    monkeypatch.setattr(command, "TASKS_PER_WORKER", 1)
    repos = [make_repo(tmp_path / f"r{i}", i, filler=50) for i in range(3)]
    targets = [Target(str(r.path)) for r in repos]
    ruleset = load_ruleset()
    with local_cluster(2) as cluster, Client(cluster) as client:
        # The embedded cluster's workers start without Dask's malloc setting and profiler.
        def setup() -> tuple[str | None, bool]:
            import dask

            return os.environ.get("MALLOC_TRIM_THRESHOLD_"), bool(dask.config.get("distributed.worker.profile.enabled"))

        assert list(client.run(setup).values()) == [(None, False)] * 2
        # split_bytes=1: every repository is cut into slices scanned by both workers.
        settings = AuditSettings(cache=None, max_size=DEFAULT_MAX_FILE_SIZE, split_slices=2, split_bytes=1)
        functions: list[str] = []

        class Recording:
            def submit(self, function: Any, *args: Any, **kwargs: Any) -> Any:
                functions.append(function.__name__)
                return client.submit(function, *args, **kwargs)

            def __getattr__(self, name: str) -> Any:
                return getattr(client, name)

        results = run_fleet(Recording(), targets, {}, settings, ruleset)

        def logs_left() -> int:
            from scanner.fleet import tasks

            return len(tasks._started_logs)

        # No walk is left on either worker: each attribution took the one started where its
        # split was made, or (Dask ran it elsewhere, as a busy worker or work stealing decides)
        # the client dropped it there once the attribution was over.
        left = list(client.run(logs_left).values())
        for _ in range(100):
            if left == [0, 0]:
                break
            time.sleep(0.05)
            left = list(client.run(logs_left).values())
        assert left == [0, 0]
    assert sorted(set(functions)) == ["attribute_task", "audit_batch", "audit_repository", "scan_slice_task"]
    assert functions.count("attribute_task") == 3
    for repo in repos:
        result = results[str(repo.path)]
        assert result.error is None and isinstance(result.done, RepoDone) and result.done.history is not None
        got = {(str(repo.path), f.fingerprint, f.commit.sha if f.commit else "", f.secret.reveal())
               for f in result.done.history.findings}
        assert got == plain_findings(repo.path) and len(got) == 4
        assert result.done.objects == len(result.done.new_objects) == 4 + 3  # 4 commits, 3 blobs


def test_fleet_with_a_corrupt_repository_and_an_unclonable_url(fleet: tuple[Path, Path], dask_cluster: DaskProcesses,
                                                                 tmp_path: Path) -> None:
    root, broken = fleet
    missing_url = (tmp_path / "no-such-repo.git").as_uri()
    result = run_audit(root, missing_url, "--scheduler", dask_cluster.address, "--state", tmp_path / "state.sqlite",
                       "--cache", tmp_path / "cache", "--format", "json", "--show-secrets")
    assert result.returncode == 3, result.stderr
    per_repo = summaries(result)
    assert len(per_repo) == 20
    failed = {name: s["errors"] for name, s in per_repo.items() if s["errors"]}
    assert set(failed) == {str(broken), missing_url}
    assert "pack" in failed[str(broken)][0] and "cannot clone" in failed[missing_url][0]
    assert f"{missing_url}: cannot clone" in result.stderr
    scanned = [s for s in per_repo.values() if not s["errors"]]
    assert len(scanned) == 18 and all(s["objects"] == 7 and s["findings"] == 4 for s in scanned)
    expected: set[tuple[str, str, str, str]] = set()
    for target in expand_targets([str(root)]):
        if target.name != str(broken):
            expected |= plain_findings(Path(target.name))
    assert audit_findings(result) == expected and len(expected) == 18 * 4
    assert all(f["status"] == "open" for f in result.json()["findings"])


def test_a_worker_killed_mid_audit_loses_no_finding(fleet: tuple[Path, Path], tmp_path: Path) -> None:
    root, broken = fleet
    cluster = DaskProcesses(tmp_path / "dask", workers=2)
    try:
        command = [sys.executable, "-m", "scanner", "audit", "--no-progress", str(root), "--scheduler", cluster.address,
                   "--state", str(tmp_path / "state.sqlite"), "--format", "json", "--show-secrets"]
        victim = None
        killed_keys: list[str] = []
        with cluster.client() as watcher:
            # Up to three audits: one that ends before a task can be seen is run again.
            for _attempt in range(3):
                audit = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                deadline = time.monotonic() + WAIT
                while victim is None and audit.poll() is None:
                    assert time.monotonic() < deadline, "no audit task ever ran"
                    workers = watcher.scheduler_info()["workers"]
                    busy = [(addr, keys) for addr, keys in watcher.processing().items()
                            if addr in workers and any("keysweep" in str(k) for k in keys)]
                    if busy:
                        victim = cluster.workers[int(str(workers[busy[0][0]]["name"]).removeprefix("w"))]
                        os.kill(victim.pid, signal.SIGKILL)
                        killed_keys = [str(k) for k in busy[0][1]]
                    time.sleep(0.01)
                stdout, stderr = audit.communicate(timeout=WAIT * 2)
                if victim is not None:
                    break
        assert victim is not None, "every audit ended before a worker could be killed"
        assert victim.wait(timeout=10) == -signal.SIGKILL
        # The 19 small repositories go several to a task: the task lost was a batch, run again whole.
        assert any(key.startswith("keysweep-batch-") for key in killed_keys), killed_keys
        assert audit.returncode == 3, stderr  # the corrupt repository, and nothing else
        result = CliResult(audit.returncode, stdout, stderr)
        failed = [name for name, s in summaries(result).items() if s["errors"]]
        assert failed == [str(broken)]
        expected: set[tuple[str, str, str, str]] = set()
        for target in expand_targets([str(root)]):
            if target.name != str(broken):
                expected |= plain_findings(Path(target.name))
        assert audit_findings(result) == expected
        # Each repository's result was taken once, however often its batch ran.
        assert len(result.json()["findings"]) == len(expected)
        assert len(result.json()["summary"]["repositories"]) == 19
    finally:
        cluster.close()


def test_batches_plan_small_repositories_together_and_large_ones_alone() -> None:
    from scanner.fleet.command import BATCH_BYTES, MAX_BATCH, plan_batches

    small = [Target(f"/org/small-{n:02}") for n in range(40)]
    url = Target("https://git.example.invalid/org/x.git", url="https://git.example.invalid/org/x.git")
    large = Target("/org/large")
    sizes = {t.name: 1000 + n for n, t in enumerate(small)} | {url.name: 0, large.name: BATCH_BYTES}
    plan = plan_batches([*small, url, large], sizes, workers=2)
    assert plan[0] == [large] and plan[1] == [url]  # each alone; the largest first
    assert sorted(t.name for group in plan for t in group) == sorted(sizes)  # each once
    batches = plan[2:]
    # 40 small ones on 2 workers: at least 4 tasks per worker, so 5 to a batch.
    assert [len(b) for b in batches] == [5] * 8
    assert batches[0][0] == small[-1]  # the largest of the small ones first
    # Bytes bound a batch too; and never more than MAX_BATCH repositories.
    half = {t.name: BATCH_BYTES // 2 - 1 for t in small}
    assert {len(b) for b in plan_batches(small, half, workers=1)} == {2}
    assert max(len(b) for b in plan_batches(small * 3, {t.name: 0 for t in small}, workers=1)) == MAX_BATCH
    assert plan_batches(small[:3], sizes, workers=2) == [[t] for t in reversed(small[:3])]  # too few to batch


def test_a_corrupt_repository_in_a_batch_fails_alone(fleet: tuple[Path, Path], dask_cluster: DaskProcesses) -> None:
    from scanner.fleet.command import run_fleet

    root, broken = fleet
    targets = expand_targets([str(root)])
    groups: list[list[str]] = []

    class Recording:
        def __init__(self, client: Any) -> None:
            self.client = client

        def submit(self, function: Any, *args: Any, **kwargs: Any) -> Any:
            groups.append([t.name for t in args[0]] if isinstance(args[0], list) else [args[0].name])
            return self.client.submit(function, *args, **kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.client, name)

    settings = AuditSettings(cache=None, max_size=DEFAULT_MAX_FILE_SIZE, split_slices=2)
    with dask_cluster.client() as client:
        results = run_fleet(Recording(client), targets, {}, settings, load_ruleset())
    [with_broken] = [group for group in groups if str(broken) in group]
    assert len(with_broken) > 1 and len(groups) < len(targets)
    assert sorted(name for group in groups for name in group) == sorted(t.name for t in targets)
    assert results[str(broken)].error is not None and "pack" in results[str(broken)].error
    for name in with_broken:
        if name != str(broken):
            done = results[name].done
            assert results[name].error is None and done is not None and done.history is not None
            got = {(name, f.fingerprint, f.commit.sha if f.commit else "", f.secret.reveal())
                   for f in done.history.findings}
            assert got == plain_findings(Path(name)) and len(got) == 4


def test_a_batch_whose_worker_dies_each_time_is_split_and_only_the_culprit_fails(
        fleet: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A repository that kills its worker (here: a git that kills the process that ran it, for
    that repository only) takes its whole batch down at every try; the batch is then run as
    tasks of one repository each, and only the culprit is reported failed."""
    import shutil

    import dask
    from distributed import Client

    from scanner.fleet import command

    root, broken = fleet
    culprit = root / "repo-03"
    wrapper = tmp_path / "git"
    wrapper.write_text(f'#!/bin/sh\ncase "$*" in *{culprit}/*|*{culprit}" "*) kill -9 "$PPID"; sleep 10;; esac\n'
                       f'exec {shutil.which("git")} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("GIT_PYTHON_GIT_EXECUTABLE", str(wrapper))  # the workers inherit it
    monkeypatch.setattr(command, "TASK_RETRIES", 0)
    targets = [t for t in expand_targets([str(root)]) if t.name != str(broken)]
    settings = AuditSettings(cache=None, max_size=DEFAULT_MAX_FILE_SIZE, split_slices=1)
    # A task is failed at its first lost worker, and a worker holds only the task it runs (Dask
    # also blames a worker's queued tasks for its death).
    with dask.config.set({"distributed.scheduler.allowed-failures": 0, "distributed.scheduler.worker-saturation": 1.0}), \
            command.local_cluster(1) as cluster, Client(cluster) as client:
        results = command.run_fleet(client, targets, {}, settings, load_ruleset())
    failed = {name: r.error for name, r in results.items() if r.error is not None}
    assert list(failed) == [str(culprit)] and "KilledWorker" in str(failed[str(culprit)])
    for target in targets:
        if target.name != str(culprit):
            done = results[target.name].done
            assert done is not None and done.history is not None and len(done.history.findings) == 4


def test_reaudit_reads_only_new_objects_and_remembers_findings(dask_cluster: DaskProcesses, tmp_path: Path) -> None:
    repos = [make_repo(tmp_path / "org" / f"r{i}", i) for i in range(3)]
    state = tmp_path / "state.sqlite"

    def audit(*extra: str) -> CliResult:
        result = run_audit(tmp_path / "org", "--scheduler", dask_cluster.address, "--state", state, "--format", "json",
                           *extra)
        assert result.returncode == 1, result.stderr
        return result

    first = audit()
    assert [s["objects"] for s in summaries(first).values()] == [7, 7, 7]
    first_prints = {(f["repository"], f["fingerprint"]): f for f in first.json()["findings"]}
    assert len(first_prints) == 12

    # Nothing changed: nothing is read at all (no value is shown), and the report is the same.
    again = audit()
    assert [(s["objects"], s["rechecked"]) for s in summaries(again).values()] == [(0, 0)] * 3
    assert {(f["repository"], f["fingerprint"]): f["first_seen"] for f in again.json()["findings"]} == \
        {k: f["first_seen"] for k, f in first_prints.items()}
    unchanged = ("last_seen",)
    assert {k: {n: v for n, v in f.items() if n not in unchanged} for k, f in first_prints.items()} == \
        {(f["repository"], f["fingerprint"]): {n: v for n, v in f.items() if n not in unchanged}
         for f in again.json()["findings"]}
    # Values shown: the blobs holding findings are read again for them.
    shown = audit("--show-secrets")
    assert [(s["objects"], s["rechecked"]) for s in summaries(shown).values()] == [(0, 2)] * 3
    assert all(f["secret"] not in ("********",) and not f["secret"].endswith("…") for f in shown.json()["findings"])

    # One new commit in one repository: its two new objects (commit and blob) are read, no more.
    added = KeySet.generate()
    repos[1].commit("more", {"extra.env": env_file(added)})
    third = audit("--show-secrets")
    counts = {Path(name).name: s["objects"] for name, s in summaries(third).items()}
    assert counts == {"r0": 0, "r1": 2, "r2": 0}
    findings = third.json()["findings"]
    assert {(f["repository"], f["fingerprint"]) for f in findings} >= set(first_prints)
    assert {f["secret"] for f in findings} >= {added.key_id, added.secret}
    assert len(findings) == 14 and all(f["status"] == "open" for f in findings)

    # History rewritten so that no ref reaches the new commit's secret any more: gone.
    repos[1].git("reset", "-q", "--hard", "HEAD~1")
    repos[1].commit("more, without the key", {"extra.txt": "nothing to see\n"})
    fourth = audit()
    r1 = summaries(fourth)[str(repos[1].path)]
    assert r1["objects"] == 2 and r1["findings"] == 4
    assert sorted(g["rule"] for g in r1["gone"]) == ["aws-access-key-id", "aws-secret-access-key"]
    assert all(g["path"] == "extra.env" and ("*" in g["secret"] or "…" in g["secret"]) for g in r1["gone"])
    assert {f["fingerprint"] for f in fourth.json()["findings"]}.isdisjoint(g["fingerprint"] for g in r1["gone"])

    # --fail-on: unverified key pairs are high, so they fail at high and pass at critical.
    assert run_audit(tmp_path / "org", "--scheduler", dask_cluster.address, "--state", state,
                     "--fail-on", "critical").returncode == 0
    assert run_audit(tmp_path / "org", "--scheduler", dask_cluster.address, "--state", state,
                     "--fail-on", "high").returncode == 1
    sarif = run_audit(tmp_path / "org", "--scheduler", dask_cluster.address, "--state", state, "--format", "sarif")
    results = json.loads(sarif.stdout)["runs"][0]["results"]
    assert len(results) == 12 and {r["properties"]["repository"] for r in results} == {str(r.path) for r in repos}
    assert "repositories: 3 audited, 3 read, 0 failed" in sarif.stderr

    # --full reads everything again (in r1 also the two objects no ref reaches) and finds the same.
    full = audit("--full")
    assert [s["objects"] for s in summaries(full).values()] == [7, 7 + 2 + 2, 7]
    assert {(f["repository"], f["fingerprint"]) for f in full.json()["findings"]} == \
        {(f["repository"], f["fingerprint"]) for f in fourth.json()["findings"]}


def test_embedded_cluster_and_state_holds_no_secret(tmp_path: Path) -> None:
    keys = KeySet.generate()
    repo = GitRepo(tmp_path / "org" / "only")
    repo.commit("add", {"a.env": env_file(keys), "b.txt": f"token {keys.token}\n"})
    state = tmp_path / "state.sqlite"
    result = run_audit(repo.path, "--workers", "1", "--state", state)  # the embedded LocalCluster
    assert result.returncode == 1 and "aws-secret-access-key" in result.stdout, result.stderr
    assert f"repository {repo.path}" in result.stdout and "repositories: 1 audited, 1 read, 0 failed" in result.stdout
    assert keys.secret not in result.stdout and result.stderr == ""  # no Dask log noise
    raw = state.read_bytes()
    for value in (keys.key_id, keys.secret, keys.token[:40]):
        assert value.encode() not in raw


def test_baselined_findings_are_remembered_not_reported(dask_cluster: DaskProcesses, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "org" / "app", 0)
    baseline = tmp_path / "baseline.json"
    created = run_keysweep("baseline", "create", repo.path, "--output", baseline)
    assert created.returncode == 0, created.stderr
    added = KeySet.generate()
    repo.commit("one more", {"late.env": env_file(added)})
    state = tmp_path / "state.sqlite"
    for _ in range(2):  # the first audit reads everything; the second rebuilds from the state
        result = run_audit(repo.path, "--scheduler", dask_cluster.address, "--state", state, "--baseline", baseline,
                           "--format", "json", "--show-secrets")
        assert result.returncode == 1, result.stderr
        assert {f["secret"] for f in result.json()["findings"]} == {added.key_id, added.secret}
        assert summaries(result)[str(repo.path)]["baselined"] == 4
    everything = run_audit(repo.path, "--scheduler", dask_cluster.address, "--state", state, "--format", "json")
    assert len(everything.json()["findings"]) == 6  # without the baseline, all are open again


def test_a_token_in_a_url_stays_out_of_reports(dask_cluster: DaskProcesses, tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on: bound, then closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"https://ci:tok3n-not-shown@127.0.0.1:{port}/org/x.git"
    result = run_audit(url, "--scheduler", dask_cluster.address, "--state", tmp_path / "s.sqlite",
                       "--cache", tmp_path / "cache", "--format", "json")
    assert result.returncode == 3
    [summary] = result.json()["summary"]["repositories"]
    assert summary["repository"] == f"https://ci:***@127.0.0.1:{port}/org/x.git" and "cannot clone" in summary["errors"][0]
    assert "tok3n-not-shown" not in result.stdout + result.stderr


def test_progress_line(capsys: pytest.CaptureFixture[str]) -> None:
    from scanner.fleet.command import FleetProgress

    progress = FleetProgress(interval=0.0)
    progress(0, 4, 0)
    progress(2, 4, 3 * 2**20)
    progress.close()
    err = capsys.readouterr().err
    assert "\rauditing: 0/4 repositories" in err and "2/4 repositories, 3.0 MiB" in err and "ETA" in err
    assert err.endswith("\r\033[K")


def test_audit_usage_errors(tmp_path: Path) -> None:
    no_targets = run_audit()
    assert no_targets.returncode == 2 and "at least one target" in no_targets.stderr
    missing = run_audit(tmp_path / "nowhere")
    assert missing.returncode == 2 and "no such repository or folder" in missing.stderr
    empty = run_audit(tmp_path)
    assert empty.returncode == 2 and "no git repository" in empty.stderr
    bad_targets = run_audit("--targets", tmp_path / "missing.txt")
    assert bad_targets.returncode == 2 and "--targets" in bad_targets.stderr
    repo = GitRepo(tmp_path / "r")
    repo.commit("initial", {"README.md": "hi\n"})
    bad_address = run_audit(repo.path, "--scheduler", "nowhere", "--state", tmp_path / "s.sqlite")
    assert bad_address.returncode == 2 and "not a scheduler address" in bad_address.stderr
    bad_workers = run_audit(repo.path, "--workers", "0", "--state", tmp_path / "s.sqlite")
    assert bad_workers.returncode == 2 and "--workers" in bad_workers.stderr


def test_scan_never_imports_dask(tmp_path: Path) -> None:
    code = ("import sys, scanner.cli as c; c.main(['scan', '--no-progress', sys.argv[1]]); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip().endswith("[]"), proc.stdout + proc.stderr


def test_audit_without_dask_says_how_to_install_it(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "r")
    repo.commit("initial", {"README.md": "hi\n"})
    # A meta path hook that refuses distributed: as if the fleet extra were not installed.
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('dask', 'distributed'): raise ImportError(name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "import scanner.cli\n"
            "sys.exit(scanner.cli.main(['audit', '--no-progress', '--state', sys.argv[2], sys.argv[1]]))\n")
    proc = subprocess.run([sys.executable, "-c", code, str(repo.path), str(tmp_path / "s.sqlite")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "pip install 'keysweep[fleet]'" in proc.stderr, proc.stderr


def test_audit_verify_against_a_moto_server(dask_cluster: DaskProcesses, tmp_path: Path) -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    from tests.test_aws_e2e import ACCOUNT, aws_env

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        import urllib.request

        # moto's backends are shared by every server in this process: start from nothing.
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).read()
        iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        iam.create_user(UserName="security")
        operator = iam.create_access_key(UserName="security")["AccessKey"]
        iam.create_user(UserName="deploy")
        leaked = iam.create_access_key(UserName="deploy")["AccessKey"]
        repo = GitRepo(tmp_path / "org" / "app")
        repo.commit("creds", {"deploy.env": f"AWS_ACCESS_KEY_ID={leaked['AccessKeyId']}\n"
                                            f"AWS_SECRET_ACCESS_KEY={leaked['SecretAccessKey']}\n"})
        result = run_keysweep("audit", "--no-progress", "--verify", "--format", "json", "--scheduler",
                              dask_cluster.address, "--state", tmp_path / "state.sqlite", repo.path,
                              env=aws_env(url, operator, tmp_path))
    finally:
        server.stop()
    assert result.returncode == 1, result.stderr
    findings = result.json()["findings"]
    assert {f["verification"]["arn"] for f in findings} == {f"arn:aws:iam::{ACCOUNT}:user/deploy"}
    assert leaked["SecretAccessKey"] not in result.stdout + result.stderr


def test_audit_html_report(dask_cluster: DaskProcesses, tmp_path: Path) -> None:
    """`keysweep audit --format html`: every finding of every repository, a Repository column,
    commit links from each repository's own origin, the broken repository named."""
    import re

    org = tmp_path / "org"
    first = make_repo(org / "alpha", 1)
    first.git("remote", "add", "origin", "git@gitlab.com:acme/alpha.git")
    make_repo(org / "beta", 2)
    corrupt(make_repo(org / "broken", 3))
    # A remote that cannot be reached, its token as the URL's user name: named, token dropped.
    token = "ghp" + secrets.token_hex(16)
    gone = f"https://{token}@127.0.0.1:9/acme/gone.git"
    page = tmp_path / "audit.html"
    html_run = run_audit(org, gone, "--scheduler", dask_cluster.address, "--state", tmp_path / "a.sqlite",
                         "--cache", tmp_path / "cache", "--format", "html", "-o", page)
    assert html_run.returncode in (1, 3), html_run.stderr
    json_run = run_audit(org, "--scheduler", dask_cluster.address, "--state", tmp_path / "b.sqlite", "--format", "json")
    findings = json_run.json()["findings"]
    html = page.read_text(encoding="utf-8")
    assert len(re.findall(r"<tr data-s=", html)) == len(findings) > 0
    assert "<th>Repository</th>" in html
    alpha = [f for f in findings if f["repository"].endswith("alpha")]
    assert alpha and all(f'href="https://gitlab.com/acme/alpha/-/commit/{f["commit"]["sha"]}"' in html for f in alpha)
    assert "gitlab.com/acme/beta" not in html
    errors = re.search(r'<div class="notice errors" id="errors">(.*?)</div>', html, flags=re.S)
    assert errors is not None and "broken" in errors.group(1)
    assert "https://127.0.0.1:9/acme/gone.git: cannot clone" in errors.group(1) and token not in html


# --- what makes an audit cheap: the client's fast path, the ref digest, the worker's set-up ---


def closed_port() -> int:
    with socket.socket() as probe:  # bound, then closed: nothing listens there
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_repository_whose_folder_name_is_not_utf8_is_audited_and_remembered(dask_cluster: DaskProcesses,
                                                                             tmp_path: Path) -> None:
    """A byte like 0xff in a folder's name reaches Python as a lone surrogate, which SQLite
    refused: the whole audit stopped with "the audit state is damaged" on a new state."""
    good = make_repo(tmp_path / "org" / "good", 0)
    odd = make_repo(Path(os.fsdecode(os.fsencode(tmp_path / "org") + b"/bad\xff")), 1)
    state = tmp_path / "state.sqlite"
    first = run_audit(tmp_path / "org", "--scheduler", dask_cluster.address, "--state", state, "--format", "json")
    assert first.returncode == 1, first.stderr
    found = {f["repository"] for f in first.json()["findings"]}
    assert found == {str(good.path), str(odd.path)}
    again = run_audit(tmp_path / "org", "--scheduler", dask_cluster.address, "--state", state, "--format", "json")
    assert again.returncode == 1, again.stderr
    assert [s["objects"] for s in summaries(again).values()] == [0, 0]  # both remembered
    assert len(again.json()["findings"]) == len(first.json()["findings"]) == 8


def test_reaudit_with_nothing_new_submits_nothing_and_reports_open_findings(dask_cluster: DaskProcesses,
                                                                             tmp_path: Path) -> None:
    from scanner.fleet.command import ClusterOnDemand, audit_targets
    from scanner.fleet.state import AuditState
    from scanner.fleet.targets import expand_targets

    repos = [make_repo(tmp_path / "org" / f"r{i}", i) for i in range(3)]
    state = tmp_path / "state.sqlite"
    first = run_audit(tmp_path / "org", "--scheduler", dask_cluster.address, "--state", state, "--format", "json",
                      "--show-secrets")
    assert first.returncode == 1, first.stderr
    expected = {(f["repository"], f["fingerprint"], f["secret"], f["first_seen"]) for f in first.json()["findings"]}
    assert len(expected) == 12

    # Nothing moved: decided without the cluster. A scheduler nobody listens on proves it:
    # any task (or a mere connection) would fail the audit with exit 3.
    nowhere = f"tcp://127.0.0.1:{closed_port()}"
    again = run_audit(tmp_path / "org", "--scheduler", nowhere, "--state", state, "--format", "json", "--show-secrets")
    assert again.returncode == 1, again.stderr
    assert {(f["repository"], f["fingerprint"], f["secret"], f["first_seen"]) for f in again.json()["findings"]} == expected
    assert all(f["status"] == "open" for f in again.json()["findings"])
    assert [(s["objects"], s["rechecked"], s["errors"]) for s in summaries(again).values()] == [(0, 2, [])] * 3

    # One repository moves: only it goes to the cluster, and only its new objects are read.
    repos[2].commit("more", {"notes.txt": "nothing secret\n"})
    submitted: list[str] = []

    class Recording:
        def __init__(self, client: Any) -> None:
            self.client = client

        def submit(self, function: Any, *args: Any, **kwargs: Any) -> Any:
            submitted.append(args[0].name)
            return self.client.submit(function, *args, **kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.client, name)

    on_demand = ClusterOnDemand(dask_cluster.address, None)
    audit_state = AuditState(state)
    try:
        targets = expand_targets([str(tmp_path / "org")])
        unchanged = audit_targets(on_demand, targets[:2], audit_state, load_ruleset(), full=False, cache=None)
        assert not on_demand.started  # nothing to submit: no connection at all
        assert sum(len(r.findings) for r in unchanged) == 8
        moved = audit_targets(Recording(on_demand.get()), targets, audit_state, load_ruleset(), full=False, cache=None)
    finally:
        audit_state.close()
        on_demand.close()
    assert submitted == [str(repos[2].path)]
    assert [(r.done.objects, r.done.rechecked) for r in moved if r.done] == [(0, 2), (0, 2), (2, 2)]
    assert sum(len(r.findings) for r in moved) == 12 and all(r.error is None for r in moved)


def test_reaudit_of_an_unchanged_repository_that_lost_its_finding_objects_is_an_error(
        dask_cluster: DaskProcesses, tmp_path: Path) -> None:
    """The refs stand where they stood, but the blobs holding the findings are gone (a
    damaged copy): an audit that reads them (values needed) reports the repository with an
    error and its findings stay open in the state, never turned `gone` (which would hide a
    leaked key) nor reported without their secret. An audit that needs no value reads no
    object, and does not notice."""
    from scanner.fleet.command import ClusterOnDemand, audit_targets
    from scanner.fleet.state import AuditState
    from scanner.fleet.targets import expand_targets

    repo = make_repo(tmp_path / "org" / "app", 0)
    state = AuditState(tmp_path / "state.sqlite")
    try:
        [target] = expand_targets([str(repo.path)])
        with_cluster = ClusterOnDemand(dask_cluster.address, None)
        try:
            [first] = audit_targets(with_cluster, [target], state, load_ruleset(), full=False, cache=None)
        finally:
            with_cluster.close()
        assert len(first.findings) == 4
        blobs = {f.blob for f in first.findings}
        for blob in blobs:
            assert blob is not None
            (repo.path / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
        on_demand = ClusterOnDemand(f"tcp://127.0.0.1:{closed_port()}", None)
        [again] = audit_targets(on_demand, [target], state, load_ruleset(), full=False, cache=None)
        assert not on_demand.started
        assert again.findings == [] and again.error is not None and "damaged" in again.error
        assert sorted(s.status for s in state.live_findings(target.name)) == ["open"] * 4
    finally:
        state.close()
    # The same from the command line: exit 3, the repository named with its error.
    nowhere = f"tcp://127.0.0.1:{closed_port()}"
    result = run_audit(repo.path, "--scheduler", nowhere, "--state", tmp_path / "state.sqlite", "--show-secrets")
    assert result.returncode == 3 and f"{repo.path}: object " in result.stderr and "damaged" in result.stderr
    # Without values, from the state: nothing read, the open findings reported (redacted).
    quick = run_audit(repo.path, "--scheduler", nowhere, "--state", tmp_path / "state.sqlite", "--format", "json")
    assert quick.returncode == 1 and len(quick.json()["findings"]) == 4, quick.stderr
    assert summaries(quick)[str(repo.path)]["rechecked"] == 0


def test_the_ref_digest_follows_every_ref_and_nothing_else(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "work")
    repo.commit("one", {"a.txt": "a\n"})
    git_dir = git_dir_of(repo.path)
    assert git_dir == repo.path / ".git"
    seen = {files_digest(git_dir)}

    def changed() -> bool:
        digest = files_digest(git_dir)
        assert digest is not None and digest.startswith("files:")
        new = digest not in seen
        seen.add(digest)
        return new

    assert not changed()
    (repo.path / "a.txt").write_text("edited, not committed\n")  # the work tree is not history
    repo.git("add", "a.txt")
    assert not changed()
    repo.git("stash", "-q")  # a stash reaches new commits
    assert changed()
    repo.commit("two", {"b.txt": "b\n"})
    assert changed()
    repo.git("tag", "v1")
    assert changed()
    repo.git("branch", "side", "HEAD~1")
    assert changed()
    repo.git("checkout", "-q", "--detach", "HEAD~1")  # a detached HEAD is reached by `log --all`
    assert changed()
    repo.git("update-ref", "refs/custom/x", "HEAD")
    assert changed()
    opened = find_repository(repo.path, search_parents=False)
    assert opened is not None and refs_state(opened) == files_digest(git_dir) == local_refs_state(repo.path)

    # A bare repository: the same digest, from the same files.
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--mirror", str(repo.path), str(bare)], check=True)
    opened_bare = find_repository(bare, search_parents=False)
    assert opened_bare is not None and refs_state(opened_bare) == local_refs_state(bare) is not None

    # A linked work tree keeps its refs elsewhere: the client cannot tell, git is asked.
    repo.git("worktree", "add", "-q", str(tmp_path / "linked"), "side")
    assert local_refs_state(tmp_path / "linked") is None and local_refs_state(repo.path) is None
    linked = find_repository(tmp_path / "linked", search_parents=False)
    assert linked is not None and refs_state(linked).startswith("git:")


def test_a_worker_thread_keeps_its_ruleset_and_starts_each_task_healthy() -> None:
    import pickle

    ruleset = load_ruleset()
    settings = AuditSettings(cache=None, max_size=DEFAULT_MAX_FILE_SIZE, split_slices=1, rules="digest-1")
    first = shared_ruleset(pickle.loads(pickle.dumps(ruleset)), settings)
    first.health.timed_out("aws-access-key-id")  # a hostile repository made a rule time out
    sent = pickle.loads(pickle.dumps(ruleset))
    second = shared_ruleset(sent, settings)
    assert second is first and second.health.disabled == set()  # same prefilter, fresh health
    other_rules = shared_ruleset(sent, AuditSettings(cache=None, max_size=1, split_slices=1, rules="digest-2"))
    assert other_rules is sent
    elsewhere: list[object] = []
    thread = threading.Thread(target=lambda: elsewhere.append(shared_ruleset(first, settings)))
    thread.start()
    thread.join()
    assert elsewhere == [first]  # another thread keeps its own: a first call there returns what it is given
    assert shared_ruleset(sent, AuditSettings(cache=None, max_size=1, split_slices=1)) is sent  # no digest: as sent


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_a_worker_undoes_dasks_malloc_trim_threshold() -> None:
    code = (
        "import os, resource\n"
        "from scanner.fleet.tasks import undo_trim_threshold\n"
        "def faults():\n"
        "    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "    for _ in range(100):\n"
        "        data = b'x' * 2**20\n"
        "        del data\n"
        "    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before\n"
        "faults()\n"  # a first round of each settles what one-off allocations there are
        "under = faults()\n"
        "undo_trim_threshold()\n"
        "faults()\n"
        "after = faults()\n"
        "print(under, after, os.environ.get('MALLOC_TRIM_THRESHOLD_'))\n"
    )
    import os

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"})
    assert proc.returncode == 0, proc.stderr
    under, after, variable = proc.stdout.split()
    # Under the variable every 1 MiB buffer is mapped afresh (256 page faults each); after,
    # the heap keeps it. The variable is gone for the git processes the worker starts.
    assert int(under) > 100 * 200 and int(after) < 100 * 10 and variable == "None"


def test_a_small_repository_is_audited_with_five_git_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """List the objects, walk the log, read the objects, and for where the findings live
    the refs and HEAD's blobs: each git process costs 1-4 ms of CPU, against ~80 ms for a
    whole small repository. No rev-parse or symbolic-ref (the layout and HEAD's file say
    where the git directory is and what HEAD names), no reflog while there is no stash, no
    rev-list of reachable commits (the log walk sees what refs reach), no walk from refs to
    commits while every ref stands at one commit."""
    import shutil

    from scanner.fleet.tasks import audit_repository

    repo = make_repo(tmp_path / "r", 0)
    calls = tmp_path / "calls.txt"
    wrapper = tmp_path / "git"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\nexec {shutil.which("git")} "$@"\n')
    wrapper.chmod(0o755)
    settings = AuditSettings(cache=None, max_size=DEFAULT_MAX_FILE_SIZE, split_slices=1)

    def audit() -> tuple[list[str], set[tuple[str, str, str, str]]]:
        calls.write_text("")
        with monkeypatch.context() as patched:
            patched.setenv("GIT_PYTHON_GIT_EXECUTABLE", str(wrapper))
            done = audit_repository(Target(str(repo.path)), Known(), settings, load_ruleset())
        assert isinstance(done, RepoDone) and done.history is not None and not done.history.errors
        assert all(f.reachable for f in done.history.findings)
        # "-c core.quotePath=false --git-dir R/.git --work-tree R cat-file --batch" -> "cat-file --batch"
        commands = [" ".join(line.split(f"--work-tree {repo.path} ", 1)[1].split()[:2])
                    for line in calls.read_text().splitlines()]
        return commands, {(str(repo.path), f.fingerprint, f.commit.sha if f.commit else "", f.secret.reveal())
                          for f in done.history.findings}

    commands, found = audit()
    assert sorted(commands) == ["cat-file --batch", "cat-file --batch-all-objects", "for-each-ref --format=%(objectname)",
                                "log --raw", "ls-tree -r"], commands
    assert found == plain_findings(repo.path) and len(found) == 4
    # With a stash, its entries are asked for (each entry is a commit the walk starts from).
    stashed = KeySet.generate()
    repo.write("stashed.env", env_file(stashed))
    repo.git("add", "stashed.env")
    repo.git("stash", "-q")
    commands, found = audit()
    assert sorted(commands) == ["cat-file --batch", "cat-file --batch-all-objects", "for-each-ref --format=%(objectname)",
                                "log --raw", "ls-tree -r", "reflog show", "reflog show", "reflog show",
                                "rev-list --parents"], commands  # the walk: the stash is not where the branch is
    assert found == plain_findings(repo.path)
    assert {secret for *_, secret in found} >= {stashed.key_id, stashed.secret}


def test_a_reaudit_needing_no_value_reads_nothing_and_reports_the_same(dask_cluster: DaskProcesses, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing moved and no value is shown or verified: the findings come from the state
    alone, no git process is started, and the report says exactly what a reading re-audit
    says (redacted). Refused, so the objects are read, when the repositories were last
    recorded by different audits (their texts were not redacted of each other's values), or
    when the state lacks what a finding shows (an older keysweep wrote it)."""
    import shutil
    import sqlite3

    from scanner.fleet.command import ClusterOnDemand, audit_targets
    from scanner.fleet.state import AuditState
    from scanner.fleet.targets import expand_targets
    from scanner.reporters.json import finding_dict

    for index in range(2):
        make_repo(tmp_path / "org" / f"r{index}", index)
    targets = expand_targets([str(tmp_path / "org")])
    ruleset = load_ruleset()
    calls = tmp_path / "calls.txt"
    wrapper = tmp_path / "git"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\nexec {shutil.which("git")} "$@"\n')
    wrapper.chmod(0o755)

    def shown(results: list[Any]) -> list[dict[str, Any]]:
        return sorted((finding_dict(f, ruleset, show_secrets=False) for r in results for f in r.findings),
                      key=lambda d: (d["repository"], d["fingerprint"]))

    state = AuditState(tmp_path / "state.sqlite")
    nowhere = ClusterOnDemand(f"tcp://127.0.0.1:{closed_port()}", None)
    try:
        cluster = ClusterOnDemand(dask_cluster.address, None)
        try:
            first = audit_targets(cluster, targets, state, ruleset, full=False, cache=None)
        finally:
            cluster.close()
        assert sum(len(r.findings) for r in first) == 8

        def again(chosen: list[Target], *, values: bool = False) -> tuple[list[Any], int]:
            calls.write_text("")
            with monkeypatch.context() as patched:
                patched.setenv("GIT_PYTHON_GIT_EXECUTABLE", str(wrapper))
                results = audit_targets(nowhere, chosen, state, ruleset, full=False, cache=None, values=values)
            assert all(r.error is None for r in results)
            return results, len(calls.read_text().splitlines())

        standing, started = again(targets)
        assert started == 0 and all(r.done.from_state and r.done.rechecked == 0 for r in standing)
        assert shown(standing) == shown(first)
        with pytest.raises(LookupError):
            standing[0].findings[0].secret.reveal()
        read, started = again(targets, values=True)
        assert started == 2 and [r.done.rechecked for r in read] == [2, 2] and shown(read) == shown(first)

        # r0 audited on its own: the next audit of both reads their objects, then both stand again.
        again(targets[:1])
        mixed, started = again(targets)
        assert started == 2 and not any(r.done.from_state for r in mixed) and shown(mixed) == shown(first)
        assert {f.secret.reveal()[:4] for r in mixed for f in r.findings} >= {"AKIA"}
        assert again(targets)[1] == 0

        # A state an older keysweep wrote lacks the pairing and the account: the objects are read.
        with sqlite3.connect(tmp_path / "state.sqlite") as db:
            for fingerprint, data in db.execute("SELECT fingerprint, data FROM findings").fetchall():
                older = {k: v for k, v in json.loads(data).items() if k not in ("pair", "account_id")}
                db.execute("UPDATE findings SET data = ? WHERE fingerprint = ?", (json.dumps(older), fingerprint))
        older_read, started = again(targets)
        assert started == 2 and shown(older_read) == shown(first)
        assert again(targets)[1] == 0  # written again in full
        # A field of another shape (a state file edited by hand) is not trusted either.
        with sqlite3.connect(tmp_path / "state.sqlite") as db:
            fingerprint, data = db.execute("SELECT fingerprint, data FROM findings").fetchone()
            db.execute("UPDATE findings SET data = ? WHERE fingerprint = ?",
                       (json.dumps({**json.loads(data), "pair": ["not", "a", "fingerprint"]}), fingerprint))
        odd, started = again(targets)
        assert started == 2 and shown(odd) == shown(first)
    finally:
        state.close()
    assert not nowhere.started


def test_a_split_walks_the_log_beside_its_slices_and_attributes_without_it_elsewhere(tmp_path: Path) -> None:
    from scanner.fleet import tasks

    repo = make_repo(tmp_path / "r", 0, filler=50)
    target = Target(str(repo.path))
    ruleset = load_ruleset()
    settings = AuditSettings(cache=None, max_size=DEFAULT_MAX_FILE_SIZE, split_slices=2, split_bytes=1)
    expected = plain_findings(repo.path)

    def attributed(split: tasks.RepoSplit) -> set[tuple[str, str, str, str]]:
        parts = [tasks.scan_slice_task(target, settings, part, ruleset) for part in split.slices]
        done = tasks.attribute_task(target, settings, split, *parts)
        assert done.history is not None and not done.history.errors
        return {(target.name, f.fingerprint, f.commit.sha if f.commit else "", f.secret.reveal())
                for f in done.history.findings}

    split = tasks.audit_repository(target, Known(), settings, ruleset)
    assert isinstance(split, tasks.RepoSplit) and split.log in tasks._started_logs
    assert attributed(split) == expected and len(expected) == 4
    assert split.log not in tasks._started_logs  # taken
    # Attributed on another worker (its log is not here): the log is walked there.
    elsewhere = tasks.audit_repository(target, Known(), settings, ruleset)
    assert isinstance(elsewhere, tasks.RepoSplit)
    assert attributed(replace(elsewhere, log="started-on-another-worker")) == expected
    # The client then drops the walk left where the split was made; once only.
    assert elsewhere.log in tasks._started_logs and tasks.drop_started_log(elsewhere.log) is True
    assert elsewhere.log not in tasks._started_logs and tasks.drop_started_log(elsewhere.log) is False
    # Walks never taken are kept a few at most; the oldest are discarded (their files closed).
    kept = [tasks.keep_log(tasks.history.start_log(tasks.open_repository(target, None, refresh=False),
                                                   split.listing, all_objects=False))
            for _ in range(tasks.MAX_STARTED_LOGS + 2)]
    assert elsewhere.log not in tasks._started_logs and kept[0] not in tasks._started_logs
    assert list(tasks._started_logs) == kept[-tasks.MAX_STARTED_LOGS:]
    for token in kept[-tasks.MAX_STARTED_LOGS:]:
        log = tasks.started_log(token)
        assert log is not None and b"\x01" in b"".join(log.chunks())


def test_audit_says_where_each_finding_lives_as_scan_does(dask_cluster: DaskProcesses, tmp_path: Path) -> None:
    """in_head and the refs reaching each finding's commit, as `scan --history-only` reports
    them; kept by the state while no ref moves (a re-audit that reads nothing says the
    same), asked again when one does."""
    repo = make_repo(tmp_path / "org" / "app", 0)
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit("feature key", {"feature.env": env_file(KeySet.generate())})
    repo.git("tag", "v1")
    repo.git("checkout", "-q", "-")
    state = tmp_path / "state.sqlite"

    def whereabouts(result: CliResult) -> dict[str, tuple[bool | None, tuple[str, ...] | None, int | None]]:
        assert result.returncode == 1, result.stderr
        return {f["fingerprint"]: (f["in_head"], tuple(f["refs"]) if f["refs"] is not None else None, f["refs_total"])
                for f in result.json()["findings"]}

    def audit() -> dict[str, tuple[bool | None, tuple[str, ...] | None, int | None]]:
        return whereabouts(run_audit(repo.path, "--scheduler", dask_cluster.address, "--state", state,
                                     "--format", "json"))

    scanned = whereabouts(run_keysweep("scan", "--history-only", "--no-progress", "--format", "json", repo.path))
    first = audit()
    assert first == scanned and len(first) == 6
    by_path = {f["path"]: f["fingerprint"] for f in run_audit(repo.path, "--state", tmp_path / "other.sqlite",
                                                              "--scheduler", dask_cluster.address,
                                                              "--format", "json").json()["findings"]}
    branch = repo.git("symbolic-ref", "--short", "HEAD").strip()
    assert first[by_path["deploy/0.env"]] == (True, (branch, "feature", "v1"), 3)
    assert first[by_path["config/old.env"]] == (False, (branch, "feature", "v1"), 3)
    assert first[by_path["feature.env"]] == (False, ("feature", "v1"), 2)
    assert audit() == first  # nothing moved: from the state, no object read

    repo.commit("drop the deploy key", {"deploy/0.env": None})
    repo.git("branch", "-q", "-D", "feature")
    moved = audit()
    assert moved[by_path["deploy/0.env"]] == (False, (branch, "v1"), 2)
    assert moved[by_path["feature.env"]] == (False, ("v1",), 1)
    assert moved == whereabouts(run_keysweep("scan", "--history-only", "--no-progress", "--format", "json", repo.path))


def test_audit_verbosity(dask_cluster: DaskProcesses, tmp_path: Path) -> None:
    """-v says what is read where and how long it took, per repository; -q leaves only the
    errors on standard error (no summary, no warnings); neither changes the report."""
    for index in range(2):
        make_repo(tmp_path / "org" / f"r{index}", index)
    corrupt(make_repo(tmp_path / "org" / "broken", 9))
    state = tmp_path / "state.sqlite"

    def audit(*flags: str) -> CliResult:
        result = run_audit(tmp_path / "org", "--scheduler", dask_cluster.address, "--state", state,
                           "--format", "sarif", *flags)
        assert result.returncode == 3, result.stderr
        assert len(json.loads(result.stdout)["runs"][0]["results"]) == 8
        return result

    loud = audit("-v").stderr.splitlines()
    assert "keysweep: 3 repositories: 0 with every ref where the last audit saw it (re-checked here), 3 to read " \
           "on the cluster" in loud
    assert f"keysweep: cluster: scheduler {dask_cluster.address}, 2 worker(s)" in "\n".join(loud)
    for index in range(2):
        assert any(line.startswith(f"keysweep: {tmp_path / 'org' / f'r{index}'}: 7 new object(s), 0 re-read")
                   for line in loud), loud
    assert any(line.startswith("keysweep: audit: 3 repositories") for line in loud)
    assert "repositories: 3 audited, 2 read, 1 failed" in loud

    hushed = audit("-q").stderr.splitlines()
    assert hushed and all(line.startswith(f"keysweep: error: {tmp_path / 'org' / 'broken'}: ") for line in hushed), hushed
    plain = audit().stderr.splitlines()
    assert "repositories: 3 audited, 2 read, 1 failed" in plain
    assert [line for line in plain if line.startswith("keysweep: ")] == hushed  # no -v line
    assert run_audit("-q", "-v", tmp_path / "org").returncode == 2  # one or the other


def test_a_repository_named_after_its_own_key_is_shown_redacted(dask_cluster: DaskProcesses, tmp_path: Path) -> None:
    """A folder's name is text from outside too: a repository cloned under the name of a key
    it holds (and a damaged one named so) never prints that key, in any format."""
    keys = KeySet.generate()
    make_repo(tmp_path / "org" / f"svc-{keys.key_id}", 0).commit("add", {f"k-{keys.key_id}.env": env_file(keys)})
    corrupt(make_repo(tmp_path / "org" / f"broken-{keys.key_id}", 1))
    state = tmp_path / "state.sqlite"
    for fmt in ("text", "json", "jsonl", "sarif"):
        result = run_audit(tmp_path / "org", "--scheduler", dask_cluster.address, "--state", state, "--full",
                           "--format", fmt)
        assert result.returncode == 3, result.stderr
        assert keys.key_id not in result.stdout + result.stderr, fmt
        assert f"svc-{keys.key_id[:8]}…" in result.stdout + result.stderr, fmt
    # Again, nothing moved: the findings come from the state, whose values are not known now.
    again = run_audit(tmp_path / "org", "--scheduler", dask_cluster.address, "--state", state, "--format", "json",
                      "-v")
    assert keys.key_id not in again.stdout + again.stderr
    document = again.json()
    assert all(f["status"] == "open" and f["first_seen"] for f in document["findings"])  # matched to the state


def test_a_walk_on_a_worker_that_died_is_not_waited_for() -> None:
    """The walk's worker died (OOM, a kill): the drop went to its old address and waited 30 s
    for the connection, once per split repository, in the loop that collects every result."""
    from scanner.fleet import command

    calls: list[tuple[str, list[str] | None]] = []

    class Client:
        def scheduler_info(self) -> dict[str, Any]:
            return {"workers": {"tcp://127.0.0.1:2001": {}, "tcp://127.0.0.1:2002": {}}}

        def run(self, function: Any, token: str, *, workers: list[str] | None) -> None:
            assert function is command.drop_started_log
            calls.append((token, workers))

    command._drop_walk(Client(), "t1", ["tcp://127.0.0.1:9999"])  # gone: nothing asked of it
    command._drop_walk(Client(), "t2", ["tcp://127.0.0.1:9999", "tcp://127.0.0.1:2002"])
    command._drop_walk(Client(), "t3", None)  # not known where: every worker still there
    assert calls == [("t2", ["tcp://127.0.0.1:2002"]), ("t3", ["tcp://127.0.0.1:2001", "tcp://127.0.0.1:2002"])]
