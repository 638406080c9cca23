"""The human report: one block per finding, then a summary. Colour only on a terminal."""

from __future__ import annotations

import re

from scanner.findings import Finding, ScanReport
from scanner.secret import Secret

# What a terminal acts on or a reader cannot see, from a repository's names and messages:
# control characters (C0, DEL and C1: ESC and CSI start terminal sequences, a newline forges
# a line), format characters (the bidirectional marks and overrides of "Trojan source",
# zero-width spaces and joiners, the byte order mark, the invisible "tag" letters that
# smuggle text to copy-paste and language tools), the line and paragraph separators (a line
# break to some viewers), lone surrogates (a name that is not UTF-8), and the fillers that
# render blank. By Unicode category, not a list: every such character, now and to come.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_FILLERS = frozenset("\u115f\u1160\u3164\uffa0")
_FILLER = re.compile("[\u115f\u1160\u3164\uffa0]")
_NOT_PLAIN_ASCII = re.compile("[^\x20-\x7e]")
_NON_ASCII = re.compile("[^\x00-\x7f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _unsafe(char: str) -> bool:
    import unicodedata  # here: only a text that is not plainly printable gets this far

    return char in _FILLERS or unicodedata.category(char) in _UNSAFE_CATEGORIES


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    if not _unsafe(char):
        return char
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def escape_control(text: str) -> str:
    """Text from a repository, safe to print on a terminal: control, format and invisible
    characters shown as escapes (as git quotes unusual paths), so a name cannot forge lines,
    repaint the screen, reorder or hide what a reader sees."""
    if text.isprintable() and _FILLER.search(text) is None:
        return text  # one C check: most names and messages
    return _NOT_PLAIN_ASCII.sub(_escape_one, text)


def _json_escape_one(match: re.Match[str]) -> str:
    char = match.group()
    if not _unsafe(char):
        return char
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    high, low = divmod(code - 0x10000, 0x400)  # JSON writes a character past U+FFFF as a surrogate pair
    return f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}"


def escape_json(text: str) -> str:
    """JSON text (from json.dumps with ensure_ascii=False, which escapes only C0 controls)
    with every character escape_control escapes written as a \\uXXXX escape: the same
    document, safe to cat. Outside strings JSON is ASCII, so only strings change."""
    if text.isascii():
        return text if "\x7f" not in text else text.replace("\x7f", "\\u007f")
    return _NON_ASCII.sub(_json_escape_one, text.replace("\x7f", "\\u007f"))


_RED, _YELLOW, _DIM, _BOLD, _RESET = "\033[31m", "\033[33m", "\033[2m", "\033[1m", "\033[0m"


def _place(finding: Finding) -> str:
    where = escape_control(finding.path) if finding.path is not None else f"({finding.source})"
    return f"{where}:{finding.line}:{finding.column}"


