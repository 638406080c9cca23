"""Values hidden one layer down: base64 (Kubernetes Secrets, CI variables) and URL encoding.

A view is the scanned bytes with each encoded token replaced by its decoded form. The
detector runs over the view and keeps only what it finds inside a replaced token, reported
at the token's place in the original.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import functools
import math
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from scanner.engine.lazyregex import lazy_compile

DecodingKind = Literal["base64", "url", "escape"]

MAX_TOKEN = 64 * 1024
# The shortest value a rule finds (a key ID): a shorter escaped or URL-encoded token, which
# decodes shorter still, cannot hold one and is not decoded (a text of tiny tokens was ~1 s/MiB).
MIN_VALUE = 20
MIN_BASE64_RUN = 20
BASE64_TABLE = bytes(
    1 if chr(i).isascii() and (chr(i).isalnum() or chr(i) in "+/") else 0 for i in range(256)
)
# Compiled when first used (lazy_compile): most texts never reach these searches.
_URL_MARK = lazy_compile(rb"%2[BbFf]")
_URL_TOKEN_TABLE = bytes(
    1 if chr(i).isascii() and (chr(i).isalnum() or chr(i) in "%/+._~-") else 0 for i in range(256)
)
_CONTROL = lazy_compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Escapes a value can be written with: JSON's \/ (PHP's json_encode escapes every slash),
# \uXXXX, \u{X}, \xXX, and HTML's &#xX; and &#N;. A slash after several backslashes is JSON
# inside JSON (`\\\/` from json_encode twice, `\\/` when only the inner one escaped it): no
# key holds a backslash, so up to 8 of them before a slash stand for the slash.
# Only escapes of printable ASCII (what key IDs and secrets are made of): \u2019 in prose is
# not worth a look, and most texts with escapes hold only such.
_ESCAPE = lazy_compile(
    rb"\\{1,8}/|\\u00[2-7][0-9A-Fa-f]|\\u\{[2-7][0-9A-Fa-f]\}|\\x[2-7][0-9A-Fa-f]|&#[xX][2-7][0-9A-Fa-f];"
    rb"|&#(?:3[2-9]|[4-9][0-9]|1[01][0-9]|12[0-6]);"
)
# The same, as one group: split by it, a token alternates text and escapes.
_ESCAPE_SPLIT = lazy_compile(b"(" + _ESCAPE.pattern + b")")
_ESCAPE_MARKS = (b"\\/", b"\\u00", b"\\u{", b"\\x", b"&#")
_ESCAPE_TOKEN_TABLE = bytes(
    1 if chr(i).isascii() and (chr(i).isalnum() or chr(i) in "\\/+=&#;{}") else 0 for i in range(256)
)
# A JSON Web Token: base64url header and payload, no padding. The payload is decoded.
# It starts a token, and no run is given back once taken (possessive): without both, a run
# of "eyJ" was retried to its end from every "eyJ" inside it, minutes for 256 KiB.
_JWT = lazy_compile(rb"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}+\.(eyJ[A-Za-z0-9_-]{8,}+)\.[A-Za-z0-9_-]*+")
_ASCII_GROUP_LEAD = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef"
_KEY_PREFIXES = (b"AKIA", b"ASIA", b"ABIA", b"ACCA", b"A3T")
_CONTEXT_WORDS = (b"secret", b"token", b"aws")


def _mostly_ascii_leads(leads: bytes) -> bool:
    """Whether the first characters of a run's groups of 4 are those of base64 of ASCII text,
    but for one in 16 (at least one): an accented letter, an emoji or a curly quote in a
    comment puts a byte above 0x7f at a group's start, and one such once hid every key of a
    Kubernetes Secret's credentials file. Identifiers and hashes fail in most groups."""
    return len(leads.translate(None, _ASCII_GROUP_LEAD)) * 16 <= len(leads) + 15


def value_runs(data: bytes, table: bytes, min_length: int) -> list[tuple[int, int]]:
    """Every maximal run of table-1 bytes at least ``min_length`` long, as (start, end).

    One translate and a substring search that skips ahead: far cheaper than a regex with a
    character class, which tries every position.
    """
    translated = data.translate(table)
    needle = b"\x01" * min_length
    runs = []
    position = 0
    while (start := translated.find(needle, position)) >= 0:
        end = translated.find(b"\x00", start + min_length)
        if end < 0:
            end = len(translated)
        runs.append((start, end))
        position = end
    return runs


