"""The Secret type: a credential value whose printed form is always redacted."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SecretKind = Literal["key-id", "secret", "session-token", "smtp-password", "bearer-token"]
# Kinds that belong with an access key ID found close by (an SES SMTP password is derived from
# the key's secret; its user name is the key ID). A bearer token (a Bedrock API key) stands alone.
PAIRS_WITH_KEY_ID: frozenset[SecretKind] = frozenset({"secret", "session-token", "smtp-password"})

# Enough of a key ID to tell keys apart in a report; nothing of a secret key or a token.
KEY_ID_VISIBLE_CHARS = 8
REDACTED = "********"


@dataclass(frozen=True, slots=True)
class Secret:
    """A found credential. ``str()`` and ``repr()`` never show the value; ``reveal()`` does."""

    kind: SecretKind
    _value: str = field(repr=False)

    def reveal(self) -> str:
        return self._value

    @property
    def redacted(self) -> str:
        if self.kind == "key-id":
            return self._value[:KEY_ID_VISIBLE_CHARS] + "…"
        return REDACTED

    @property
    def digest(self) -> str:
        """A stable hash of the value, safe to store (baselines, fingerprints)."""
        import hashlib  # here: a clean scan computes no digest (~4 ms to import)

        return hashlib.sha256(self._value.encode()).hexdigest()

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return f"Secret({self.kind}, {self.redacted})"
