"""Files on disk through the real command: exit codes, reports, redaction, bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import run_keysweep
from tests.keygen import KeySet


def plant(root: Path, keys: KeySet, name: str = "config/prod.env") -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# production\nAWS_ACCESS_KEY_ID={keys.key_id}\nAWS_SECRET_ACCESS_KEY={keys.secret}\n")
    return path


def test_clean_folder_exits_0(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("print('hello')\n")
    result = run_keysweep("scan", "--no-history", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no secrets found" in result.stdout


def test_findings_exit_1_and_text_is_redacted(tmp_path: Path, keys: KeySet) -> None:
    plant(tmp_path, keys)
    result = run_keysweep("scan", "--no-history", tmp_path)
    assert result.returncode == 1
    assert "config/prod.env:2:19" in result.stdout and "config/prod.env:3:23" in result.stdout
    assert keys.secret not in result.stdout + result.stderr
    assert keys.key_id not in result.stdout + result.stderr
    assert keys.key_id[:8] in result.stdout
    assert "\033[" not in result.stdout


def test_default_path_is_current_folder_and_python_m_works(tmp_path: Path, keys: KeySet) -> None:
    plant(tmp_path, keys)
    result = run_keysweep("scan", "--no-history", cwd=tmp_path)
    assert result.returncode == 1 and "config/prod.env" in result.stdout


JSON_FIELDS = {
    "rule", "description", "kind", "secret", "redacted", "fingerprint", "path", "line", "column", "source",
    "commit", "blob", "reachable", "decoded", "account_id", "canary", "pair", "session_token", "occurrences",
    "verification", "severity", "exposure", "access", "bedrock", "in_head", "refs", "refs_total",
}


def test_json_contract(tmp_path: Path) -> None:
    keys = KeySet.generate(account="123456789012")
    plant(tmp_path, keys)
    result = run_keysweep("scan", "--no-history", "--format", "json", tmp_path)
    assert result.returncode == 1
    document = result.json()
    assert document["version"] == 1 and document["tool"]["name"] == "keysweep"
    findings = document["findings"]
    assert len(findings) == 2
    for finding in findings:
        assert set(finding) == JSON_FIELDS
        assert finding["path"] == "config/prod.env" and finding["commit"] is None and finding["source"] == "file"
        assert finding["account_id"] == "123456789012" and finding["canary"] is False
        assert finding["severity"] == "high"  # a pair, offline
        assert finding["exposure"]["pushed"] == "unknown"  # a folder, not a repository
        assert finding["access"] is None and finding["bedrock"] is None
    key, secret = sorted(findings, key=lambda f: f["line"])
    assert (key["rule"], key["line"], key["column"]) == ("aws-access-key-id", 2, 19)
    assert (secret["rule"], secret["line"], secret["column"]) == ("aws-secret-access-key", 3, 23)
    assert key["pair"] == secret["fingerprint"] and secret["pair"] == key["fingerprint"]
    assert secret["secret"] == "********" and key["secret"] == keys.key_id[:8] + "…"
    assert keys.secret not in result.stdout
    summary = document["summary"]
    assert summary["findings"] == 2 and summary["files_scanned"] == 1
    assert summary["by_rule"] == {"aws-access-key-id": 1, "aws-secret-access-key": 1}


def test_fingerprint_is_stable_across_runs_and_line_moves(tmp_path: Path, keys: KeySet) -> None:
    path = plant(tmp_path, keys)
    first = run_keysweep("scan", "--no-history", "--format", "json", tmp_path).json()
    path.write_text("\n\n\n# moved down\n" + path.read_text())
    second = run_keysweep("scan", "--no-history", "--format", "json", tmp_path).json()
    prints = lambda doc: sorted(f["fingerprint"] for f in doc["findings"])  # noqa: E731
    assert prints(first) == prints(second)
    assert [f["line"] for f in second["findings"]] != [f["line"] for f in first["findings"]]


def test_show_secrets_and_jsonl_and_output_file(tmp_path: Path, keys: KeySet) -> None:
    plant(tmp_path / "repo", keys)
    out = tmp_path / "report.jsonl"
    result = run_keysweep("scan", "--no-history", "--format", "jsonl", "--show-secrets", "--output", out, tmp_path / "repo")
    assert result.returncode == 1 and result.stdout == ""
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["secret"] for r in rows} == {keys.key_id, keys.secret}
    assert all(r["redacted"] is False for r in rows)


def test_canary_key_is_flagged(tmp_path: Path) -> None:
    keys = KeySet.generate(account="052310077262")
    plant(tmp_path, keys)
    document = run_keysweep("scan", "--no-history", "--format", "json", tmp_path).json()
    assert all(f["canary"] and f["account_id"] == "052310077262" for f in document["findings"])


def test_missing_path_exits_2(tmp_path: Path) -> None:
    result = run_keysweep("scan", "--no-history", tmp_path / "missing")
    assert result.returncode == 2
    assert "missing: no such file or folder" in result.stderr and "Traceback" not in result.stderr


def test_usage_error_exits_2() -> None:
    assert run_keysweep("scan", "--format", "xml").returncode == 2
    assert run_keysweep("scan", "--staged", "--no-history").returncode == 2


def test_single_file_path(tmp_path: Path, keys: KeySet) -> None:
    path = plant(tmp_path, keys)
    result = run_keysweep("scan", "--no-history", "--format", "json", path)
    assert {f["path"] for f in result.json()["findings"]} == {"prod.env"}


def test_binary_files_skipped_by_content_not_name(tmp_path: Path, keys: KeySet) -> None:
    (tmp_path / "image.txt").write_bytes(b"\x00\x01\x02" + keys.key_id.encode())
    (tmp_path / "data.bin").write_text(f"key={keys.key_id}\n")
    document = run_keysweep("scan", "--no-history", "--format", "json", tmp_path).json()
    assert [f["path"] for f in document["findings"]] == ["data.bin"]


def test_large_file_is_reported_as_skipped(tmp_path: Path, keys: KeySet) -> None:
    (tmp_path / "big.log").write_text("x" * 5000 + f"\nkey={keys.key_id}\n")
    plant(tmp_path, keys)
    result = run_keysweep("scan", "--no-history", "--max-file-size", "4k", "--format", "json", tmp_path)
    document = result.json()
    assert {f["path"] for f in document["findings"]} == {"config/prod.env"}
    [skipped] = document["summary"]["skipped"]
    assert skipped["path"] == "big.log" and "4096-byte limit" in skipped["reason"]
    assert "warning: skipped big.log" in result.stderr
    text = run_keysweep("scan", "--no-history", "--max-file-size", "4k", tmp_path)
    assert "skipped big.log" in text.stdout


def test_git_folder_is_not_scanned(tmp_path: Path, keys: KeySet) -> None:
    plant(tmp_path, keys, ".git/config")
    assert run_keysweep("scan", "--no-history", tmp_path).returncode == 0


def test_symlink_outside_root_is_not_followed(tmp_path: Path, keys: KeySet) -> None:
    outside = plant(tmp_path / "outside", keys)
    root = tmp_path / "root"
    root.mkdir()
    (root / "link.env").symlink_to(outside)
    (root / "linkdir").symlink_to(outside.parent, target_is_directory=True)
    assert run_keysweep("scan", "--no-history", root).returncode == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file regardless of permissions")
def test_unreadable_file_is_reported(tmp_path: Path, keys: KeySet) -> None:
    path = plant(tmp_path, keys)
    path.chmod(0)
    result = run_keysweep("scan", "--no-history", "--format", "json", tmp_path)
    assert "cannot be read" in json.dumps(result.json()["summary"]["skipped"])


def test_many_files_scan_in_parallel_with_same_result(tmp_path: Path) -> None:
    expected = set()
    for i in range(120):
        keys = KeySet.generate()
        plant(tmp_path, keys, f"pkg{i % 7}/mod{i}.env")
        expected |= {keys.key_id, keys.secret}
    parallel = run_keysweep("scan", "--no-history", "--format", "json", "--show-secrets", "--jobs", "2", tmp_path).json()
    serial = run_keysweep("scan", "--no-history", "--format", "json", "--show-secrets", "--jobs", "1", tmp_path).json()
    assert {f["secret"] for f in parallel["findings"]} == expected
    assert parallel["findings"] == serial["findings"]


def test_file_name_that_is_not_utf8(tmp_path: Path, keys: KeySet) -> None:
    (tmp_path / os.fsdecode(b"caf\xe9-\xff.env")).write_text(f"AWS_ACCESS_KEY_ID={keys.key_id}\n")
    text = run_keysweep("scan", "--no-history", tmp_path)
    assert text.returncode == 1 and "caf\\xe9-\\xff.env:1:19" in text.stdout
    document = run_keysweep("scan", "--no-history", "--format", "json", tmp_path).json()
    assert [f["path"] for f in document["findings"]] == ["caf\\xe9-\\xff.env"]
    sarif = run_keysweep("scan", "--no-history", "--format", "sarif", tmp_path).json()
    [result] = sarif["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "caf%5Cxe9-%5Cxff.env"


def test_ascii_only_terminal_does_not_crash(tmp_path: Path, keys: KeySet) -> None:
    plant(tmp_path, keys)
    result = run_keysweep("scan", "--no-history", tmp_path, env={"PYTHONIOENCODING": "ascii"})
    assert result.returncode == 1 and "Traceback" not in result.stderr


def test_output_into_a_folder_fails_cleanly(tmp_path: Path, keys: KeySet) -> None:
    plant(tmp_path / "src", keys)
    (tmp_path / "out").mkdir()
    result = run_keysweep("scan", "--no-history", "--output", tmp_path / "out", tmp_path / "src")
    assert result.returncode == 2 and "cannot write" in result.stderr
    assert list((tmp_path).glob(".out.*.tmp")) == []
