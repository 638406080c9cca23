"""keysweep benchmarks, one command:

    python benchmarks/bench.py REPO            # a repository you have (e.g. a clone of aws/aws-cli)
    python benchmarks/bench.py --synthetic     # generates one first (in $TMPDIR/keysweep-bench/synthetic)

Prints, in this order:
- the machine: CPU model and cores, Python, and the versions of regex, hyperscan (if
  installed), PyYAML and git;
- the floor (`git cat-file --batch-all-objects --batch --unordered`, git alone inflating every
  object) and `keysweep scan --history-only` on REPO, each run --runs times (interleaved):
  median and spread of the wall time, the ratio keysweep / floor, CPU-seconds (keysweep and
  the git processes it runs, from wait4), and the peak RSS of keysweep's own process (git's
  apart);
- the pre-commit hook: `keysweep scan --staged --no-progress -- . FILE...`, 3 staged files in a
  generated 2,000-file repository, best of 5, run as pre-commit runs it: the `keysweep`
  command of a wheel of this checkout installed (not editable) into a fresh venv (or the
  venv given with --hook-venv), with `python -m scanner` and bare Python beside it;
- the adversarial table, from benchmarks/adversarial.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

SAMPLE_EVERY = 0.05  # seconds between /proc samples of the process tree
SCRATCH = tempfile.gettempdir()


# --- the machine ------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _package_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, str]:
    git = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip().removeprefix("git version ")
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    facts = {
        "cpu": cpu_model(),
        "cores": f"{os.cpu_count()} ({usable} usable)",
        "python": platform.python_version(),
        "regex": _package_version("regex") or "not installed",
        "hyperscan": _package_version("hyperscan") or "not installed",
        "pyyaml": _package_version("PyYAML") or "not installed",
        "git": git or "not found",
        "keysweep": keysweep_installation(),
        "checkout": _keysweep_version(),
    }
    try:
        facts["load"] = " ".join(Path("/proc/loadavg").read_text().split()[:3]) + " (1, 5, 15 min)"
    except OSError:
        pass
    return facts


def _keysweep_version() -> str:
    from scanner import __version__

    commit = subprocess.run(["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    return f"{__version__}" + (f" ({commit})" if commit else "")


# --- measuring one command --------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    wall: float  # seconds
    cpu: float  # user + system seconds of the process and every child it waited for (git too)
    own_peak: int  # bytes: peak RSS of the process itself (VmHWM), not its children
    others_peak: int  # bytes: peak RSS summed over its other non-git descendants (workers)
    git_peak: int  # bytes: peak RSS summed over its git descendants
    code: int
    git_cpu: float = 0.0  # of ``cpu``, about how much its git descendants used (last /proc sample of each)


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    return children


def _descendants(pid: int) -> list[int]:
    children = _children()
    result, todo = [], list(children.get(pid, []))
    while todo:
        current = todo.pop()
        result.append(current)
        todo += children.get(current, [])
    return result


def _status(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/status") as handle:
            return dict(line.split(":", 1) for line in handle if ":" in line)
    except OSError:
        return {}


def _kib(fields: dict[str, str], key: str) -> int:
    try:
        return int(fields.get(key, "0 kB").split()[0]) * 1024
    except ValueError:
        return 0


def measure(command: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
            stdout: int | None = subprocess.DEVNULL) -> Run:
    """Run ``command`` and measure it; CPU from wait4, memory sampled from /proc."""
    started = time.perf_counter()
    proc = subprocess.Popen(list(command), cwd=cwd, env=env, stdout=stdout, stderr=subprocess.DEVNULL)
    own = others = git = 0
    git_ticks: dict[int, int] = {}
    stop = threading.Event()

    def sample() -> None:
        nonlocal own, others, git
        while not stop.is_set():
            own = max(own, _kib(_status(proc.pid), "VmHWM"))  # the kernel's own high-water mark
            tree_git = tree_others = 0
            for pid in _descendants(proc.pid):
                fields = _status(pid)
                if fields.get("Name", "").strip().startswith("git"):
                    tree_git += _kib(fields, "VmRSS")
                    git_ticks[pid] = max(git_ticks.get(pid, 0), _cpu_ticks(pid))
                else:
                    tree_others += _kib(fields, "VmRSS")
            others, git = max(others, tree_others), max(git, tree_git)
            stop.wait(SAMPLE_EVERY)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    stop.set()
    sampler.join()
    git_cpu = sum(git_ticks.values()) / os.sysconf("SC_CLK_TCK")
    return Run(wall, usage.ru_utime + usage.ru_stime, own, others, git, proc.returncode, git_cpu)


def _cpu_ticks(pid: int) -> int:
    """User + system clock ticks a process has used so far (/proc/PID/stat fields 14 and 15)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def _spread(values: Sequence[float], unit: str, fmt: str = ".2f") -> str:
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:{fmt}} {unit}"
    return f"{median:{fmt}} {unit} (median of {len(values)}; {min(values):{fmt}}–{max(values):{fmt}})"