@dataclass(frozen=True, slots=True)
class DecodedView:
    """A text with its encoded tokens decoded, and where each came from."""

    kind: DecodingKind
    data: bytes
    view_starts: tuple[int, ...]
    view_ends: tuple[int, ...]
    original_starts: tuple[int, ...]
    # Per token: where, in the view, the part it repeats of the token before ends (a wrapped
    # block longer than MAX_TOKEN goes on in a block overlapping it by OVERLAP_LINES lines).
    repeat_ends: tuple[int, ...] = ()

    def original_offset(self, start: int, end: int) -> int | None:
        """Where a match at view[start:end] came from, or None if it is not in a decoded token.
        A match running on into the next token, where nothing stands between them (two pieces
        of one long base64 run, cut inside a key: UTF-16 text has no byte a key is not made of
        after every character), came from the first."""
        index = bisect.bisect_right(self.view_starts, start) - 1
        if index < 0:
            return None
        if self.repeat_ends and end <= self.repeat_ends[index]:
            return None  # found in the token before, whose end this one repeats
        if end > self.view_ends[index]:
            following = index + 1
            if (following >= len(self.view_starts) or self.view_starts[following] != self.view_ends[index]
                    or end > self.view_ends[following]
                    or (self.repeat_ends and self.repeat_ends[following] > self.view_starts[following])):
                return None
        return self.original_starts[index]


# What announces each decoding, for a native pass to look for beside the rules (see
# native.Prefilter): a text without the mark skips that decoder's own searches.
MARKS: dict[str, bytes] = {
    "url": rb"%2[BbFf]",
    "escape": _ESCAPE.pattern,
    "jwt": rb"eyJ",
}


def decoded_views(data: bytes, base64_runs: list[tuple[int, int]],
                  marks: frozenset[str] | None = None, escapes: list[int] | None = None) -> Iterator[DecodedView]:
    """Views of ``data`` with encoded values decoded, where any decoded value looks worth a look.

    ``marks``: which decodings' marks a native pass saw in ``data`` (None: not known, so each
    decoder looks for its own); ``escapes``: where that pass saw escapes end (None: not known)."""
    substitutions = []
    size = len(data)
    covered = -1  # end of the last block of wrapped lines decoded whole
    walked = -1  # end of the last block looked at: its lines do not start another (linear)
    repeats: dict[int, int] = {}  # substitution index -> decoded bytes it repeats of the one before
    go_on = -1  # where a block cut at MAX_TOKEN goes on
    for start, end in base64_runs:
        if start < covered:
            continue
        if end - start > MAX_TOKEN:  # (a wrapped block's lines are 256 characters at most)
            # One long line (a whole file in a CI variable, a data: URL): decoded in pieces,
            # each judged on its own (one accented letter must not hide the rest).
            substitutions += _long_base64(data, start, end)
            continue
        # In base64 of ASCII text the first character of every group of 4 encodes a byte
        # below 0x80, so it is one of A-Z a-f (but where a rare accented letter or emoji
        # falls: _mostly_ascii_leads): two C calls reject most identifiers (and the
        # first line of a wrapped block that is not ASCII text: the whole block would fail
        # the same test, and a CSV of secrets has a 40-character run ending every line).
        # (A UTF-16 byte order mark, "//", leads the first group: text all the same.)
        lead = start + 4 if data.startswith(b"//", start) else start
        if not _mostly_ascii_leads(data[lead:end:4]):
            continue
        # Lines of one width (76 from `base64`, 64 from openssl) are one token: decoded line
        # by line, a key ID or secret across a line break was cut in two.
        wrapped = _wrapped(data, start, end) if start >= walked else None
        if wrapped is not None:
            block_end, joined, restart = wrapped
            walked = block_end if restart is None else restart
            decoded = _decode_base64(joined) if _mostly_ascii_leads(joined[lead - start :: 4]) else None
            if decoded is not None and _interesting(decoded):
                if start == go_on and substitutions and substitutions[-1][1] > start:
                    repeats[len(substitutions)] = _repeated(substitutions[-1][2], decoded)
                substitutions.append((start, block_end, decoded))
                covered = block_end if restart is None else restart
                go_on = restart if restart is not None else -1
                continue
        if end - start > MAX_TOKEN:
            continue
        # Padding completes a token to a multiple of 4; a run that cannot be completed so
        # is not base64 (most long runs are paths and identifiers) and is not decoded. A run
        # with no padding at all may be base64 written without it (base64url style, `tr -d =`):
        # completed here, as _long_base64 completes a long one.
        missing = -(end - start) % 4
        token = data[start:end]
        if missing:
            if missing > 2:
                continue
            if data[end : end + missing] == b"=" * missing:
                if end + missing < size and data[end + missing] == 61:
                    continue
                end += missing
                token = data[start:end]
            elif data.startswith(b"=", end):
                continue  # some padding, not enough: not base64
            else:
                token += b"=" * missing
        if not _mostly_ascii_leads(token[lead - start :: 4]):
            continue  # the padding's group (the run's own were looked at above)
        decoded = _decode_base64(token)
        if decoded is not None and _interesting(decoded):
            substitutions.append((start, end, decoded))
    if substitutions:
        yield _view(data, "base64", substitutions, repeats)
    # memchr for a '%' first: most texts have none, and a single-byte search is ~10x faster
    # than any pattern search.
    percent = data.find(b"%") if marks is None or "url" in marks else -1
    if percent >= 0 and _URL_MARK.search(data, percent):
        substitutions = []
        # Each encoded '/' or '+' widened to its whole token: cheap C searches, no regex
        # retrying from every character of long tokens.
        translated = data.translate(_URL_TOKEN_TABLE)
        last_end = -1
        for mark in _URL_MARK.finditer(data, percent):
            if mark.start() < last_end:
                continue
            start = translated.rfind(b"\x00", 0, mark.start()) + 1
            end = translated.find(b"\x00", mark.end())
            end = size if end < 0 else end
            last_end = end
            if end - start < MIN_VALUE:
                continue
            decoded = _decode_url(data[start:end])
            if decoded is not None:
                substitutions.append((start, end, decoded))
        if substitutions:
            yield _view(data, "url", substitutions)
    view = _escape_view(data, escapes) if marks is None or "escape" in marks else None
    if view is not None:
        yield view
    view = _jwt_view(data) if marks is None or "jwt" in marks else None
    if view is not None:
        yield view


