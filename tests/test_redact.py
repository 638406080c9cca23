"""Redaction of repository text: every found value, in any common encoding, in linear time."""

from __future__ import annotations

import base64
import time
import urllib.parse
from pathlib import Path

import pytest

from scanner.redact import redactor_for
from scanner.secret import Secret
from tests.keygen import KeySet


def test_every_value_and_encoding_is_replaced() -> None:
    keys = KeySet.generate()
    other = KeySet.generate()
    redact = redactor_for([Secret("key-id", keys.key_id), Secret("secret", keys.secret),
                           Secret("session-token", keys.token)])
    b64 = base64.b64encode(f"x{keys.secret}yz".encode()).decode()
    text = (f"{keys.secret}{keys.key_id} id={keys.key_id}, {urllib.parse.quote(keys.secret, safe='')} "
            f"{b64} {keys.token} {other.key_id} end {keys.key_id}")
    redacted = redact(text)
    for leak in (keys.secret, keys.key_id, keys.token, b64[4:48], urllib.parse.quote(keys.secret, safe="")):
        assert leak not in redacted
    # Adjacent values are each replaced; text that is not a found value is untouched.
    assert redacted.startswith(f"********{keys.key_id[:8]}… id={keys.key_id[:8]}…, ")
    assert other.key_id in redacted and redacted.endswith(f" end {keys.key_id[:8]}…")
    assert redact("no values here") == "no values here"


def test_a_value_spelled_in_escapes_is_replaced() -> None:
    """Every spelling the detector's escape decoder reads, whole, in either case of hex: a
    commit subject holding the secret as `\\x4d\\x65...` printed it in every report."""
    keys = KeySet.generate()
    while "/" not in keys.secret:
        keys = KeySet.generate()
    redact = redactor_for([Secret("secret", keys.secret)])
    codes = [ord(c) for c in keys.secret]
    spellings = [keys.secret.replace("/", "\\/"), "".join(f"\\x{c:02x}" for c in codes),
                 "".join(f"\\x{c:02X}" for c in codes), "".join(f"\\u{c:04x}" for c in codes),
                 "".join(f"\\u{c:04X}" for c in codes), "".join(f"&#x{c:x};" for c in codes),
                 "".join(f"&#x{c:X};" for c in codes), "".join(f"&#{c};" for c in codes)]
    for spelling in spellings:
        assert redact(f"add {spelling} here") == "add ******** here", spelling


def test_a_value_spelled_with_mixed_escapes_is_replaced_where_it_stands() -> None:
    """Each character its own way (half escaped, mixed-case hex, `\\/` among `\\xNN`, lower-case
    `%2f` beside upper-case letters): no list of spellings holds them all, so the text is also
    read as the decoders read it, and the places found there are redacted in the original."""
    import random

    keys = KeySet.generate()
    redact = redactor_for([Secret("secret", keys.secret)])
    rng = random.Random(5)
    for _ in range(50):
        spelled = "".join(rng.choice([char, f"\\x{ord(char):02x}", f"\\x{ord(char):02X}", f"&#{ord(char)};",
                                      f"&#X{ord(char):x};", f"%{ord(char):02x}", f"\\u{{{ord(char):x}}}"])
                          if char != "/" else rng.choice(["/", "\\/", "\\\\/", "%2f"]) for char in keys.secret)
        assert redact(f"add {spelled} here \\x41") == "add ******** here \\x41", spelled
    # Escapes alone cost one pass: a megabyte of them is read in linear time.
    import time

    began = time.perf_counter()
    assert redact("&#65;" * 200_000) == "&#65;" * 200_000
    assert time.perf_counter() - began < 10


def test_cost_does_not_grow_with_the_number_of_values() -> None:
    keys = [KeySet.generate() for _ in range(1500)]
    values = [Secret("key-id", k.key_id) for k in keys] + [Secret("secret", k.secret) for k in keys]
    few, many = redactor_for(values[:2]), redactor_for(values)
    # The worst shape: one long run of characters that values are made of.
    text = ("AKIA" + KeySet.generate().secret.replace("/", "A").replace("+", "B")) * 5000  # 220 KB
    timings = []
    for redact in (few, many):
        started = time.perf_counter()
        assert redact(text) == text
        timings.append(time.perf_counter() - started)
    # A regex alternation (or named list) of the 3,000 values took minutes here.
    assert timings[1] < 10 * timings[0] + 1.0, timings
    hit = f"{text[:5000]}{keys[-1].secret}{text[:5000]}"
    assert many(hit) == f"{text[:5000]}********{text[:5000]}"


