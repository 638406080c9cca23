"""Where a secret still lives: in HEAD today, only in history (and which refs reach it), or
unreachable. Real repositories, the real command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import run_keysweep
from tests.gitrepo import GitRepo
from tests.keygen import KeySet


def _pair(keys: KeySet) -> str:
    return f"AWS_ACCESS_KEY_ID={keys.key_id}\nAWS_SECRET_ACCESS_KEY={keys.secret}\n"


def _scan(repo: GitRepo, *args: str) -> tuple[list[dict[str, Any]], str]:
    result = run_keysweep("scan", "--no-progress", "--format", "json", *args, repo.path)
    assert result.returncode == 1, result.stdout + result.stderr
    text = run_keysweep("scan", "--no-progress", *args, repo.path)
    assert text.returncode == 1, text.stderr
    return result.json()["findings"], text.stdout


def test_secret_in_head_is_still_in_head(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    keys = KeySet.generate()
    repo.commit("add env", {".env": _pair(keys)})
    repo.commit("more", {"app.py": "print('hi')\n"})
    findings, text = _scan(repo)
    assert findings and all(f["in_head"] is True and f["refs"] == ["main"] for f in findings)
    assert "still in HEAD (main)" in text
    # --history-only (no work tree to look at): HEAD's tree says so.
    findings, _ = _scan(repo, "--history-only")
    assert findings and all(f["in_head"] is True for f in findings)


def test_secret_removed_later_is_only_in_history(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    keys = KeySet.generate()
    repo.commit("add env", {".env": _pair(keys), "app.py": "x = 1\n"})
    repo.commit("remove env", {".env": None})
    findings, text = _scan(repo)
    assert findings and all(f["in_head"] is False and f["refs"] == ["main"] and f["refs_total"] == 1
                            for f in findings)
    assert "only in history; reachable from: main" in text
    sarif = run_keysweep("scan", "--no-progress", "--format", "sarif", repo.path).json()
    props = [r["properties"] for r in sarif["runs"][0]["results"]]
    assert props and all(p["inHead"] is False and p["refs"] == ["main"] for p in props)


def test_secret_moved_to_another_file_is_still_in_head(tmp_path: Path) -> None:
    # By value: the introducing blob is gone from HEAD, the secret is not.
    repo = GitRepo(tmp_path / "repo")
    keys = KeySet.generate()
    repo.commit("add env", {".env": _pair(keys)})
    repo.commit("move", {".env": None, "conf/prod.env": "# moved\n" + _pair(keys)})
    findings, _ = _scan(repo, "--history-only")
    assert {f["path"] for f in findings} == {".env", "conf/prod.env"}
    assert all(f["in_head"] is True for f in findings)


def _secret_on_branch(tmp_path: Path, branch: str) -> tuple[GitRepo, KeySet]:
    """main with one commit, and ``branch`` (checked out) adding a key pair on top of it."""
    repo = GitRepo(tmp_path / "repo")
    keys = KeySet.generate()
    repo.commit("base", {"app.py": "x = 1\n"})
    repo.git("checkout", "-q", "-b", branch)
    repo.commit(f"add env on {branch}", {".env": _pair(keys)})
    return repo, keys


def test_secret_only_on_a_side_branch_and_tag(tmp_path: Path) -> None:
    repo, keys = _secret_on_branch(tmp_path, "side")
    repo.git("tag", "-a", "-m", "release", "v1.2")
    # A branch named after the key, and one with a right-to-left override: repository text.
    repo.git("branch", f"leak-{keys.key_id}")
    repo.git("branch", "evil\u202etxt")
    repo.git("checkout", "-q", "main")
    repo.commit("main moves on", {"app.py": "x = 2\n"})
    findings, text = _scan(repo)
    assert findings
    for finding in findings:
        assert finding["in_head"] is False
        assert finding["refs_total"] == 4
        # Branches first (by name), then tags; the key in a ref name is redacted.
        assert finding["refs"] == ["evil\u202etxt", f"leak-{keys.key_id[:8]}…", "side", "v1.2"]
    assert "only in history; reachable from: evil\\u202etxt, leak-" in text and ", side, v1.2" in text
    assert keys.key_id not in text and "\u202e" not in text
    assert keys.key_id not in run_keysweep("scan", "--no-progress", "--format", "sarif", repo.path).stdout


def test_dangling_commit_is_unreachable(tmp_path: Path) -> None:
    repo, _ = _secret_on_branch(tmp_path, "gone")
    repo.git("checkout", "-q", "main")
    repo.git("branch", "-D", "gone")
    assert run_keysweep("scan", "--no-progress", repo.path).returncode == 0
    findings, text = _scan(repo, "--all-objects")
    assert findings and all(f["in_head"] is False and f["refs"] == [] and f["reachable"] is False
                            for f in findings)
    assert "unreachable" in text


def test_plain_folder_has_no_whereabouts(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text(_pair(KeySet.generate()))
    result = run_keysweep("scan", "--no-progress", "--format", "json", tmp_path)
    assert result.returncode == 1
    assert all(f["in_head"] is None and f["refs"] is None for f in result.json()["findings"])


def test_head_read_from_its_file_says_what_git_says(tmp_path: Path) -> None:
    """HEAD's branch and a detached HEAD come from HEAD's file without starting git; the
    answer is git's own for a branch, a detached HEAD, an unborn branch, a linked work tree,
    and a HEAD file of another shape (git is asked then)."""
    import subprocess

    from scanner.sources import git
    from scanner.sources.git import find_repository

    repo = GitRepo(tmp_path / "repo")
    first = repo.commit("one", {"a.txt": "a\n"})
    repo.commit("two", {"a.txt": "b\n"})

    def both() -> tuple[tuple[str | None, list[str]], tuple[str | None, list[str]]]:
        found = find_repository(repo.path, search_parents=False)
        assert found is not None
        from_file = (git.head_branch(found), sorted(t.full for t in git.ref_tips(found)))
        asked = subprocess.run(["git", "-C", str(repo.path), "symbolic-ref", "-q", "--short", "HEAD"],
                               capture_output=True, text=True).stdout.strip() or None
        return from_file, (asked, from_file[1])

    branch_file, branch_git = both()
    assert branch_file == branch_git and branch_file[0] == "main" and "HEAD" not in branch_file[1]
    repo.git("checkout", "-q", "--detach", first)
    detached, expected = both()
    assert detached == expected and detached[0] is None and "HEAD" in detached[1]
    repo.git("checkout", "-q", "--orphan", "unborn")
    unborn, expected = both()
    assert unborn == expected and unborn == ("unborn", ["refs/heads/main"])
    repo.git("checkout", "-q", "-f", "main")
    # A HEAD file of another shape: git is asked (and says what it says of it).
    found = find_repository(repo.path, search_parents=False)
    assert found is not None
    (repo.path / ".git" / "HEAD").write_text("ref:  refs/heads/main \n")
    assert git.head_file(found) is None
    # A linked work tree's HEAD is its own; its refs are the common directory's: git is asked.
    (repo.path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    repo.git("worktree", "add", "-q", "--detach", str(tmp_path / "linked"), first)
    linked = find_repository(tmp_path / "linked", search_parents=False)
    assert linked is not None and git.head_file(linked) is None
    assert git.head_branch(linked) is None and any(t.full == "HEAD" and t.commit == first for t in git.ref_tips(linked))
