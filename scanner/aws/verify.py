"""Is a found key pair live? STS GetCallerIdentity, signed with the pair itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from scanner.aws.clients import KeyPair, error_code, error_message, leaked_key_client
from scanner.errors import bounded
from scanner.findings import Finding, Verification

# Errors that mean the credentials themselves are not (or no longer) accepted.
NOT_LIVE = frozenset({
    "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException",
    "InvalidAccessKeyId", "UnrecognizedClientException", "AuthFailure", "InvalidToken",
})
MAX_CONCURRENCY = 4
# SignatureDoesNotMatch with these messages is SigV4 refusing the request time, whatever the key.
CLOCK_SKEW = ("Signature expired", "Signature not yet current")


def principal_from_arn(arn: str) -> str | None:
    """The user or role name in an STS caller ARN (``…:user/path/name``, ``…:assumed-role/Role/session``)."""
    resource = arn.split(":", 5)[-1]
    if resource == "root":
        return "root"
    parts = resource.split("/")
    if parts[0] == "assumed-role" and len(parts) >= 2:
        return parts[1]
    return parts[-1] if len(parts) > 1 else None


def _scrubbed(text: str, pair: KeyPair) -> str:
    """An error can quote the request it refused (a SigV4 mismatch names the canonical request,
    session token header included); the reason is printed everywhere, so it names neither."""
    for value in (pair.secret, pair.token):
        if value:
            text = text.replace(value, "********")
    return text


def verify_pair(pair: KeyPair, region: str | None = None) -> Verification:
    import botocore.exceptions

    try:
        identity = leaked_key_client("sts", pair, region).get_caller_identity()
    except botocore.exceptions.ClientError as exc:
        code = error_code(exc)
        message = error_message(exc)
        reason = _scrubbed(f"{code}: {message}", pair)
        if message.startswith(CLOCK_SKEW):
            # SigV4 refused this machine's clock (more than 5 minutes off), not the key.
            return Verification("unknown", reason=f"this machine's clock is off: {reason}")
        return Verification("invalid" if code in NOT_LIVE else "unknown", reason=reason)
    except Exception as exc:  # noqa: BLE001 - BotoCoreError, OSError, and an answer that is not STS's (a
        # proxy's or captive portal's page: ResponseParserError, or KeyError on XML of another shape).
        return Verification("unknown", reason=_scrubbed(f"{type(exc).__name__}: {bounded(str(exc), 200)}", pair))
    arn = str(identity.get("Arn") or "")
    if not arn.startswith("arn:"):
        # Only an identity proves the key live: an answer without one proves nothing.
        return Verification("unknown", reason="STS answered without a caller identity")
    return Verification("valid", arn=arn, account=str(identity.get("Account", "")) or None, user=principal_from_arn(arn))


def _verify_all(pairs: list[KeyPair], region: str | None) -> list[Verification]:
    """Each pair verified, MAX_CONCURRENCY at a time, in daemon threads: a signal stops the
    run at once, instead of waiting (as a thread pool does, even at exit) for every call in
    flight to time out and be retried (15 s read timeout, 2 attempts each)."""
    import queue
    import threading

    todo: queue.SimpleQueue[tuple[int, KeyPair]] = queue.SimpleQueue()
    for item in enumerate(pairs):
        todo.put(item)
    done: queue.SimpleQueue[tuple[int, Verification]] = queue.SimpleQueue()

    def work() -> None:
        while True:
            try:
                index, pair = todo.get_nowait()
            except queue.Empty:
                return
            try:
                outcome = verify_pair(pair, region)
            except BaseException as exc:  # noqa: BLE001 - a result for every pair, or the wait never ends
                outcome = Verification("unknown", reason=_scrubbed(f"{type(exc).__name__}: {bounded(str(exc), 200)}", pair))
            done.put((index, outcome))

    for _ in range(min(MAX_CONCURRENCY, len(pairs))):
        threading.Thread(target=work, name="keysweep-verify", daemon=True).start()
    results: dict[int, Verification] = {}
    while len(results) < len(pairs):
        try:
            index, outcome = done.get(timeout=0.2)  # a timeout: the main thread stays interruptible
        except queue.Empty:
            continue
        results[index] = outcome
    return [results[i] for i in range(len(pairs))]


def pairs_in(findings: Sequence[Finding]) -> dict[str, tuple[Finding, Finding | None, Finding | None]]:
    """Each key ID finding with its paired secret and session token findings, by fingerprint."""
    by_print = {f.fingerprint: f for f in findings}
    result = {}
    for finding in findings:
        if finding.secret.kind != "key-id":
            continue
        secret = by_print.get(finding.pair) if finding.pair else None
        token = by_print.get(finding.session_token) if finding.session_token else None
        result[finding.fingerprint] = (finding, secret, token)
    return result


def verify_findings(findings: Sequence[Finding], *, allow_accounts: frozenset[str] = frozenset(),
                    include_canary: bool = False, region: str | None = None) -> list[Finding]:
    """The findings, each key pair carrying a ``verification``: valid, invalid, unknown,
    canary (a tripwire, never sent) or skipped (outside --allow-account)."""
    decided: dict[str, Verification] = {}
    to_check: dict[KeyPair, list[str]] = {}
    for print_, (key, secret, token) in pairs_in(findings).items():
        members = [print_] + [f.fingerprint for f in (secret, token) if f is not None]
        key_id = key.secret.reveal()
        if key.canary and not include_canary:
            outcome = Verification("canary", reason=f"account {key.account_id} hosts canary tokens: not sent to AWS")
        elif allow_accounts and key.account_id not in allow_accounts:
            why = f"account {key.account_id}" if key.account_id else "account unknown offline (old key ID)"
            outcome = Verification("skipped", reason=f"{why} is not in --allow-account")
        elif secret is None:
            outcome = Verification("unknown", reason="no secret access key was found with this key ID")
        elif key_id.startswith("ASIA") and token is None:
            outcome = Verification("unknown", reason="temporary key without a session token in the same place")
        else:
            pair = KeyPair(key_id, secret.secret.reveal(), token.secret.reveal() if token else None)
            to_check.setdefault(pair, []).extend(members)
            continue
        for member in members:
            decided[member] = outcome
    if to_check:
        outcomes = _verify_all(list(to_check), region)
        for members, outcome in zip(to_check.values(), outcomes, strict=True):
            for member in members:
                decided[member] = outcome
    return [replace(f, verification=decided[f.fingerprint]) if f.fingerprint in decided else f for f in findings]
