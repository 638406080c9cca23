"""No quadratic path comes back: 1 MiB of each worst-case shape scans well within a generous
bound (the benchmark, benchmarks/adversarial.py, measures the real figures and the ratio
for twice the input)."""

from __future__ import annotations

import time

import pytest

from benchmarks.adversarial import SHAPES
from scanner.engine.detect import detect
from scanner.engine.rules import load_ruleset

RULESET = load_ruleset()
MIB = 1024 * 1024


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_one_mib_of_each_shape_scans_in_linear_time(shape: str) -> None:
    data = SHAPES[shape](MIB)
    assert len(data) == MIB
    started = time.perf_counter()
    detect(data, RULESET)
    elapsed = time.perf_counter() - started
    # Quadratic paths took 40-65 s on 1 MiB; linear ones take about a second at worst on a
    # busy 2-core machine. 10 s catches the former without making CI flaky.
    assert elapsed < 10, f"{shape}: {elapsed:.1f} s for 1 MiB"