MIB = 2**20


# --- the history scan against the floor -------------------------------------------------


def bench_history(repo: Path, jobs: int | None, runs: int) -> None:
    git_dir = _git_dir(repo.resolve())
    floor_command = ["git", "--git-dir", git_dir, "cat-file", "--batch-all-objects", "--batch", "--unordered"]
    report = Path(tempfile.mkdtemp(prefix="keysweep-bench-")) / "report.json"
    command = [sys.executable, "-m", "scanner", "scan", "--history-only", "--no-progress", "--format", "json",
               "--show-secrets", "--output", str(report), str(repo.resolve())]
    if jobs:
        command += ["--jobs", str(jobs)]
    floors: list[Run] = []
    scans: list[Run] = []
    for _ in range(runs):
        floors.append(measure(floor_command, cwd=Path(SCRATCH)))
        scan = measure(command, cwd=Path(SCRATCH), env=keysweep_environment())
        if scan.code not in (0, 1):
            raise SystemExit(f"keysweep failed with exit code {scan.code}: {' '.join(command)}")
        scans.append(scan)
    document = json.loads(report.read_text())
    shutil.rmtree(report.parent, ignore_errors=True)
    summary = document["summary"]
    print(f"repository            {repo}: {summary['blobs_scanned']} blobs, {summary['commits_scanned']} commits, "
          f"{summary['bytes_scanned'] / 1e9:.2f} GB, {len(document['findings'])} findings")
    print(f"floor (git cat-file)  {_spread([r.wall for r in floors], 's')}; "
          f"{statistics.median(r.cpu for r in floors):.1f} CPU-s; git peak RSS {max(r.own_peak for r in floors) / MIB:.0f} MiB")
    print(f"keysweep history      {_spread([r.wall for r in scans], 's')}"
          + (f" (--jobs {jobs})" if jobs else ""))
    print(f"ratio                 {_spread([s.wall / f.wall for s, f in zip(scans, floors)], 'x floor')}")
    print(f"CPU-seconds           {_spread([r.cpu for r in scans], 'CPU-s')} (keysweep and its git processes; "
          f"of which git about {statistics.median(r.git_cpu for r in scans):.1f}, sampled)")
    print(f"peak RSS              keysweep's own process {max(r.own_peak for r in scans) / MIB:.0f} MiB; "
          f"its workers together {max(r.others_peak for r in scans) / MIB:.0f} MiB; "
          f"git, apart, {max(r.git_peak for r in scans) / MIB:.0f} MiB")
    planted_file = repo.parent / f"{repo.name}.planted.json"
    if planted_file.exists():
        planted = json.loads(planted_file.read_text())
        found = {f["secret"] for f in document["findings"]}
        hits = sum(1 for p in planted if p["key_id"] in found and p["secret"] in found)
        print(f"recall                {hits}/{len(planted)} planted key pairs found")


