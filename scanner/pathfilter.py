"""Path excludes: gitignore patterns matched against repository-relative, '/'-separated paths.

The matching is pathspec's GitIgnoreSpec (git's own wildmatch rules: ``*``, ``?``, ``**``,
character classes, a leading ``/`` anchoring at the root, a trailing ``/`` for folders, and
``!`` re-including what an earlier pattern excluded; the last matching pattern decides).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from scanner.errors import ConfigError


@dataclass(frozen=True)
class PathFilter:
    """Paths excluded by gitignore-like globs."""

    globs: tuple[str, ...] = ()
    _spec: Any = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if not self.globs:
            return  # most scans (the pre-commit hook among them) exclude nothing: no pathspec import (~15 ms)
        import pathspec

        try:
            spec = pathspec.GitIgnoreSpec.from_lines(self.globs)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"exclude pattern not valid: {exc}") from None
        object.__setattr__(self, "_spec", spec)

    def excluded(self, path: str) -> bool:
        """Whether a file at ``path`` (or, with a trailing '/', a folder) is excluded."""
        return self._spec is not None and bool(self._spec.match_file(path))

    def excluded_folder(self, path: str) -> bool:
        """Whether the folder at ``path`` is excluded as a whole (git does not look inside it)."""
        return self._spec is not None and bool(self._spec.match_file(path.rstrip("/") + "/"))


def path_filter(globs: Sequence[str]) -> PathFilter:
    return PathFilter(tuple(globs))
