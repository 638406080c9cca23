"""Credential-shaped test values, generated at run time so none is ever committed."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import re
import random
import secrets
import urllib.parse
from dataclasses import dataclass

BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def key_id(prefix: str = "AKIA", account: str | None = None, rng: random.Random | None = None) -> str:
    """A key ID in AWS's modern layout; with ``account`` it decodes to that account."""
    rng = rng or random.Random(secrets.randbits(64))
    if account is None:
        account = f"{rng.randrange(10**11, 10**12):012d}"
    body = (1 << 47) | (int(account) << 7) | rng.randrange(128)
    head = base64.b32encode(body.to_bytes(6, "big") + bytes(rng.randrange(256) for _ in range(4))).decode()
    return prefix + head[:16]


def secret_key(rng: random.Random | None = None) -> str:
    """A 40-character secret access key with at least one '/' or '+', as most real ones have."""
    rng = rng or random.Random(secrets.randbits(64))
    while True:
        value = "".join(rng.choice(SECRET_ALPHABET) for _ in range(40))
        # Like nearly every real key: a digit and a '/' or '+', no "example", no run of five
        # equal characters (the rules treat such values as placeholders).
        if (("/" in value or "+" in value) and any(c.isdigit() for c in value)
                and "EXAMPLE" not in value.upper() and not re.search(r"(.)\1{4}", value)):
            return value


def session_token(rng: random.Random | None = None) -> str:
    rng = rng or random.Random(secrets.randbits(64))
    return "IQoJb3JpZ2luX2Vj" + "".join(rng.choice(SECRET_ALPHABET) for _ in range(300))


def smtp_password(secret: str, region: str = "us-east-1") -> str:
    """The SES SMTP password AWS derives from a secret access key (version 4: HMAC-SHA256 chain)."""
    signature = ("AWS4" + secret).encode()
    for part in ("11111111", region, "ses", "aws4_request", "SendRawEmail"):
        signature = hmac.new(signature, part.encode(), hashlib.sha256).digest()
    return base64.b64encode(b"\x04" + signature).decode()


def bedrock_long_term_key(account: str, rng: random.Random | None = None) -> str:
    """ABSK + base64("BedrockAPIKey-<identifier>-at-<account>:<secret>"), the documented layout."""
    rng = rng or random.Random(secrets.randbits(64))
    identifier = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(8))
    secret = base64.b64encode(bytes(rng.randrange(256) for _ in range(45))).decode()
    return "ABSK" + base64.b64encode(f"BedrockAPIKey-{identifier}-at-{account}:{secret}".encode()).decode()


def bedrock_short_term_key(signer: str, token: str, region: str = "us-east-1", when: datetime.datetime | None = None,
                           expires: int = 43200) -> str:
    """bedrock-api-key- + base64 of a SigV4 pre-signed URL for CallWithBearerToken."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    signature = hashlib.sha256(f"{signer}{stamp}".encode()).hexdigest()
    url = (f"bedrock.amazonaws.com/?Action=CallWithBearerToken&X-Amz-Algorithm=AWS4-HMAC-SHA256"
           f"&X-Amz-Credential={signer}%2F{stamp[:8]}%2F{region}%2Fbedrock%2Faws4_request&X-Amz-Date={stamp}"
           f"&X-Amz-Expires={expires}&X-Amz-Security-Token={urllib.parse.quote(token, safe='')}"
           f"&X-Amz-Signature={signature}&X-Amz-SignedHeaders=host&Version=1")
    return "bedrock-api-key-" + base64.b64encode(url.encode()).decode()


@dataclass(frozen=True)
class KeySet:
    key_id: str
    secret: str
    token: str
    bedrock_key: str = ""
    bedrock_short_key: str = ""

    @classmethod
    def generate(cls, prefix: str = "AKIA", account: str | None = None) -> KeySet:
        rng = random.Random(secrets.randbits(64))
        account = account or f"{rng.randrange(10**11, 10**12):012d}"
        token = session_token()
        return cls(key_id(prefix, account), secret_key(), token, bedrock_long_term_key(account),
                   bedrock_short_term_key(key_id("ASIA", account), token))

    @property
    def smtp_password(self) -> str:
        return smtp_password(self.secret)

    def credentials_file(self) -> str:
        return f"[default]\naws_access_key_id = {self.key_id}\naws_secret_access_key = {self.secret}\n"

    def jwt(self) -> str:
        def part(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).decode().rstrip("=")

        payload = '{"sub":"ci-deployer","creds":"%s"}' % base64.b64encode(self.credentials_file().encode()).decode()
        header = part(b'{"alg":"HS256","typ":"JWT"}')
        return f"{header}.{part(payload.encode())}.c2lnbmF0dXJl"

    def fill(self, template: str) -> str:
        values = {
            "{key_id}": self.key_id,
            "{secret}": self.secret,
            "{token}": self.token,
            "{key_id_b64}": base64.b64encode(self.key_id.encode()).decode(),
            "{secret_b64}": base64.b64encode(self.secret.encode()).decode(),
            "{secret_url}": urllib.parse.quote(self.secret, safe=""),
            # Written as escapes: JSON's \/ (PHP), \u, \u{}, \x, and HTML character references.
            "{secret_json}": self.secret.replace("/", "\\/"),
            "{key_id_u}": "\\u0041" + self.key_id[1:],
            "{key_id_ub}": "\\u{41}" + self.key_id[1:],
            "{key_id_x}": "\\x41" + self.key_id[1:],
            "{key_id_hex_entity}": "&#x41;" + self.key_id[1:],
            "{key_id_dec_entity}": "&#65;" + self.key_id[1:],
            # Two layers down: base64 of a base64 credentials file, and one inside a JWT payload.
            "{creds_b64_b64}": base64.b64encode(base64.b64encode(self.credentials_file().encode())).decode(),
            "{jwt_creds}": self.jwt(),
            "{smtp_password}": self.smtp_password,
            "{bedrock_key}": self.bedrock_key,
            "{bedrock_short_key}": self.bedrock_short_key,
        }
        for placeholder, value in values.items():
            template = template.replace(placeholder, value)
        return template
