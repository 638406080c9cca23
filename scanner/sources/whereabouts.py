"""Where a found secret still lives: in HEAD (or the work tree) today, and which refs reach
the commit that introduced it.

Cost (why it is done this way): asking git per commit (``git branch --contains``, ``git tag
--contains``) walks the history once per finding's commit, and per ref kind: quadratic on a
repository with many findings. Instead one ``for-each-ref`` names the refs, and one
``rev-list --parents --topo-order`` walk propagates ref reachability from children to
parents as a bit set per commit (bit i: ref i reaches it). Topological order shows every
child before its parent, so a commit's set is complete when it is read; it is then handed to
its parents and dropped. Memory is the walk's frontier (commits read as parents but not yet
themselves) times one bit per ref, never the whole history; the walk stops as soon as every
commit asked about has been read. HEAD's tree is listed once (``ls-tree -r``) and matched
against the blobs the history scan found values in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from scanner.findings import Finding
from scanner.sources import git
from scanner.sources.git import RefTip, Repository

# Refs kept per finding (in priority order), so a report on a repository with thousands of
# tags (or pull-request refs) stays proportional to its findings; refs_total counts them all.
MAX_REFS = 100
_KIND_ORDER = ("refs/heads/", "refs/remotes/", "refs/tags/", "refs/stash", "stash@{")


def _priority(tip: RefTip, head_ref: str | None) -> tuple[int, str]:
    if head_ref is not None and tip.full == head_ref:
        return (0, "")
    for rank, prefix in enumerate(_KIND_ORDER, start=1):
        if tip.full.startswith(prefix):
            return (rank, tip.name)
    return (len(_KIND_ORDER) + 1, tip.name)


def refs_reaching(repo: Repository, commits: Iterable[str]) -> dict[str, tuple[tuple[str, ...], int]]:
    """For each commit: the names of the refs whose history reaches it (the first MAX_REFS,
    in priority order) and how many there are. A commit no ref reaches: ((), 0)."""
    wanted = set(commits)
    if not wanted:
        return {}
    branch = git.head_branch(repo)
    head_ref = f"refs/heads/{branch}" if branch is not None else None
    tips = sorted((t for t in git.ref_tips(repo) if t.commit is not None), key=lambda t: _priority(t, head_ref))
    names = [t.name for t in tips]
    if len({t.commit for t in tips}) == 1:
        # Every ref at one commit (one branch, its tag...): every reachable commit is reached
        # by all of them, and the walk is not needed. The commits asked about are reachable.
        return {sha: _names((1 << len(tips)) - 1, names) for sha in wanted}
    # Older stash entries are no ref: the walk starts from them too (ref_tips named them).
    walk_output = git.start_topo_parents(repo, [t.target for t in tips if t.full.startswith("stash@{")])
    tip_bits: dict[str, int] = {}
    for bit, tip in enumerate(tips):
        assert tip.commit is not None
        tip_bits[tip.commit] = tip_bits.get(tip.commit, 0) | (1 << bit)
    found: dict[str, int] = {}
    frontier: dict[str, int] = {}
    walk = git.parse_parents(walk_output.chunks())
    try:
        for sha, parents in walk:
            mask = frontier.pop(sha, 0) | tip_bits.get(sha, 0)
            if sha in wanted:
                found[sha] = mask
                if len(found) == len(wanted):
                    break  # every commit asked about is complete: the rest of history is not needed
            if mask:
                for parent in parents:
                    frontier[parent] = frontier.get(parent, 0) | mask
    finally:
        walk.close()  # drops the rest of the walk's output when it ended early
    return {sha: _names(found.get(sha, 0), names) for sha in wanted}


def _names(mask: int, names: Sequence[str]) -> tuple[tuple[str, ...], int]:
    total = mask.bit_count()
    picked: list[str] = []
    while mask and len(picked) < MAX_REFS:
        low = mask & -mask
        picked.append(names[low.bit_length() - 1])
        mask ^= low
    return tuple(picked), total


def head_name(repo: Repository) -> str | None:
    branch = git.head_branch(repo)
    if branch is not None:
        return branch
    head = git.head_commit(repo)
    return f"detached at {head[:12]}" if head is not None else None


def add_whereabouts(repo: Repository, findings: Sequence[Finding], *, secrets_by_blob: dict[str, frozenset[str]],
                    worktree_secrets: set[str]) -> list[Finding]:
    """Each finding with ``in_head``, ``refs`` and ``refs_total``.

    ``in_head``: the value (by digest) is in a blob of HEAD's tree, or the work-tree scan found
    it (``worktree_secrets``). ``refs``: for a finding with a commit, the refs reaching it;
    for a tag message, the tag; a finding no ref reaches (``--all-objects``): (). A file on
    disk, or a blob found behind a ref without a commit, has refs None (nothing to ask).
    """
    if not findings:
        return []
    head_blobs = git.tree_blobs(repo, "HEAD")
    in_head_secrets = set(worktree_secrets)
    for blob in head_blobs.intersection(secrets_by_blob):
        in_head_secrets |= secrets_by_blob[blob]
    commits = {f.commit.sha for f in findings
               if f.commit is not None and f.source in ("git-blob", "commit-message") and f.reachable}
    reach = refs_reaching(repo, commits)
    tag_names: dict[str, list[str]] = {}
    if any(f.source == "tag-message" for f in findings):
        for tip in git.ref_tips(repo):
            tag_names.setdefault(tip.target, []).append(tip.name)
    result = []
    for finding in findings:
        refs: tuple[str, ...] | None
        total = 0
        if not finding.reachable:
            refs = ()
        elif finding.source == "tag-message" and finding.commit is not None:
            names = tag_names.get(finding.commit.sha, [])
            refs, total = tuple(names[:MAX_REFS]), len(names)
        elif finding.commit is not None and finding.commit.sha in reach:
            refs, total = reach[finding.commit.sha]
        else:
            refs = None
        result.append(replace(finding, in_head=finding.secret.digest in in_head_secrets, refs=refs, refs_total=total))
    return result
