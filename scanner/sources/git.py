"""The one module that runs git.

Everything is git plumbing (``rev-parse`` finds the repository); the hot paths (enumerating
objects, reading blobs, walking the log) use NUL-separated output, streamed.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import threading
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from scanner.errors import GitError, RevisionError

NULL_SHA = "0" * 40
_HEX = frozenset("0123456789abcdef")


def is_null(sha: str) -> bool:
    """git's "no object" id: all zeros, 40 of them (SHA-1) or 64 (a SHA-256 repository)."""
    return bool(sha) and not sha.strip("0")


def is_object_id(text: str) -> bool:
    """A full object id in lower-case hex: SHA-1 or SHA-256."""
    return len(text) in (40, 64) and _HEX.issuperset(text)


READ_CHUNK = 1 << 20


def display_path(raw: bytes) -> str:
    """A path as reports show it: UTF-8, with any other byte written as an escape (\\xe9)."""
    return raw.decode("utf-8", "backslashreplace")


@dataclass(frozen=True, slots=True)
class Repository:
    """Where a repository is, as git found it."""

    git_dir: Path
    worktree: Path | None  # None for a bare repository
    shallow: bool


def _git_executable() -> str:
    # GitPython's variable, honoured as before; reading it does not need GitPython itself
    # (importing that costs the pre-commit hook about 0.1 s).
    return os.environ.get("GIT_PYTHON_GIT_EXECUTABLE") or "git"


def find_repository(path: Path, *, search_parents: bool) -> Repository | None:
    """The repository at ``path`` (its top level, or a bare repository), or None.

    With ``search_parents``, a folder inside a work tree belongs to that repository too.
    """
    return _find_repository(path.resolve(), search_parents)


# Discovery must follow the path it is given, as a scan of another folder from inside a
# hook (where git may export GIT_DIR) would otherwise describe the hook's repository.
_DISCOVERY_OVERRIDES = ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR")


@functools.lru_cache(maxsize=16)
def _find_repository(path: Path, search_parents: bool) -> Repository | None:
    # Cached: configuration discovery and the scan both ask, and the hook runs on every commit.
    if not path.is_dir():
        # A file belongs to the repository around it (with search_parents), as GitPython had it.
        return _find_repository(path.parent, True) if search_parents and path.exists() else None
    env = {k: v for k, v in os.environ.items() if k not in _DISCOVERY_OVERRIDES}
    env.update(LC_ALL="C", LANGUAGE="", GIT_TERMINAL_PROMPT="0")
    # Fixed-format answers first and the git directory last, so a path holding a newline
    # still parses. --show-cdup prints a line only inside a work tree.
    try:
        proc = subprocess.run(
            [_git_executable(), "-C", str(path), "rev-parse", "--is-bare-repository", "--is-shallow-repository",
             "--is-inside-work-tree", "--show-cdup", "--absolute-git-dir"],
            capture_output=True, env=env,
        )
    except OSError as exc:
        if (path / ".git").exists():
            raise GitError(f"{path}: cannot run git: {exc.strerror or exc}") from None
        return None  # no git on this machine: a folder without .git is scanned as files
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip()
        # A plain folder inside a repository git refuses (another owner's) is still a folder;
        # a repository git refuses is an error, never a silently clean scan of its files.
        looks_like_repository = (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())
        if "not a git repository" in message or (not search_parents and not looks_like_repository):
            return None
        lines = message.splitlines()
        last = next((line for line in lines if line.startswith("fatal:")), lines[-1] if lines else f"exit {proc.returncode}")
        raise GitError(f"{path}: cannot open the git repository: {last.removeprefix('fatal: ')}")
    bare, shallow, inside, rest = proc.stdout.split(b"\n", 3)
    worktree: Path | None = None
    if inside == b"true":
        cdup, _, rest = rest.partition(b"\n")
        worktree = (path / os.fsdecode(cdup)).resolve() if bare != b"true" else None
    git_dir = Path(os.fsdecode(rest.removesuffix(b"\n")))
    if worktree is not None and not (worktree / ".git").exists():
        worktree = None  # a git directory without core.bare set (a mirror, a snapshot): bare
    if not search_parents and (worktree or git_dir).resolve() != path:
        return None
    return Repository(git_dir=git_dir, worktree=worktree, shallow=shallow == b"true")


