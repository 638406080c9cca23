"""Incident response, end to end: the real CLI against a moto server on 127.0.0.1.

Three live keys leaked in a real repository: an administrator's and a read-only user's in
commits pushed to a bare "remote", and a key-making CI user's in a commit only the local
branch has. The scan must say, per key, who it is, what it can do, whether the commit left
the machine, whether the key was used after the leak, and how severe that is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import moto_server, run_keysweep
from tests.gitrepo import GitRepo
from tests.keygen import KeySet
from tests.test_aws_e2e import aws_env

ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    # moto knows AWS managed policies (AdministratorAccess) only when asked to load them.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        with moto_server() as url:
            yield url


def _credentials(key: dict[str, str]) -> str:
    return f"[default]\naws_access_key_id = {key['AccessKeyId']}\naws_secret_access_key = {key['SecretAccessKey']}\n"


@pytest.fixture(scope="module")
def incident(moto_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The account, the repository and one scan of it (shared: the scan is the expensive part)."""
    tmp = tmp_path_factory.mktemp("incident")
    import urllib.request

    # moto's state is per process, shared with other tests' servers: start clean (and with
    # the managed policies loaded, as the variable now asks).
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).read()
    iam = boto3.client("iam", endpoint_url=moto_url, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    iam.create_user(UserName="security")
    operator = iam.create_access_key(UserName="security")["AccessKey"]
    iam.create_user(UserName="admin")
    iam.attach_user_policy(UserName="admin", PolicyArn=ADMIN_ARN)
    admin = iam.create_access_key(UserName="admin")["AccessKey"]
    iam.create_group(GroupName="keymakers")
    iam.put_group_policy(GroupName="keymakers", PolicyName="make-keys", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["iam:CreateAccessKey"], "Resource": "*"}],
    }))
    iam.create_user(UserName="ci")
    iam.add_user_to_group(GroupName="keymakers", UserName="ci")
    ci = iam.create_access_key(UserName="ci")["AccessKey"]
    reader_policy = iam.create_policy(PolicyName="read-buckets", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "arn:aws:s3:::*"}],
    }))["Policy"]["Arn"]
    iam.create_user(UserName="reader")
    iam.attach_user_policy(UserName="reader", PolicyArn=reader_policy)
    reader = iam.create_access_key(UserName="reader")["AccessKey"]

    remote = GitRepo(tmp / "remote.git", bare=True)
    repo = GitRepo(tmp / "repo")
    admin_commit = repo.commit("admin credentials", {"ops/admin.ini": _credentials(admin)})
    repo.commit("reader credentials", {"ops/reader.ini": _credentials(reader)})
    repo.git("remote", "add", "origin", str(remote.path))
    repo.git("push", "-q", "-u", "origin", "main")
    ci_commit = repo.commit("ci credentials", {"ci/ci.ini": _credentials(ci)})

    # The admin key is used after the leak (the commits are dated 2023); the others never.
    boto3.client("s3", endpoint_url=moto_url, region_name="eu-west-1", aws_access_key_id=admin["AccessKeyId"],
                 aws_secret_access_key=admin["SecretAccessKey"]).list_buckets()

    env = aws_env(moto_url, operator, tmp)
    result = run_keysweep("scan", "--verify", "--format", "json", repo.path, env=env)
    assert result.returncode == 1, result.stderr
    text = run_keysweep("scan", "--verify", "--history-only", repo.path, env=env)
    # By path: moto's key IDs share more than the 8 characters a report shows.
    by_path = {f["path"]: f for f in result.json()["findings"] if f["kind"] == "key-id"}
    secrets = [admin["SecretAccessKey"], ci["SecretAccessKey"], reader["SecretAccessKey"], operator["SecretAccessKey"]]
    for output in (result.stdout, result.stderr, text.stdout, text.stderr):
        assert not any(s in output for s in secrets)
    return {
        "findings": result.json()["findings"], "text": text, "env": env, "repo": repo, "iam": iam,
        "admin": by_path["ops/admin.ini"], "ci": by_path["ci/ci.ini"], "reader": by_path["ops/reader.ini"], "admin_commit": admin_commit, "ci_commit": ci_commit,
    }


def test_admin_key_is_critical_pushed_and_used_after_the_leak(incident: dict[str, Any]) -> None:
    admin = incident["admin"]
    assert admin["commit"]["sha"] == incident["admin_commit"]
    assert admin["severity"] == "critical"
    access = admin["access"]
    assert access["principal"].endswith(":user/admin") and access["root"] is False
    assert access["flags"] == ["admin", "iam-write", "data-read"]
    assert [(p["name"], p["kind"], p["attached_to"]) for p in access["policies"]] == [("AdministratorAccess", "managed", "user")]
    exposure = admin["exposure"]
    assert exposure["pushed"] is True
    assert exposure["leaked_at"].startswith("2023-11-14")
    assert exposure["key_status"] == "Active" and exposure["key_created"]
    assert exposure["last_used"]["service"] == "s3" and exposure["last_used"]["region"] == "eu-west-1"
    assert exposure["used_after_leak"] is True


