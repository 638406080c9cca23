"""The native prefilter (Hyperscan) changes nothing but speed: every rule example and a
generated corpus give identical findings with and without it."""

from __future__ import annotations

import base64
import random

import pytest

from scanner.engine import native
from scanner.engine.detect import Match, detect
from scanner.engine.rules import load_ruleset
from tests.keygen import KeySet

RULESET = load_ruleset()


def _summary(matches: list[Match]) -> list[tuple[str, str, int, int, str | None, int | None]]:
    return [(m.rule_id, m.secret.reveal(), m.line, m.column, m.decoded, m.pair) for m in matches]


def _corpus() -> list[bytes]:
    texts = []
    for rule in RULESET.rules:
        for template in (*rule.positive_examples, *rule.negative_examples):
            texts.append(KeySet.generate().fill(template).encode())
    rng = random.Random(20261128)
    pieces = [b"AKIA", b"ASIA", b"ABSK", b"secret", b"session_token=", b"session: ", b"=", b"\n", b" ", b"\\/",
              b"\\u0041", b"&#65;", b"%2F", b"eyJ", b"# keysweep:allow", b"aws_secret_access_key:\n  "]
    for _ in range(300):
        keys = KeySet.generate()
        parts = []
        for _ in range(rng.randint(1, 25)):
            roll = rng.random()
            if roll < 0.35:
                parts.append(rng.choice(pieces))
            elif roll < 0.5:
                parts.append(keys.key_id.encode())
            elif roll < 0.65:
                parts.append(keys.secret.encode())
            elif roll < 0.7:
                parts.append(keys.token.encode())
            elif roll < 0.75:
                parts.append(base64.b64encode(keys.secret.encode()))
            else:
                parts.append(bytes(rng.randrange(32, 127) for _ in range(rng.randint(0, 50))))
        texts.append(b"".join(parts))
    return texts


@pytest.mark.skipif(not native.available(), reason="no hyperscan wheel for this platform: the pure-Python engine runs")
def test_hyperscan_prefilter_and_python_engine_find_the_same() -> None:
    plain = load_ruleset()
    plain.health.prefilter = False
    prefiltered = load_ruleset()
    prefiltered.health.prefilter = native.Prefilter(prefiltered)
    assert prefiltered.health.prefilter.database is not None
    found_any = 0
    skipped_any = 0
    for text in _corpus():
        expected = _summary(detect(text, plain))
        assert _summary(detect(text, prefiltered)) == expected, text
        found_any += bool(expected)
        skipped_any += "aws-access-key-id" not in prefiltered.health.prefilter.possible(text)
    assert found_any > 100
    assert skipped_any > 10  # the prefilter does rule texts out, or it would be no use


def test_python_engine_is_chosen_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(native.ENGINE_VARIABLE, "python")
    ruleset = load_ruleset()
    assert native.prefilter_for(ruleset, 10**9) is None
    assert native.engine_name().startswith("python")


def test_prefilter_is_not_built_for_small_scans() -> None:
    ruleset = load_ruleset()
    detect(b"hello\n" * 100, ruleset)
    assert ruleset.health.prefilter is None  # the pre-commit hook never imports hyperscan


def test_ruleset_pickles_without_the_native_database() -> None:
    import pickle

    if not native.available():
        pytest.skip("no hyperscan wheel for this platform")
    ruleset = load_ruleset()
    ruleset.health.prefilter = native.Prefilter(ruleset)
    copy = pickle.loads(pickle.dumps(ruleset))
    assert copy.health.prefilter is None and [r.id for r in copy.rules] == [r.id for r in ruleset.rules]
