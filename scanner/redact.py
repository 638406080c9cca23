"""Redaction of text that comes from the repository (commit subjects, author names, paths,
tag names, warnings) of every value the scan found anywhere.

A secret found in one file can stand, bare and without any keyword, in another commit's
subject line: the detector rightly does not report it there (nothing marks it as a secret),
but every report would print it. So once the scan knows every value, each piece of
repository text is rewritten before any report, baseline, plan or message sees it.
"""

from __future__ import annotations

import base64
import bisect
import dataclasses
import itertools
import re
import urllib.parse
from collections.abc import Callable, Iterable

from scanner.errors import mask_credentials
from scanner.findings import CommitInfo, Finding, ScanReport, Skipped, evolve
from scanner.secret import Secret


@dataclasses.dataclass(frozen=True)
class Redactor:
    """Every found value (and its common encodings), looked up in linear time.

    A found value can only stand inside a run of the characters values are made of, so one C
    scan (``pattern``) finds the runs at least as long as the shortest value; inside a run each
    position costs one dict probe of its first ``shortest`` characters, and only a position
    that begins a value's prefix is compared further, once per distinct length (longest first).
    The cost is linear in the text and independent of the number of values (an alternation or
    named list of thousands of values is tried value by value: 31 s for 54 KB and 1,000 keys).
    """

    pattern: re.Pattern[str] | None
    replacements: dict[str, str]
    shortest: int = 0
    # first `shortest` characters -> the one form that starts so, or, where several do,
    # ((length, {form of that length: replacement}), ...), longest first (a probe per length,
    # however many values share a prefix). One string per prefix, not three containers:
    # 50,000 values held 150 MB of dicts.
    prefixes: dict[str, str | tuple[tuple[int, dict[str, str]], ...]] = dataclasses.field(default_factory=dict)

    def __call__(self, text: str) -> str:
        pieces: list[str] = []
        done = 0
        spans = self.spans(text)
        if self.pattern is not None and _ESCAPED_CHAR.search(text) is not None:
            # Spelled with escapes, each character its own way (`c\x72t\x2F...`): found where
            # the text is read as the detector's decoders read it, and redacted where it stands.
            spans = _union(spans, _unescaped_spans(self, text))
        for start, end, replacement in spans:
            pieces += (text[done:start], replacement)
            done = end
        if not pieces:
            return text
        pieces.append(text[done:])
        return "".join(pieces)

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """Where the found values stand in ``text`` (start, end, replacement), in order."""
        found: list[tuple[int, int, str]] = []
        if self.pattern is None or not text:
            return found
        width = self.shortest
        for run in self.pattern.finditer(text):
            i, end = run.span()
            while i + width <= end:
                replacement = None
                length = 0
                candidates = self.prefixes.get(text[i:i + width])
                if isinstance(candidates, str):  # the one form with this prefix (most of them)
                    length = len(candidates)
                    if i + length <= end and text.startswith(candidates, i):
                        replacement = self.replacements[candidates]
                elif candidates is not None:
                    for length, forms in candidates:
                        if i + length <= end:
                            replacement = forms.get(text[i:i + length])
                            if replacement is not None:
                                break
                if replacement is None:
                    i += 1
                    continue
                found.append((i, i + length, replacement))
                i += length
        return found


# One character written as an escape, as the detector's decoders read them (decode._ESCAPE,
# and URL encoding); a slash after up to 8 backslashes is JSON inside JSON.
_ESCAPED_CHAR = re.compile(r"\\{1,8}/|\\[xX][0-9A-Fa-f]{2}|\\u[0-9A-Fa-f]{4}|\\u\{[0-9A-Fa-f]{1,6}\}"
                           r"|&#[xX][0-9A-Fa-f]{1,6};|&#[0-9]{1,7};|%[0-9A-Fa-f]{2}")


def _character(escape: str) -> str | None:
    if escape.endswith("/") and escape.startswith("\\"):
        return "/"
    if escape.startswith("%"):
        code = int(escape[1:], 16)
    elif escape.startswith("&#"):
        code = int(escape[3:-1], 16) if escape[2] in "xX" else int(escape[2:-1])
    elif escape.startswith("\\u{"):
        code = int(escape[3:-1], 16)
    else:
        code = int(escape[2:], 16)
    return chr(code) if code <= 0x10FFFF else None