def test_group_inline_policy_that_makes_keys_is_iam_write_and_critical(incident: dict[str, Any]) -> None:
    ci = incident["ci"]
    assert ci["severity"] == "critical"
    assert ci["access"]["groups"] == ["keymakers"]
    assert ci["access"]["flags"] == ["iam-write"]
    assert [(p["name"], p["kind"], p["attached_to"]) for p in ci["access"]["policies"]] == [("make-keys", "inline", "group:keymakers")]
    assert ci["exposure"]["pushed"] is False  # only the local branch has the commit
    # Read before keysweep's own STS call, which moto (like IAM) records as a use.
    assert ci["exposure"]["last_used"]["date"] is None
    assert ci["exposure"]["used_after_leak"] is False


def test_read_only_user_is_high_with_data_read_from_the_policy_document(incident: dict[str, Any]) -> None:
    reader = incident["reader"]
    assert reader["severity"] == "high"
    assert reader["access"]["flags"] == ["data-read"]
    assert [(p["name"], p["kind"]) for p in reader["access"]["policies"]] == [("read-buckets", "managed")]
    assert reader["exposure"]["pushed"] is True


def test_secret_findings_carry_their_keys_severity_and_access(incident: dict[str, Any]) -> None:
    secrets = [f for f in incident["findings"] if f["kind"] == "secret"]
    assert len(secrets) >= 3
    by_print = {f["fingerprint"]: f for f in incident["findings"]}
    for secret in secrets:
        key = by_print[secret["pair"]]
        assert secret["severity"] == key["severity"]
        assert secret["access"] == key["access"]


def test_text_report_is_ordered_by_severity_and_tells_the_story(incident: dict[str, Any]) -> None:
    out = incident["text"].stdout
    heads = [line for line in out.splitlines() if line and not line.startswith(" ") and "[" in line]
    order = [h.split("[")[1].split("]")[0] for h in heads]
    assert order == sorted(order, key=["critical", "high", "medium", "low"].index), order
    assert "can: admin, iam-write, data-read" in out
    assert "used after the leak: YES" in out
    assert "pushed: no (local refs only)" in out
    assert "make-keys (via group:keymakers) [inline]" in out


def test_fail_on_critical_still_fails_and_sarif_carries_severity(incident: dict[str, Any], tmp_path: Path) -> None:
    sarif_out = tmp_path / "out.sarif"
    result = run_keysweep("scan", "--verify", "--fail-on", "critical", "--format", "sarif", "-o", sarif_out,
                          incident["repo"].path, env=incident["env"])
    assert result.returncode == 1, result.stderr
    results = json.loads(sarif_out.read_text())["runs"][0]["results"]
    levels = {(r["properties"]["severity"], r["level"], r["properties"]["security-severity"]) for r in results}
    assert ("critical", "error", "9.5") in levels and ("high", "error", "8.0") in levels


def test_offline_severity_and_fail_on(tmp_path: Path, keys: KeySet) -> None:
    repo = GitRepo(tmp_path / "repo")
    lone = KeySet.generate()
    repo.commit("config", {"pair.ini": f"aws_access_key_id = {keys.key_id}\naws_secret_access_key = {keys.secret}\n"})
    repo.commit("id only", {"id.txt": f"AWS_ACCESS_KEY_ID={lone.key_id}\n"})
    result = run_keysweep("scan", "--no-progress", "--format", "json", repo.path)
    assert result.returncode == 1
    severity = {f["secret"]: f["severity"] for f in result.json()["findings"] if f["kind"] == "key-id"}
    assert severity == {keys.key_id[:8] + "…": "high", lone.key_id[:8] + "…": "medium"}
    assert all(f["exposure"]["pushed"] is False for f in result.json()["findings"])  # no remote at all
    assert all(f["exposure"]["used_after_leak"] == "unknown" for f in result.json()["findings"])
    assert run_keysweep("scan", "--no-progress", "--fail-on", "critical", repo.path).returncode == 0
    assert run_keysweep("scan", "--no-progress", "--fail-on", "high", repo.path).returncode == 1

    only_id = GitRepo(tmp_path / "only-id")
    only_id.commit("id only", {"id.txt": f"AWS_ACCESS_KEY_ID={lone.key_id}\n"})
    assert run_keysweep("scan", "--no-progress", "--fail-on", "high", only_id.path).returncode == 0
    assert run_keysweep("scan", "--no-progress", "--fail-on", "medium", only_id.path).returncode == 1
    bad = run_keysweep("scan", "--fail-on", "severe", only_id.path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_pushed_follows_remote_branches_and_tags_only(tmp_path: Path) -> None:
    from scanner.sources.git import find_repository, published_commits

    remote = GitRepo(tmp_path / "remote.git", bare=True)
    repo = GitRepo(tmp_path / "repo")
    first = repo.commit("one")
    repo.git("remote", "add", "origin", str(remote.path))
    assert published_commits(find_repository(repo.path, search_parents=False), [first]) == {first: False}  # type: ignore[arg-type]
    repo.git("push", "-q", "-u", "origin", "main")
    second = repo.commit("two")
    third = repo.commit("three")
    repo.git("tag", "v1", second)
    found = published_commits(find_repository(repo.path, search_parents=False), [first, second, third, "not-a-sha"])  # type: ignore[arg-type]
    assert found == {first: True, second: True, third: False}
