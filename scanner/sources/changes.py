"""What a change introduces: the staged change (pre-commit) and a commit range (CI).

Both report only secrets the change adds: a secret already present in the version a
change replaces is not reported again because its file was edited.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import replace

from scanner.engine.detect import Match
from scanner.engine.rules import RuleSet
from scanner.findings import Finding, findings_from_matches
from scanner.sources import git
from scanner.sources.git import NULL_SHA, Repository
from scanner.sources.history import (
    Change,
    CommitRecord,
    HistoryScan,
    Progress,
    earliest_findings,
    redact_summary,
    scan_object,
    scan_objects,
    walk_log,
)


def _added_lines(old: bytes, new: bytes) -> set[int]:
    old_lines = old.splitlines()
    new_lines = new.splitlines()
    added: set[int] = set()
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for tag, _i1, _i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "insert"):
            added.update(range(j1 + 1, j2 + 1))
    return added


def scan_staged(repo: Repository, ruleset: RuleSet, max_size: int) -> HistoryScan:
    changes = git.staged_changes(repo)
    findings: list[Finding] = []
    skipped: list[tuple[str, str]] = []
    blobs = total = 0
    contents = {obj.sha: obj for obj in git.read_objects(repo, sorted({c.new for c in changes}))}
    warnings = [f"staged object {o.sha} could not be read ({o.problem})" for o in contents.values() if o.data is None]
    for change in changes:
        obj = contents.get(change.new)
        if obj is None or obj.data is None:
            continue
        if len(obj.data) > max_size:
            skipped.append((change.path, f"larger than the {max_size}-byte limit ({len(obj.data)} bytes)"))
            continue
        blobs += 1
        total += len(obj.data)
        matches = scan_object("blob", obj.data, ruleset)
        if not matches:
            continue
        if change.old is not None:
            old = next(git.read_objects(repo, [change.old])).data or b""
            added = _added_lines(old, obj.data)
            kept = [m for m in matches if m.line in added]
            matches = _reindex(matches, kept)
        findings += findings_from_matches(matches, path=change.path, source="staged", blob=change.new)
    return HistoryScan(findings, blobs, 0, total, warnings, skipped)


def _reindex(original: Sequence[Match], kept: Sequence[Match]) -> tuple[Match, ...]:
    """Keep a subset of matches, with pair links pointing into the subset (or dropped)."""
    position = {id(m): i for i, m in enumerate(kept)}
    result = []
    for match in kept:
        pair = position.get(id(original[match.pair])) if match.pair is not None else None
        token = position.get(id(original[match.session_token])) if match.session_token is not None else None
        result.append(replace(match, pair=pair, session_token=token))
    return tuple(result)


def scan_range(repo: Repository, ruleset: RuleSet, revisions: Sequence[str], *, max_size: int, jobs: int,
               progress: Progress | None = None) -> HistoryScan:
    """``revisions`` are git log arguments: one range ``A..B``, or a list such as
    ``[B, "--not", "--remotes=origin"]`` (what a push of a new branch sends)."""
    revisions = list(revisions)
    warnings_first: list[str] = []
    if len(revisions) == 1:
        start, dots, end = revisions[0].partition("..")
        if dots and start.strip(".") == NULL_SHA:
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
    warnings = warnings_first + [f"object {sha} could not be read ({problem})" for sha, problem in scanned.problems]

    old_values: dict[str, set[tuple[str, str]]] = {}

    def values_in(sha: str) -> set[tuple[str, str]]:
        if sha not in old_values:
            obj = next(git.read_objects(repo, [sha]))
            matches = scan_object("blob", obj.data, ruleset) if obj.data and len(obj.data) <= max_size else ()
            old_values[sha] = {(m.rule_id, m.secret.reveal()) for m in matches}
        return old_values[sha]

    candidates: list[tuple[CommitRecord | None, Finding]] = []
    for change in changes:
        found = scanned.found.get(change.new)
        if found is None:
            continue
        before: set[tuple[str, str]] = set()
        for old in change.old:
            before |= values_in(old)
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
    return HistoryScan(earliest_findings(candidates), scanned.blobs, scanned.commits, scanned.bytes, warnings, skipped)

