"""Attacks on the detection engine from outside: hostile shapes that once took super-linear
time, leak shapes other tools find, and encodings. Each test was written failing first
(notes/attack-engine.md in the session notes lists every attack tried)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from scanner.engine import native
from scanner.engine.detect import Match, as_scannable, detect
from scanner.engine.rules import load_ruleset
from tests.keygen import KeySet

RULESET = load_ruleset()
KIB = 1024

# Shapes that grew with the square of the input (or worse). 256 KiB of each took minutes;
# linear code takes milliseconds. The bound is generous for a busy 2-core machine.
HOSTILE: dict[str, Callable[[int], bytes]] = {
    # The JWT pattern retried its unbounded header run from every "eyJ" inside one token.
    "a run of eyJ": lambda n: b"eyJ" * (n // 3),
    "a JWT header, then a payload run of eyJ": lambda n: (b"eyJhbGciOiJIUzI1NiJ9." + b"eyJ" * n)[:n],
}


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
