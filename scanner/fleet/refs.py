"""Has anything a ref reaches changed since the last audit? Answered from the files git keeps
its refs in, without starting git: the client asks it of every repository before it submits
any work, so a re-audit where nothing moved costs a few file reads per repository.

The digest is of where refs are stored, not of what they mean: equal digests mean every ref
(HEAD, branches, tags, remotes, the stash and its reflog) points where it did. A change
that moves no ref (``git pack-refs``) only makes the repository be listed again, which is
the safe direction.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from scanner.sources import git
from scanner.sources.git import Repository

# What `git log --all` starts from, besides the refs: a detached HEAD, and every stash
# entry (only the newest is a ref; the others live in the stash's reflog).
_PLAIN_FILES = ("HEAD", "packed-refs", "logs/refs/stash")
MAX_REF_FILE = 1 << 20  # a loose ref is one line; a larger file under refs/ is read in part (still hashed by size)


def git_dir_of(root: Path) -> Path | None:
    """The git directory of a work tree or bare repository at ``root``, when it has the plain
    layout; None for a ``.git`` file (linked work tree, submodule) or anything odd."""
    dot_git = root / ".git"
    if dot_git.is_dir() and not dot_git.is_symlink():
        return dot_git
    if dot_git.exists() or dot_git.is_symlink():
        return None
    return root if (root / "HEAD").is_file() else None


def files_digest(git_dir: Path) -> str | None:
    """The refs of the files backend, hashed from disk; None when git keeps them elsewhere
    (reftable, a common directory shared with other work trees) or they cannot be read."""
    for odd in ("reftable", "commondir", "worktrees"):
        if os.path.lexists(git_dir / odd):
            return None
    digest = hashlib.sha256(b"files\0")
    try:
        for name in _PLAIN_FILES:
            digest.update(name.encode() + b"\0" + _read(git_dir / name) + b"\0")
        # Iterative, sorted, no symlink followed: the same walk on every machine, and a
        # hostile tree of folders cannot exhaust the stack.
        todo = [(git_dir / "refs", "refs")]
        while todo:
            folder, shown = todo.pop()
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name, reverse=True)
            for entry in entries:
                name = f"{shown}/{entry.name}"
                if entry.is_symlink():
                    digest.update(b"L" + os.fsencode(name) + b"\0" + os.fsencode(os.readlink(entry.path)) + b"\0")
                elif entry.is_dir(follow_symlinks=False):
                    todo.append((Path(entry.path), name))
                else:
                    digest.update(b"F" + os.fsencode(name) + b"\0" + _read(Path(entry.path)) + b"\0")
    except OSError:
        return None
    return "files:" + digest.hexdigest()


def _read(path: Path) -> bytes:
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            # packed-refs is read whole (it is the refs); a stray large file elsewhere is
            # identified by its size and head.
            data = handle.read() if path.name == "packed-refs" else handle.read(MAX_REF_FILE)
            return str(size).encode() + b":" + data
    except FileNotFoundError:
        return b"-"


def refs_state(repo: Repository) -> str:
    """The digest the state keeps for an opened repository: from the files when it has the
    plain layout, from ``git for-each-ref`` otherwise."""
    root = repo.worktree if repo.worktree is not None else repo.git_dir
    git_dir = git_dir_of(root)
    if git_dir is not None and git_dir.resolve() == repo.git_dir.resolve():
        found = files_digest(git_dir)
        if found is not None:
            return found
    return "git:" + git.refs_digest(repo)


def local_refs_state(path: Path) -> str | None:
    """The same digest for a local target, read by the client; None if it cannot tell
    cheaply (then the repository goes to a worker, which opens it and decides)."""
    git_dir = git_dir_of(path)
    if git_dir is None:
        return None
    return files_digest(git_dir)