def test_a_megabyte_commit_subject_is_redacted_once_and_cut_after() -> None:
    import time

    from scanner.findings import CommitInfo, Finding, ScanReport
    from scanner.redact import MAX_SUMMARY, redact_report
    from scanner.secret import Secret
    from tests.keygen import KeySet

    pairs = [KeySet.generate() for _ in range(200)]
    subject = ("x" * 999 + " ") * 1000 + pairs[0].secret  # 1 MB, a secret at the very end
    commit = CommitInfo("a" * 40, "Eve", "eve@example.com", "2026-01-01T00:00:00+00:00", subject)
    findings = tuple(
        Finding("aws-secret-access-key", Secret("secret", keys.secret), f"f{i}.env", 1, 1, "git-blob", f"{i:032x}",
                commit=commit)
        for i, keys in enumerate(pairs)
    )
    report = ScanReport(findings, (), (), 0, 1, 1, 0, 0.0, "repo")
    started = time.perf_counter()
    redacted = redact_report(report)
    assert time.perf_counter() - started < 10
    summaries = {f.commit.summary for f in redacted.findings if f.commit is not None}
    assert len(summaries) == 1
    [summary] = summaries
    assert len(summary) < MAX_SUMMARY + 40 and pairs[0].secret not in summary


def _reference(text: str, replacements: dict[str, str]) -> str:
    """Left to right, the longest value starting at each position: what the redactor must do."""
    out, i = [], 0
    longest_first = sorted(replacements, key=len, reverse=True)
    while i < len(text):
        form = next((f for f in longest_first if text.startswith(f, i)), None)
        if form is None:
            out.append(text[i])
            i += 1
        else:
            out.append(replacements[form])
            i += len(form)
    return "".join(out)


def test_redaction_is_the_longest_value_at_each_place() -> None:
    """Values sharing their first characters (a prefix probe then holds several lengths),
    values inside values, values side by side: the same as a plain longest-match scan."""
    import random

    rng = random.Random(5)
    for _ in range(60):
        stem = "".join(rng.choice("ABCD") for _ in range(8))
        values = [stem + "".join(rng.choice("ABCD") for _ in range(rng.randint(0, 6))) for _ in range(6)]
        values += ["".join(rng.choice("ABCD") for _ in range(rng.randint(8, 12))) for _ in range(4)]
        redact = redactor_for([Secret("secret", v) for v in values])
        text = "".join(rng.choice(["-", " ", rng.choice(values), "".join(rng.choice("ABCDE") for _ in range(5))])
                       for _ in range(40))
        assert redact(text) == _reference(text, redact.replacements), text


def test_many_values_with_one_prefix_cost_one_probe_per_length() -> None:
    """50,000 found values that all begin alike (a hostile file can make them so): each
    position of a text is one probe per distinct length, not one per value."""
    import random

    rng = random.Random(9)
    values = ["AKIAQQQQ" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(12))
              for _ in range(50_000)]
    redact = redactor_for([Secret("key-id", v) for v in values])
    text = "AKIAQQQQ" * 30_000  # 240 KB of the shared prefix, no value
    started = time.perf_counter()
    assert redact(text) == text
    assert time.perf_counter() - started < 10.0
    assert redact(f"x {values[-1]} y") == f"x {values[-1][:8]}… y"


def test_names_are_masked_of_what_looks_like_a_key_and_ordinary_paths_are_not() -> None:
    """A key that stands only in a name (a folder, a file, a URL) is no found value: names
    get a masking of key shapes, which leaves ordinary long paths alone."""
    from scanner.errors import mask_credentials

    import random

    from tests.keygen import key_id, secret_key

    rng = random.Random(11)  # fixed: a secret with 3 or more '/' of its own is left as it is (~2 %)
    keys = KeySet(key_id(rng=rng), secret_key(rng).replace("/", "x"), "")
    assert any(c.isdigit() for c in keys.secret) and keys.secret.lower() != keys.secret != keys.secret.upper()
    for name in (f"/srv/{keys.key_id}/{keys.secret}.git", f"aws_secret_access_key={keys.secret}/b.txt",
                 f"https://{keys.key_id}:x@host/a.git", f"a/b/c/{keys.secret}"):
        shown = mask_credentials(name, quoted=False)
        assert keys.key_id not in shown and keys.secret not in shown, shown
    for ordinary in ("src/awscli/customizations/cloudformation/Artifact2Exporter.py",
                     "/home/User1/project/docs/source/reference/S3Api/x", "tests/unit/v2/Test9abcdefghijklmnop/x.py"):
        assert mask_credentials(ordinary, quoted=False) == ordinary
    started = time.perf_counter()
    mask_credentials("A1b/" * 100_000, quoted=False)
    assert time.perf_counter() - started < 4.0