def _git_dir(repo: Path) -> str:
    out = subprocess.run(["git", "-C", str(repo), "rev-parse", "--absolute-git-dir"], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else str(repo)


# --- the pre-commit hook -----------------------------------------------------------------


def hook_repository(root: Path, files: int = 2000, staged: int = 3) -> Path:
    """A repository of ``files`` small source files with ``staged`` of them edited and staged."""
    from tests.gitrepo import GitRepo

    repo = GitRepo(root)
    for i in range(files):
        repo.write(f"src/m{i % 50}/f{i}.py", f"def f{i}():\n    return {i}\n" * 20)
    repo.git("add", "-A")
    repo.commit("base")
    for i in range(staged):
        repo.write(f"src/m{i}/f{i}.py", f"def g{i}():\n    return 'changed'\n" * 30)
    repo.git("add", "-A")
    return root


_KEYSWEEP_ENV: dict[str, str] | None = None


def keysweep_environment() -> dict[str, str]:
    """How keysweep is run here: the installed one (as the pre-commit framework and users run
    it), else this checkout's. Commands run from a scratch folder, so `python -m scanner`
    never picks up a `scanner/` folder in the current one by accident."""
    global _KEYSWEEP_ENV
    if _KEYSWEEP_ENV is None:
        # Bytecode as a pip install writes it: PYTHONDONTWRITEBYTECODE, set on some machines,
        # would compile every module from source on every run.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        probe = subprocess.run([sys.executable, "-c", "import scanner"], cwd=SCRATCH, env=env, capture_output=True)
        if probe.returncode != 0:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), env.get("PYTHONPATH")]))
        _KEYSWEEP_ENV = env
    return _KEYSWEEP_ENV


def keysweep_installation() -> str:
    out = subprocess.run([sys.executable, "-c", "import scanner, sys; print(scanner.__version__, scanner.__file__)"],
                         cwd=SCRATCH, env=keysweep_environment(), capture_output=True, text=True).stdout.split(" ", 1)
    if len(out) != 2:
        return "not importable"
    version, where = out[0], Path(out[1].strip()).parent
    rules = "built-in rules from JSON (wheel)" if list((where / "_rules").glob("*.json")) else "built-in rules from YAML"
    return f"{version} at {where} ({rules})"


