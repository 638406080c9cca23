from __future__ import annotations

import contextlib

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.keygen import KeySet

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def keys() -> KeySet:
    return KeySet.generate()


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_keysweep(*args: str | os.PathLike[str], cwd: Path | None = None, env: dict[str, str] | None = None,
                 timeout: float = 120) -> CliResult:
    """The real command, in a subprocess, as a user runs it."""
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "scanner", *map(str, args)], cwd=cwd, env=full_env,
        capture_output=True, text=True, timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def keysweep() -> Callable[..., CliResult]:
    return run_keysweep


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One PRE_COMMIT_HOME for the whole run: pre-commit pip-installs keysweep's hook
    environment once per revision, and every test that runs pre-commit shares it."""
    return tmp_path_factory.mktemp("pre-commit-home")


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 (a free port); its URL, for AWS_ENDPOINT_URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A moto server, one per test module, for the real CLI to reach through AWS_ENDPOINT_URL."""
    with moto_server() as url:
        yield url
