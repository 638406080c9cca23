"""Headless Chromium for the report tests: --dump-dom, screenshots, and the DOM with scripting off.

--dump-dom prints nothing when scripts are disabled (it serializes the page with a script), so
the no-JavaScript DOM is read over the DevTools protocol on a pipe (fds 3 and 4, NUL-separated
JSON): scripting off for the page, load it, ask the browser (not the page) for its HTML.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed; .ci/run installs it (apt-get install chromium)")
    pytest.skip("chromium is not installed (apt-get install chromium); CI installs it and runs this test")


def browse(page: Path, *args: str, timeout: float = 60) -> str:
    """Run the browser once on ``page`` with extra flags; its standard output."""
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
                              capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


class _Pipe:
    def __init__(self, write: int, read: int) -> None:
        self.out = os.fdopen(write, "wb")
        self.inp = os.fdopen(read, "rb")
        self.buffer = b""
        self.counter = 0

    def _message(self) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            chunk = self.inp.read1(65536)
            if not chunk:
                raise AssertionError("the browser closed the DevTools pipe")
            self.buffer += chunk
        message, _, self.buffer = self.buffer.partition(b"\0")
        result: dict[str, Any] = json.loads(message)
        return result

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             wait_event: str | None = None) -> dict[str, Any]:
        self.counter += 1
        ident = self.counter
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.out.write(json.dumps(message).encode() + b"\0")
        self.out.flush()
        result: dict[str, Any] | None = None
        seen = wait_event is None
        while result is None or not seen:
            reply = self._message()
            if reply.get("id") == ident:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                result = reply["result"]
            elif wait_event is not None and reply.get("method") == wait_event:
                seen = True
        return result

    def close(self) -> None:
        for stream in (self.out, self.inp):
            try:
                stream.close()
            except OSError:
                pass


def dom_without_javascript(page: Path, timeout: float = 60) -> str:
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()

    def wire() -> None:
        # dup first: a pipe end may already sit on fd 3 or 4; dup2's copies are inheritable.
        read_end, write_end = os.dup(to_child_r), os.dup(from_child_w)
        os.dup2(read_end, 3)
        os.dup2(write_end, 4)

    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.Popen(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            preexec_fn=wire, pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        pipe = _Pipe(to_child_w, from_child_r)
        try:
            target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            pipe.call("Emulation.setScriptExecutionDisabled", {"value": True}, session)
            pipe.call("Page.enable", {}, session)
            pipe.call("Page.navigate", {"url": page.as_uri()}, session, wait_event="Page.loadEventFired")
            root = pipe.call("DOM.getDocument", {"depth": 0}, session)["root"]["nodeId"]
            html: str = pipe.call("DOM.getOuterHTML", {"nodeId": root}, session)["outerHTML"]
            try:
                pipe.call("Browser.close")
            except AssertionError:
                pass
            return html
        finally:
            pipe.close()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
