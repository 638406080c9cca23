"""Differential fuzzer: the pure-Python engine, the Hyperscan prefilter, and a reference that
scans whole decoded texts (decode.VIEW_MARGIN made huge) must give identical findings.

    python benchmarks/fuzz_engines.py SECONDS [SEED] [OUTDIR]

Divergent texts are written to OUTDIR (default /tmp/fuzz-div) as <n>-<kind>.bin.
"""

from __future__ import annotations

import base64
import os
import random
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scanner.engine import decode, native  # noqa: E402
from scanner.engine.detect import detect  # noqa: E402
from tests.test_engine import _filler  # noqa: E402
from scanner.engine.rules import load_ruleset  # noqa: E402
from tests.keygen import KeySet  # noqa: E402

NAMES = [b"secret", b"aws_secret_access_key", b"AWS_SECRET_ACCESS_KEY", b"session_token", b"aws_session_token",
         b"smtp password", b"smtp_password", b"SecretAccessKey", b"secret_key", b"mail_pass", b"security_token"]
SEPS = [b" = ", b": ", b"=", b'": "', b":\n  ", b":\r\n  ", b" => '", b"\n", b"\r\n", b"\n\n", b" ", b"\t",
        b":\n  # rotated 2024\n  ", b": |\n  ", b"<SecretAccessKey>", b"\\n"]
ESCAPES = [b"\\/", b"\\u0041", b"&#65;", b"%2F", b"\\u{41}", b"\\x41", b"&#x41;", b"&#32;", b"\\u0073", b"%2B"]
ALLOWS = [b"  # keysweep:allow", b"  # gitleaks:allow", b" // pragma: allowlist secret"]
TEMPLATES = ["{secret_json}", "{key_id_u}", "{key_id_ub}", "{key_id_x}", "{key_id_hex_entity}", "{key_id_dec_entity}",
             "{creds_b64_b64}", "{jwt_creds}", "{secret_b64}", "{key_id_b64}", "{secret_url}", "{smtp_password}",
             "{bedrock_key}", "{bedrock_short_key}", "{key_id}", "{secret}", "{token}"]


def filler(rng: random.Random, size: int) -> bytes:
    return _filler(rng, size, extra=(b'{"a": [1, 2, 3], "b": {"c": "d\\u00e9"}, "e": null}', b"x" * rng.randint(1, 120)),
                   breaks=(b"\n", b"\n", b"\r\n"))


def wrapped_b64(rng: random.Random, payload: bytes) -> bytes:
    encoded = base64.b64encode(payload)
    width = rng.choice((64, 76, 44, 48))
    indent = rng.choice((b"", b"  ", b"    "))
    nl = rng.choice((b"\n", b"\r\n"))
    return nl.join(indent + encoded[i:i + width] for i in range(0, len(encoded), width))


def piece(rng: random.Random, keys: KeySet) -> bytes:
    roll = rng.random()
    if roll < 0.2:
        return rng.choice(NAMES) + rng.choice(SEPS) + keys.fill(rng.choice(TEMPLATES)).encode()
    if roll < 0.3:
        return keys.fill(rng.choice(TEMPLATES)).encode()
    if roll < 0.38:
        return rng.choice(ESCAPES) * rng.randint(1, 5)
    if roll < 0.45:
        return wrapped_b64(rng, rng.choice([keys.credentials_file().encode(), keys.secret.encode() * 2,
                                            (b"aws_secret_access_key: " + keys.secret.encode() + b"\n") * 3]))
    if roll < 0.5:
        return keys.jwt().encode()
    if roll < 0.55:
        return rng.choice(ALLOWS)
    if roll < 0.62:
        return rng.choice(NAMES)
    if roll < 0.67:
        if rng.random() < 0.5:  # an encoded value confirmed only by a key ID up to 4 lines away
            value = keys.fill(rng.choice(("{secret_json}", "{secret_url}", "{secret}"))).encode()
            gap = rng.choice((b"\n", b"\r\n")) * rng.randint(1, 5)
            return value + gap + keys.key_id.encode() if rng.random() < 0.5 else keys.key_id.encode() + gap + value
        return keys.key_id.encode() + rng.choice((b"\n\n", b"\n", b" ", b",")) + keys.secret.encode()
    if roll < 0.72:
        return base64.b64encode(rng.choice([keys.secret, keys.key_id, keys.credentials_file()]).encode())
    if roll < 0.77:
        return urllib.parse.quote(keys.secret, safe="").encode()
    if roll < 0.85:
        return rng.choice([b"\n", b"\r\n", b" ", b"=", b'"', b"'", b"\n  "])
    return bytes(rng.randrange(32, 127) for _ in range(rng.randint(0, 60)))


def small_text(rng: random.Random) -> bytes:
    keys = KeySet.generate()
    return b"".join(piece(rng, keys) for _ in range(rng.randint(1, 30)))


