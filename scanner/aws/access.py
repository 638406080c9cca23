"""What a live key can do: its principal, groups and policies, read from IAM (read-only calls,
the operator's credentials), and flags computed from the policy documents themselves.

Flags are an upper bound from Allow statements: Deny statements, conditions, permission
boundaries and SCPs are not subtracted (a lead should read "can" as "may be able to").
"""

from __future__ import annotations

import fnmatch
import json
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from scanner.aws.clients import client, error_code, error_message
from scanner.errors import bounded
from scanner.findings import Access, AccessFlag, PolicyRef

ADMIN_POLICY_ARNS = frozenset({"arn:aws:iam::aws:policy/AdministratorAccess"})
# Actions that let a key holder stay in after the key is revoked (persistence).
IAM_WRITE_ACTIONS = (
    "iam:CreateAccessKey", "iam:CreateUser", "iam:CreateRole", "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile", "iam:AttachUserPolicy", "iam:AttachRolePolicy", "iam:AttachGroupPolicy",
    "iam:PutUserPolicy", "iam:PutRolePolicy", "iam:PutGroupPolicy", "iam:CreatePolicyVersion",
    "iam:AddUserToGroup", "iam:UpdateAssumeRolePolicy", "iam:CreateServiceSpecificCredential",
)
# Broad reads of data: only counted on a resource that is a wildcard for the whole service.
DATA_READ_ACTIONS = (
    "s3:GetObject", "secretsmanager:GetSecretValue", "ssm:GetParameter", "ssm:GetParameters",
    "dynamodb:Scan", "dynamodb:GetItem", "kms:Decrypt", "rds:CopyDBSnapshot",
)
MAX_POLICIES = 50  # a principal has at most 10 managed policies (20 by quota) per user and group


@dataclass(frozen=True)
class Statement:
    actions: tuple[str, ...]
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...]


def _as_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return ()


def allow_statements(document: Any) -> list[Statement]:
    """The Allow statements of a policy document (a dict, JSON text, or URL-encoded JSON text)."""
    if isinstance(document, str):
        text = document if document.lstrip().startswith("{") else urllib.parse.unquote(document)
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
            return []
    if not isinstance(document, dict):
        return []
    raw = document.get("Statement", [])
    statements = [raw] if isinstance(raw, dict) else raw if isinstance(raw, list) else []
    result = []
    for item in statements:
        if not isinstance(item, dict) or item.get("Effect") != "Allow":
            continue
        not_actions = _as_list(item["NotAction"]) if "NotAction" in item else None
        resources = _as_list(item.get("Resource")) if "Resource" in item else ("*",)  # NotResource: broad
        result.append(Statement(_as_list(item.get("Action")), not_actions, resources))
    return result


def _matches(pattern: str, action: str) -> bool:
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def _grants(statement: Statement, action: str) -> bool:
    if statement.not_actions is not None:
        return not any(_matches(p, action) for p in statement.not_actions)
    return any(_matches(p, action) for p in statement.actions)


def _broad(resources: tuple[str, ...], service: str) -> bool:
    for resource in resources:
        if resource == "*":
            return True
        parts = resource.split(":", 5)
        # arn:aws:s3:::*, arn:aws:s3:::*/*, arn:aws:secretsmanager:*:*:secret:*
        if len(parts) == 6 and parts[2] in (service, "*") and parts[5].split("/")[0].rstrip("*").rstrip(":") in ("", "secret", "parameter", "table", "key") and "*" in parts[5]:
            return True
    return False


def flags_of(statements: list[Statement]) -> set[AccessFlag]:
    flags: set[AccessFlag] = set()
    for statement in statements:
        if "*" in statement.resources and (_grants(statement, "*") if statement.not_actions is None
                                           else not statement.not_actions):
            flags.add("admin")
        if any(_grants(statement, action) for action in IAM_WRITE_ACTIONS):
            flags.add("iam-write")
        for action in DATA_READ_ACTIONS:
            if _grants(statement, action) and _broad(statement.resources, action.split(":")[0]):
                flags.add("data-read")
    if "admin" in flags:
        flags |= {"iam-write", "data-read"}
    return flags


def _unreadable() -> tuple[type[BaseException], ...]:
    # Read-only and best effort: an answer botocore cannot parse (ResponseParserError, or a
    # KeyError on XML of the wrong shape), a policy document nested deeper than botocore's own
    # JSON decoding goes (RecursionError): that call's error, never the scan's end.
    return (Exception,)


def _pages(iam: Any, operation: str, key: str, errors: list[str], **kwargs: Any) -> Iterator[Any]:
    import botocore.exceptions

    unreadable = _unreadable()
    try:
        for page in iam.get_paginator(operation).paginate(**kwargs):
            yield from page.get(key, [])
    except botocore.exceptions.ClientError as exc:
        errors.append(f"{operation}: {error_code(exc)}: {error_message(exc)}")
    except unreadable as exc:
        errors.append(f"{operation}: {type(exc).__name__}: {bounded(str(exc), 200)}")


def _call(fn: Callable[..., Any], errors: list[str], name: str, **kwargs: Any) -> Any:
    import botocore.exceptions

    unreadable = _unreadable()
    try:
        return fn(**kwargs)
    except botocore.exceptions.ClientError as exc:
        errors.append(f"{name}: {error_code(exc)}: {error_message(exc)}")
    except unreadable as exc:
        errors.append(f"{name}: {type(exc).__name__}: {bounded(str(exc), 200)}")
    return None


