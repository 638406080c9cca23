"""The detector on realistic files: what must be found (with pairing and line numbers) and
what must stay silent."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import random
import uuid

import pytest

from scanner.engine.awskeys import account_id_from_key_id, is_canary
from scanner.engine.detect import Match, as_scannable, detect, entropy_at_least, shannon_entropy
from scanner.engine.rules import load_ruleset
from tests.keygen import KeySet, key_id, secret_key

RULESET = load_ruleset()


def found(text: str | bytes) -> list[Match]:
    data = text.encode() if isinstance(text, str) else text
    return detect(data, RULESET)


def values(matches: list[Match]) -> set[tuple[str, str, int]]:
    return {(m.rule_id, m.secret.reveal(), m.line) for m in matches}


def assert_pair(matches: list[Match], keys: KeySet) -> None:
    by_value = {m.secret.reveal(): (i, m) for i, m in enumerate(matches)}
    key_index, key_match = by_value[keys.key_id]
    secret_index, secret_match = by_value[keys.secret]
    assert secret_match.pair == key_index
    assert key_match.pair == secret_index


REALISTIC = {
    "docker-compose.yml": """\
version: "3.8"
services:
  worker:
    image: acme/worker:1.4
    environment:
      - AWS_ACCESS_KEY_ID={key_id}
      - AWS_SECRET_ACCESS_KEY={secret}
      - AWS_DEFAULT_REGION=eu-west-1
""",
    "settings.py": """\
import os

DEBUG = False
AWS_STORAGE_BUCKET_NAME = "acme-static"
AWS_ACCESS_KEY_ID = '{key_id}'
AWS_SECRET_ACCESS_KEY = '{secret}'
""",
    "config.json": json.dumps(
        {"storage": {"provider": "s3", "credentials": {"accessKeyId": "{key_id}", "secretAccessKey": "{secret}"}}},
        indent=2,
    ),
    "main.tf": """\
terraform {
  required_version = ">= 1.5"
}

provider "aws" {
  region     = "us-west-2"
  access_key = "{key_id}"
  secret_key = "{secret}"
}
""",
    "application.properties": """\
spring.application.name=billing
cloud.aws.credentials.access-key={key_id}
cloud.aws.credentials.secret-key={secret}
cloud.aws.region.static=us-east-1
""",
    "deploy.sh": """\
#!/bin/sh
set -eu
export AWS_ACCESS_KEY_ID="{key_id}"
export AWS_SECRET_ACCESS_KEY="{secret}"
aws s3 sync build/ s3://acme-site/
""",
    "Uploader.java": """\
public class Uploader {
    private static final AmazonS3 s3 = AmazonS3ClientBuilder.standard()
        .withCredentials(new AWSStaticCredentialsProvider(
            new BasicAWSCredentials(
                "{key_id}",
                "{secret}")))
        .build();
}
""",
    "upload.go": """\
package main

func client() *s3.Client {
	creds := credentials.NewStaticCredentialsProvider("{key_id}", "{secret}", "")
	return s3.New(s3.Options{Credentials: creds})
}
""",
    "credentials": """\
[default]
aws_access_key_id = {key_id}
aws_secret_access_key = {secret}
region = us-east-1
""",
    "accessKeys.csv": "Access key ID,Secret access key\r\n{key_id},{secret}\r\n",
    "values.yaml": """\
s3:
  accessKey: {key_id}
  secretKey: |
    {secret}
""",
}


@pytest.mark.parametrize("name", sorted(REALISTIC))
def test_realistic_file_yields_paired_key(name: str, keys: KeySet) -> None:
    text = keys.fill(REALISTIC[name])
    matches = found(text)
    lines = text.splitlines()
    got = {m.secret.reveal(): m for m in matches}
    assert keys.key_id in got and keys.secret in got, name
    for value, match in got.items():
        assert value in lines[match.line - 1], (name, match)
        assert lines[match.line - 1][match.column - 1 :].startswith(value)
    assert_pair(matches, keys)


def test_kubernetes_secret_base64_values(keys: KeySet) -> None:
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    manifest = f"""\
apiVersion: v1
kind: Secret
metadata:
  name: aws-creds
type: Opaque
data:
  AWS_ACCESS_KEY_ID: {b64(keys.key_id)}
  AWS_SECRET_ACCESS_KEY: {b64(keys.secret)}
