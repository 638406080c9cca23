"""Values hidden one layer down: base64 (Kubernetes Secrets, CI variables) and URL encoding.

A view is the scanned bytes with each encoded token replaced by its decoded form. The
detector runs over the view and keeps only what it finds inside a replaced token, reported
at the token's place in the original.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import regex

DecodingKind = Literal["base64", "url"]

MAX_TOKEN = 64 * 1024
_B64_TOKEN = regex.compile(
    rb"(?<![A-Za-z0-9+/=_\-])(?:[A-Za-z0-9+/]{4}){5,}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?(?![A-Za-z0-9+/=_\-])"
)
_URL_TOKEN = regex.compile(rb"[A-Za-z0-9%/+._~\-]*%[0-9A-Fa-f]{2}[A-Za-z0-9%/+._~\-]*")
_URL_MARKERS = (b"%2f", b"%2b", b"%3d")
_B64_CONTEXT = (b"secret", b"session", b"security", b"credentials")


def _stable_base64_fragments(literal: bytes) -> tuple[bytes, ...]:
    """Substrings every base64 encoding of ``literal`` contains, at each of the 3 alignments."""
    fragments = []
    for pad in range(3):
        first = base64.b64encode(b"\x00" * pad + literal + b"\x00\x00\x00")
        second = base64.b64encode(b"\xff" * pad + literal + b"\xff\xff\xff")
        common = bytes(a for a, b in zip(first, second) if a == b)
        # The leading and trailing characters mix in neighbouring bytes: keep the run of
        # characters that both encodings agree on, position by position.
        run, best = b"", b""
        for a, b in zip(first, second):
            run = run + bytes([a]) if a == b else b""
            best = max(best, run, key=len)
        fragments.append(best if len(best) >= 4 else common)
    return tuple(fragments)


B64_KEY_PREFIXES = tuple(
    fragment for prefix in (b"AKIA", b"ASIA", b"ABIA", b"ACCA") for fragment in _stable_base64_fragments(prefix)
)


@dataclass(frozen=True, slots=True)
class DecodedView:
    kind: DecodingKind
    data: bytes
    view_starts: tuple[int, ...]
    view_ends: tuple[int, ...]
    original_starts: tuple[int, ...]

    def original_offset(self, start: int, end: int) -> int | None:
        """Where a match at view[start:end] came from, or None if it is not in a decoded token."""
        index = bisect.bisect_right(self.view_starts, start) - 1
        if index < 0 or end > self.view_ends[index]:
            return None
        return self.original_starts[index]


def decoded_views(data: bytes, lowered: bytes) -> Iterator[DecodedView]:
    if any(fragment in data for fragment in B64_KEY_PREFIXES) or any(word in lowered for word in _B64_CONTEXT):
        view = _substitute(data, "base64", _B64_TOKEN, _decode_base64)
        if view is not None:
            yield view
    if any(marker in lowered for marker in _URL_MARKERS):
        view = _substitute(data, "url", _URL_TOKEN, _decode_url)
        if view is not None:
            yield view


def _decode_base64(token: bytes) -> bytes | None:
    if len(token) > MAX_TOKEN:
        return None
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if _is_text(raw) else None


def _decode_url(token: bytes) -> bytes | None:
    decoded = urllib.parse.unquote_to_bytes(token)
    return decoded if decoded != token and _is_text(decoded) else None


def _is_text(raw: bytes) -> bool:
    if not raw:
        return False
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\n\r\t")
    return printable >= 0.95 * len(text)


def _substitute(data: bytes, kind: DecodingKind, token: regex.Pattern[bytes], decode: object) -> DecodedView | None:
    assert callable(decode)
    parts: list[bytes] = []
    view_starts: list[int] = []
    view_ends: list[int] = []
    original_starts: list[int] = []
    last = 0
    length = 0
    for match in token.finditer(data):
        decoded = decode(match.group())
        if decoded is None:
            continue
        before = data[last:match.start()]
        parts.append(before)
        length += len(before)
        view_starts.append(length)
        parts.append(decoded)
        length += len(decoded)
        view_ends.append(length)
        original_starts.append(match.start())
        last = match.end()
    if not view_starts:
        return None
    parts.append(data[last:])
    return DecodedView(kind, b"".join(parts), tuple(view_starts), tuple(view_ends), tuple(original_starts))
