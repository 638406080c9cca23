"""Headless Chromium for the report tests: --dump-dom, screenshots, and the DOM with scripting off.

--dump-dom prints nothing when scripts are disabled (it serializes the page with a script), so
the no-JavaScript DOM is read over the DevTools protocol on a pipe (fds 3 and 4, NUL-separated
JSON): scripting off for the page, load it, ask the browser (not the page) for its HTML.
"""

from __future__ import annotations

import json
import os
import select
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
        self.inp = os.fdopen(read, "rb", buffering=0)  # unbuffered: select() sees every byte not yet read
        self.buffer = b""
        self.counter = 0

    def _message(self, timeout: float = 60) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            if not select.select([self.inp], [], [], timeout)[0]:
                raise AssertionError(f"no word from the browser in {timeout} s")
            chunk = self.inp.read(65536)
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


class Session:
    """One headless Chromium driven over the DevTools pipe, with one page (a 1280x900 viewport)."""

    def __init__(self, script: bool = True, timeout: float = 60) -> None:
        self.timeout = timeout
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()

        def wire() -> None:
            # dup first: a pipe end may already sit on fd 3 or 4; dup2's copies are inheritable.
            read_end, write_end = os.dup(to_child_r), os.dup(from_child_w)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.profile = tempfile.TemporaryDirectory()
        self.proc = subprocess.Popen(
            [chromium(), *FLAGS, f"--user-data-dir={self.profile.name}", "--remote-debugging-pipe", "about:blank"],
            preexec_fn=wire, pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self.pipe = _Pipe(to_child_w, from_child_r)
        try:
            target = self.pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            self.session = self.pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            if not script:
                self.call("Emulation.setScriptExecutionDisabled", {"value": True})
            self.call("Page.enable")
            self.call("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 900, "deviceScaleFactor": 1,
                                                             "mobile": False})
        except BaseException:
            self.close()
            raise

    def call(self, method: str, params: dict[str, Any] | None = None, wait_event: str | None = None) -> dict[str, Any]:
        return self.pipe.call(method, params, self.session, wait_event)

    def open(self, page: Path) -> None:
        self.call("Page.navigate", {"url": page.as_uri()}, wait_event="Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited), run by DevTools: it
        works with the page's scripting off and is not subject to the page's CSP."""
        reply = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True})
        if "exceptionDetails" in reply:
            raise AssertionError(f"{expression[:80]}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def html(self) -> str:
        root = self.call("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        html: str = self.call("DOM.getOuterHTML", {"nodeId": root})["outerHTML"]
        return html

    def close(self) -> None:
        try:
            self.pipe.call("Browser.close")
        except (AssertionError, OSError, ValueError):
            pass
        self.pipe.close()
        try:
            self.proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.profile.cleanup()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def dom_without_javascript(page: Path, timeout: float = 60) -> str:
    with Session(script=False, timeout=timeout) as browser:
        browser.open(page)
        return browser.html()
