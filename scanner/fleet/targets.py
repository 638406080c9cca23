"""What an audit covers: repositories named on the command line or in a file, folders of
repositories, and git URLs (mirrored into a cache)."""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from scanner.errors import GitError, UsageError
from scanner.sources import git
from scanner.sources.git import Repository, find_repository

URL_SCHEMES = ("https://", "http://", "ssh://", "git://", "file://")
# user@host:path, git's scp-like syntax (not a Windows drive letter, not a local path with a colon)
SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+:[^/\\].*|^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+:/.*")
CLONE_TIMEOUT = 1800.0  # seconds: a large organisation repository over a slow link, not forever


@dataclass(frozen=True, slots=True)
class Target:
    """One repository to audit. ``name`` is what reports call it: the URL, or the absolute path."""

    name: str
    url: str | None = field(default=None, repr=False)  # a remote repository's URL (may hold a token)


def display_url(url: str) -> str:
    """A URL as reports and the state name it: a password or token in it replaced by ***.

    Over http(s) a user name alone is a credential too (``https://TOKEN@github.com/...`` is how
    GitHub and GitLab take a token), so it goes; ssh's user name (``git@``) is kept."""
    import urllib.parse

    if not url.startswith(URL_SCHEMES):
        return url
    scheme, _, rest = url.partition("://")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" not in authority:
        return url
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        if parts.password is not None or scheme.lower() in ("http", "https"):
            user = parts.username if parts.password is not None else None
            shown = f"{user}:***" if user else "***"
            return urllib.parse.urlunsplit(parts._replace(netloc=f"{shown}@{host}"))
        return url
    except ValueError:
        # Not a URL urlsplit accepts: drop everything before the authority's last '@'.
        return f"{scheme}://***@{rest[len(authority.rpartition('@')[0]) + 1:]}"


def is_url(text: str) -> bool:
    return text.startswith(URL_SCHEMES) or bool(SCP_LIKE.match(text))


def read_targets_file(path: Path) -> list[str]:
    """One target per line; blank lines and ``#`` comments ignored. ``-``: standard input
    (``gh repo list org --json url -q '.[].url' | keysweep audit --targets -``)."""
    try:
        text = sys.stdin.buffer.read().decode("utf-8") if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--targets {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"--targets {path}: not UTF-8 text") from None
    # A comment is a whole line, or starts at " #" (a URL may hold a '#' of its own).
    lines = (re.split(r"\s#", line, maxsplit=1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def is_repository_dir(path: Path) -> bool:
    """A work tree (has .git) or a bare repository (HEAD, objects/, refs/). By shape only: a
    damaged repository is still a target, so that its failure is reported, not skipped."""
    if (path / ".git").exists():
        return True
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()


def _repositories_under(root: Path) -> Iterator[Path]:
    """Every repository in a folder tree, not descending into repositories or symlinks.
    Iterative, so a deep tree cannot exhaust the stack; each folder is listed once."""
    todo = [root]
    while todo:
        folder = todo.pop()
        if is_repository_dir(folder):
            yield folder
            continue
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name, reverse=True)
        except OSError:
            continue  # unreadable folder: nothing to find in it
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    todo.append(Path(entry.path))
            except OSError:
                continue


def expand_targets(texts: Iterable[str]) -> list[Target]:
    """The repositories named: URLs as given, local repositories, and every repository
    found under a folder. Each appears once, in the order first named."""
    seen: set[str] = set()
    result: list[Target] = []

    def add(target: Target) -> None:
        if target.name not in seen:
            seen.add(target.name)
            result.append(target)

    for text in texts:
        if is_url(text):
            add(Target(display_url(text), url=text))
            continue
        path = Path(text).expanduser()
        if not path.exists():
            raise UsageError(f"{text}: no such repository or folder (and not a git URL)")
        if not path.is_dir():
            raise UsageError(f"{text}: not a folder or a repository")
        found = list(_repositories_under(path.resolve()))
        if not found:
            raise UsageError(f"{text}: no git repository in this folder")
        for repo in sorted(found):
            add(Target(str(repo)))
    return result


def estimated_size(target: Target) -> int:
    """Bytes of packs on disk (0 for a URL or an odd layout): enough to start the largest
    repositories first, so that one large repository does not finish alone at the end."""
    if target.url is not None:
        return 0
    root = Path(target.name)
    git_dir = root / ".git" if (root / ".git").is_dir() else root
    try:
        return sum(entry.stat().st_size for entry in os.scandir(git_dir / "objects" / "pack")
                   if entry.name.endswith(".pack"))
    except OSError:
        return 0


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "keysweep" / "mirrors"


def mirror_path(cache: Path, url: str) -> Path:
    """A folder name per URL (as displayed, without its password): readable, and unique (the
    hash) even for URLs that read alike."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", url.split("://", 1)[-1])[-60:].strip("-.")
    return cache / f"{readable}-{hashlib.sha256(url.encode()).hexdigest()[:16]}.git"


def local_repository(target: Target, cache: Path | None, *, refresh: bool) -> Path:
    """The folder to read ``target`` from on this machine. A URL is cloned into the cache
    the first time, and fetched again when ``refresh`` is set (the first task of a run)."""
    if target.url is None:
        return Path(target.name)
    mirror = mirror_path(cache or default_cache_dir(), target.name)  # the name: no password in it
    if not (mirror / "HEAD").is_file():
        git.clone_mirror(target.url, mirror, timeout=CLONE_TIMEOUT, shown=target.name)
    elif refresh:
        git.fetch_mirror(target.url, mirror, timeout=CLONE_TIMEOUT, shown=target.name)
    return mirror


def open_repository(target: Target, cache: Path | None, *, refresh: bool) -> Repository:
    path = local_repository(target, cache, refresh=refresh)
    repo = plain_repository(path)
    if repo is None:
        repo = find_repository(path, search_parents=False)
    if repo is None:
        raise GitError(f"{target.name}: not a readable git repository")
    return repo



def plain_repository(path: Path) -> Repository | None:
    """A work tree's ``.git`` folder or a bare repository, taken from its layout without
    starting git (``rev-parse`` is one process of the few a small repository's audit needs).
    None for anything else (a ``.git`` file, a linked work tree): git is asked then. A
    folder that only looks like a repository fails at the first git command, and that
    error is the repository's."""
    from scanner.fleet.refs import git_dir_of

    try:
        root = path.resolve()
        git_dir = git_dir_of(root)
        if git_dir is None or os.path.lexists(git_dir / "commondir"):
            return None
        return Repository(git_dir=git_dir, worktree=root if git_dir != root else None,
                          shallow=(git_dir / "shallow").is_file())
    except OSError:
        return None
