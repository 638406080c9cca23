"""A built-in rule's allow patterns, put together into one stdlib pattern for speed, decide
every value exactly as the separate patterns do."""

from __future__ import annotations

import random

import pytest

from scanner.engine.rules import combined_allow, load_ruleset
from tests.keygen import key_id, secret_key, session_token


def _values(rng: random.Random) -> list[bytes]:
    """Values meant to hit each kind of allow pattern the built-in files hold, and random keys
    that hit none."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    values = [key_id(rng=rng) for _ in range(300)] + [secret_key(rng) for _ in range(300)]
    values += [session_token(rng) for _ in range(20)]
    for _ in range(300):
        base = list(secret_key(rng))
        where = rng.randrange(len(base) - 8)
        trick = rng.choice([
            "EXAMPLE", "example", "ExAmPlE", rng.choice(letters) * rng.randint(4, 9),
            letters[rng.randrange(18):][:rng.randint(5, 8)], "/usr/", "usr/", "/home/", "srv/x",
            "exampl", "XAMPLE", "AAAAAAA", "22222222",
        ])
        base[where:where + len(trick)] = trick
        values.append("".join(base)[:40])
        values.append("AKIA" + "".join(base)[:16].upper())
    return [value.encode() for value in values]


@pytest.mark.parametrize("rule_id", [rule.id for rule in load_ruleset().rules if rule.allow])
def test_combined_allow_decides_as_the_separate_patterns(rule_id: str) -> None:
    rule = load_ruleset().by_id(rule_id)
    combined = combined_allow([pattern.pattern for pattern in rule.allow])
    assert combined is not None, f"{rule_id}: its allow patterns no longer combine (slower, still correct)"
    values = _values(random.Random(11))
    separate = [any(pattern.search(value) for pattern in rule.allow) for value in values]
    together = [combined.search(value) is not None for value in values]
    assert together == separate
    assert 0 < sum(separate) < len(values)  # the corpus holds values either way


def test_back_references_are_shifted_past_earlier_groups() -> None:
    combined = combined_allow([rb"(x)\1", rb"([ab])\1", rb"(?i)q(u)\1"])
    assert combined is not None
    assert [bool(combined.search(v)) for v in (b"xx", b"aa", b"bb", b"ab", b"QUU", b"qu")] == [
        True, True, True, False, True, False]


@pytest.mark.parametrize("sources", [
    [rb"(?P<a>x)", rb"(?P<a>y)"],  # the same group name twice
    [rb"(a)", rb"(b)(?P=name)"],  # a named back-reference
    [rb"x", rb"(a)\10"],  # a two-digit reference
    [rb"x", rb"a(?i)b"],  # global flags not at the start
])
def test_patterns_that_cannot_be_combined_say_so(sources: list[bytes]) -> None:
    assert combined_allow(sources) is None


def test_built_in_charsets_and_flags_read_alike_without_regex() -> None:
    """The built-in rules load and their patterns run without importing regex (the hook's
    start-up): each charset table is made with re, and regex's flag values are written out
    in lazyregex. Both must be what regex itself would give."""
    import regex

    from scanner.engine import detect, lazyregex
    from scanner.engine.rules import Rule

    assert (lazyregex.REGEX_ASCII, lazyregex.REGEX_VERSION0) == (regex.ASCII, regex.VERSION0)
    assert (regex.IGNORECASE, regex.MULTILINE, regex.DOTALL, regex.VERBOSE) == (2, 8, 16, 64)
    assert detect._REGEX_DEFAULT_FLAGS == regex.compile(b"").flags | detect._SHARED_FLAGS
    ruleset = load_ruleset()
    assert [rule.value for rule in ruleset.rules if rule.value is not None]
    for rule in ruleset.rules:
        assert isinstance(rule, Rule) and rule.builtin
        if rule.value is None:
            continue
        by_regex = regex.compile(f"[{rule.value.charset}]".encode())
        assert rule.value.table == bytes(1 if by_regex.fullmatch(bytes([i])) else 0 for i in range(256)), rule.id
    # The twin of a pattern not yet compiled is made from its source and given flags alone,
    # and is the twin the compiled pattern gets (inline flags read by re, as regex reads them).
    for rule in ruleset.rules:
        for pattern in rule.patterns + (rule.near.patterns if rule.near else ()):
            assert isinstance(pattern, lazyregex.LazyPattern) and "flags" not in vars(pattern)
            from_source = detect.stdlib_twin(pattern)
            assert from_source is not None and "flags" not in vars(pattern), rule.id  # regex never asked
            compiled = regex.compile(pattern.pattern, pattern.given_flags)
            detect._STDLIB_TWINS.clear()
            again = detect.stdlib_twin(compiled)
            assert again is not None and (again.pattern, again.flags) == (from_source.pattern, from_source.flags)


def test_a_built_in_rule_whose_allow_patterns_cannot_be_joined_still_allows() -> None:
    """_separately: the joined pattern's stand-in, used when joining fails."""
    from scanner.engine import detect
    from scanner.engine.lazyregex import lazy_compile

    search = detect._separately((lazy_compile(b"EXAMPLE"), lazy_compile(rb"(?i)dummy")))
    assert search(b"AKIAEXAMPLE") is not None and search(b"xxDUMMYxx") is not None and search(b"AKIAQQQQ") is None