_BASE64_BYTES = bytes(i for i in range(256) if BASE64_TABLE[i])


# A long base64 run is decoded whole (one C call) and looked at in pieces of at most this many
# decoded bytes, each cut after a line break where there is one (else after a comma, space,
# ';' or '"', else after any byte no key is made of): a view's token is found at its piece's
# place, and a key is never cut in two by a piece's end.
LONG_PIECE = 48 * 1024
PIECE_EDGE = 128  # bytes either side of a cut looked at together
_PIECE_ENDS = (b"\n", b",", b" ", b";", b'"')
_KEY_BYTES = bytes(1 if chr(i).isascii() and (chr(i).isalnum() or chr(i) in "+/=_-") else 0 for i in range(256))
# A piece is text if at most this share of its bytes are control characters other than ESC
# (which opens a CI log's colour codes): binary data has about one in nine.
_CONTROL_SHARE = 20


def _long_base64(data: bytes, start: int, end: int) -> list[tuple[int, int, bytes]]:
    """Substitutions for a base64 run longer than MAX_TOKEN: its decoded text in pieces.

    A piece's place in the run is that of its first whole group (4 characters for 3 bytes), so
    pieces cut anywhere map to places in order; what is found in a piece is reported there.
    Its padding (``=``, after the run) is decoded with it: the last bytes of a file are often
    its last key."""
    length = end - start
    missing = -length % 4
    padding = b""
    if missing and missing <= 2 and data[end : end + missing] == b"=" * missing:
        length += missing
    elif missing and missing <= 2:
        padding = b"=" * missing  # written without its padding (base64url style, `tr -d =`)
    elif missing:
        length -= 1  # one character past whole groups is no base64's
    try:
        raw = base64.b64decode(data[start : start + length] + padding, validate=True)
    except (binascii.Error, ValueError):
        return []
    cuts = [0]
    while cuts[-1] < len(raw):
        cut = min(len(raw), cuts[-1] + LONG_PIECE)
        cuts.append(_piece_end(raw, cuts[-1] + LONG_PIECE // 2, cut) if cut < len(raw) else cut)
    texts = [_piece_text(raw[low:high]) for low, high in zip(cuts, cuts[1:])]
    # A piece is kept if it, or a piece beside it, looks worth a look: a name at one piece's
    # end and its value opening the next are read together (the view holds them side by side).
    worth = [text is not None and _interesting(text) for text in texts]
    # A cut inside a key prefix or a name (UTF-16 text offers no other place to cut) leaves
    # half of it in each piece: where two pieces meet is looked at too.
    for index, (before, after) in enumerate(zip(texts, texts[1:])):
        if before is not None and after is not None and not (worth[index] or worth[index + 1]):
            if _interesting(before[-PIECE_EDGE:] + after[:PIECE_EDGE]):
                worth[index] = worth[index + 1] = True
    keep = [text is not None and any(worth[max(0, index - 1) : index + 2]) for index, text in enumerate(texts)]
    pieces = []
    last = len(texts) - 1
    for index, text in enumerate(texts):
        if text is None or not keep[index]:
            continue
        # Beside a piece left out, the view holds raw base64: a line break on that side keeps
        # a key at the piece's edge from reading as part of a longer token. The last piece
        # ends where the run does (its padding with it), so what follows the run follows it.
        if index > 0 and not keep[index - 1]:
            text = b"\n" + text
        if index < last and not keep[index + 1]:
            text += b"\n"
        piece_end = start + length if index == last else start + cuts[index + 1] // 3 * 4
        pieces.append((start + cuts[index] // 3 * 4, piece_end, text))
    return pieces


def _piece_end(raw: bytes, low: int, high: int) -> int:
    """Where a piece of ``raw`` ending at most at ``high`` (and not before ``low``) is cut."""
    for separator in _PIECE_ENDS:
        found = raw.rfind(separator, low, high)
        if found >= 0:
            return found + 1
    found = raw[low:high].translate(_KEY_BYTES).rfind(b"\x00")
    return low + found + 1 if found >= 0 else high  # 24 KiB of one token: no key is bounded in it


def _as_text(piece: bytes) -> bytes | None:
    """``piece`` if it is text to scan (few control characters; bytes above 0x7f, UTF-8 or
    not, make no key and do no harm), else None."""
    controls = len(piece) - len(piece.translate(None, _PIECE_CONTROLS))
    return piece if piece and controls * _CONTROL_SHARE <= len(piece) else None


def _piece_text(piece: bytes) -> bytes | None:
    """A long run's piece as text to scan: as it is, or read from UTF-16 (a PowerShell script
    or .NET string, encoded whole), or both, else None.

    A piece cut after a UTF-16LE line break starts on the break's high byte: read from there it
    is UTF-16BE, which the parity test tells. A cut can also fall inside a surrogate pair (the
    low half of U+1F60A holds a 0x0a byte): a half character at either edge is dropped. UTF-16
    text of mostly CJK characters has few NUL bytes and passes for 8-bit text too: read both ways."""
    text = _as_text(piece)
    wide = None
    if piece.count(0) >= MIN_UTF16_NULS:
        for low, high in ((0, len(piece)), (2, len(piece)), (0, len(piece) - 2), (2, len(piece) - 2)):
            wide = utf16_by_parity(piece[low:high])
            if wide is not None:
                break
    if text is not None and wide is not None:
        return text + b"\n" + wide
    return text if wide is None else wide



# Control characters text does not hold (tab and line ends are text).
TEXT_CONTROLS = bytes(range(32)).replace(b"\t", b"").replace(b"\n", b"").replace(b"\r", b"")
_PIECE_CONTROLS = TEXT_CONTROLS.replace(b"\x1b", b"")


# Content sniffing reads this many bytes from the start.
BINARY_SNIFF_BYTES = 8192


MIN_UTF16_NULS = 16  # fewer NUL bytes than this is not UTF-16 text worth reading


def utf16_by_parity(data: bytes) -> bytes | None:
    """UTF-16 without a BOM and not mostly ASCII (CJK text holding ASCII keys): its NUL bytes
    are the high bytes of ASCII characters, nearly all at one parity (a CJK character has a NUL
    low byte now and then), and the whole decodes strictly
    (no lone surrogate) to text without control characters. Binary data scatters its NULs.
    Returns the text as UTF-8 (decoded once), or None. (Files, and base64 tokens decoded.)"""
    for part in (data[:BINARY_SNIFF_BYTES], data):  # the start first: most binary data fails there, cheaply
        even, odd = part[0::2].count(0), part[1::2].count(0)
        if min(even, odd) * 4 > max(even, odd):
            return None
    if even + odd < MIN_UTF16_NULS:
        return None
    codec = "utf-16-le" if odd > even else "utf-16-be"
    try:
        text = data[: len(data) - len(data) % 2].decode(codec).encode("utf-8")
    except UnicodeDecodeError:
        return None
    # One pass in C: UTF-8 never puts a byte below 0x20 inside a longer character.
    controls = len(text) - len(text.translate(None, TEXT_CONTROLS))
    return text if controls * 100 <= len(text) else None


def _wrapped(data: bytes, start: int, end: int) -> tuple[int, bytes, int | None] | None:
    """Base64 wrapped over lines, ``data[start:end]`` its first line: (where the block ends,
    its lines joined, and where the next block starts when this one stopped at MAX_TOKEN:
    OVERLAP_LINES lines before its end, so a key across the cut is whole in one of them), or
    None if the next line does not continue it.

    Every line but the last is as long as the first (any width: `base64 -w 57`, `fold -w 70`
    cut groups of 4 across lines); the last may be shorter, with the padding the whole needs,
    and must end its line. Lines may be indented (a YAML block) and end in CRLF. Each line is
    looked at once, the overlaps apart: linear.
    """
    width = end - start
    if not 40 <= width <= 256 or not _ends_line(data, end):
        return None
    size = len(data)
    pieces = [data[start:end]]
    bodies = [start]  # where each line's characters start
    total = width
    position = end
    full = False
    while True:
        if total + width > MAX_TOKEN:  # a longer block is decoded in overlapping pieces of whole lines
            full = True
            break
        position = _line_rest(data, position)  # spaces or tabs an editor left before the break
        line = position + (2 if data.startswith(b"\r\n", position) else 1 if data.startswith(b"\n", position) else 0)
        if line == position:
            break
        body = line
        while body < size and body - line < 40 and data[body] in b" \t":
            body += 1
        window = data[body : body + width + 1]
        length = len(window) - len(window.lstrip(_BASE64_BYTES))
        after = body + length
        if length == width and _ends_line(data, after):
            pieces.append(window[:width])
            bodies.append(body)
            total += width
            position = after
            continue
        if 0 < length < width:
            padding = len(data[after : after + 2]) - len(data[after : after + 2].lstrip(b"="))
            whole = total + length + padding
            # Padded to a whole group, or without any padding (base64url, `tr -d =`): completed below.
            if _ends_line(data, after + padding) and (whole % 4 == 0 or (not padding and whole % 4 > 1)):
                pieces.append(data[body : after + padding])
                position = after + padding
        break
    if full:
        # Cut at MAX_TOKEN: the block ends on a whole group of 4, to decode (a width that is
        # not a multiple of 4 ends one at most every 4th line).
        keep = len(pieces)
        while keep > 1 and keep * width % 4:
            keep -= 1
        del pieces[keep:], bodies[keep:]
        position = bodies[-1] + width
    restart = None
    if full and len(bodies) > OVERLAP_LINES:
        # The next block starts on a line at a whole group of 4 from this block's start
        # (every line is, when the width is a multiple of 4; else every 2nd or 4th).
        index = len(bodies) - OVERLAP_LINES
        index -= index % (4 // math.gcd(width, 4))
        restart = bodies[index] if index > 0 else None
    if len(pieces) < 2:
        return None
    joined = b"".join(pieces)
    if not full and len(joined) % 4 > 1:
        joined += b"=" * (-len(joined) % 4)  # written without its padding
    return position, joined, restart


def _ends_line(data: bytes, position: int) -> bool:
    """Whether only spaces or tabs (a line's trailing blanks) stand between ``position`` and
    a line break or the end of ``data``."""
    rest = _line_rest(data, position)
    return data[rest : rest + 1] in (b"", b"\n", b"\r")


def _line_rest(data: bytes, position: int) -> int:
    """Past the spaces and tabs from ``position`` (at most 40: a line's trailing blanks)."""
    end = position
    while end < len(data) and end - position < 40 and data[end] in b" \t":
        end += 1
    return end


OVERLAP_LINES = 4


def _repeated(before: bytes, after: bytes) -> int:
    """How many of ``after``'s first bytes repeat ``before``'s end (overlapping blocks, as
    text: UTF-16 read as UTF-8 is half as long as its base64 says): the longest such run, 0 if
    none. (In repetitive text a shorter one matches too, and would report a key twice.)"""
    probe = after[:64]
    if not probe:
        return 0
    position = before.find(probe, max(0, len(before) - 2 * OVERLAP_LINES * 192))  # 192 bytes: a 256-wide line
    while position >= 0:
        if after.startswith(before[position:]):
            return len(before) - position
        position = before.find(probe, position + 1)
    return 0


def _escape_view(data: bytes, escape_ends: list[int] | None = None) -> DecodedView | None:
    """Tokens holding escapes (``abc\\/def``, ``\\u0041KIA…``), unescaped whole.

    ``escape_ends``: where the native pass saw each escape end; without it, memchr-speed
    searches for each escape's fixed start find them (the pattern is tried only there:
    running it over the text costs ~10 ns a byte, and most texts have few)."""
    inside: list[int] = []  # a position inside each escape, in order
    if escape_ends is not None:
        inside = [end - 1 for end in escape_ends]
    else:
        for lead in _ESCAPE_MARKS:
            position = data.find(lead)
            while position >= 0:
                if _ESCAPE.match(data, position) is not None:
                    inside.append(position)
                position = data.find(lead, position + 1)
        inside.sort()
    substitutions = []
    last_end = -1
    # Many escapes: the text translated once, each token's ends found in it (run_bounds looks
    # at 320 bytes around each escape, twelve times a 26-byte token).
    translated = data.translate(_ESCAPE_TOKEN_TABLE) if len(inside) > MANY_ESCAPES else None
    for place in inside:
        if place < last_end:
            continue
        # Every character of an escape is a token character: the token around it holds it.
        if translated is not None:
            # Each search stops at the previous token's end at the latest: linear in all.
            start = translated.rfind(b"\x00", max(last_end, 0), place) + 1 or max(last_end, 0)
            end = translated.find(b"\x00", place)
            end = len(data) if end < 0 else end
            if end - start > MAX_TOKEN:
                start = -1
        else:
            start, end = run_bounds(data, place, _ESCAPE_TOKEN_TABLE, MAX_TOKEN)
        last_end = end
        if start < 0 or end - start < MIN_VALUE:
            continue  # longer than MAX_TOKEN, or too short to hold a key ID
        token = data[start:end]
        decoded = _unescape_all(token)
        if decoded != token:
            substitutions.append((start, end, decoded))
    return _view(data, "escape", substitutions) if substitutions else None


MANY_ESCAPES = 64


def run_end(data: bytes, position: int, table: bytes) -> int:
    """Where the run of ``table``-1 bytes going on at ``position`` ends (windows growing fourfold)."""
    step = 64
    size = len(data)
    while True:
        window_end = min(size, position + step)
        zero = data[position:window_end].translate(table).find(b"\x00")
        if zero >= 0:
            return position + zero
        if window_end == size:
            return size
        position = window_end
        step *= 4


def run_bounds(data: bytes, position: int, table: bytes, limit: int) -> tuple[int, int]:
    """The maximal run of ``table``-1 bytes holding ``position``: (start, end), start -1 when the
    run is longer than ``limit``. The end is always found, so a caller that skips positions
    before it stays linear however long the run.

    Looks in windows growing fourfold from 256 bytes: the cost is the run's length, not the
    distance to anything else."""
    start = -1
    step = 256
    low = position
    while True:
        window_start = max(0, low - step)
        zero = data[window_start:low].translate(table).rfind(b"\x00")
        if zero >= 0:
            start = window_start + zero + 1
            break
        if window_start == 0:
            start = 0
            break
        low = window_start
        if position - low > limit:
            break
        step *= 4
    end = run_end(data, position, table)
    if start >= 0 and end - start > limit:
        start = -1
    return start, end


def _unescape_all(token: bytes) -> bytes:
    """``token`` with each escape replaced by its character. The escapes are few kinds of a few
    hundred spellings, each decoded once (a line of 40,000 escaped key IDs spent a fifth of its
    time in a callback per escape)."""
    pieces = _ESCAPE_SPLIT.split(token)
    pieces[1::2] = map(_unescape, pieces[1::2])
    return b"".join(pieces)


@functools.lru_cache(maxsize=4096)  # every spelling of every escape fits
def _unescape(text: bytes) -> bytes:
    if text.endswith(b"/"):
        return b"/"
    digits = text.strip(b"\\ux{}&#;Xx")
    code = int(digits, 10 if text.startswith(b"&#") and not text[2:3] in (b"x", b"X") else 16)
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return text
    return chr(code).encode("utf-8")


def _jwt_view(data: bytes) -> DecodedView | None:
    if data.find(b"eyJ") < 0:
        return None
    substitutions = []
    for match in _JWT.finditer(data):
        payload = match.group(1)
        if len(payload) > MAX_TOKEN:
            continue
        try:
            raw = base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4))
        except (binascii.Error, ValueError):
            continue
        if _is_text(raw):
            substitutions.append((match.start(1), match.end(1), raw))
    return _view(data, "base64", substitutions) if substitutions else None


def _interesting(decoded: bytes) -> bool:
    if any(prefix in decoded for prefix in _KEY_PREFIXES):
        return True
    stripped = decoded.strip()
    if len(stripped) == 40 and not stripped.translate(BASE64_TABLE).count(0):
        return True
    if len(stripped) >= 40 and not stripped.translate(None, b"=\r\n").translate(BASE64_TABLE).count(0):
        return True  # base64 inside base64 (wrapped over lines or not): the detector looks one layer further down
    lowered = decoded.lower()
    return any(word in lowered for word in _CONTEXT_WORDS)


def _decode_base64(token: bytes) -> bytes | None:
    if len(token) > MAX_TOKEN or len(token) % 4:
        return None
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        return None
    if _is_text(raw):
        return raw
    # UTF-16 text (PowerShell's -EncodedCommand, .NET's Encoding.Unicode), read as UTF-8.
    text = utf16_by_parity(raw)
    return text if text is not None and _is_text(text) else None


def _decode_url(token: bytes) -> bytes | None:
    decoded = urllib.parse.unquote_to_bytes(token)
    return decoded if decoded != token and _is_text(decoded) else None


def _is_text(raw: bytes) -> bool:
    """UTF-8 text, or text in a single-byte encoding (a Windows tool's base64 of an ANSI
    file: one 0xF3 or curly quote in a comment hid both keys): no control characters, and
    few bytes above 0x7f (binary data has one in two)."""
    if not raw or _CONTROL.search(raw):
        return False
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return len(raw.translate(None, _ASCII_BYTES)) * 16 <= len(raw)
    return True


_ASCII_BYTES = bytes(range(128))


# A view holds each decoded token with this much of the text either side, not the whole text:
# the rules look at most CONTEXT_BYTES (1 KiB, detect.py) around a value or a key ID, and
# only what is found inside a token counts. A large text with a few encoded tokens is then
# not scanned a second time.
VIEW_MARGIN = 4096


def _view(data: bytes, kind: DecodingKind, substitutions: list[tuple[int, int, bytes]],
          repeats: dict[int, int] | None = None) -> DecodedView:
    """``repeats``: by substitution index, how many of its first decoded bytes repeat the one
    before (overlapping blocks of one long wrapped token)."""
    parts: list[bytes] = []
    view_starts: list[int] = []
    view_ends: list[int] = []
    original_starts: list[int] = []
    last = 0  # where the text copied so far ends
    length = 0
    for index, (start, end, decoded) in enumerate(substitutions):
        window_start = max(0, start - VIEW_MARGIN)
        if window_start > last + VIEW_MARGIN:
            # A gap: the text between windows is left out, a line break in its place. (Where
            # the windows meet or overlap nothing is left out, and no line break is added: one
            # would put a key ID four lines below a token five lines away.)
            parts.append(data[last : last + VIEW_MARGIN])
            parts.append(b"\n")
            length += len(parts[-2]) + 1
            last = window_start
        before = data[last:start]
        if repeats and index in repeats:
            # A block going on from the one before (which it overlaps, so nothing stands
            # between them): a line break between the two, so a key ending the first block
            # ends there too, and is found in it (the second's copy is a repeat, dropped).
            before = b"\n"
        parts.append(before)
        length += len(before)
        view_starts.append(length)
        parts.append(decoded)
        length += len(decoded)
        view_ends.append(length)
        original_starts.append(start)
        last = end
    parts.append(data[last : last + VIEW_MARGIN])
    repeat_ends = tuple(view_start + repeats.get(index, 0) for index, view_start in enumerate(view_starts)) \
        if repeats else ()
    return DecodedView(kind, b"".join(parts), tuple(view_starts), tuple(view_ends), tuple(original_starts), repeat_ends)