def test_author_email_and_subject_are_masked_of_key_shapes_the_scan_did_not_find() -> None:
    """A key ID as the author's name and e-mail, a bare secret as the subject: not scanned
    (no name says what the subject's value is), still never shown (found by the outside attack)."""
    from scanner.findings import CommitInfo, Finding, ScanReport
    from scanner.redact import redact_report

    found, other = KeySet.generate(), KeySet.generate()
    commit = CommitInfo("b" * 40, f"ci {other.key_id}", f"{other.key_id}@x.io", "2026-01-01T00:00:00+00:00",
                        f"deploy with {other.secret}")
    finding = Finding("aws-secret-access-key", Secret("secret", found.secret), "a.env", 1, 1, "git-blob", "0" * 32,
                      commit=commit)
    redacted = redact_report(ScanReport((finding,), (), (), 0, 1, 1, 0, 0.0, "repo", head=f"main-{other.key_id}"))
    shown = redacted.findings[0].commit
    assert shown is not None
    for text in (shown.author, shown.email, shown.summary, redacted.head or ""):
        assert other.key_id not in text and other.secret not in text
    assert shown.author == f"ci {other.key_id[:8]}…" and shown.summary == "deploy with ********"


def test_error_lines_are_masked_of_key_shapes_in_the_paths_they_name() -> None:
    from scanner.cli import _printable

    keys = KeySet.generate()
    while keys.secret.count("/") > 2:  # a name's part with more '/' reads as folders (2% of keys): mask_credentials
        keys = KeySet.generate()
    line = _printable(f"keysweep: error: /tmp/r/{keys.secret}: no such rule file or folder; b/{keys.key_id}.json")
    assert keys.secret not in line and keys.key_id not in line and "no such rule file" in line
    assert _printable("keysweep: error: /home/me/src/project/.keysweep.yaml: bad") == \
        "keysweep: error: /home/me/src/project/.keysweep.yaml: bad"


def test_a_value_chopped_into_folders_is_redacted_in_a_path() -> None:
    from scanner.redact import name_redactor

    keys = KeySet.generate()
    plain = keys.secret.replace("/", "A") if "/" in keys.secret else keys.secret
    slashed = plain[:20] + "/" + plain[21:]  # a secret with a slash of its own
    for value in (plain, slashed):
        name = name_redactor(redactor_for([Secret("secret", value), Secret("key-id", keys.key_id)]))
        for path in (f"deep/{value[:12]}/{value[12:26]}/{value[26:]}/x.py",
                     f"cfg/{value[:7]}/{value[7:]}.txt",
                     f"a\\{value[:15]}\\{value[15:]}\\b",
                     f"k/{keys.key_id[:9]}/{keys.key_id[9:]}/v.env"):
            shown = name(path)
            joined = shown.replace("/", "").replace("\\", "")
            assert value.replace("/", "") not in joined and keys.key_id not in joined, path
            assert "********" in shown or "…" in shown
        assert name(f"src/{value[:6]}/main.py") == f"src/{value[:6]}/main.py"  # a short piece is no value


def test_the_findings_of_one_path_redact_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # 2,000 findings in one CSV at a 54 KB path cost 265 s: the path was redacted per finding.
    from scanner import redact as redact_module
    from scanner.findings import Finding, ScanReport
    from scanner.secret import Secret

    calls: list[str] = []
    real = redact_module._across_separators
    monkeypatch.setattr(redact_module, "_across_separators", lambda text, r: calls.append(text) or real(text, r))
    pairs = [KeySet.generate() for _ in range(300)]
    path = "deep/" * 2000 + "keys.csv"
    findings = tuple(Finding("aws-secret-access-key", Secret("secret", keys.secret), path, i + 1, 1, "file", None)
                     for i, keys in enumerate(pairs))
    redacted = redact_module.redact_report(ScanReport(findings, (), (), 0, 1, 1, 0, 0.0, "repo"))
    assert {f.path for f in redacted.findings} == {path}
    assert calls.count(path) == 1