def _unescaped_spans(redactor: Redactor, text: str) -> list[tuple[int, int, str]]:
    """The values found in ``text`` read with every escape decoded, as places in ``text``."""
    pieces: list[str] = []
    # Per piece of the decoded text: where it starts there, where it starts in ``text``, and
    # the length it has in ``text`` when it is one escape (0: plain text, one to one).
    decoded_starts: list[int] = []
    places: list[tuple[int, int]] = []
    decoded = done = 0
    for match in _ESCAPED_CHAR.finditer(text):
        char = _character(match.group())
        if char is None:
            continue
        if match.start() > done:
            decoded_starts.append(decoded)
            places.append((done, 0))
            pieces.append(text[done:match.start()])
            decoded += match.start() - done
        decoded_starts.append(decoded)
        places.append((match.start(), match.end() - match.start()))
        pieces.append(char)
        decoded += 1
        done = match.end()
    decoded_starts.append(decoded)
    places.append((done, 0))
    pieces.append(text[done:])

    def original(position: int, *, end: bool) -> int:
        index = bisect.bisect_right(decoded_starts, position - end) - 1
        start, escape = places[index]
        if escape:
            return start + escape if end else start
        return start + position - decoded_starts[index]

    return [(original(start, end=False), original(stop, end=True), shown)
            for start, stop, shown in redactor.spans("".join(pieces))]


