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

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace

import regex

from scanner.engine.decode import BASE64_TABLE, MIN_BASE64_RUN, DecodingKind, decoded_views, value_runs
from scanner.engine.rules import CharClass, Rule, RuleSet
from scanner.secret import PAIRS_WITH_KEY_ID, Secret

# Comments that mark a line as a known false positive. keysweep's own, and those of
# gitleaks and detect-secrets so a team can switch tools without editing every file.
ALLOW_MARKERS: tuple[bytes, ...] = (b"keysweep:allow", b"gitleaks:allow", b"pragma: allowlist secret")
# A secret pairs with a key ID at most this many lines away (when the text holds several).
PAIR_LINES = 6
BINARY_SNIFF_BYTES = 8192
LONG_BASE64_RUN = 40
MANIFEST_HEAD = 4096
MANIFEST_MARKERS = (b"kind: Secret", b'"kind": "Secret"', b'"kind":"Secret"')


@dataclass(frozen=True, slots=True)
class Match:
    """One secret found in one text, at a byte offset of that text."""

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
    """The bytes to scan, or None for binary content. UTF-16 text (with a BOM) becomes UTF-8."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError:
            return None
    return None if is_binary(data) else data


def shannon_entropy(value: str) -> float:
    counts = Counter(value)
    total = len(value)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


_DIGITS = b"0123456789"
_LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ALNUM = _LETTERS + _DIGITS


def _has_class(value: bytes, cls: CharClass) -> bool:
    # Byte-level tests in C: this runs for every candidate value.
    if cls == "upper":
        return value.lower() != value
    if cls == "lower":
        return value.upper() != value
    if cls == "digit":
        return len(value.translate(None, _DIGITS)) != len(value)
    if cls == "symbol":
        return len(value.translate(None, _ALNUM)) > 0
    return len(value.translate(None, _LETTERS)) > 0  # digit-or-symbol


def value_passes(rule: Rule, value: bytes) -> bool:
    if not all(_has_class(value, cls) for cls in rule.require):
        return False
    if any(pattern.search(value) for pattern in rule.allow):
        return False
    return shannon_entropy(value.decode("ascii", "replace")) >= rule.min_entropy


@dataclass(frozen=True, slots=True)
class _Candidate:
    rule: Rule
    value: bytes
    start: int
    end: int


def detect(data: bytes, ruleset: RuleSet) -> list[Match]:
    """Every secret in ``data`` (already known to be text), paired where possible."""
    runs = _RunCache(data)
    candidates = _find(data, ruleset, runs)
    located = _locate(data, candidates, decoded=None)
    # One layer down: decoded views are scanned, never decoded again.
    # Long encoded values (a secret is 56 characters in base64, a credentials file far
    # more) are looked at everywhere; short ones (a key ID is 28) only in manifests that
    # carry base64 data by design, where the cost of looking at every token is worth it.
    head = data[:MANIFEST_HEAD]
    short = b"apiVersion" in head and any(marker in head for marker in MANIFEST_MARKERS)
    for view in decoded_views(data, runs.get(BASE64_TABLE, MIN_BASE64_RUN if short else LONG_BASE64_RUN)):
        for candidate in _find(view.data, ruleset, _RunCache(view.data)):
            origin = view.original_offset(candidate.start, candidate.end)
            if origin is None:
                continue
            located += _locate(data, [replace(candidate, start=origin, end=origin)], decoded=view.kind)
    return _pair(_dedupe(located))


class _RunCache:
    """Runs of each value charset, computed once per text and shared by the rules."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.runs: dict[bytes, tuple[int, list[tuple[int, int]]]] = {}

    def get(self, table: bytes, min_length: int) -> list[tuple[int, int]]:
        cached = self.runs.get(table)
        if cached is None or cached[0] > min_length:
            cached = (min_length, value_runs(self.data, table, min_length))
            self.runs[table] = cached
        elif cached[0] < min_length:
            return [(s, e) for s, e in cached[1] if e - s >= min_length]
        return cached[1]


def _find(data: bytes, ruleset: RuleSet, runs: _RunCache) -> list[_Candidate]:
    found: list[_Candidate] = []
    lowered: bytes | None = None
    for rule in ruleset.rules:
        if not rule.patterns:
            continue
        if rule.value is not None:
            found += _run_by_value(rule, data, runs)
            continue
        if rule.keywords:
            lowered = data.lower() if lowered is None else lowered
            if not any(keyword in lowered for keyword in rule.keywords):
                continue
        found += _run(rule, rule.patterns, data, 0, len(data))
    for rule in ruleset.rules:
        if rule.near is None:
            continue
        anchors = [c.start for c in found if c.rule.kind == rule.near.kind]
        for start, end in _windows(data, anchors, rule.near.lines):
            found += _run(rule, rule.near.patterns, data, start, end)
    return [c for c in found if not _allowed_by_comment(data, c.start)]


