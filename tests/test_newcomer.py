"""What a new user tries first: gitignore excludes, standard input, peers' markers, help text."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_keysweep
from tests.keygen import KeySet


def _pair(keys: KeySet) -> str:
    return f"AWS_ACCESS_KEY_ID={keys.key_id}\nAWS_SECRET_ACCESS_KEY={keys.secret}\n"


def test_exclude_has_gitignore_semantics(tmp_path: Path) -> None:
    for name in ("a1.env", "b1.env", "c1.env", "keep.env", "drop.env"):
        (tmp_path / name).write_text(_pair(KeySet.generate()))
    result = run_keysweep("scan", "--no-history", "--format", "json", "--exclude", "[ab]1.env",
                          "--exclude", "*.env", "--exclude", "!keep.env", tmp_path)
    assert result.returncode == 1, result.stderr
    assert {f["path"] for f in result.json()["findings"]} == {"keep.env"}


def test_config_exclude_has_gitignore_semantics(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a1.env").write_text(_pair(KeySet.generate()))
    (tmp_path / "x" / "c1.env").write_text(_pair(KeySet.generate()))
    (tmp_path / ".keysweep.yaml").write_text("exclude:\n  - '[ab]1.env'\n")
    result = run_keysweep("scan", "--no-history", "--format", "json", tmp_path)
    assert {f["path"] for f in result.json()["findings"]} == {"x/c1.env"}


def test_empty_configuration_file_is_an_empty_configuration(tmp_path: Path) -> None:
    (tmp_path / ".keysweep.yaml").write_text("")
    (tmp_path / "app.py").write_text("print('hello')\n")
    result = run_keysweep("scan", "--no-history", tmp_path)
    assert result.returncode == 0, result.stderr
