"""Real git repositories for tests, with a fixed author and fixed dates."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

AUTHOR = ("Ada Tester", "ada@example.com")
BASE_EPOCH = 1_700_000_000


class GitRepo:
    def __init__(self, path: Path, *, init: bool = True, bare: bool = False, object_format: str = "sha1") -> None:
        self.path = path
        self.ticks = 0
        if init:
            path.mkdir(parents=True, exist_ok=True)
            self.git("init", "-q", "-b", "main", f"--object-format={object_format}", *(["--bare"] if bare else []))
            self.git("config", "user.name", AUTHOR[0])
            self.git("config", "user.email", AUTHOR[1])
            self.git("config", "commit.gpgsign", "false")

    def env(self) -> dict[str, str]:
        date = f"{BASE_EPOCH + self.ticks * 3600} +0000"
        return {
            **os.environ,
            "GIT_AUTHOR_NAME": AUTHOR[0], "GIT_AUTHOR_EMAIL": AUTHOR[1], "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_NAME": AUTHOR[0], "GIT_COMMITTER_EMAIL": AUTHOR[1], "GIT_COMMITTER_DATE": date,
            "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(self.path),
        }

    def git(self, *args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=self.path, env=self.env(), capture_output=True, text=True)
        if proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout.strip()

    def write(self, name: str, text: str | bytes) -> Path:
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        return path

    def commit(self, message: str, files: dict[str, str | bytes | None] | None = None) -> str:
        """Write (or with None, delete) files, stage everything, commit; returns the sha."""
        for name, text in (files or {}).items():
            if text is None:
                self.git("rm", "-q", name)
            else:
                self.write(name, text)
                self.git("add", name)
        self.ticks += 1
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")
