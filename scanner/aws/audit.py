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

def default_audit_log() -> Path:
    """$XDG_STATE_HOME/keysweep/audit.jsonl (~/.local/state/...): outside any repository, so
    the key IDs it names are never committed, nor found again by the next scan."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "keysweep" / "audit.jsonl"


@dataclass(frozen=True)
class AuditLog:
    path: Path

    def append(self, **entry: Any) -> None:
        record = {
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "tool": f"keysweep {__version__}",
            **entry,
        }
        line = json.dumps(record, ensure_ascii=False) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # O_APPEND: concurrent runs never interleave within a line.
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as handle:
                handle.write(line)
        except OSError as exc:
            raise UsageError(f"cannot write the audit log {self.path}: {exc.strerror or exc}") from None