"""
    matches = found(manifest)
    assert values(matches) == {
        ("aws-access-key-id", keys.key_id, 7),
        ("aws-secret-access-key", keys.secret, 8),
    }
    assert all(m.decoded == "base64" for m in matches)
    assert_pair(matches, keys)


def test_whole_credentials_file_base64_encoded(keys: KeySet) -> None:
    inner = f"[default]\naws_access_key_id = {keys.key_id}\naws_secret_access_key = {keys.secret}\n"
    text = f"credentials: {base64.b64encode(inner.encode()).decode()}\n"
    assert {m.secret.reveal() for m in found(text)} == {keys.key_id, keys.secret}


@pytest.mark.parametrize("native", [False, True])
def test_credentials_in_a_base64_line_longer_than_a_token(keys: KeySet, native: bool) -> None:
    """A credentials file in a long config, base64 on one line of 400 KB (a CI variable, a
    Helm value): past one token's 64 KiB it is decoded in pieces, found at its piece's place,
    and paired; a line of random bytes in base64 as long gives nothing."""
    from scanner.engine import native as native_engine

    if native and not native_engine.available():
        pytest.skip("the hyperscan wheel is not installed here")
    ruleset = load_ruleset()
    ruleset.health.prefilter = native_engine.Prefilter(ruleset) if native else False
    filler = "".join(f"setting_{i} = value number {i} of a long file\n" for i in range(4000))
    inner = f"{filler}[default]\naws_access_key_id = {keys.key_id}\naws_secret_access_key = {keys.secret}\n{filler}"
    encoded = base64.b64encode(inner.encode())
    assert len(encoded) > 4 * 64 * 1024
    matches = detect(b"config: " + encoded + b"\n", ruleset)
    assert {m.secret.reveal() for m in matches} == {keys.key_id, keys.secret}
    assert all(m.decoded == "base64" and m.line == 1 for m in matches)
    # At the place of the piece holding them: well past the line's start, short of its end.
    assert all(len(encoded) // 4 < m.column < len(encoded) for m in matches)
    assert_pair(matches, keys)
    noise = base64.b64encode(random.Random(2).randbytes(300_000))
    assert detect(b"blob: " + noise + b"\n", ruleset) == []


def _long_line_cases(keys: KeySet) -> dict[str, bytes]:
    """Texts that hold a key pair, each more than 64 KiB once in base64 (for the test below)."""
    filler = "".join(f"setting_{i} = value number {i} of a long file\n" for i in range(1500)).encode()
    pair = f"aws_access_key_id = {keys.key_id}\naws_secret_access_key = {keys.secret}".encode()
    rng = random.Random(3)
    words = "|".join("".join(rng.choice("abcdefghij") for _ in range(15)) for _ in range(6000)).encode()
    return {
        # The last bytes of the file, not a whole group of three: decoded with the padding.
        **{f"at the end, {n} more": filler + b"x" * n + b"[default]\n" + pair for n in range(3)},
        "a UTF-8 BOM and accents": "\ufeff# café\n".encode() + filler + pair + b"\n" + filler,
        "a terminal colour code": filler + pair + b"\n\x1b[0m\n" + filler,
        # A CI log in colour: two escapes a line, three control bytes in a hundred.
        "a coloured log": b"".join(b"\x1b[32mstep %d passed\x1b[0m\n" % i for i in range(4000)) + pair + b"\n",
        # No line break, comma or space: pieces are cut after another byte no key is made of,
        # and a name at one piece's end keeps the value opening the next.
        "only | between words": b"aws_credentials|" + words[:49070] + b"|" + keys.key_id.encode() + b"|"
        + keys.secret.encode() + b"|" + words,
        # Pieces of nothing first (left out of the view), then the pair.
        "after a long dull start": b"x = 1\n" * 26000 + pair + b"\n" + filler,
    }


@pytest.mark.parametrize("padding", [True, False])
@pytest.mark.parametrize("case", ["at the end, 0 more", "at the end, 1 more", "at the end, 2 more",
                                  "a UTF-8 BOM and accents", "a terminal colour code", "a coloured log",
                                  "only | between words", "after a long dull start"])
def test_long_base64_line_finds_what_the_plain_text_holds(keys: KeySet, case: str, padding: bool) -> None:
    """Also written without its padding (base64url style, `base64 | tr -d =`): the last group
    is decoded all the same."""
    inner = _long_line_cases(keys)[case]
    assert {keys.key_id, keys.secret} <= {m.secret.reveal() for m in found(inner)}
    encoded = base64.b64encode(inner) if padding else base64.b64encode(inner).rstrip(b"=")
    assert len(encoded) > 64 * 1024
    matches = found(b"value: " + encoded + b"\n")
    assert {m.secret.reveal() for m in matches} == {keys.key_id, keys.secret}
    assert_pair(matches, keys)


def test_every_key_of_a_long_base64_line_of_credentials() -> None:
    """Thousands of credential lines in one base64 line: the pieces it is decoded in are cut
    after line breaks, so no key is cut in two at a piece's end."""
    rng = random.Random(11)
    pairs = [(key_id(rng=rng), secret_key(rng)) for _ in range(3000)]
    inner = "".join(f"aws_access_key_id={kid} aws_secret_access_key={secret}\n" for kid, secret in pairs)
    matches = found(b"data: " + base64.b64encode(inner.encode()))
    assert {m.secret.reveal() for m in matches} == {value for pair in pairs for value in pair}


