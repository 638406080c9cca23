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


_CREDENTIAL_SHAPES: re.Pattern[str] | None = None


def mask_credentials(text: str) -> str:
    """Key IDs (even cut short) shown as their first 8 characters, and runs of 30 or more
    secret-key characters holding upper and lower case and a digit as ********: what a
    message quotes from a file is not a report, and gets no finding's redaction."""
    global _CREDENTIAL_SHAPES
    if _CREDENTIAL_SHAPES is None:
        _CREDENTIAL_SHAPES = re.compile(
            r"(?<![A-Za-z0-9])((?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{4})[A-Z0-9]{4,}"
            r"|(?<![A-Za-z0-9/+])(?=[A-Za-z0-9/+]*[A-Z])(?=[A-Za-z0-9/+]*[a-z])(?=[A-Za-z0-9/+]*[0-9])"
            r"[A-Za-z0-9/+]{30,}")
    return _CREDENTIAL_SHAPES.sub(lambda m: f"{m.group(1)}…" if m.group(1) else "********", text)


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
