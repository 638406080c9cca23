"""Every rule's own examples: each positive is found by that rule, each negative is silent.

A new rule is tested by writing its YAML alone.
"""

from __future__ import annotations

import pytest

from scanner.engine.detect import detect
from scanner.engine.rules import Rule, load_ruleset
from tests.keygen import KeySet

RULESET = load_ruleset()


def _cases(kind: str) -> list[tuple[Rule, int, str]]:
    cases = []
    for rule in RULESET.rules:
        examples = rule.positive_examples if kind == "positive" else rule.negative_examples
        cases += [(rule, index, text) for index, text in enumerate(examples)]
    return cases


def _expected(rule: Rule, keys: KeySet) -> str:
    if rule.kind == "bearer-token":
        return keys.bedrock_short_key if "short-term" in rule.id else keys.bedrock_key
    return {"key-id": keys.key_id, "secret": keys.secret, "session-token": keys.token,
            "smtp-password": keys.smtp_password}[rule.kind]


@pytest.mark.parametrize(("rule", "index", "template"), _cases("positive"), ids=lambda v: v.id if isinstance(v, Rule) else str(v) if isinstance(v, int) else "")
def test_positive_example_is_found(rule: Rule, index: int, template: str) -> None:
    keys = KeySet.generate()
    text = keys.fill(template)
    found = [(m.rule_id, m.secret.reveal()) for m in detect(text.encode(), RULESET)]
    assert (rule.id, _expected(rule, keys)) in found, f"{rule.file}: {rule.id} positive example #{index + 1} not found:\n{text}"


@pytest.mark.parametrize(("rule", "index", "template"), _cases("negative"), ids=lambda v: v.id if isinstance(v, Rule) else str(v) if isinstance(v, int) else "")
def test_negative_example_is_silent(rule: Rule, index: int, template: str) -> None:
    text = KeySet.generate().fill(template)
    found = [m for m in detect(text.encode(), RULESET) if m.rule_id == rule.id]
    assert not found, f"{rule.file}: {rule.id} negative example #{index + 1} matched: {found}\n{text}"


def test_every_rule_has_examples_of_both_kinds() -> None:
    for rule in RULESET.rules:
        assert rule.positive_examples and rule.negative_examples, rule.id