def hook_install(venv: Path | None) -> tuple[Path, str]:
    """The ``keysweep`` command to time, as the pre-commit framework installs it: a wheel of
    this checkout pip-installed (not editable) into a fresh virtual environment, with its
    dependencies. Or the one in ``venv`` (--hook-venv), as it is. Returns the command and
    a line saying what it is."""
    if venv is not None:
        command = venv / "bin" / "keysweep"
        if not command.exists():
            raise SystemExit(f"--hook-venv {venv}: no bin/keysweep there")
        return command, f"{command} (--hook-venv, as installed there)"
    scratch = Path(tempfile.mkdtemp(prefix="keysweep-hook-install-"))
    wheels = scratch / "wheel"
    steps = [
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(HERE.parent)],
        [sys.executable, "-m", "venv", str(scratch / "venv")],
    ]
    for step in steps:
        proc = subprocess.run(step, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"cannot install keysweep for the hook timing: {' '.join(step)}\n{proc.stderr[-2000:]}")
    wheel = next(wheels.glob("keysweep-*.whl"))
    proc = subprocess.run([str(scratch / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"cannot install {wheel.name} for the hook timing:\n{proc.stderr[-2000:]}")
    return scratch / "venv" / "bin" / "keysweep", (f"{wheel.name} of this checkout ({_keysweep_version()}), "
                                                 f"pip-installed (not editable) into a fresh venv, as pre-commit does")


def bench_hook(files: int = 2000, tries: int = 5, venv: Path | None = None) -> float:
    """Best of ``tries`` wall seconds of the pre-commit hook, run as the pre-commit framework
    runs it: the installed ``keysweep`` command, in the repository, with the hook's entry
    (.pre-commit-hooks.yaml: ``scan --staged --no-progress -- .``) and the staged files."""
    keysweep, what = hook_install(venv)
    print(f"hook install          {what}", flush=True)
    root = Path(tempfile.mkdtemp(prefix="keysweep-hook-")) / "hook"
    hook_repository(root, files)
    staged = subprocess.run(["git", "-C", str(root), "diff", "--cached", "--name-only", "-z"], capture_output=True,
                            text=True, check=True).stdout.strip("\0").split("\0")
    # As the installed package runs: bytecode written at install (PYTHONDONTWRITEBYTECODE, set
    # on some machines, would compile every module from source on every run).
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    env.update(_git_identity())
    python = keysweep.parent / "python"
    commands = {
        "keysweep": [str(keysweep), "scan", "--staged", "--no-progress", "--", ".", *staged],
        "python -m scanner": [str(python), "-m", "scanner", "scan", "--staged", "--no-progress", "--", ".", *staged],
        "bare python": [str(python), "-c", "pass"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for command in commands.values():
        measure(command, cwd=root, env=env)  # warm-up: files in the page cache
    load_before = _load()
    for _ in range(tries):  # interleaved: a busy moment slows each alike
        for name, command in commands.items():
            run = measure(command, cwd=root, env=env)
            if run.code != 0:
                raise SystemExit(f"the hook run failed with exit code {run.code}: {' '.join(command)}")
            times[name].append(run.wall)
    best = {name: min(values) * 1000 for name, values in times.items()}
    median = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print(f"pre-commit hook       {best['keysweep']:.0f} ms (best of {tries}; median {median['keysweep']:.0f} ms; "
          f"`keysweep scan --staged --no-progress -- . FILE x{len(staged)}`, {len(staged)} staged files in a "
          f"{files}-file repository; load average {load_before} before, {_load()} after)")
    print(f"                      python -m scanner: {best['python -m scanner']:.0f} ms best, "
          f"{median['python -m scanner']:.0f} ms median; bare Python start-up {best['bare python']:.0f} ms best")
    shutil.rmtree(root.parent, ignore_errors=True)
    if venv is None:
        shutil.rmtree(keysweep.parent.parent.parent, ignore_errors=True)
    return min(times["keysweep"])


def _load() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def _git_identity() -> dict[str, str]:
    return {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
            "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}


# --- the adversarial table ---------------------------------------------------------------


def bench_adversarial() -> None:
    script = HERE / "adversarial.py"
    if not script.exists():
        print("adversarial: benchmarks/adversarial.py not found")
        return
    print("adversarial inputs (benchmarks/adversarial.py):", flush=True)
    proc = subprocess.run([sys.executable, str(script)], env=keysweep_environment())
    if proc.returncode != 0:
        print(f"adversarial: benchmarks/adversarial.py failed with exit code {proc.returncode}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repo", nargs="?", type=Path)
    parser.add_argument("--synthetic", action="store_true", help="generate $TMPDIR/keysweep-bench/synthetic and use it")
    parser.add_argument("--runs", type=int, default=3, help="runs of the floor and of keysweep (median and spread; default 3)")
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--no-hook", action="store_true", help="skip the pre-commit hook timing")
    parser.add_argument("--no-adversarial", action="store_true", help="skip the adversarial table")
    parser.add_argument("--hook-only", action="store_true", help="the machine and the hook time only (no REPO needed)")
    parser.add_argument("--hook-venv", type=Path, metavar="DIR",
                        help="time the keysweep installed in this venv (default: build a wheel of this checkout "
                             "and install it into a fresh venv, as pre-commit does)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be 1 or more")
    repo = args.repo
    if args.synthetic:
        # Outside the checkout: the generated history holds planted keys, and a scan of this
        # repository's work tree would find them.
        repo = Path(tempfile.gettempdir()) / "keysweep-bench" / "synthetic"
        if not repo.exists():
            from benchmarks.make_synthetic_repo import generate

            print("generating a synthetic repository (a minute or two)...", flush=True)
            generate(repo, commits=4000, megabytes=300, keys=60, seed=7)
    if repo is None and not args.hook_only:
        parser.error("give a repository path, --synthetic, or --hook-only")
    if repo is not None and not repo.is_dir():
        parser.error(f"{repo}: no such folder")
    for name, value in machine().items():
        print(f"{name:<22}{value}")
    if not args.hook_only:
        assert repo is not None
        bench_history(repo, args.jobs, args.runs)
    if not args.no_hook:
        bench_hook(venv=args.hook_venv)
    if not args.no_adversarial and not args.hook_only:
        bench_adversarial()


if __name__ == "__main__":
    main()
