"""boto3 sessions and clients: the leaked key's own (for verification) and the operator's."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class KeyPair:
    key_id: str
    secret: str = field(repr=False)
    token: str | None = field(default=None, repr=False)


def _config(attempts: int) -> Any:
    from botocore.config import Config

    # Short timeouts: a scan must not hang on an unreachable endpoint. Standard retry mode
    # backs off on throttling.
    return Config(connect_timeout=5, read_timeout=15, retries={"mode": "standard", "max_attempts": attempts})


def leaked_key_client(service: str, pair: KeyPair, region: str | None) -> Any:
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=pair.key_id, aws_secret_access_key=pair.secret, aws_session_token=pair.token,
        region_name=region or DEFAULT_REGION,
    )
    return cast(Any, session).client(service, config=_config(2))


def operator_session(profile: str | None, region: str | None) -> Any:
    import boto3
    import botocore.exceptions

    try:
        session = boto3.session.Session(profile_name=profile, region_name=region)
    except botocore.exceptions.ProfileNotFound as exc:
        from scanner.errors import UsageError

        raise UsageError(f"AWS profile not found: {exc}") from None
    if session.region_name is None:
        session = boto3.session.Session(profile_name=profile, region_name=DEFAULT_REGION)
    return session


def session_for_pair(pair: KeyPair, region: str | None) -> Any:
    import boto3

    return boto3.session.Session(
        aws_access_key_id=pair.key_id, aws_secret_access_key=pair.secret, aws_session_token=pair.token,
        region_name=region or DEFAULT_REGION,
    )


def client(session: Any, service: str) -> Any:
    return session.client(service, config=_config(3))


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", type(exc).__name__))
    return type(exc).__name__


def error_message(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Message", "")) or str(exc)
    return str(exc)
