"""-v / -q: diagnostics on standard error through logging, never holding a secret."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_keysweep
from tests.gitrepo import GitRepo
from tests.keygen import KeySet


def test_verbose_says_what_was_scanned_and_never_logs_a_secret(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    keys = KeySet.generate()
    pair = f"AWS_ACCESS_KEY_ID={keys.key_id}\nAWS_SECRET_ACCESS_KEY={keys.secret}\n"
    repo.commit("add env", {".env": pair})
    # A file named after the key, too large to scan: its name reaches a warning.
    repo.write(f"{keys.key_id}.dump", pair * 200)
    repo.commit(f"dump {keys.key_id}", {".env": None})
    for flag in ("-v", "-vv"):
        result = run_keysweep("scan", flag, "--no-progress", "--max-file-size", "2k", "--format", "json", repo.path)
        assert result.returncode == 1, result.stderr
        assert "keysweep: history: " in result.stderr and "keysweep: work tree: " in result.stderr
        assert "finding(s) in" in result.stderr and "keysweep: warning: skipped " in result.stderr
        assert ("keysweep: debug: " in result.stderr) == (flag == "-vv")
        assert keys.key_id not in result.stderr
        assert keys.secret not in result.stderr and f"{keys.key_id[:8]}…" in result.stderr


def test_quiet_silences_warnings_not_results(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text(f"AWS_ACCESS_KEY_ID={KeySet.generate().key_id}\n")
    loud = run_keysweep("scan", "--no-progress", "--jobs", "1000", tmp_path)
    assert loud.returncode == 1 and "keysweep: warning: --jobs 1000" in loud.stderr
    quiet = run_keysweep("scan", "-q", "--no-progress", "--jobs", "1000", tmp_path)
    assert quiet.returncode == 1 and quiet.stderr == "" and "a.env:1:" in quiet.stdout
    assert "keysweep: " not in run_keysweep("scan", "--no-progress", tmp_path).stderr  # default: no info lines
    both = run_keysweep("scan", "-q", "-v", tmp_path)
    assert both.returncode == 2 and "not allowed with" in both.stderr