@pytest.mark.parametrize("lines", [3, 40, 2000])
def test_base64_of_base64_wrapped_over_lines(keys: KeySet, lines: int) -> None:
    """`base64 creds.ini | base64 -w0` (a Secret made from a .b64 file): the inner layer is
    wrapped at 76 characters, and its line breaks no longer hide it."""
    inner = "".join(f"setting_{i} = {i}\n" for i in range(lines)) + (
        f"aws_access_key_id = {keys.key_id}\naws_secret_access_key = {keys.secret}\n")
    middle = base64.encodebytes(inner.encode())  # 76 characters a line
    assert middle.count(b"\n") > 1
    text = b"data: " + base64.b64encode(middle) + b"\n"
    assert {keys.key_id, keys.secret} <= {m.secret.reveal() for m in found(text)}


@pytest.mark.parametrize("secret_first", [False, True])
def test_each_pair_of_a_one_line_json_list_is_linked_within_its_object(secret_first: bool) -> None:
    """Minified JSON with several credentials on one line: each secret pairs with the key ID of
    its own object (verification signs with the pair), not every secret with the first key ID."""
    rng = random.Random(12)
    pairs = [(key_id(rng=rng), secret_key(rng)) for _ in range(4)]
    objects = [f'"SecretAccessKey":"{s}","AccessKeyId":"{k}"' if secret_first else f'"AccessKeyId":"{k}","SecretAccessKey":"{s}"'
               for k, s in pairs]
    matches = found("[" + ",".join("{" + o + "}" for o in objects) + "]")
    index = {m.secret.reveal(): i for i, m in enumerate(matches)}
    for key, secret in pairs:
        assert (matches[index[key]].pair, matches[index[secret]].pair) == (index[secret], index[key])


def test_profiles_of_a_credentials_file_in_one_long_base64_line_pair_each_with_its_own() -> None:
    """Five profiles decoded from one base64 line all stand at one place of the line: each
    secret still pairs with its own profile's key ID (they were all paired with the first)."""
    rng = random.Random(13)
    pairs = [(key_id(rng=rng), secret_key(rng)) for _ in range(5)]
    filler = "".join(f"setting_{i} = value number {i} of a long file\n" for i in range(1500))
    inner = filler + "".join(f"[p{i}]\naws_access_key_id = {k}\naws_secret_access_key = {s}\n"
                             for i, (k, s) in enumerate(pairs))
    matches = found(b"credentials: " + base64.b64encode(inner.encode()) + b"\n")
    index = {m.secret.reveal(): i for i, m in enumerate(matches)}
    for key, secret in pairs:
        assert (matches[index[key]].pair, matches[index[secret]].pair) == (index[secret], index[key])


@pytest.mark.parametrize("bom", [b"", b"\xff\xfe"])
def test_powershell_encoded_command_is_decoded_from_utf16(keys: KeySet, bom: bytes) -> None:
    """`powershell -EncodedCommand` takes base64 of UTF-16LE text: the keys it sets are found
    (and paired) there, as in base64 of UTF-8."""
    command = f"$env:AWS_ACCESS_KEY_ID='{keys.key_id}'; $env:AWS_SECRET_ACCESS_KEY='{keys.secret}'; aws s3 ls"
    line = b"powershell.exe -NoProfile -EncodedCommand " + base64.b64encode(bom + command.encode("utf-16-le")) + b"\n"
    matches = found(line)
    assert {m.secret.reveal() for m in matches} == {keys.key_id, keys.secret}
    assert all(m.decoded == "base64" for m in matches)
    assert_pair(matches, keys)


@pytest.mark.parametrize("bom", [b"", b"\xff\xfe"])
def test_a_long_powershell_script_encoded_from_utf16_is_decoded(bom: bytes) -> None:
    """A script longer than one token (its base64 over 64 KiB, one line) is decoded in pieces:
    a piece of UTF-16 text is read as text, whichever byte it was cut at."""
    from scanner.engine.decode import MAX_TOKEN

    pairs = [KeySet.generate() for _ in range(3)]
    lines = []
    for n in range(800):
        lines.append(f"Write-Host 'step {n} of the deployment, nothing to see'")
        if n in (5, 400, 795):
            keys = pairs[(n > 5) + (n > 400)]
            lines.append(f"$env:AWS_ACCESS_KEY_ID='{keys.key_id}'; $env:AWS_SECRET_ACCESS_KEY='{keys.secret}'")
    encoded = base64.b64encode(bom + "\r\n".join(lines).encode("utf-16-le"))
    assert len(encoded) > MAX_TOKEN
    matches = found(b"powershell.exe -NoProfile -EncodedCommand " + encoded + b"\n")
    assert {m.secret.reveal() for m in matches} == {v for keys in pairs for v in (keys.key_id, keys.secret)}
    for keys in pairs:
        assert_pair(matches, keys)


