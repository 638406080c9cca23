"""Path excludes: gitignore-like globs matched against repository-relative, '/'-separated paths."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import regex


def _glob_to_regex(glob: str) -> str:
    anchored = "/" in glob.rstrip("/")
    glob = glob.strip("/")
    out = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(regex.escape(glob[i]))
            i += 1
    body = "".join(out)
    # A glob without a slash matches a name at any depth; a match on a folder excludes
    # everything below it.
    return ("" if anchored else "(?:.*/)?") + body + "(?:/.*)?"


@dataclass(frozen=True)
class PathFilter:
    globs: tuple[str, ...] = ()
    _compiled: regex.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pattern = "|".join(f"(?:{_glob_to_regex(g)})" for g in self.globs) if self.globs else "(?!)"
        object.__setattr__(self, "_compiled", regex.compile(pattern))

    def excluded(self, path: str) -> bool:
        return self._compiled.fullmatch(path) is not None


def path_filter(globs: Sequence[str]) -> PathFilter:
    return PathFilter(tuple(globs))
