"""The native prefilter (Hyperscan) changes nothing but speed: every rule example and a
generated corpus give identical findings with and without it."""

from __future__ import annotations

import base64
import random

import pytest

from scanner.engine import native
from scanner.engine.detect import Match, detect
from scanner.engine.rules import RuleSet, load_ruleset
from tests.keygen import KeySet

RULESET = load_ruleset()


def _summary(matches: list[Match]) -> list[tuple[str, str, int, int, str | None, int | None]]:
    return [(m.rule_id, m.secret.reveal(), m.line, m.column, m.decoded, m.pair) for m in matches]


def _corpus() -> list[bytes]:
    texts = []
    for rule in RULESET.rules:
        for template in (*rule.positive_examples, *rule.negative_examples):
            texts.append(KeySet.generate().fill(template).encode())
    rng = random.Random(20261128)
    pieces = [b"AKIA", b"ASIA", b"ABSK", b"secret", b"session_token=", b"session: ", b"=", b"\n", b" ", b"\\/",
              b"\\u0041", b"&#65;", b"%2F", b"eyJ", b"# keysweep:allow", b"aws_secret_access_key:\n  "]
    for _ in range(300):
        keys = KeySet.generate()
        parts = []
        for _ in range(rng.randint(1, 25)):
            roll = rng.random()
            if roll < 0.35:
                parts.append(rng.choice(pieces))
            elif roll < 0.5:
                parts.append(keys.key_id.encode())
            elif roll < 0.65:
                parts.append(keys.secret.encode())
            elif roll < 0.7:
                parts.append(keys.token.encode())
            elif roll < 0.75:
                parts.append(base64.b64encode(keys.secret.encode()))
            else:
                parts.append(bytes(rng.randrange(32, 127) for _ in range(rng.randint(0, 50))))
        texts.append(b"".join(parts))
    return texts


def _both_engines() -> tuple[RuleSet, RuleSet]:
    """The built-in rules twice: pure Python, and behind the native prefilter."""
    plain = load_ruleset()
    plain.health.prefilter = False
    prefiltered = load_ruleset()
    prefiltered.health.prefilter = native.Prefilter(prefiltered)
    return plain, prefiltered


@pytest.mark.skipif(not native.available(), reason="no hyperscan wheel for this platform: the pure-Python engine runs")
def test_hyperscan_prefilter_and_python_engine_find_the_same() -> None:
    plain, prefiltered = _both_engines()
    assert prefiltered.health.prefilter.database is not None
    found_any = 0
    skipped_any = 0
    for text in _corpus():
        expected = _summary(detect(text, plain))
        assert _summary(detect(text, prefiltered)) == expected, text
        found_any += bool(expected)
        skipped_any += "aws-access-key-id" not in prefiltered.health.prefilter.possible(text)
    assert found_any > 100
    assert skipped_any > 10  # the prefilter does rule texts out, or it would be no use


def test_python_engine_is_chosen_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(native.ENGINE_VARIABLE, "python")
    ruleset = load_ruleset()
    assert native.prefilter_for(ruleset, 10**9) is None
    assert native.engine_name().startswith("python")


def test_prefilter_is_not_built_for_small_scans() -> None:
    ruleset = load_ruleset()
    detect(b"hello\n" * 100, ruleset)
    assert ruleset.health.prefilter is None  # the pre-commit hook never imports hyperscan


def test_ruleset_pickles_without_the_native_database() -> None:
    import pickle

    if not native.available():
        pytest.skip("no hyperscan wheel for this platform")
    ruleset = load_ruleset()
    ruleset.health.prefilter = native.Prefilter(ruleset)
    copy = pickle.loads(pickle.dumps(ruleset))
    assert copy.health.prefilter is None and [r.id for r in copy.rules] == [r.id for r in ruleset.rules]


def _filler(rng: random.Random, size: int, extra: tuple[bytes, ...] = (), breaks: tuple[bytes, ...] = (b"\n",)) -> bytes:
    """Text like a large history blob: code, JSON with escapes, paths, long identifiers,
    base64 that decodes to nothing of interest (benchmarks/fuzz_engines.py adds its own lines)."""
    lines = [*extra,
        b'    "description": "The session token for the request, see \\"docs\\" and https:\\/\\/example.com\\/x",',
        b"from awscli.customizations.cloudformation.deployer import DeployerWithALongName",
        b"path = 'awscli/examples/cloudformation/deploy/with/a/very/long/path.rst'",
        b"data = '" + base64.b64encode(bytes(rng.randrange(256) for _ in range(60))) + b"'",
        b"blob = '" + base64.b64encode(b"plain words in base64, nothing here " * 3) + b"'",
        b'<p>It&#39;s here &#x27;quoted&#x27; \\u0020 text</p>',
        b"mail_server = 'smtp.example.com'  # no password",
        b"",
    ]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(lines) + rng.choice(breaks)
    return bytes(out[:size])


