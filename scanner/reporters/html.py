"""The HTML audit report: one self-contained file, made to be shared, so secrets are always redacted.

Jinja2 (autoescaping) renders it; it is imported only here, so a plain scan never loads it.
Everything a repository supplies (paths, author names, commit subjects) reaches the page only
through autoescaped template variables: never in a script, never in a style. The inline script
and style are fixed text whose hashes the Content-Security-Policy names, so the page can make
no request and run no other script.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scanner import __version__
from scanner.engine.rules import RuleSet
from scanner.errors import UsageError
from scanner.findings import Finding, RemediationOutcome, ScanReport

if TYPE_CHECKING:
    import jinja2

VERIFICATION_STATES = ("valid", "invalid", "unknown", "canary", "not verified")
SEVERITIES = ("critical", "high", "medium", "low", "info")
# Rows per table in the findings and by-path lists: off-screen tables are skipped by the
# browser's style and layout (content-visibility), so only a few of them cost anything at load.
CHUNK_ROWS = 500
# Web hosts whose commit pages live at <base>/commit/<sha> (GitLab: /-/commit/).
_COMMIT_PATHS = {"github.com": "/commit/", "gitlab.com": "/-/commit/"}
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?([^:/]+):(?!//)(.+)$")


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One line of an audit log, as the report needs it."""

    key_id: str
    action: str
    result: str
    time: str = ""
    dry_run: bool = False


@dataclass(frozen=True)
class HtmlContext:
    """What the report shows beyond the ScanReport itself."""

    scope: str = "work tree and history"
    targets: tuple[str, ...] = ()
    started: datetime.datetime | None = None
    # repository (target) -> web base URL, e.g. https://github.com/acme/app
    web_remotes: Mapping[str, str] = field(default_factory=dict)
    audit_records: tuple[AuditRecord, ...] = ()
    repository_errors: tuple[str, ...] = ()


def web_base(remote: str | None) -> str | None:
    """The https base of a GitHub or GitLab repository from a remote URL, credentials removed.

    Handles https://[user[:token]@]host/owner/repo(.git), ssh://git@host[:port]/owner/repo.git and
    git@host:owner/repo.git. Any other host or form gives None (the report shows the commit id).
    """
    if not remote:
        return None
    remote = remote.strip()
    host: str | None
    path: str
    if "://" in remote:
        parts = urlsplit(remote)
        if parts.scheme not in ("https", "http", "ssh", "git", "git+ssh", "ssh+git"):
            return None
        host, path = parts.hostname, parts.path  # hostname drops any user:token@ and port
    else:
        match = _SCP_LIKE.match(remote)
        if match is None:
            return None
        host, path = match.group(1).lower(), "/" + match.group(2)
    if host is None or host not in _COMMIT_PATHS:
        return None
    path = path.rstrip("/").removesuffix(".git")
    segments = [s for s in path.split("/") if s]
    # owner/repo on GitHub; GitLab allows nested groups. Nothing that could leave the path.
    if len(segments) < 2 or (host == "github.com" and len(segments) != 2):
        return None
    if any(not re.fullmatch(r"[A-Za-z0-9_.-]+", s) or s in (".", "..") for s in segments):
        return None
    return f"https://{host}/" + "/".join(segments)


def commit_url(base: str | None, sha: str) -> str | None:
    if base is None or not re.fullmatch(r"[0-9a-f]{7,64}", sha):
        return None
    host = urlsplit(base).hostname or ""
    return base + _COMMIT_PATHS.get(host, "/commit/") + sha