@pytest.mark.parametrize("inner_php, outer_php", [(True, True), (True, False), (False, True)])
def test_json_inside_json_with_escaped_slashes(inner_php: bool, outer_php: bool) -> None:
    """A JSON document kept as a string in another one: PHP's json_encode escapes each slash,
    so a secret's slash reads `\\\\\\/` after two encodings, `\\\\/` when only the inner one escaped
    it. The secrets holding a slash were missed."""
    def encode(value: object, php: bool) -> str:
        text = json.dumps(value)
        return text.replace("/", "\\/") if php else text

    keys = KeySet.generate()
    while "/" not in keys.secret:
        keys = KeySet.generate()
    inner = encode({"accessKeyId": keys.key_id, "secretAccessKey": keys.secret}, inner_php)
    matches = found(encode({"config": inner}, outer_php) + "\n")
    assert {m.secret.reveal() for m in matches} == {keys.key_id, keys.secret}
    assert_pair(matches, keys)


@pytest.mark.parametrize("filler", ["done \U0001F60A ", "\u30a2\u30a4\u30a6\u30a8\u30aa\u30ab\u30ad\u30af"])
def test_a_long_utf16_script_cut_inside_a_character_or_mostly_cjk_is_read(filler: str) -> None:
    """A piece of a long base64 line may be cut inside a surrogate pair (U+1F60A's low half
    holds a 0x0a byte, where a cut is looked for), and UTF-16 katakana has neither NUL nor control
    bytes, so it passed for 8-bit text: the keys in such pieces were missed."""
    pairs = [KeySet.generate() for _ in range(3)]
    parts = []
    for keys in pairs:
        parts.append(f"$env:AWS_ACCESS_KEY_ID='{keys.key_id}'; $env:AWS_SECRET_ACCESS_KEY='{keys.secret}'; ")
        parts.append(filler * 6000)
    encoded = base64.b64encode("".join(parts).encode("utf-16-le"))
    matches = found(b"powershell.exe -EncodedCommand " + encoded + b"\n")
    assert {m.secret.reveal() for m in matches} == {v for keys in pairs for v in (keys.key_id, keys.secret)}
    for keys in pairs:
        assert_pair(matches, keys)


@pytest.mark.parametrize("layers", [1, 2])
def test_a_secret_opening_with_an_escaped_slash_is_reported_once(layers: int) -> None:
    """`"\\/51L4…"`: the escape comes before the secret's leading slash, so the secret stands
    whole in the text as well as in the unescaped token; it was reported twice, at two
    columns, and its key ID paired with one of them."""
    keys = KeySet.generate()
    secret = "/" + keys.secret[1:]
    text = json.dumps({"accessKeyId": keys.key_id, "secretAccessKey": secret}).replace("/", "\\/")
    if layers == 2:
        text = json.dumps({"config": text}).replace("/", "\\/")
    matches = found(text + "\n")
    assert sorted(m.secret.reveal() for m in matches) == sorted([keys.key_id, secret])
    assert_pair(matches, KeySet(keys.key_id, secret, keys.token))


@pytest.mark.parametrize("shift", [0, 1, 2])
def test_an_accented_comment_in_a_base64_credentials_file_hides_no_key(shift: int) -> None:
    """A byte above 0x7f at the start of a group of 4 (two in three places of an accented
    letter) made the whole token pass for something other than text: a Kubernetes Secret's
    credentials file opening with `# Clé d'accès prod` lost both its keys."""
    keys = KeySet.generate()
    credentials = (f"# {'x' * shift}Clé d'accès prod\n[default]\naws_access_key_id = {keys.key_id}\n"
                   f"aws_secret_access_key = {keys.secret}\n")
    manifest = ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: aws\ndata:\n  credentials: "
                + base64.b64encode(credentials.encode()).decode() + "\n")
    matches = found(manifest)
    assert {m.secret.reveal() for m in matches} == {keys.key_id, keys.secret}
    assert_pair(matches, keys)


@pytest.mark.parametrize("at", [24_560, 24_573, 24_574, 24_575, 24_576])
def test_a_key_across_the_cut_between_two_pieces_of_a_long_utf16_line_is_found(at: int) -> None:
    """UTF-16 text has a NUL (no byte of a key) after every ASCII character, so a long run is
    cut at its 48 KiB mark whatever stands there: a key ID cut in two was neither looked for
    (no half held "AKIA") nor mapped back (its match ran past its piece)."""
    from scanner.engine.decode import LONG_PIECE

    assert at * 2 - LONG_PIECE in range(-32, 32)  # around the first cut
    keys = KeySet.generate()
    text = "a" * (at - 4) + "&id=" + keys.key_id + "&" + "p=yyyy&" * 12_000
    matches = found(b"q " + base64.b64encode(text.encode("utf-16-le")) + b"\n")
    assert [m.secret.reveal() for m in matches] == [keys.key_id]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16-le"])
