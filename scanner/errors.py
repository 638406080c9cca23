"""Typed exceptions raised by library code; only the CLI turns them into messages and exit codes."""

from __future__ import annotations

import re


def bounded(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, credential-shaped parts masked: input from
    a repository or a configuration file can be any size, and an error message must never
    copy (or first build) an unbounded text, nor print a key a rule file happens to hold."""
    if isinstance(value, (str, bytes)) and len(value) > limit:
        value = value[:limit]
        return mask_credentials(repr(value)) + f"… ({len(value)}+ characters)"
    if not isinstance(value, (str, bytes, int, float, bool, type(None))):
        return f"a {type(value).__name__}"
    text = repr(value)
    return mask_credentials(text if len(text) <= limit else text[:limit] + "…")


_KEY_ID_SHAPE = r"(?<![A-Za-z0-9])((?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{4})[A-Z0-9]{4,}"
_MIXED = r"(?<![A-Za-z0-9/+])(?=[A-Za-z0-9/+]*[A-Z])(?=[A-Za-z0-9/+]*[a-z])(?=[A-Za-z0-9/+]*[0-9])"
# (A run is looked ahead into once, from its start: linear.)
_SHAPES: dict[bool, re.Pattern[str]] = {}


def mask_credentials(text: str, *, quoted: bool = True) -> str:
    """Key IDs (even cut short) shown as their first 8 characters, and secret-like runs
    (upper and lower case and a digit) as ********: what a message or a name shows is not
    scanned, and gets no finding's redaction. ``quoted`` (text quoted from a file, cut
    short): any such run of 30 or more; a name (a path, a URL), where long runs of letters,
    digits and '/' are ordinary: a part as long as a secret key (40) or an SES password (44)
    between '/' or the run's ends, with at most two '/' of its own, or a run of 100 or more."""
    pattern = _SHAPES.get(quoted)
    if pattern is None:
        longest = "30" if quoted else "100"
        pattern = _SHAPES[quoted] = re.compile(rf"{_KEY_ID_SHAPE}|{_MIXED}[A-Za-z0-9/+]{{{longest},}}(?![A-Za-z0-9/+])")
    text = pattern.sub(lambda m: f"{m.group(1)}…" if m.group(1) else "********", text)
    return text if quoted else _mask_path_parts(text)


_RUN = re.compile(r"[A-Za-z0-9/+]{40,}")


def _mask_path_parts(text: str) -> str:
    """Secret-sized parts of the runs of a name: each start (the run's, or after a '/') is
    tried once for 44 and 40 characters, so the cost is linear in the name."""
    spans: list[tuple[int, int]] = []
    for run in _RUN.finditer(text):
        first, last = run.span()
        starts = [first] + [i + 1 for i in range(first, last) if text[i] == "/"]
        covered = first
        for start in starts:
            if start < covered:
                continue
            for size in (44, 40):
                end = start + size
                part = text[start:end]
                if end <= last and (end == last or text[end] == "/") and part.count("/") <= 2 and \
                        _has_upper_lower_digit(part):
                    spans.append((start, end))
                    covered = end
                    break
    if not spans:
        return text
    pieces: list[str] = []
    done = 0
    for start, end in spans:
        pieces += (text[done:start], "********")
        done = end
    return "".join(pieces) + text[done:]


def _has_upper_lower_digit(part: str) -> bool:
    return part.lower() != part and part.upper() != part and any(c.isdigit() for c in part)


class KeysweepError(Exception):
    """Any failure keysweep reports as one line (exit code 3 unless a subclass says otherwise)."""


class UsageError(KeysweepError):
    """The user asked for something that cannot be done as asked (exit code 2)."""


class ConfigError(UsageError):
    """A rule file, configuration file or baseline is invalid (exit code 2)."""


class RuleError(ConfigError):
    """A rule file is invalid: names the file, the rule and the field."""

    def __init__(self, file: str, rule: str | None, field: str | None, problem: str) -> None:
        self.file, self.rule, self.field, self.problem = file, rule, field, problem
        where = file
        if rule is not None:
            where += f": rule {bounded(rule)}"
        if field is not None:
            where += f": field {bounded(field)}"
        super().__init__(f"{where}: {problem}")


class GitError(KeysweepError):
    """git failed or the repository cannot be read."""


class RevisionError(UsageError):
    """A revision or range given by the user does not resolve (exit code 2)."""


class AwsError(KeysweepError):
    """An AWS call failed in a way that stops the whole operation."""
