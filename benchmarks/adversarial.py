"""Worst-case inputs for the detector: each shape at two sizes, to show time grows linearly.

    python benchmarks/adversarial.py [--size-kib 1024] [--runs 3]

Prints, per engine (the pure-Python one, and the native prefilter where the hyperscan wheel
exists) and per shape, the seconds for N and 2N bytes (the median of --runs runs each) and
their ratio (about 2.0 when linear, about 4.0 when quadratic). Keys are generated at run time; patterns are compiled before the
clock starts, and no value checked for one input is remembered for the next.
"""

from __future__ import annotations

import argparse
import base64
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scanner.engine import native  # noqa: E402
from scanner.engine.detect import detect  # noqa: E402
from scanner.engine.rules import RuleSet, load_ruleset  # noqa: E402
from tests.keygen import key_id, secret_key  # noqa: E402


def _repeat(unit: Callable[[random.Random], str], size: int, separator: str) -> bytes:
    rng = random.Random(7)
    parts: list[str] = []
    total = 0
    while total < size:
        piece = unit(rng) + separator
        parts.append(piece)
        total += len(piece)
    return "".join(parts).encode()[:size]


def _token(rng: random.Random) -> str:
    return "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") for _ in range(40))


def _minified_js(rng: random.Random) -> str:
    name = "".join(rng.choice("abcdefghij") for _ in range(3))
    return (f"var {name}=function(e,t){{return e.secretKey||t.accessKeyId||\"{_token(rng)}\"}};"
            f"{name}.secret=\"{secret_key(rng)}\";")


SHAPES: dict[str, Callable[[int], bytes]] = {
    "one line of secret=<40 chars> repeated": lambda n: _repeat(lambda r: f"secret={secret_key(r)}", n, " "),
    "one line of key IDs": lambda n: _repeat(lambda r: key_id(rng=r), n, " "),
    "key_id,secret CSV rows": lambda n: _repeat(lambda r: f"{key_id(rng=r)},{secret_key(r)}", n, "\n"),
    "secret=<value> one per line": lambda n: _repeat(lambda r: f"secret={secret_key(r)}", n, "\n"),
    "one line of 40-character tokens": lambda n: _repeat(_token, n, " "),
    "minified JavaScript (one line)": lambda n: _repeat(_minified_js, n, ""),
    "base64 blob (one line)": lambda n: _repeat(lambda r: base64.b64encode(
        f"aws_secret_access_key={secret_key(r)}\n".encode()).decode(), n, ""),
    "JSON with escaped slashes (one line)": lambda n: _repeat(
        lambda r: '{"SecretAccessKey":"%s"},' % secret_key(r).replace("/", "\\/"), n, ""),
    "\\u escapes (one line)": lambda n: _repeat(lambda r: "\\u0041" + key_id(rng=r)[1:], n, " "),
    "blank lines": lambda n: b"\n" * n,
}


def _warm(ruleset: RuleSet) -> None:
    """Compile what the first text of a process compiles (patterns are compiled on first
    use): a cost per process, not per input."""
    rng = random.Random(1)
    sample = (f"aws_access_key_id = {key_id(rng=rng)}\naws_secret_access_key = {secret_key(rng)}\n"
              f"session_token = {'A' * 120}\n\\u0041 %2F eyJhbGciOi.eyJzdWIiOi.x\n").encode()
    detect(sample + base64.b64encode(sample) + b"\n", ruleset)


def measure(data: bytes, ruleset: RuleSet, runs: int = 1) -> float:
    """Seconds for ``detect``, the median of ``runs``; each run starts with no value remembered
    (the larger input of a shape begins with the smaller one, whose values would be known)."""
    times = []
    for _ in range(runs):
        ruleset.health.verdicts.clear()
        started = time.perf_counter()
        detect(data, ruleset)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def engines() -> dict[str, RuleSet]:
    """A rule set per engine: the pure-Python one (what a hook or a small scan runs: the
    native prefilter is built only after 4 MiB in a process) and, where the wheel exists,
    the native prefilter (what a history scan runs)."""
    chosen: dict[str, RuleSet] = {}
    python = load_ruleset()
    python.health.prefilter = False
    chosen["python"] = python
    if native.available():
        built = load_ruleset()
        built.health.prefilter = native.Prefilter(built)
        chosen["native"] = built
    for ruleset in chosen.values():
        _warm(ruleset)
    return chosen


def rows(size: int, runs: int = 1) -> list[tuple[str, str, int, float, float]]:
    result = []
    for engine, ruleset in engines().items():
        for name, make in SHAPES.items():
            small, large = make(size), make(2 * size)
            result.append((engine, name, size, measure(small, ruleset, runs), measure(large, ruleset, runs)))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-kib", type=int, default=1024, help="the smaller size (default 1024 KiB = 1 MiB)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each input; the median is printed (default 3)")
    args = parser.parse_args(argv)
    size = args.size_kib * 1024
    print(f"adversarial inputs, engine alone (detect), {args.size_kib} KiB and twice that, median of {args.runs} runs:")
    print(f"  {'engine':7} {'shape':42} {'N s':>8} {'2N s':>8} {'ratio':>6}")
    for engine, name, _, small, large in rows(size, max(1, args.runs)):
        ratio = large / small if small > 0 else float("nan")
        print(f"  {engine:7} {name:42} {small:8.3f} {large:8.3f} {ratio:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