def _run_by_value(rule: Rule, data: bytes, runs: _RunCache) -> list[_Candidate]:
    """Values of the rule's shape, confirmed by its keywords and patterns close above them."""
    shape = rule.value
    assert shape is not None
    found = []
    for start, end in runs.get(shape.table, shape.min_length):
        length = end - start
        if length < shape.min_length or (shape.max_length is not None and length > shape.max_length):
            continue
        if not value_passes(rule, data[start:end]):
            continue
        window_start = start
        for _ in range(shape.context_lines + 1):
            window_start = data.rfind(b"\n", 0, window_start)
            if window_start < 0:
                break
        window_start = max(window_start + 1, 0) if window_start >= 0 else 0
        window_end = data.find(b"\n", end)
        window_end = len(data) if window_end < 0 else window_end
        if rule.keywords:
            window = data[window_start:window_end].lower()
            if not any(keyword in window for keyword in rule.keywords):
                continue
        confirmed_end = _confirmed(rule.patterns, data, window_start, window_end, start)
        if confirmed_end is not None:
            found.append(_Candidate(rule, data[start:confirmed_end], start, confirmed_end))
    return found


def _confirmed(patterns: Iterable[regex.Pattern[bytes]], data: bytes, start: int, end: int, value_start: int) -> int | None:
    """Where the value a pattern confirms ends (padding included), or None if none does."""
    for pattern in patterns:
        for match in pattern.finditer(data, start, end, overlapped=True):
            if match.start("secret") == value_start:
                return match.end("secret")
    return None


def _run(rule: Rule, patterns: Iterable[regex.Pattern[bytes]], data: bytes, start: int, end: int) -> list[_Candidate]:
    found = []
    for pattern in patterns:
        # overlapped: a name may be followed by several values (a list on one line), and
        # one value may be claimed by two names; dedupe keeps one per place.
        for match in pattern.finditer(data, start, end, overlapped=True):
            value = match.group("secret")
            if value and value_passes(rule, value):
                found.append(_Candidate(rule, value, match.start("secret"), match.end("secret")))
    return found


def _windows(data: bytes, anchors: list[int], lines: int) -> list[tuple[int, int]]:
    """Byte ranges covering ``lines`` whole lines either side of each anchor, merged."""
    ranges: list[tuple[int, int]] = []
    for anchor in sorted(set(anchors)):
        start = anchor
        for _ in range(lines + 1):
            start = data.rfind(b"\n", 0, start)
            if start < 0:
                break
        start = start + 1 if start >= 0 else 0
        end = anchor
        for _ in range(lines + 1):
            end = data.find(b"\n", end + 1)
            if end < 0:
                end = len(data)
                break
        if ranges and start <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], max(end, ranges[-1][1]))
        else:
            ranges.append((start, end))
    return ranges


def _allowed_by_comment(data: bytes, offset: int) -> bool:
    line_start = data.rfind(b"\n", 0, offset) + 1
    line_end = data.find(b"\n", offset)
    line = data[line_start : line_end if line_end >= 0 else len(data)]
    return any(marker in line for marker in ALLOW_MARKERS)


def _locate(data: bytes, candidates: list[_Candidate], decoded: DecodingKind | None) -> list[tuple[Match, Rule]]:
    located = []
    for candidate in candidates:
        line = data.count(b"\n", 0, candidate.start) + 1
        line_start = data.rfind(b"\n", 0, candidate.start) + 1
        column = len(data[line_start : candidate.start].decode("utf-8", "replace")) + 1
        secret = Secret(candidate.rule.kind, candidate.value.decode("ascii", "replace"))
        located.append((Match(candidate.rule.id, secret, candidate.start, line, column, decoded), candidate.rule))
    return located


def _dedupe(located: list[tuple[Match, Rule]]) -> list[Match]:
    """One match per (place, value): the first rule in rule-file order wins."""
    seen: set[tuple[int, str]] = set()
    unique = []
    for match, _rule in located:
        key = (match.start, match.secret.reveal())
        if key not in seen:
            seen.add(key)
            unique.append(match)
    unique.sort(key=lambda m: (m.line, m.column, m.rule_id))
    return unique


def _pair(matches: list[Match]) -> list[Match]:
    """Link each secret (and session token) to the key ID it belongs with.

    The nearest key ID within PAIR_LINES lines wins, the one above on a tie; a text with a
    single distinct key ID pairs every secret with it, however far apart they stand.
    """
    key_ids = [i for i, m in enumerate(matches) if m.secret.kind == "key-id"]
    if not key_ids:
        return matches
    distinct = {matches[i].secret.reveal() for i in key_ids}
    result = list(matches)
    best_secret: dict[int, tuple[tuple[int, int], int]] = {}
    for index, match in enumerate(matches):
        if match.secret.kind not in PAIRS_WITH_KEY_ID:
            continue

        def distance(k: int, line: int = match.line) -> tuple[int, int]:
            delta = line - matches[k].line
            return (abs(delta), 0 if delta >= 0 else 1)

        nearest = min(key_ids, key=distance)
        if distance(nearest)[0] > PAIR_LINES and len(distinct) > 1:
            continue
        result[index] = replace(match, pair=nearest)
        if match.secret.kind == "secret":
            if nearest not in best_secret or distance(nearest) < best_secret[nearest][0]:
                best_secret[nearest] = (distance(nearest), index)
        elif match.secret.kind == "session-token" and result[nearest].session_token is None:
            result[nearest] = replace(result[nearest], session_token=index)
    for key_index, (_, secret_index) in best_secret.items():
        result[key_index] = replace(result[key_index], pair=secret_index)
    return result
