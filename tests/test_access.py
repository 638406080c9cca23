"""Access analysis and severity, in process: flags come from policy documents, errors are reported."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from scanner.aws.access import allow_statements, analyse, flags_of
from scanner.aws.exposure import last_used_of, used_after
from scanner.findings import Access, Exposure, Finding, LastUsed, Verification
from scanner.secret import Secret
from scanner.severity import assign_severity, by_severity

ACCOUNT = "123456789012"


def _flags(*statements: dict[str, Any]) -> list[str]:
    return sorted(flags_of(allow_statements({"Version": "2012-10-17", "Statement": list(statements)})))


@pytest.mark.parametrize(("statement", "flags"), [
    ({"Effect": "Allow", "Action": "*", "Resource": "*"}, ["admin", "data-read", "iam-write"]),
    ({"Effect": "Allow", "Action": "iam:*", "Resource": "*"}, ["iam-write"]),
    ({"Effect": "Allow", "Action": ["iam:Attach*Policy"], "Resource": "*"}, ["iam-write"]),
    ({"Effect": "Allow", "Action": "iam:Get*", "Resource": "*"}, []),
    ({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::*/*"}, ["data-read"]),
    ({"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}, ["data-read"]),
    ({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::one-bucket/reports/*"}, []),
    ({"Effect": "Deny", "Action": "*", "Resource": "*"}, []),
    ({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}, ["data-read"]),  # PowerUserAccess-like
    ({"Effect": "Allow", "NotAction": [], "Resource": "*"}, ["admin", "data-read", "iam-write"]),
    ({"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}, []),
])
def test_flags_come_from_the_statements(statement: dict[str, Any], flags: list[str]) -> None:
    assert _flags(statement) == flags


def test_documents_as_iam_returns_them_url_encoded_or_as_text() -> None:
    document = json.dumps({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}})
    assert flags_of(allow_statements(document)) >= {"admin"}
    assert flags_of(allow_statements("%7B%22Statement%22%3A%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22%2A%22%2C%22Resource%22%3A%22%2A%22%7D%7D")) >= {"admin"}
    assert allow_statements("not json") == [] and allow_statements(None) == [] and allow_statements({"Statement": 3}) == []


def test_root_is_root_without_any_call() -> None:
    access = analyse(None, f"arn:aws:iam::{ACCOUNT}:root")  # moto's and AWS's root ARN
    assert access.root and "admin" in access.flags


@mock_aws
def test_customer_managed_policy_is_read_not_guessed_from_its_name() -> None:
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_user(UserName="u")
    # Named like an admin policy, grants nothing much: the document decides.
    arn = iam.create_policy(PolicyName="AdministratorAccessButNotReally", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]}))["Policy"]["Arn"]
    iam.attach_user_policy(UserName="u", PolicyArn=arn)
    iam.put_user_policy(UserName="u", PolicyName="inline", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}))
    access = analyse(iam, f"arn:aws:iam::{ACCOUNT}:user/u")
    assert [p.name for p in access.policies] == ["AdministratorAccessButNotReally", "inline"]
    assert access.flags == ("data-read",) and access.errors == ()


def test_permission_errors_are_reported_not_fatal() -> None:
    iam = boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(iam) as stubber:
        stubber.add_response("list_attached_user_policies", {"AttachedPolicies": [], "IsTruncated": False}, {"UserName": "u"})
        stubber.add_client_error("list_user_policies", "AccessDenied", "no", 403)
        stubber.add_client_error("list_groups_for_user", "AccessDenied", "no", 403)
        access = analyse(iam, f"arn:aws:iam::{ACCOUNT}:user/u")
    assert access.flags == ()
    assert [e.split(":")[0] for e in access.errors] == ["list_user_policies", "list_groups_for_user"]


def test_last_used_as_the_api_reference_shapes_it() -> None:
    # moto reports last use too (tests/test_incident.py); this covers IAM's "N/A" for a key never used.
    iam = boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(iam) as stubber:
        stubber.add_response("get_access_key_last_used", {
            "UserName": "u", "AccessKeyLastUsed": {"ServiceName": "N/A", "Region": "N/A"}}, {"AccessKeyId": "AKIAIOSFODNN7EXAMPLE"})
        never = last_used_of(iam, "AKIAIOSFODNN7EXAMPLE")
        stubber.add_client_error("get_access_key_last_used", "AccessDenied", "no", 403)
        denied = last_used_of(iam, "AKIAIOSFODNN7EXAMPLE")
    assert never.user == "u" and never.last_used == LastUsed(None, None, None)
    assert used_after(never.last_used, "2024-01-01T00:00:00+00:00") is False
    assert denied.last_used is None and denied.error is not None and "AccessDenied" in denied.error
    assert used_after(denied.last_used, "2024-01-01T00:00:00+00:00") is None
    used = LastUsed("2024-06-01T00:00:00+00:00", "s3", "us-east-1")
    assert used_after(used, "2024-01-01T00:00:00+01:00") is True
    assert used_after(used, "2024-07-01T00:00:00Z") is False
    assert used_after(used, None) is None


def _finding(kind: str, print_: str, pair: str | None = None, **extra: Any) -> Finding:
    rule = {"key-id": "aws-access-key-id", "secret": "aws-secret-access-key"}.get(kind, "x")
    return Finding(rule, Secret(kind, print_), "f", 1, 1, "file", print_, pair=pair, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(("verification", "access", "exposure", "expected"), [
    (None, None, None, "high"),
    (Verification("valid", arn=f"arn:aws:iam::{ACCOUNT}:user/u"), None, None, "high"),
    (Verification("valid", arn=f"arn:aws:iam::{ACCOUNT}:user/u"), Access("a", False, flags=("iam-write",)), None, "critical"),
    (Verification("valid", arn=f"arn:aws:iam::{ACCOUNT}:user/u"), Access("a", False, flags=("data-read",)), None, "high"),
    (Verification("valid", arn=f"arn:aws:iam::{ACCOUNT}:root"), None, None, "critical"),
    (Verification("valid", arn="a"), None, Exposure(None, None, None, key_status="Inactive"), "low"),
    (Verification("unknown"), None, None, "high"),  # a failed check (throttling) keeps the offline severity
    (Verification("skipped"), None, None, "medium"),
    (Verification("invalid"), None, None, "low"),
])
def test_severity_of_a_pair(verification: Verification | None, access: Access | None, exposure: Exposure | None,
                            expected: str) -> None:
    key = _finding("key-id", "k", pair="s", verification=verification, access=access, exposure=exposure)
    secret = _finding("secret", "s", pair="k")
    assert [f.severity for f in assign_severity([key, secret])] == [expected, expected]


def test_severity_of_lone_values_and_order() -> None:
    lone_id = _finding("key-id", "k1")
    lone_secret = _finding("secret", "s1")
    canary = _finding("key-id", "k2", canary=True)
    smtp_key = _finding("key-id", "k3")
    smtp = _finding("smtp-password", "p3", pair="k3")
    result = assign_severity([canary, lone_id, lone_secret, smtp_key, smtp])
    assert [f.severity for f in result] == ["low", "medium", "medium", "high", "high"]
    assert [f.fingerprint for f in by_severity(result)] == ["k3", "p3", "k1", "s1", "k2"]
