"""An outsider's attacks on incident response, remediation and the fleet audit, each kept as a
regression test (the log of every attack tried, held or not, is in the attack-aws notes).

AWS is moto in process (``mock_aws``), botocore's Stubber where moto lacks an API, or a
small local HTTP server answering as a broken or hostile endpoint would. Keys are generated
when the tests run.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from scanner.aws import bedrock, remediate
from scanner.aws.audit import AuditLog
from scanner.aws.clients import KeyPair
from scanner.engine.awskeys import bedrock_key_facts
from tests.conftest import run_keysweep
from tests.gitrepo import GitRepo
from tests.keygen import KeySet, bedrock_long_term_key

ACCOUNT = "123456789012"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_BEDROCK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def aws() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("iam", region_name="us-east-1")


def make_user(iam: Any, name: str) -> KeyPair:
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return KeyPair(key["AccessKeyId"], key["SecretAccessKey"])


def use_operator(monkeypatch: pytest.MonkeyPatch, pair: KeyPair) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", pair.key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", pair.secret)


def key_status(iam: Any, user: str, key_id: str) -> str | None:
    for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
        if key["AccessKeyId"] == key_id:
            return str(key["Status"])
    return None


def inject(monkeypatch: pytest.MonkeyPatch, module: Any,
           failures: dict[str, Callable[[dict[str, Any]], BaseException | None]]) -> None:
    """Every client ``module`` makes raises ``fail(params)`` (when not None) on each operation named."""
    original = module.client

    def patched(session: Any, service: str) -> Any:
        made = original(session, service)
        for operation, fail in failures.items():
            def handler(params: dict[str, Any], fail: Any = fail, **_: Any) -> None:
                error = fail(params)
                if error is not None:
                    raise error

            made.meta.events.register(f"provide-client-params.{service}.{operation}", handler)
        return made

    monkeypatch.setattr(module, "client", patched)


def client_error(code: str, operation: str, status: int = 400) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": f"{code} for this test"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation)


# --- remediation: an AWS error while planning is that key's failure, never the run's ---------


def test_a_key_whose_lookup_fails_fails_alone_and_the_others_are_remediated(
        aws: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    operator_pair = make_user(aws, "security")
    denied, throttled, down, fine = (make_user(aws, name) for name in ("denied", "throttled", "down", "fine"))
    use_operator(monkeypatch, operator_pair)

    def lookup(params: dict[str, Any]) -> BaseException | None:
        if params.get("AccessKeyId") == throttled.key_id:
            return client_error("Throttling", "GetAccessKeyLastUsed")
        if params.get("AccessKeyId") == down.key_id:
            return botocore.exceptions.EndpointConnectionError(endpoint_url="https://iam.amazonaws.com/")
        return None

    inject(monkeypatch, remediate, {
        "GetAccessKeyLastUsed": lookup,
        "ListAccessKeys": lambda p: client_error("AccessDenied", "ListAccessKeys", 403)
        if p.get("UserName") == "denied" else None,
    })
    operator = remediate.connect(None, None)
    targets = [remediate.Target(k.key_id) for k in (denied, throttled, down, fine)]
    plans = remediate.plan(targets, "deactivate", operator)  # raised before: the whole run was lost
    audit = AuditLog(tmp_path / "audit.jsonl")
    outcomes = remediate.apply(plans, operator, audit, dry_run=False)
    by_key = {o.key_id: o for o in outcomes}
    assert by_key[fine.key_id].result == "ok" and key_status(aws, "fine", fine.key_id) == "Inactive"
    for key, word in ((denied, "AccessDenied"), (throttled, "Throttling"), (down, "EndpointConnectionError")):
        # A key that could not be looked up is a failure (exit 3), not a refusal: it is still live.
        assert by_key[key.key_id].result == "failed" and word in by_key[key.key_id].detail
    assert key_status(aws, "denied", denied.key_id) == "Active"
    logged = [json.loads(line) for line in audit.path.read_text().splitlines()]
    assert {e["key_id"] for e in logged if e.get("result") == "failed"} == {denied.key_id, throttled.key_id, down.key_id}


def test_revoke_whose_lookup_is_denied_exits_3_not_2(aws: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from scanner import cli

    operator_pair = make_user(aws, "security")
    leaked = make_user(aws, "deploy")
    use_operator(monkeypatch, operator_pair)
    inject(monkeypatch, remediate, {"GetAccessKeyLastUsed": lambda p: client_error("AccessDenied", "GetAccessKeyLastUsed", 403)})
    code = cli.main(["revoke", leaked.key_id, "--apply", "--audit-log", str(tmp_path / "audit.jsonl")])
    err = capsys.readouterr().err
    assert code == 3, err  # 2 says "you asked wrongly"; the operator's permissions failed
    assert "AccessDenied" in err and "internal error" not in err
    assert key_status(aws, "deploy", leaked.key_id) == "Active"


# --- fleet audit: credentials in target URLs ---------------------------------------------------


@pytest.mark.parametrize("url", [
    "https://{t}@github.com/org/app.git",  # a token as the user name (GitHub, GitLab accept it)
    "https://oauth2:{t}@gitlab.example.com/org/app.git",
    "http://{t}@127.0.0.1:9/org/app.git",
    "https://{t}@[::1/org/app.git",  # urlsplit refuses it: the user part must still go
    "ssh://deploy:{t}@git.example.com/org/app.git",
])
def test_a_token_in_a_target_url_is_never_shown(url: str) -> None:
    from scanner.fleet.targets import display_url, mirror_path

    token = "tok3n" + "Z9y8X7w6" * 4
    shown = display_url(url.format(t=token))
    assert token not in shown and "***" in shown
    assert token not in str(mirror_path(Path("/cache"), shown))


def test_a_user_name_that_is_no_secret_is_kept() -> None:
    from scanner.fleet.targets import display_url

    assert display_url("ssh://git@github.com/org/app.git") == "ssh://git@github.com/org/app.git"
    assert display_url("git@github.com:org/app.git") == "git@github.com:org/app.git"
    assert display_url("https://github.com/org/app.git") == "https://github.com/org/app.git"


# --- fleet audit: hostile repositories -------------------------------------------------------------


def test_audit_state_and_messages_hold_no_secret_nor_control_character(tmp_path: Path) -> None:
    """A secret used bare as a commit subject (found in the file, not in the message) and
    repositories whose folder names carry terminal escapes, one of them corrupt."""
    keys = KeySet.generate()
    repo = GitRepo(tmp_path / "org" / "evil\x1b[31mRED\x07")
    repo.commit(f"fix {keys.secret}", {"a.env": f"AWS_ACCESS_KEY_ID={keys.key_id}\nAWS_SECRET_ACCESS_KEY={keys.secret}\n"})
    broken = GitRepo(tmp_path / "org" / "broken\x1b[2J")
    broken.commit("x", {"b.txt": "hello\n"})
    for path in (broken.path / ".git" / "objects").rglob("*"):
        if path.is_file():
            path.chmod(0o644)
            path.write_bytes(b"garbage")
    state = tmp_path / "state.sqlite"
    result = run_keysweep("audit", "--no-progress", "--workers", "1", "--state", state, tmp_path / "org", timeout=180)
    assert result.returncode == 3, result.stderr
    assert "aws-secret-access-key" in result.stdout and "broken" in result.stderr
    assert "\x1b" not in result.stdout and "\x1b" not in result.stderr and "\x07" not in result.stdout
    assert "\\x1b[31mRED" in result.stdout
    assert keys.secret not in result.stdout + result.stderr
    # The state keeps what reports show: the subject redacted, never the secret itself.
    assert keys.secret.encode() not in state.read_bytes()
    with sqlite3.connect(state) as db:
        stored = [json.loads(data) for (data,) in db.execute("SELECT data FROM findings")]
    assert stored and all(s["commit"]["summary"] == "fix ********" for s in stored)
    again = run_keysweep("audit", "--no-progress", "--workers", "1", "--state", state, repo.path, timeout=180)
    assert again.returncode == 1 and again.stdout.count("aws-secret-access-key") >= 1, again.stderr
    assert keys.secret not in again.stdout and "fix ********" in again.stdout


def _old_state(path: Path) -> None:
    with sqlite3.connect(path) as db:  # as an earlier keysweep might have left it
        db.execute("CREATE TABLE repositories (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)")


def _damaged_rows(path: Path) -> None:
    from scanner.fleet.state import AuditState

    AuditState(path).close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO repositories (id, name, rules, refs) VALUES (1, 'x', 'r', 'f')")
        db.execute("INSERT INTO findings VALUES (1, 'fp', 'obj', '{not json', 't', 't', 'open')")


def _rows_of_another_shape(path: Path) -> None:
    from scanner.fleet.state import AuditState

    AuditState(path).close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO repositories (id, name, rules, refs) VALUES (1, 'x', 'r', 'f')")
        db.execute("INSERT INTO findings VALUES (1, 'fp', 'obj', ?, 't', 't', 'open')",
                   (json.dumps({"rule_id": "r", "commit": {"sha": "s"}}),))


@pytest.mark.parametrize("make", [_old_state, _damaged_rows, _rows_of_another_shape])
def test_a_state_from_another_version_or_damaged_is_a_clear_error(make: Callable[[Path], None], tmp_path: Path) -> None:
    from scanner.errors import UsageError
    from scanner.fleet.state import AuditState

    path = tmp_path / "state.sqlite"
    make(path)
    with pytest.raises(UsageError, match="--state .*state.sqlite"):
        state = AuditState(path)
        state.known("x", "r")
        state.live_findings("x")


def test_a_state_another_process_holds_is_in_use_not_damaged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Told "damaged, move it away", a user would throw out an intact state (and every
    # finding's first_seen and status) because a concurrent audit held it.
    from scanner.errors import UsageError
    from scanner.fleet import state as state_module

    path = tmp_path / "state.sqlite"
    state_module.AuditState(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(state_module, "LOCK_WAIT_SECONDS", 0.2)
    try:
        with pytest.raises(UsageError) as info:
            opened = state_module.AuditState(path)
            opened.record("x", rules="r", refs="f", new_objects=["0" * 40], findings=[], when="2026-11-29T00:00:00+00:00")
        assert "in use by another process" in str(info.value) and "damaged" not in str(info.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    reopened = state_module.AuditState(path)  # intact once released
    reopened.known("x", "r")
    reopened.close()


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to watch the worker start")
def test_sigterm_while_the_embedded_cluster_starts_prints_no_traceback(tmp_path: Path) -> None:
    import os
    import signal
    import time

    repo = GitRepo(tmp_path / "org" / "r")
    repo.commit("x", {"README.md": "hi\n"})
    proc = subprocess.Popen([sys.executable, "-m", "scanner", "audit", "--no-progress", "--workers", "1", "--state",
                             str(tmp_path / "s.sqlite"), str(repo.path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not _descendants(proc.pid) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        time.sleep(0.2)  # the worker process exists and is starting: Dask calls it Status.init
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and err.strip() == "keysweep: stopped by SIGTERM", err
    time.sleep(2)
    assert _descendants(proc.pid) == []


# --- Bedrock API keys: a lost answer is uncertain, as for access keys ---------------------------


class _Session:
    def __init__(self, iam: Any) -> None:
        self.iam = iam

    def client(self, service: str, **_: Any) -> Any:
        return self.iam


@contextlib.contextmanager
def _silent_server() -> Iterator[str]:
    """Accepts connections and reads requests, never answers: the call's answer is lost."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        # Stopped and joined before the socket is closed: a thread still in accept() on a
        # closed descriptor would take the connections of whatever socket reuses its number.
        stop.set()
        thread.join()
        server.close()
        for conn in held:
            conn.close()


