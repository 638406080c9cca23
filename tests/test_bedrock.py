"""Bedrock API keys and SES SMTP passwords: offline facts, and remediation through IAM.

moto has no service-specific credentials, so IAM is botocore's Stubber here, with responses
shaped as the IAM API reference (botocore's service model) documents them; the Stubber also
checks every request against that model.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from scanner.aws import bedrock
from scanner.aws.audit import AuditLog
from scanner.aws.remediate import Operator
from scanner.engine.awskeys import bedrock_key_facts
from scanner.engine.detect import detect
from scanner.engine.rules import load_ruleset
from tests.keygen import KeySet, bedrock_long_term_key, bedrock_short_term_key, key_id

ACCOUNT = "123456789012"
NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)


class _Session:
    """An operator session whose IAM client is the stubbed one."""

    def __init__(self, iam: Any) -> None:
        self.iam = iam

    def client(self, service: str, **_: Any) -> Any:
        assert service == "iam"
        return self.iam


@pytest.fixture
def iam() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _operator(client: Any) -> Operator:
    return Operator(_Session(client), ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/security", None, False)


def _metadata(credential_id: str, user: str, *, alias: str = "", service_user: str = "", status: str = "Active") -> dict[str, Any]:
    item: dict[str, Any] = {"UserName": user, "Status": status, "CreateDate": NOW,
                            "ServiceSpecificCredentialId": credential_id, "ServiceName": "bedrock.amazonaws.com"}
    if alias:
        item["ServiceCredentialAlias"] = alias
    if service_user:
        item["ServiceUserName"] = service_user
    return item


LIST_PARAMS = {"ServiceName": "bedrock.amazonaws.com", "AllUsers": True}


def test_long_term_key_facts_are_decoded_offline() -> None:
    key = bedrock_long_term_key(ACCOUNT)
    facts = bedrock_key_facts(key)
    assert facts is not None and facts.term == "long-term" and facts.account == ACCOUNT
    assert facts.name is not None and facts.name.startswith("BedrockAPIKey-") and facts.name.endswith(f"-at-{ACCOUNT}")
    assert bedrock_key_facts("ABSK" + "QmVkcm9ja0FQSUtleS1ub3RoaW5n") is None  # "BedrockAPIKey-nothing": no account
    assert bedrock_key_facts("ABSK!!!") is None


def test_short_term_key_names_its_signer_and_expiry() -> None:
    signer = key_id("ASIA", ACCOUNT)
    facts = bedrock_key_facts(bedrock_short_term_key(signer, "tok", region="eu-west-1", when=NOW, expires=3600))
    assert facts is not None and facts.term == "short-term"
    assert facts.signer_key_id == signer and facts.account == ACCOUNT and facts.region == "eu-west-1"
    assert facts.issued_at == NOW.isoformat()
    assert facts.expires_at == (NOW + datetime.timedelta(hours=1)).isoformat()


def test_smtp_password_pairs_with_its_key_id_and_not_as_a_session_token() -> None:
    keys = KeySet.generate()
    text = f"[email-smtp.us-east-1.amazonaws.com]:587 {keys.key_id}:{keys.smtp_password}\n"
    matches = detect(text.encode(), load_ruleset())
    kinds = {m.secret.kind: i for i, m in enumerate(matches)}
    assert set(kinds) == {"key-id", "smtp-password"}
    assert matches[kinds["smtp-password"]].pair == kinds["key-id"]
    assert matches[kinds["key-id"]].session_token is None and matches[kinds["key-id"]].pair is None


def test_plan_finds_the_credential_by_name_then_deactivates_and_deletes(iam: tuple[Any, Stubber], tmp_path: Path) -> None:
    client, stubber = iam
    facts = bedrock_key_facts(bedrock_long_term_key(ACCOUNT))
    assert facts is not None and facts.name
    stubber.add_response("list_service_specific_credentials", {
        "ServiceSpecificCredentials": [
            _metadata("ACCAOTHERCREDENTIAL0001", "bob", service_user=f"BedrockAPIKey-other-at-{ACCOUNT}"),
            _metadata("ACCAZ2QSECRETLEAKED0002", "alice", service_user=facts.name),
        ], "IsTruncated": False,
    }, LIST_PARAMS)
    stubber.add_response("update_service_specific_credential", {},
                         {"UserName": "alice", "ServiceSpecificCredentialId": "ACCAZ2QSECRETLEAKED0002", "Status": "Inactive"})
    stubber.add_response("delete_service_specific_credential", {},
                         {"UserName": "alice", "ServiceSpecificCredentialId": "ACCAZ2QSECRETLEAKED0002"})
    operator = _operator(client)
    plans = bedrock.plan([bedrock.Credential(facts.name, facts=facts)], "delete", operator)
    assert [(p.key_id, p.user, p.status, p.actions) for p in plans] == [
        ("ACCAZ2QSECRETLEAKED0002", "alice", "Active", ("deactivate", "delete"))]
    audit = AuditLog(tmp_path / "audit.jsonl")
    dry = bedrock.apply(plans, operator, audit, dry_run=True)
    assert [(o.action, o.result) for o in dry] == [("deactivate", "planned"), ("delete", "planned")]
    done = bedrock.apply(plans, operator, audit, dry_run=False)
    assert [(o.action, o.result) for o in done] == [("deactivate", "ok"), ("delete", "ok")]
    every = [json.loads(line) for line in audit.path.read_text().splitlines()]
    # Written ahead: an intent line (no result yet) before each call, its result after it.
    assert [(e["phase"], e["action"]) for e in every if not e["dry_run"]] == [
        ("intent", "deactivate"), ("result", "deactivate"), ("intent", "delete"), ("result", "delete")]
    lines = [e for e in every if e["phase"] == "result"]
    assert [(e["action"], e["result"], e["dry_run"], e["credential"]) for e in lines] == [
        ("deactivate", "planned", True, "bedrock-api-key"), ("delete", "planned", True, "bedrock-api-key"),
        ("deactivate", "ok", False, "bedrock-api-key"), ("delete", "ok", False, "bedrock-api-key")]


def test_plan_matches_the_alias_across_pages_and_leaves_an_inactive_key_alone(iam: tuple[Any, Stubber]) -> None:
    client, stubber = iam
    facts = bedrock_key_facts(bedrock_long_term_key(ACCOUNT))
    assert facts is not None and facts.name
    stubber.add_response("list_service_specific_credentials", {
        "ServiceSpecificCredentials": [_metadata("ACCAOTHERCREDENTIAL0001", "bob")], "IsTruncated": True, "Marker": "m1",
    }, LIST_PARAMS)
    stubber.add_response("list_service_specific_credentials", {
        "ServiceSpecificCredentials": [_metadata("ACCAZ2QSECRETLEAKED0002", "alice", alias=facts.name, status="Inactive")],
        "IsTruncated": False,
    }, {**LIST_PARAMS, "Marker": "m1"})
    plans = bedrock.plan([bedrock.Credential(facts.name, facts=facts)], "deactivate", _operator(client))
    assert [(p.key_id, p.status, p.actions, p.note) for p in plans] == [
        ("ACCAZ2QSECRETLEAKED0002", "Inactive", (), "already inactive")]


def test_refusals_need_no_iam_call(iam: tuple[Any, Stubber]) -> None:
    client, _ = iam  # no response queued: any IAM call would fail the test
    other = bedrock_key_facts(bedrock_long_term_key("210987654321"))
    signer = key_id("ASIA", ACCOUNT)
    short = bedrock_key_facts(bedrock_short_term_key(signer, "tok"))
    assert other is not None and short is not None
    plans = bedrock.plan([bedrock.Credential("other", facts=other), bedrock.Credential("short", facts=short)],
                         "delete", _operator(client))
    assert plans[0].refusal is not None and "account 210987654321" in plans[0].refusal
    assert plans[1].refusal is not None and "Revoke active sessions" in plans[1].refusal
    assert signer[:8] in plans[1].refusal and signer not in plans[1].refusal


def test_access_denied_while_listing_is_a_refusal_not_a_crash(iam: tuple[Any, Stubber], tmp_path: Path) -> None:
    client, stubber = iam
    facts = bedrock_key_facts(bedrock_long_term_key(ACCOUNT))
    assert facts is not None
    stubber.add_client_error("list_service_specific_credentials", "AccessDenied", "not allowed", 403)
    plans = bedrock.plan([bedrock.Credential("k", facts=facts)], "delete", _operator(client))
    assert plans[0].refusal is not None and "AccessDenied" in plans[0].refusal
    outcomes = bedrock.apply(plans, _operator(client), AuditLog(tmp_path / "a.jsonl"), dry_run=False)
    assert [o.result for o in outcomes] == ["refused"]


def _run_cli(monkeypatch: pytest.MonkeyPatch, client: Any, argv: list[str]) -> int:
    from scanner import cli
    from scanner.aws import remediate

    monkeypatch.setattr(remediate, "connect", lambda *a, **k: _operator(client))
    return cli.main(argv)


def test_revoke_accepts_a_credential_id(iam: tuple[Any, Stubber], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    client, stubber = iam
    stubber.add_response("list_service_specific_credentials", {
        "ServiceSpecificCredentials": [_metadata("ACCAZ2QSECRETLEAKED0002", "alice")], "IsTruncated": False,
    }, LIST_PARAMS)
    stubber.add_response("update_service_specific_credential", {},
                         {"UserName": "alice", "ServiceSpecificCredentialId": "ACCAZ2QSECRETLEAKED0002", "Status": "Inactive"})
    code = _run_cli(monkeypatch, client, ["revoke", "ACCAZ2QSECRETLEAKED0002", "--apply",
                                          "--audit-log", str(tmp_path / "audit.jsonl")])
    assert code == 0
    assert "ACCAZ2QSECRETLEAKED0002: deactivate: ok" in capsys.readouterr().err


def test_scan_remediate_acts_on_a_bedrock_key(iam: tuple[Any, Stubber], monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    client, stubber = iam
    key = bedrock_long_term_key(ACCOUNT)
    facts = bedrock_key_facts(key)
    assert facts is not None and facts.name
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / ".env").write_text(f"AWS_BEARER_TOKEN_BEDROCK={key}\n")
    stubber.add_response("list_service_specific_credentials", {
        "ServiceSpecificCredentials": [_metadata("ACCAZ2QSECRETLEAKED0002", "alice", service_user=facts.name)],
        "IsTruncated": False,
    }, LIST_PARAMS)
    stubber.add_response("update_service_specific_credential", {},
                         {"UserName": "alice", "ServiceSpecificCredentialId": "ACCAZ2QSECRETLEAKED0002", "Status": "Inactive"})
    stubber.add_response("delete_service_specific_credential", {},
                         {"UserName": "alice", "ServiceSpecificCredentialId": "ACCAZ2QSECRETLEAKED0002"})
    dead = bedrock_long_term_key(ACCOUNT)
    (tmp_path / "app" / "old.env").write_text(f"AWS_BEARER_TOKEN_BEDROCK={dead}\n")
    endpoint = _Bedrock(key)  # the live key is proven live first; the dead one is left alone
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", endpoint.url)
    try:
        code = _run_cli(monkeypatch, client, ["scan", "--no-progress", str(tmp_path / "app"), "--remediate", "delete",
                                              "--apply", "--audit-log", str(tmp_path / "audit.jsonl")])
    finally:
        endpoint.close()
    err = capsys.readouterr().err
    assert code == 1, err  # findings remain in the files: exit 1, not a failure
    assert "ACCAZ2QSECRETLEAKED0002: delete: ok" in err
    assert "not proven live (invalid" in err
    assert key not in err and dead not in err


class _Bedrock:
    """A stand-in Bedrock endpoint on 127.0.0.1: accepts one bearer token, answers as AWS does."""

    def __init__(self, accepted: str, denied: str = "") -> None:
        import http.server
        import threading

        outer = self
        self.requests: list[tuple[str, str]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                outer.requests.append((self.path, token))
                if token == accepted:
                    code, body, kind = 200, {"modelSummaries": []}, ""
                elif token == denied:
                    code, body, kind = 403, {"message": "not authorized to perform bedrock:ListFoundationModels"}, "AccessDeniedException"
                else:
                    code, body, kind = 403, {"message": "Invalid API Key format: Must start with pre-defined prefix"}, "UnrecognizedClientException"
                data = json.dumps(body).encode()
                self.send_response(code)
                if kind:
                    self.send_header("x-amzn-ErrorType", f"{kind}:http://internal.amazon.com/coral/")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_verify_key_with_a_read_only_bearer_call(monkeypatch: pytest.MonkeyPatch) -> None:
    live, denied, dead = (bedrock_long_term_key(ACCOUNT) for _ in range(3))
    endpoint = _Bedrock(live, denied)
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", endpoint.url)
    try:
        results = {name: bedrock.verify_key(key, bedrock_key_facts(key))  # type: ignore[arg-type]
                   for name, key in (("live", live), ("denied", denied), ("dead", dead))}
    finally:
        endpoint.close()
    assert results["live"].status == "valid" and results["live"].account == ACCOUNT
    assert results["denied"].status == "valid" and "AccessDenied" in results["denied"].reason
    assert results["dead"].status == "invalid" and "UnrecognizedClient" in results["dead"].reason
    assert {path for path, _ in endpoint.requests} == {"/foundation-models"}
    expired = bedrock_short_term_key(key_id("ASIA", ACCOUNT), "tok", when=NOW, expires=60)
    outcome = bedrock.verify_key(expired, bedrock_key_facts(expired))  # type: ignore[arg-type]
    assert outcome.status == "invalid" and "not sent" in outcome.reason


def test_scan_verify_reports_a_live_bedrock_key(tmp_path: Path) -> None:
    from tests.conftest import run_keysweep

    live, dead = bedrock_long_term_key(ACCOUNT), bedrock_long_term_key(ACCOUNT)
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "live.env").write_text(f"AWS_BEARER_TOKEN_BEDROCK={live}\n")
    (tmp_path / "app" / "old.env").write_text(f"AWS_BEARER_TOKEN_BEDROCK={dead}\n")
    endpoint = _Bedrock(live)
    env = {"AWS_ENDPOINT_URL_BEDROCK": endpoint.url, "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_MAX_ATTEMPTS": "1"}
    try:
        result = run_keysweep("scan", "--verify", "--no-progress", "-f", "json", tmp_path / "app", env=env)
    finally:
        endpoint.close()
    assert result.returncode == 1, result.stderr
    by_path = {f["path"]: f for f in result.json()["findings"]}
    assert by_path["live.env"]["verification"]["status"] == "valid"
    assert by_path["live.env"]["severity"] == "high"
    # The owner lookup could not reach IAM: said in the finding, not fatal.
    assert by_path["live.env"]["access"]["errors"]
    assert by_path["old.env"]["verification"]["status"] == "invalid"
    assert by_path["old.env"]["severity"] == "low"
    assert live not in result.stdout + result.stderr