def test_a_megabyte_session_token_is_redacted_without_a_megabyte_pattern() -> None:
    """A session token has no length limit: a 2 MB one found alone made the run pattern
    `[...]{2000000,}` (3 GB and 7 s to compile for 5 MB) and a 2 MB slice per position. The
    prefix looked up is at most 64 characters, and a value that long is kept as it stands
    (and without slashes), not in every encoding."""
    from scanner import redact

    token = ("FwoGZXIvYXdzE" + "Ab9/" * 500_000)[:2_000_000]
    keys = KeySet.generate()
    alone = redactor_for([Secret("session-token", token)])  # found alone: nothing shorter beside it
    assert alone.shortest == redact.MAX_PREFIX
    assert alone.pattern is not None and alone.pattern.pattern.endswith("{64,}")
    assert len(alone.replacements) == 2  # it, and it without '/'
    assert alone(f"a {token} b") == "a ******** b"
    redactor = redactor_for([Secret("session-token", token), Secret("secret", keys.secret)])
    text = f"deploy {token} then {keys.secret} and {token.replace('/', '')}"
    redacted = redactor(text)
    assert token not in redacted and token.replace("/", "") not in redacted and keys.secret not in redacted
    assert redacted.startswith("deploy ") and " then " in redacted


def test_a_rule_files_value_with_non_ascii_letters_is_redacted_in_commit_subjects(tmp_path: Path) -> None:
    """The value was read as ASCII (each letter became U+FFFD): the redactor looked for a
    string no subject holds, and `add tok_pässwörd…` was printed in every finding's commit
    line; --show-secrets showed the replacement characters, not the value."""
    import json
    import secrets

    from tests.conftest import run_keysweep
    from tests.gitrepo import GitRepo

    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - id: tok\n    description: tok\n    kind: bearer-token\n"
                     "    patterns: ['(?P<secret>tok_\\S{12,40})']\n    examples: {positive: ['tok_abcdefghijkl']}\n",
                     encoding="utf-8")
    value = f"tok_pässwörd€{secrets.token_hex(4)}"
    repo = GitRepo(tmp_path / "repo")
    repo.commit(f"add {value}", {"f.txt": value + "\n"})
    for fmt in ("text", "json", "sarif"):
        result = run_keysweep("scan", "--no-config", "--rules", rules, "-f", fmt, repo.path)
        assert result.returncode == 1, result.stderr
        assert value not in result.stdout and "pässwörd" not in result.stdout, fmt
    shown = run_keysweep("scan", "--no-config", "--rules", rules, "-f", "json", "--show-secrets", repo.path)
    assert {f["secret"] for f in json.loads(shown.stdout)["findings"]} == {value}


def test_a_value_holding_a_byte_that_is_not_utf8_is_redacted_in_paths_and_subjects(tmp_path: Path) -> None:
    """Paths show such a byte as an escape (\\xe4), the value read it as U+FFFD: the redactor
    never matched, and a file named after the value printed it whole, in every format."""
    import os
    import secrets
    import subprocess

    from tests.conftest import run_keysweep
    from tests.gitrepo import GitRepo

    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - id: tok\n    description: tok\n    kind: bearer-token\n"
                     "    patterns: ['(?P<secret>tok_\\S{12,40})']\n    examples: {positive: ['tok_abcdefghijkl']}\n")
    tail = secrets.token_hex(6)  # in every form the value could leak in, escaped or not
    value = b"tok_p\xe4ssw\xf6rd" + tail.encode()
    repo = GitRepo(tmp_path / "repo")
    repo.write(os.fsdecode(b"f_" + value + b".txt"), value + b"\n")
    repo.git("add", "-A")
    (tmp_path / "message").write_bytes(b"add " + value + b"\n")
    subprocess.run(["git", "commit", "-q", "-F", str(tmp_path / "message")], cwd=repo.path, env=repo.env(), check=True)
    for fmt in ("text", "json", "jsonl", "sarif"):
        result = run_keysweep("scan", "--no-config", "--rules", rules, "-f", fmt, repo.path)
        assert result.returncode == 1, result.stderr
        assert tail not in result.stdout and tail not in result.stderr, fmt
