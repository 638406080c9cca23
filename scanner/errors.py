"""Typed exceptions raised by library code; only the CLI turns them into messages and exit codes."""

from __future__ import annotations


def bounded(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: input from a repository can be any size,
    and an error message must never copy (or first build) an unbounded text."""
    if isinstance(value, (str, bytes)) and len(value) > limit:
        value = value[:limit]
        return repr(value) + f"… ({len(value)}+ characters)"
    if not isinstance(value, (str, bytes, int, float, bool, type(None))):
        return f"a {type(value).__name__}"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


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