def read_audit_log(path: Path) -> tuple[AuditRecord, ...]:
    """JSON-lines records of {key_id, action, result}; other lines are skipped, not fatal."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UsageError(f"cannot read the audit log {path}: {exc.strerror or exc}") from None
    records = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        key_id, action, result = entry.get("key_id"), entry.get("action"), entry.get("result")
        if isinstance(key_id, str) and isinstance(action, str) and isinstance(result, str):
            records.append(AuditRecord(key_id, action, result, str(entry.get("time") or ""),
                                       bool(entry.get("dry_run", False))))
    return tuple(records)


def severity_of(finding: Finding) -> str:
    """The finding's own severity when it has one; else: live pair high, lone key ID medium,
    canary or invalid low."""
    severity = getattr(finding, "severity", None)
    if isinstance(severity, str) and severity:
        return severity
    status = finding.verification.status if finding.verification else None
    if finding.canary or status in ("canary", "invalid"):
        return "low"
    if status == "valid" or finding.pair is not None:
        return "high"
    return "medium"


def verification_of(finding: Finding) -> str:
    status = finding.verification.status if finding.verification else None
    return status if status in ("valid", "invalid", "unknown", "canary") else "not verified"


def _key_ids(findings: Sequence[Finding]) -> dict[str, str]:
    """fingerprint -> full key ID (in memory only) for each finding that is or pairs with a key ID."""
    by_print = {f.fingerprint: f for f in findings}
    result = {}
    for finding in findings:
        if finding.secret.kind == "key-id":
            result[finding.fingerprint] = finding.secret.reveal()
            continue
        partner = by_print.get(finding.pair) if finding.pair else None
        if partner is not None and partner.secret.kind == "key-id":
            result[finding.fingerprint] = partner.secret.reveal()
    return result


_RESULT_RANK = {"ok": 0, "already-deleted": 0, "already-inactive": 0, "planned": 1, "not-found": 2,
                "refused": 3, "failed": 4}


def _remediation_by_key(outcomes: Iterable[RemediationOutcome], records: Iterable[AuditRecord]) -> dict[str, str]:
    """key ID -> what was done last, in words: "deleted", "deactivated", "planned: deactivate"..."""
    steps: dict[str, list[tuple[str, str, bool]]] = {}
    for record in records:
        steps.setdefault(record.key_id, []).append((record.action, record.result, record.dry_run))
    for outcome in outcomes:
        steps.setdefault(outcome.key_id, []).append((outcome.action, outcome.result, outcome.dry_run))
    words = {}
    for key_id, entries in steps.items():
        done = [a for a, r, dry in entries if not dry and r in ("ok", "already-inactive", "already-deleted")]
        if "delete" in done:
            words[key_id] = "deleted"
        elif "deactivate" in done:
            words[key_id] = "deactivated"
        else:
            action, result, _ = max(entries, key=lambda e: _RESULT_RANK.get(e[1], 0))
            words[key_id] = f"{result}: {action}" if action != "none" else result
    return words


def _month(date: str) -> str | None:
    return date[:7] if re.match(r"\d{4}-\d{2}", date) else None


def _months_between(first: str, last: str) -> list[str]:
    year, month = int(first[:4]), int(first[5:7])
    end = (int(last[:4]), int(last[5:7]))
    months: list[str] = []
    while (year, month) <= end and len(months) < 1200:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def timeline(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Bars for the SVG: leaks introduced per month, stacked by verification state."""
    per_month: dict[str, Counter[str]] = {}
    undated = 0
    for row in rows:
        month = _month(row["date"]) if row["date"] else None
        if month is None:
            undated += 1
            continue
        per_month.setdefault(month, Counter())[row["verification"]] += 1
    if not per_month:
        return {"bars": [], "undated": undated, "width": 0, "height": 0, "ticks": [], "max": 0}
    months = _months_between(min(per_month), max(per_month))
    # Label space left and below; each month a slot at least 8 px wide, the chart at most 1100.
    left, bottom, top, plot_height = 40, 28, 10, 120
    slot = max(8.0, min(64.0, 1060 / len(months)))
    peak = max(sum(c.values()) for c in per_month.values())
    scale = plot_height / peak
    bars = []
    for index, month in enumerate(months):
        counts = per_month.get(month, Counter())
        y: float = top + plot_height
        segments = []
        for state in VERIFICATION_STATES:
            count = counts.get(state, 0)
            if count:
                height = count * scale
                y -= height
                segments.append({"state": state, "count": count, "y": round(y, 1), "height": round(height, 1)})
        label = month if len(months) <= 24 or month.endswith("-01") else ""
        bars.append({"month": month, "x": round(left + index * slot + slot * 0.15, 1),
                     "width": round(slot * 0.7, 1), "segments": segments, "total": sum(counts.values()),
                     "label": label, "label_x": round(left + index * slot + slot / 2, 1)})
    steps = sorted({0, peak // 2, peak})
    ticks = [{"value": v, "y": round(top + plot_height - v * scale, 1)} for v in steps]
    return {"bars": bars, "undated": undated, "width": round(left + len(months) * slot + 10),
            "height": top + plot_height + bottom, "baseline": top + plot_height, "left": left, "ticks": ticks,
            "max": peak}


def _flags(finding: Finding) -> str:
    access = getattr(finding, "access", None)
    flags = getattr(access, "flags", None) if access is not None else None
    if not flags:
        return ""
    return ", ".join(str(f) for f in flags)


def _pushed(finding: Finding) -> str:
    exposure = getattr(finding, "exposure", None)
    pushed = getattr(exposure, "pushed", None) if exposure is not None else None
    if pushed is None:
        return ""
    return "yes" if pushed else "no"


def _lives(finding: Finding) -> str:
    """Where the secret still lives, in a few words (the text report says it at length):
    HEAD, the first refs reaching its commit, or no ref at all."""
    if finding.in_head is None:
        return ""
    if finding.in_head:
        return "HEAD"
    if finding.refs is None:
        return "history"
    if not finding.refs:
        return "unreachable"
    more = max(finding.refs_total, len(finding.refs)) - min(len(finding.refs), LIVES_REFS)
    return "history: " + ", ".join(finding.refs[:LIVES_REFS]) + (f" +{more}" if more > 0 else "")


LIVES_REFS = 2


def finding_rows(report: ScanReport, context: HtmlContext, ruleset: RuleSet) -> list[dict[str, Any]]:
    key_ids = _key_ids(report.findings)
    remediation = _remediation_by_key(report.remediation, context.audit_records)
    rows: list[dict[str, Any]] = []
    for number, finding in enumerate(report.findings):
        repository = getattr(finding, "repository", None) or report.target
        commit = finding.commit
        try:
            description = ruleset.by_id(finding.rule_id).description
        except KeyError:
            description = finding.rule_id
        key_id = key_ids.get(finding.fingerprint)
        place = finding.path if finding.path is not None else finding.source
        rows.append({
            "n": number,
            "severity": severity_of(finding),
            "rule": finding.rule_id,
            "description": description,
            "kind": finding.secret.kind,
            # Always the redacted form: the report is made to be shared.
            "secret": finding.secret.redacted,
            "repository": str(repository),
            "path": place,
            "line": finding.line,
            "source": finding.source,
            "commit": commit.sha if commit else "",
            "commit_url": commit_url(context.web_remotes.get(str(repository)), commit.sha) if commit else None,
            "subject": commit.summary if commit else "",
            "author": commit.author if commit else "",
            "email": commit.email if commit else "",
            "date": commit.date if commit else "",
            "pushed": _pushed(finding),
            "lives": _lives(finding),
            "verification": verification_of(finding),
            "arn": finding.verification.arn if finding.verification and finding.verification.arn else "",
            "flags": _flags(finding),
            "remediation": remediation.get(key_id, "") if key_id else "",
            "reachable": finding.reachable,
        })
    # Worst first: severity, then live keys, then the newest leak.
    state_rank = {state: index for index, state in enumerate(VERIFICATION_STATES)}
    severity_rank = {severity: index for index, severity in enumerate(SEVERITIES)}
    rows.sort(key=lambda r: r["date"], reverse=True)
    rows.sort(key=lambda r: (severity_rank.get(r["severity"], len(SEVERITIES)), state_rank[r["verification"]]))
    return rows


def _group(rows: Sequence[Mapping[str, Any]], key: str) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for row in rows:
        name = row[key] or "(not committed)"
        group = groups.setdefault(name, {"name": name, "findings": 0, "valid": 0, "repositories": set(),
                                         "first": "", "last": "", "email": row.get("email", "")})
        group["findings"] += 1
        group["valid"] += row["verification"] == "valid"
        group["repositories"].add(row["repository"])
        if row["date"]:
            group["first"] = min(group["first"] or row["date"], row["date"])
            group["last"] = max(group["last"], row["date"])
    result = sorted(groups.values(), key=lambda g: (-g["valid"], -g["findings"], g["name"]))
    for group in result:
        group["repositories"] = len(group["repositories"])
    return result


def _by_path(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        group = groups.setdefault((row["repository"], row["path"]), {
            "repository": row["repository"], "path": row["path"], "findings": 0, "valid": 0, "commits": set()})
        group["findings"] += 1
        group["valid"] += row["verification"] == "valid"
        if row["commit"]:
            group["commits"].add(row["commit"])
    result = sorted(groups.values(), key=lambda g: (-g["valid"], -g["findings"], g["repository"], g["path"]))
    for group in result:
        group["commits"] = len(group["commits"])
    return result


def _optional_columns(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Lives, Pushed, Access and Remediation are shown only when some finding has a value for them:
    fewer cells for the browser, more room for the path."""
    names = {"lives": "lives", "pushed": "pushed", "flags": "access", "remediation": "remediation"}
    shown = {key: any(row[key] for row in rows) for key in names}
    return {**shown, "left_out": [names[key] for key, present in shown.items() if not present]}


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


# A URL's user and password (https://user:token@host/..., or a token as the user name) are
# dropped wherever a URL stands in a shown text: a target, a repository name, an error message.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/?#@]*@")
# One shown text at most this long (a path can be kilobytes, on every row).
MAX_TEXT = 1000


def _shown(redact: Callable[[str], str]) -> Callable[[Any], Any]:
    """Jinja's finalize: every text a template prints passes here first, then autoescaping.

    Values found by the scan are redacted (again: whatever the caller did), credentials in URLs
    dropped, control and bidirectional-override characters shown as escapes (so a name cannot
    reorder what the reader sees), and the text cut to MAX_TEXT characters, after redaction,
    so no cut leaves part of a secret. Markup (the page's own style and script) passes as is."""
    from markupsafe import Markup

    from scanner.reporters.text import escape_control

    done: dict[str, str] = {}  # one render: most texts (states, rules, authors, dates) repeat

    def finalize(value: Any) -> Any:
        if not isinstance(value, str) or isinstance(value, Markup):
            return value
        shown = done.get(value)
        if shown is None:
            shown = done[value] = clean(value)
        return shown

    def clean(value: str) -> str:
        text = redact(value)
        if "@" in text:
            text = _URL_USERINFO.sub(r"\1", text)
        text = escape_control(text)
        return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + f"\u2026 ({len(text)} characters)"

    return finalize


def _environment(finalize: Callable[[Any], Any] | None = None) -> jinja2.Environment:
    import jinja2  # here: only an HTML report pays for it

    return jinja2.Environment(
        loader=jinja2.PackageLoader("scanner.reporters", "templates"),
        autoescape=True,  # every template variable escaped; the templates end in .j2
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=finalize,
    )


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s"


def render_html(report: ScanReport, ruleset: RuleSet, context: HtmlContext | None = None) -> str:
    context = context or HtmlContext()
    from scanner.redact import redactor_for

    rows = finding_rows(report, context, ruleset)
    environment = _environment(_shown(redactor_for(f.secret for f in report.findings)))
    assert environment.loader is not None
    # The style and script go into the page verbatim, so the CSP can name them by hash.
    style = environment.loader.get_source(environment, "report.css")[0]
    script = environment.loader.get_source(environment, "report.js")[0]
    started = context.started or datetime.datetime.now(datetime.timezone.utc)
    by_severity = Counter(row["severity"] for row in rows)
    by_verification = Counter(row["verification"] for row in rows)
    by_remediation = Counter(row["remediation"] for row in rows if row["remediation"])
    severities = [s for s in SEVERITIES if by_severity.get(s)] + sorted(set(by_severity) - set(SEVERITIES))
    repositories = sorted({row["repository"] for row in rows} or {report.target})
    csp = ("default-src 'none'; form-action 'none'; base-uri 'none'; "
           f"style-src {_csp_hash(style)}; script-src {_csp_hash(script)}")
    template = environment.get_template("report.html.j2")
    page: str = template.render(
        csp=csp, style=style, script=script, version=__version__, report=report, context=context,
        targets=context.targets or (report.target,), repositories=repositories, scope=context.scope,
        started=started.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        duration=_duration(report.duration_seconds), bytes_read=_human_bytes(report.bytes_scanned),
        rows=rows, chunk_rows=CHUNK_ROWS, optional=_optional_columns(rows), severities=severities,
        by_severity=by_severity, by_verification=by_verification,
        verification_states=VERIFICATION_STATES, by_remediation=sorted(by_remediation.items()),
        timeline=timeline(rows), by_author=_group(rows, "author"), by_path=_by_path(rows),
        live_keys=len({f.secret.digest for f in report.findings
                       if f.secret.kind == "key-id" and verification_of(f) == "valid"}),
    )
    return page
