"""Remediation gating when a key's places disagree: one found secret is wrong, another one's
check failed (throttled). The key is unconfirmed, never cleared as not compromised."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import re

import boto3
import pytest

from tests.conftest import run_keysweep
from tests.gitrepo import GitRepo
from tests.keygen import KeySet
from tests.test_trust_remediation import authentication, env_for, make_operator, status_of

THROTTLED = (b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
             b'<Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>1</RequestId></ErrorResponse>')


class Proxy:
    """Forwards to moto, except that each key's second and later GetCallerIdentity is throttled."""

    def __init__(self, upstream: str) -> None:
        self.identity_calls: dict[str, int] = {}
        lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                signer = re.search(r"Credential=([A-Z0-9]+)/", self.headers.get("Authorization", ""))
                if b"Action=GetCallerIdentity" in body and signer:
                    with lock:
                        seen = proxy.identity_calls[signer.group(1)] = proxy.identity_calls.get(signer.group(1), 0) + 1
                    if seen > 1:
                        self._reply(400, THROTTLED, {"Content-Type": "text/xml"})
                        return
                headers = {k: v for k, v in self.headers.items() if k.lower() != "content-length"}
                request = urllib.request.Request(upstream + self.path, data=body, headers=headers, method="POST")
                try:
                    with urllib.request.urlopen(request) as response:
                        status, payload, reply = response.status, response.read(), dict(response.headers)
                except urllib.error.HTTPError as exc:
                    status, payload, reply = exc.code, exc.read(), dict(exc.headers)
                self._reply(status, payload, {k: v for k, v in reply.items() if k.lower() == "content-type"})

            def _reply(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def proxy(moto_url: str) -> Iterator[Proxy]:  # noqa: F811
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).read()
    running = Proxy(moto_url)
    try:
        yield running
    finally:
        authentication(moto_url, False)
        running.server.shutdown()
        running.server.server_close()


def test_a_wrong_secret_does_not_clear_a_key_whose_other_check_failed(moto_url: str, proxy: Proxy,  # noqa: F811
                                                                       tmp_path: Path) -> None:
    iam = boto3.client("iam", endpoint_url=moto_url, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    operator = make_operator(iam)
    iam.create_user(UserName="deploy")
    key = iam.create_access_key(UserName="deploy")["AccessKey"]["AccessKeyId"]
    repo = GitRepo(tmp_path / "repo")
    repo.commit("config", {
        name: f"AWS_ACCESS_KEY_ID={key}\nAWS_SECRET_ACCESS_KEY={KeySet.generate().secret}\n"
        for name in ("a.env", "b.env")
    })
    env = {**env_for(proxy, operator, tmp_path)}  # type: ignore[arg-type]
    authentication(moto_url, True)
    result = run_keysweep("scan", repo.path, "--remediate", "delete", "--apply", "--format", "json",
                          "--audit-log", tmp_path / "audit.jsonl", env=env)
    assert result.returncode == 1, result.stderr
    assert proxy.identity_calls.get(key, 0) >= 2  # one secret refused by AWS, the other throttled
    outcomes = [o for o in result.json()["summary"]["remediation"] if o["key_id"] == key[:8] + "…"]
    assert [o["result"] for o in outcomes] == ["unconfirmed"], result.stderr
    assert "Throttling" in outcomes[0]["detail"]
    assert "does not compromise" not in result.stderr
    authentication(moto_url, False)
    assert status_of(iam, "deploy", key) == "Active"
