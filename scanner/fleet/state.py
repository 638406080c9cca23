"""What earlier audits saw, in SQLite: per repository, the objects already read and every
finding with when it was first and last seen and whether it is still there.

Never a secret: findings are stored by fingerprint with their redacted form; the secret is
read again from its object (a blob or a commit, by hash) when a finding is reported.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_args

from scanner import __version__
from scanner.engine.decode import DecodingKind
from scanner.engine.rules import RuleSet
from scanner.errors import UsageError
from scanner.findings import CommitInfo, Finding, Occurrences, findings_from_matches
from scanner.fleet.tasks import Known
from scanner.secret import KEY_ID_VISIBLE_CHARS, Secret
from scanner.sources.history import ObjectMatches

Status = Literal["open", "gone", "baselined"]
SCHEMA = """
CREATE TABLE IF NOT EXISTS repositories (
    id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, rules TEXT, refs TEXT, audited TEXT);
CREATE TABLE IF NOT EXISTS scanned (
    repo INTEGER NOT NULL, sha BLOB NOT NULL, PRIMARY KEY (repo, sha)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS findings (
    repo INTEGER NOT NULL, fingerprint TEXT NOT NULL, object TEXT NOT NULL, data TEXT NOT NULL,
    first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, status TEXT NOT NULL,
    PRIMARY KEY (repo, fingerprint));
"""
# The columns this version reads: a state another version wrote may lack some (CREATE TABLE IF
# NOT EXISTS leaves an existing table as it is).
COLUMNS = {
    "repositories": {"id", "name", "rules", "refs", "audited"},
    "scanned": {"repo", "sha"},
    "findings": {"repo", "fingerprint", "object", "data", "first_seen", "last_seen", "status"},
}


def default_state_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "keysweep" / "audit.sqlite"


def rules_digest(ruleset: RuleSet) -> str:
    """Objects read under other rules (or another keysweep) must be read again."""
    return hashlib.sha256(f"{__version__}\0{_canonical(ruleset.rules)}".encode()).hexdigest()


def _canonical(value: object) -> str:
    """A repr that is the same in every process (a frozenset's order depends on the hash seed)."""
    if isinstance(value, (frozenset, set)):
        return "{" + ",".join(sorted(_canonical(v) for v in value)) + "}"
    if isinstance(value, (tuple, list)):
        return "(" + ",".join(_canonical(v) for v in value) + ")"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return type(value).__name__ + "(" + ",".join(
            f"{f.name}={_canonical(getattr(value, f.name))}" for f in dataclasses.fields(value)) + ")"
    return repr(value)


@dataclass(frozen=True)
class StoredFinding:
    repository: str
    fingerprint: str
    object: str
    data: dict[str, Any]
    first_seen: str
    last_seen: str
    status: Status


def _object_of(finding: Finding) -> str:
    """The object to read the secret from again: its blob, or the commit or tag whose message holds it."""
    if finding.blob is not None:
        return finding.blob
    return finding.commit.sha if finding.commit is not None else ""


def finding_data(finding: Finding) -> dict[str, Any]:
    """Everything about a finding except the secret itself (its redacted form only)."""
    return {
        "rule_id": finding.rule_id, "kind": finding.secret.kind, "redacted": finding.secret.redacted,
        "path": finding.path, "line": finding.line, "column": finding.column, "source": finding.source,
        "commit": asdict(finding.commit) if finding.commit else None, "blob": finding.blob,
        "reachable": finding.reachable, "occurrences": asdict(finding.occurrences) if finding.occurrences else None,
        # What the report shows that the match gave (none of it secret: an account number, the
        # pairing by fingerprint): enough to rebuild the finding without reading its object.
        "account_id": finding.account_id, "canary": finding.canary, "decoded": finding.decoded,
        "pair": finding.pair, "session_token": finding.session_token, "bedrock": finding.bedrock is not None,
        # Where it lives, as the refs stood when it was recorded: a re-audit takes them from
        # here only while every ref (and HEAD) stands where it stood.
        "in_head": finding.in_head, "refs": list(finding.refs) if finding.refs is not None else None,
        "refs_total": finding.refs_total,
    }


def whereabouts_of(data: dict[str, Any]) -> dict[str, Any]:
    """``in_head``, ``refs`` and ``refs_total`` as stored, for ``dataclasses.replace`` on a
    Finding; unknown (None) when a state written before them, or a damaged one, lacks them."""
    in_head, refs, total = data.get("in_head"), data.get("refs"), data.get("refs_total")
    if not (in_head is None or isinstance(in_head, bool)):
        in_head = None
    if not (isinstance(refs, list) and all(isinstance(name, str) for name in refs)
            and isinstance(total, int) and not isinstance(total, bool) and total >= len(refs)):
        return {"in_head": in_head, "refs": None, "refs_total": 0}
    return {"in_head": in_head, "refs": tuple(refs), "refs_total": total}


# Written since the re-audit can rebuild findings without their objects; a state written
# before lacks them, and its findings are rebuilt from their objects as before.
STANDALONE_KEYS = frozenset({"account_id", "canary", "decoded", "pair", "session_token", "bedrock"})


@dataclass(frozen=True, slots=True)
class StoredSecret(Secret):
    """A secret known by its redacted form only, as the state keeps it. Its value was never
    stored: asking for it (or its digest) is a bug, and fails loudly rather than give a
    wrong value to a report, a redactor or AWS."""

    def reveal(self) -> str:
        raise LookupError("the audit state keeps no secret: this finding's value was not read")

    @property
    def digest(self) -> str:
        raise LookupError("the audit state keeps no secret: this finding's value was not read")


def standalone(stored: StoredFinding) -> Finding | None:
    """The finding as the state describes it, without its value (None: the state lacks
    something the report shows, so its object must be read)."""
    data = stored.data
    if not STANDALONE_KEYS <= data.keys() or data["bedrock"] is not False or data["kind"] not in _STANDALONE_KINDS:
        return None
    # A state file is read back as found: any field of another shape sends the finding to its object.
    if not (all(data[key] is None or isinstance(data[key], str) for key in ("account_id", "pair", "session_token"))
            and isinstance(data["canary"], bool) and isinstance(data["reachable"], bool)
            and (data["decoded"] is None or data["decoded"] in get_args(DecodingKind))
            and all(isinstance(data[key], int) and not isinstance(data[key], bool) for key in ("line", "column"))):
        return None
    redacted = data["redacted"]
    if data["kind"] == "key-id":
        if not (isinstance(redacted, str) and redacted.endswith("…") and len(redacted) == KEY_ID_VISIBLE_CHARS + 1):
            return None
        secret = StoredSecret("key-id", redacted[:-1])  # its .redacted is the stored form again
    else:
        secret = StoredSecret(data["kind"], "")
    if secret.redacted != redacted:
        return None
    commit = CommitInfo(**data["commit"]) if data["commit"] else None
    occurrences = Occurrences(**data["occurrences"]) if data["occurrences"] else None
    return Finding(rule_id=data["rule_id"], secret=secret, path=data["path"], line=data["line"], column=data["column"],
                   source=data["source"], fingerprint=stored.fingerprint, commit=commit, blob=data["blob"],
                   account_id=data["account_id"], canary=data["canary"], decoded=data["decoded"],
                   pair=data["pair"], session_token=data["session_token"], occurrences=occurrences,
                   reachable=data["reachable"], **whereabouts_of(data))


# A bearer token's report carries facts decoded from its value (BedrockKey): read again.
_STANDALONE_KINDS = frozenset({"key-id", "secret", "session-token", "smtp-password"})


DATA_KEYS = frozenset({"rule_id", "kind", "redacted", "path", "line", "column", "source", "commit", "blob", "reachable",
                       "occurrences"})
COMMIT_KEYS = frozenset(f.name for f in dataclasses.fields(CommitInfo))


def _stored_data(text: str) -> dict[str, Any]:
    """A finding's stored data, checked for the shape ``finding_data`` writes (ValueError if not)."""
    data = json.loads(text)
    if not isinstance(data, dict) or not DATA_KEYS <= data.keys():
        raise ValueError("a finding's data lacks fields this keysweep writes")
    commit = data["commit"]
    if commit is not None and (not isinstance(commit, dict) or set(commit) != COMMIT_KEYS):
        raise ValueError("a finding's commit has other fields than this keysweep writes")
    return data


def rebuild(stored: StoredFinding, found: ObjectMatches | None) -> Finding | None:
    """A finding from the state and its object's matches (None if the secret is not there)."""
    if found is None:
        return None
    data = stored.data
    commit = CommitInfo(**data["commit"]) if data["commit"] else None
    candidates = findings_from_matches(found.matches, path=data["path"], source=data["source"], commit=commit,
                                       blob=data["blob"], reachable=data["reachable"])
    for candidate in candidates:
        if candidate.fingerprint == stored.fingerprint:
            occurrences = Occurrences(**data["occurrences"]) if data["occurrences"] else None
            return replace(candidate, line=data["line"], column=data["column"], occurrences=occurrences,
                           **whereabouts_of(data))
    return None


def _stored(name: str) -> str:
    """A repository's name as the state keeps it: itself, or, for a path that is not UTF-8
    (a folder named with a byte like 0xff reaches Python as a lone surrogate, which SQLite
    cannot store), a form no other name can have (no path or URL holds a NUL)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "\x00fs:" + name.encode("utf-8", "surrogateescape").hex()
    return name


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


# How long an audit waits for a state another process holds (a concurrent audit commits one
# repository at a time: seconds at most).
LOCK_WAIT_SECONDS = 30.0


def _in_use(path: Path) -> UsageError:
    return UsageError(f"--state {path}: the audit state is in use by another process (still locked after "
                      f"{LOCK_WAIT_SECONDS:.0f} s); wait for it to finish and run again, or give --state another file")


class AuditState:
    """One SQLite file. Opened by the client only (workers never see it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=LOCK_WAIT_SECONDS)
            # WAL, synchronous=NORMAL: a commit per repository without an fsync each. A crash
            # can lose the last commits, which only makes the next audit read those objects again.
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
            missing = []
            for table, columns in COLUMNS.items():
                present = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
                missing += [f"{table}.{column}" for column in sorted(columns - present)]
        except (OSError, sqlite3.Error) as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc).lower():
                raise _in_use(path) from None
            raise UsageError(f"--state {path}: cannot open the audit state: {exc}") from None
        if missing:
            self.db.close()
            raise UsageError(f"--state {path}: not an audit state this keysweep can use (no column "
                             f"{', '.join(missing)}: another version wrote it?); give --state a new file, or move "
                             "this one away (the next audit then reads every object again)")

    def close(self) -> None:
        self.db.close()

    def _damaged(self, exc: Exception) -> UsageError:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc).lower():
            # Intact, and held by another process (an audit still running, a sqlite3 shell):
            # moving it away would throw the findings' history out.
            return _in_use(self.path)
        return UsageError(f"--state {self.path}: the audit state is damaged ({type(exc).__name__}: {exc}); give --state "
                          "a new file, or move this one away (the next audit then reads every object again)")

    def _repo_id(self, name: str) -> int | None:
        row = self.db.execute("SELECT id FROM repositories WHERE name = ?", (_stored(name),)).fetchone()
        return int(row[0]) if row else None

    def known(self, name: str, rules: str, *, objects: bool = True) -> Known:
        """What the state knows of a repository; ``objects=False`` leaves out the (large) set
        of objects already read, for ``scanned`` to fetch if the repository must be listed."""
        try:
            return self._known(name, rules, objects)
        except (sqlite3.Error, ValueError, TypeError) as exc:
            raise self._damaged(exc) from None

    def _known(self, name: str, rules: str, objects: bool) -> Known:
        row = self.db.execute("SELECT rules, refs FROM repositories WHERE name = ?", (_stored(name),)).fetchone()
        if row is None:
            return Known()
        stored_rules, refs = row
        live = self.live_findings(name)
        holders = frozenset(o for s in live if (o := s.object))
        if any("in_head" not in s.data for s in live):
            # Recorded by a keysweep that did not keep where findings live: the repository is
            # listed and attributed again (still reading only the objects not read before).
            refs = None
        if stored_rules != rules:
            return Known(finding_objects=holders)
        return Known(scanned=self.scanned(name) if objects else frozenset(), finding_objects=holders, refs=refs)

    def audit_of(self, name: str) -> str | None:
        """The audit run that last recorded the repository (None: unknown, or recorded by a
        keysweep that did not name its runs)."""
        try:
            row = self.db.execute("SELECT audited FROM repositories WHERE name = ?", (_stored(name),)).fetchone()
        except sqlite3.Error as exc:
            raise self._damaged(exc) from None
        text = row[0] if row else None
        return text.split(" ", 1)[1] if isinstance(text, str) and " " in text else None

    def scanned(self, name: str) -> frozenset[str]:
        """Objects of the repository already read (under the rules it was last audited with)."""
        query = "SELECT s.sha FROM scanned s JOIN repositories r ON r.id = s.repo WHERE r.name = ?"
        try:
            return frozenset(bytes(sha).hex() for (sha,) in self.db.execute(query, (_stored(name),)))
        except (sqlite3.Error, ValueError, TypeError) as exc:
            raise self._damaged(exc) from None

    def live_findings(self, name: str) -> list[StoredFinding]:
        """Findings still in the repository at the last audit: open or baselined, not gone."""
        return [s for s in self._findings(name, None) if s.status != "gone"]

    def _findings(self, name: str, status: str | None) -> list[StoredFinding]:
        try:
            return self._read_findings(name, status)
        except (sqlite3.Error, ValueError, TypeError) as exc:
            raise self._damaged(exc) from None

    def _read_findings(self, name: str, status: str | None) -> list[StoredFinding]:
        query = ("SELECT f.fingerprint, f.object, f.data, f.first_seen, f.last_seen, f.status FROM findings f "
                 "JOIN repositories r ON r.id = f.repo WHERE r.name = ?")
        params: tuple[str, ...] = (_stored(name),)
        if status is not None:
            query += " AND f.status = ?"
            params = (_stored(name), status)
        return [StoredFinding(name, fp, obj, _stored_data(data), first, last, st)
                for fp, obj, data, first, last, st in self.db.execute(query + " ORDER BY f.rowid", params)]

    def record(self, name: str, *, rules: str, refs: str, new_objects: Iterable[str], findings: Sequence[Finding],
               when: str, baselined: frozenset[str] = frozenset(), audit: str | None = None) -> list[StoredFinding]:
        """Remember one repository's audit (``findings``: every finding, baselined ones
        included); returns its findings as now stored (open, baselined and gone). ``audit``
        names the audit run, kept with the time (``audit_of``)."""
        try:
            self._record(name, rules=rules, refs=refs, new_objects=new_objects, findings=findings, when=when,
                         baselined=baselined, audited=f"{when} {audit}" if audit else when)
        except (sqlite3.Error, ValueError, TypeError) as exc:
            raise self._damaged(exc) from None
        return self._findings(name, None)

    def _record(self, name: str, *, rules: str, refs: str, new_objects: Iterable[str], findings: Sequence[Finding],
                when: str, baselined: frozenset[str], audited: str) -> None:
        with self.db:
            repo_id = self._repo_id(name)
            if repo_id is None:
                cursor = self.db.execute("INSERT INTO repositories (name) VALUES (?)", (_stored(name),))
                repo_id = int(cursor.lastrowid or 0)
            stored_rules = self.db.execute("SELECT rules FROM repositories WHERE id = ?", (repo_id,)).fetchone()[0]
            if stored_rules != rules:
                self.db.execute("DELETE FROM scanned WHERE repo = ?", (repo_id,))
            self.db.execute("UPDATE repositories SET rules = ?, refs = ?, audited = ? WHERE id = ?",
                            (rules, refs, audited, repo_id))
            self.db.executemany("INSERT OR IGNORE INTO scanned (repo, sha) VALUES (?, ?)",
                                ((repo_id, bytes.fromhex(sha)) for sha in new_objects))
            current = {f.fingerprint for f in findings}
            for finding in findings:
                self.db.execute(
                    "INSERT INTO findings (repo, fingerprint, object, data, first_seen, last_seen, status) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repo, fingerprint) DO UPDATE SET "
                    "object = excluded.object, data = excluded.data, last_seen = excluded.last_seen, "
                    "status = excluded.status",
                    (repo_id, finding.fingerprint, _object_of(finding), json.dumps(finding_data(finding)), when, when,
                     "baselined" if finding.fingerprint in baselined else "open"),
                )
            # A finding no longer produced is gone from every ref (history rewritten, branch
            # deleted): kept, with the last time it was seen, so a report can say so.
            for stored in self.live_findings(name):
                if stored.fingerprint not in current:
                    self.db.execute("UPDATE findings SET status = 'gone' WHERE repo = ? AND fingerprint = ?",
                                    (repo_id, stored.fingerprint))
