"""The native prefilter: Hyperscan (PyPI ``hyperscan``, engine bundled in the wheel) tells,
in one pass over a text, which rules could match anywhere in it.

Each pattern of a rule that is not driven by its values is compiled in Hyperscan's
prefilter mode, which accepts a superset of what the pattern matches (lookarounds and
back-references are widened, never narrowed). A rule none of whose patterns the prefilter
reports is skipped for that text; any other rule runs its ``regex`` patterns exactly as
without the prefilter, so findings are identical by construction (tests/test_engine.py
checks it). A pattern Hyperscan cannot compile, even approximately, makes its rule run on
every text.

``KEYSWEEP_ENGINE=python`` turns the prefilter off; ``hyperscan`` requires it.
Where the wheel is missing (not x86-64 Linux), the pure-Python engine is used.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from scanner.engine.rules import RuleSet

ENGINE_VARIABLE = "KEYSWEEP_ENGINE"
# Building the database costs tens of milliseconds and importing hyperscan a few more: a
# process that scans less than this (the pre-commit hook) never pays for it.
PREFILTER_AFTER_BYTES = 4 * 1024 * 1024


def wanted_engine() -> str:
    value = os.environ.get(ENGINE_VARIABLE, "").strip().lower()
    return value if value in ("python", "hyperscan") else "auto"


def available() -> bool:
    try:
        import hyperscan  # noqa: F401
    except ImportError:
        return False
    return True


def engine_name() -> str:
    wanted = wanted_engine()
    if wanted == "python" or not available():
        return "python (regex)"
    return "hyperscan prefilter + regex"


class Prefilter:
    """Which rules (by id) may match a text; ``always`` rules run on every text."""

    def __init__(self, ruleset: RuleSet) -> None:
        import hyperscan

        self._hyperscan = hyperscan
        self.always: set[str] = set()
        self.rule_of: list[str] = []
        expressions: list[bytes] = []
        flags = hyperscan.HS_FLAG_PREFILTER | hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_ALLOWEMPTY
        rule_file_atoms = 0
        for rule in ruleset.rules:
            # Value-driven rules too: a value counts only where one of the rule's patterns
            # confirms it, so a text none of them can match anywhere needs no value search
            # (the widened pattern matches wherever the exact one matches in any window).
            if not rule.patterns:
                continue
            for pattern in rule.patterns:
                source = pattern.pattern
                if not isinstance(source, bytes) or not shared_syntax(source):
                    self.always.add(rule.id)
                    continue
                widened = widen_repeats(source)
                if not rule.builtin:
                    size = unrolled_size(widened)
                    if size > MAX_UNROLLED or rule_file_atoms + size > MAX_UNROLLED_RULE_FILES:
                        self.always.add(rule.id)
                        continue
                    rule_file_atoms += size
                expressions.append(widened)
                self.rule_of.append(rule.id)
        # The marks that tell the decoders (decode.MARKS) which decodings a text needs, in the
        # same pass: texts without them skip those searches. Escapes are reported where they
        # are (exact pattern, every match), so the escape decoder looks only there.
        from scanner.engine.decode import MARKS

        flag_list = [flags] * len(expressions)
        for name, mark in MARKS.items():
            expressions.append(mark)
            self.rule_of.append(MARK_PREFIX + name)
            flag_list.append(hyperscan.HS_FLAG_ALLOWEMPTY if name == "escape" else flags)
        self.database: Any = None
        try:
            self.database = self._compile(expressions, flag_list)
        except Exception:  # noqa: BLE001 - hyperscan.error: one pattern it cannot take, even widened
            # Compiling each pattern alone (twice the work) only when the whole set fails.
            keep = [i for i, source in enumerate(expressions) if self._compiles(source, flag_list[i])]
            for index in set(range(len(expressions))) - set(keep):
                self.always.add(self.rule_of[index])
            expressions = [expressions[i] for i in keep]
            flag_list = [flag_list[i] for i in keep]
            self.rule_of = [self.rule_of[i] for i in keep]
            self.database = self._compile(expressions, flag_list)
        self.escape_id = self.rule_of.index(MARK_PREFIX + "escape") if MARK_PREFIX + "escape" in self.rule_of else -1
        if self.database is not None:
            self.scratch = hyperscan.Scratch(self.database)
        self.runs_database = self._compile([b"[A-Za-z0-9+/]{%d}" % NATIVE_RUN], [hyperscan.HS_FLAG_SINGLEMATCH])
        self.runs_scratch = hyperscan.Scratch(self.runs_database)
        self.scans_views = self._scans_views()

    def base64_runs(self, data: bytes) -> list[tuple[int, int]]:
        """Every maximal run of base64 characters at least NATIVE_RUN long, as
        ``decode.value_runs(data, BASE64_TABLE, NATIVE_RUN)`` finds them.

        Hyperscan finds the next run and stops; the run is measured where it is and the search
        goes on after it. Far cheaper than translating the whole text where runs are sparse
        (~0.7 of the time on a history); where they are dense (a run every few hundred
        bytes), the per-run cost would dominate, so the rest of the text goes to value_runs.
        """
        from scanner.engine.decode import BASE64_TABLE, value_runs

        if not self.scans_views:
            return value_runs(data, BASE64_TABLE, NATIVE_RUN)
        found: list[tuple[int, int]] = []
        size = len(data)
        view = memoryview(data)
        position = 0
        hit = [-1]
        run_rest = _BASE64_RUN.match

        def on_match(index: int, start: int, end: int, flags: int, context: Any) -> bool:
            hit[0] = end
            return True  # stop: the run is measured here

        while position < size:
            if len(found) >= DENSE_RUNS and position < len(found) * SPARSE_RUN_BYTES:
                found += [(s + position, e + position) for s, e in value_runs(data[position:], BASE64_TABLE, NATIVE_RUN)]
                break
            hit[0] = -1
            try:
                self.runs_database.scan(view[position:], match_event_handler=on_match, scratch=self.runs_scratch)
            except self._hyperscan.ScanTerminated:
                pass
            if hit[0] < 0:
                break
            # The first place a 40-character window ends is 40 characters into its run.
            start = position + hit[0] - NATIVE_RUN
            # One C call (decode.run_end's windowed translate cost ~2 us a run, a tenth of
            # this pass on a history of long identifiers).
            end = run_rest(data, start + NATIVE_RUN).end()  # type: ignore[union-attr]
            found.append((start, end))
            position = end
        return found

    def _scans_views(self) -> bool:
        # hyperscan before 0.8 scans bytes only ("TypeError: a bytes-like object is required"
        # for a memoryview); slicing bytes instead would copy the rest of the text per run
        # (quadratic), so there the runs come from value_runs, as where they are dense.
        try:
            self.runs_database.scan(memoryview(b"x"), match_event_handler=lambda *_: None, scratch=self.runs_scratch)
        except TypeError:
            return False
        return True

    def _compile(self, expressions: list[bytes], flags: list[int]) -> Any:
        if not expressions:
            return None
        database = self._hyperscan.Database(mode=self._hyperscan.HS_MODE_BLOCK)
        database.compile(expressions=expressions, ids=list(range(len(expressions))), elements=len(expressions),
                         flags=flags)
        return database

    def _compiles(self, source: bytes, flags: int) -> bool:
        try:
            database = self._hyperscan.Database(mode=self._hyperscan.HS_MODE_BLOCK)
            database.compile(expressions=[source], ids=[0], elements=1, flags=flags)
        except Exception:  # noqa: BLE001 - hyperscan.error, or a pattern it rejects outright
            return False
        return True

    def scan(self, data: bytes) -> NativeScan:
        """What one pass over ``data`` tells: the rules that may match, the decoding marks, and
        where escapes end (None when there were too many to list: the decoder finds them)."""
        hits = set(self.always)  # a mark that did not compile is among them: always looked for
        escape_ends: list[int] | None = None
        if self.database is not None and data:
            rule_of = self.rule_of
            escape_id = self.escape_id
            ends: list[int] = []

            def on_match(index: int, start: int, end: int, flags: int, context: Any) -> bool:
                if index == escape_id:
                    ends.append(end)
                    # Past the cap the list is dropped, not the scan stopped: the rules
                    # still need their answer.
                    if len(ends) > MAX_LISTED:
                        ends.clear()
                        hits.add(TOO_MANY_ESCAPES)
                        return False
                hits.add(rule_of[index])
                return False

            self.database.scan(data, match_event_handler=on_match, scratch=self.scratch)
            escape_ends = None if TOO_MANY_ESCAPES in hits or escape_id < 0 else ends
        rules = {name for name in hits if not name.startswith(MARK_PREFIX)}
        marks = frozenset(name[len(MARK_PREFIX):] for name in hits if name.startswith(MARK_PREFIX))
        return NativeScan(rules, marks, escape_ends)

    def possible(self, data: bytes) -> set[str]:
        """Ids of the rules that may match somewhere in ``data``, and the decoding marks it
        holds (as ``mark:NAME``)."""
        found = self.scan(data)
        return found.rules | {MARK_PREFIX + mark for mark in found.marks}


@dataclass(frozen=True, slots=True)
class NativeScan:
    """What one native pass over a text saw."""

    rules: set[str]  # ids of the rules that may match
    marks: frozenset[str]  # decoding marks seen (decode.MARKS)
    escape_ends: list[int] | None  # where each escape ends; None: too many to list


# Base64 runs found by Prefilter.base64_runs: this long at least (the decoder's and the
# secret key's length); past DENSE_RUNS runs closer than SPARSE_RUN_BYTES apart on average,
# the rest of the text is left to one translate.
NATIVE_RUN = 40
# The rest of a run of decode.BASE64_TABLE's characters (matches empty: never None).
_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/]*")
DENSE_RUNS = 256
SPARSE_RUN_BYTES = 1024
# Escapes listed per text at most; past it the Python searches
# take over, so a text made of nothing else costs no more than without the native pass.
MAX_LISTED = 4096
TOO_MANY_ESCAPES = "mark:escape-overflow"


MARK_PREFIX = "mark:"
# Hyperscan tracks a bounded repeat position by position: `{60,8000}` costs it ~1 s/GB where
# `{60,}` costs nothing, and a bounded repeat of a group multiplies its automaton (the
# secret rule's next-line pattern alone: 0.9 s to compile, 2 s/GB to scan; widened: 0.05 s
# and 0.25 s/GB). A prefilter may accept more than the pattern, so bounds open up.
WIDE_REPEAT = 16
_REPEAT = re.compile(rb"(?<!\\)\{(\d+),(\d+)\}")

# Escapes that mean the same to the regex module and to Hyperscan; a letter outside these
# (regex's \m, \M, \L<...>, \G, \K, \X, \h, \z...) may be read differently.
_SHARED_ESCAPES = frozenset(b"dDwWsSbBAZnrtfvx0123456789")
_SHARED_FLAGS = frozenset(b"imsx-")


def shared_syntax(source: bytes) -> bool:
    r"""Whether Hyperscan reads ``source`` as the regex module does, as far as a quick look can
    tell; if not, its rule runs on every text (never ruled out by a misreading).

    Hyperscan compiles some of regex's own syntax without complaint but as something else:
    fuzzy matching ``(?:x){e<=1}`` and ``{,n}`` become literal text, ``\m`` a letter, so the
    prefilter would rule out texts the pattern matches. Anything unusual is refused here.
    """
    index, size = 0, len(source)
    while index < size:
        byte = source[index]
        if byte == 0x5C:  # backslash
            following = source[index + 1 : index + 2]
            if following.isalpha() and following[0] not in _SHARED_ESCAPES:
                return False
            index += 2
            continue
        if byte == 0x7B and not source[index + 1 : index + 2].isdigit():  # "{" that is not {n}, {n,}, {n,m}
            return False
        if source.startswith(b"(?", index) and source[index + 2 : index + 4] not in (b"P<", b"P=", b"P>"):
            flags = source[index + 2 : index + 2 + 16]
            end = next((i for i, b in enumerate(flags) if not (0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A or b == 0x2D)),
                       len(flags))
            if end and (any(b not in _SHARED_FLAGS for b in flags[:end]) or flags[end : end + 1] not in (b")", b":")):
                return False
        index += 1
    return True


# Hyperscan unrolls bounded repeats as it compiles, and a rule file's pattern can make that
# unbounded in time and memory: ``(?:[a-z]{1000}){100}`` took 14 s, four nested ``{16}``
# 27 s (then "Pattern is too large"). A pattern of a rule file whose unrolled size passes
# this runs on every text instead of being prefiltered (findings the same, no compile).
# (Hyperscan's cost follows the shape more than the size: `(?:[ab]*a[ab]{15}){100}`, 1,810
# atoms, took 4.7 s to be refused; at 256 atoms such shapes compile in ~0.03 s. The built-in
# patterns are at most 170.)
MAX_UNROLLED = 256
# And the rule files' patterns together: 1,500 patterns each just under a per-pattern bound of
# 2,000 took every process 70 s and 1.3 GB to compile (and each worker builds its own
# database). Past this sum the rest run on every text instead, with the same findings.
MAX_UNROLLED_RULE_FILES = 4096
_COUNTED_REPEAT = re.compile(rb"\{(\d{0,9})(,?)(\d{0,9})\}")
_UNROLLED_CAP = 1 << 40
VERBOSE_OR_COMMENT = re.compile(rb"\(\?[a-zA-Z]*x|\(\?#")  # verbose mode, or an inline comment


def unrolled_size(source: bytes) -> int:
    """An upper estimate of the atoms ``source`` spells out once each counted repeat is
    unrolled (alternatives added, not maxed; ``*``, ``+`` and ``?`` count once). Linear in
    the source."""
    if VERBOSE_OR_COMMENT.search(source):
        # Verbose mode or a (?#...) comment: space and comments between a group and its repeat
        # are no atoms, and this reading does not follow them (it counted "(...) {100}" as one
        # space, unrepeated).
        return _UNROLLED_CAP
    stack: list[list[int]] = [[0, 0]]  # per open group: [size so far, size of its last atom]
    index, size = 0, len(source)
    while index < size:
        byte = source[index]
        frame = stack[-1]
        if byte == 0x28:  # (
            stack.append([0, 0])
            index += 1
            continue
        if byte == 0x29 and len(stack) > 1:  # )
            inner = stack.pop()[0]
            frame = stack[-1]
            frame[0] = min(_UNROLLED_CAP, frame[0] + inner)
            frame[1] = inner
            index += 1
            continue
        if byte == 0x7B:  # {
            repeat = _COUNTED_REPEAT.match(source, index)
            if repeat is not None:
                low, comma, high = repeat.groups()
                factor = int(high) if high else max(int(low or 0), 1)
                frame[0] = min(_UNROLLED_CAP, frame[0] + frame[1] * max(factor - 1, 0))
                frame[1] = min(_UNROLLED_CAP, frame[1] * factor)
                index = repeat.end()
                continue
        if byte in b"*+?|":
            index += 1
            continue
        if byte == 0x5C:  # an escape: one atom
            index += 2
        elif byte == 0x5B:  # a class: one atom
            index += 1
            if source[index : index + 1] == b"^":
                index += 1
            if source[index : index + 1] == b"]":
                index += 1
            while index < size and source[index] != 0x5D:
                index += 2 if source[index] == 0x5C else 1
            index += 1
        else:
            index += 1
        frame[0] = min(_UNROLLED_CAP, frame[0] + 1)
        frame[1] = 1
    return sum(frame[0] for frame in stack)


def widen_repeats(source: bytes) -> bytes:
    """``source`` with each repeat bound above WIDE_REPEAT dropped (``{m,n}`` -> ``{m,}``).

    An escaped brace is left alone; a brace inside a character class is not a repeat, and
    widening one there would change the class, so such patterns are kept as they are."""
    if b"[" in source and _REPEAT.search(source) and _brace_in_class(source):
        return source

    def widen(match: re.Match[bytes]) -> bytes:
        low, high = match.group(1), match.group(2)
        return b"{" + low + b",}" if int(high) > WIDE_REPEAT else match.group(0)

    return _REPEAT.sub(widen, source)


def _brace_in_class(source: bytes) -> bool:
    """Whether a ``{`` stands inside a character class (a conservative reading of the syntax)."""
    inside = escaped = False
    for byte in source:
        if escaped:
            escaped = False
        elif byte == 0x5C:  # backslash
            escaped = True
        elif inside:
            if byte == 0x5D:  # ]
                inside = False
            elif byte == 0x7B:  # {
                return True
        elif byte == 0x5B:  # [
            inside = True
    return False


def prefilter_for(ruleset: RuleSet, size: int) -> Prefilter | None:
    """The process's prefilter for ``ruleset``, built once enough bytes have been scanned."""
    state = ruleset.health
    if state.prefilter is False:
        return None
    if state.prefilter is not None:
        return state.prefilter  # type: ignore[no-any-return]
    wanted = wanted_engine()
    if wanted == "python":
        state.prefilter = False
        return None
    state.bytes_seen += size
    if wanted == "auto" and state.bytes_seen < PREFILTER_AFTER_BYTES:
        return None
    if not available():
        if wanted == "hyperscan":
            from scanner.errors import UsageError

            raise UsageError(f"{ENGINE_VARIABLE}=hyperscan, but the hyperscan package is not installed")
        state.prefilter = False
        return None
    prefilter = Prefilter(ruleset)
    state.prefilter = prefilter
    return prefilter
