"""Attacks on the detection engine from outside: hostile shapes that once took super-linear
time, leak shapes other tools find, and encodings. Each test was written failing first
(notes/attack-engine.md in the session notes lists every attack tried)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest

from scanner.engine import native
from scanner.engine.detect import Match, as_scannable, detect
from scanner.engine.rules import load_ruleset
from tests.keygen import SECRET_ALPHABET, KeySet, secret_key

RULESET = load_ruleset()
KIB = 1024

# Shapes that grew with the square of the input (or worse). 256 KiB of each took minutes;
# linear code takes milliseconds. The bound is generous for a busy 2-core machine.
HOSTILE: dict[str, Callable[[int], bytes]] = {
    # The JWT pattern retried its unbounded header run from every "eyJ" inside one token.
    "a run of eyJ": lambda n: b"eyJ" * (n // 3),
    "a JWT header, then a payload run of eyJ": lambda n: (b"eyJhbGciOiJIUzI1NiJ9." + b"eyJ" * n)[:n],
}


def _fill(unit: Callable[[random.Random], str], size: int) -> bytes:
    rng = random.Random(11)
    parts: list[str] = []
    total = 0
    while total < size:
        parts.append(unit(rng))
        total += len(parts[-1])
    return "".join(parts).encode()[:size]


def _run(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(SECRET_ALPHABET) for _ in range(length))


# Shapes that made a built-in rule's pattern run past its time budget, which disables the rule
# for the rest of the scan: one such file and every later secret of that kind was missed.
# The name part of a pattern and what follows it could split a run in many ways, each tried.
BUDGET: dict[str, Callable[[int], bytes]] = {
    "'secret' over and over, with a value now and then": lambda n: _fill(
        lambda r: ("secret" * 6 + "sec ") * 20 + " " + secret_key(r) + " ", n),
    "'secret' then dashes, then a value": lambda n: _fill(
        lambda r: ("secret" + "-" * 120) * 6 + " " + secret_key(r) + " ", n),
    "'secret' then dots and dashes to the line end, a value below": lambda n: _fill(
        lambda r: ("secret" + "." * 80 + "-" * 40) * 6 + "\n" + secret_key(r) + "\n", n),
    "'sessiontoken' inside one long base64 run": lambda n: _fill(lambda r: "sessiontoken" + _run(r, 20), n),
}


@pytest.mark.parametrize("shape", sorted(BUDGET))
def test_built_in_rules_stay_within_their_time_budget(shape: str) -> None:
    ruleset = load_ruleset()
    data = BUDGET[shape](1024 * KIB)
    started = time.perf_counter()
    detect(data, ruleset)
    elapsed = time.perf_counter() - started
    assert not ruleset.health.disabled, f"{shape}: rules disabled (out of time): {ruleset.health.disabled}"
    assert elapsed < 10, f"{shape}: {elapsed:.1f} s for 1 MiB"


@pytest.mark.parametrize("shape", sorted(HOSTILE))
def test_hostile_shape_scans_in_linear_time(shape: str) -> None:
    data = HOSTILE[shape](256 * KIB)
    started = time.perf_counter()
    detect(data, RULESET)
    elapsed = time.perf_counter() - started
    assert elapsed < 3, f"{shape}: {elapsed:.1f} s for 256 KiB"


def _found(text: str | bytes, ruleset=RULESET) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    data = text.encode() if isinstance(text, str) else text
    scannable = as_scannable(data)
    assert scannable is not None, "treated as binary"
    return {(m.rule_id, m.secret.reveal()) for m in detect(scannable, ruleset)}


def test_jwt_payload_is_still_decoded(keys: KeySet) -> None:
    assert ("aws-secret-access-key", keys.secret) in _found(f"Authorization: Bearer {keys.jwt()}")
    assert ("aws-secret-access-key", keys.secret) in _found(f'{{"token":"{keys.jwt()}"}}')
