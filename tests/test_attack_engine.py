"""Attacks on the detection engine from outside: hostile shapes that once took super-linear
time, leak shapes other tools find, and encodings. Each test was written failing first
(notes/attack-engine.md in the session notes lists every attack tried)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from scanner.engine import native
from scanner.engine.detect import as_scannable, detect
from scanner.engine.rules import load_ruleset
from tests.conftest import run_keysweep
from tests.keygen import SECRET_ALPHABET, KeySet, key_id, secret_key

RULESET = load_ruleset()
KIB = 1024

# Shapes that grew with the square of the input (or worse). 256 KiB of each took minutes;
# linear code takes milliseconds. The bound is generous for a busy 2-core machine.
HOSTILE: dict[str, Callable[[int], bytes]] = {
    # The JWT pattern retried its unbounded header run from every "eyJ" inside one token.
    "a run of eyJ": lambda n: b"eyJ" * (n // 3),
    "a JWT header, then a payload run of eyJ": lambda n: (b"eyJhbGciOiJIUzI1NiJ9." + b"eyJ" * n)[:n],
}


def _fill(unit: Callable[[random.Random], str], size: int) -> bytes:
    rng = random.Random(11)
    parts: list[str] = []
    total = 0
    while total < size:
        parts.append(unit(rng))
        total += len(parts[-1])
    return "".join(parts).encode()[:size]


def _run(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(SECRET_ALPHABET) for _ in range(length))


# Shapes that made a built-in rule's pattern run past its time budget, which disables the rule
# for the rest of the scan: one such file and every later secret of that kind was missed.
# The name part of a pattern and what follows it could split a run in many ways, each tried.
BUDGET: dict[str, tuple[int, Callable[[int], bytes]]] = {  # KiB, shape
    "'secret' over and over, with a value now and then": (512, lambda n: _fill(
        lambda r: ("secret" * 6 + "sec ") * 20 + " " + secret_key(r) + " ", n)),
    "'secret' then dashes, then a value": (512, lambda n: _fill(
        lambda r: ("secret" + "-" * 120) * 6 + " " + secret_key(r) + " ", n)),
    "'secret' then dots and dashes to the line end, a value below": (512, lambda n: _fill(
        lambda r: ("secret" + "." * 80 + "-" * 40) * 6 + "\n" + secret_key(r) + "\n", n)),
    "'sessiontoken' inside one long base64 run": (1024, lambda n: _fill(
        lambda r: "sessiontoken" + _run(r, 20), n)),
}


def _pattern_corpus() -> list[bytes]:
    """Texts built from the pieces the built-in patterns look for, mixed at random."""
    rng = random.Random(21)
    words = ["aws_secret_access_key", "secret", "SecretAccessKey", "session_token", "sessiontoken", "token",
             "security-token", "smtp_password", "mail", "CREDENTIALS\t", "ABSKQmVkcm9ja0FQSUtleS", "bedrock-api-key-"]
    glue = ["=", ": ", " = ", "\n", "\\n", '"', "'", "\t", " <<EOF\n", "{\n", "\\/", "%2F", "</a>", "=="]
    texts = []
    for _ in range(400):
        parts = []
        for _ in range(rng.randrange(1, 40)):
            choice = rng.random()
            if choice < 0.15:
                parts.append(KeySet.generate().key_id)
            elif choice < 0.3:
                parts.append(secret_key(rng))
            elif choice < 0.4:
                parts.append(rng.choice(words))
            elif choice < 0.55:
                parts.append(rng.choice(glue))
            else:
                parts.append(_run(rng, rng.randrange(1, 120)))
        texts.append("".join(parts).encode())
    texts += [make(16 * KIB) for _, make in BUDGET.values()]
    # Every rule's own examples, alone and run together on one line.
    examples = [KeySet.generate().fill(text) for rule in RULESET.rules
                for text in (*rule.positive_examples, *rule.negative_examples)]
    texts += [text.encode() for text in examples]
    texts += [" ".join(rng.sample(examples, 8)).replace("\n", rng.choice([" ", "\n", "\\n"])).encode()
              for _ in range(100)]
    return texts


def test_each_built_in_pattern_and_its_stdlib_twin_match_at_the_same_places() -> None:
    """Built-in patterns run in the standard library's engine (2-10x faster a byte), as an
    overlapped search of its own: each must find exactly what regex's overlapped finditer
    finds, over whole texts and over windows of them (lookarounds at a window's edges)."""
    import sys

    from scanner.engine.detect import _overlapped, stdlib_twin

    corpus = _pattern_corpus()
    rng = random.Random(3)
    compared = 0
    for rule in RULESET.rules:
        for pattern in (*rule.patterns, *(rule.near.patterns if rule.near is not None else ())):
            twin = stdlib_twin(pattern)
            if sys.version_info >= (3, 11):
                assert twin is not None, (rule.id, pattern.pattern)
            if twin is None:
                continue
            for text in corpus:
                start = rng.randrange(0, len(text) // 2 + 1)
                for low, high in ((0, len(text)), (start, rng.randrange(start, len(text) + 1))):
                    expected = [(m.span(), m.span("secret")) for m in pattern.finditer(text, low, high, overlapped=True)]
                    assert [(m.span(), m.span("secret")) for m in _overlapped(twin, text, low, high)] == expected
                    compared += len(expected)
    assert compared > 2000, compared


def test_a_rule_files_pattern_never_runs_without_the_clock() -> None:
    from scanner.engine import detect as detect_module
    from scanner.engine.rules import RuleSet, parse_rule_file

    custom = parse_rule_file(
        "version: 1\nrules:\n  - id: acme-token\n    description: ACME token\n    kind: secret\n"
        "    patterns: ['(?P<secret>acme_[a-z0-9]{12})']\n"
        "    examples: {positive: ['token = acme_abcdef123456'], negative: ['acme_x']}\n", "custom.yaml")
    asked: list[bytes] = []
    original = detect_module.stdlib_twin

    def recording(pattern):  # type: ignore[no-untyped-def]
        asked.append(pattern.pattern)
        return original(pattern)

    ruleset = RuleSet(load_ruleset().rules + tuple(custom))
    try:
        detect_module.stdlib_twin = recording
        matches = detect(b"token = acme_abcdef123456\n", ruleset)
    finally:
        detect_module.stdlib_twin = original
    assert [m.rule_id for m in matches] == ["acme-token"]
    assert asked and custom[0].patterns[0].pattern not in asked  # the built-in ones were asked for, not this


@pytest.mark.parametrize("shape", sorted(BUDGET))
def test_built_in_rules_stay_within_their_time_budget(shape: str) -> None:
    ruleset = load_ruleset()
    kib, make = BUDGET[shape]
    data = make(kib * KIB)
    started = time.perf_counter()
    detect(data, ruleset)
    elapsed = time.perf_counter() - started
    assert not ruleset.health.disabled, f"{shape}: rules disabled (out of time): {ruleset.health.disabled}"
    assert elapsed < 10, f"{shape}: {elapsed:.1f} s for {kib} KiB"


@pytest.mark.parametrize("shape", sorted(HOSTILE))
def test_hostile_shape_scans_in_linear_time(shape: str) -> None:
    data = HOSTILE[shape](256 * KIB)
    started = time.perf_counter()
    detect(data, RULESET)
    elapsed = time.perf_counter() - started
    assert elapsed < 6, f"{shape}: {elapsed:.1f} s for 256 KiB"


def _found(text: str | bytes) -> set[tuple[str, str]]:
    data = text.encode() if isinstance(text, str) else text
    scannable = as_scannable(data)
    assert scannable is not None, "treated as binary"
    return {(m.rule_id, m.secret.reveal()) for m in detect(scannable, RULESET)}


def test_jwt_payload_is_still_decoded(keys: KeySet) -> None:
    assert ("aws-secret-access-key", keys.secret) in _found(f"Authorization: Bearer {keys.jwt()}")
    assert ("aws-secret-access-key", keys.secret) in _found(f'{{"token":"{keys.jwt()}"}}')


def _credentials(keys: KeySet) -> str:
    return f"# deploy\r\naws_access_key_id = {keys.key_id}\r\naws_secret_access_key = {keys.secret}\r\n"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_text(codec: str, keys: KeySet) -> None:
    # PowerShell, .NET and regedit write UTF-16; some tools omit the BOM. Its NUL bytes made
    # it binary, so it was never read.
    data = _credentials(keys).encode(codec)
    for variant in (data, data + b"x"):  # an odd byte count too
        assert {("aws-access-key-id", keys.key_id), ("aws-secret-access-key", keys.secret)} <= _found(variant)


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
# The second with a character whose low byte is NUL now and then (U+4E00: 00 4E), about as
# often as in real text (1 in 256).
@pytest.mark.parametrize("lead", ["\u4e2d\u6587\u6587\u672c", "\u4e2d\u6587\u672c\u4e66" * 64 + "\u4e00"])
def test_utf16_without_bom_whose_start_is_not_latin_is_text(codec: str, lead: str, keys: KeySet) -> None:
    """The sniff reads the first 8 KiB: CJK text there (no NUL byte at all, or NULs as the
    low byte of some characters) hid the ASCII keys further on."""
    data = ((lead * 5_000)[:5_000] + "\n" + _credentials(keys)).encode(codec)
    assert {("aws-access-key-id", keys.key_id), ("aws-secret-access-key", keys.secret)} <= _found(data)


def test_utf32_with_bom_is_text(keys: KeySet) -> None:
    # FF FE 00 00 also begins with the UTF-16 BOM: read as UTF-16 it was a NUL every other character.
    data = _credentials(keys).encode("utf-32")
    assert {("aws-access-key-id", keys.key_id), ("aws-secret-access-key", keys.secret)} <= _found(data)


def test_bom_bytes_before_ascii_text_do_not_hide_it(keys: KeySet) -> None:
    # FF FE before UTF-8 text: decoding it as UTF-16 turned every secret into CJK characters.
    data = b"\xff\xfe" + _credentials(keys).encode()
    assert {("aws-access-key-id", keys.key_id), ("aws-secret-access-key", keys.secret)} <= _found(data)


def test_binary_with_nul_bytes_stays_binary() -> None:
    rng = random.Random(5)
    noise = bytes(rng.randrange(256) for _ in range(20000))
    assert as_scannable(noise) is None
    assert as_scannable(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + noise) is None
    # 16-bit little-endian numbers below 256: zero high bytes, but control characters, not text.
    assert as_scannable(bytes(b for i in range(4000) for b in (i % 20, 0))) is None


def _rule_file(tmp_path: Path, pattern: str, charset: str | None = None) -> Path:
    value = f"\n    value: {{charset: '{charset}', min-length: 8}}" if charset else ""
    path = tmp_path / "rules.yaml"
    path.write_text("version: 1\nrules:\n  - id: custom\n    description: custom token\n    kind: bearer-token"
                    f"{value}\n    patterns: ['{pattern}']\n    examples: {{positive: [x]}}\n")
    return path


@pytest.mark.parametrize(("pattern", "charset"), [
    ("(?u)(?P<secret>TOK[0-9]{8})", None),  # a str-only flag on a bytes pattern
    ("(?V1)(?P<secret>TOK[0-9]{8})", None),  # VERSION1 against keysweep's VERSION0
    ("(?P<secret>TOK[0-9]{8})", "a-z](?u)["),  # the same, smuggled through a value charset
    # regex 2026.5.9 raises KeyError (not ValueError) for a version flag on a bytes pattern
    ("(?P<secret>TOK[0-9]{8})", "a-z](?V1)["),
])
def test_rule_pattern_the_regex_module_refuses_with_valueerror_exits_2(tmp_path: Path, pattern: str,
                                                                      charset: str | None) -> None:
    result = run_keysweep("scan", "-", "--rules", _rule_file(tmp_path, pattern, charset), "--no-progress")
    assert result.returncode == 2, result.stderr
    assert "rules.yaml" in result.stderr and "internal error" not in result.stderr


@pytest.mark.parametrize(("charset", "says"), [
    # A ']' closed the class and let a pattern follow that spelled out 10^7 atoms: 3 GB, 6 s to
    # compile in every process (the limits on `patterns` never saw it).
    ("a](?:(?:[a-y]{1000}){1000}){10}[a", "unescaped ']'"),
    ("[:alpha:]", "unescaped '['"),
    ("A-Z\\", "lone backslash"),
    ("A-Z" * 200, "at most 512"),
    ("\\p{Greek}", "matches no byte"),  # a single byte is never a Greek letter: the rule never fired
    ("\\p{L}--\\p{Lu}", "set operations"),  # regex's VERSION1 difference, read as characters
])
def test_a_value_charset_is_the_inside_of_one_class(tmp_path: Path, charset: str, says: str) -> None:
    import time

    from scanner.errors import RuleError

    began = time.monotonic()
    with pytest.raises(RuleError) as raised:
        load_ruleset([_rule_file(tmp_path, "(?P<secret>TOK[0-9]{8})", charset.replace("'", "''"))], builtin=False)
    assert time.monotonic() - began < 5
    message = str(raised.value)
    assert "rules.yaml" in message and "custom" in message and "value.charset" in message and says in message
    # Escaped brackets and regex's own class escapes stay allowed.
    ruleset = load_ruleset([_rule_file(tmp_path, "(?P<secret>TOK[0-9]{8})", "A-Z\\]\\[\\d")], builtin=False)
    shape = ruleset.by_id("custom").value
    assert shape is not None and all(shape.table[ord(c)] for c in "AZ][09") and not shape.table[ord("a")]


@pytest.mark.skipif(not native.available(), reason="no hyperscan wheel for this platform")
@pytest.mark.parametrize(("pattern", "text"), [
    ("(?P<secret>(?:TOKZ){e<=1}[0-9]{8})", b"id TOKA12345678"),  # regex's fuzzy matching
    ("\\m(?P<secret>TOK[0-9]{8})", b"TOK12345678"),  # regex's start-of-word
    ("(?P<secret>TOK[0-9]{,8})", b"TOK12345678"),  # {,n}: a quantifier to regex, text to Hyperscan
])
def test_prefilter_never_rules_out_a_custom_pattern_it_reads_differently(tmp_path: Path, pattern: str,
                                                                        text: bytes) -> None:
    path = _rule_file(tmp_path, pattern)
    plain = load_ruleset([path], builtin=False)
    plain.health.prefilter = False
    prefiltered = load_ruleset([path], builtin=False)
    prefiltered.health.prefilter = native.Prefilter(prefiltered)
    expected = [(m.rule_id, m.secret.reveal()) for m in detect(text, plain)]
    assert expected
    assert [(m.rule_id, m.secret.reveal()) for m in detect(text, prefiltered)] == expected


def test_scan_stdin_when_standard_input_is_closed_exits_2() -> None:
    import subprocess
    import sys

    proc = subprocess.run(["sh", "-c", '"$0" -m scanner scan - --no-progress <&-', sys.executable],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 2, proc.stderr
    assert "standard input" in proc.stderr and "internal error" not in proc.stderr


@pytest.mark.parametrize("width", [76, 64])
def test_base64_wrapped_over_lines_is_decoded(width: int, keys: KeySet) -> None:
    # `base64` wraps at 76 characters, openssl and PEM at 64: each line decoded alone cut the
    # key ID and the secret in two.
    import base64
    import textwrap

    encoded = base64.b64encode(keys.credentials_file().encode()).decode()
    lines = textwrap.wrap(encoded, width)
    assert len(lines) > 1
    for text in ("\n".join(lines) + "\n", "creds: |\r\n" + "".join(f"    {line}\r\n" for line in lines)):
        found = _found(text)
        assert {("aws-access-key-id", keys.key_id), ("aws-secret-access-key", keys.secret)} <= found, text


@pytest.mark.parametrize("width", [50, 57, 70, 41])
def test_base64_wrapped_at_a_width_that_is_no_multiple_of_4_is_decoded(width: int, keys: KeySet) -> None:
    """`base64 -w 57`, `fold -w 70`: groups of 4 run across the line breaks. Only widths that
    are a multiple of 4 were joined; the others were decoded line by line, misaligned after the
    first, and the keys were lost."""
    import base64
    import textwrap

    encoded = base64.b64encode(keys.credentials_file().encode()).decode()
    text = "-----BEGIN CREDS-----\n" + "\n".join(textwrap.wrap(encoded, width)) + "\n-----END CREDS-----\n"
    assert {("aws-access-key-id", keys.key_id), ("aws-secret-access-key", keys.secret)} <= _found(text)


def test_a_long_block_wrapped_at_an_odd_width_is_decoded_past_its_cuts(keys: KeySet) -> None:
    """Past MAX_TOKEN a block is decoded in overlapping pieces of whole lines: each piece must
    start and end on a whole group of 4, which lines of 57 characters do every 4th line."""
    import base64
    import textwrap

    from scanner.engine.decode import MAX_TOKEN

    filler = "".join(f"# line {i} of an inventory nobody reads\n" for i in range(MAX_TOKEN // 30))
    encoded = base64.b64encode((filler + keys.credentials_file() + filler).encode()).decode()
    assert len(encoded) > 2 * MAX_TOKEN
    found = _found("\n".join(textwrap.wrap(encoded, 57)) + "\n")
    assert {("aws-access-key-id", keys.key_id), ("aws-secret-access-key", keys.secret)} <= found


@pytest.mark.parametrize("width", [76, 57])
def test_a_key_ending_exactly_at_a_wrapped_blocks_cut_is_reported_once(width: int) -> None:
    """Past MAX_TOKEN wrapped base64 is decoded in overlapping blocks. A key ending exactly at
    the first block's end had the next block's first byte behind it in the view (no boundary:
    not found there), and in the next block it stood in the part repeated (dropped)."""
    import base64

    from scanner.engine.decode import MAX_TOKEN

    lines = MAX_TOKEN // width
    while lines * width % 4:
        lines -= 1
    cut = lines * width * 3 // 4  # decoded bytes in the first block
    for offset in (-1, 0, 1):
        keys = KeySet.generate()
        prefix = "aws_access_key_id = "
        text = ("z" * (cut + offset - len(prefix) - 20 - 1) + "\n" + prefix + keys.key_id
                + f"\naws_secret_access_key = {keys.secret}\n" + "filler line of text\n" * 3000)
        encoded = base64.b64encode(text.encode()).decode()
        wrapped = "data:\n" + "\n".join(encoded[i:i + width] for i in range(0, len(encoded), width)) + "\n"
        found = [(m.rule_id, m.secret.reveal()) for m in detect(wrapped.encode(), load_ruleset())]
        assert sorted(found) == [("aws-access-key-id", keys.key_id), ("aws-secret-access-key", keys.secret)], offset


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_base64_of_a_file_in_a_single_byte_encoding_is_decoded(encoding: str, keys: KeySet) -> None:
    """A Windows tool's base64 of an ANSI file: one accented letter or curly quote is not
    UTF-8, and the whole token was judged binary (both keys missed)."""
    import base64
    import textwrap

    text = ("# Configuración de producción \u201cprod\u201d\n" if encoding == "cp1252"
            else "# Configuración de producción\n") + keys.credentials_file()
    encoded = base64.b64encode(text.encode(encoding)).decode()
    wanted = {("aws-access-key-id", keys.key_id), ("aws-secret-access-key", keys.secret)}
    assert wanted <= _found(f"CREDS={encoded}\n")
    assert wanted <= _found("\n".join(textwrap.wrap(encoded, 76)) + "\n")


@pytest.mark.parametrize("extra", ["", "x", "xy"])  # each length mod 3: no, one or two '=' dropped
def test_base64_written_without_its_padding_is_decoded(extra: str, keys: KeySet) -> None:
    """base64url tools and `| tr -d =` drop the padding: 2 lengths in 3 then left a token that
    is not a multiple of 4, and the credentials file in it was not looked at."""
    import base64

    encoded = base64.b64encode((keys.credentials_file() + extra).encode()).decode()
    for token in (encoded, encoded.rstrip("=")):
        found = _found(f"CREDS={token}\n")
        assert {("aws-access-key-id", keys.key_id), ("aws-secret-access-key", keys.secret)} <= found, token
    # Padding that is there but short is not base64: not decoded (nor is a run one past a group).
    if encoded.endswith("=="):
        assert _found(f"CREDS={encoded[:-1]}\n") == set()


def test_allow_comment_on_a_long_line_covers_only_what_is_near_it() -> None:
    # A minified bundle or a one-line JSON dump is one line: a single "pragma: allowlist
    # secret" anywhere in it hid every key in the file.
    first, second = KeySet.generate(), KeySet.generate()
    padding = ",".join(f'"k{i}": "{"v" * 60}"' for i in range(200))
    text = (f'{{"a": {{"AccessKeyId": "{first.key_id}", "note": "keysweep:allow"}}, {padding}, '
            f'"b": {{"AccessKeyId": "{second.key_id}", "SecretAccessKey": "{second.secret}"}}}}')
    found = _found(text)
    assert ("aws-access-key-id", first.key_id) not in found
    assert {("aws-access-key-id", second.key_id), ("aws-secret-access-key", second.secret)} <= found
    # On an ordinary line the comment still covers the whole line.
    assert not _found(f"AWS_SECRET_ACCESS_KEY={first.secret}  # keysweep:allow")


def test_work_done_between_matches_does_not_count_against_the_pattern_budget(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """regex's time budget runs from a pattern's first match to its last, counting whatever
    the caller does in between: checking 50,000 key IDs on one line took longer than the
    budget on a busy machine, and the key-ID rule was switched off for the rest of the scan
    (every later key missed). The budget is small here so the checks alone exceed it."""
    from scanner.engine import detect as engine
    from tests.keygen import key_id

    monkeypatch.setattr(engine, "PATTERN_TIMEOUT", 0.2)
    monkeypatch.setattr(engine, "PATTERN_SECONDS_PER_MIB", 0.0, raising=False)
    entropy_at_least = engine.entropy_at_least

    def slow_check(value: bytes, threshold: float) -> bool:
        # Each value's check made slow (50 us of CPU), the pattern left as it is: the checks
        # outlast the budget many times over while the pattern's own time (~10 ms for 8,000
        # matches) stays far under it, however busy the machine (two test workers share it).
        until = time.process_time() + 50e-6
        while time.process_time() < until:
            pass
        return entropy_at_least(value, threshold)

    monkeypatch.setattr(engine, "entropy_at_least", slow_check)
    rng = random.Random(5)
    ids = [key_id(rng=rng) for _ in range(8_000)]
    ruleset = load_ruleset()
    ruleset.health.prefilter = False  # the pure-Python engine: every value checked in Python
    started = time.process_time()
    found = detect(" ".join(ids).encode(), ruleset)
    assert time.process_time() - started > 0.3  # the checks alone outlast the budget
    assert not ruleset.health.disabled
    assert {m.secret.reveal() for m in found} == set(ids)


def test_a_pattern_over_a_large_text_gets_a_budget_in_proportion() -> None:
    from scanner.engine.detect import PATTERN_TIMEOUT, pattern_budget

    assert pattern_budget(0) == PATTERN_TIMEOUT
    assert pattern_budget(25 << 20) > pattern_budget(1 << 20) > PATTERN_TIMEOUT  # linear, not fixed


def test_allow_values_pattern_that_backtracks_reports_the_finding_in_time(tmp_path: Path) -> None:
    """allow-values comes from the scanned repository's own configuration (hostile): a pattern
    that backtracks for a minute on a 40-character secret allows nothing and holds up nothing."""
    keys = KeySet.generate()
    (tmp_path / "app.env").write_text(f"aws_secret_access_key = {keys.secret}\n")
    (tmp_path / ".keysweep.yaml").write_text("allow-values: ['^([\\w/+]|[\\w/+][\\w/+])*[^\\w/+]$']\n")
    started = time.monotonic()
    result = run_keysweep("scan", "--no-history", "--format", "json", "--show-secrets", tmp_path, timeout=60)
    assert result.returncode == 1, result.stderr
    assert [f["secret"] for f in result.json()["findings"]] == [keys.secret]
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("batch", [1, 2, 7])
def test_matches_taken_in_batches_are_the_matches_of_one_call(monkeypatch: pytest.MonkeyPatch, batch: int) -> None:
    """Each batch is a call of its own, starting after the last match's start: the same
    overlapped matches, lookbehinds and line anchors included, as one call over the window."""
    import regex

    from scanner.engine import detect as engine

    monkeypatch.setattr(engine, "MATCH_BATCH", batch)
    ruleset = load_ruleset()
    patterns = [p for r in ruleset.rules for p in (*r.patterns, *(r.near.patterns if r.near else ()))]
    patterns += [regex.compile(rb"(?P<secret>.)"), regex.compile(rb"(?<=x)(?P<secret>\w{2,5})"),
                 regex.compile(rb"^(?P<secret>\w+)", regex.M),
                 # Empty matches (the last one at the window's end once looped for good), \G.
                 regex.compile(rb"(?P<secret>)"), regex.compile(rb"(?P<secret>$)", regex.M),
                 regex.compile(rb"\G(?P<secret>\w+)")]
    rng = random.Random(batch)
    alphabet = b"ax \nAKIA0123456789/+=secret:SECRET_key\"'"
    for _ in range(40):
        text = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 300)))
        start = rng.randrange(0, len(text) + 1)
        end = rng.randrange(start, len(text) + 1)
        for pattern in patterns:
            whole = [(m.span(), m.span("secret")) for m in pattern.finditer(text, start, end, overlapped=True)]
            batched = [(m.span(), m.span("secret"))
                       for m in engine._matches(ruleset.rules[0], pattern, text, start, end, ruleset.health)]
            assert batched == whole


def test_an_allowlist_pattern_that_backtracks_costs_one_budget_not_one_per_value(tmp_path: Path) -> None:
    """A rule file's allow pattern that backtracks on every value: the first value to run out of
    time switches the rule off, and the other values do not each wait 2 s for theirs."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - id: custom\n    description: custom token\n    kind: bearer-token\n"
                     "    patterns: ['(?P<secret>TOK[A-Za-z0-9]{37})']\n"
                     "    allow: ['^(\\w|\\w\\w)*[^\\w]$']\n    examples: {positive: [x]}\n")
    rng = random.Random(9)
    values = ["TOK" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789") for _ in range(37))
              for _ in range(30)]
    (tmp_path / "scan").mkdir()
    (tmp_path / "scan" / "tokens.txt").write_text("\n".join(values) + "\n")
    started = time.monotonic()
    result = run_keysweep("scan", "--no-history", "--rules", rules, "--no-progress", tmp_path / "scan", timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode == 3, result.stderr  # incomplete: the rule was switched off, and said so
    assert "custom" in result.stderr
    assert elapsed < 20, f"{elapsed:.1f} s: each value waited for the budget"


def test_a_value_rule_pattern_that_backtracks_costs_one_budget_not_one_per_window(tmp_path: Path) -> None:
    """A value-driven rule's pattern that backtracks in every window (values far apart, so each
    has its own): the first window to run out of time switches the rule off for the others."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - id: custom\n    description: custom token\n    kind: bearer-token\n"
                     "    value: {charset: 'A-Za-z0-9', min-length: 30, max-length: 30}\n"
                     "    patterns: ['(?:\\w|\\w\\w)*[^\\w]\\s(?P<secret>[A-Za-z0-9]{30})']\n"
                     "    examples: {positive: [x]}\n")
    rng = random.Random(4)
    blocks = []
    for _ in range(30):
        value = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789") for _ in range(30))
        blocks.append("w" * 60 + " " + value + "\n" + "." * 4000 + "\n")  # windows 1 KiB around each, far apart
    (tmp_path / "scan").mkdir()
    (tmp_path / "scan" / "tokens.txt").write_text("".join(blocks))
    started = time.monotonic()
    result = run_keysweep("scan", "--no-history", "--rules", rules, "--no-progress", tmp_path / "scan", timeout=150)
    elapsed = time.monotonic() - started
    assert result.returncode == 3, result.stderr  # the rule was switched off, and said so
    assert "custom" in result.stderr
    assert elapsed < 20, f"{elapsed:.1f} s: each window waited for the budget"


@pytest.mark.parametrize("pattern", ["(?P<secret>[A-Za-z0-9]{20,})", "(?s)(?P<secret>.+)", "(?P<secret>(?R)?a)"])
def test_overlapping_long_matches_are_bounded_like_slow_ones(tmp_path: Path, pattern: str) -> None:
    """A rule file's pattern whose overlapped matches are long runs again from every position
    (N matches of N bytes: quadratic work in the checks after each match, which regex's clock
    does not count) is out of budget once its matches outgrow the text: exit 3 naming it, in
    time linear in the text, as a repository's own configuration could bring it."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - id: greedy\n    description: d\n    kind: bearer-token\n"
                     f"    patterns: ['{pattern}']\n    examples: {{positive: [x]}}\n")
    rng = random.Random(4)
    (tmp_path / "scan").mkdir()
    (tmp_path / "scan" / "run.txt").write_text("".join(rng.choice("aaaaaaaaaaaaaaaaL0") for _ in range(40_000)))
    started = time.monotonic()
    result = run_keysweep("scan", "--no-history", "--rules", rules, "--no-progress", tmp_path / "scan", timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode == 3 and "rule 'greedy'" in result.stderr, result.stderr
    assert elapsed < 15, f"{elapsed:.1f} s"


def test_built_in_rules_match_each_byte_about_once(keys: KeySet) -> None:
    """The bytes-matched bound never switches a built-in rule off, even on the densest shapes."""
    from benchmarks.adversarial import SHAPES

    for name, make in SHAPES.items():
        ruleset = load_ruleset()
        detect(make(256 * 1024), ruleset)
        assert not ruleset.health.disabled, name


def test_built_in_allow_patterns_run_in_linear_time_without_the_clock() -> None:
    """Built-in rules' allow patterns are searched without regex's timeout (Rule.builtin):
    each must stay linear on the longest values a rule admits (a session token has no upper
    bound), built from the characters the pattern itself names."""
    ruleset = load_ruleset()
    assert all(rule.builtin for rule in ruleset.rules)
    rng = random.Random(5)
    for rule in ruleset.rules:
        for pattern in rule.allow:
            source = pattern.pattern if isinstance(pattern.pattern, bytes) else b""
            letters = bytes(sorted(set(source.translate(None, b"()[]{}|\\^$*+?.")))) or b"a"
            for value in (bytes(rng.choice(letters) for _ in range(1 << 18)),
                          (letters[:1] * 7 + b"/") * (1 << 15), b"A" * (1 << 18)):
                started = time.process_time()
                pattern.search(value)
                assert time.process_time() - started < 4, (rule.id, source[:60])


def test_a_rule_file_from_elsewhere_keeps_the_clock_on_its_allow_patterns(tmp_path: Path) -> None:
    """Its allow patterns run under the budget (what that costs:
    test_an_allowlist_pattern_that_backtracks_costs_one_budget_not_one_per_value)."""
    rules = tmp_path / "r.yaml"
    rules.write_text("version: 1\nrules:\n  - id: mine\n    description: d\n    kind: bearer-token\n"
                     "    patterns: ['tok=(?P<secret>[a-z]{8,})']\n    allow: ['(a|aa)+$']\n"
                     "    examples: {positive: [tok=abcdefgh]}\n")
    ruleset = load_ruleset([rules])
    mine = next(rule for rule in ruleset.rules if rule.id == "mine")
    assert not mine.builtin


class _HalfSecondClock:
    """A perf_counter each reading of which is half a second later than the one before."""

    now = 0.0

    def perf_counter(self) -> float:
        self.now += 0.5
        return self.now


def test_a_rule_files_rule_is_switched_off_past_its_allowance_for_the_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each call has its budget; a rule file's pattern kept just under it on every file (1.9 s
    # a file, a thousand files) was never switched off. The clock here is fake: each reading
    # half a second later, so each call of the custom pattern costs 0.5 s.
    from scanner.engine import detect as detect_module
    from scanner.engine.rules import RuleSet, parse_rule_file

    custom = parse_rule_file(
        "version: 1\nrules:\n  - id: acme-token\n    description: ACME token\n    kind: secret\n"
        "    patterns: ['(?P<secret>acme_[a-z0-9]{12})']\n"
        "    examples: {positive: ['token = acme_abcdef123456'], negative: ['acme_x']}\n", "custom.yaml")
    ruleset = RuleSet(load_ruleset().rules + tuple(custom))

    monkeypatch.setattr(detect_module, "time", _HalfSecondClock())
    monkeypatch.setattr(detect_module, "RULE_SECONDS_PER_SCAN", 2.0)
    keys = KeySet.generate()
    found = []
    for _ in range(10):
        matches = detect(f"token = acme_abcdef123456\nid = {keys.key_id}\n".encode(), ruleset)
        found.append(({m.rule_id for m in matches}))
    assert all("aws-access-key-id" in rules for rules in found)  # built-in rules are not charged
    seen = ["acme-token" in rules for rules in found]
    first_miss = seen.index(False)
    assert 2 <= first_miss <= 6 and not any(seen[first_miss:]), seen  # found, then switched off for good
    assert ruleset.health.take() == ["time:acme-token"]  # reported once, as having spent the allowance


def _digit_rule() -> list:  # type: ignore[type-arg]
    from scanner.engine.rules import parse_rule_file

    return list(parse_rule_file(
        "version: 1\nrules:\n  - id: any-digit\n    description: a digit after letters\n    kind: secret\n"
        "    patterns: ['[a-z]{0,300}(?P<secret>[0-9])']\n"
        "    examples: {positive: ['abc1'], negative: ['abc']}\n", "digits.yaml"))


def test_a_rule_files_rule_reporting_values_without_end_is_switched_off() -> None:
    # Every digit of a text is a value of this rule: 587,000 of them in 1 MB were each located,
    # paired and reported outside any clock (37 s, 1.6 GB). The rule files' rules may report
    # 10,000 values in a scan and 1,000 more per MiB; past that the rule is off, what it found
    # before is kept, and the built-in rules go on.
    from scanner.engine.detect import RULE_VALUES_PER_MIB, RULE_VALUES_PER_SCAN
    from scanner.engine.rules import RuleSet

    ruleset = RuleSet(load_ruleset().rules + tuple(_digit_rule()))
    rng = random.Random(7)
    keys = KeySet.generate()
    text = "".join(rng.choice("abcxkq0123456789 ") for _ in range(1 << 20)) + f"\nid = {keys.key_id}\n"
    began = time.process_time()
    matches = detect(text.encode(), ruleset)
    took = time.process_time() - began
    digits = [m for m in matches if m.rule_id == "any-digit"]
    assert 0 < len(digits) <= RULE_VALUES_PER_SCAN + RULE_VALUES_PER_MIB * 2
    assert keys.key_id in {m.secret.reveal() for m in matches}
    assert ruleset.health.take() == ["values:any-digit"]  # reported, so the scan says it is incomplete
    assert took < 20, took  # 37 s when every value was reported (generous: CI machines vary)


def test_finding_and_checking_a_rule_files_values_is_charged_to_the_allowance(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hundred value rules, each with a charset of its own: their runs were found, checked
    and windowed outside any clock (60 s and 1 GB a MiB), and each charset's runs were kept
    for the text's lifetime. Now that work is charged, and the runs are not kept."""
    from scanner.engine import detect as detect_module
    from scanner.engine.rules import RuleSet, parse_rule_file

    letters = "zyxwvutsrq"
    text = "version: 1\nrules:\n" + "".join(
        f"  - id: v{n}\n    description: d\n    kind: secret\n    keywords: [zqxj]\n"
        f"    value: {{charset: 'a-{letters[n % 10]}0-{9 - n // 10}A-Z', min-length: 8}}\n"
        f"    patterns: ['zqxj(?P<secret>[a-{letters[n % 10]}0-{9 - n // 10}A-Z]{{8,}})']\n"
        f"    examples: {{positive: ['zqxjabcdefgh12']}}\n" for n in range(100))
    ruleset = RuleSet(load_ruleset().rules + tuple(parse_rule_file(text, "charsets.yaml")))
    monkeypatch.setattr(detect_module, "RULE_SECONDS_PER_SCAN", 0.3)
    monkeypatch.setattr(detect_module, "PATTERN_SECONDS_PER_MIB", 0.0)  # the allowance is 0.3 s, whatever the size
    rng = random.Random(4)
    data = ("zqxj\n" + " ".join("".join(rng.choice("abcdefgh0123") for _ in range(8)) for _ in range(60_000))).encode()
    kept: list[int] = []
    original_get = detect_module._RunCache.get

    def counting_get(self, table, min_length, *, keep=True):  # type: ignore[no-untyped-def]
        result = original_get(self, table, min_length, keep=keep)
        kept.append(len(self.runs))
        return result

    monkeypatch.setattr(detect_module._RunCache, "get", counting_get)
    began = time.perf_counter()
    detect(data, ruleset)
    took = time.perf_counter() - began
    events = ruleset.health.take()
    assert [event.partition(":")[0] for event in events].count("time") == 1, events
    assert took < 10, took  # uncharged, the hundred rules took ~30 s here
    assert max(kept, default=0) <= 2  # the built-in charsets' runs only (base64, and none other)


def test_a_rule_files_rule_cannot_take_a_built_in_finding_as_its_own() -> None:
    """A bare secret beside its key ID is the built-in rule's, found in its near pass; a rule
    file's rule matching the same 40 characters in its main pass took its place ("not a
    credential, safe to ignore"), and the severity with it."""
    from scanner.engine.rules import RuleSet, parse_rule_file

    custom = parse_rule_file(
        "version: 1\nrules:\n  - id: test-fixture-hash\n    description: not a credential\n    kind: session-token\n"
        "    patterns: ['(?P<secret>[A-Za-z0-9/+]{40})']\n"
        "    examples: {positive: ['abcdefghijABCDEFGHIJ0123456789abcdefghij']}\n", "relabel.yaml")
    ruleset = RuleSet(load_ruleset().rules + tuple(custom))
    keys = KeySet.generate()
    matches = detect(f"Access key ID,Secret access key\n{keys.key_id},{keys.secret}\n".encode(), ruleset)
    assert {(m.rule_id, m.secret.reveal()) for m in matches} == {
        ("aws-access-key-id", keys.key_id), ("aws-secret-access-key", keys.secret)}


def test_a_rule_files_key_id_cannot_take_an_aws_secrets_pairing() -> None:
    """A rule file may declare any shape a key ID: one beside the secret took its pairing from
    the real key ID five lines above (verification signs with the pair)."""
    from scanner.engine.rules import RuleSet, parse_rule_file

    custom = parse_rule_file(
        "version: 1\nrules:\n  - id: fake-id\n    description: d\n    kind: key-id\n"
        "    patterns: ['(?P<secret>KSID[A-Z0-9]{16})']\n    examples: {positive: ['KSIDQWERTYUIOP234567']}\n",
        "pairsteal.yaml")
    ruleset = RuleSet(load_ruleset().rules + tuple(custom))
    keys = KeySet.generate()
    text = (f"aws_access_key_id = {keys.key_id}\n" + "# -\n" * 4
            + f"aws_secret_access_key = {keys.secret}  # KSIDQWERTYUIOP234567\n")
    matches = detect(text.encode(), ruleset)
    index = {m.secret.reveal(): i for i, m in enumerate(matches)}
    assert matches[index[keys.secret]].pair == index[keys.key_id]
    assert matches[index[keys.key_id]].pair == index[keys.secret]


def test_one_allow_marker_before_an_encoded_bundle_on_a_long_line_hides_none_of_it() -> None:
    """Findings decoded from a token stand at its start: a marker beside a 57 KB base64 bundle
    of 140 credentials hid every one of them ("no secrets found")."""
    import base64
    import json

    pairs = [KeySet.generate() for _ in range(140)]
    bundle = "".join(f"[p{n}]\naws_access_key_id = {k.key_id}\naws_secret_access_key = {k.secret}\n"
                     for n, k in enumerate(pairs))
    line = json.dumps({"note": "keysweep:allow", "blob": base64.b64encode(bundle.encode()).decode()}) + "\n"
    found = {m.secret.reveal() for m in detect(line.encode(), RULESET)}
    assert found == {v for k in pairs for v in (k.key_id, k.secret)}


def test_an_allowed_plain_copy_does_not_hide_an_encoded_copy_far_along_its_line() -> None:
    import base64

    keys = KeySet.generate()
    plain = f"aws_access_key_id={keys.key_id} aws_secret_access_key={keys.secret}"
    encoded = base64.b64encode(f"aws_access_key_id={keys.key_id}\naws_secret_access_key={keys.secret}\n".encode())
    filler = " ".join(["word"] * 1300)
    line = f'config = "{encoded.decode()}" ; {filler} ; {plain}  # keysweep:allow\n'
    found = {(m.secret.reveal(), m.decoded) for m in detect(line.encode(), RULESET)}
    assert found == {(keys.key_id, "base64"), (keys.secret, "base64")}  # the marker is 6 KB from the token


def test_windowing_for_a_rule_files_near_rules_is_charged(monkeypatch: pytest.MonkeyPatch) -> None:
    """Near rules with every `lines` from 0 to 50 windowed a MiB of key IDs 51 times (+23 s),
    outside any clock: that work is charged to the rule files' allowance now."""
    from scanner.engine import detect as detect_module
    from scanner.engine.rules import RuleSet, parse_rule_file

    text = "version: 1\nrules:\n" + "".join(
        f"  - id: n{n}\n    description: d\n    kind: secret\n"
        f"    near: {{kind: key-id, lines: {n + 1}, patterns: ['(?P<secret>zq{n:02d}[a-z]{{8}})']}}\n"
        f"    examples: {{positive: ['{{key_id}} zq{n:02d}abcdefgh']}}\n" for n in range(30))
    ruleset = RuleSet(load_ruleset().rules + tuple(parse_rule_file(text, "near.yaml")))
    monkeypatch.setattr(detect_module, "RULE_SECONDS_PER_SCAN", 0.2)
    monkeypatch.setattr(detect_module, "PATTERN_SECONDS_PER_MIB", 0.0)
    rng = random.Random(8)
    data = "".join(f"{key_id(rng=rng)}\n" for _ in range(20_000)).encode()
    detect(data, ruleset)
    events = ruleset.health.take()
    assert [event.partition(":")[0] for event in events].count("time") == 1, events


def test_switched_off_rules_are_told_once_each_and_those_sharing_a_spent_allowance_together() -> None:
    from scanner.engine.rules import switched_off_messages

    events = [("time:r1", "a.txt"), ("shared:r2", "a.txt"), ("time:r1", "b.txt"), ("shared:r3", "b.txt"),
              ("r4", "c.txt"), ("shared:r2", "d.txt"), ("values:r5", "e.txt")]
    messages = switched_off_messages(None, events)
    assert len(messages) == 4
    assert "the configuration's rule files ran past the time a scan allows their rules on a.txt, while rule 'r1'" \
        in messages[0]
    assert "rule 'r4' (?) ran past its time budget on c.txt" in messages[1]
    assert "more values than a scan allows their rules on e.txt, when rule 'r5'" in messages[2]
    assert messages[3].startswith("2 more rule(s) from rule files were switched off") and "'r2'" in messages[3]


def test_a_configurations_rule_files_cannot_spend_the_allowance_of_those_given_with_rules(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A repository's configuration names a rule that floods its values: it spends its own
    allowance, not that of the operator's --rules file, whose token is still found."""
    from scanner.engine import detect as detect_module
    from scanner.engine.rules import switched_off_messages

    monkeypatch.setattr(detect_module, "RULE_VALUES_PER_SCAN", 50)
    monkeypatch.setattr(detect_module, "RULE_VALUES_PER_MIB", 0)
    flood = tmp_path / "flood.yaml"
    flood.write_text("version: 1\nrules:\n  - id: any-digit\n    description: d\n    kind: secret\n"
                     "    patterns: ['[a-z]{0,30}(?P<secret>[0-9])']\n    examples: {positive: ['abc1']}\n")
    company = tmp_path / "company.yaml"
    company.write_text("version: 1\nrules:\n  - id: company-token\n    description: d\n    kind: secret\n"
                       "    patterns: ['(?P<secret>acme_[a-z0-9]{12})']\n    examples: {positive: ['acme_abcdef123456']}\n")
    ruleset = load_ruleset([flood], given=[company])
    rng = random.Random(2)
    noise = " ".join(f"ab{rng.randrange(10)}" for _ in range(500))
    first = detect(f"{noise} acme_{'k' * 11}1\n".encode(), ruleset)
    second = detect(f"token = acme_{'x' * 11}2\n{noise}\n".encode(), ruleset)
    assert {m.secret.reveal() for m in first + second if m.rule_id == "company-token"} == {
        f"acme_{'k' * 11}1", f"acme_{'x' * 11}2"}
    events = ruleset.health.take()
    assert events == ["values:any-digit"]
    message = switched_off_messages(ruleset, [(event, "a.txt") for event in events])[0]
    assert "the configuration's rule files reported more values" in message and "flood.yaml" in message


def test_the_rule_files_rules_share_one_allowance_of_values(monkeypatch: pytest.MonkeyPatch) -> None:
    from scanner.engine import detect as detect_module
    from scanner.engine.rules import RuleSet

    monkeypatch.setattr(detect_module, "RULE_VALUES_PER_SCAN", 5)
    monkeypatch.setattr(detect_module, "RULE_VALUES_PER_MIB", 0)
    ruleset = RuleSet(load_ruleset().rules + tuple(_digit_rule()))
    counts = [sum(m.rule_id == "any-digit" for m in detect(b"key a1 b2\n", ruleset)) for _ in range(4)]
    assert counts == [2, 2, 1, 0]  # one allowance for the whole scan, then off for good
    assert ruleset.health.take() == ["values:any-digit"]


def test_a_rule_files_rule_with_thousands_of_values_is_not_switched_off() -> None:
    from scanner.engine.rules import RuleSet, parse_rule_file

    custom = parse_rule_file(
        "version: 1\nrules:\n  - id: acme-token\n    description: ACME token\n    kind: secret\n"
        "    patterns: ['(?P<secret>acme_[a-z0-9]{12})']\n"
        "    examples: {positive: ['token = acme_abcdef123456'], negative: ['acme_x']}\n", "custom.yaml")
    ruleset = RuleSet(load_ruleset().rules + tuple(custom))
    rng = random.Random(3)
    values = {"acme_" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
              for _ in range(5000)}
    found = detect("".join(f"token{n} = {v}\n" for n, v in enumerate(sorted(values))).encode(), ruleset)
    assert {m.secret.reveal() for m in found if m.rule_id == "acme-token"} == values
    assert ruleset.health.take() == []


def test_the_rule_files_rules_share_one_allowance(monkeypatch: pytest.MonkeyPatch) -> None:
    # 2,800 small rules each with budgets of their own made 256 KiB of rule files cost hours:
    # the allowance is one for all of them, and once spent every one of them is off.
    from scanner.engine import detect as detect_module
    from scanner.engine.rules import RuleSet, parse_rule_file

    text = "version: 1\nrules:\n" + "".join(
        f"  - id: r{index}\n    description: d\n    kind: secret\n    patterns: ['(?P<secret>acme{index}_[a-z0-9]{{12}})']\n"
        f"    examples: {{positive: ['acme{index}_abcdef123456']}}\n" for index in range(20))
    ruleset = RuleSet(load_ruleset().rules + tuple(parse_rule_file(text, "many.yaml")))

    monkeypatch.setattr(detect_module, "time", _HalfSecondClock())
    monkeypatch.setattr(detect_module, "RULE_SECONDS_PER_SCAN", 3.0)
    keys = KeySet.generate()
    matches = detect(f"acme0_abcdef123456 {keys.key_id}\n".encode(), ruleset)
    assert keys.key_id in {m.secret.reveal() for m in matches}  # the built-in rules go on
    events = ruleset.health.take()
    assert 10 <= len(events) < 20  # those that ran before the allowance was spent are told off next time
    clock = detect_module.time.now  # type: ignore[attr-defined]
    again = detect(b"acme5_abcdef123456 acme0_abcdef123456\n", ruleset)
    assert not [m for m in again if m.rule_id.startswith("r")]
    assert detect_module.time.now - clock < 10  # type: ignore[attr-defined]  # none of them runs again
    events += ruleset.health.take()
    # All off, each said once: the one that spent the allowance as its cause, the others as sharing it.
    assert sorted(event.rpartition(":")[2] for event in events) == sorted(f"r{index}" for index in range(20))
    assert [event.partition(":")[0] for event in events].count("time") == 1
    assert all(event.partition(":")[0] in ("time", "shared") for event in events)


@pytest.mark.parametrize("name", ["secret", "aws_session_token", "smtp_password", "token "])
def test_names_piled_before_each_value_do_not_switch_a_built_in_rule_off(name: str) -> None:
    """Forty names before each value on a line are forty overlapping matches of one value: what
    the checks cost is the values they hand over, not the whole matches (the matches of a line
    like this outgrew 16 bytes per byte of text, and 200 such lines switched the secret rule off
    for the rest of the scan, so a real key further on was missed)."""
    rng = random.Random(6)
    lines = [name * 40 + " = " + "".join(rng.choice(SECRET_ALPHABET.replace("/", "").replace("+", ""))
                                           for _ in range(40)) for _ in range(200)]
    keys = KeySet.generate()
    text = ("\n".join(lines) + f"\naws_access_key_id={keys.key_id}\naws_secret_access_key={keys.secret}\n"
            f"aws_session_token={keys.token}\n").encode()
    ruleset = load_ruleset()
    found = {m.secret.reveal() for m in detect(text, ruleset)}
    assert ruleset.health.take() == []
    assert {keys.key_id, keys.secret, keys.token} <= found


def test_matches_exactly_at_the_matched_bytes_bound_are_all_checked(tmp_path: Path) -> None:
    """A rule file's 16-character pattern matching at nearly every position hands over just
    under 16 bytes per byte of text: inside its bound, so the scan completes with the one value
    that passes (each match counted a byte longer than it is, it was switched off)."""
    from scanner.engine.rules import load_ruleset as load

    rng = random.Random(8)
    lines = ["".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(1000)) for _ in range(200)]
    text = ("\n".join(lines) + "\nZX9K2M4P7R1T3V5W\n").encode()
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - id: custom\n    description: d\n    kind: secret\n"
                     "    patterns: ['(?P<secret>[A-Z0-9]{16})']\n    require: [digit]\n    min-entropy: 0\n"
                     "    examples: {positive: ['x ZX9K2M4P7R1T3V5W y']}\n")
    ruleset = load([rules])
    found = [m.secret.reveal() for m in detect(text, ruleset) if m.rule_id == "custom"]
    assert ruleset.health.take() == [] and found == ["ZX9K2M4P7R1T3V5W"]


def test_a_rule_out_of_matched_bytes_still_reports_what_it_found_before(tmp_path: Path) -> None:
    """A rule file's rule whose values outgrow their bound is switched off, but the values it
    handed over before that are checked while it is still on: the tokens above the long run
    are reported (they were dropped with the batch that ran over)."""
    from scanner.engine.rules import load_ruleset as load

    rng = random.Random(9)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    tokens = ["".join(rng.choice(alphabet) for _ in range(30)) for _ in range(5)]
    text = ("".join(f"token_{i} = {t}\n" for i, t in enumerate(tokens))
            + "blob = " + "".join(rng.choice(alphabet) for _ in range(3000)) + "\n").encode()
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - id: custom\n    description: d\n    kind: secret\n"
                     "    patterns: ['(?P<secret>[A-Za-z0-9]{24,})']\n    min-entropy: 3.5\n"
                     "    examples: {positive: ['k = ZX9K2M4P7R1T3V5WZX9K2M4P7R1T3V5Wabcdefqwerty']}\n")
    ruleset = load([rules])
    found = {m.secret.reveal() for m in detect(text, ruleset)}
    assert ruleset.health.take() == ["custom"]
    assert set(tokens) <= found
