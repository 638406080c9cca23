"""Issue "Trust", items 1-3, end to end: the real keysweep command against a moto server on
127.0.0.1, seen through a recording proxy that logs which key signed which call.

- Remediation acts only on keys whose found secret signs (proven live).
- --allow-account is decided before any network call.
- The audit log is written ahead: no change without its record, an intent line before each
  mutating call (so an interrupted run says which call may have landed).
- Repository text (commit subjects, paths) never carries a found secret into any output.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import run_keysweep
from tests.gitrepo import GitRepo
from tests.keygen import KeySet

ACCOUNT = "123456789012"


@dataclass
class Call:
    signer: str  # the access key ID in the request's SigV4 credential scope
    action: str
    params: dict[str, str]


@dataclass
class Recorder:
    upstream: str
    calls: list[Call] = field(default_factory=list)
    delay: dict[str, float] = field(default_factory=dict)  # action -> seconds to hold it
    arrived: threading.Event = field(default_factory=threading.Event)
    url: str = ""


def _handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            params = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()}
            signer = re.search(r"Credential=([A-Z0-9]+)/", self.headers.get("Authorization", ""))
            call = Call(signer.group(1) if signer else "", params.get("Action", ""), params)
            recorder.calls.append(call)
            if call.action in recorder.delay:
                recorder.arrived.set()
                time.sleep(recorder.delay[call.action])
            headers = {k: v for k, v in self.headers.items() if k.lower() != "content-length"}
            request = urllib.request.Request(recorder.upstream + self.path, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request) as response:
                    status, payload, reply_headers = response.status, response.read(), response.headers
            except urllib.error.HTTPError as exc:
                status, payload, reply_headers = exc.code, exc.read(), exc.headers
            self.send_response(status)
            for key, value in reply_headers.items():
                if key.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


@pytest.fixture
def recorder(moto_url: str) -> Iterator[Recorder]:
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).read()
    rec = Recorder(moto_url)
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec))
    rec.url = f"http://127.0.0.1:{proxy.server_address[1]}"
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        proxy.shutdown()
        proxy.server_close()


@pytest.fixture
def iam(moto_url: str, recorder: Recorder) -> Iterator[Any]:
    client = boto3.client("iam", endpoint_url=moto_url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    yield client


def authentication(moto_url: str, on: bool) -> None:
    """moto checks signatures (an unknown key or a wrong secret is refused) while on."""
    request = urllib.request.Request(f"{moto_url}/moto-api/reset-auth", data=(b"0" if on else b"inf"), method="POST",
                                      headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request).read()


@pytest.fixture
def signed(moto_url: str, iam: Any) -> Iterator[None]:
    yield None
    authentication(moto_url, False)


def env_for(recorder: Recorder, operator: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": recorder.url,
        "AWS_ACCESS_KEY_ID": operator["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": operator["SecretAccessKey"],
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true",
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }


def status_of(iam: Any, user: str, key_id: str) -> str | None:
    keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    return next((k["Status"] for k in keys if k["AccessKeyId"] == key_id), None)


def mutations(recorder: Recorder) -> list[tuple[str, str]]:
    return [(c.action, c.params.get("AccessKeyId", "")) for c in recorder.calls
            if c.action in ("UpdateAccessKey", "DeleteAccessKey", "AttachUserPolicy")]


def make_operator(iam: Any) -> dict[str, str]:
    iam.create_user(UserName="security")
    # With authentication on, moto enforces IAM policies too: the operator may manage keys.
    iam.put_user_policy(UserName="security", PolicyName="key-admin", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["iam:*", "sts:GetCallerIdentity"], "Resource": "*"}],
    }))
    return dict(iam.create_access_key(UserName="security")["AccessKey"])


def test_only_keys_whose_secret_signs_are_remediated(iam: Any, recorder: Recorder, moto_url: str, signed: None,
                                                     tmp_path: Path) -> None:
    operator = make_operator(iam)
    for user in ("deploy", "web", "docs"):
        iam.create_user(UserName=user)
    live = iam.create_access_key(UserName="deploy")["AccessKey"]
    wrong = iam.create_access_key(UserName="web")["AccessKey"]
    alone = iam.create_access_key(UserName="docs")["AccessKey"]
    not_its_secret = KeySet.generate().secret
    repo = GitRepo(tmp_path / "repo")
    repo.commit("config", {
        "deploy.env": f"AWS_ACCESS_KEY_ID={live['AccessKeyId']}\nAWS_SECRET_ACCESS_KEY={live['SecretAccessKey']}\n",
        "web.env": f"AWS_ACCESS_KEY_ID={wrong['AccessKeyId']}\nAWS_SECRET_ACCESS_KEY={not_its_secret}\n",
        "README.md": f"The docs user's key is {alone['AccessKeyId']}; ask for the secret.\n",
    })
    env = env_for(recorder, operator, tmp_path)
    authentication(moto_url, True)
    result = run_keysweep("scan", repo.path, "--remediate", "delete", "--apply", "--format", "json",
                          "--audit-log", tmp_path / "audit.jsonl", env=env)
    authentication(moto_url, False)  # this test's own IAM client signs with a made-up key
    assert result.returncode == 1, result.stderr
    assert status_of(iam, "deploy", live["AccessKeyId"]) is None, result.stderr + str(recorder.calls)
    assert status_of(iam, "web", wrong["AccessKeyId"]) == "Active"
    assert status_of(iam, "docs", alone["AccessKeyId"]) == "Active"
    # The proxy saw changes to the live key only.
    assert {key for _, key in mutations(recorder)} == {live["AccessKeyId"]}
    # The wrong pair and the lone ID signed nothing but the proof attempt.
    assert {c.action for c in recorder.calls if c.signer == wrong["AccessKeyId"]} == {"GetCallerIdentity"}
    assert not [c for c in recorder.calls if c.signer == alone["AccessKeyId"]]
    outcomes = result.json()["summary"]["remediation"]
    assert all(o["key_id"].endswith("…") and len(o["key_id"]) == 9 for o in outcomes)  # redacted
    assert sorted(o["result"] for o in outcomes if o["action"] == "none") == ["not-compromised", "unconfirmed"]
    assert [(o["action"], o["result"]) for o in outcomes if o["action"] != "none"] == [("deactivate", "ok"), ("delete", "ok")]
    for key in (live, wrong, alone):
        assert key["AccessKeyId"] not in result.stdout + result.stderr  # redacted everywhere
    assert "does not sign" in result.stderr and "keysweep revoke" in result.stderr

    # --include-unconfirmed takes the lone key ID too, never the one whose secret is wrong.
    authentication(moto_url, True)
    opted = run_keysweep("scan", repo.path, "--remediate", "deactivate", "--include-unconfirmed", "--apply",
                         "--audit-log", tmp_path / "audit.jsonl", env=env)
    authentication(moto_url, False)
    assert opted.returncode == 1, opted.stderr
    assert status_of(iam, "docs", alone["AccessKeyId"]) == "Inactive"
    assert status_of(iam, "web", wrong["AccessKeyId"]) == "Active"


def test_allow_account_is_decided_before_any_call(iam: Any, recorder: Recorder, tmp_path: Path) -> None:
    operator = make_operator(iam)
    foreign = KeySet.generate(account="210987654321")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "x.env").write_text(f"AWS_ACCESS_KEY_ID={foreign.key_id}\nAWS_SECRET_ACCESS_KEY={foreign.secret}\n")
    env = env_for(recorder, operator, tmp_path)
    for extra in ([], ["--use-leaked-key"]):
        result = run_keysweep("scan", "--no-history", tmp_path / "src", "--remediate", "delete", "--apply",
                              "--allow-account", ACCOUNT, *extra, "--audit-log", tmp_path / "audit.jsonl", env=env)
        assert result.returncode == 1, result.stderr
        assert "not in --allow-account" in result.stderr
    assert not [c for c in recorder.calls if c.signer == foreign.key_id]


def test_unwritable_audit_log_changes_nothing(iam: Any, recorder: Recorder, tmp_path: Path) -> None:
    operator = make_operator(iam)
    iam.create_user(UserName="deploy")
    live = iam.create_access_key(UserName="deploy")["AccessKey"]
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "x.env").write_text(
        f"AWS_ACCESS_KEY_ID={live['AccessKeyId']}\nAWS_SECRET_ACCESS_KEY={live['SecretAccessKey']}\n")
    (tmp_path / "a-file").write_text("not a folder\n")
    result = run_keysweep("scan", "--no-history", tmp_path / "src", "--remediate", "delete", "--apply",
                          "--audit-log", tmp_path / "a-file" / "audit.jsonl", env=env_for(recorder, operator, tmp_path))
    assert result.returncode == 2, result.stderr
    assert "audit log" in result.stderr and "Traceback" not in result.stderr
    assert status_of(iam, "deploy", live["AccessKeyId"]) == "Active"
    assert mutations(recorder) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_interrupted_apply_leaves_an_intent_line(iam: Any, recorder: Recorder, tmp_path: Path, signum: int) -> None:
    operator = make_operator(iam)
    iam.create_user(UserName="deploy")
    live = iam.create_access_key(UserName="deploy")["AccessKey"]
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "x.env").write_text(
        f"AWS_ACCESS_KEY_ID={live['AccessKeyId']}\nAWS_SECRET_ACCESS_KEY={live['SecretAccessKey']}\n")
    recorder.delay["UpdateAccessKey"] = 3.0
    audit = tmp_path / "audit.jsonl"
    env = {**os.environ, **env_for(recorder, operator, tmp_path), "NO_COLOR": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "scanner", "scan", "--no-history", str(tmp_path / "src"),
                             "--remediate", "delete", "--apply", "--audit-log", str(audit)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert recorder.arrived.wait(60), "the deactivation never reached AWS"
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, stderr
    entries = [json.loads(line) for line in audit.read_text().splitlines()]
    intents = [e for e in entries if e["phase"] == "intent"]
    assert [(e["action"], e["key_id"]) for e in intents] == [("deactivate", live["AccessKeyId"])]
    results = [e for e in entries if e["phase"] == "result" and e["action"] == "deactivate"]
    assert [e["result"] for e in results] == ["interrupted"]
    # The delete never started: no intent for it, and the proxy never saw it.
    assert ("DeleteAccessKey", live["AccessKeyId"]) not in mutations(recorder)
    assert "Traceback" not in stderr


def test_secret_in_commit_subject_is_redacted_in_every_format(tmp_path: Path) -> None:
    keys = KeySet.generate()
    repo = GitRepo(tmp_path / "repo")
    repo.commit("base", {"a.txt": "a\n"})
    repo.commit(keys.secret, {"creds.env": f"AWS_ACCESS_KEY_ID={keys.key_id}\nAWS_SECRET_ACCESS_KEY={keys.secret}\n"})
    repo.commit(f"note {keys.key_id}", {f"key-{keys.key_id}.txt": "see the env file\n"})
    variants = [["--history-only"], ["--range", "HEAD~2..HEAD"], ["--since", "HEAD~2"]]
    for variant in variants:
        for fmt in ("text", "json", "jsonl", "sarif"):
            result = run_keysweep("scan", *variant, "--format", fmt, repo.path)
            assert result.returncode == 1, (variant, fmt, result.stderr)
            everything = result.stdout + result.stderr
            assert keys.secret not in everything, (variant, fmt)
            assert keys.key_id not in everything, (variant, fmt)
    baseline = tmp_path / "baseline.json"
    created = run_keysweep("baseline", "create", repo.path, "--output", baseline)
    assert created.returncode == 0, created.stderr
    assert keys.secret not in baseline.read_text() and keys.key_id not in baseline.read_text()