def _base_command(repo: Repository) -> list[str]:
    # -c core.quotePath=false: paths come back as bytes, not C-quoted; with -z they are exact.
    command = [_git_executable(), "-c", "core.quotePath=false", "--git-dir", str(repo.git_dir)]
    if repo.worktree is not None:
        command += ["--work-tree", str(repo.worktree)]
    return command


def run(repo: Repository, args: Sequence[str], *, input: bytes | None = None, check: bool = True) -> bytes:
    proc = subprocess.run(
        [*_base_command(repo), *args], input=input, capture_output=True,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )
    if check and proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git {args[0]} failed: {message[-1] if message else f'exit {proc.returncode}'}")
    return proc.stdout


def _error_file() -> BinaryIO:
    """An unnamed temporary file for a git process's standard error, as
    ``tempfile.TemporaryFile()`` makes one (git may write more there than a pipe holds).

    Made directly on Linux, in $TMPDIR or /tmp: importing tempfile (shutil and random with
    it) was ~4 ms of every pre-commit hook run, which reads its blobs through one cat-file.
    Anywhere else, or once tempfile is imported (its settings then apply), tempfile makes it.
    """
    if "tempfile" not in sys.modules and hasattr(os, "O_TMPFILE"):
        folder = next((os.environ[name] for name in ("TMPDIR", "TEMP", "TMP") if os.environ.get(name)), "/tmp")
        try:
            fd = os.open(folder, os.O_RDWR | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_TMPFILE, 0o600)
        except OSError:
            pass  # no such folder, not writable, or a file system without O_TMPFILE
        else:
            return open(fd, "w+b")
    import tempfile

    return tempfile.TemporaryFile()


def stream(repo: Repository, args: Sequence[str], *, stdin_lines: Iterable[bytes] | None = None) -> Iterator[bytes]:
    """Run git and yield its standard output in chunks; raise GitError if it fails."""
    with _error_file() as errors:
        proc = subprocess.Popen(
            [*_base_command(repo), *args], stdout=subprocess.PIPE, stderr=errors,
            stdin=subprocess.PIPE if stdin_lines is not None else subprocess.DEVNULL,
        )
        writer = _start_writer(proc, stdin_lines) if stdin_lines is not None else None
        assert proc.stdout is not None
        try:
            while chunk := proc.stdout.read(READ_CHUNK):
                yield chunk
        finally:
            proc.stdout.close()
            code = proc.wait()
            if writer is not None:
                writer.join()
        if code != 0:
            errors.seek(0)
            message = errors.read().decode("utf-8", "replace").strip().splitlines()
            raise GitError(f"git {args[0]} failed: {message[-1] if message else f'exit {code}'}")


class Prefetch:
    """Run git now, in a background thread, keeping its output in a temporary file until
    it is wanted: the history scan walks the log while its workers read blobs."""

    def __init__(self, repo: Repository, args: Sequence[str], stdin_lines: Iterable[bytes] | None = None) -> None:
        import tempfile

        self._file = tempfile.TemporaryFile()
        self._error: GitError | None = None
        self._thread = threading.Thread(target=self._run, args=(repo, args, stdin_lines), daemon=True)
        self._thread.start()

    def _run(self, repo: Repository, args: Sequence[str], stdin_lines: Iterable[bytes] | None) -> None:
        try:
            for chunk in stream(repo, args, stdin_lines=stdin_lines):
                self._file.write(chunk)
        except GitError as exc:
            self._error = exc
        except OSError as exc:
            self._error = GitError(f"git {args[0]}: {exc}")

    def chunks(self) -> Iterator[bytes]:
        self._thread.join()
        try:
            # What git wrote before it failed (a corrupt commit stops a log walk midway) is
            # still good: the caller gets it first, then the error.
            self._file.seek(0)
            while chunk := self._file.read(READ_CHUNK):
                yield chunk
            if self._error is not None:
                raise self._error
        finally:
            self._file.close()


