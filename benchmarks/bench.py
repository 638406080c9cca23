"""keysweep benchmarks: history scan against git's own floor, memory, recall, and the
pre-commit hook's wall time. One command:

    python benchmarks/bench.py REPO            # a repository you have (e.g. a clone of aws/aws-cli)
    python benchmarks/bench.py --synthetic     # generates one first (in $TMPDIR/keysweep-bench/synthetic)

Prints wall times, the ratio keysweep / floor, and the peak memory of keysweep's own
processes (git's are listed apart: they are the floor's too).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _tree(pid: int) -> list[int]:
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    result, todo = [], [pid]
    while todo:
        current = todo.pop()
        result.append(current)
        todo += children.get(current, [])
    return result


def _rss_by_kind(pids: list[int]) -> tuple[int, int]:
    own = git = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as handle:
                fields = dict(line.split(":", 1) for line in handle if ":" in line)
            rss = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
            name = fields.get("Name", "").strip()
        except (OSError, ValueError):
            continue
        if name.startswith("git"):
            git += rss
        else:
            own += rss
    return own, git


def measure(command: list[str], stdout: int | None = subprocess.DEVNULL) -> tuple[float, int, int, int]:
    """Wall seconds, peak RSS of non-git processes (summed), peak RSS of git processes, exit code."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=stdout, stderr=subprocess.DEVNULL)
    peak_own = peak_git = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak_own, peak_git
        while not stop.is_set():
            own, git = _rss_by_kind(_tree(proc.pid))
            peak_own, peak_git = max(peak_own, own), max(peak_git, git)
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = proc.wait()
    elapsed = time.perf_counter() - started
    stop.set()
    sampler.join()
    return elapsed, peak_own, peak_git, code


def bench_history(repo: Path, jobs: int | None) -> dict[str, float]:
    floor, _, floor_git, _ = measure(["git", "--git-dir", _git_dir(repo), "cat-file", "--batch-all-objects", "--batch", "--unordered"])
    report = Path(tempfile.mkdtemp()) / "report.json"
    command = [sys.executable, "-m", "scanner", "scan", "--history-only", "--no-progress", "--format", "json",
               "--show-secrets", "--output", str(report), str(repo)]
    if jobs:
        command += ["--jobs", str(jobs)]
    wall, own, git, code = measure(command)
    if code not in (0, 1):
        raise SystemExit(f"keysweep failed with exit code {code}")
    document = json.loads(report.read_text())
    print(f"repository            {repo}")
    print(f"floor (git cat-file)  {floor:8.2f} s   git peak RSS {floor_git / 2**20:6.0f} MiB")
    print(f"keysweep history      {wall:8.2f} s   own peak RSS {own / 2**20:6.0f} MiB (git {git / 2**20:.0f} MiB)")
    print(f"ratio                 {wall / floor:8.2f} x floor")
    print(f"scanned               {document['summary']['blobs_scanned']} blobs, "
          f"{document['summary']['bytes_scanned'] / 1e9:.2f} GB, {len(document['findings'])} findings")
    planted_file = repo.parent / f"{repo.name}.planted.json"
    if planted_file.exists():
        planted = json.loads(planted_file.read_text())
        found = {f["secret"] for f in document["findings"]}
        hits = sum(1 for p in planted if p["key_id"] in found and p["secret"] in found)
        print(f"recall                {hits}/{len(planted)} planted key pairs found")
    return {"floor": floor, "wall": wall, "ratio": wall / floor, "own_rss": own}


def bench_hook(repo_size_files: int = 2000) -> None:
    """The pre-commit hook on an ordinary commit: a repository of a few thousand files, three staged."""
    from tests.gitrepo import GitRepo

    root = Path(tempfile.mkdtemp()) / "hook"
    repo = GitRepo(root)
    for i in range(repo_size_files):
        repo.write(f"src/m{i % 50}/f{i}.py", f"def f{i}():\n    return {i}\n" * 20)
    repo.git("add", "-A")
    repo.commit("base")
    for i in range(3):
        repo.write(f"src/m{i}/f{i}.py", f"def g{i}():\n    return 'changed'\n" * 30)
    repo.git("add", "-A")
    times = []
    for _ in range(5):
        wall, _, _, code = measure([sys.executable, "-m", "scanner", "scan", "--staged", str(root)])
        assert code == 0
        times.append(wall)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    python = time.perf_counter() - start
    print(f"pre-commit hook       {min(times) * 1000:8.0f} ms (best of 5; `keysweep scan --staged`, 3 staged files "
          f"in a {repo_size_files}-file repository; bare Python start-up is {python * 1000:.0f} ms)")
    shutil.rmtree(root.parent, ignore_errors=True)


def _git_dir(repo: Path) -> str:
    out = subprocess.run(["git", "-C", str(repo), "rev-parse", "--absolute-git-dir"], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else str(repo)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repo", nargs="?", type=Path)
    parser.add_argument("--synthetic", action="store_true", help="generate $TMPDIR/keysweep-bench/synthetic and use it")
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--no-hook", action="store_true", help="skip the pre-commit hook timing")
    args = parser.parse_args()
    repo = args.repo
    if args.synthetic:
        # Outside the checkout: the generated history holds planted keys, and a scan of this
        # repository's work tree would find them.
        repo = Path(tempfile.gettempdir()) / "keysweep-bench" / "synthetic"
        if not repo.exists():
            from benchmarks.make_synthetic_repo import generate

            print("generating a synthetic repository (a minute or two)...", flush=True)
            generate(repo, commits=4000, megabytes=300, keys=60, seed=7)
    if repo is None:
        parser.error("give a repository path or --synthetic")
    bench_history(repo, args.jobs)
    if not args.no_hook:
        bench_hook()


if __name__ == "__main__":
    main()
