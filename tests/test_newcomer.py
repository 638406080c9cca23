"""What a new user tries first: gitignore excludes, standard input, peers' markers, help text."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_keysweep
from tests.gitrepo import GitRepo
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


def _repo_with_committed_key(tmp_path: Path) -> tuple[GitRepo, KeySet]:
    repo = GitRepo(tmp_path / "repo")
    keys = KeySet.generate()
    repo.commit("add env", {".env": _pair(keys), "app.py": "print('hi')\n"})
    return repo, keys


def test_hook_given_files_that_are_not_staged_scans_them_whole(tmp_path: Path) -> None:
    # What pre-commit run --all-files does: every tracked file as an argument, nothing staged.
    repo, keys = _repo_with_committed_key(tmp_path)
    result = run_keysweep("scan", "--staged", "--no-progress", "--", ".", ".env", "app.py", cwd=repo.path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert ".env:1:19" in result.stdout and "scanned whole" in result.stderr
    assert "pre-commit --all-files" in result.stderr and "git add" not in result.stderr
    assert keys.secret not in result.stdout + result.stderr


def test_hook_given_staged_files_scans_only_their_added_lines(tmp_path: Path) -> None:
    repo, _ = _repo_with_committed_key(tmp_path)
    repo.write("app.py", "print('hi')\nprint('more')\n")
    repo.git("add", "app.py")
    clean = run_keysweep("scan", "--staged", "--no-progress", "--", ".", "app.py", cwd=repo.path)
    assert clean.returncode == 0, clean.stdout + clean.stderr  # .env's old key is not in the staged change
    fresh = KeySet.generate()
    repo.write("new.env", _pair(fresh))
    repo.git("add", "new.env")
    # A batch of pre-commit's file list that leaves new.env out does not report it (no duplicates
    # across batches); the batch that names it does.
    assert run_keysweep("scan", "--staged", "--no-progress", "--", ".", "app.py", cwd=repo.path).returncode == 0
    blocked = run_keysweep("scan", "--staged", "--no-progress", "--", ".", "app.py", "new.env", cwd=repo.path)
    assert blocked.returncode == 1 and "new.env:1:19" in blocked.stdout
    assert "keysweep blocked this commit" in blocked.stderr and "--show-secrets" in blocked.stderr


def test_file_arguments_without_staged_are_a_usage_error(tmp_path: Path) -> None:
    result = run_keysweep("scan", str(tmp_path), "other")
    assert result.returncode == 2 and "--staged" in result.stderr


def test_trufflehog_ignore_is_honoured(tmp_path: Path) -> None:
    keys = KeySet.generate()
    (tmp_path / "a.env").write_text(f"AWS_ACCESS_KEY_ID={keys.key_id}  # trufflehog:ignore\n")
    result = run_keysweep("scan", "--no-history", tmp_path)
    assert result.returncode == 0, result.stdout


def test_each_subcommand_shows_only_what_it_accepts() -> None:
    from scanner.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    revoke = commands.choices["revoke"]  # type: ignore[index]
    shown = {o for a in revoke._actions for o in a.option_strings}
    assert "--use-leaked-key" not in shown and "--verify-canary" not in shown
    assert {"--apply", "--delete", "--profile", "--quarantine"} <= shown
    baseline = commands.choices["baseline"]  # type: ignore[index]
    create = next(a for a in baseline._actions if a.dest == "baseline_command").choices["create"]  # type: ignore[index]
    assert all(action.help for action in create._actions), [a.dest for a in create._actions if not a.help]


def test_scan_dash_reads_standard_input(tmp_path: Path) -> None:
    import subprocess
    import sys

    keys = KeySet.generate()
    proc = subprocess.run([sys.executable, "-m", "scanner", "scan", "-", "--stdin-name", "app/.env", "--format", "json"],
                          input=_pair(keys), capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 1, proc.stderr
    findings = __import__("json").loads(proc.stdout)["findings"]
    assert {(f["path"], f["line"]) for f in findings} == {("app/.env", 1), ("app/.env", 2)}
    clean = subprocess.run([sys.executable, "-m", "scanner", "scan", "-"], input="nothing here\n",
                           capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert clean.returncode == 0 and "standard input" in clean.stdout
    staged = subprocess.run([sys.executable, "-m", "scanner", "scan", "-", "--staged"], input="x\n",
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert staged.returncode == 2 and "standard input" in staged.stderr


def test_color_flag_and_environment(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text(_pair(KeySet.generate()))
    base = ("scan", "--no-history", tmp_path)
    assert "\033[" in run_keysweep(*base, "--color=always").stdout  # NO_COLOR=1 is set by run_keysweep
    assert "\033[" not in run_keysweep(*base, "--color", "always", "--no-color").stdout  # the alias still works
    assert "\033[" in run_keysweep(*base, env={"NO_COLOR": "", "FORCE_COLOR": "1"}).stdout
    assert "\033[" not in run_keysweep(*base, env={"NO_COLOR": "1", "FORCE_COLOR": "1"}).stdout
    assert "\033[" not in run_keysweep(*base, "--color=never", env={"NO_COLOR": "", "FORCE_COLOR": "1"}).stdout
    assert run_keysweep(*base, "--color=sometimes").returncode == 2


def test_folder_inside_a_repository_limits_work_tree_and_history(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    inside, outside, on_disk = KeySet.generate(), KeySet.generate(), KeySet.generate()
    repo.commit("keys", {"sub/a.env": _pair(inside), "other/b.env": _pair(outside)})
    repo.commit("removed", {"sub/a.env": None, "other/b.env": None})
    (repo.path / "sub").mkdir(exist_ok=True)
    (repo.path / "sub" / "local.env").write_text(_pair(on_disk))
    for args, cwd in ((("sub",), repo.path), ((), repo.path / "sub")):
        result = run_keysweep("scan", "--format", "json", *args, cwd=cwd)
        paths = {(f["path"], f["source"]) for f in result.json()["findings"]}
        assert paths == {("sub/a.env", "git-blob"), ("sub/local.env", "file")}, (args, paths)
        assert "limited to sub/" in result.json()["summary"]["target"]
    history = run_keysweep("scan", "--history-only", "sub", cwd=repo.path)
    assert "sub/a.env" in history.stdout and "other/b.env" not in history.stdout
    assert "limited to sub/" in history.stdout


def test_folder_history_reads_only_that_folder_with_a_literal_pathspec(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    glob_name = "s[ub]*"  # as a glob it would also match "sub" and "sb"
    inside, sibling, side = KeySet.generate(), KeySet.generate(), KeySet.generate()
    repo.commit("base", {f"{glob_name}/app.py": "x = 1\n", "sub/b.env": _pair(sibling), "sb/c.py": "y = 2\n"})
    repo.commit("key inside", {f"{glob_name}/a.env": _pair(inside)})
    # A side branch adds a key under the folder and takes it out again before its merge: git's
    # default history simplification for a path would skip it.
    repo.git("checkout", "-q", "-b", "side")
    repo.commit("side key", {f"{glob_name}/side.env": _pair(side)})
    repo.commit("side undo", {f"{glob_name}/side.env": None})
    repo.git("checkout", "-q", "main")
    repo.commit("main moves", {"sb/c.py": "y = 3\n"})
    repo.git("merge", "-q", "--no-ff", "-m", "merge side", "side")
    repo.git("branch", "-D", "side")
    result = run_keysweep("scan", "--history-only", "--format", "json", "-v", glob_name, cwd=repo.path)
    assert result.returncode == 1, result.stderr
    document = result.json()
    found = {(f["path"], f["secret"]) for f in document["findings"] if f["rule"] == "aws-access-key-id"}
    assert found == {(f"{glob_name}/a.env", inside.key_id[:8] + "…"), (f"{glob_name}/side.env", side.key_id[:8] + "…")}
    # Only the folder's blobs were read: app.py, a.env, side.env (not sub/b.env nor sb/c.py's two versions).
    assert document["summary"]["blobs_scanned"] == 3
    assert f"limited to {glob_name}/" in document["summary"]["target"]
    assert "of a subfolder" in result.stderr
    whole = run_keysweep("scan", "--history-only", "--format", "json", cwd=repo.path).json()
    assert whole["summary"]["blobs_scanned"] == 6