def _bedrock_plan() -> remediate.Plan:
    return remediate.Plan("ACCAZ2QSECRETLEAKED0002", ACCOUNT, "alice", "Active", ("deactivate", "delete"))


def test_bedrock_call_whose_answer_is_lost_is_uncertain_not_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.config import Config

    with _silent_server() as url:
        iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x",
                           aws_secret_access_key="x",
                           config=Config(read_timeout=0.5, connect_timeout=2, retries={"max_attempts": 1}))
        operator = remediate.Operator(_Session(iam), ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/security", None, False)
        monkeypatch.setattr(bedrock, "client", lambda session, service: iam)
        audit = AuditLog(tmp_path / "audit.jsonl")
        outcomes = bedrock.apply([_bedrock_plan()], operator, audit, dry_run=False)
    # The request went out: AWS may have deactivated the key. "failed" would say it is untouched.
    assert [(o.action, o.result) for o in outcomes] == [("deactivate", "uncertain")]
    assert "may have landed" in outcomes[0].detail


def test_bedrock_call_answered_with_a_server_error_is_uncertain(tmp_path: Path) -> None:
    iam = boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    operator = remediate.Operator(_Session(iam), ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/security", None, False)
    with Stubber(iam) as stubber:
        stubber.add_client_error("update_service_specific_credential", "ServiceFailure", "try again", 500)
        outcomes = bedrock.apply([_bedrock_plan()], operator, AuditLog(tmp_path / "a.jsonl"), dry_run=False)
    assert [(o.action, o.result) for o in outcomes] == [("deactivate", "uncertain")]


def test_revoke_of_a_bedrock_credential_whose_answer_is_lost_exits_3(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from scanner import cli

    iam = boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    operator = remediate.Operator(_Session(iam), ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/security", None, False)
    monkeypatch.setattr(remediate, "connect", lambda *a, **k: operator)
    with Stubber(iam) as stubber:
        stubber.add_response("list_service_specific_credentials", {"ServiceSpecificCredentials": [{
            "UserName": "alice", "Status": "Active", "CreateDate": "2026-01-01T00:00:00Z",
            "ServiceSpecificCredentialId": "ACCAZ2QSECRETLEAKED0002", "ServiceName": "bedrock.amazonaws.com",
            "ServiceUserName": "BedrockAPIKey-x-at-123456789012"}], "IsTruncated": False})
        stubber.add_client_error("update_service_specific_credential", "ServiceFailure", "try again", 503)
        code = cli.main(["revoke", "ACCAZ2QSECRETLEAKED0002", "--apply", "--audit-log", str(tmp_path / "a.jsonl")])
    assert code == 3, capsys.readouterr().err


# --- verification and access analysis against malformed answers ---------------------------------


@contextlib.contextmanager
def _answering(status: int, body: bytes, content_type: str = "text/xml") -> Iterator[str]:
    """An endpoint that answers every request with this status and body."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


STS_EMPTY = (b'<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
             b"<GetCallerIdentityResult></GetCallerIdentityResult></GetCallerIdentityResponse>")


@pytest.mark.parametrize(("status", "body"), [
    (200, b"<html><body>captive portal</body></html"),  # not XML at all
    (200, STS_EMPTY),  # XML, but no identity in it
    (200, b""),
    (502, b"<html>bad gateway</html>"),
])
def test_a_malformed_sts_answer_is_unknown_never_valid_nor_a_crash(status: int, body: bytes,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from scanner.aws.verify import verify_pair

    keys = KeySet.generate()
    with _answering(status, body) as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        outcome = verify_pair(KeyPair(keys.key_id, keys.secret))
    assert outcome.status == "unknown", outcome
    assert keys.secret not in (outcome.reason or "")


def test_a_policy_document_nested_beyond_the_parser_is_an_error_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    """IAM's documents are parsed twice (botocore decodes them, then keysweep): a document
    nested deeper than Python's recursion limit must not end the scan."""
    from scanner.aws import access

    deep = "[" * 5000 + "]" * 5000
    assert access.allow_statements(deep) == []
    assert access.allow_statements("%7B" + "%5B" * 5000) == []
    iam = boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    arn = f"arn:aws:iam::{ACCOUNT}:policy/deep"
    with Stubber(iam) as stubber:
        stubber.add_response("list_attached_user_policies", {"AttachedPolicies": [{"PolicyName": "deep", "PolicyArn": arn}],
                                                             "IsTruncated": False})
        stubber.add_response("get_policy", {"Policy": {"PolicyName": "deep", "Arn": arn, "DefaultVersionId": "v1"}})
        stubber.add_response("get_policy_version", {"PolicyVersion": {"Document": "%5B" * 5000, "VersionId": "v1"}})
        stubber.add_response("list_user_policies", {"PolicyNames": ["inline"], "IsTruncated": False})
        stubber.add_response("get_user_policy", {"UserName": "u", "PolicyName": "inline", "PolicyDocument":
                             json.dumps({"Statement": {"Effect": "Allow", "Action": "iam:CreateUser", "Resource": "*"}})})
        stubber.add_response("list_groups_for_user", {"Groups": [], "IsTruncated": False})
        result = access.analyse(iam, f"arn:aws:iam::{ACCOUNT}:user/u")
    assert result.flags == ("iam-write",)  # what could be read still counts
    assert [p.name for p in result.policies] == ["deep", "inline"]
    assert any("GetPolicyVersion" in e for e in result.errors), result.errors


@pytest.mark.parametrize("body", [b"<html>captive portal</html", STS_EMPTY])
def test_a_malformed_answer_to_the_operator_is_a_clear_error(body: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    from scanner.aws.exposure import snapshot
    from scanner.errors import AwsError

    keys = KeySet.generate()
    use_operator(monkeypatch, KeyPair(keys.key_id, keys.secret))
    with _answering(200, body) as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        with pytest.raises(AwsError, match="operator"):
            remediate.connect(None, None)
        # IAM's last-use record is read the same way: an error on that key, not the scan's end.
        activity = snapshot([keys.key_id], None, None)
    assert activity[keys.key_id].last_used is None and activity[keys.key_id].error


def test_bedrock_listing_that_cannot_reach_iam_is_that_key_s_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    iam = boto3.client("iam", endpoint_url="http://127.0.0.1:9", region_name="us-east-1", aws_access_key_id="x",
                       aws_secret_access_key="x", config=__import__("botocore.config").config.Config(
                           retries={"max_attempts": 1}, connect_timeout=2))
    operator = remediate.Operator(_Session(iam), ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/security", None, False)
    monkeypatch.setattr(bedrock, "client", lambda session, service: iam)
    facts = bedrock_key_facts(bedrock_long_term_key(ACCOUNT))
    assert facts is not None
    plans = bedrock.plan([bedrock.Credential("k", facts=facts)], "delete", operator)
    assert [p.actions for p in plans] == [()] and "EndpointConnectionError" in (plans[0].refusal or "")


@pytest.mark.parametrize("module", [remediate, bedrock])
def test_a_mutating_call_answered_with_garbage_is_uncertain(module: Any, tmp_path: Path) -> None:
    """The request reached something that answered 200 with a page that is not IAM's: the
    change may have landed. Before, the exception ended the run between intent and result."""
    from botocore.config import Config

    with _answering(200, b"<html>not iam</html") as url:
        iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x",
                           aws_secret_access_key="x", config=Config(retries={"max_attempts": 1}))
        operator = remediate.Operator(_Session(iam), ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/security", None, False)
        plan = remediate.Plan("AKIA" + "Q" * 16, ACCOUNT, "alice", "Active", ("deactivate", "delete"))
        audit = AuditLog(tmp_path / "audit.jsonl")
        outcomes = module.apply([plan], operator, audit, dry_run=False)
    assert [(o.action, o.result) for o in outcomes] == [("deactivate", "uncertain")]
    logged = [json.loads(line) for line in audit.path.read_text().splitlines()]
    assert [(e["phase"], e.get("result")) for e in logged] == [("intent", None), ("result", "uncertain")]


# --- exposure: hostile commit and tag objects -------------------------------------------------------


def _raw_object(repo: GitRepo, kind: str, body: str) -> str:
    proc = subprocess.run(["git", "hash-object", "-t", kind, "-w", "--stdin", "--literally"], input=body.encode(),
                          cwd=repo.path, capture_output=True, check=True)
    return proc.stdout.decode().strip()


@pytest.mark.parametrize(("stamp", "leaked_at"), [
    ("99999999999999999999 +0000", None), ("253402300800 +1400", None), ("", None), ("x +0000", None),
    ("-5 -0000", "1969-12-31T23:59:55+00:00"),  # before 1970 is a date like any other
])
def test_a_tag_dated_out_of_range_does_not_hide_every_finding(stamp: str, leaked_at: str | None, tmp_path: Path) -> None:
    """One annotated tag whose tagger date overflows time_t ended the whole scan with an
    internal error (exit 3) and no finding reported."""
    keys = KeySet.generate()
    repo = GitRepo(tmp_path / "r")
    commit = repo.commit("add", {"a.env": f"AWS_ACCESS_KEY_ID={keys.key_id}\nAWS_SECRET_ACCESS_KEY={keys.secret}\n"})
    tag = _raw_object(repo, "tag", f"object {commit}\ntype commit\ntag v1\ntagger Evil <e@x> {stamp}\n\n"
                                   f"release {keys.key_id} {keys.secret}\n")
    repo.git("update-ref", "refs/tags/v1", tag)
    result = run_keysweep("scan", "--no-progress", "--history-only", "--format", "json", repo.path)
    assert result.returncode == 1, result.stderr
    findings = result.json()["findings"]
    in_tag = [f for f in findings if f["commit"] and f["commit"]["summary"] == "tag v1"]
    assert in_tag and {f["exposure"]["leaked_at"] for f in in_tag} == {leaked_at}  # no date: null, not ""
    assert {f["exposure"]["leaked_at"][:4] for f in findings if f not in in_tag} == {"2023"}


# --- Bedrock verification: an answer that quotes the key --------------------------------------------


@pytest.mark.parametrize("status", [400, 403, 500])
def test_a_bedrock_answer_quoting_the_key_never_carries_it_into_the_reason(status: int,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    key = bedrock_long_term_key(ACCOUNT)
    facts = bedrock_key_facts(key)
    assert facts is not None
    body = json.dumps({"message": f"Malformed Authorization header 'Bearer {key}'"}).encode()
    with _answering(status, body, "application/json") as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", url)
        outcome = bedrock.verify_key(key, facts)
    assert outcome.reason and "Malformed Authorization header" in outcome.reason
    assert key not in outcome.reason and key[4:40] not in outcome.reason


# --- the audit log ------------------------------------------------------------------------------------


def test_an_audit_log_that_is_a_fifo_without_reader_is_an_error_not_a_hang(tmp_path: Path) -> None:
    import os

    from scanner.aws.audit import AuditLogError

    fifo = tmp_path / "audit.jsonl"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def write() -> None:
        try:
            AuditLog(fifo).check_writable()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():  # unblock the writer so the test run can end
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        thread.join(5)
        pytest.fail("opening the audit log blocked on a FIFO nobody reads")
    assert outcome and isinstance(outcome[0], AuditLogError) and str(fifo) in str(outcome[0])


def test_a_leak_dated_in_the_future_never_clears_a_used_key() -> None:
    """The author date is the repository's to choose: a commit dated 2099 must not make a key
    used yesterday read as 'not used since the leak'."""
    import datetime

    from scanner.aws.exposure import used_after
    from scanner.findings import LastUsed

    yesterday = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)).isoformat()
    used = LastUsed(yesterday, "s3", "eu-west-1")
    assert used_after(used, "2099-01-01T00:00:00+00:00") is None  # unknown, not False
    assert used_after(used, "2020-01-01T00:00:00+00:00") is True
    assert used_after(LastUsed("2019-01-01T00:00:00+00:00", "s3", None), "2020-01-01T00:00:00+00:00") is False
    assert used_after(LastUsed(None, None, None), "2099-01-01T00:00:00+00:00") is False  # never used at all


# --- interrupts ----------------------------------------------------------------------------------------


def test_sigterm_while_verifying_stops_within_seconds(tmp_path: Path) -> None:
    """STS accepts the connections and never answers: SIGTERM must not wait for the read
    timeouts and retries of every pair in flight (it took 43 s)."""
    import os
    import signal
    import time

    folder = tmp_path / "leaks"
    folder.mkdir()
    pairs = [KeySet.generate() for _ in range(6)]
    (folder / "keys.env").write_text("".join(f"AWS_ACCESS_KEY_ID={k.key_id}\nAWS_SECRET_ACCESS_KEY={k.secret}\n" + "\n" * 8
                                             for k in pairs))
    with _silent_server() as sts:
        env = {**os.environ, "AWS_ENDPOINT_URL_STS": sts, "AWS_ENDPOINT_URL_IAM": "http://127.0.0.1:9",
               "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_EC2_METADATA_DISABLED": "true",
               "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
        env.pop("AWS_ENDPOINT_URL", None)
        proc = subprocess.Popen([sys.executable, "-m", "scanner", "scan", "--no-progress", "--verify", str(folder)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            port = int(sts.rsplit(":", 1)[1])
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not _connected_to(port):
                time.sleep(0.05)
            time.sleep(0.3)
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
            took = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 143, err
    assert took < 10, f"stopping took {took:.1f}s"


def _connected_to(port: int) -> bool:
    """Is any TCP connection established to 127.0.0.1:port (from /proc/net/tcp)?"""
    try:
        table = Path("/proc/net/tcp").read_text()
    except OSError:
        return True
    needle = f"0100007F:{port:04X}"
    return any(line.split()[2] == needle and line.split()[3] == "01" for line in table.splitlines()[1:])


def test_a_short_term_bedrock_key_dated_year_9999_does_not_hide_every_finding(tmp_path: Path) -> None:
    """Its expiry (issue time + X-Amz-Expires) overflowed datetime: an internal error ended
    the scan, exit 3, no finding reported, for any repository holding one such string."""
    import datetime

    from tests.keygen import bedrock_short_term_key, key_id

    keys = KeySet.generate()
    late = bedrock_short_term_key(key_id("ASIA", ACCOUNT), "tok",
                                  when=datetime.datetime(9999, 12, 31, 23, 0, tzinfo=datetime.timezone.utc))
    (tmp_path / "a.env").write_text(f"AWS_BEARER_TOKEN_BEDROCK={late}\n"
                                    f"AWS_ACCESS_KEY_ID={keys.key_id}\nAWS_SECRET_ACCESS_KEY={keys.secret}\n")
    result = run_keysweep("scan", "--no-progress", "--format", "json", tmp_path)
    assert result.returncode == 1, result.stderr
    rules = {f["rule"] for f in result.json()["findings"]}
    assert {"aws-access-key-id", "aws-secret-access-key", "aws-bedrock-short-term-api-key"} <= rules


def _sts_error(code: str, message: str) -> bytes:
    return (f'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
            f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>r</RequestId></ErrorResponse>").encode()


@pytest.mark.parametrize("message", [
    "Signature expired: 20261128T100000Z is now earlier than 20261128T103000Z (20261128T103500Z - 5 min.)",
    "Signature not yet current: 20261128T120000Z is still later than 20261128T104000Z (20261128T103500Z + 5 min.)",
])
def test_a_clock_off_by_minutes_never_clears_a_live_key(message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """SigV4 refuses a request signed with this machine's clock more than 5 minutes off as
    SignatureDoesNotMatch: that says nothing of the key, so it must not read 'invalid' (which
    --remediate turns into 'not-compromised' and severity 'low')."""
    from scanner.aws.verify import verify_pair

    keys = KeySet.generate()
    with _answering(403, _sts_error("SignatureDoesNotMatch", message)) as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        outcome = verify_pair(KeyPair(keys.key_id, keys.secret))
    assert outcome.status == "unknown" and "clock" in (outcome.reason or ""), outcome
    with _answering(403, _sts_error("SignatureDoesNotMatch", "The request signature we calculated does not match "
                                    "the signature you provided.")) as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        assert verify_pair(KeyPair(keys.key_id, keys.secret)).status == "invalid"  # a wrong secret still is


def test_revoke_and_allow_account_errors_quote_a_bounded_value(capsys: pytest.CaptureFixture[str]) -> None:
    from scanner import cli

    assert cli.main(["revoke", "\x1b[2J" + "x" * 100_000]) == 2
    err = capsys.readouterr().err
    assert len(err) < 500 and "\x1b" not in err
    assert cli.main(["revoke", "AKIA" + "Q" * 16, "--allow-account", "1" * 100_000]) == 2
    assert len(capsys.readouterr().err) < 500


@pytest.mark.parametrize("region", ["evil.example/x?", "x@10.0.0.1:8443/", "us-east-1\x1b[31m", "a" * 300])
def test_a_short_term_bedrock_key_cannot_choose_where_verification_is_sent(region: str,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The region comes from the key's own X-Amz-Credential, which the repository wrote; it went
    into https://bedrock.{region}.amazonaws.com, so a planted key sent keysweep (with the key as
    bearer token, and the answer's first 200 characters into the report) to any host."""
    import datetime
    import urllib.parse
    import urllib.request

    from scanner.engine.awskeys import BedrockKey
    from tests.keygen import bedrock_short_term_key, key_id

    key = bedrock_short_term_key(key_id("ASIA", ACCOUNT), "tok", region=urllib.parse.quote(region, safe=""))
    facts = bedrock_key_facts(key)
    assert facts is not None and facts.term == "short-term" and facts.region is None
    sent: list[str] = []

    def urlopen(request: urllib.request.Request, timeout: float) -> Any:
        sent.append(request.full_url)
        raise OSError("not sent in tests")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    later = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).isoformat()
    forged = BedrockKey("short-term", account=ACCOUNT, region=region, expires_at=later)  # as an older decoder made it
    bedrock.verify_key(key, forged)
    assert sent == ["https://bedrock.us-east-1.amazonaws.com/foundation-models"]


@pytest.mark.parametrize("live_first", [True, False])
def test_a_reset_bedrock_key_is_remediated_whatever_the_old_value_beside_it(
        live_first: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """ResetServiceSpecificCredential gives a credential a new secret under the same public
    name: the old value (dead) and the new one (live) can both be in a repository. Keyed by
    name, the last one found decided, and a dead old value left the live key alone."""
    import base64

    from scanner import cli
    from tests.test_bedrock import LIST_PARAMS, _Bedrock, _metadata

    name = f"BedrockAPIKey-reset01-at-{ACCOUNT}"

    def absk(secret: bytes) -> str:
        return "ABSK" + base64.b64encode(f"{name}:".encode() + base64.b64encode(secret)).decode()

    live, dead = absk(b"L" * 45), absk(b"D" * 45)
    app = tmp_path / "app"
    app.mkdir()
    (app / "a.env").write_text(f"AWS_BEARER_TOKEN_BEDROCK={live if live_first else dead}\n")
    (app / "b.env").write_text(f"AWS_BEARER_TOKEN_BEDROCK={dead if live_first else live}\n")
    iam = boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    operator = remediate.Operator(_Session(iam), ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/security", None, False)
    monkeypatch.setattr(remediate, "connect", lambda *a, **k: operator)
    endpoint = _Bedrock(live)
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", endpoint.url)
    try:
        with Stubber(iam) as stubber:
            stubber.add_response("list_service_specific_credentials", {
                "ServiceSpecificCredentials": [_metadata("ACCAZ2QSECRETLEAKED0002", "alice", service_user=name)],
                "IsTruncated": False}, LIST_PARAMS)
            stubber.add_response("update_service_specific_credential", {}, {
                "UserName": "alice", "ServiceSpecificCredentialId": "ACCAZ2QSECRETLEAKED0002", "Status": "Inactive"})
            code = cli.main(["scan", "--no-progress", str(app), "--remediate", "deactivate", "--apply",
                             "--audit-log", str(tmp_path / "audit.jsonl")])
            err = capsys.readouterr().err
            stubber.assert_no_pending_responses()
    finally:
        endpoint.close()
    assert code == 1, err
    assert "ACCAZ2QSECRETLEAKED0002: deactivate: ok" in err
    assert live not in err and dead not in err


def test_bedrock_call_interrupted_in_flight_leaves_intent_and_interrupted(tmp_path: Path) -> None:
    iam = boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    operator = remediate.Operator(_Session(iam), ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/security", None, False)

    def interrupt(**_: Any) -> None:
        raise KeyboardInterrupt  # as SIGINT (or keysweep's SIGTERM handler) would, mid-call

    iam.meta.events.register("before-send.iam.UpdateServiceSpecificCredential", interrupt)
    audit = AuditLog(tmp_path / "audit.jsonl")
    with pytest.raises(KeyboardInterrupt):
        bedrock.apply([_bedrock_plan()], operator, audit, dry_run=False)
    logged = [json.loads(line) for line in audit.path.read_text().splitlines()]
    assert [(e["phase"], e["action"], e.get("result")) for e in logged] == [
        ("intent", "deactivate", None), ("result", "deactivate", "interrupted")]


# --- severity and --fail-on when AWS cannot answer -------------------------------------------------


def test_an_aws_outage_during_verify_does_not_lower_severity_below_offline(tmp_path: Path) -> None:
    """A pair found together is 'high' offline. With --verify during throttling or an outage
    (verification 'unknown') it became 'medium', so `--fail-on high` passed a CI gate that
    fails without --verify. A Bedrock key not shown dead is 'high' (README), it too was 'medium'."""
    import os

    keys = KeySet.generate()
    (tmp_path / "a.env").write_text(f"AWS_ACCESS_KEY_ID={keys.key_id}\nAWS_SECRET_ACCESS_KEY={keys.secret}\n"
                                    f"AWS_BEARER_TOKEN_BEDROCK={bedrock_long_term_key(ACCOUNT)}\n")
    throttled = _sts_error("Throttling", "Rate exceeded")
    with _answering(400, throttled) as url:
        env = {"AWS_ENDPOINT_URL": url, "AWS_ENDPOINT_URL_BEDROCK": url, "AWS_ACCESS_KEY_ID": "x",
               "AWS_SECRET_ACCESS_KEY": "y", "AWS_EC2_METADATA_DISABLED": "true", "AWS_MAX_ATTEMPTS": "1",
               "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
        offline = run_keysweep("scan", "--no-progress", "--fail-on", "high", "--format", "json", tmp_path,
                               env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")})
        verified = run_keysweep("scan", "--no-progress", "--verify", "--fail-on", "high", "--format", "json", tmp_path,
                                env=env)
    assert offline.returncode == 1, offline.stderr
    assert verified.returncode == 1, verified.stderr
    found = verified.json()["findings"]
    assert {f["verification"]["status"] for f in found} == {"unknown"}
    assert {f["severity"] for f in found} == {"high"}


def test_a_lookup_answered_with_garbage_fails_that_key(tmp_path: Path) -> None:
    from botocore.config import Config

    with _answering(200, b"<html>not iam</html") as url:
        iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x",
                           aws_secret_access_key="x", config=Config(retries={"max_attempts": 1}))
        operator = remediate.Operator(_Session(iam), ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/security", None, False)
        [plan] = remediate.plan([remediate.Target("AKIAI" + "Q" * 15)], "delete", operator)
    assert plan.actions == () and plan.failure is not None and "GetAccessKeyLastUsed" in plan.failure