def render_text(report: ScanReport, *, show_secrets: bool, color: bool) -> str:
    def paint(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    from scanner.severity import by_severity

    by_print = {f.fingerprint: f for f in report.findings}
    lines: list[str] = []
    for finding in by_severity(report.findings):
        value = finding.secret.reveal() if show_secrets else finding.secret.redacted
        severity = f"[{finding.severity}]  " if finding.severity else ""
        lines.append(f"{paint(_BOLD, _place(finding))}  {severity}{paint(_RED, finding.rule_id)}  {value}")
        details = []
        if finding.repository is not None:
            details.append(f"repository {escape_control(finding.repository)}")
        if finding.commit is not None:
            c = finding.commit
            details.append(f"commit {escape_control(c.sha[:12])} by {escape_control(c.author)} <{escape_control(c.email)}> "
                           f"on {escape_control(c.date[:10])}: {escape_control(c.summary)}")
        lives = _whereabouts(finding, report.head)
        if lives:
            details.append(lives)
        if finding.source not in ("file", "git-blob", "staged"):
            details.append(f"found in {finding.source}" + ("" if finding.reachable else " (no ref reaches it)"))
        if finding.decoded:
            details.append(f"inside a {finding.decoded}-encoded value")
        if finding.account_id:
            details.append(f"account {finding.account_id}" + (" (known canary-token account)" if finding.canary else ""))
        if finding.pair and finding.pair in by_print:
            partner = by_print[finding.pair]
            details.append(f"paired with {partner.rule_id} at {_place(partner)}")
        if finding.occurrences and (finding.occurrences.commits > 1 or finding.occurrences.paths > 1):
            o = finding.occurrences
            details.append(f"also in {o.commits - 1} more commit(s), {o.paths} path(s) in all")
        if finding.verification is not None:
            v = finding.verification
            status = v.status + (f": {v.arn}" if v.arn else "") + (f" ({v.reason})" if v.reason else "")
            status = escape_control(status)
            details.append("verification: " + (paint(_RED, status) if v.status == "valid" else status))
        details += _incident_lines(finding, show_secrets)
        lines += [paint(_DIM, "    " + d) for d in details]
    lines.append(_summary_line(report))
    for skipped in report.skipped:
        lines.append(paint(_YELLOW, escape_control(f"skipped {skipped.path}: {skipped.reason}")))
    for error in report.errors:
        lines.append(paint(_RED, escape_control(f"incomplete: {error}")))
    return "\n".join(lines) + "\n"


# Refs named on a finding's line; the rest are counted (a release history has thousands of tags).
SHOWN_REFS = 5


def _whereabouts(finding: Finding, head: str | None) -> str:
    """Where the secret still lives: in HEAD today, only in history (and which refs reach it),
    or nowhere a ref reaches. Ref names are the repository's text: escaped."""
    if finding.in_head is None:
        return ""
    if finding.in_head:
        if finding.source == "file":
            return "in the work tree (not committed at this path)"
        return f"still in HEAD ({escape_control(head)})" if head else "still in HEAD or the work tree"
    if finding.refs is None:
        return "only in history"
    if not finding.refs:
        return "unreachable (no ref reaches it: only --all-objects finds it)"
    names = ", ".join(escape_control(name) for name in finding.refs[:SHOWN_REFS])
    more = max(finding.refs_total, len(finding.refs)) - min(len(finding.refs), SHOWN_REFS)
    return f"only in history; reachable from: {names}" + (f" and {more} more" if more > 0 else "")


def _yes_no(value: bool | None, yes: str, no: str) -> str:
    return "unknown" if value is None else yes if value else no


def _incident_lines(finding: Finding, show_secrets: bool) -> list[str]:
    """Exposure and access, for a finding that has them (access only for a verified live key)."""
    lines = []
    bedrock = finding.bedrock
    if bedrock is not None:
        if bedrock.term == "long-term":
            lines.append(f"Bedrock API key (long-term, IAM service-specific credential) {bedrock.name}")
        else:
            signer = bedrock.signer_key_id
            if signer and not show_secrets:
                signer = Secret("key-id", signer).redacted
            lines.append(f"Bedrock API key (short-term) signed by {signer or 'an unknown key'}"
                         f" in {bedrock.region or 'unknown region'}, expires {bedrock.expires_at or 'unknown'}")
    exposure = finding.exposure
    if exposure is not None and (exposure.pushed is not None or exposure.last_used is not None or exposure.errors):
        parts = [f"pushed: {_yes_no(exposure.pushed, 'yes (a remote branch or tag has the commit)', 'no (local refs only)')}"]
        if exposure.key_status or exposure.key_created:
            parts.append(f"key {exposure.key_status or 'status unknown'}, created {(exposure.key_created or 'unknown')[:10]}")
        if exposure.last_used is not None:
            used = exposure.last_used
            where = ", ".join(x for x in (used.service, used.region) if x)
            parts.append(f"last used {used.date} ({where})" if used.date else "never used")
            parts.append(f"used after the leak: {_yes_no(exposure.used_after_leak, 'YES', 'no')}")
        lines.append("exposure: " + "; ".join(parts))
        lines += [f"exposure: could not read: {e}" for e in exposure.errors]
    access = finding.access
    if access is not None:
        who = "ROOT USER (the account itself)" if access.root else access.principal or "unknown"
        lines.append(f"access: {who}" + (f"; groups: {', '.join(access.groups)}" if access.groups else ""))
        if access.policies:
            names = [p.name + ("" if p.attached_to in ("user", "role") else f" (via {p.attached_to})")
                     + (" [inline]" if p.kind == "inline" else "") for p in access.policies]
            lines.append("policies: " + ", ".join(names))
        lines.append("can: " + (", ".join(access.flags) if access.flags else "no admin, IAM-write or broad data-read found"))
        lines += [f"access: could not read: {e}" for e in access.errors]
    return lines


def _summary_line(report: ScanReport) -> str:
    n = len(report.findings)
    scanned = []
    if report.files_scanned:
        scanned.append(f"{report.files_scanned} file(s)")
    if report.blobs_scanned:
        scanned.append(f"{report.blobs_scanned} blob(s)")
    if report.commits_scanned:
        scanned.append(f"{report.commits_scanned} commit(s)")
    what = ", ".join(scanned) or "nothing"
    mib = report.bytes_scanned / (1024 * 1024)
    head = f"{n} finding(s)" if n else "no secrets found"
    hidden = [f"{count} by {what}" for count, what in (
        (report.hidden_by_allow_values, "the configuration's allow-values"),
        (report.hidden_by_exclude, "excluded paths"), (report.hidden_by_baseline, "the baseline")) if count]
    if hidden:
        # Not "no secrets found": they were found, and the configuration chose not to show
        # them (a change's own .keysweep.yaml may be what chose).
        said = f"{report.hidden_by_allow_values + report.hidden_by_exclude + report.hidden_by_baseline} hidden: {', '.join(hidden)}"
        head = f"{n} finding(s) ({said})" if n else f"no secrets reported ({said})"
    return f"{head} in {escape_control(report.target)}: scanned {what}, {mib:.1f} MiB in {report.duration_seconds:.2f}s"
