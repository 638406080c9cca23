"""The detector: bytes in, matches out.

Order of work for one text, cheapest first:
1. Rules with a value shape (secret keys, session tokens) start from the values: one
   translate-and-search pass finds every run of the charset of the right length; only
   around such a run are the rule's keywords and patterns tried.
2. Rules without one run their patterns over the whole text (the key-ID pattern leads with
   literals, which the engine searches fast), behind their keywords if they have any.
3. ``near`` patterns run only in the few lines around a key ID.
4. Every value passes the rule's checks (classes, allowlist, entropy) and the inline-allow
   comment check; decoded views (base64, URL encoding) get the same treatment.
5. Key IDs, secrets and session tokens found close together are paired.
"""

from __future__ import annotations

import bisect
import functools
import math
import operator
import re
import time
import warnings
from collections import _count_elements  # type: ignore[attr-defined]
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import TYPE_CHECKING, NamedTuple, TypeAlias

from scanner.engine.decode import (
    BASE64_TABLE,
    BINARY_SNIFF_BYTES,
    MAX_TOKEN,
    MIN_BASE64_RUN,
    TEXT_CONTROLS,
    DecodingKind,
    decoded_views,
    utf16_by_parity,
    value_runs,
)
from scanner.engine.lazyregex import REGEX_ASCII, REGEX_VERSION0, LazyPattern
from scanner.engine.native import NATIVE_RUN, Prefilter, prefilter_for
from scanner.engine.rules import CharClass, Rule, RuleHealth, RuleSet, ValueShape, combined_allow
from scanner.secret import PAIRS_WITH_KEY_ID, Secret

if TYPE_CHECKING:
    import regex

# Comments that mark a line as a known false positive. keysweep's own, and those of
# gitleaks and detect-secrets so a team can switch tools without editing every file.
ALLOW_MARKERS: tuple[bytes, ...] = (b"keysweep:allow", b"gitleaks:allow", b"trufflehog:ignore", b"pragma: allowlist secret")
# A secret pairs with a key ID at most this many lines away (when the text holds several).
PAIR_LINES = 6
LONG_BASE64_RUN = 40
MANIFEST_HEAD = 4096
MANIFEST_MARKERS = (b"kind: Secret", b'"kind": "Secret"', b'"kind":"Secret"')
# A rule's pattern may take this long on one call; past it the rule is disabled for the rest
# of the scan (a rule file from a repository can hold a pattern that backtracks for hours).
PATTERN_TIMEOUT = 2.0
PATTERN_SECONDS_PER_MIB = 1.0  # built-in patterns take 0.05-0.2 s per MiB
MATCH_BATCH = 4096  # matches a pattern call collects before they are checked


class Match(NamedTuple):
    """One secret found in one text, at a byte offset of that text.

    (An immutable named tuple rather than a frozen dataclass: one is made per finding, and a
    frozen dataclass costs ~2 us to make against ~0.4, a tenth of a dense file's scan. Its
    secret stays a Secret, redacted when printed.)"""

    rule_id: str
    secret: Secret
    start: int
    line: int
    column: int
    decoded: DecodingKind | None = None
    pair: int | None = None  # index, in the same list, of the key ID or secret it belongs with
    session_token: int | None = None  # on a key ID: index of its session token


def is_binary(data: bytes) -> bool:
    """Content sniffing: a NUL byte near the start means binary (UTF-16 text is decoded first)."""
    return b"\x00" in data[:BINARY_SNIFF_BYTES]


