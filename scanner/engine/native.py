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
        for rule in ruleset.rules:
            if rule.value is not None or not rule.patterns:
                continue
            for pattern in rule.patterns:
                source = pattern.pattern
                if not isinstance(source, bytes) or not shared_syntax(source) or not self._compiles(source, flags):
                    self.always.add(rule.id)
                    continue
                expressions.append(source)
                self.rule_of.append(rule.id)
        # The marks that tell the decoders (decode.MARKS) which decodings a text needs, in the
        # same pass: texts without them skip those searches.
        from scanner.engine.decode import MARKS

        for name, mark in MARKS.items():
            expressions.append(mark)
            self.rule_of.append(MARK_PREFIX + name)
        self.database: Any = None
        if expressions:
            self.database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            self.database.compile(expressions=expressions, ids=list(range(len(expressions))),
                                  elements=len(expressions), flags=flags)
            self.scratch = hyperscan.Scratch(self.database)

    def _compiles(self, source: bytes, flags: int) -> bool:
        try:
            database = self._hyperscan.Database(mode=self._hyperscan.HS_MODE_BLOCK)
            database.compile(expressions=[source], ids=[0], elements=1, flags=flags)
        except Exception:  # noqa: BLE001 - hyperscan.error, or a pattern it rejects outright
            return False
        return True

    def possible(self, data: bytes) -> set[str]:
        """Ids of the rules that may match somewhere in ``data``, and the decoding marks it
        holds (as ``mark:NAME``)."""
        hits = set(self.always)
        if self.database is not None and data:
            rule_of = self.rule_of

            def on_match(index: int, start: int, end: int, flags: int, context: Any) -> None:
                hits.add(rule_of[index])

            self.database.scan(data, match_event_handler=on_match, scratch=self.scratch)
        return hits


MARK_PREFIX = "mark:"

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


def marks_of(possible: set[str]) -> frozenset[str]:
    return frozenset(name[len(MARK_PREFIX):] for name in possible if name.startswith(MARK_PREFIX))


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
    state.prefilter = Prefilter(ruleset)
    return state.prefilter  # type: ignore[no-any-return]