def test_a_key_across_the_cut_between_blocks_of_long_wrapped_base64_is_found_once(encoding: str) -> None:
    """Wrapped base64 longer than MAX_TOKEN is decoded in blocks of whole lines: a key pair
    across the cut between two blocks lost one of its keys. Blocks overlap by a few lines now,
    and what the overlap repeats is reported once."""
    import textwrap

    for offset in (49_080, 49_100):  # the cut falls in the secret, then in the key ID
        keys = KeySet.generate()
        filler = "Write-Host step; Get-Item x; " * 8_000
        unit = 2 if encoding == "utf-16-le" else 1
        text = filler[: offset // unit] + f" aws_access_key_id={keys.key_id} aws_secret_access_key={keys.secret} " + filler
        encoded = base64.b64encode(text.encode(encoding)).decode()
        manifest = "data: |\n" + textwrap.indent("\n".join(textwrap.wrap(encoded, 76)), "  ") + "\n"
        matches = found(manifest)
        assert sorted(m.secret.reveal() for m in matches) == sorted([keys.key_id, keys.secret]), offset


def test_url_encoded_secret_in_connection_url(keys: KeySet) -> None:
    from urllib.parse import quote

    text = f'STORAGE_URL="s3://{keys.key_id}:{quote(keys.secret, safe="")}@acme-bucket/uploads"\n'
    matches = found(text)
    assert {m.secret.reveal() for m in matches} == {keys.key_id, keys.secret}
    assert_pair(matches, keys)


def test_session_token_pairs_with_its_key(keys: KeySet) -> None:
    temp = KeySet.generate(prefix="ASIA")
    text = (
        f"[temp]\naws_access_key_id = {temp.key_id}\naws_secret_access_key = {temp.secret}\n"
        f"aws_session_token = {temp.token}\n"
    )
    matches = found(text)
    by_value = {m.secret.reveal(): i for i, m in enumerate(matches)}
    assert matches[by_value[temp.key_id]].session_token == by_value[temp.token]


def test_several_keys_pair_with_the_nearest(keys: KeySet) -> None:
    other = KeySet.generate()
    text = (
        f"[prod]\naws_access_key_id = {keys.key_id}\naws_secret_access_key = {keys.secret}\n\n"
        "; a few unrelated lines\n" * 3
        + f"[dev]\naws_access_key_id = {other.key_id}\naws_secret_access_key = {other.secret}\n"
    )
    matches = found(text)
    assert_pair(matches, keys)
    assert_pair(matches, other)


def test_bare_40_char_value_far_from_any_key_id_is_silent(keys: KeySet) -> None:
    text = f"id: {keys.key_id}\n" + "filler: 1\n" * 10 + f"checksum: {keys.secret}\n"
    assert values(found(text)) == {("aws-access-key-id", keys.key_id, 1)}


def test_crlf_line_numbers(keys: KeySet) -> None:
    text = f"a=1\r\nb=2\r\n\r\nAWS_ACCESS_KEY_ID={keys.key_id}\r\n"
    [match] = found(text)
    assert (match.line, match.column) == (4, 19)


def test_undecodable_bytes_do_not_crash_and_columns_count_characters(keys: KeySet) -> None:
    data = b"caf\xc3\xa9 \xff\xfe\x80 junk\naws_access_key_id = " + keys.key_id.encode() + b"\n"
    [match] = found(data)
    assert match.line == 2
    data = "naïve ✓ key=".encode() + keys.key_id.encode()
    [match] = found(data)
    assert match.column == len("naïve ✓ key=") + 1


def test_utf16_text_is_decoded(keys: KeySet) -> None:
    data = "\ufeffAWS_ACCESS_KEY_ID=" + keys.key_id + "\r\n"
    raw = data.encode("utf-16-le")
    scannable = as_scannable(b"\xff\xfe" + raw[2:])
    assert scannable is not None
    assert {m.secret.reveal() for m in found(scannable)} == {keys.key_id}


def test_binary_content_is_recognised() -> None:
    assert as_scannable(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR") is None


@pytest.mark.parametrize("prefix", ["AKIA", "ASIA", "ABIA", "ACCA", "A3TX"])
def test_each_key_id_prefix(prefix: str) -> None:
    value = key_id(prefix="AKIA")
    value = prefix + value[len(prefix):]
    assert {m.secret.reveal() for m in found(f"key: {value}\n")} == {value}


NEGATIVE_FILES = {
    "README.md": """\
## Configure
Set `AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE` and
`AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY`, or use `<your-key>`.
""",
    ".env.example": """\
AWS_ACCESS_KEY_ID=AKIAXXXXXXXXXXXXXXXX
AWS_SECRET_ACCESS_KEY=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
AWS_SESSION_TOKEN=${AWS_SESSION_TOKEN}
""",
    "ci.yml": """\
env:
  AWS_ACCESS_KEY_ID: ${{ secrets.AWS_ACCESS_KEY_ID }}
  AWS_SECRET_ACCESS_KEY: ${{ secrets.AWS_SECRET_ACCESS_KEY }}
""",
    "app.py": """\
import os
key = os.environ["AWS_ACCESS_KEY_ID"]
secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
""",
}


@pytest.mark.parametrize("name", sorted(NEGATIVE_FILES))
def test_placeholders_and_docs_are_silent(name: str) -> None:
    assert found(NEGATIVE_FILES[name]) == []


def test_hashes_uuids_and_lockfiles_are_silent() -> None:
    digests = [hashlib.sha1(str(i).encode()).hexdigest() for i in range(50)]
    lock = {
        "lockfileVersion": 3,
        "packages": {
            f"node_modules/pkg{i}": {
                "version": "1.0.0",
                "resolved": f"https://registry.npmjs.org/pkg{i}/-/pkg{i}-1.0.0.tgz",
                "integrity": "sha512-" + base64.b64encode(hashlib.sha512(str(i).encode()).digest()).decode(),
            }
            for i in range(50)
        },
    }
    text = "\n".join(
        [f"commit {d}\nsecret_rotation_commit: {d}" for d in digests]
        + [f"secret_id = {uuid.uuid4()}" for _ in range(20)]
        + [json.dumps(lock, indent=2)]
        + [f"sha1-{base64.b64encode(hashlib.sha1(str(i).encode()).digest()).decode()}" for i in range(20)]
    )
    assert found(text) == []


def test_sigv4_and_image_data_are_silent() -> None:
    sig = hashlib.sha256(b"x").hexdigest()
    image = base64.b64encode(bytes(range(256)) * 4).decode()
    text = (
        f"Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240101/us-east-1/s3/aws4_request, "
        f"SignedHeaders=host;x-amz-date, Signature={sig}\n"
        f'<img alt="secret diagram" src="data:image/png;base64,{image}">\n'
    )
    assert found(text) == []


def test_inline_allow_comments(keys: KeySet) -> None:
    for marker in ("# keysweep:allow", "// gitleaks:allow", "# pragma: allowlist secret"):
        assert found(f"AWS_SECRET_ACCESS_KEY={keys.secret} {marker}\n") == []
        assert found(f"AWS_ACCESS_KEY_ID={keys.key_id} {marker}\n") == []


def test_account_id_decoding() -> None:
    assert account_id_from_key_id(key_id(account="123456789012")) == "123456789012"
    assert account_id_from_key_id(key_id(account="000000000042")) == "000000000042"
    # Old-generation key IDs (fifth character I or J) carry no account.
    assert account_id_from_key_id("AKIAI" + key_id()[5:]) is None
    assert account_id_from_key_id("AKIAJ" + key_id()[5:]) is None


def test_moto_generated_key_ids_decode_to_motos_account() -> None:
    from moto.iam.utils import generate_access_key_id_from_account_id

    for account in ("123456789012", "210987654321", "000000000001"):
        assert account_id_from_key_id(generate_access_key_id_from_account_id(account, "AKIA")) == account


def test_canary_account_flag() -> None:
    assert is_canary("052310077262")
    assert not is_canary("123456789012")
    assert not is_canary(None)


def test_generated_secret_keys_pass_value_checks() -> None:
    misses = 0
    for _ in range(300):
        keys = KeySet(key_id(), secret_key(), "")
        text = f"aws_secret_access_key = {keys.secret}\n"
        misses += keys.secret not in {m.secret.reveal() for m in found(text)}
    assert misses == 0


def test_fragment_of_url_encoded_secret_is_not_a_secret() -> None:
    # "K%2B" + 38 characters leaves a 40-character run after the '%': a fragment, not a key.
    keys = KeySet.generate()
    secret = "K+" + keys.secret[2:]
    from urllib.parse import quote

    text = f"url = s3://{keys.key_id}:{quote(secret, safe='')}@bucket/x\n"
    assert {m.secret.reveal() for m in found(text)} == {keys.key_id, secret}


MORE_FORMATS = {
"toml": 'aws_access_key_id = "{key_id}"\naws_secret_access_key = "{secret}"\n',
"makefile": 'AWS_ACCESS_KEY_ID ?= {key_id}\nAWS_SECRET_ACCESS_KEY ?= {secret}\n',
"dockerfile": 'FROM python:3.12\nENV AWS_ACCESS_KEY_ID={key_id} AWS_SECRET_ACCESS_KEY={secret}\n',
"gha": 'jobs:\n  deploy:\n    env:\n      AWS_ACCESS_KEY_ID: {key_id}\n      AWS_SECRET_ACCESS_KEY: {secret}\n',
"jenkins": 'withEnv(["AWS_ACCESS_KEY_ID={key_id}", "AWS_SECRET_ACCESS_KEY={secret}"]) {\n  sh "make deploy"\n}\n',
"s3cfg": '[default]\naccess_key = {key_id}\nsecret_key = {secret}\nhost_base = s3.amazonaws.com\n',
"rclone": '[s3]\ntype = s3\nprovider = AWS\naccess_key_id = {key_id}\nsecret_access_key = {secret}\n',
"java": 'public class C {\n  private static final String ACCESS = "{key_id}";\n  private static final String SECRET_KEY = "{secret}";\n}\n',
"csharp": 'var client = new AmazonS3Client("{key_id}", "{secret}", RegionEndpoint.USEast1);\n',
"node": 'const s3 = new AWS.S3({\n  accessKeyId: "{key_id}",\n  secretAccessKey: "{secret}",\n});\n',
"python-session": 'session = boto3.Session(\n    aws_access_key_id="{key_id}",\n    aws_secret_access_key="{secret}",\n)\n',
"appsettings": '{\n  "AWS": {\n    "AccessKey": "{key_id}",\n    "SecretKey": "{secret}",\n    "Region": "us-east-1"\n  }\n}\n',
"ansible": 'aws_access_key: "{key_id}"\naws_secret_key: "{secret}"\n',
"log": '2024-01-01 12:00:00 INFO using credentials {key_id} / {secret} for upload\n',
"url": 'https://{key_id}:{secret}@s3.amazonaws.com/bucket\n',
"colon": '{key_id}:{secret}\n',
"yaml-flow": 'creds: {id: {key_id}, secret: {secret}}\n',
"xml-attr": '<credentials accessKey="{key_id}" secretKey="{secret}"/>\n',
"php": "<?php\n$s3 = new S3Client(['credentials' => ['key' => '{key_id}', 'secret' => '{secret}']]);\n",
"ruby": "Aws.config.update(credentials: Aws::Credentials.new('{key_id}', '{secret}'))\n",
"go-env": 'os.Setenv("AWS_ACCESS_KEY_ID", "{key_id}")\nos.Setenv("AWS_SECRET_ACCESS_KEY", "{secret}")\n',
"powershell": 'Set-AWSCredential -AccessKey {key_id} -SecretKey {secret} -StoreAs default\n',
"cli-flags": 'aws configure set aws_access_key_id {key_id}\naws configure set aws_secret_access_key {secret}\n',
"ipynb": '{"cells":[{"cell_type":"code","source":["import boto3\\n","s3 = boto3.client(\\"s3\\", aws_access_key_id=\\"{key_id}\\", aws_secret_access_key=\\"{secret}\\")\\n"]}]}\n',
"terraform-tfvars": 'access_key = "{key_id}"\nsecret_key = "{secret}"\n',
"properties-spaces": 'aws.accessKeyId = {key_id}\naws.secretKey = {secret}\n',
"sql": "INSERT INTO creds (key_id, secret) VALUES ('{key_id}', '{secret}');\n",
"markdown": '```\nexport AWS_ACCESS_KEY_ID={key_id}\nexport AWS_SECRET_ACCESS_KEY={secret}\n```\n',
"secret-far": 'aws_access_key_id = {key_id}\n' + '# filler\n'*12 + 'aws_secret_access_key = {secret}\n',
"json-escaped": '"{\\"AccessKeyId\\":\\"{key_id}\\",\\"SecretAccessKey\\":\\"{secret}\\"}"\n',
"hcl-heredoc": 'credentials = <<EOF\n[default]\naws_access_key_id={key_id}\naws_secret_access_key={secret}\nEOF\n',
"k8s-stringData": 'apiVersion: v1\nkind: Secret\nstringData:\n  AWS_ACCESS_KEY_ID: {key_id}\n  AWS_SECRET_ACCESS_KEY: {secret}\n',
"tab-separated": '{key_id}\t{secret}\n',
"secret-before-key": 'SECRET={secret}\nKEY={key_id}\n',
"nested-yaml-3": 'aws:\n  credentials:\n    secret:\n      value: {secret}\n    id: {key_id}\n',
"crlf-env": 'AWS_ACCESS_KEY_ID={key_id}\r\nAWS_SECRET_ACCESS_KEY={secret}\r\n',
}


@pytest.mark.parametrize("name", sorted(MORE_FORMATS))
def test_more_formats_find_key_and_secret(name: str) -> None:
    for _ in range(5):
        keys = KeySet.generate()
        got = {m.secret.reveal() for m in found(keys.fill(MORE_FORMATS[name]))}
        assert {keys.key_id, keys.secret} <= got, name


def test_utf16_with_bom_and_odd_byte_count_is_text() -> None:
    from scanner.engine.detect import as_scannable

    keys = KeySet.generate()
    text = f"aws_access_key_id = {keys.key_id}\naws_secret_access_key = {keys.secret}\n"
    for encoded in (text.encode("utf-16"), text.encode("utf-16-be")):
        if not encoded.startswith((b"\xff\xfe", b"\xfe\xff")):
            encoded = b"\xfe\xff" + encoded
        scannable = as_scannable(encoded + b"\x00")  # one stray byte: an odd count
        assert scannable is not None
        found = {m.secret.reveal() for m in detect(scannable, load_ruleset())}
        assert {keys.key_id, keys.secret} <= found


def test_value_verdicts_are_remembered_per_rule_but_not_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    from scanner.engine import detect as detect_module
    from scanner.engine.rules import RuleHealth

    ruleset = load_ruleset()
    rule = next(r for r in ruleset.rules if r.id == "aws-secret-access-key")
    keys = KeySet.generate()
    health = RuleHealth()
    good, placeholder = keys.secret.encode(), b"EXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLE12/+X"
    assert detect_module.value_passes(rule, good, health) is True
    assert detect_module.value_passes(rule, placeholder, health) is False
    assert health.verdicts == {rule.id: {good: True, placeholder: False}}
    # The check a pattern call sets up once gives the same verdicts, into the same memory.
    check = detect_module._value_check(rule, RuleHealth())
    assert (check(good), check(placeholder)) == (True, False)
    # A remembered verdict is not computed again.
    calls: list[bytes] = []
    real_entropy = detect_module.entropy_at_least
    monkeypatch.setattr(detect_module, "entropy_at_least", lambda v, t: calls.append(v) or real_entropy(v, t))
    assert detect_module.value_passes(rule, good, RuleHealth()) is True and calls == [good]  # the patch is in place
    assert detect_module.value_passes(rule, good, health) is True and calls == [good]
    assert detect_module._value_check(rule, health)(good) is True and calls == [good]
    # A check that ran out of time says nothing about the value: not remembered.
    fresh = RuleHealth()

    class Slow:
        def search(self, value: bytes, timeout: float) -> None:
            raise TimeoutError

    timed = dataclasses.replace(rule, allow=(Slow(),), builtin=False)  # a rule file's: under the clock
    assert detect_module.value_passes(timed, good, fresh) is False
    assert not fresh.rule_file_verdicts and not fresh.verdicts.get(rule.id) and rule.id in fresh.disabled


def test_entropy_bounds_decide_as_the_full_count() -> None:
    # entropy_at_least skips the count where the distinct characters settle it; on values of
    # every length and alphabet size, at thresholds on and beside the exact entropy, it must
    # agree with the count.
    rng = random.Random(5)
    for _ in range(20000):
        value = bytes(rng.randrange(rng.randint(1, 64)) + 40 for _ in range(rng.randint(1, 60)))
        exact = shannon_entropy(value)
        for threshold in (1.0, 2.0, 3.8, 4.5, exact, exact + 1e-12, exact - 1e-12):
            if threshold > 0:
                assert entropy_at_least(value, threshold) == (exact >= threshold), (value, threshold)
    assert entropy_at_least(b"aaaa", 0.0)  # a threshold of 0 admits any value (the count gives -4e-16)


def test_keyword_inside_the_value_is_not_its_context() -> None:
    # The SMTP rule wants "smtp", "mail" or "sasl" around the value; a random password holds
    # one of them now and then (1 in 4,000), which must not turn a bare "password:" into an
    # SMTP setting. The same value under an SMTP name is still found.
    rng = random.Random(9)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    body = "".join(rng.choice(alphabet) for _ in range(38))
    value = "BK" + body[:10] + "mAiL" + body[10:]
    assert len(value) == 44
    ruleset = load_ruleset()
    bare = detect(f'password: "{value}"\n'.encode(), ruleset)
    assert not [m for m in bare if m.rule_id == "aws-ses-smtp-password"]
    named = detect(f'smtp_password: "{value}"\n'.encode(), ruleset)
    assert [m.secret.reveal() for m in named if m.rule_id == "aws-ses-smtp-password"] == [value]


def test_many_escapes_give_the_tokens_few_escapes_give(monkeypatch: pytest.MonkeyPatch) -> None:
    # Past MANY_ESCAPES the escape decoder finds token ends in one translated copy of the
    # text; the tokens (and so the view) must be the ones the windowed search finds.
    from scanner.engine import decode

    rng = random.Random(4)
    pieces = []
    for index in range(300):
        kid = key_id(rng=rng)
        token = rng.choice(["\\u0041" + kid[1:], kid[:5] + "\\/" + kid[5:], "x" * rng.randint(1, 30) + "\\x41",
                            "\\u{41}" + kid[1:] + "&#65;" * rng.randint(0, 3)])
        pieces.append(token + rng.choice([" ", "\n", '","', "  \t", "=" * rng.randint(1, 3)]))
    pieces.append("a" * (decode.MAX_TOKEN + 10) + "\\/" + "b" * 10)  # a token too long to decode
    data = "".join(pieces).encode()
    many = decode._escape_view(data)
    monkeypatch.setattr(decode, "MANY_ESCAPES", 10**9)
    few = decode._escape_view(data)
    assert many is not None and few is not None
    assert (many.data, many.view_starts, many.view_ends) == (few.data, few.view_starts, few.view_ends)


def test_escapes_decoded_by_split_equal_one_substitution_per_escape() -> None:
    """Tokens are unescaped by splitting at the escapes (each spelling decoded once): the same
    bytes as substituting escape by escape, over random mixes of every escape, near-escapes
    and plain text."""
    from scanner.engine import decode

    def one_by_one(token: bytes) -> bytes:
        return decode._ESCAPE.sub(lambda match: decode._unescape(match.group()), token)

    rng = random.Random(5)
    parts = [b"\\/", b"\\u0041", b"\\u004a", b"\\u004A", b"\\u{41}", b"\\x4B", b"&#x41;", b"&#X7e;", b"&#65;",
             b"&#126;", b"&#127;", b"\\u001f", b"abc", b"\\u00", b"&#", b"\\", b"/", b";", b"\\u{7", b"\xc3\xa9"]
    for _ in range(3000):
        token = b"".join(rng.choice(parts) for _ in range(rng.randrange(0, 24)))
        assert decode._unescape_all(token) == one_by_one(token), token