def _start_writer(proc: subprocess.Popen[bytes], lines: Iterable[bytes]) -> threading.Thread:
    def write() -> None:
        assert proc.stdin is not None
        try:
            for line in lines:
                proc.stdin.write(line)
            proc.stdin.close()
        except (OSError, ValueError):
            pass  # git stopped reading (it died); the reader reports why

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def resolve_range(repo: Repository, revision_range: str) -> None:
    """Fail with git's own message if a revision range does not resolve."""
    proc = subprocess.run(
        [*_base_command(repo), "rev-parse", "--revs-only", revision_range, "--"],
        capture_output=True, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RevisionError(f"revision range {revision_range!r} does not resolve: "
                            f"{message[0] if message else 'no such revision'}")
    # Each end must be a commit (or a tag on one): rev-list over a tag on a tree or a blob
    # (or HEAD^{tree}) lists nothing, which read as a clean range (fail-open in CI), and
    # such an excluded end left the whole history in.
    ends = [line.lstrip("^") for line in proc.stdout.decode("ascii", "replace").split()]
    kinds = run(repo, ["cat-file", "--batch-check=%(objecttype)"],
                input="".join(f"{end}^{{commit}}\n" for end in ends).encode()).decode("ascii", "replace").splitlines()
    for end, kind in zip(ends, kinds):
        if kind != "commit":
            raise RevisionError(f"revision range {revision_range!r}: {end[:12]} is not a commit (a tag on a tree "
                                "or a blob?); a range runs between commits")


def head_commit(repo: Repository) -> str | None:
    out = run(repo, ["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], check=False).strip()
    return out.decode() or None


def stash_commits(repo: Repository) -> list[str]:
    """Every stash entry (the reflog of refs/stash), not only the newest that --all sees."""
    if _no_stash_log(repo.git_dir):
        return []  # what git would say, without starting it (most repositories have no stash)
    out = run(repo, ["reflog", "show", "--format=%H", "refs/stash", "--"], check=False)
    return [line for line in out.decode().split() if is_object_id(line)]


def _no_stash_log(git_dir: Path) -> bool:
    """True when the files ref backend holds no reflog for refs/stash: ``git reflog show
    refs/stash`` would list nothing. False whenever git keeps refs or logs elsewhere
    (reftable, the common directory of a linked work tree): then git is asked."""
    try:
        if any(os.path.lexists(git_dir / odd) for odd in ("reftable", "commondir")):
            return False
        return not os.path.lexists(git_dir / "logs" / "refs" / "stash")
    except OSError:
        return False


def tag_objects(repo: Repository) -> dict[str, str]:
    """Annotated tag object -> its ref name."""
    out = run(repo, ["for-each-ref", "--format=%(objectname) %(objecttype) %(refname)", "refs/tags"])
    tags = {}
    for line in out.decode("utf-8", "replace").splitlines():
        sha, kind, name = line.split(" ", 2)
        if kind == "tag":
            tags[sha] = name.removeprefix("refs/tags/")
    return tags


def blobs_behind_refs(repo: Repository) -> dict[str, list[str]]:
    """Blobs a ref reaches without a commit (a tag of a blob or of a tree): blob -> places.

    A tagged blob is named by its ref; a blob in a tagged tree by ``ref:path``.
    """
    out = run(repo, ["for-each-ref", "--format=%(objectname) %(objecttype) %(*objectname) %(*objecttype) %(refname)"])
    places: dict[str, list[str]] = {}
    for line in out.decode("utf-8", "replace").splitlines():
        sha, kind, peeled, peeled_kind, name = (line.split(" ", 4) + [""] * 5)[:5]
        if kind == "tag" and peeled:
            sha, kind = peeled, peeled_kind
        if kind == "blob":
            places.setdefault(sha, []).append(name)
        elif kind == "tree":
            listing = run(repo, ["ls-tree", "-r", "-z", "--full-tree", sha])
            for entry in listing.split(b"\x00"):
                meta, _, path = entry.partition(b"\t")
                parts = meta.split(b" ")
                if len(parts) == 3 and parts[1] == b"blob":
                    places.setdefault(parts[2].decode(), []).append(f"{name}:{display_path(path)}")
    return places


def reachable_commits(repo: Repository, extra: Sequence[str]) -> set[str]:
    stdin = "".join(f"{sha}\n" for sha in extra).encode()
    out = run(repo, ["rev-list", "--all", "--stdin"], input=stdin)
    return set(out.decode().split())



@dataclass(frozen=True, slots=True)
class RefTip:
    """A ref and what it points at."""

    name: str  # git's short name (heads/x or tags/x only where a short name is ambiguous)
    full: str  # refs/heads/x; "HEAD" for a detached HEAD; stash@{n} for an older stash entry
    target: str  # the object the ref names (an annotated tag: the tag object)
    commit: str | None  # the commit it peels to; None for a tag of a blob or a tree


def ref_tips(repo: Repository) -> list[RefTip]:
    """Every ref with the commit it reaches, plus a detached HEAD and every stash entry.

    Ref names cannot hold a space or a newline (git check-ref-format), so a line splits safely.
    Short names are made here, not by %(refname:short), which costs git an ambiguity lookup
    per ref (0.1 s for 9,000 refs); a name two kinds share keeps its kind (heads/x, tags/x).
    """
    fmt = "%(objectname) %(objecttype) %(*objectname) %(*objecttype) %(refname)"
    rows = []
    for line in run(repo, ["for-each-ref", f"--format={fmt}"]).decode("utf-8", "replace").splitlines():
        sha, kind, peeled, peeled_kind, full = (line.split(" ", 4) + [""] * 5)[:5]
        commit = sha if kind == "commit" else peeled if peeled_kind == "commit" else None
        rows.append((full, sha, commit))
    shorts = [_short_ref(full) for full, _, _ in rows]
    counts: dict[str, int] = {}
    for short in shorts:
        counts[short] = counts.get(short, 0) + 1
    tips = [RefTip(short if counts[short] == 1 else full.removeprefix("refs/"), full, sha, commit)
            for short, (full, sha, commit) in zip(shorts, rows, strict=True)]
    named = head_file(repo)
    if named is not None:
        detached = named[1]
    else:
        head = head_commit(repo)
        detached = head if head is not None and not run(repo, ["symbolic-ref", "-q", "HEAD"], check=False).strip() \
            else None
    if detached is not None:
        tips.append(RefTip("HEAD", "HEAD", detached, detached))  # no branch names it
    for index, sha in enumerate(stash_commits(repo)[1:], start=1):  # stash@{0} is refs/stash
        tips.append(RefTip(f"stash@{{{index}}}", f"stash@{{{index}}}", sha, sha))
    return tips


def _short_ref(full: str) -> str:
    for prefix in ("refs/heads/", "refs/tags/", "refs/remotes/", "refs/"):
        if full.startswith(prefix):
            return full[len(prefix):]
    return full


def head_branch(repo: Repository) -> str | None:
    """HEAD's branch (short name), or None when HEAD is detached or the repository has none."""
    named = head_file(repo)
    if named is not None:
        ref, _commit = named
        if ref is None:
            return None  # detached
        if ref.startswith("refs/heads/"):
            return ref.removeprefix("refs/heads/")
    out = run(repo, ["symbolic-ref", "-q", "--short", "HEAD"], check=False).decode("utf-8", "replace").strip()
    return out or None


def head_file(repo: Repository) -> tuple[str | None, str | None] | None:
    """What HEAD says, read from its file without starting git (each git process is 1-4 ms
    of CPU; a fleet audit asks this of every repository with findings): (None, commit) when
    detached, (ref name, None) when it names a ref. None when git must be asked: refs kept
    elsewhere (reftable, a linked work tree's common directory), or a file of another shape."""
    try:
        # A symbolic link for HEAD (git before 1.5) would read as the branch's commit.
        if any(os.path.lexists(repo.git_dir / odd) for odd in ("reftable", "commondir")) or \
                os.path.islink(repo.git_dir / "HEAD"):
            return None
        with open(repo.git_dir / "HEAD", "rb") as handle:
            text = handle.read(1024).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if text.startswith("ref: "):
        name = text[5:]
        return (name, None) if name.startswith("refs/") and name.isprintable() and " " not in name else None
    return (None, text) if is_object_id(text) else None


def tree_blobs(repo: Repository, revision: str) -> set[str]:
    """Every blob in a commit's tree (empty when it does not resolve: no commit yet)."""
    out = run(repo, ["ls-tree", "-r", "-z", "--full-tree", revision], check=False)
    blobs = set()
    for entry in out.split(b"\x00"):
        parts = entry.partition(b"\t")[0].split(b" ")
        if len(parts) == 3 and parts[1] == b"blob":
            blobs.add(parts[2].decode())
    return blobs


def start_topo_parents(repo: Repository, extra: Sequence[str]) -> Prefetch:
    """Start listing every commit refs (and ``extra``) reach with its parents, no parent
    before all its children, in the background (it runs beside the caller's other git calls)."""
    return Prefetch(repo, ["rev-list", "--parents", "--topo-order", "--all", "--stdin"],
                    [f"{sha}\n".encode() for sha in extra])


def parse_parents(chunks: Iterable[bytes]) -> Generator[tuple[str, list[str]], None, None]:
    rest = b""
    for chunk in chunks:
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            shas = line.decode().split()
            if shas:
                yield shas[0], shas[1:]
    if rest.strip():
        shas = rest.decode().split()
        yield shas[0], shas[1:]


def published_commits(repo: Repository, wanted: Iterable[str]) -> dict[str, bool]:
    """For each commit in ``wanted``: is it reachable from a remote-tracking branch or a tag?

    One walk of what those refs reach (linear in that history), streamed and matched against
    the wanted set, never held whole. No such ref at all: nothing has left the machine (as far
    as this clone knows: remote-tracking branches are as fresh as the last fetch or push).
    """
    wanted_set = {sha for sha in wanted if re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", sha)}
    found: set[str] = set()
    if wanted_set:
        refs = run(repo, ["for-each-ref", "--format=%(objectname)", "refs/remotes", "refs/tags"])
        if refs.strip():
            tail = b""
            for chunk in stream(repo, ["rev-list", "--remotes", "--tags"]):
                lines = (tail + chunk).split(b"\n")
                tail = lines.pop()
                found.update(sha for line in lines if (sha := line.decode()) in wanted_set)
            if tail and tail.decode() in wanted_set:
                found.add(tail.decode())
    return {sha: sha in found for sha in wanted_set}


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """An object's id, type and size, without its contents."""

    sha: str
    kind: str  # blob, tree, commit, tag
    size: int


BATCH_CHECK = "--batch-check=%(objectname) %(objecttype) %(objectsize)"


def _batch_check(repo: Repository, args: Sequence[str], stdin_lines: Iterable[bytes] | None = None) -> Iterator[ObjectInfo]:
    rest = b""
    for chunk in stream(repo, ["cat-file", BATCH_CHECK, *args], stdin_lines=stdin_lines):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            parts = line.split(b" ")
            if len(parts) == 3:
                yield ObjectInfo(parts[0].decode(), parts[1].decode(), int(parts[2]))
            else:
                # "<sha> missing": absent, or (in --batch-all-objects) corrupt. Named, not read.
                yield ObjectInfo(parts[0].decode(), "unreadable", 0)


def list_objects_and_bases(repo: Repository) -> Iterator[tuple[ObjectInfo, str | None]]:
    """Every object but trees in the repository, reachable or not, in pack order, each with the
    object its packed form is a delta against (None: stored whole, or loose). No contents.

    Trees (about a third of a history's objects) are left out before any object is made for
    them; a blob's or a commit's delta base is never a tree.
    """
    # --unordered: pack order, not sorted by hash. %(deltabase) lets the caller read each
    # object right after its base, while git still holds the base in its delta cache.
    rest = b""
    args = ["cat-file", "--batch-all-objects", "--unordered",
            "--batch-check=%(objectname) %(objecttype) %(objectsize) %(deltabase)"]
    for chunk in stream(repo, args):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            parts = line.split(b" ")
            if len(parts) == 4:
                if parts[1] == b"tree":
                    continue
                base = parts[3].decode()
                yield ObjectInfo(parts[0].decode(), parts[1].decode(), int(parts[2])), None if is_null(base) else base
            elif parts[0]:
                # "<sha> missing": corrupt (it was listed). Named, not read.
                yield ObjectInfo(parts[0].decode(), "unreadable", 0), None


@dataclass(frozen=True, slots=True)
class GitObject:
    """An object's contents, or why they could not be read."""

    sha: str
    kind: str
    data: bytes | None  # None when the object is missing or cannot be read
    problem: str | None = None


def _widen_pipe(fd: int) -> None:
    """Ask for a 1 MiB pipe (Linux): fewer wake-ups per gigabyte read from cat-file."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError):
        pass  # not Linux, or over /proc/sys/fs/pipe-max-size: the default pipe works too


def read_objects(repo: Repository, shas: Sequence[str]) -> Iterator[GitObject]:
    """The contents of each object, in order, through one long-lived ``git cat-file --batch``.

    A missing object is reported as such; a corrupt one kills cat-file, so it is reported
    and a new cat-file carries on with the objects after it.
    """
    index = 0
    while index < len(shas):
        with _error_file() as errors:
            proc = subprocess.Popen(
                [*_base_command(repo), "cat-file", "--batch"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
            )
            assert proc.stdout is not None
            _widen_pipe(proc.stdout.fileno())
            writer = _start_writer(proc, (f"{sha}\n".encode() for sha in shas[index:]))
            out = proc.stdout
            try:
                while index < len(shas):
                    header = out.readline()
                    if not header:
                        break
                    parts = header.split()
                    if len(parts) == 2 and parts[1] == b"missing":
                        yield GitObject(shas[index], "missing", None, "missing from the object database")
                        index += 1
                        continue
                    size = int(parts[2])
                    data = out.read(size)
                    out.read(1)
                    if len(data) < size:
                        break
                    yield GitObject(parts[0].decode(), parts[1].decode(), data)
                    index += 1
            finally:
                out.close()
                proc.wait()
                writer.join()
            if index < len(shas):
                errors.seek(0)
                lines = errors.read().decode("utf-8", "replace").strip().splitlines()
                yield GitObject(shas[index], "unreadable", None, lines[-1] if lines else f"git cat-file exit {proc.returncode}")
                index += 1


def object_infos(repo: Repository, shas: Sequence[str]) -> Iterator[ObjectInfo]:
    """Type and size of the named objects (missing ones are left out)."""
    lines = (f"{sha}\n".encode() for sha in shas)
    return (info for info in _batch_check(repo, [], lines) if info.kind != "unreadable")


@dataclass(frozen=True, slots=True)
class StagedChange:
    """A file the index changes against HEAD."""

    path: str
    old: str | None  # None when the file is new
    new: str


def staged_changes(repo: Repository) -> list[StagedChange]:
    """Files the index changes against HEAD (against the empty tree before the first commit).

    Renames are detected (-M), so a file that is only moved or lightly edited is compared
    with its old content: moving a file is not adding its lines.
    """
    # Plumbing, not `git diff`: no user diff configuration (external drivers, colour,
    # diff.relative) applies. HEAD is tried directly: one git process on an ordinary commit.
    args = ["diff-index", "--cached", "--raw", "-z", "-M", "--no-abbrev", "HEAD", "--"]
    proc = subprocess.run([*_base_command(repo), *args], capture_output=True,
                          env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    if proc.returncode == 0:
        out = proc.stdout
    elif head_commit(repo) is None:
        # No commit yet: everything staged is new. (diff-index needs a tree to compare.)
        out = run(repo, ["diff", "--cached", "--raw", "-z", "--no-renames", "--no-abbrev", "--no-ext-diff", "--"])
    else:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git diff-index failed: {message[-1] if message else f'exit {proc.returncode}'}")
    tokens = out.split(b"\x00")
    changes = []
    index = 0
    while index < len(tokens):
        parts = tokens[index].lstrip(b":").split(b" ")
        index += 1
        if len(parts) < 5:
            continue
        status = parts[4][:1]
        # A rename or copy names two paths, the old one first.
        paths = tokens[index : index + (2 if status in (b"R", b"C") else 1)]
        index += len(paths)
        new_mode, old_sha, new_sha = parts[1].decode(), parts[2].decode(), parts[3].decode()
        if is_null(new_sha) or new_mode == "160000" or not paths:
            continue
        changes.append(StagedChange(display_path(paths[-1]), None if is_null(old_sha) else old_sha, new_sha))
    return changes


# Line ranges a patch adds to the new version: (first line, count), 1-based.
AddedLines = tuple[tuple[int, int], ...]

_PATCH_MARKS = re.compile(rb"\n(?:@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@|index ([0-9a-f]+)\.\.([0-9a-f]+)"
                          rb"|diff --git |Binary files |GIT binary patch)")


def staged_added_lines(repo: Repository) -> dict[tuple[str, str], AddedLines | None]:
    """For each (old blob, new blob) pair the staged change edits: the lines it adds.

    git computes the diff (``-U0``: hunks without context), in C and with its own bounds on
    pathological inputs. None for a pair git does not diff as text (binary, by content or
    attribute). Pure renames and mode changes have no entry: they add no lines.
    """
    args = ["diff-index", "--cached", "-p", "-U0", "-M", "--full-index", "--no-color", "--no-ext-diff",
            "--no-textconv", "HEAD", "--"]
    return parse_added_lines(run(repo, args))


def parse_added_lines(patch: bytes) -> dict[tuple[str, str], AddedLines | None]:
    """Parse ``-p -U0 --full-index`` output. Linear: only section headers and hunk headers are
    looked at, and a content line always starts with '+', '-', ' ' or '\\', never with one
    of the markers searched for."""
    result: dict[tuple[str, str], AddedLines | None] = {}
    key: tuple[str, str] | None = None
    ranges: list[tuple[int, int]] = []
    binary = False

    def close() -> None:
        if key is not None:
            result[key] = None if binary else tuple(ranges)

    for mark in _PATCH_MARKS.finditer(b"\n" + patch):
        text = mark.group(0)
        if text.startswith(b"\n@@"):
            count = int(mark.group(2)) if mark.group(2) is not None else 1
            if count:
                ranges.append((int(mark.group(1)), count))
        elif text.startswith(b"\nindex"):
            close()  # a type change is two sections, each with its own index line
            key = (mark.group(3).decode(), mark.group(4).decode())
            ranges, binary = [], False
        elif text.startswith(b"\ndiff"):
            close()
            key, ranges, binary = None, [], False
        else:
            binary = True
    close()
    return result


# --- keysweep audit: bare mirrors of remote repositories ---------------------------------

def _remote_env() -> dict[str, str]:
    # Never wait for a password or a host-key prompt: an audit runs unattended.
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "SSH_ASKPASS": "true"}
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes -o ConnectTimeout=20")
    return env


def _run_remote(args: Sequence[str], what: str, timeout: float, hide: tuple[str, str] | None = None) -> None:
    # protocol.ext.allow=never: a URL must not run a command (ext::), whatever the config says.
    command = [_git_executable(), "-c", "protocol.ext.allow=never", *args]
    try:
        proc = subprocess.run(command, capture_output=True, env=_remote_env(), timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise GitError(f"{what}: timed out after {timeout:.0f}s") from None
    except OSError as exc:
        raise GitError(f"{what}: {exc}") from None
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.decode("utf-8", "replace").strip().splitlines() if line.strip()]
        # git's reason is its "fatal:" line; what follows is advice ("Please make sure ...").
        reasons = [line for line in lines if line.startswith(("fatal:", "error:"))] or lines
        reason = reasons[0] if reasons else f"git exit {proc.returncode}"
        if hide is not None:  # (URL with a password, the same URL as shown)
            reason = reason.replace(*hide)
        raise GitError(f"{what}: {reason}")


def clone_mirror(url: str, dest: Path, *, timeout: float, shown: str | None = None) -> None:
    """A bare mirror of ``url`` at ``dest``, made in a temporary folder first (a failed
    clone leaves nothing behind that a later run could mistake for a mirror)."""
    import tempfile

    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp"))
    try:
        _run_remote(["clone", "--mirror", "--quiet", "--", url, str(temp / "repo")], f"cannot clone {shown or url}",
                    timeout, (url, shown or url))
        try:
            os.rename(temp / "repo", dest)
        except OSError:
            if not dest.exists():  # else another worker of this machine made it first: use theirs
                raise
    finally:
        import shutil

        shutil.rmtree(temp, ignore_errors=True)


def fetch_mirror(url: str, git_dir: Path, *, timeout: float, shown: str | None = None) -> None:
    """Bring a mirror up to date (refs removed upstream are removed here too)."""
    _run_remote(["--git-dir", str(git_dir), "fetch", "--prune", "--quiet", "--", url,
                 "+refs/*:refs/*"], f"cannot fetch {shown or url}", timeout, (url, shown or url))


def refs_digest(repo: Repository) -> str:
    """A hash of every ref and where it points: equal digests, equal reachable history."""
    import hashlib

    out = run(repo, ["for-each-ref", "--format=%(objectname) %(refname)"])
    stash = "\n".join(stash_commits(repo)) if b" refs/stash\n" in out else ""
    return hashlib.sha256(out + b"\0" + stash.encode()).hexdigest()


def remote_url(repo: Repository, name: str = "origin") -> str | None:
    """The URL of a remote as configured (may hold credentials: callers strip them), or None."""
    url = run(repo, ["remote", "get-url", name], check=False).decode("utf-8", "replace").strip()
    return url or None
