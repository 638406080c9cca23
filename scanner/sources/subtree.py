"""The history of one folder of a repository (``keysweep scan sub``, as ``git log -- sub``).

A full history scan lists every object in the repository and reads them all; for a folder,
git is asked for the changes under it instead (``git log --all -- ':(top,literal)sub'``), and only
the blobs those changes introduce are read. The work is then proportional to the folder's
history, not the repository's. The log is walked once to learn which blobs to read, kept in
a temporary file (never in memory), and replayed for attribution, which is shared with the
full scan (history.attribute).

Commit and tag messages belong to no folder: they are not scanned here. Neither are objects
no ref reaches (``--all-objects``): they have no path.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import BinaryIO

from scanner.engine.rules import RuleSet
from scanner.sources import git
from scanner.sources.git import Repository
from scanner.sources.history import (
    Change,
    HistoryScan,
    ObjectListing,
    Progress,
    attribute,
    log_command,
    parse_log,
    scan_objects,
)

READ_CHUNK = 1 << 20


def pathspec(folder: str) -> str:
    """A folder as a literal pathspec from the top of the work tree: a name with *, ? or [
    (or starting with :) matches only itself, whatever the repository calls its folders, and
    the current folder (git reads pathspecs relative to it) does not matter."""
    return ":(top,literal)" + folder.rstrip("/")


def subtree_log_command(folder: str, stash: list[str]) -> tuple[list[str], list[bytes] | None]:
    # --full-history: without it git simplifies history for a pathspec and skips a side
    # branch whose changes to the folder were undone before its merge; a secret there is
    # still in history.
    args, stdin = log_command(["--all", "--full-history"], stash)
    return [*args, "--", pathspec(folder)], stdin


def _replay(spool: BinaryIO) -> Iterator[bytes]:
    spool.seek(0)
    while chunk := spool.read(READ_CHUNK):
        yield chunk


def scan_subtree_history(repo: Repository, ruleset: RuleSet, folder: str, *, max_size: int, jobs: int,
                         progress: Progress | None = None) -> HistoryScan:
    args, stdin = subtree_log_command(folder, git.stash_commits(repo))
    listing = ObjectListing()
    wanted: dict[str, None] = {}  # insertion-ordered set: oldest changes last, as the log gives them
    with tempfile.TemporaryFile() as spool:
        def spooled() -> Iterator[bytes]:
            for chunk in git.stream(repo, args, stdin_lines=stdin):
                spool.write(chunk)
                yield chunk

        for item in parse_log(spooled()):
            if isinstance(item, Change):
                wanted.setdefault(item.new, None)
        for info in git.object_infos(repo, list(wanted)):
            if info.kind != "blob":
                continue
            listing.existing_blobs.add(info.sha)
            if info.size > max_size:
                listing.too_large[info.sha] = info.size
            else:
                listing.to_scan.append(info)
        scanned = scan_objects(repo, listing.to_scan, ruleset, jobs, progress)
        return attribute(repo, listing, scanned, _replay(spool), all_objects=False, max_size=max_size,
                         ruleset=ruleset)
