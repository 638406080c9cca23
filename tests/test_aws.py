"""Verification and remediation against moto's IAM and STS, in process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.core import enable_iam_authentication

from scanner.aws import remediate, verify
from scanner.aws.audit import AuditLog
from scanner.aws.clients import KeyPair
from scanner.aws.verify import principal_from_arn, verify_findings, verify_pair
from scanner.engine.awskeys import account_id_from_key_id
from scanner.engine.detect import detect
from scanner.engine.rules import load_ruleset
from scanner.findings import Finding, findings_from_matches
from tests.keygen import KeySet

ACCOUNT = "123456789012"
RULESET = load_ruleset()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def aws() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("iam", region_name="us-east-1")


@pytest.fixture
def aws_managed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # The quarantine policy is an AWS managed policy: moto loads those only on request (slow).
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    with mock_aws():
        yield boto3.client("iam", region_name="us-east-1")


def make_user(iam: Any, name: str, admin: bool = False) -> KeyPair:
    iam.create_user(UserName=name)
    if admin:
        iam.put_user_policy(UserName=name, PolicyName="admin", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return KeyPair(key["AccessKeyId"], key["SecretAccessKey"])


def use_operator(monkeypatch: pytest.MonkeyPatch, pair: KeyPair) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", pair.key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", pair.secret)


def findings_for(text: str) -> list[Finding]:
    return findings_from_matches(detect(text.encode(), RULESET), path="app.env", source="file")


def key_status(iam: Any, user: str, key_id: str) -> str | None:
    for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
        if key["AccessKeyId"] == key_id:
            return str(key["Status"])
    return None


def test_moto_key_ids_decode_to_the_account(aws: Any) -> None:
    pair = make_user(aws, "deploy")
    assert account_id_from_key_id(pair.key_id) == ACCOUNT


def test_live_pair_is_valid_with_arn(aws: Any) -> None:
    pair = make_user(aws, "deploy")
    result = verify_pair(pair)
    assert result.status == "valid"
    assert result.arn == f"arn:aws:iam::{ACCOUNT}:user/deploy"
    assert (result.account, result.user) == (ACCOUNT, "deploy")


def test_unknown_key_is_invalid_with_iam_authentication(aws: Any) -> None:
    keys = KeySet.generate()
    with enable_iam_authentication():
        result = verify_pair(KeyPair(keys.key_id, keys.secret))
    assert result.status == "invalid" and "InvalidClientTokenId" in result.reason


def test_wrong_secret_is_invalid(aws: Any) -> None:
    pair = make_user(aws, "deploy")
    with enable_iam_authentication():
        result = verify_pair(KeyPair(pair.key_id, KeySet.generate().secret))
    assert result.status == "invalid" and "SignatureDoesNotMatch" in result.reason


def _stubbed_sts(monkeypatch: pytest.MonkeyPatch, code: str, message: str) -> None:
    sts = boto3.client("sts", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    stubber = Stubber(sts)
    stubber.add_client_error("get_caller_identity", service_error_code=code, service_message=message, http_status_code=403)
    stubber.activate()
    monkeypatch.setattr(verify, "leaked_key_client", lambda *args, **kwargs: sts)


def test_inactive_key_means_not_live(monkeypatch: pytest.MonkeyPatch) -> None:
    # moto keeps accepting inactive keys; AWS answers InvalidClientTokenId for them.
    _stubbed_sts(monkeypatch, "InvalidClientTokenId", "The security token included in the request is invalid.")
    keys = KeySet.generate()
    assert verify_pair(KeyPair(keys.key_id, keys.secret)).status == "invalid"


def test_throttling_is_unknown_with_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    _stubbed_sts(monkeypatch, "Throttling", "Rate exceeded")
    keys = KeySet.generate()
    result = verify_pair(KeyPair(keys.key_id, keys.secret))
    assert result.status == "unknown" and "Throttling" in result.reason


def test_unreachable_endpoint_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    keys = KeySet.generate()
    result = verify_pair(KeyPair(keys.key_id, keys.secret))
    assert result.status == "unknown" and result.reason


def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("this key must not be sent to AWS")

    monkeypatch.setattr(verify, "leaked_key_client", refuse)


def test_canary_keys_are_never_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_network(monkeypatch)
    keys = KeySet.generate(account="052310077262")
    findings = verify_findings(findings_for(f"AWS_ACCESS_KEY_ID={keys.key_id}\nAWS_SECRET_ACCESS_KEY={keys.secret}\n"))
    assert {f.verification.status for f in findings if f.verification} == {"canary"}
    assert len(findings) == 2 and all(f.verification for f in findings)


def test_allow_account_restricts_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_network(monkeypatch)
    keys = KeySet.generate(account="210987654321")
    findings = verify_findings(findings_for(f"id={keys.key_id}\nsecret_key={keys.secret}\n"), allow_accounts=frozenset({ACCOUNT}))
    assert {f.verification.status for f in findings if f.verification} == {"skipped"}


def test_temporary_key_without_token_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_network(monkeypatch)
    keys = KeySet.generate(prefix="ASIA")
    [key, _] = verify_findings(findings_for(f"id={keys.key_id}\nsecret_key={keys.secret}\n"))
    assert key.verification is not None and key.verification.status == "unknown"
    assert "session token" in key.verification.reason


def test_temporary_key_with_token_is_verified_with_it(aws: Any) -> None:
    sts = boto3.client("sts", region_name="us-east-1")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/ci", RoleSessionName="build")["Credentials"]
    text = (f"aws_access_key_id = {creds['AccessKeyId']}\naws_secret_access_key = {creds['SecretAccessKey']}\n"
            f"aws_session_token = {creds['SessionToken']}\n")
    findings = verify_findings(findings_for(text))
    assert {f.secret.kind for f in findings} == {"key-id", "secret", "session-token"}
    assert all(f.verification and f.verification.status == "valid" for f in findings)
    assert findings[0].verification and findings[0].verification.arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/ci/build"


def test_principal_from_arn() -> None:
    assert principal_from_arn("arn:aws:iam::1:user/ci/deploy") == "deploy"
    assert principal_from_arn("arn:aws:sts::1:assumed-role/Admin/session") == "Admin"
    assert principal_from_arn("arn:aws:iam::1:root") == "root"


# --- remediation ------------------------------------------------------------------------


def test_plan_changes_nothing_then_apply_deactivates_then_deletes(aws: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    use_operator(monkeypatch, make_user(aws, "security", admin=True))
    leaked = make_user(aws, "deploy")
    audit = AuditLog(tmp_path / "audit.jsonl")
    operator = remediate.connect(None, None)
    target = [remediate.Target(leaked.key_id)]

    plan = remediate.plan(target, "deactivate", operator)
    assert plan[0].user == "deploy" and plan[0].actions == ("deactivate",) and plan[0].account == ACCOUNT
    outcomes = remediate.apply(plan, operator, audit, dry_run=True)
    assert [o.result for o in outcomes] == ["planned"]
    assert key_status(aws, "deploy", leaked.key_id) == "Active"

    remediate.apply(remediate.plan(target, "deactivate", operator), operator, audit, dry_run=False)
    assert key_status(aws, "deploy", leaked.key_id) == "Inactive"
    again = remediate.apply(remediate.plan(target, "deactivate", operator), operator, audit, dry_run=False)
    assert [o.result for o in again] == ["already-inactive"]

    delete_plan = remediate.plan(target, "delete", operator)
    assert delete_plan[0].actions == ("delete",)
    assert [o.result for o in remediate.apply(delete_plan, operator, audit, dry_run=False)] == ["ok"]
    assert key_status(aws, "deploy", leaked.key_id) is None
    rerun = remediate.apply(remediate.plan(target, "delete", operator), operator, audit, dry_run=False)
    assert [o.result for o in rerun] == ["not-found"]

    every = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    # Written ahead: an intent line before each mutating call, its result after it.
    assert [(e["phase"], e["action"]) for e in every if e["action"] != "none" and not e["dry_run"]] == [
        ("intent", "deactivate"), ("result", "deactivate"), ("intent", "delete"), ("result", "delete"),
    ]
    lines = [e for e in every if e["phase"] == "result"]
    assert [(e["action"], e["result"], e["dry_run"]) for e in lines] == [
        ("deactivate", "planned", True), ("deactivate", "ok", False), ("none", "already-inactive", False),
        ("delete", "ok", False), ("none", "not-found", False),
    ]
    assert all(e["key_id"] == leaked.key_id and e["time"] and e["operator"].endswith("user/security") for e in every)
    assert leaked.secret not in (tmp_path / "audit.jsonl").read_text()


def test_delete_of_active_key_deactivates_first(aws_managed: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    aws = aws_managed
    use_operator(monkeypatch, make_user(aws, "security", admin=True))
    leaked = make_user(aws, "deploy")
    operator = remediate.connect(None, None)
    plan = remediate.plan([remediate.Target(leaked.key_id)], "delete", operator, quarantine=True)
    assert plan[0].actions == ("deactivate", "delete", "quarantine")
    outcomes = remediate.apply(plan, operator, AuditLog(tmp_path / "a.jsonl"), dry_run=False)
    assert [(o.action, o.result) for o in outcomes] == [("deactivate", "ok"), ("delete", "ok"), ("quarantine", "ok")]
    policies = aws.list_attached_user_policies(UserName="deploy")["AttachedPolicies"]
    assert [p["PolicyName"] for p in policies] == ["AWSCompromisedKeyQuarantineV3"]


def test_refuses_operator_own_key(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    own = make_user(aws, "security", admin=True)
    use_operator(monkeypatch, own)
    operator = remediate.connect(None, None)
    [plan] = remediate.plan([remediate.Target(own.key_id)], "delete", operator)
    assert plan.refusal and "signed with" in plan.refusal and not plan.actions


def test_refuses_key_of_another_account(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_operator(monkeypatch, make_user(aws, "security", admin=True))
    foreign = KeySet.generate(account="210987654321")
    [plan] = remediate.plan([remediate.Target(foreign.key_id)], "deactivate", remediate.connect(None, None))
    assert plan.refusal and "210987654321" in plan.refusal and ACCOUNT in plan.refusal


def test_refuses_root_and_temporary_keys(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_operator(monkeypatch, make_user(aws, "security", admin=True))
    operator = remediate.connect(None, None)
    root = KeySet.generate(account=ACCOUNT)
    temporary = KeySet.generate(prefix="ASIA", account=ACCOUNT)
    plans = remediate.plan([remediate.Target(root.key_id, arn=f"arn:aws:iam::{ACCOUNT}:root"),
                            remediate.Target(temporary.key_id)], "delete", operator)
    assert "root user" in (plans[0].refusal or "") and "Security credentials" in (plans[0].refusal or "")
    assert "Revoke active sessions" in (plans[1].refusal or "")
    assert all(not p.actions for p in plans)


def test_access_denied_fails_one_key_and_goes_on(aws: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    weak = make_user(aws, "auditor")
    aws.put_user_policy(UserName="auditor", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["iam:GetAccessKeyLastUsed", "iam:ListAccessKeys", "sts:GetCallerIdentity"], "Resource": "*"}],
    }))
    first, second = make_user(aws, "one"), make_user(aws, "two")
    use_operator(monkeypatch, weak)
    with enable_iam_authentication():
        operator = remediate.connect(None, None)
        plans = remediate.plan([remediate.Target(first.key_id), remediate.Target(second.key_id)], "deactivate", operator)
        outcomes = remediate.apply(plans, operator, AuditLog(tmp_path / "a.jsonl"), dry_run=False)
    assert [(o.user, o.result) for o in outcomes] == [("one", "failed"), ("two", "failed")]
    assert "AccessDenied" in outcomes[0].detail and "permission" in outcomes[0].detail
    assert key_status(aws, "one", first.key_id) == "Active"


def test_no_operator_credentials_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from scanner.errors import AwsError

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(AwsError, match="no AWS credentials"):
        remediate.connect(None, None)


def test_use_leaked_key_signs_with_the_key_itself(aws: Any, tmp_path: Path) -> None:
    leaked = make_user(aws, "deploy")
    operator = remediate.connect(None, None, leaked)
    assert operator.leaked and operator.own_key_id == leaked.key_id
    [plan] = remediate.plan([remediate.Target(leaked.key_id)], "delete", operator)
    # Signed with itself, the key cannot be deactivated first and then delete itself.
    assert plan.refusal is None and plan.actions == ("delete",) and plan.user == "deploy"
    [deactivate] = remediate.plan([remediate.Target(leaked.key_id)], "deactivate", operator)
    assert deactivate.actions == ("deactivate",)
    outcomes = remediate.apply([deactivate], operator, AuditLog(tmp_path / "a.jsonl"), dry_run=False)
    assert [o.result for o in outcomes] == ["ok"]
    assert key_status(aws, "deploy", leaked.key_id) == "Inactive"
