"""Regular expressions compiled on first use.

A pattern compiled at import, or when the built-in rules load, is paid for by every run,
the pre-commit hook's included, whether it is used or not: the hook scans a few small
files, and most patterns (those confirming a value near a keyword, the allowlists, the
decoders' own) never run there. Compiling them up front was about a tenth of its time.
Nor is ``regex`` imported before a pattern needs it (10-30 ms, a fifth of the hook): the
built-in patterns run on ``re`` (detect.stdlib_twin), which reads them from their source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, AnyStr, cast

if TYPE_CHECKING:
    import regex

# regex's own flag values (regex/_regex_core.py), for code that must not import it to name
# them; tests/test_allow_combined.py checks them against the module. I, M, S and X are re's too.
REGEX_ASCII = 0x80
REGEX_VERSION0 = 0x2000


class LazyPattern:
    """Stands in for a ``regex.Pattern``: ``pattern`` is the source as given; any other
    attribute compiles the pattern once and is then kept on the instance, so later look-ups
    (``search``, ``finditer``) are plain attribute reads and never come back here."""

    def __init__(self, source: str | bytes, flags: int = 0) -> None:
        self.pattern = source
        self.given_flags = flags  # as given; ``flags`` is the compiled pattern's (inline flags included)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy and pickle probing for hooks: not the pattern's own
            raise AttributeError(name)
        value = getattr(self._compiled(), name)
        self.__dict__[name] = value
        return value

    def _compiled(self) -> regex.Pattern[str] | regex.Pattern[bytes]:
        import regex

        # One call per type: mypy cannot pick regex.compile's overload for str | bytes.
        if isinstance(self.pattern, str):
            return regex.compile(self.pattern, self.given_flags)
        return regex.compile(self.pattern, self.given_flags)

    def __reduce__(self) -> tuple[type[LazyPattern], tuple[str | bytes, int]]:
        return LazyPattern, (self.pattern, self.given_flags)  # compiled again where it is used, as regex does

    def __repr__(self) -> str:
        return repr(self._compiled())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LazyPattern) and (other.pattern, other.given_flags) == (self.pattern, self.given_flags)

    def __hash__(self) -> int:
        return hash((self.pattern, self.given_flags))


def lazy_compile(source: AnyStr, flags: int = 0) -> regex.Pattern[AnyStr]:
    """``regex.compile(source, flags)``, done when the pattern is first used. The caller
    vouches for the pattern (a constant, or a rule the test suite compiles): a bad one
    fails where it is used, not here."""
    return cast("regex.Pattern[AnyStr]", LazyPattern(source, flags))