def _union(spans: list[tuple[int, int, str]], more: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Both lists of places as one, in order, overlapping places made one."""
    merged: list[tuple[int, int, str]] = []
    for start, end, shown in sorted(spans + more):
        if merged and start < merged[-1][1]:
            last = merged[-1]
            merged[-1] = (last[0], max(last[1], end), last[2])
        else:
            merged.append((start, end, shown))
    return merged


# Base64 characters that depend only on the value, when it starts 0, 1 or 2 bytes into a
# 3-byte group of a longer encoded text: the first characters also carry bits of what precedes.
_B64_LEAD = (0, 2, 3)


def _base64_cores(value: bytes) -> Iterable[str]:
    """The part of the value's base64 encoding that is the same wherever it stands in a longer
    encoded text (any alignment, anything before or after it), standard and URL-safe alphabets."""
    for offset, lead in enumerate(_B64_LEAD):
        data = bytes(offset) + value
        whole = len(data) // 3 * 3  # the last partial group also depends on what follows
        core = base64.b64encode(data[:whole]).decode()[lead:]
        yield core
        yield core.replace("+", "-").replace("/", "_")


_LOWER_HEX_ESCAPE = re.compile("%[0-9A-F]{2}")
# What quote() never changes: a value of these only (every key ID) has no URL-encoded form.
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


# A value longer than this is redacted as it stands, and without its slashes, not also in each
# encoding: a session token has no length limit, and fourteen forms of a 5 MB one were 70 MB
# to hold for a commit subject of a few hundred characters.
MAX_ENCODED_VALUE = 64 * 1024
# The prefix each position of a run is looked up by is at most this long: it was the length
# of the shortest value, and a 5 MB token made it a 5 MB slice a position (and a repeat count
# of five million in the run pattern: 3 GB and 7 s to compile).
MAX_PREFIX = 64


def _forms(secret: Secret) -> Iterable[str]:
    value = secret.reveal()
    yield value
    if len(value) > MAX_ENCODED_VALUE:
        if "/" in value:
            yield value.replace("/", "")
        return
    if "/" in value:
        # Its slashes taken for folder separators: a path chopped at them, read without them
        # (name_redactor), holds the value so.
        yield value.replace("/", "")
    for safe in (() if _UNRESERVED.issuperset(value) else ("", "/")):  # fully encoded, and as quote() leaves it by default
        quoted = urllib.parse.quote(value, safe=safe)
        if quoted != value:
            yield quoted
            yield _LOWER_HEX_ESCAPE.sub(lambda match: match.group().lower(), quoted)  # %2f as well as %2F
    yield from _base64_cores(value.encode())
    # Spellings with escapes (\xNN, \uNNNN, &#NN;, JSON's \/, any mix) are not listed here:
    # the text is read through them instead (_unescaped_spans), at a cost that follows the
    # text, not the values (eleven spellings of each of 200 tokens of 60 KB: 59 s, 0.9 GB).


def redactor_for(secrets: Iterable[Secret]) -> Redactor:
    replacements: dict[str, str] = {}
    for secret in secrets:
        shown = secret.redacted  # one string for all its forms
        for form in _forms(secret):
            if len(form) >= 8:  # a shorter value would redact ordinary words
                replacements.setdefault(form, shown)
    if not replacements:
        return Redactor(None, {})
    shortest = min(MAX_PREFIX, min(map(len, replacements)))
    by_prefix: dict[str, str | dict[int, dict[str, str]]] = {}
    for form, shown in replacements.items():
        prefix = form[:shortest]
        kept = by_prefix.get(prefix)
        if kept is None:
            by_prefix[prefix] = form
            continue
        if isinstance(kept, str):
            kept = by_prefix[prefix] = {len(kept): {kept: replacements[kept]}}
        kept.setdefault(len(form), {})[form] = shown
    prefixes: dict[str, str | tuple[tuple[int, dict[str, str]], ...]] = {}
    for prefix, forms in by_prefix.items():
        if isinstance(forms, str):
            prefixes[prefix] = forms
        else:
            prefixes[prefix] = tuple(sorted(forms.items(), reverse=True))
    alphabet = "".join(re.escape(c) for c in sorted(set(itertools.chain.from_iterable(replacements))))
    return Redactor(re.compile(f"[{alphabet}]{{{shortest},}}"), replacements, shortest, prefixes)


# A commit subject is shown on one line: a repository can make it megabytes long, and every
# finding of that commit would carry it into every report. Cut after redaction, so no cut
# ever leaves part of a secret standing.
MAX_SUMMARY = 300


def _short(text: str) -> str:
    return text if len(text) <= MAX_SUMMARY else text[:MAX_SUMMARY] + f"… ({len(text)} characters)"


def _commit(info: CommitInfo | None, redact: Redactor, done: dict[CommitInfo, CommitInfo]) -> CommitInfo | None:
    if info is None:
        return None
    if info not in done:  # the findings of one commit share it: redacted once
        # Author, e-mail and subject are the committer's text, not scanned (a subject holding
        # only a secret, with no name for it, is no finding): masked of key shapes besides.
        def text(value: str) -> str:
            return mask_credentials(_short(redact(value)))  # cut first: a subject may be megabytes

        done[info] = dataclasses.replace(info, author=text(info.author), email=text(info.email), summary=text(info.summary))
    return done[info]


def name_redactor(redact: Redactor) -> Callable[[str], str]:
    """For names (paths, refs, repositories): the found values redacted, also where folder
    separators chop one into pieces, and what looks like a key masked besides. A name is never
    scanned as text, so a key that stands only in a folder's name (or a URL's) is no found
    value; the values found are redacted first."""
    shown: dict[str, str] = {}  # the findings of one file share its path: each name redacted once

    def name(text: str) -> str:
        result = shown.get(text)
        if result is None:
            if len(shown) >= MAX_NAMES_KEPT:
                shown.clear()
            result = shown[text] = mask_credentials(_across_separators(redact(text), redact), quoted=False)
        return result

    return name


MAX_NAMES_KEPT = 1 << 16


_SEPARATORS = frozenset("/\\")


def _across_separators(text: str, redact: Redactor) -> str:
    """``text`` with each found value that separators cut into pieces (``d/<first 12
    characters>/<the rest>/x.py``: a secret printed whole once the slashes are taken out)
    replaced, separators and all. Linear: one more redactor pass over the name without them."""
    if not _SEPARATORS.intersection(text):
        return text
    kept = [i for i, char in enumerate(text) if char not in _SEPARATORS]
    spans = redact.spans("".join(text[i] for i in kept))
    if not spans:
        return text
    pieces: list[str] = []
    done = 0
    for start, end, replacement in spans:
        first, last = kept[start], kept[end - 1] + 1
        pieces += (text[done:first], replacement)
        done = last
    pieces.append(text[done:])
    return "".join(pieces)


def _finding(finding: Finding, redact: Redactor, name: Callable[[str], str], done: dict[CommitInfo, CommitInfo]) -> Finding:
    path = name(finding.path) if finding.path is not None else None
    commit = _commit(finding.commit, redact, done)
    # Ref names are the repository's text too (a branch can be named after a key).
    refs = tuple(name(ref) for ref in finding.refs) if finding.refs is not None else None
    # An audited repository's name is a folder's or a URL's: text from outside as well.
    repository = name(finding.repository) if finding.repository is not None else None
    if path == finding.path and commit is finding.commit and refs == finding.refs and repository == finding.repository:
        return finding  # nothing to hide: no copy
    return evolve(finding, path=path, commit=commit, refs=refs, repository=repository)


def redact_report(report: ScanReport, also: Iterable[Secret] = (), *, redactor: Redactor | None = None) -> ScanReport:
    """The report with every repository-supplied text redacted of every found value, and of
    ``also`` (values found but not reported, such as those in excluded paths); ``redactor``:
    one the caller built of them, to redact its own texts alike.

    Fingerprints are computed before this (from the real path), so baselines still match.
    """
    redact = redactor if redactor is not None else redactor_for([*(f.secret for f in report.findings), *also])
    done: dict[CommitInfo, CommitInfo] = {}
    name = name_redactor(redact)  # messages quote names (paths, refs, URLs): masked alike
    return dataclasses.replace(
        report,
        findings=tuple(_finding(f, redact, name, done) for f in report.findings),
        skipped=tuple(Skipped(name(s.path), name(s.reason)) for s in report.skipped),
        warnings=tuple(name(w) for w in report.warnings),
        errors=tuple(name(e) for e in report.errors),
        target=name(report.target),
        head=name(report.head) if report.head is not None else None,
    )
