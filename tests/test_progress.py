"""The progress line: objects, bytes, rate and ETA on a terminal; cleared at the end."""

from __future__ import annotations

import io

from scanner.progress import ProgressLine
from tests.conftest import run_keysweep


def test_progress_line_shows_counts_rate_and_eta() -> None:
    out = io.StringIO()
    progress = ProgressLine(out, interval=0.0)
    progress(5, 10, 50 * 2**20, 100 * 2**20)
    text = out.getvalue()
    assert "5/10 objects" in text and "50/100 MiB" in text and "(50%)" in text and "MiB/s" in text and "ETA" in text
    progress.close()
    assert out.getvalue().endswith("\r\033[K")


def test_no_progress_when_stderr_is_not_a_terminal(tmp_path: object) -> None:
    result = run_keysweep("scan", "--no-history", str(tmp_path))
    assert "scanning history" not in result.stderr and "\r" not in result.stderr


def test_help_documents_exit_codes() -> None:
    result = run_keysweep("scan", "--help")
    assert result.returncode == 0
    for line in ("0  nothing found", "1  findings", "2  usage or configuration error", "3  any other failure"):
        assert line in result.stdout