def as_scannable(data: bytes) -> bytes | None:
    """The bytes to scan, or None for binary content. UTF-16 text (with a BOM, or without one
    when its NUL bytes say so) and UTF-32 text with a BOM become UTF-8."""
    if data[:4] in (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"):
        return data[: len(data) - len(data) % 4].decode("utf-32", "replace").encode("utf-8")
    # A BOM over text without a NUL byte is not UTF-16 (ASCII in UTF-16 is half NULs): read as
    # UTF-16, UTF-8 text behind FF FE would turn into CJK characters and hide every key.
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") and b"\x00" in data:
        # An odd byte count (a truncated last character) or a lone surrogate does not make
        # UTF-16 text binary: what cannot be decoded is replaced.
        return data[: len(data) - len(data) % 2].decode("utf-16", "replace").encode("utf-8")
    if not is_binary(data):
        # The sniff reads the start only: UTF-16 whose first 8 KiB are CJK characters has no
        # NUL there, and its ASCII keys further on (A\0K\0I\0A\0...) would be read as bytes.
        if data.find(b"\x00", BINARY_SNIFF_BYTES) < 0:
            return data
        decoded = utf16_by_parity(data)
        return data if decoded is None else decoded
    codec = _utf16_without_bom(data)
    if codec is None:
        return utf16_by_parity(data)
    return data[: len(data) - len(data) % 2].decode(codec, "replace").encode("utf-8")


def _utf16_without_bom(data: bytes) -> str | None:
    """"utf-16-le" or "utf-16-be" when the sniffed start reads as mostly-ASCII UTF-16 text.

    Latin text in UTF-16 has a NUL in (nearly) every other byte and none in the others, and
    decodes to printable characters; binary formats scatter NULs and control bytes.
    """
    sample = data[: min(len(data), BINARY_SNIFF_BYTES) & ~1]
    half = len(sample) // 2
    if half < 8:
        return None
    for codec, low, high in (("utf-16-le", sample[0::2], sample[1::2]), ("utf-16-be", sample[1::2], sample[0::2])):
        if high.count(0) * 4 < half * 3 or low.count(0) * 100 > half:
            continue
        # The low bytes of the characters whose high byte is NUL: control characters there
        # (other than tab, newline, carriage return) mean numbers, not text.
        ascii_part = bytes(b for b, h in zip(low, high) if h == 0)
        if len(ascii_part) - len(ascii_part.translate(None, TEXT_CONTROLS)) > len(ascii_part) // 100:
            continue
        return codec
    return None


# c * log2(c) for counts up to 4096: entropy in one table look-up per distinct character.
_C_LOG_C = [0.0] + [c * math.log2(c) for c in range(1, 4097)]


def shannon_entropy(value: str | bytes) -> float:
    """Bits per character: log2(n) - sum(c * log2(c)) / n over the character counts c."""
    total = len(value)
    if total == 0:
        return 0.0
    # Counting into a plain dict with Counter's own C helper: a Counter costs twice as much
    # (its constructor's checks), once per candidate value.
    tally: dict[int | str, int] = {}
    _count_elements(tally, value)
    counts = tally.values()
    if total < len(_C_LOG_C):
        return math.log2(total) - sum(map(_C_LOG_C.__getitem__, counts)) / total
    return -sum(n / total * math.log2(n / total) for n in counts)


def entropy_at_least(value: bytes, threshold: float) -> bool:
    """``shannon_entropy(value) >= threshold``, mostly without counting: k distinct characters
    in n give at least the entropy of one character n-k+1 times and the others once (entropy
    is least where the counts are most uneven), and at most log2(k). A random key clears the
    first bound from its distinct characters alone (one set, ~0.4 us, against ~3 us)."""
    total = len(value)
    if threshold <= 0 or total == 0:
        return threshold <= 0
    distinct = len(set(value))
    if _least_entropy(total, distinct) >= threshold + 1e-9:
        return True
    if math.log2(distinct) < threshold - 1e-9:
        return False
    return shannon_entropy(value) >= threshold


@functools.lru_cache(maxsize=4096)
def _least_entropy(total: int, distinct: int) -> float:
    most = total - distinct + 1
    return math.log2(total) - most * math.log2(most) / total


_DIGITS = b"0123456789"
_LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ALNUM = _LETTERS + _DIGITS


# Byte-level tests in C: they run for every candidate value.
_CLASS_TESTS: dict[CharClass, Callable[[bytes], bool]] = {
    "upper": lambda value: value.lower() != value,
    "lower": lambda value: value.upper() != value,
    "digit": lambda value: len(value.translate(None, _DIGITS)) != len(value),
    "symbol": lambda value: len(value.translate(None, _ALNUM)) > 0,
    "digit-or-symbol": lambda value: len(value.translate(None, _LETTERS)) > 0,
}


def _has_class(value: bytes, cls: CharClass) -> bool:
    return _CLASS_TESTS[cls](value)


# Verdicts kept per process at most (then forgotten all at once): a few MB.
MAX_VERDICTS = 1 << 16


def value_passes(rule: Rule, value: bytes, health: RuleHealth | None = None) -> bool:
    known: dict[Hashable, bool] | None = None
    key: Hashable = value
    if health is not None:
        if rule.id in health.disabled:
            # Switched off (its allowlist ran out of time on a value): the values after it
            # would each wait for the budget again, 2 s apiece, thousands in one text.
            return False
        # The rule files' rules share one memory, bounded in all: there may be hundreds.
        if rule.builtin:
            known = health.verdicts.setdefault(rule.id, {})
        else:
            known, key = health.rule_file_verdicts, (rule.id, value)
        remembered = known.get(key)
        if remembered is not None:
            return remembered
    if not all(_has_class(value, cls) for cls in rule.require):
        verdict = False
    else:
        try:
            if rule.builtin:
                combined = _builtin_allow(rule, health)
                if combined is not None:
                    allowed = combined.search(value) is not None
                else:
                    allowed = _separately(rule.allow)(value) is not None
            else:
                began = time.perf_counter()
                allowed = any(pattern.search(value, timeout=PATTERN_TIMEOUT) for pattern in rule.allow)
                if health is not None and not _within_allowance(rule, health, time.perf_counter() - began):
                    return False  # out of its allowance for the scan: disabled, no verdict
        except (TimeoutError, MemoryError, RecursionError):
            if health is not None:
                health.timed_out(rule.id)
                if not rule.builtin:
                    _within_allowance(rule, health, PATTERN_TIMEOUT)  # about what it took
            return False  # not a verdict on the value: not remembered
        verdict = not allowed and entropy_at_least(value, rule.min_entropy)
    if known is not None:
        if len(known) >= MAX_VERDICTS:
            known.clear()
        known[key] = verdict
    return verdict


def _value_check(rule: Rule, health: RuleHealth) -> Callable[[bytes], bool]:
    """``value_passes`` for one rule, set up once per pattern call rather than once per value.

    A built-in rule's checks (classes, its joined allow pattern, entropy) become one closure
    over its own verdicts: a line of 50,000 key IDs checked each through value_passes spent
    a third of its time on looking the same things up again. A rule file's rule goes through
    value_passes, with its clock and allowance."""
    if not rule.builtin:
        return functools.partial(value_passes, rule, health=health)
    known = health.verdicts.setdefault(rule.id, {})
    # The joined allow pattern is compiled for the first value that needs a verdict: most
    # texts the hook scans have none.
    allowed: Callable[[bytes], object] | None = None
    require = tuple(_CLASS_TESTS[cls] for cls in rule.require)
    threshold = rule.min_entropy

    def passes(value: bytes) -> bool:
        nonlocal allowed
        verdict = known.get(value)
        if verdict is None:
            if allowed is None and rule.allow:
                combined = _builtin_allow(rule, health)
                allowed = combined.search if combined is not None else _separately(rule.allow)
            verdict = ((not require or all(test(value) for test in require))
                       and (allowed is None or allowed(value) is None) and entropy_at_least(value, threshold))
            if len(known) >= MAX_VERDICTS:
                known.clear()
            known[value] = verdict
        return verdict

    return passes


def _separately(patterns: tuple[regex.Pattern[bytes], ...]) -> Callable[[bytes], object]:
    """What a joined allow pattern's search answers, from the patterns one by one (built-in
    patterns that cannot be joined: none today, tests/test_allow_combined.py)."""
    def search(value: bytes) -> object:
        return next((True for pattern in patterns if pattern.search(value) is not None), None)

    return search


def _builtin_allow(rule: Rule, health: RuleHealth | None) -> re.Pattern[bytes] | None:
    """A built-in rule's allow patterns as one (rules.combined_allow), made once per process."""
    if health is None or not rule.allow:
        return None
    try:
        return health.allow_any[rule.id]
    except KeyError:
        combined = health.allow_any[rule.id] = combined_allow([pattern.pattern for pattern in rule.allow])
        return combined


class _Candidate(NamedTuple):
    """A value a rule's pattern or shape found, before checks and pairing. (A named tuple, not
    a frozen dataclass: made once per value, it costs 0.6 us against 1.3.)"""

    rule: Rule
    value: bytes
    start: int
    end: int
    decoded: DecodingKind | None = None  # the view it was found in (its place is the token's)


def detect(data: bytes, ruleset: RuleSet) -> list[Match]:
    """Every secret in ``data`` (already known to be text), paired where possible."""
    ruleset.health.text_bytes += len(data)
    prefilter = prefilter_for(ruleset, len(data))
    runs = _RunCache(data, prefilter)
    native = prefilter.scan(data) if prefilter is not None else None
    possible = native.rules if native is not None else None
    candidates = _find(data, ruleset, runs, possible) if possible is None or possible else []
    # One layer down: decoded views are scanned, never decoded again.
    # Long encoded values (a secret is 56 characters in base64, a credentials file far
    # more) are looked at everywhere; short ones (a key ID is 28) only in manifests that
    # carry base64 data by design, where the cost of looking at every token is worth it.
    head = data[:MANIFEST_HEAD]
    short = b"apiVersion" in head and any(marker in head for marker in MANIFEST_MARKERS)
    marks = native.marks if native is not None else None
    # (A native mark for "a run long enough to decode" would save this pass on a fifth of
    # the bytes of a typical history, but costs Hyperscan more than the pass: no literal
    # to skip ahead by.)
    base64_runs = runs.get(BASE64_TABLE, MIN_BASE64_RUN if short else LONG_BASE64_RUN)
    escapes = native.escape_ends if native is not None else None
    for view in decoded_views(data, base64_runs, marks, escapes):
        view_runs = _RunCache(view.data)
        for candidate in _find(view.data, ruleset, view_runs):
            origin = view.original_offset(candidate.start, candidate.end)
            if origin is not None:
                candidates.append(_Candidate(candidate.rule, candidate.value, origin, origin, view.kind))
        if view.kind != "base64":
            continue
        # A second layer, and no more: base64 of base64, a credentials file in a JWT's
        # payload. Each layer is one linear pass over a text no longer than the one before.
        for inner in decoded_views(view.data, view_runs.get(BASE64_TABLE, LONG_BASE64_RUN)):
            for candidate in _find(inner.data, ruleset, _RunCache(inner.data)):
                middle = inner.original_offset(candidate.start, candidate.end)
                origin = view.original_offset(middle, middle) if middle is not None else None
                if origin is not None:
                    candidates.append(_Candidate(candidate.rule, candidate.value, origin, origin, view.kind))
    if not candidates:
        return []  # most texts of a history: no sorting, locating or pairing of nothing
    return _pair(_drop_tokens_found_plain(_locate(data, _dedupe(candidates), ruleset.inline_allow), data),
                 ruleset.builtin_ids)


class _RunCache:
    """Runs of each value charset, computed once per text and shared by the rules."""

    def __init__(self, data: bytes, prefilter: Prefilter | None = None) -> None:
        self.data = data
        self.prefilter = prefilter
        self.runs: dict[bytes, tuple[int, list[tuple[int, int]]]] = {}

    def get(self, table: bytes, min_length: int, *, keep: bool = True) -> list[tuple[int, int]]:
        """``keep``: remember the runs for the next rule asking (the built-in charsets)."""
        cached = self.runs.get(table)
        if cached is None and not keep:
            return value_runs(self.data, table, min_length)
        if cached is None or cached[0] > min_length:
            if self.prefilter is not None and table == BASE64_TABLE and min_length >= NATIVE_RUN:
                cached = (NATIVE_RUN, self.prefilter.base64_runs(self.data))
                self.runs[table] = cached
                return [(s, e) for s, e in cached[1] if e - s >= min_length]
            cached = (min_length, value_runs(self.data, table, min_length))
            self.runs[table] = cached
        elif cached[0] < min_length:
            return [(s, e) for s, e in cached[1] if e - s >= min_length]
        return cached[1]


def _find(data: bytes, ruleset: RuleSet, runs: _RunCache, possible: set[str] | None = None) -> list[_Candidate]:
    found: list[_Candidate] = []
    lowered: bytes | None = None
    health = ruleset.health
    # Native code (Hyperscan) says in one pass which pattern-driven rules can match at all;
    # the others are not run. The prefilter accepts a superset, so findings do not change.
    # (Decoded views are scanned without it: they are few and small.)
    for rule in ruleset.rules:
        if not rule.patterns or _switched_off(rule, health):
            continue
        if possible is not None and rule.id not in possible:
            continue
        # A rule file's value rule whose keywords are nowhere in the text has no window they
        # could be in: its values are not looked for (a hundred such rules, each with a charset
        # of its own, took 30 s on 0.5 MB of short tokens).
        if rule.value is not None and (rule.builtin or not rule.keywords):
            found += _run_by_value(rule, data, runs, health)
            continue
        if rule.keywords:
            lowered = data.lower() if lowered is None else lowered
            began = time.perf_counter()
            present = any(keyword in lowered for keyword in rule.keywords)
            # A rule file's keywords are looked for outside any pattern's clock (40,000 of
            # them: 160 s a MiB): charged to the allowance.
            if not rule.builtin and not _within_allowance(rule, health, time.perf_counter() - began):
                continue
            if not present:
                continue
        if rule.value is not None:
            found += _run_by_value(rule, data, runs, health)
            continue
        found += _run(rule, rule.patterns, data, 0, len(data), health)
    if not found:
        return found  # no anchors for the near patterns (most texts)
    # Rules near the same kind of anchor, as many lines around it, share their windows (the
    # built-in near rules all look around key IDs: a line of 50,000 of them was windowed thrice).
    windows: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for rule in ruleset.rules:
        if rule.near is None or _switched_off(rule, health):
            continue
        # A rule with a value shape reports values of that shape only, near or not: a window
        # without one is not searched (a line of 50,000 key IDs holds no 40-character run, and
        # windowing it and searching it for secrets was a fifth of its time).
        # A rule file's value runs and windows are found outside any pattern's clock (a rule
        # file holding every `lines` from 0 to 50 windowed a MiB of key IDs 51 times, +23 s):
        # charged to the allowance.
        began = time.perf_counter()
        value_starts = _value_starts(runs, rule.value, keep=rule.builtin) if rule.value is not None else None
        if value_starts == []:
            if not rule.builtin:
                _within_allowance(rule, health, time.perf_counter() - began)
            continue
        where = (rule.near.kind, rule.near.lines)
        if where not in windows:
            windows[where] = _windows(data, [c.start for c in found if c.rule.kind == rule.near.kind], rule.near.lines)
        rule_windows = windows[where] if value_starts is None else _holding(windows[where], value_starts)
        if not rule.builtin and not _within_allowance(rule, health, time.perf_counter() - began):
            continue
        for start, end in rule_windows:
            found += _run(rule, rule.near.patterns, data, start, end, health)
            if rule.id in health.disabled:
                break
    return found


# Bytes of matches a pattern may hand over per byte of its window (and a floor for small
# windows): the built-in rules match each byte about once; 16 leaves room for names that
# claim the same value twice.
MATCHED_BYTES_PER_BYTE = 16
MATCHED_BYTES_FLOOR = 64 * 1024


def pattern_budget(length: int) -> float:
    """Seconds one pattern call over ``length`` bytes may take: a fixed allowance and a share
    per MiB, so a linear pattern over a large text (a 25 MiB dump) is never cut off, while
    a pattern that backtracks still stops in time linear in the text."""
    return PATTERN_TIMEOUT + PATTERN_SECONDS_PER_MIB * length / (1 << 20)


# What the rule files' rules may spend together in the whole scan (per process), beyond each
# call's own budget: a pattern kept just under that budget on every file (1.9 s a file, a
# thousand files) was never switched off, and 2,800 small rules each had budgets of their
# own. The same share per MiB as one call, and a fixed allowance; past it every rule file's
# rule is switched off (and reported), the built-in ones go on.
RULE_SECONDS_PER_SCAN = 10.0


# A rule file's value rule is charged for its values' checks once every this many + 1.
CHARGE_EVERY = 4095
# What the rule files' rules may report together in the whole scan (per process), beyond
# their time: each value found is located, paired, kept and reported outside any pattern's
# clock (`[a-z]{0,3000}(?P<secret>[0-9])` reported 587,000 values from 1 MB of text: 37 s and
# 1.6 GB). A rule that would report past this is switched off like one out of time.
RULE_VALUES_PER_SCAN = 10_000
RULE_VALUES_PER_MIB = 1_000


def _rule_file_values(rule: Rule, health: RuleHealth, found: list[_Candidate]) -> list[_Candidate]:
    """As many of ``found`` (a rule file's rule's values) as the rule files' rules may still
    report in this scan; past that, ``rule`` is switched off. A value claimed by several
    overlapping matches (one per letter before a digit) counts once."""
    found = list({(candidate.start, candidate.end): candidate for candidate in found}.values())
    reported = health.custom_values.get(rule.pool, 0)
    room = int(RULE_VALUES_PER_SCAN + RULE_VALUES_PER_MIB * health.text_bytes / (1 << 20)) - reported
    if len(found) <= room:
        health.custom_values[rule.pool] = reported + len(found)
        return found
    health.custom_values[rule.pool] = reported + max(room, 0)
    health.timed_out(rule.id, "values" if room > 0 else "shared")
    return found[: max(room, 0)]


def _allowance_left(rule: Rule, health: RuleHealth) -> float:
    """What is left of the allowance ``rule`` shares with the rule files of its pool."""
    spent = health.custom_spent.get(rule.pool, 0.0)
    return RULE_SECONDS_PER_SCAN + PATTERN_SECONDS_PER_MIB * health.text_bytes / (1 << 20) - spent


def _within_allowance(rule: Rule, health: RuleHealth, seconds: float) -> bool:
    """Charge ``seconds`` to the rule files' rules; past their allowance for the scan so far,
    ``rule`` is disabled (and reported as out of time; the others as they next run) and False
    is returned."""
    health.custom_spent[rule.pool] = health.custom_spent.get(rule.pool, 0.0) + seconds
    left = _allowance_left(rule, health)
    if left >= 0:
        return True
    health.timed_out(rule.id, "time" if left + seconds >= 0 else "shared")
    return False


def _switched_off(rule: Rule, health: RuleHealth) -> bool:
    """Whether ``rule`` may not run: disabled, or a rule file's rule once their allowance is spent."""
    if rule.id in health.disabled:
        return True
    if not rule.builtin and _allowance_left(rule, health) < 0:
        health.timed_out(rule.id, "shared")
        return True
    return False


# A built-in pattern's twin in the standard library's engine, by source (None where ``re``
# cannot compile it: Python 3.10 has no possessive quantifiers). ``re`` runs the built-in
# patterns 2-10x faster a byte than ``regex`` (the bare 40-character value beside a key ID:
# 0.24 s against 0.02 s over a MiB of CSV rows); it has no clock, so only patterns the
# test suite shows linear on hostile shapes (the built-in ones) run there, and
# tests/test_attack_engine.py checks that each twin matches exactly where its pattern does.
_STDLIB_TWINS: dict[tuple[bytes, int], re.Pattern[bytes] | None] = {}
if TYPE_CHECKING:  # (not subscripted at run time: older regex releases' Match is not generic)
    # A match of a rule's pattern, from either engine (the same interface).
    PatternMatch: TypeAlias = regex.Match[bytes] | re.Match[bytes]


def stdlib_twin(pattern: regex.Pattern[bytes]) -> re.Pattern[bytes] | None:
    # A built-in pattern not yet compiled is read from its source (its inline flags are
    # re's to read, or refuse): the twin never makes regex compile it, nor be imported.
    lazy: object = pattern  # (typed apart: the oldest mypy allowed cannot narrow a Pattern to it)
    flags: int = lazy.given_flags if isinstance(lazy, LazyPattern) else pattern.flags
    key = (pattern.pattern, flags)
    try:
        return _STDLIB_TWINS[key]
    except KeyError:
        pass
    twin: re.Pattern[bytes] | None = None
    if flags & ~_REGEX_DEFAULT_FLAGS == 0:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # "possible nested set": re would read [[:x:]] otherwise
                twin = re.compile(pattern.pattern, flags & _SHARED_FLAGS)
        except (re.error, FutureWarning, DeprecationWarning):
            twin = None
    _STDLIB_TWINS[key] = twin
    return twin


# The flags regex and re share, by the same values; with regex's defaults for a bytes
# pattern (ASCII, VERSION0), all a twin may be given.
_SHARED_FLAGS = re.IGNORECASE | re.MULTILINE | re.DOTALL | re.VERBOSE
_REGEX_DEFAULT_FLAGS = REGEX_ASCII | REGEX_VERSION0 | _SHARED_FLAGS


def _overlapped(pattern: re.Pattern[bytes], data: bytes, position: int, end: int) -> Iterator[re.Match[bytes]]:
    """What ``regex``'s ``finditer(..., overlapped=True)`` finds: the match starting at
    each position where one does, each search going on from the last match's start + 1."""
    search = pattern.search
    while (match := search(data, position, end)) is not None:
        yield match
        position = match.start() + 1
        if position > end:
            return


def _matches(rule: Rule, pattern: regex.Pattern[bytes], data: bytes, start: int, end: int,
             health: RuleHealth) -> Iterator[PatternMatch]:
    """A rule pattern's matches, under the time budget (see _match_batches)."""
    for batch in _match_batches(rule, pattern, data, start, end, health):
        yield from batch


def _match_batches(rule: Rule, pattern: regex.Pattern[bytes], data: bytes, start: int, end: int,
                   health: RuleHealth) -> Iterator[list[PatternMatch]]:
    """A rule pattern's matches, in batches, under the time budget; past it the rule is disabled.

    regex's clock runs from a call's first match to its last and counts whatever the caller
    does in between: checking 50,000 key IDs on one line outlasted the budget on a busy
    machine and switched the key-ID rule off for the rest of the scan. So matches are taken
    in batches, each by a call of its own that is given what is left of the budget: only the
    pattern's own time counts, and memory stays bounded (a rule matching at every position
    of 25 MiB is never held as 25 million matches).
    """
    budget = pattern_budget(end - start)
    if not rule.builtin:
        budget = min(budget, max(_allowance_left(rule, health), 0.01))
    # What the caller does with each match (checks over the value, entropy) is outside the
    # regex clock, and costs as much as the value is long: a pattern whose overlapped
    # values are long runs again from every position (`(?P<secret>[A-Za-z0-9]{20,})` over
    # a 10 KB token matched 50 MB, 9 s with no budget event). The bytes of the values are
    # bounded too, linearly in the window; past that the rule is out of budget like a slow
    # one. The values, not the whole matches: 30 names before one value on a line are 30
    # matches of 250 bytes, which a hostile text repeated to switch the secret rule off.
    matched_budget = MATCHED_BYTES_PER_BYTE * (end - start) + MATCHED_BYTES_FLOOR
    twin = stdlib_twin(pattern) if rule.builtin else None
    value = (pattern.groupindex if twin is None else twin.groupindex).get("secret", 0)
    position = start
    handed = 0.0  # when the last batch was handed over: what the caller did with it is charged too
    while True:
        batch: list[PatternMatch] = []
        matched = 0  # bytes of the batch's values; an empty one counts as one byte
        over = False
        began = time.perf_counter()
        if handed and not rule.builtin and not _within_allowance(rule, health, began - handed):
            return
        try:
            # overlapped: a name may be followed by several values (a list on one line), and
            # one value may be claimed by two names; dedupe keeps one per place.
            found: Iterator[PatternMatch]
            if twin is None:
                found = pattern.finditer(data, position, end, overlapped=True, timeout=budget)
            else:
                found = _overlapped(twin, data, position, end)
            for match in found:
                # Counted as they come: a 40 KB run matched again from every position is
                # stopped at the match that runs over, not after a batch of 4,096 of them.
                matched += match.end(value) - match.start(value) or 1
                if matched > matched_budget:
                    over = True
                    break
                batch.append(match)
                if len(batch) == MATCH_BATCH:
                    break
        except (TimeoutError, MemoryError, RecursionError):
            # MemoryError: a recursive pattern ((?R)) that nests once per character of the text.
            # What was found before is handed over first, and checked while the rule is still on.
            if not rule.builtin:
                _within_allowance(rule, health, time.perf_counter() - began)  # the time it took counts
            yield batch
            health.timed_out(rule.id)
            return
        handed = time.perf_counter()
        budget -= handed - began
        if not rule.builtin and not _within_allowance(rule, health, handed - began):
            yield batch
            return
        # An empty match counts as one byte: a pattern matching the empty string at every
        # position of 23 MiB cost 35x the scan in checks on nothing.
        if over:
            yield batch  # what came before the match that ran over, checked while the rule is on
            health.timed_out(rule.id)
            return
        matched_budget -= matched
        yield batch
        if len(batch) < MATCH_BATCH:
            return
        if budget <= 0:
            health.timed_out(rule.id)
            return
        # Overlapped matching goes on from the position after the last match's start: the
        # next call starting there finds what this one would have found next.
        position = batch[-1].start() + 1
        if position > end:
            return  # the last match was an empty one at the window's end: nothing after it


def _run_by_value(rule: Rule, data: bytes, runs: _RunCache, health: RuleHealth) -> list[_Candidate]:
    """Values of the rule's shape, confirmed by its keywords and patterns close above them.

    Linear whatever the text: each value's window is at most CONTEXT_BYTES either side (a
    minified file is one long line), overlapping windows are merged, and each pattern runs
    once over each merged window, collecting where the values it confirms start.
    """
    shape = rule.value
    assert shape is not None
    values: list[tuple[int, int]] = []
    windows: list[tuple[int, int]] = []
    own_window: dict[int, int] = {}  # value start -> where its own window starts
    first_value: list[int] = []  # per window: index in values of the first value in it
    passes = _value_check(rule, health)
    # A rule file's values are found, checked and windowed outside any pattern's clock:
    # charged to the rule files' allowance, a slice of values at a time. Its charset's runs
    # are not kept for the text's lifetime either (one list per charset: 10 MB a MiB each).
    began = time.perf_counter()
    shaped = runs.get(shape.table, shape.min_length, keep=rule.builtin)
    for index, (start, end) in enumerate(shaped):
        if not rule.builtin and index & CHARGE_EVERY == CHARGE_EVERY:
            now = time.perf_counter()
            if not _within_allowance(rule, health, now - began):
                return []
            began = now
        length = end - start
        if length < shape.min_length or (shape.max_length is not None and length > shape.max_length):
            continue
        if not passes(data[start:end]):
            continue
        window_start = _lines_before(data, start, shape.context_lines + 1)
        window_end = _line_end(data, end)
        values.append((start, end))
        own_window[start] = window_start
        if windows and window_start <= windows[-1][1] and windows[-1][1] - windows[-1][0] < MAX_WINDOW:
            windows[-1] = (min(window_start, windows[-1][0]), max(window_end, windows[-1][1]))
        else:
            windows.append((window_start, window_end))
            first_value.append(len(values) - 1)
    if not rule.builtin and not _within_allowance(rule, health, time.perf_counter() - began):
        return []
    if not values or rule.id in health.disabled:
        return []
    first_value.append(len(values))
    confirmed: dict[int, int] = {}  # value start -> value end (padding included)
    for index, (window_start, window_end) in enumerate(windows):
        if rule.id in health.disabled:
            break  # out of time in an earlier window: each window would wait for the budget again
        if rule.keywords:
            # A keyword counts in the context only, not inside a value: one random SMTP
            # password in 4,000 holds "mail" in some case, and a bare "password:" above it
            # would have passed for an SMTP setting.
            began = time.perf_counter()
            context = _outside(data, window_start, window_end, values[first_value[index]:first_value[index + 1]]).lower()
            present = any(keyword in context for keyword in rule.keywords)
            if not rule.builtin and not _within_allowance(rule, health, time.perf_counter() - began):
                break
            if not present:
                continue
        for pattern in rule.patterns:
            for match in _matches(rule, pattern, data, window_start, window_end, health):
                # Only a match that starts in the value's own window confirms it: merging
                # windows saves pattern calls, it must not let a value borrow context from a
                # chain of neighbours (a name 8 KiB above, reached across other values),
                # which a decoded view, holding a few KiB around its token, would not see.
                value_start = match.start("secret")
                if match.start() >= own_window.get(value_start, len(data)):
                    confirmed.setdefault(value_start, match.end("secret"))
    found = [_Candidate(rule, data[start:confirmed[start]], start, confirmed[start])
             for start, _ in values if start in confirmed]
    return found if rule.builtin or not found else _rule_file_values(rule, health, found)


def _outside(data: bytes, start: int, end: int, values: list[tuple[int, int]]) -> bytes:
    """``data[start:end]`` with each of ``values`` (in order, inside it) cut out, a NUL in
    its place so no word is made up across it."""
    pieces = []
    position = start
    for value_start, value_end in values:
        pieces.append(data[position:value_start])
        position = value_end
    pieces.append(data[position:end])
    return b"\0".join(pieces)


# How far around a value or an anchor the engine looks for its context, at most: a line
# can be megabytes long (minified code, a CSV on one line), and looking back to its start
# for every value would make the scan quadratic.
CONTEXT_BYTES = 1024
# Overlapping windows are merged, but no further than this: each pattern call runs under the
# time budget, and a megabyte line of values would otherwise be one call, past the budget
# on a hostile line (which disables the rule for the rest of the scan). A window that starts
# a new range is whole in it, so what is found does not change.
MAX_WINDOW = 64 * 1024


def _lines_before(data: bytes, offset: int, lines: int) -> int:
    """Start of the line ``lines - 1`` lines above ``offset``'s, no more than CONTEXT_BYTES back."""
    floor = max(0, offset - CONTEXT_BYTES)
    start = offset
    for _ in range(lines):
        newline = data.rfind(b"\n", floor, start)
        if newline < 0:
            return floor
        start = newline
    return start + 1


def _line_end(data: bytes, offset: int, lines: int = 1) -> int:
    """End of the line ``lines - 1`` lines below ``offset``'s, no more than CONTEXT_BYTES on."""
    ceiling = min(len(data), offset + CONTEXT_BYTES)
    end = offset - 1
    for _ in range(lines):
        newline = data.find(b"\n", end + 1, ceiling)
        if newline < 0:
            return ceiling
        end = newline
    return end


def _run(rule: Rule, patterns: Iterable[regex.Pattern[bytes]], data: bytes, start: int, end: int,
         health: RuleHealth) -> list[_Candidate]:
    found = []
    passes = _value_check(rule, health)
    for pattern in patterns:
        if rule.id in health.disabled:
            break
        twin = stdlib_twin(pattern) if rule.builtin else None
        secret_group = (pattern.groupindex if twin is None else twin.groupindex)["secret"]  # by number: a name is looked up per call
        cut = end if end < len(data) else -1
        for batch in _match_batches(rule, pattern, data, start, end, health):
            fresh = []
            for match in batch:
                value_start, value_end = match.span(secret_group)
                if value_end <= value_start:
                    continue
                if match.end() == cut and not _holds_past_cut(rule, pattern if twin is None else twin, match, data, health):
                    continue
                value = data[value_start:value_end]
                if passes(value):
                    fresh.append(_Candidate(rule, value, value_start, value_end))
            found += fresh if rule.builtin or not fresh else _rule_file_values(rule, health, fresh)
            if rule.id in health.disabled:
                break
    return found


def _holds_past_cut(rule: Rule, pattern: regex.Pattern[bytes] | re.Pattern[bytes], match: PatternMatch, data: bytes,
                    health: RuleHealth) -> bool:
    """Whether a match that reaches the end of its window (cut at CONTEXT_BYTES inside a long
    line) is still a match where the text goes on: a lookahead at the cut saw the end of the
    text, not what follows (the first 40 characters of a 60-character run passed for a secret).
    ``pattern``: a built-in pattern's stdlib twin where it has one (re takes no timeout)."""
    end = min(len(data), match.end() + CONTEXT_BYTES)
    if isinstance(pattern, re.Pattern):
        plain = pattern.match(data, match.start(), end)
        return plain is not None and plain.span("secret") == match.span("secret")
    timeout = PATTERN_TIMEOUT if rule.builtin else min(PATTERN_TIMEOUT, max(_allowance_left(rule, health), 0.01))
    began = time.perf_counter()
    try:
        again = pattern.match(data, match.start(), end, timeout=timeout)
    except (TimeoutError, MemoryError, RecursionError):
        health.timed_out(rule.id)
        return False
    finally:
        if not rule.builtin:
            # Outside the call's clock, and run once per match that reaches the cut: charged.
            _within_allowance(rule, health, time.perf_counter() - began)
    return again is not None and again.span("secret") == match.span("secret")


def _value_starts(runs: _RunCache, shape: ValueShape, *, keep: bool = True) -> list[int]:
    """Where the values of ``shape`` start, in order."""
    return [start for start, end in runs.get(shape.table, shape.min_length, keep=keep)
            if shape.max_length is None or end - start <= shape.max_length]


def _holding(windows: list[tuple[int, int]], starts: list[int]) -> list[tuple[int, int]]:
    """The windows in which one of ``starts`` lies."""
    kept = []
    for start, end in windows:
        first = bisect.bisect_left(starts, start)
        if first < len(starts) and starts[first] < end:
            kept.append((start, end))
    return kept


def _windows(data: bytes, anchors: list[int], lines: int) -> list[tuple[int, int]]:
    """Byte ranges covering ``lines`` whole lines either side of each anchor (at most
    CONTEXT_BYTES each way), merged."""
    ranges: list[tuple[int, int]] = []
    low = high = -1  # the range being grown
    for anchor in sorted(set(anchors)):
        # An anchor inside the range being grown (not yet MAX_WINDOW long) joins it: its own
        # start, never before the range's (a later anchor's lines start no earlier), need not
        # be looked for. Dense anchors (a line of key IDs) cost one search each, not two.
        if anchor < high and high - low < MAX_WINDOW:
            high = max(high, _line_end(data, anchor, lines + 1))
            continue
        start = _lines_before(data, anchor, lines + 1)
        end = _line_end(data, anchor, lines + 1)
        if start <= high and high - low < MAX_WINDOW:
            high = max(end, high)
        else:
            if high >= 0:
                ranges.append((low, high))
            low, high = start, end
    if high >= 0:
        ranges.append((low, high))
    return ranges


# An allow comment covers its whole line, unless the line is longer than this (minified code,
# a one-line JSON dump): there it covers what starts within ALLOW_REACH bytes of it, or one
# marker anywhere in a bundle would hide every key in it.
LONG_LINE = 4096
ALLOW_REACH = 1024


def _marker_lines(data: bytes) -> dict[int, list[int]]:
    """Line numbers (1-based) holding an inline-allow comment, with the comments' offsets:
    found once per text."""
    offsets = []
    for marker in ALLOW_MARKERS:
        position = data.find(marker)
        while position >= 0:
            offsets.append(position)
            position = data.find(marker, position + 1)
    lines: dict[int, list[int]] = {}
    line, previous = 1, 0
    for offset in sorted(offsets):
        line += data.count(b"\n", previous, offset)
        previous = offset
        lines.setdefault(line, []).append(offset)
    return lines


class _Located(NamedTuple):
    """A candidate with its line and column, before pairing makes it a Match (a Match is built
    once per finding: a frozen dataclass costs ~3 us to make, and a CSV of keys has 30,000)."""

    rule_id: str
    secret: Secret
    start: int
    line: int
    column: int
    decoded: DecodingKind | None


def _locate(data: bytes, candidates: list[_Candidate], inline_allow: bool = True) -> list[_Located]:
    """Line and column of each candidate, in one sweep over the text (``candidates`` in order
    of place), dropping those an inline-allow comment covers (``inline_allow``)."""
    if not candidates:
        return []  # most texts: no need to look for allow comments at all
    allowed_lines = _marker_lines(data) if inline_allow else {}
    ascii_text = data.isascii()
    located = []
    line, line_start, position, chars = 1, 0, 0, 0  # chars: characters from line_start to position
    long_line: tuple[int, bool] = (0, False)  # (line, whether it is longer than LONG_LINE), found once a line
    for candidate in candidates:
        start = candidate.start
        newlines = data.count(b"\n", position, start)
        if newlines:
            line += newlines
            line_start = data.rfind(b"\n", position, start) + 1
            position, chars = line_start, 0
        # Characters, not bytes. Decoding piece by piece counts as decoding the whole line
        # would: every piece ends where a value starts, on an ASCII byte, which no UTF-8
        # sequence (valid or not) runs across. In ASCII text they are the same.
        chars += start - position if ascii_text else len(data[position:start].decode("utf-8", "replace"))
        position = start
        markers = allowed_lines.get(line)
        if markers is not None:
            if long_line[0] != line:
                long_line = (line, data.find(b"\n", line_start, line_start + LONG_LINE + 1) < 0
                             and len(data) - line_start > LONG_LINE)
            if not long_line[1]:
                continue
            # On a long line a marker covers what stands beside it, and never what is decoded
            # from a token (all of it stands at the token's start: one marker before a bundle of
            # 200 encoded credentials hid 159 of them). A baseline records such a finding.
            nearest = bisect.bisect_left(markers, start)
            if candidate.decoded is None and any(abs(markers[i] - start) <= ALLOW_REACH
                                                 for i in (nearest - 1, nearest) if 0 <= i < len(markers)):
                continue
        # Decoded as commit subjects, paths and names are (a byte that is not UTF-8 as an
        # escape): a rule file's value holding "ä", or a Latin-1 byte, is then the same string
        # there, so the redactor finds it (read as ASCII, it never was).
        secret = Secret(candidate.rule.kind, candidate.value.decode("utf-8", "backslashreplace"))
        located.append(_Located(candidate.rule.id, secret, start, line, chars + 1, candidate.decoded))
    return located


def _dedupe(candidates: list[_Candidate]) -> list[_Candidate]:
    """One candidate per (place, value), in the order of the report: by place, then rule id (a
    place's line and column grow with it). Of candidates at one place, a built-in rule's wins,
    then the first in rule-file order: a rule file's rule matching the same 40 characters as
    the built-in secret rule (found later, beside a key ID) took its place, relabelled the
    secret as its own, and its severity with it."""
    seen: set[tuple[int, bytes]] = set()
    unique = []
    for candidate in sorted(candidates, key=_start_builtin_first):  # stable: rule-file order within
        key = (candidate.start, candidate.value)
        if key not in seen:
            seen.add(key)
            unique.append(candidate)
    unique.sort(key=_PLACE_AND_RULE)
    return unique


def _start_builtin_first(candidate: _Candidate) -> tuple[int, bool]:
    return candidate.start, not candidate.rule.builtin



def _drop_tokens_found_plain(located: list[_Located], data: bytes) -> list[_Located]:
    """A value found in a decoded token is also found as it stands when the encoding left it
    whole (`\\/51L4…`: the escape comes before the secret's leading slash). There the token's
    finding is dropped and the one at the value's own place kept: reported once, paired once.
    After the inline-allow check, so that an allowed plain copy never hides an encoded one."""
    if all(item.decoded is None for item in located):
        return located  # most texts: nothing decoded (a CSV of 34,000 keys paid a dict entry each)
    plain: dict[tuple[str, str], list[int]] = {}  # (rule, value) -> where found as it stands
    for item in located:
        if item.decoded is None:
            plain.setdefault((item.rule_id, item.secret.reveal()), []).append(item.start)
    if not plain or len(plain) == len(located):
        return located
    kept = []
    for item in located:
        if item.decoded is not None:
            starts = plain.get((item.rule_id, item.secret.reveal()))
            if starts:
                index = bisect.bisect_left(starts, item.start)
                if (index < len(starts) and starts[index] - item.start <= MAX_TOKEN
                        and data.find(b"\n", item.start, starts[index]) < 0):
                    continue
        kept.append(item)
    return kept


_PLACE_AND_RULE = operator.attrgetter("start", "rule.id")


def _paired_in_order(found: list[_Located], key_ids: list[int]) -> dict[int, int]:
    """Secrets on a line holding as many key IDs as secrets (two or more): the n-th secret of
    the line with its n-th key ID, whichever comes first in each pair (a one-line JSON list of
    credentials, `{"AccessKeyId":…,"SecretAccessKey":…},{…}`, or the other way round: by
    place alone, a secret can stand nearer the next object's key ID than its own)."""
    by_line: dict[int, tuple[list[int], list[int]]] = {}
    for index in key_ids:
        by_line.setdefault(found[index].line, ([], []))[0].append(index)
    for index, match in enumerate(found):
        if match.secret.kind == "secret":
            by_line.setdefault(match.line, ([], []))[1].append(index)
    paired: dict[int, int] = {}
    for key_ids, secrets in by_line.values():
        if len(secrets) > 1 and len(key_ids) == len(secrets):
            paired.update(zip(secrets, key_ids))
    return paired


def _pair(found: list[_Located], builtin_ids: frozenset[str] = frozenset()) -> list[Match]:
    """The matches, each secret (and session token) linked to the key ID it belongs with.

    The nearest key ID within PAIR_LINES lines wins, the one above on a tie; a text with a
    single distinct key ID pairs every secret with it, however far apart they stand. Where a
    built-in rule found a key ID, only such key IDs pair: a rule file's rule declaring any
    shape a key ID took an AWS secret's pairing from its own key ID (and its account with it,
    which verification and remediation use).
    """
    pair_of: dict[int, int] = {}
    token_of: dict[int, int] = {}
    key_ids = [i for i, m in enumerate(found) if m.secret.kind == "key-id"]
    if key_ids and len({found[i].rule_id for i in key_ids}) > 1:
        key_ids = [i for i in key_ids if found[i].rule_id in builtin_ids] or key_ids
    if key_ids:
        several = len({found[i].secret.reveal() for i in key_ids}) > 1
        key_lines = [found[i].line for i in key_ids]  # ascending: matches are in order of place
        key_starts = [found[i].start for i in key_ids]
        best_secret: dict[int, tuple[tuple[int, int, int, int], int]] = {}
        in_order = _paired_in_order(found, key_ids)
        for index, match in enumerate(found):
            kind = match.secret.kind
            if kind not in PAIRS_WITH_KEY_ID:
                continue
            if index in in_order:
                pair_of[index] = nearest = in_order[index]
                best_secret[nearest] = ((0, 0, 0, 0), index)
                continue
            # The nearest key ID by bisection (not by comparing with every one: a CSV of
            # thousands of rows would be quadratic): on the same line the nearest by place, the
            # one before winning a tie (a one-line JSON list of credentials pairs each secret
            # with the key ID of its own object, not all with the first); else the first one on
            # the closest line above, or the first one below, the one above winning a tie.
            # A distance is (lines apart, 0 above or 1 below, bytes apart, 0 before or 1 after).
            line = match.line
            below = bisect.bisect_right(key_lines, line)
            nearest, distance = -1, (0, 0, 0, 0)
            if below > 0:
                above_line = key_lines[below - 1]
                first = bisect.bisect_left(key_lines, above_line)
                if above_line < line:
                    nearest, distance = key_ids[first], (line - above_line, 0, 0, 0)
                else:
                    at = bisect.bisect_right(key_starts, match.start, first, below)
                    if at > first:
                        nearest, distance = key_ids[at - 1], (0, 0, match.start - key_starts[at - 1], 0)
                    if at < below and (nearest < 0 or (0, 0, key_starts[at] - match.start, 1) < distance):
                        nearest, distance = key_ids[at], (0, 0, key_starts[at] - match.start, 1)
            if below < len(key_ids) and (nearest < 0 or (key_lines[below] - line, 1, 0, 0) < distance):
                nearest, distance = key_ids[below], (key_lines[below] - line, 1, 0, 0)
            if distance[0] > PAIR_LINES and several:
                continue
            pair_of[index] = nearest
            if kind == "secret":
                if nearest not in best_secret or distance < best_secret[nearest][0]:
                    best_secret[nearest] = (distance, index)
            elif kind == "session-token":
                token_of.setdefault(nearest, index)
        for key_index, (_, secret_index) in best_secret.items():
            pair_of[key_index] = secret_index
    return [Match(m.rule_id, m.secret, m.start, m.line, m.column, m.decoded, pair_of.get(i), token_of.get(i))
            for i, m in enumerate(found)]


