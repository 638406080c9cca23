"""Random text around real-shaped keys: the detector never raises, and every plain match
points at its value's exact line and column."""

from __future__ import annotations

import base64
import random
import urllib.parse

from scanner.engine.detect import as_scannable, detect
from scanner.engine.rules import load_ruleset
from tests.keygen import KeySet

RULESET = load_ruleset()
PIECES = [
    b"AKIA", b"secret", b"=", b"%2F", b"%", b"\n", b"\r\n", b" ", b"\\n", b"aws_secret_access_key: |\n  ",
    b"apiVersion: v1\nkind: Secret\n", b"==", b"\xff\xfe", b"\x00", "é✓".encode(), b"# keysweep:allow",
]


def test_random_texts() -> None:
    rng = random.Random(20261127)
    scanned = 0
    for _ in range(600):
        keys = KeySet.generate()
        parts = []
        for _ in range(rng.randint(1, 30)):
            roll = rng.random()
            if roll < 0.3:
                parts.append(rng.choice(PIECES))
            elif roll < 0.4:
                parts.append(keys.key_id.encode())
            elif roll < 0.5:
                parts.append(keys.secret.encode())
            elif roll < 0.55:
                parts.append(base64.b64encode(keys.secret.encode()))
            elif roll < 0.6:
                parts.append(urllib.parse.quote(keys.secret, safe="").encode())
            else:
                parts.append(bytes(rng.randrange(256) for _ in range(rng.randint(0, 60))))
        text = as_scannable(b"".join(parts))
        if text is None:
            continue
        scanned += 1
        lines = text.split(b"\n")
        for match in detect(text, RULESET):
            if match.decoded is None:
                line = lines[match.line - 1].decode("utf-8", "replace")
                assert line[match.column - 1 :].startswith(match.secret.reveal())
    assert scanned > 200
