"""Exposure known offline: when a secret leaked, by whom, and whether that commit left the machine."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from scanner.errors import GitError
from scanner.findings import Exposure, Finding, evolve


def add_exposure(findings: Sequence[Finding], target: Path) -> tuple[list[Finding], list[str]]:
    """Each finding with an ``exposure``: leak date and author from its commit, and ``pushed``.

    ``pushed`` is True when a remote-tracking branch or tag reaches the introducing commit,
    False when only local refs do (or the secret is in no commit: a file on disk, a staged
    change), None when there is no repository or no commit to ask about.
    Returns the findings and warnings (git failing here is not worth failing the scan).
    """
    from scanner.sources.git import find_repository, published_commits

    warnings: list[str] = []
    commits = {f.commit.sha for f in findings if f.commit is not None}
    published: dict[str, bool] = {}
    repo = None
    try:
        repo = find_repository(target, search_parents=True) if target.exists() else None
        if repo is not None and commits:
            published = published_commits(repo, commits)
    except GitError as exc:
        warnings.append(f"cannot tell whether the leaking commits were pushed: {exc}")
    result = []
    for finding in findings:
        pushed: bool | None
        if finding.commit is not None:
            pushed = published.get(finding.commit.sha)
        elif finding.source in ("file", "staged") and repo is not None:
            pushed = False  # on disk or staged, in no commit history reports: not pushed from here
        else:
            pushed = None
        exposure = Exposure(
            leaked_at=(finding.commit.date or None) if finding.commit else None,  # a dateless tag: unknown
            leaked_by=finding.commit.author if finding.commit else None,
            pushed=pushed,
        )
        result.append(evolve(finding, exposure=exposure))
    return result, warnings