def _managed_document(iam: Any, arn: str, errors: list[str]) -> Any:
    policy = _call(iam.get_policy, errors, "GetPolicy", PolicyArn=arn)
    if policy is None:
        return None
    version = policy.get("Policy", {}).get("DefaultVersionId")
    if not version:
        return None
    answer = _call(iam.get_policy_version, errors, "GetPolicyVersion", PolicyArn=arn, VersionId=version)
    return answer.get("PolicyVersion", {}).get("Document") if answer else None


def _group_policy(iam: Any, group: str, errors: list[str]) -> Callable[[str], Any]:
    return lambda name: _call(iam.get_group_policy, errors, "GetGroupPolicy", GroupName=group, PolicyName=name)


def analyse(iam: Any, arn: str) -> Access:
    """The access of the principal with this caller ARN (a user, a role's session, or root)."""
    resource = arn.split(":", 5)[-1]
    if resource == "root":
        return Access(principal=arn, root=True, flags=("admin", "iam-write", "data-read"))
    parts = resource.split("/")
    errors: list[str] = []
    policies: list[PolicyRef] = []
    statements: list[Statement] = []
    admin = False
    groups: list[str] = []

    def managed(items: Iterator[Any], attached_to: str) -> None:
        nonlocal admin
        for item in items:
            if len(policies) >= MAX_POLICIES:
                errors.append(f"more than {MAX_POLICIES} policies: the rest not read")
                return
            policy_arn = str(item.get("PolicyArn"))
            policies.append(PolicyRef(str(item.get("PolicyName")), "managed", attached_to, policy_arn))
            if policy_arn in ADMIN_POLICY_ARNS:
                admin = True
            statements.extend(allow_statements(_managed_document(iam, policy_arn, errors)))

    def inline(names: Iterator[Any], attached_to: str, fetch: Callable[[str], Any]) -> None:
        for name in names:
            if len(policies) >= MAX_POLICIES:
                errors.append(f"more than {MAX_POLICIES} policies: the rest not read")
                return
            policies.append(PolicyRef(str(name), "inline", attached_to))
            answer = fetch(str(name))
            statements.extend(allow_statements(answer.get("PolicyDocument") if answer else None))

    if parts[0] == "user" and len(parts) >= 2:
        user = parts[-1]
        managed(_pages(iam, "list_attached_user_policies", "AttachedPolicies", errors, UserName=user), "user")
        inline(_pages(iam, "list_user_policies", "PolicyNames", errors, UserName=user), "user",
               lambda n: _call(iam.get_user_policy, errors, "GetUserPolicy", UserName=user, PolicyName=n))
        for group in _pages(iam, "list_groups_for_user", "Groups", errors, UserName=user):
            name = str(group.get("GroupName"))
            groups.append(name)
            managed(_pages(iam, "list_attached_group_policies", "AttachedPolicies", errors, GroupName=name), f"group:{name}")
            inline(_pages(iam, "list_group_policies", "PolicyNames", errors, GroupName=name), f"group:{name}",
                   _group_policy(iam, name, errors))
    elif parts[0] == "assumed-role" and len(parts) >= 2:
        role = parts[1]
        managed(_pages(iam, "list_attached_role_policies", "AttachedPolicies", errors, RoleName=role), "role")
        inline(_pages(iam, "list_role_policies", "PolicyNames", errors, RoleName=role), "role",
               lambda n: _call(iam.get_role_policy, errors, "GetRolePolicy", RoleName=role, PolicyName=n))
    else:
        errors.append(f"no IAM user or role in {arn}: access not read")
    flags = flags_of(statements)
    if admin:
        flags |= {"admin", "iam-write", "data-read"}
    order: tuple[AccessFlag, ...] = ("admin", "iam-write", "data-read")
    return Access(principal=arn, root=False, groups=tuple(groups), policies=tuple(policies),
                  flags=tuple(f for f in order if f in flags), errors=tuple(errors))


def add_access(findings: list[Any], profile: str | None, region: str | None) -> list[Any]:
    """Valid keys (and their secrets and tokens) get an ``access`` object."""
    from dataclasses import replace

    from scanner.aws.clients import operator_session
    from scanner.aws.verify import pairs_in
    from scanner.errors import UsageError

    iam: Any = None
    by_arn: dict[str, Access] = {}
    updates: dict[str, Access] = {}
    for key, secret, token in pairs_in(findings).values():
        verification = key.verification
        if verification is None or verification.status != "valid" or not verification.arn:
            continue
        arn = verification.arn
        if arn not in by_arn:
            if arn.split(":", 5)[-1] == "root":
                by_arn[arn] = analyse(None, arn)
            else:
                try:
                    iam = iam or client(operator_session(profile, region), "iam")
                    by_arn[arn] = analyse(iam, arn)
                except UsageError as exc:
                    by_arn[arn] = Access(principal=arn, root=False, errors=(str(exc),))
        for member in (key, secret, token):
            if member is not None:
                updates[member.fingerprint] = by_arn[arn]
    return [replace(f, access=updates[f.fingerprint]) if f.fingerprint in updates else f for f in findings]
