"""keysweep audit benchmark: many repositories on Dask.

    python benchmarks/fleet.py                        # 50 generated repositories
    python benchmarks/fleet.py --large PATH           # ... plus a large real one (e.g. a mirror of aws/aws-cli)

Measures, on the same repositories (every audit reads every object, as a first audit does):
  - a plain sequential loop in this process (no Dask): the same task function per repository
  - the audit on a LocalCluster of 1 worker: Dask's overhead against that loop (goal <= 10%)
  - the audit on a LocalCluster of 2 workers: throughput against 1 worker (goal >= 1.8x on 2 cores)
  - a re-audit with nothing new, against the first audit's time (goal < 5%)
Cluster start-up is timed apart (it is paid once per `keysweep audit`, not per repository).
The generated repositories live outside the checkout ($TMPDIR/keysweep-bench/fleet): they
hold planted keys, and a scan of this repository must stay clean.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from scanner.engine.rules import load_ruleset  # noqa: E402
from scanner.fleet.command import audit_targets, run_fleet  # noqa: E402
from scanner.fleet.state import AuditState  # noqa: E402
from scanner.fleet.targets import Target, expand_targets  # noqa: E402
from scanner.fleet.tasks import AuditSettings, Known, RepoDone, audit_repository  # noqa: E402
from scanner.scan import DEFAULT_MAX_FILE_SIZE  # noqa: E402


def generate_fleet(root: Path, count: int, megabytes: int) -> None:
    from benchmarks.make_synthetic_repo import generate

    for index in range(count):
        path = root / f"repo-{index:02}"
        if not (path / ".git").exists():
            generate(path, commits=max(20, megabytes * 25), megabytes=megabytes, keys=2, seed=1000 + index)


def cpu_seconds() -> float:
    """CPU time of this process and of every child it has reaped (worker processes, their git
    processes): unlike wall time, barely moved by other load on a shared machine."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def sequential(targets: list[Target], rounds: int) -> tuple[list[float], int]:
    ruleset = load_ruleset()
    settings = AuditSettings(cache=None, max_size=DEFAULT_MAX_FILE_SIZE, split_slices=1)
    times = []
    for _ in range(rounds):
        started, cpu = time.perf_counter(), cpu_seconds()
        findings = 0
        for target in targets:
            done = audit_repository(target, Known(), settings, ruleset)
            assert isinstance(done, RepoDone) and done.history is not None
            findings += len(done.history.findings)
        times.append(time.perf_counter() - started)
        print(f"  round {times[-1]:8.2f} s wall, {cpu_seconds() - cpu:8.2f} CPU-s (all processes)", flush=True)
    return times, findings


def on_cluster(targets: list[Target], workers: int, state_file: Path | None, rounds: int) -> list[float]:
    """Seconds per audit round (cluster start-up printed apart)."""
    from distributed import Client, LocalCluster

    started, cpu = time.perf_counter(), cpu_seconds()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0",
                           silence_logs=logging.CRITICAL)
    client = Client(cluster)
    print(f"  LocalCluster({workers}) start-up      {time.perf_counter() - started:8.2f} s", flush=True)
    ruleset = load_ruleset()
    times = []
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            if state_file is None:
                settings = AuditSettings(cache=None, max_size=DEFAULT_MAX_FILE_SIZE, split_slices=workers)
                results = run_fleet(client, targets, {}, settings, ruleset)
                assert all(r.error is None for r in results.values())
            else:
                state = AuditState(state_file)
                try:
                    ordered = audit_targets(client, targets, state, ruleset, full=False, cache=None)
                finally:
                    state.close()
                assert all(r.error is None for r in ordered)
                read = sum(r.done.objects for r in ordered if r.done)
                print(f"  audit round: {read} new objects read, {sum(len(r.findings) for r in ordered)} findings")
            times.append(time.perf_counter() - started)
            print(f"  round {times[-1]:8.2f} s wall", flush=True)
    finally:
        client.close()
        cluster.close()
    print(f"  CPU seconds (all processes, with start-up) {cpu_seconds() - cpu:8.2f} s")
    return times


def main() -> None:
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repos", type=int, default=50)
    parser.add_argument("--megabytes", type=int, default=4, help="content of each generated repository")
    parser.add_argument("--large", type=Path, help="a large repository to add (e.g. a bare mirror of aws/aws-cli)")
    parser.add_argument("--rounds", type=int, default=3, help="audits per configuration; the best is compared "
                        "(the first on a new cluster also pays the workers' imports)")
    parser.add_argument("--skip", action="append", default=[], choices=("sequential", "one", "two", "reaudit"))
    args = parser.parse_args()
    root = Path(tempfile.gettempdir()) / "keysweep-bench" / "fleet"
    print(f"generating {args.repos} repositories in {root} (once)...", flush=True)
    generate_fleet(root, args.repos, args.megabytes)
    targets = expand_targets([str(root / f"repo-{i:02}") for i in range(args.repos)])
    if args.large is not None:
        targets += expand_targets([str(args.large)])
    print(f"{len(targets)} repositories" + (f" (with {args.large})" if args.large else ""))
    figures: dict[str, float] = {}
    if "sequential" not in args.skip:
        times, findings = sequential(targets, args.rounds)
        figures["sequential"] = min(times)
        print(f"plain sequential loop (no Dask)      {figures['sequential']:8.2f} s best   {findings} findings", flush=True)
    if "one" not in args.skip:
        times = on_cluster(targets, 1, None, args.rounds)
        figures["one"] = min(times)
        print(f"audit, 1 worker                      {figures['one']:8.2f} s best (first round {times[0]:.2f} s)", flush=True)
    if "two" not in args.skip:
        times = on_cluster(targets, 2, None, args.rounds)
        figures["two"] = min(times)
        print(f"audit, 2 workers                     {figures['two']:8.2f} s best (first round {times[0]:.2f} s)", flush=True)
    if "sequential" in figures and "one" in figures:
        print(f"Dask overhead on 1 worker            {100 * (figures['one'] / figures['sequential'] - 1):+8.1f} %  (goal <= 10%)")
    if "one" in figures and "two" in figures:
        print(f"throughput 2 workers / 1 worker      {figures['one'] / figures['two']:8.2f} x  (goal >= 1.8x on 2 free cores)")
    if "reaudit" not in args.skip:
        with tempfile.TemporaryDirectory() as folder:
            first, *again_rounds = on_cluster(targets, 2, Path(folder) / "state.sqlite", rounds=max(2, args.rounds))
            again = min(again_rounds)
        print(f"first audit (with state), 2 workers  {first:8.2f} s")
        print(f"re-audit, nothing new                {again:8.2f} s best   {100 * again / first:.1f} % of the first (goal < 5%)")


if __name__ == "__main__":
    main()
