"""What a change introduces: the staged change (pre-commit) and a commit range (CI).

Both report only secrets the change adds: a secret already present in the version a
change replaces is not reported again because its file was edited.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from scanner.engine.detect import Match, as_scannable, detect
from scanner.engine.rules import RuleSet, switched_off_messages
from scanner.findings import Finding, findings_from_matches
from scanner.sources import git
from scanner.sources.git import AddedLines, Repository, StagedChange

if TYPE_CHECKING:
    # The history machinery (its workers, the log walk) is imported by scan_range only: the
    # pre-commit hook (scan_staged) never loads it.
    from scanner.sources.history import HistoryScan, Progress


@dataclass
class StagedScan:
    """What scan_staged found: the fields of a HistoryScan that a staged change has."""

    findings: list[Finding]
    blobs: int
    commits: int
    bytes: int
    warnings: list[str]
    skipped: list[tuple[str, str]]  # (path, reason)
    errors: list[str] = field(default_factory=list)


def _on_added_line(line: int, added: AddedLines) -> bool:
    index = bisect.bisect_right(added, line, key=lambda span: span[0]) - 1
    return index >= 0 and added[index][0] <= line < added[index][0] + added[index][1]


def scan_staged(repo: Repository, ruleset: RuleSet, max_size: int, *, paths: frozenset[str] | None = None,
                changes: Sequence[StagedChange] | None = None) -> StagedScan:
    """Secrets on the lines the staged change adds.

    Each staged blob is scanned whole, so a secret confirmed by the line above it (a YAML
    key, then its value) is found when only the value line is new; a match is kept when
    git's diff of the file (-U0, renames followed) adds its line and the old version of the
    file does not already hold the same value. Every step is linear: git diffs, and the
    old version is read and scanned only for a file whose new lines hold matches.
    ``changes``: git.staged_changes(repo) when the caller has it already (one git process less).
    """
    changes = git.staged_changes(repo) if changes is None else list(changes)
    if paths is not None:
        # The files pre-commit passed (its exclude: applies; a batch of a long list is its own run).
        changes = [change for change in changes if change.path in paths]
    skipped: list[tuple[str, str]] = []
    blobs = total = 0
    contents = {obj.sha: obj for obj in git.read_objects(repo, sorted({c.new for c in changes}))}
    errors = [f"staged object {o.sha} could not be read ({o.problem})" for o in contents.values() if o.data is None]
    found: list[tuple[StagedChange, tuple[Match, ...]]] = []
    for change in changes:
        obj = contents.get(change.new)
        if obj is None or obj.data is None:
            continue
        if len(obj.data) > max_size:
            skipped.append((change.path, f"larger than the {max_size}-byte limit ({len(obj.data)} bytes)"))
            continue
        blobs += 1
        total += len(obj.data)
        text = as_scannable(obj.data)
        matches = tuple(detect(text, ruleset)) if text is not None else ()
        if matches:
            found.append((change, matches))
    contents.clear()
    edited = [(change, matches) for change, matches in found if change.old is not None]
    # Only when an edited file holds matches: the common commit is two git processes.
    added = git.staged_added_lines(repo) if edited else {}
    old_values = _values_in(repo, {change.old for change, _ in edited if change.old is not None}, ruleset, max_size)
    findings: list[Finding] = []
    for change, matches in found:
        if change.old is not None:
            lines = added.get((change.old, change.new), added.get(("0" * len(change.new), change.new)))
            before = old_values.get(change.old, set())
            kept = [m for m in matches if (m.rule_id, m.secret.reveal()) not in before
                    and (lines is None or _on_added_line(m.line, lines))]
            matches = _reindex(matches, kept)
        findings += findings_from_matches(matches, path=change.path, source="staged", blob=change.new)
    return StagedScan(findings, blobs, 0, total, [], skipped, errors)


def _values_in(repo: Repository, shas: set[str], ruleset: RuleSet, max_size: int) -> dict[str, set[tuple[str, str]]]:
    """The (rule, value) pairs each blob holds: what an edit of it does not introduce.

    One ``cat-file`` for all of them; a blob that cannot be read or is too large holds none.
    """
    values: dict[str, set[tuple[str, str]]] = {}
    for obj in git.read_objects(repo, sorted(shas)):
        text = as_scannable(obj.data) if obj.data is not None and len(obj.data) <= max_size else None
        values[obj.sha] = {(m.rule_id, m.secret.reveal()) for m in detect(text, ruleset)} if text else set()
    return values


def _reindex(original: Sequence[Match], kept: Sequence[Match]) -> tuple[Match, ...]:
    """Keep a subset of matches, with pair links pointing into the subset (or dropped)."""
    position = {id(m): i for i, m in enumerate(kept)}
    result = []
    for match in kept:
        pair = position.get(id(original[match.pair])) if match.pair is not None else None
        token = position.get(id(original[match.session_token])) if match.session_token is not None else None
        result.append(match._replace(pair=pair, session_token=token))
    return tuple(result)


def scan_range(repo: Repository, ruleset: RuleSet, revisions: Sequence[str], *, max_size: int, jobs: int,
               progress: Progress | None = None) -> HistoryScan:
    """``revisions`` are git log arguments: one range ``A..B``, or a list such as
    ``[B, "--not", "--remotes=origin"]`` (what a push of a new branch sends)."""
    from scanner.sources.history import (
        Change,
        CommitRecord,
        HistoryScan,
        earliest_findings,
        redact_summary,
        scan_objects,
        walk_log,
    )

    revisions = list(revisions)
    warnings_first: list[str] = []
    if len(revisions) == 1:
        start, dots, end = revisions[0].partition("..")
        if dots and git.is_null(start.strip(".")):
            # A CI "before" of all zeros: the branch is new, so everything it carries is new.
            end = end.lstrip(".") or "HEAD"
            revisions = [end]
            warnings_first.append(f"range starts at the null commit (a new branch): scanning all history of {end}")
        git.resolve_range(repo, revisions[0])
    records: dict[str, CommitRecord] = {}
    changes: list[Change] = []
    for item in walk_log(repo, revisions, renames=True):
        if isinstance(item, CommitRecord):
            records[item.info.sha] = item
        else:
            changes.append(item)
    wanted = sorted({c.new for c in changes} | set(records))
    infos = list(git.object_infos(repo, wanted))
    too_large = {i.sha: i.size for i in infos if i.kind == "blob" and i.size > max_size}
    skipped = [(c.path, f"blob {c.new[:12]} larger than the {max_size}-byte limit ({too_large[c.new]} bytes)")
               for c in changes if c.new in too_large]
    to_scan = [i for i in infos if i.kind == "commit" or (i.kind == "blob" and i.size <= max_size)]
    scanned = scan_objects(repo, to_scan, ruleset, jobs, progress)
    records = {sha: redact_summary(record, scanned.found.get(sha)) for sha, record in records.items()}
    warnings = warnings_first
    errors = [f"object {sha} could not be read ({problem})" for sha, problem in scanned.problems]
    errors += switched_off_messages(ruleset, [(event, f"object {sha}") for event, sha in scanned.timeouts])

    # What each replaced version already held. A blob the range itself scanned is known
    # (the old side of most edits is the previous commit's new side); the rest (the range's
    # base) is read and scanned once, through one cat-file, not a git process per blob.
    scanned_blobs = {i.sha for i in to_scan if i.kind == "blob"} - {sha for sha, _ in scanned.problems}
    replaced = {old for change in changes if change.new in scanned.found for old in change.old}
    before_values = _values_in(repo, replaced - scanned_blobs, ruleset, max_size)
    for sha in replaced & scanned_blobs:
        known = scanned.found.get(sha)
        before_values[sha] = {(m.rule_id, m.secret.reveal()) for m in known.matches} if known else set()

    candidates: list[tuple[CommitRecord | None, Finding]] = []
    for change in changes:
        found = scanned.found.get(change.new)
        if found is None:
            continue
        before = set().union(*(before_values.get(old, set()) for old in change.old))
        kept = [m for m in found.matches if (m.rule_id, m.secret.reveal()) not in before]
        if not kept:
            continue
        record = records[change.commit]
        for finding in findings_from_matches(_reindex(found.matches, kept), path=change.path, source="git-blob",
                                             commit=record.info, blob=change.new):
            candidates.append((record, finding))
    for sha, record in records.items():
        found = scanned.found.get(sha)
        if found is not None:
            for finding in findings_from_matches(found.matches, path=None, source="commit-message", commit=record.info):
                candidates.append((record, finding))
    return HistoryScan(earliest_findings(candidates), scanned.blobs, scanned.commits, scanned.bytes, warnings, skipped,
                       errors)