def _large_corpus() -> list[bytes]:
    """Texts past the size where the native pass lists base64 places and decoded views are
    cut to windows, with secrets far apart, near the edges, and in every encoding."""
    rng = random.Random(1128)
    texts = []
    for index in range(24):
        keys = KeySet.generate()
        pieces = [
            f"aws_secret_access_key = {keys.secret}\n".encode(),
            f'{{"SecretAccessKey": "{keys.fill("{secret_json}")}"}}\n'.encode(),
            f"id = {keys.fill('{key_id_u}')}\n".encode(),
            keys.fill("creds: {creds_b64_b64}\n").encode(),
            keys.fill("token: {jwt_creds}\n").encode(),
            f"config: {base64.b64encode(keys.credentials_file().encode()).decode()}\n".encode(),
            f"{keys.key_id}\n\n{keys.secret}\n".encode(),
            f"url = https://x/?secret={keys.fill('{secret_url}')}\n".encode(),
        ]
        if index % 4 == 0:  # more base64 places than the native pass lists: the fallback
            pieces.append(b"img = '" + base64.b64encode(b"ABCDEFabcdef" * 20000) + b"'\n")
        body = bytearray(_filler(rng, rng.randint(40_000, 200_000)))
        for piece in rng.sample(pieces, rng.randint(1, len(pieces))):
            at = body.find(b"\n", rng.randrange(len(body))) + 1
            body[at:at] = piece
        texts.append(bytes(body))
    return texts


@pytest.mark.skipif(not native.available(), reason="no hyperscan wheel for this platform: the pure-Python engine runs")
def test_engines_agree_on_large_texts() -> None:
    plain, prefiltered = _both_engines()
    found = 0
    for text in _large_corpus():
        expected = _summary(detect(text, plain))
        assert _summary(detect(text, prefiltered)) == expected
        found += len(expected)
    assert found > 40


def test_decoded_views_keep_context_far_into_a_large_text() -> None:
    """A view holds windows around decoded tokens, not the whole text: what a rule needs
    around a value (its name above it, a key ID a few lines away) is still there."""
    escaped, encoded = KeySet.generate(), KeySet.generate()
    while "/" not in escaped.secret:  # an escape to decode
        escaped = KeySet.generate()
    filler = b"x = 1  # nothing here\n" * 20_000
    text = (filler + b"aws_secret_access_key:\n  # rotated 2024\n  " + escaped.fill("{secret_json}").encode() + b"\n"
            + filler + encoded.key_id.encode() + b"\n\n"
            + f"value: {base64.b64encode(encoded.secret.encode()).decode()}\n".encode()
            + filler)
    ruleset = load_ruleset()
    ruleset.health.prefilter = False
    found = {(m.rule_id, m.secret.reveal(), m.decoded) for m in detect(text, ruleset)}
    assert ("aws-secret-access-key", escaped.secret, "escape") in found
    assert ("aws-access-key-id", encoded.key_id, None) in found
    assert ("aws-secret-access-key", encoded.secret, "base64") in found  # bare, two lines below the key ID


@pytest.mark.skipif(not native.available(), reason="no hyperscan wheel for this platform")
def test_native_base64_runs_are_the_runs_value_runs_finds() -> None:
    from scanner.engine.decode import BASE64_TABLE, value_runs

    prefilter = native.Prefilter(load_ruleset())
    rng = random.Random(40)
    alphabet = b"ABCxyz019+/"
    texts = [b"", b"A" * 39, b"A" * 40, b"A" * 40 + b" " + b"B" * 80, b"x" * 100_000]
    for _ in range(200):
        parts = []
        for _ in range(rng.randint(1, 60)):
            parts.append(bytes(rng.choice(alphabet) for _ in range(rng.choice((5, 39, 40, 41, 120)))))
            parts.append(rng.choice((b" ", b"\n", b"-", b"\x00", b"==")))
        texts.append(b"".join(parts))
    texts.append((b"A" * 45 + b" ") * 5000)  # dense: the rest goes to one translate
    for text in texts:
        assert prefilter.base64_runs(text) == value_runs(text, BASE64_TABLE, native.NATIVE_RUN), text[:80]
    # hyperscan < 0.8 cannot scan a memoryview: there every text takes the value_runs path.
    import hyperscan

    assert prefilter.scans_views == (tuple(map(int, hyperscan.__version__.split(".")[:2])) >= (0, 8))
    prefilter.scans_views = False
    for text in texts[:20]:
        assert prefilter.base64_runs(text) == value_runs(text, BASE64_TABLE, native.NATIVE_RUN), text[:80]


