"""A SHA-256 repository (git init --object-format=sha256): 64-character object ids, and 64
zeros for "no object". Every way keysweep reads git works on it as on SHA-1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanner.engine.rules import load_ruleset
from scanner.sources import history
from scanner.sources.git import ObjectInfo, find_repository, is_null, is_object_id
from scanner.sources.history import PackedObjects
from tests.conftest import run_keysweep
from tests.gitrepo import GitRepo
from tests.keygen import KeySet


def _pair(keys: KeySet) -> str:
    return f"AWS_ACCESS_KEY_ID={keys.key_id}\nAWS_SECRET_ACCESS_KEY={keys.secret}\n"


def test_object_ids_of_both_formats() -> None:
    assert is_null("0" * 40) and is_null("0" * 64) and not is_null("") and not is_null("0" * 39 + "1")
    assert is_object_id("a" * 40) and is_object_id("b" * 64) and not is_object_id("A" * 40)
    assert not is_object_id("a" * 41) and not is_object_id("g" * 40)
    for width in (40, 64):
        objects = [ObjectInfo(f"{i:0{width}x}", kind, i * 7) for i, kind in
                   enumerate(("blob", "commit", "tag", "tree", "blob"))]
        assert PackedObjects.pack(objects).unpack() == objects
    with pytest.raises(ValueError):
        PackedObjects.pack([ObjectInfo("a" * 40, "blob", 1), ObjectInfo("b" * 64, "blob", 1)])


def test_a_sha256_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = GitRepo(tmp_path / "repo", object_format="sha256")
    gone, kept = KeySet.generate(), KeySet.generate()
    added = repo.commit("add", {".env": _pair(gone), "app.env": _pair(kept)})
    assert len(added) == 64
    repo.commit("remove", {".env": None})  # a deletion: its new blob is 64 zeros
    result = run_keysweep("scan", "--no-progress", "--history-only", "--format", "json", repo.path)
    assert result.returncode == 1 and result.stderr == "", result.stderr
    findings = result.json()["findings"]
    assert {(f["path"], f["commit"]["sha"], f["in_head"]) for f in findings} == \
        {(".env", added, False), ("app.env", added, True)}

    # Worker processes get their slices packed: 32-byte ids travel as well as 20-byte ones.
    found = find_repository(repo.path, search_parents=False)
    assert found is not None
    monkeypatch.setattr(history, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(history, "MIN_SLICE_BYTES", 1)
    monkeypatch.setattr(history, "GUIDED_MIN_SHARE", 0.0)
    parallel = history.scan_history(found, load_ruleset(), all_objects=False, max_size=1 << 20, jobs=2)
    assert not parallel.warnings and not parallel.errors
    assert {(f.fingerprint, f.commit.sha if f.commit else "") for f in parallel.findings} == \
        {(f["fingerprint"], f["commit"]["sha"]) for f in findings}

    # The hook: a new file (its old blob is 64 zeros) and an edited one (only the added line).
    fresh = KeySet.generate()
    repo.write("new.env", _pair(fresh))
    repo.write("app.env", _pair(kept) + f"AWS_ACCESS_KEY_ID={fresh.key_id}\n")
    repo.git("add", "new.env", "app.env")
    staged = run_keysweep("scan", "--staged", "--no-progress", "--format", "json", repo.path)
    assert staged.returncode == 1, staged.stderr
    assert sorted((f["path"], f["line"]) for f in staged.json()["findings"]) == \
        [("app.env", 3), ("new.env", 1), ("new.env", 2)]
    head = repo.commit("more")
    # A CI range from a new branch's all-zeros "before".
    ranged = run_keysweep("scan", "--no-progress", "--range", f"{'0' * 64}..{head}", "--format", "json", repo.path)
    assert ranged.returncode == 1, ranged.stderr
    assert {f["path"] for f in json.loads(ranged.stdout)["findings"]} >= {".env", "app.env", "new.env"}
