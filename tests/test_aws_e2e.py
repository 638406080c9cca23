"""End to end: the real keysweep command against a moto server on 127.0.0.1.

Found live key -> verified -> planned (nothing changes) -> deactivated -> deleted -> re-run
is harmless, and the audit log holds every step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import run_keysweep
from tests.gitrepo import GitRepo

ACCOUNT = "123456789012"


@pytest.fixture
def iam(moto_url: str) -> Any:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).read()
    return boto3.client("iam", endpoint_url=moto_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def aws_env(moto_url: str, operator: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": operator["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": operator["SecretAccessKey"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def status_of(iam: Any, user: str, key_id: str) -> str | None:
    keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    return next((k["Status"] for k in keys if k["AccessKeyId"] == key_id), None)


def test_scan_verify_plan_deactivate_delete_rerun(iam: Any, moto_url: str, tmp_path: Path) -> None:
    iam.create_user(UserName="security")
    operator = iam.create_access_key(UserName="security")["AccessKey"]
    iam.create_user(UserName="deploy")
    leaked = iam.create_access_key(UserName="deploy")["AccessKey"]
    key_id = leaked["AccessKeyId"]

    repo = GitRepo(tmp_path / "repo")
    repo.commit("add deploy credentials", {
        "deploy/credentials": f"[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {leaked['SecretAccessKey']}\n",
    })
    env = aws_env(moto_url, operator, tmp_path)
    audit = tmp_path / "audit.jsonl"

    verified = run_keysweep("scan", "--verify", "--format", "json", repo.path, env=env)
    assert verified.returncode == 1, verified.stderr
    findings = verified.json()["findings"]
    assert {f["verification"]["status"] for f in findings} == {"valid"}
    assert {f["verification"]["arn"] for f in findings} == {f"arn:aws:iam::{ACCOUNT}:user/deploy"}
    assert leaked["SecretAccessKey"] not in verified.stdout + verified.stderr

    planned = run_keysweep("scan", repo.path, "--remediate", "deactivate", "--audit-log", audit, env=env)
    assert planned.returncode == 1, planned.stderr
    assert "dry run" in planned.stderr and key_id[:8] in planned.stderr and "user deploy" in planned.stderr
    assert key_id not in planned.stderr  # redacted in the plan unless --show-secrets
    assert status_of(iam, "deploy", key_id) == "Active"

    applied = run_keysweep("scan", repo.path, "--remediate", "deactivate", "--apply", "--audit-log", audit, env=env)
    assert applied.returncode == 1, applied.stderr
    assert status_of(iam, "deploy", key_id) == "Inactive"

    deleted = run_keysweep("revoke", key_id, "--delete", "--apply", "--audit-log", audit, env=env)
    assert deleted.returncode == 0, deleted.stderr
    assert status_of(iam, "deploy", key_id) is None

    rerun = run_keysweep("scan", repo.path, "--remediate", "delete", "--apply", "--audit-log", audit,
                         "--format", "json", env=env)
    assert rerun.returncode == 1, rerun.stderr
    assert [o["result"] for o in rerun.json()["summary"]["remediation"]] == ["not-found"]

    entries = [e for e in map(json.loads, audit.read_text().splitlines()) if e["phase"] == "result"]
    assert [(e["action"], e["result"], e["dry_run"]) for e in entries] == [
        ("deactivate", "planned", True),
        ("deactivate", "ok", False),
        ("delete", "ok", False),
        ("none", "not-found", False),
    ]
    assert all(e["key_id"] == key_id and e["account"] == ACCOUNT for e in entries)
    assert entries[1]["user"] == "deploy" and entries[1]["operator"] == f"arn:aws:iam::{ACCOUNT}:user/security"
    assert leaked["SecretAccessKey"] not in audit.read_text()


def test_revoke_refusals_and_errors_exit_codes(iam: Any, moto_url: str, tmp_path: Path) -> None:
    iam.create_user(UserName="security")
    operator = iam.create_access_key(UserName="security")["AccessKey"]
    env = aws_env(moto_url, operator, tmp_path)
    audit = tmp_path / "audit.jsonl"

    own = run_keysweep("revoke", operator["AccessKeyId"], "--apply", "--audit-log", audit, env=env)
    assert own.returncode == 2 and "signed with" in own.stderr
    assert status_of(iam, "security", operator["AccessKeyId"]) == "Active"

    bad = run_keysweep("revoke", "not-a-key", env=env)
    assert bad.returncode == 2 and "not an AWS access key ID" in bad.stderr

    unreachable = {**env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    down = run_keysweep("revoke", operator["AccessKeyId"], "--audit-log", audit, env=unreachable)
    assert down.returncode == 3 and "Traceback" not in down.stderr


def test_default_audit_log_is_outside_the_repository(iam: Any, moto_url: str, tmp_path: Path) -> None:
    iam.create_user(UserName="security")
    operator = iam.create_access_key(UserName="security")["AccessKey"]
    iam.create_user(UserName="ci")
    key_id = iam.create_access_key(UserName="ci")["AccessKey"]["AccessKeyId"]
    state = tmp_path / "state"
    result = run_keysweep("revoke", key_id, cwd=tmp_path, env={**aws_env(moto_url, operator, tmp_path), "XDG_STATE_HOME": str(state)})
    assert result.returncode == 0, result.stderr
    [entry] = [json.loads(line) for line in (state / "keysweep" / "audit.jsonl").read_text().splitlines()]
    assert (entry["key_id"], entry["user"], entry["result"], entry["dry_run"]) == (key_id, "ci", "planned", True)
    assert str(state / "keysweep" / "audit.jsonl") in result.stderr
    assert status_of(iam, "ci", key_id) == "Active"


def test_invalid_key_against_server_with_iam_authentication(iam: Any, moto_url: str, tmp_path: Path) -> None:
    import urllib.request

    from tests.keygen import KeySet

    iam.create_user(UserName="security")
    operator = iam.create_access_key(UserName="security")["AccessKey"]
    keys = KeySet.generate(account=ACCOUNT)
    (tmp_path / "x.env").write_text(f"AWS_ACCESS_KEY_ID={keys.key_id}\nAWS_SECRET_ACCESS_KEY={keys.secret}\n")

    def reset_auth(value: str) -> None:
        request = urllib.request.Request(f"{moto_url}/moto-api/reset-auth", data=value.encode(), method="POST",
                                         headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(request).read()

    reset_auth("0")
    try:
        result = run_keysweep("scan", "--no-history", "--verify", "--format", "json", tmp_path,
                              env=aws_env(moto_url, operator, tmp_path))
    finally:
        reset_auth("inf")
    assert result.returncode == 1, result.stderr
    statuses = {f["verification"]["status"] for f in result.json()["findings"]}
    reasons = {f["verification"]["reason"] for f in result.json()["findings"]}
    assert statuses == {"invalid"} and any("InvalidClientTokenId" in r for r in reasons)


def test_verify_without_network_flag_sends_nothing(tmp_path: Path) -> None:
    # Without --verify, a scan must not touch the network even when credentials are set.
    from tests.keygen import KeySet

    keys = KeySet.generate()
    (tmp_path / "x.env").write_text(f"AWS_ACCESS_KEY_ID={keys.key_id}\nAWS_SECRET_ACCESS_KEY={keys.secret}\n")
    result = run_keysweep("scan", "--no-history", "--format", "json", tmp_path,
                          env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"})
    assert result.returncode == 1
    assert all(f["verification"] is None for f in result.json()["findings"])
