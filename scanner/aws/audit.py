"""The audit log: one JSON line per remediation step, appended, never rewritten."""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scanner import __version__
from scanner.errors import UsageError
from scanner.reporters.text import escape_json


def default_audit_log() -> Path:
    """$XDG_STATE_HOME/keysweep/audit.jsonl (~/.local/state/...): outside any repository, so
    the key IDs it names are never committed, nor found again by the next scan."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "keysweep" / "audit.jsonl"


@dataclass(frozen=True)
class AuditLog:
    path: Path

    def check_writable(self) -> None:
        """Fail now, before any change, if the log cannot be written."""
        self._write(b"", sync=False)

    def append(self, *, sync: bool = False, **entry: Any) -> None:
        """One JSON line. ``sync``: on disk before returning (an intent line must survive
        the process being killed during the call it announces)."""
        record = {
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "tool": f"keysweep {__version__}",
            **entry,
        }
        line = escape_json(json.dumps(record, ensure_ascii=False))  # names from AWS or a repository: safe to cat
        self._write((line + "\n").encode("utf-8"), sync=sync)

    def _write(self, line: bytes, *, sync: bool) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # O_APPEND: concurrent runs never interleave within a line.
            # O_NONBLOCK for the open only: a FIFO nobody reads fails at once (ENXIO) instead of
            # hanging the run before its first change; writes then block as usual.
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK, 0o600)
            try:
                os.set_blocking(fd, True)
                if line:
                    os.write(fd, line)
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise AuditLogError(f"cannot write the audit log {self.path}: {exc.strerror or exc}; nothing was changed "
                                "after the last line it holds") from None


class AuditLogError(UsageError):
    """The audit log cannot be written: no IAM change is made without its record."""