def large_text(rng: random.Random) -> bytes:
    """> 32 KiB, tokens placed near 4 KiB window edges of one another, escapes, dense runs."""
    keys = KeySet.generate()
    body = bytearray(filler(rng, rng.randint(33_000, 120_000)))
    shape = rng.random()
    if shape < 0.15:  # > 4096 escapes: the native list overflows
        body[rng.randrange(len(body)):0] = b"x = '" + rng.choice(ESCAPES) * rng.randint(4100, 6000) + b"'\n"
    elif shape < 0.3:  # many dense runs of 40+ characters
        run = lambda: bytes(rng.choice(b"ABCxyz019+/") for _ in range(rng.randint(40, 90)))  # noqa: E731
        block = b" ".join(run() for _ in range(rng.randint(260, 600)))
        at = rng.randrange(len(body))
        body[at:at] = block
    elif shape < 0.4:  # many escapes, under the cap
        for _ in range(rng.randint(50, 400)):
            at = rng.randrange(len(body))
            body[at:at] = rng.choice(ESCAPES)
    anchors = []
    for _ in range(rng.randint(1, 8)):
        p = piece(rng, keys) if rng.random() < 0.5 else (
            rng.choice(NAMES) + rng.choice(SEPS) + keys.fill(rng.choice(TEMPLATES[:12])).encode())
        if anchors and rng.random() < 0.6:  # near a window edge of an earlier token
            base = rng.choice(anchors)
            at = base + rng.choice((-1, 1)) * (decode.VIEW_MARGIN + rng.choice((rng.randint(-300, 300), rng.randint(0, 80))))
            at = min(max(at, 0), len(body))
        else:
            at = rng.randrange(len(body))
        if rng.random() < 0.5:
            at = body.find(b"\n", at) + 1
        body[at:at] = p + rng.choice((b"\n", b"\r\n", b""))
        anchors.append(at)
        if rng.random() < 0.3:  # the next token just past where the two views' windows meet
            after = at + len(p) + decode.VIEW_MARGIN + rng.randint(-8, 64)
            if after < len(body):
                body[after:after] = rng.choice((b" a\\/b ", b" %2F ", b" &#65; "))
    if rng.random() < 0.3:
        at = rng.randrange(len(body))
        body[at:at] = rng.choice(ALLOWS)
    return bytes(body)


def long_line_text(rng: random.Random) -> bytes:
    """One minified line (no newline for tens of KiB): every context window is cut at 1 KiB."""
    keys = KeySet.generate()
    parts = []
    for _ in range(rng.randint(20, 400)):
        roll = rng.random()
        if roll < 0.15:
            parts.append(b'"' + rng.choice(NAMES) + b'":"' + keys.fill(rng.choice(TEMPLATES)).encode() + b'"')
        elif roll < 0.3:
            parts.append(keys.key_id.encode())
        elif roll < 0.45:  # runs of the secret charset, some longer than a secret
            parts.append(bytes(rng.choice(b"ABCxyz019+/QwErT") for _ in range(rng.randint(30, 90))))
        elif roll < 0.55:
            parts.append(rng.choice(ESCAPES) * rng.randint(1, 3))
        elif roll < 0.6:  # a run across the 1 KiB cut of a key ID's window
            length = rng.randint(38, 90)
            parts.append(keys.key_id.encode() + b" " * (1004 - rng.randint(0, length + 2))
                         + (keys.secret + keys.secret[::-1]).encode()[:length])
        else:
            parts.append(b" " * rng.randint(1, 900))
    return b",".join(parts) + rng.choice((b"", b"\n"))


RUN_CHARS = frozenset(bytes([c]) for c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")

ALNUM = frozenset(c for c in RUN_CHARS if c.isalnum())


def summary(matches):
    return [(m.rule_id, m.secret.reveal(), m.line, m.column, m.decoded, m.pair) for m in matches]


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    outdir = sys.argv[3] if len(sys.argv) > 3 else "/tmp/fuzz-div"
    os.makedirs(outdir, exist_ok=True)
    rng = random.Random(seed)
    plain = load_ruleset()
    plain.health.prefilter = False
    pre = load_ruleset()
    pre.health.prefilter = native.Prefilter(pre)
    margin = decode.VIEW_MARGIN
    counts = {"small": 0, "large": 0, "long-line": 0}
    divergences = {"native": 0, "window": 0, "shape": 0}
    found = 0
    started = time.process_time()
    n = 0
    while time.process_time() - started < seconds:
        roll = rng.random()
        kind = "large" if roll < 0.25 else "long-line" if roll < 0.35 else "small"
        text = {"large": large_text, "long-line": long_line_text, "small": small_text}[kind](rng)
        counts[kind] += 1
        n += 1
        matches = detect(text, plain)
        expected = summary(matches)
        found += len(expected)
        # A plain secret is a whole run of its charset (every rule's lookarounds say so).
        for m in matches:
            value = m.secret.reveal().encode()
            if m.decoded is None and m.rule_id in ("aws-secret-access-key", "aws-access-key-id"):
                before, after = text[m.start - 1 : m.start], text[m.start + len(value) : m.start + len(value) + 1]
                chars = RUN_CHARS if m.rule_id == "aws-secret-access-key" else ALNUM  # a key ID may follow '/'
                if before in (b"n", b"r", b"t") and text[m.start - 2 : m.start - 1] == b"\\":
                    before = b""  # "\nAKIA...": an escaped line break in a log line
                if (before and before in chars) or (after and after in chars):
                    divergences["shape"] += 1
                    open(f"{outdir}/{seed}-{n}-shape.bin", "wb").write(text)
        if summary(detect(text, pre)) != expected:
            divergences["native"] += 1
            open(f"{outdir}/{seed}-{n}-native.bin", "wb").write(text)
        decode.VIEW_MARGIN = 10**12
        try:
            reference = summary(detect(text, plain))
        finally:
            decode.VIEW_MARGIN = margin
        if reference != expected:
            divergences["window"] += 1
            open(f"{outdir}/{seed}-{n}-window.bin", "wb").write(text)
        assert not plain.health.disabled and not pre.health.disabled, (plain.health.disabled, pre.health.disabled)
    print(f"seed={seed} texts={n} {counts} findings={found} divergences={divergences} "
          f"cpu={time.process_time() - started:.0f}s", flush=True)


if __name__ == "__main__":
    main()