def test_a_run_cut_by_the_context_window_is_not_a_secret() -> None:
    """Found by benchmarks/fuzz_engines.py (hand-minimised): a key ID, then on the same long
    line a 60-character run ending past the 1 KiB window the near pattern runs in. The window
    cut the run at 40 characters and the pattern's lookahead saw the cut, not the rest of the
    run: its first 40 characters were reported as a secret. Scanning the whole line finds none."""
    from tests.keygen import secret_key

    keys = KeySet.generate()
    run = (secret_key() + secret_key())[:60]
    text = keys.key_id.encode() + b" " * (1024 - 60) + run.encode() + b"\n"
    for ruleset in _both_engines():
        found = {(m.rule_id, m.secret.reveal()) for m in detect(text, ruleset)}
        assert found == {("aws-access-key-id", keys.key_id)}
    # A 40-character value inside the window is still found, also one ending right at the cut.
    # (One running past the cut is not: the near context is 1 KiB, by design.)
    for gap in (1024 - 80, 1024 - 60):
        text = keys.key_id.encode() + b" " * gap + keys.secret.encode() + b" and more text\n"
        found = {(m.rule_id, m.secret.reveal()) for m in detect(text, _both_engines()[0])}
        assert ("aws-secret-access-key", keys.secret) in found, gap


def test_a_value_is_confirmed_only_by_context_in_its_own_window() -> None:
    """Found by benchmarks/fuzz_engines.py's reference (decode.VIEW_MARGIN made huge), hand-built:
    'secret</' then 200 forty-character values joined by '_' (each passes the value checks, so
    their windows merge into one), '>', and on the next line a secret, plain or escaped. The
    pattern's '</\\w+>' spans the 8 KiB of values. Merged windows once let the last value borrow
    that name: found when plain or decoded whole, missed by the 4 KiB decoded view. A value's
    context is its own window, whatever its neighbours: the same with or without them."""
    import secrets
    import string

    from scanner.engine import decode

    keys = KeySet.generate()
    while "/" not in keys.secret:
        keys = KeySet.generate()

    def value() -> str:
        while True:
            v = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40))
            if any(c.isdigit() for c in v) and any(c.isupper() for c in v) and any(c.islower() for c in v):
                return v

    plain, prefiltered = _both_engines()
    chain = "_".join(value() for _ in range(200))
    for head, expected in (("aws_secret</" + chain + ">\n  ", False),  # the name 8 KiB up: not its context
                           (chain + "\naws_secret_access_key:\n  ", True)):  # the name on the line above
        plainly = (head + keys.secret + "\n").encode()
        escaped = (head + keys.fill("{secret_json}") + "\n").encode()
        assert (("aws-secret-access-key", keys.secret) in
                {(m.rule_id, m.secret.reveal()) for m in detect(plainly, plain)}) is expected
        margin = decode.VIEW_MARGIN
        decode.VIEW_MARGIN = 10**9
        try:
            whole = _summary(detect(escaped, plain))
        finally:
            decode.VIEW_MARGIN = margin
        assert any(f[:2] == ("aws-secret-access-key", keys.secret) and f[4] == "escape" for f in whole) is expected
        assert _summary(detect(escaped, prefiltered)) == _summary(detect(escaped, plain)) == whole


@pytest.mark.parametrize("distance", [4097, 4200, 8000])
def test_a_view_adds_no_line_break_where_its_windows_meet(distance: int) -> None:
    """Found while fuzzing the windowed views against whole decoded texts: with the next
    decoded token between 4 and 8 KiB after an escaped secret, the view left nothing out
    between the two windows but still put a line break in, right after the secret: its key ID
    four lines below was five lines away, and the secret (confirmed by the key ID alone) was lost."""
    from scanner.engine import decode

    keys = KeySet.generate()
    while "/" not in keys.secret:  # an escape to decode
        keys = KeySet.generate()
    tail = b"\n\n\n\n" + keys.key_id.encode() + b"\n"
    text = (("value: " + keys.fill("{secret_json}")).encode() + tail + b"x" * (distance - len(tail) - 1) + b"\n"
            + b"path = a\\/b\n")
    plain, prefiltered = _both_engines()
    found = _summary(detect(text, plain))
    assert ("aws-secret-access-key", keys.secret) in {f[:2] for f in found}
    assert _summary(detect(text, prefiltered)) == found
    margin = decode.VIEW_MARGIN
    decode.VIEW_MARGIN = 10**9
    try:
        assert _summary(detect(text, plain)) == found
    finally:
        decode.VIEW_MARGIN = margin
