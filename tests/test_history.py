"""Git history through the real command, on real repositories built here."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from scanner.engine.rules import load_ruleset
from scanner.sources import git, history
from scanner.sources.git import ObjectInfo, find_repository
from tests.conftest import run_keysweep
from tests.gitrepo import AUTHOR, GitRepo
from tests.keygen import KeySet


def env_file(keys: KeySet, header: str = "# settings\n") -> str:
    return f"{header}AWS_ACCESS_KEY_ID={keys.key_id}\nAWS_SECRET_ACCESS_KEY={keys.secret}\n"


def scan(repo: GitRepo | Path, *flags: str) -> list[dict[str, Any]]:
    path = repo.path if isinstance(repo, GitRepo) else repo
    result = run_keysweep("scan", "--format", "json", "--show-secrets", *flags, path)
    assert result.returncode in (0, 1), result.stderr
    findings: list[dict[str, Any]] = result.json()["findings"]
    assert (result.returncode == 1) == bool(findings)
    return findings


def by_secret(findings: list[dict[str, Any]], value: str) -> list[dict[str, Any]]:
    return [f for f in findings if f["secret"] == value]


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    repo = GitRepo(tmp_path / "repo")
    repo.commit("initial", {"README.md": "# project\n"})
    return repo


def test_deleted_file_is_found_with_provenance(repo: GitRepo, keys: KeySet) -> None:
    added = repo.commit("add settings\n\nlonger body", {"config/settings.env": env_file(keys)})
    repo.commit("remove settings", {"config/settings.env": None})
    assert scan(repo, "--no-history") == []
    findings = scan(repo)
    [secret] = by_secret(findings, keys.secret)
    [key] = by_secret(findings, keys.key_id)
    assert secret["source"] == "git-blob" and secret["path"] == "config/settings.env"
    assert (secret["line"], secret["column"]) == (3, 23) and key["line"] == 2
    commit = secret["commit"]
    assert commit["sha"] == added and commit["author"] == AUTHOR[0] and commit["email"] == AUTHOR[1]
    assert commit["summary"] == "add settings" and commit["date"] == "2023-11-15T00:13:20+00:00"
    assert secret["pair"] == key["fingerprint"] and secret["blob"]
    assert secret["occurrences"] == {"commits": 1, "paths": 1}


def test_first_introduction_is_reported_once_across_edits(repo: GitRepo, keys: KeySet) -> None:
    first = repo.commit("add", {"app.env": env_file(keys)})
    for i in range(3):
        repo.commit(f"edit {i}", {"app.env": env_file(keys) + f"EXTRA={i}\n"})
    findings = scan(repo, "--history-only")
    [secret] = by_secret(findings, keys.secret)
    assert secret["commit"]["sha"] == first
    assert secret["occurrences"] == {"commits": 4, "paths": 1}


def test_side_branch_and_tag_only_commit(repo: GitRepo) -> None:
    side_keys, tag_keys = KeySet.generate(), KeySet.generate()
    repo.git("checkout", "-q", "-b", "feature")
    side = repo.commit("feature work", {"feature.env": env_file(side_keys)})
    repo.git("checkout", "-q", "-b", "release")
    tagged = repo.commit("release only", {"release.env": env_file(tag_keys)})
    repo.git("tag", "v1.0")
    repo.git("checkout", "-q", "main")
    repo.git("branch", "-D", "release")
    findings = scan(repo, "--history-only")
    assert by_secret(findings, side_keys.secret)[0]["commit"]["sha"] == side
    assert by_secret(findings, tag_keys.secret)[0]["commit"]["sha"] == tagged


def test_every_stash_entry(repo: GitRepo) -> None:
    older, newer = KeySet.generate(), KeySet.generate()
    repo.write("README.md", "# project\n" + env_file(older))
    repo.git("stash", "push", "-q")
    repo.write("README.md", "# project\n" + env_file(newer))
    repo.git("stash", "push", "-q")
    findings = scan(repo, "--history-only")
    assert by_secret(findings, older.secret) and by_secret(findings, newer.secret)
    assert all(f["path"] == "README.md" for f in findings)


def test_evil_merge(repo: GitRepo, keys: KeySet) -> None:
    repo.git("checkout", "-q", "-b", "topic")
    repo.commit("topic", {"topic.txt": "topic\n"})
    repo.git("checkout", "-q", "main")
    repo.commit("main", {"main.txt": "main\n"})
    repo.git("merge", "-q", "--no-ff", "--no-commit", "topic")
    repo.write("deploy/creds.ini", env_file(keys))
    repo.git("add", "deploy/creds.ini")
    repo.ticks += 1
    repo.git("commit", "-q", "-m", "Merge branch 'topic'")
    merge = repo.git("rev-parse", "HEAD")
    repo.commit("drop creds", {"deploy/creds.ini": None})
    [secret] = by_secret(scan(repo, "--history-only"), keys.secret)
    assert secret["commit"]["sha"] == merge and secret["path"] == "deploy/creds.ini" and secret["line"] == 3


def test_evil_merge_editing_a_file_both_parents_have(repo: GitRepo, keys: KeySet) -> None:
    repo.commit("config", {"config.ini": "[a]\nx = 1\n"})
    repo.git("checkout", "-q", "-b", "topic")
    repo.commit("topic", {"topic.txt": "t\n"})
    repo.git("checkout", "-q", "main")
    repo.commit("main", {"main.txt": "m\n"})
    repo.git("merge", "-q", "--no-ff", "--no-commit", "topic")
    repo.write("config.ini", "[a]\nx = 1\n" + env_file(keys, header=""))
    repo.git("add", "config.ini")
    repo.ticks += 1
    repo.git("commit", "-q", "-m", "merge")
    merge = repo.git("rev-parse", "HEAD")
    [secret] = by_secret(scan(repo, "--history-only"), keys.secret)
    assert secret["commit"]["sha"] == merge and secret["line"] == 4
    # The same merge inside a range is caught too.
    [in_range] = by_secret(scan(repo, "--range", f"{merge}^1..{merge}"), keys.secret)
    assert in_range["commit"]["sha"] == merge


def test_rename_and_same_blob_at_two_paths(repo: GitRepo, keys: KeySet) -> None:
    first = repo.commit("add", {"a/creds.env": env_file(keys), "b/creds.env": env_file(keys)})
    (repo.path / "c").mkdir()
    repo.git("mv", "a/creds.env", "c/moved.env")
    repo.ticks += 1
    repo.git("commit", "-q", "-m", "rename")
    moved = repo.git("rev-parse", "HEAD")
    secrets = by_secret(scan(repo, "--history-only"), keys.secret)
    places = {(f["path"], f["commit"]["sha"]) for f in secrets}
    assert places == {("a/creds.env", first), ("b/creds.env", first), ("c/moved.env", moved)}
    assert all(f["occurrences"]["paths"] == 3 for f in secrets)
    assert len({f["blob"] for f in secrets}) == 1


def test_large_blob_is_skipped_and_reported(repo: GitRepo, keys: KeySet) -> None:
    repo.commit("big", {"dump.sql": "x" * 10_000 + "\n" + env_file(keys)})
    result = run_keysweep("scan", "--history-only", "--max-file-size", "8k", "--format", "json", repo.path)
    document = result.json()
    assert document["findings"] == []
    [skipped] = document["summary"]["skipped"]
    assert skipped["path"] == "dump.sql" and "8192-byte limit" in skipped["reason"]


def test_commit_message_and_annotated_tag_message(repo: GitRepo) -> None:
    in_commit, in_tag = KeySet.generate(), KeySet.generate()
    sha = repo.commit(f"debug deploy\n\nused AWS_SECRET_ACCESS_KEY={in_commit.secret}\nkey {in_commit.key_id}")
    repo.git("tag", "-a", "v2", "-m", f"release\n\naws_access_key_id = {in_tag.key_id}")
    findings = scan(repo, "--history-only")
    [message] = by_secret(findings, in_commit.secret)
    assert message["source"] == "commit-message" and message["path"] is None
    assert message["commit"]["sha"] == sha and message["line"] == 3
    [tag] = by_secret(findings, in_tag.key_id)
    assert tag["source"] == "tag-message" and tag["commit"]["summary"] == "tag v2"
    assert tag["commit"]["author"] == AUTHOR[0]


def test_git_notes_are_scanned(repo: GitRepo, keys: KeySet) -> None:
    repo.git("notes", "add", "-m", f"AWS_ACCESS_KEY_ID={keys.key_id}", "HEAD")
    assert by_secret(scan(repo, "--history-only"), keys.key_id)


def test_unreachable_commit_only_with_all_objects(repo: GitRepo, keys: KeySet) -> None:
    repo.git("checkout", "-q", "-b", "doomed")
    lost = repo.commit("oops", {"oops.env": env_file(keys)})
    repo.git("checkout", "-q", "main")
    repo.git("branch", "-D", "doomed")
    repo.git("reflog", "expire", "--expire-unreachable=now", "--all")
    assert by_secret(scan(repo, "--history-only"), keys.secret) == []
    [secret] = by_secret(scan(repo, "--history-only", "--all-objects"), keys.secret)
    assert secret["commit"]["sha"] == lost and secret["reachable"] is False and secret["path"] == "oops.env"


def test_loose_unreferenced_blob_with_all_objects(repo: GitRepo, keys: KeySet) -> None:
    path = repo.write("loose.txt", env_file(keys))
    blob = repo.git("hash-object", "-w", str(path))
    path.unlink()
    assert by_secret(scan(repo, "--history-only"), keys.secret) == []
    [secret] = by_secret(scan(repo, "--history-only", "--all-objects"), keys.secret)
    assert secret["source"] == "unreachable-blob" and secret["blob"] == blob and secret["path"] is None


def test_staged_vs_unstaged_vs_untracked(repo: GitRepo) -> None:
    staged, unstaged, untracked, old = (KeySet.generate() for _ in range(4))
    repo.commit("tracked", {"tracked.env": "A=1\n", "old.env": env_file(old)})
    repo.write("staged.env", env_file(staged))
    repo.git("add", "staged.env")
    repo.write("tracked.env", env_file(unstaged))
    repo.write("untracked.env", env_file(untracked))
    repo.write("old.env", env_file(old) + "MORE=1\n")
    repo.git("add", "old.env")
    findings = scan(repo, "--staged")
    assert {f["secret"] for f in findings} == {staged.key_id, staged.secret}
    assert all(f["source"] == "staged" and f["path"] == "staged.env" for f in findings)
    assert [f["line"] for f in by_secret(findings, staged.secret)] == [3]


def test_staged_edit_reports_only_added_lines(repo: GitRepo) -> None:
    old, new = KeySet.generate(), KeySet.generate()
    repo.commit("creds", {"creds.ini": f"[old]\naws_access_key_id = {old.key_id}\n"})
    repo.write("creds.ini", f"[old]\naws_access_key_id = {old.key_id}\n[new]\naws_access_key_id = {new.key_id}\n")
    repo.git("add", "creds.ini")
    findings = scan(repo, "--staged")
    assert [(f["secret"], f["line"]) for f in findings] == [(new.key_id, 4)]


def test_staged_in_repository_without_commits(tmp_path: Path, keys: KeySet) -> None:
    repo = GitRepo(tmp_path / "fresh")
    repo.write("first.env", env_file(keys))
    repo.git("add", "first.env")
    assert {f["secret"] for f in scan(repo, "--staged")} == {keys.key_id, keys.secret}


def test_staged_from_a_subfolder(repo: GitRepo, keys: KeySet) -> None:
    repo.write("sub/dir/x.env", env_file(keys))
    repo.git("add", "sub/dir/x.env")
    result = run_keysweep("scan", "--staged", "--format", "json", cwd=repo.path / "sub")
    assert {f["path"] for f in result.json()["findings"]} == {"sub/dir/x.env"}


def test_range_reports_only_secrets_introduced_in_it(repo: GitRepo) -> None:
    old, new = KeySet.generate(), KeySet.generate()
    base = repo.commit("old secret", {"settings.env": env_file(old)})
    repo.commit("touch old file", {"settings.env": env_file(old) + "DEBUG=1\n"})
    added = repo.commit("new secret", {"other.env": env_file(new)})
    findings = scan(repo, "--range", f"{base}..HEAD")
    assert {f["secret"] for f in findings} == {new.key_id, new.secret}
    assert all(f["commit"]["sha"] == added for f in findings)
    since = scan(repo, "--since", base)
    assert {f["fingerprint"] for f in since} == {f["fingerprint"] for f in findings}
    assert scan(repo, "--since", "HEAD") == []


def test_all_objects_does_not_combine_with_narrow_modes(repo: GitRepo) -> None:
    for flags in (["--staged"], ["--since", "HEAD"], ["--no-history"]):
        result = run_keysweep("scan", "--all-objects", *flags, repo.path)
        assert result.returncode == 2 and "--all-objects" in result.stderr, flags


def test_bad_range_exits_2_with_git_message(repo: GitRepo) -> None:
    result = run_keysweep("scan", "--range", "nope..HEAD", repo.path)
    assert result.returncode == 2 and "nope..HEAD" in result.stderr and "Traceback" not in result.stderr


def test_a_range_end_that_is_no_commit_exits_2(repo: GitRepo, keys: KeySet) -> None:
    # rev-list over a tag on a tree lists nothing: the range read as clean (exit 0) while the
    # tree holds a key, and such a start left the whole history in.
    repo.commit("base", {"README.md": "x\n"})
    repo.commit("key", {"app.env": env_file(keys)})
    repo.git("tag", "-a", "-m", "a tree", "treetag", "HEAD^{tree}")
    repo.git("tag", "-a", "-m", "a blob", "blobtag", "HEAD:app.env")
    for revision_range in ("HEAD~1..treetag", "HEAD~1..blobtag", "HEAD~1..HEAD^{tree}", "treetag..HEAD"):
        result = run_keysweep("scan", "--range", revision_range, repo.path)
        assert result.returncode == 2 and "is not a commit" in result.stderr, (revision_range, result.stderr)
    since = run_keysweep("scan", "--since", "treetag", repo.path)
    assert since.returncode == 2 and "is not a commit" in since.stderr
    repo.git("tag", "-a", "-m", "a release", "release", "HEAD")  # a tag on a commit is a commit
    assert run_keysweep("scan", "--range", "HEAD~1..release", repo.path).returncode == 1


def test_history_flags_on_plain_folder_exit_2(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("hello\n")
    for flags in (["--history-only"], ["--staged"], ["--range", "a..b"], ["--all-objects"]):
        result = run_keysweep("scan", *flags, tmp_path)
        assert result.returncode == 2 and "not a git repository" in result.stderr, flags


def test_plain_folder_default_scans_files(tmp_path: Path, keys: KeySet) -> None:
    (tmp_path / "x.env").write_text(env_file(keys))
    assert {f["secret"] for f in scan(tmp_path)} == {keys.key_id, keys.secret}


def test_worktree_and_history_together_report_each_secret_once(repo: GitRepo) -> None:
    committed, local = KeySet.generate(), KeySet.generate()
    repo.commit("add", {"app.env": env_file(committed)})
    repo.write("local.env", env_file(local))
    findings = scan(repo)
    assert len(by_secret(findings, committed.secret)) == 1
    assert by_secret(findings, committed.secret)[0]["commit"] is not None
    [local_finding] = by_secret(findings, local.secret)
    assert local_finding["source"] == "file" and local_finding["commit"] is None


def test_shallow_clone_warns_and_scans(repo: GitRepo, keys: KeySet, tmp_path: Path) -> None:
    repo.commit("one", {"a.txt": "1\n"})
    repo.commit("two", {"creds.env": env_file(keys)})
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo.path}", str(clone)], check=True)
    result = run_keysweep("scan", "--history-only", "--format", "json", "--show-secrets", clone)
    assert result.returncode == 1 and "shallow clone" in result.stderr
    assert {f["secret"] for f in result.json()["findings"]} == {keys.key_id, keys.secret}


def test_bare_repository(repo: GitRepo, keys: KeySet, tmp_path: Path) -> None:
    repo.commit("creds", {"creds.env": env_file(keys)})
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(bare)], check=True)
    assert {f["secret"] for f in scan(bare)} == {keys.key_id, keys.secret}


def test_corrupt_object_is_named_and_scan_goes_on(repo: GitRepo, keys: KeySet) -> None:
    repo.commit("creds", {"creds.env": env_file(keys)})
    repo.write("victim.txt", "some content that will be damaged\n")
    repo.git("add", "victim.txt")
    blob = repo.git("rev-parse", ":victim.txt")
    repo.commit("victim")
    loose = repo.path / ".git" / "objects" / blob[:2] / blob[2:]
    loose.chmod(0o644)
    loose.write_bytes(b"\x78\x9c garbage that does not inflate")
    result = run_keysweep("scan", "--history-only", "--format", "json", "--show-secrets", repo.path)
    assert result.returncode == 3, result.stderr  # incomplete: never passes as clean or as findings only
    assert blob in result.stderr and "Traceback" not in result.stderr
    assert {f["secret"] for f in result.json()["findings"]} == {keys.key_id, keys.secret}


def test_missing_blob_is_named(repo: GitRepo, keys: KeySet) -> None:
    repo.commit("gone", {"gone.txt": "this blob will vanish\n"})
    repo.commit("creds", {"creds.env": env_file(keys)})
    blob = repo.git("rev-parse", "HEAD~1:gone.txt")
    (repo.path / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    result = run_keysweep("scan", "--history-only", "--format", "json", "--show-secrets", repo.path)
    assert result.returncode == 1
    assert blob in result.stderr and "gone.txt" in result.stderr


def test_parallel_workers_match_serial(repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = set()
    for i in range(12):
        keys = KeySet.generate()
        expected |= {keys.key_id, keys.secret}
        repo.commit(f"c{i}", {f"dir{i % 3}/f{i}.env": env_file(keys) + "pad\n" * 200})
    monkeypatch.setattr(history, "PARALLEL_MIN_BYTES", 0)
    # Small slices: the two workers take several each from the shared queue.
    monkeypatch.setattr(history, "MIN_SLICE_BYTES", 1)
    monkeypatch.setattr(history, "GUIDED_MIN_SHARE", 0.0)
    made: list[int] = []
    real_slices = history.guided_slices

    def counted(objects: Sequence[ObjectInfo], workers: int) -> list[Sequence[ObjectInfo]]:
        parts = real_slices(objects, workers)
        made.append(len(parts))
        return parts

    monkeypatch.setattr(history, "guided_slices", counted)
    found = find_repository(repo.path, search_parents=False)
    assert found is not None
    ruleset = load_ruleset()
    serial = history.scan_history(found, ruleset, all_objects=False, max_size=10**7, jobs=1)
    parallel = history.scan_history(found, ruleset, all_objects=False, max_size=10**7, jobs=2)
    assert made and made[-1] > 4
    assert {f.secret.reveal() for f in parallel.findings} == expected
    assert [f.fingerprint for f in parallel.findings] == [f.fingerprint for f in serial.findings]
    assert parallel.blobs == serial.blobs and parallel.bytes == serial.bytes


def test_slices_are_contiguous_and_cover_everything() -> None:
    from scanner.sources.git import ObjectInfo

    objects = [ObjectInfo(f"{i:040x}", "blob", size) for i, size in enumerate([5, 1, 1, 1, 10, 2, 2, 3])]
    parts = history._slices(objects, 2)
    assert [o for part in parts for o in part] == objects and len(parts) == 2


def test_guided_slices_shrink_and_cover_everything_in_order() -> None:
    # Under the floor: one slice, one worker.
    few = [ObjectInfo(f"{i:040x}", "blob", (i * 7919) % 1000 + 1) for i in range(500)]
    assert history.guided_slices(few, 2) == [few]
    # With a floor below the total: the first slice is a quarter (half of a worker's share),
    # later ones shrink, none (but the last) under the floor.
    small = [ObjectInfo(f"{i:040x}", "blob", 1 << 20) for i in range(400)]  # 400 MiB
    parts = history.guided_slices(small, 2)
    weights = [sum(o.size for o in part) for part in parts]
    assert [o for part in parts for o in part] == small
    assert weights[0] == 100 << 20
    assert all(a >= b for a, b in zip(weights, weights[1:-1]))
    assert all(w >= history.MIN_SLICE_BYTES for w in weights[:-1])
    assert len(parts) > 4


def test_path_with_spaces_unicode_and_bad_bytes(repo: GitRepo, keys: KeySet) -> None:
    repo.commit("odd name", {"dir with space/naïve ✓.env": env_file(keys)})
    repo.commit("bad bytes", {os.fsdecode(b"latin-\xe9.env"): env_file(KeySet.generate())})
    findings = scan(repo, "--history-only")
    assert {f["path"] for f in findings} == {"dir with space/naïve ✓.env", "latin-\\xe9.env"}


def test_octopus_merge_with_content_of_its_own(repo: GitRepo, keys: KeySet) -> None:
    for name in ("a", "b", "c"):
        repo.git("checkout", "-q", "-b", name, "main")
        repo.commit(name, {f"{name}.txt": f"{name}\n"})
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--no-commit", "a", "b", "c")
    repo.write("octo.env", env_file(keys))
    repo.git("add", "octo.env")
    repo.ticks += 1
    repo.git("commit", "-q", "-m", "octopus")
    octopus = repo.git("rev-parse", "HEAD")
    assert len(repo.git("rev-list", "--parents", "-1", "HEAD").split()) == 4
    [secret] = by_secret(scan(repo, "--history-only"), keys.secret)
    assert secret["commit"]["sha"] == octopus and secret["path"] == "octo.env"


def test_blob_and_tree_reached_only_by_tags(repo: GitRepo) -> None:
    in_blob, in_tree = KeySet.generate(), KeySet.generate()
    blob = repo.git("hash-object", "-w", str(repo.write("loose.env", env_file(in_blob))))
    (repo.path / "loose.env").unlink()
    repo.git("tag", "blob-tag", blob)
    repo.write("sub/deep.env", env_file(in_tree))
    repo.git("add", "sub/deep.env")
    tree = repo.git("write-tree")
    repo.git("rm", "-q", "--cached", "sub/deep.env")
    (repo.path / "sub" / "deep.env").unlink()
    repo.git("tag", "-a", "-m", "a tree", "tree-tag", tree)
    findings = scan(repo, "--history-only")
    assert {f["path"] for f in by_secret(findings, in_blob.secret)} == {"refs/tags/blob-tag"}
    assert {f["path"] for f in by_secret(findings, in_tree.secret)} == {"refs/tags/tree-tag:sub/deep.env"}


def test_partial_clone_names_a_few_missing_blobs_and_counts_the_rest(repo: GitRepo, keys: KeySet, tmp_path: Path) -> None:
    repo.git("config", "uploadpack.allowFilter", "true")
    repo.commit("many", {f"data/f{i}.txt": f"file {i}\n" for i in range(30)})
    repo.commit("creds", {"creds.env": env_file(keys)})
    clone = tmp_path / "partial"
    subprocess.run(["git", "clone", "-q", "--no-checkout", "--filter=blob:none", f"file://{repo.path}", str(clone)], check=True)
    result = run_keysweep("scan", "--history-only", "--format", "json", clone)
    assert result.returncode == 0, result.stderr
    warnings = result.json()["summary"]["warnings"]
    assert len(warnings) == 21 and "more blobs are missing" in warnings[-1]
    assert "Traceback" not in result.stderr


def test_untracked_files_in_a_stash(repo: GitRepo, keys: KeySet) -> None:
    repo.write("scratch.env", env_file(keys))
    repo.git("stash", "push", "-q", "--include-untracked")
    assert not (repo.path / "scratch.env").exists()
    findings = by_secret(scan(repo), keys.secret)
    assert [f["path"] for f in findings] == ["scratch.env"]


def test_renamed_and_modified_keeps_first_introduction(repo: GitRepo, keys: KeySet) -> None:
    first = repo.commit("add", {"old/name.env": env_file(keys)})
    (repo.path / "new").mkdir()
    repo.git("mv", "old/name.env", "new/name.env")
    repo.write("new/name.env", env_file(keys) + "EXTRA=1\n")
    repo.git("add", "new/name.env")
    repo.ticks += 1
    repo.git("commit", "-q", "-m", "move and edit")
    moved = repo.git("rev-parse", "HEAD")
    places = {(f["path"], f["commit"]["sha"]) for f in by_secret(scan(repo, "--history-only"), keys.secret)}
    assert places == {("old/name.env", first), ("new/name.env", moved)}


def test_secret_deleted_by_a_merge_is_still_found(repo: GitRepo, keys: KeySet) -> None:
    added = repo.commit("creds", {"creds.env": env_file(keys)})
    repo.git("checkout", "-q", "-b", "cleanup")
    repo.commit("remove", {"creds.env": None})
    repo.git("checkout", "-q", "main")
    repo.commit("other", {"x.txt": "x\n"})
    repo.git("merge", "-q", "--no-ff", "-m", "merge cleanup", "cleanup")
    assert not (repo.path / "creds.env").exists()
    [secret] = by_secret(scan(repo), keys.secret)
    assert secret["commit"]["sha"] == added


def test_staged_rename_of_an_old_secret_is_not_a_new_secret(repo: GitRepo, keys: KeySet) -> None:
    repo.commit("creds", {"old.env": env_file(keys) + "PADDING=1\n" * 5})
    (repo.path / "moved").mkdir()
    repo.git("mv", "old.env", "moved/new.env")
    assert scan(repo, "--staged") == []
    other = KeySet.generate()
    with open(repo.path / "moved" / "new.env", "a") as handle:
        handle.write(f"AWS_ACCESS_KEY_ID={other.key_id}\n")
    repo.git("add", "moved/new.env")
    assert [(f["secret"], f["path"]) for f in scan(repo, "--staged")] == [(other.key_id, "moved/new.env")]


def test_range_with_a_moved_file_reports_nothing_new(repo: GitRepo, keys: KeySet) -> None:
    base = repo.commit("creds", {"conf/old.env": env_file(keys) + "PADDING=1\n" * 5})
    (repo.path / "etc").mkdir()
    repo.git("mv", "conf/old.env", "etc/app.env")
    repo.ticks += 1
    repo.git("commit", "-q", "-m", "move")
    assert scan(repo, "--range", f"{base}..HEAD") == []
    # The full history still names both places, each with the commit that put it there.
    assert {f["path"] for f in by_secret(scan(repo, "--history-only"), keys.secret)} == {"conf/old.env", "etc/app.env"}


def test_range_reports_a_large_blob_as_skipped(repo: GitRepo, keys: KeySet) -> None:
    base = repo.git("rev-parse", "HEAD")
    repo.commit("dump", {"dump.sql": "x" * 9000 + "\n" + env_file(keys)})
    result = run_keysweep("scan", "--range", f"{base}..HEAD", "--max-file-size", "8k", "--format", "json", repo.path)
    assert result.returncode == 0, result.stderr
    [skipped] = result.json()["summary"]["skipped"]
    assert skipped["path"] == "dump.sql" and "8192-byte limit" in skipped["reason"]


def test_remote_tracking_branch_only(repo: GitRepo, keys: KeySet, tmp_path: Path) -> None:
    repo.git("checkout", "-q", "-b", "feature")
    pushed = repo.commit("feature", {"f.env": env_file(keys)})
    repo.git("checkout", "-q", "main")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo.path), str(clone)], check=True)
    refs = subprocess.run(["git", "-C", str(clone), "for-each-ref", "--format=%(refname)"], capture_output=True, text=True).stdout
    assert "refs/remotes/origin/feature" in refs and "refs/heads/feature" not in refs
    [secret] = by_secret(scan(clone, "--history-only"), keys.secret)
    assert secret["commit"]["sha"] == pushed


def test_hook_sees_the_temporary_index_of_commit_all(repo: GitRepo, keys: KeySet) -> None:
    # `git commit -a` stages into a temporary index (GIT_INDEX_FILE) that only the hook sees.
    import sys

    repo.commit("env", {"app.env": "A=1\n"})
    hook = repo.path / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\nexec {sys.executable} -m scanner scan --staged --no-progress\n")
    hook.chmod(0o755)
    with open(repo.path / "app.env", "a") as handle:
        handle.write(f"AWS_SECRET_ACCESS_KEY={keys.secret}\n")
    env = {**repo.env(), "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    blocked = subprocess.run(["git", "commit", "-q", "-am", "sneaky"], cwd=repo.path, env=env, capture_output=True, text=True)
    assert blocked.returncode != 0 and "app.env:2:23" in blocked.stdout + blocked.stderr
    assert repo.git("log", "--format=%s", "-1") == "env"


def test_delta_order_puts_each_object_right_after_its_base() -> None:
    shas = ["r1", "d1", "r2", "d2", "dd1", "x", "c1", "c2", "self"]
    bases: list[str | None] = [None, "r1", None, "r2", "d1", "not-listed", "c2", "c1", "self"]
    order = [shas[i] for i in history.delta_order(shas, bases)]
    # Depth first from the roots in pack order; an unknown base or itself as base makes a root;
    # a cycle (corrupt pack) comes last, in pack order. Every object exactly once.
    assert order == ["r1", "d1", "dd1", "r2", "d2", "x", "self", "c1", "c2"]
    assert history.delta_order([], []) == []


def test_history_listing_reads_bases_before_their_deltas(repo: GitRepo, keys: KeySet) -> None:
    body = "".join(f"line {i} of a file that changes a little every commit\n" for i in range(400))
    for i in range(6):
        repo.commit(f"v{i}", {"big.txt": body + f"change {i}\n", f"f{i}.env": env_file(KeySet.generate())})
    repo.git("gc", "--aggressive", "--quiet")
    found = find_repository(repo.path, search_parents=False)
    assert found is not None
    listed = list(git.list_objects_and_bases(found))
    assert all(obj.kind != "tree" for obj, _ in listed)
    deltas = {obj.sha: base for obj, base in listed if base is not None}
    assert deltas, "git gc made no deltas: nothing to check"
    read = [obj.sha for obj in history.list_history(found, 10**7).to_scan]
    place = {sha: index for index, sha in enumerate(read)}
    assert sorted(read) == sorted(obj.sha for obj, _ in listed if obj.kind in ("blob", "commit", "tag"))
    assert all(place[base] < place[sha] for sha, base in deltas.items() if base in place and sha in place)
