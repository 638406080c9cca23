"""The pre-commit framework itself runs keysweep's hooks from this repository: a commit (and
a push) that adds a key is blocked with a readable message; a clean one goes through."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.gitrepo import GitRepo
from tests.keygen import KeySet

pytestmark = [
    pytest.mark.skipif(shutil.which("pre-commit") is None or not (REPO_ROOT / ".git").exists(),
                       reason="needs the pre-commit framework and keysweep's own git checkout"),
    pytest.mark.slow,  # pre-commit builds a hook environment (pip install) once per session
]


def _head() -> str:
    return subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def _project(tmp_path: Path, home: Path) -> tuple[GitRepo, dict[str, str]]:
    rev = _head()
    repo = GitRepo(tmp_path / "project")
    repo.write(".pre-commit-config.yaml",
               f"repos:\n  - repo: {REPO_ROOT}\n    rev: {rev}\n    hooks:\n      - id: keysweep\n      - id: keysweep-push\n")
    repo.commit("pre-commit config", {".pre-commit-config.yaml": (repo.path / ".pre-commit-config.yaml").read_text()})
    env = {**repo.env(), "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    subprocess.run(["pre-commit", "install", "--hook-type", "pre-commit", "--hook-type", "pre-push"],
                   cwd=repo.path, env=env, check=True, capture_output=True)
    return repo, env


def _git(repo: GitRepo, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=repo.path, env=env, capture_output=True, text=True, timeout=600)


def test_commit_with_staged_key_is_blocked_and_clean_commit_passes(tmp_path: Path, pre_commit_home: Path) -> None:
    repo, env = _project(tmp_path, pre_commit_home)
    keys = KeySet.generate()
    repo.write("deploy/creds.env", f"AWS_ACCESS_KEY_ID={keys.key_id}\nAWS_SECRET_ACCESS_KEY={keys.secret}\n")
    _git(repo, env, "add", "deploy/creds.env")
    blocked = _git(repo, env, "commit", "-m", "add creds")
    output = blocked.stdout + blocked.stderr
    assert blocked.returncode != 0, output
    assert "deploy/creds.env:1:19" in output and "aws-access-key-id" in output
    assert "keysweep blocked this commit" in output and "keysweep:allow" in output and "rotate" in output
    assert keys.secret not in output
    assert _git(repo, env, "rev-list", "--count", "HEAD").stdout.strip() == "1"

    _git(repo, env, "rm", "-q", "--cached", "deploy/creds.env")
    repo.write("src/app.py", "print('hello')\n")
    _git(repo, env, "add", "src/app.py")
    clean = _git(repo, env, "commit", "-m", "clean change")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "keysweep (AWS credentials in the staged change)" in clean.stderr and "Passed" in clean.stderr

    # A key already committed: pre-commit run --all-files passes every file, which is scanned whole.
    _git(repo, env, "add", "deploy/creds.env")
    assert _git(repo, env, "commit", "--no-verify", "-qm", "key committed without the hook").returncode == 0
    every = subprocess.run(["pre-commit", "run", "--all-files", "keysweep"], cwd=repo.path, env=env,
                           capture_output=True, text=True, timeout=600)
    assert every.returncode == 1, every.stdout + every.stderr
    assert "deploy/creds.env:1:19" in every.stdout and "scanned whole" in every.stdout
    assert keys.secret not in every.stdout + every.stderr


def test_push_of_commit_with_key_is_blocked(tmp_path: Path, pre_commit_home: Path) -> None:
    repo, env = _project(tmp_path, pre_commit_home)
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    _git(repo, env, "remote", "add", "origin", str(remote))
    assert _git(repo, env, "push", "-q", "origin", "main").returncode == 0
    keys = KeySet.generate()
    repo.write("settings.ini", f"[aws]\naws_access_key_id = {keys.key_id}\naws_secret_access_key = {keys.secret}\n")
    _git(repo, env, "add", "settings.ini")
    assert _git(repo, env, "commit", "--no-verify", "-m", "sneak it in").returncode == 0
    pushed = _git(repo, env, "push", "origin", "main")
    output = pushed.stdout + pushed.stderr
    assert pushed.returncode != 0, output
    assert "settings.ini:2:21" in output and "keysweep blocked this push" in output
    assert "git commit --amend" in output and "rebase -i" in output and "git add` again" not in output
    assert keys.secret not in output


def test_try_repo_all_files_reports_a_committed_key(tmp_path: Path) -> None:
    """The README's try-repo line, on a repository whose committed .env holds a key pair.

    try-repo builds its own hook environment in a temporary folder on every call (it ignores
    PRE_COMMIT_HOME), so it runs once here; commits and pushes are tested through
    `pre-commit install` above, which shares the session's environment."""
    repo = GitRepo(tmp_path / "scratch")
    keys = KeySet.generate()
    repo.commit("env", {"app.env": f"aws_secret_access_key = {keys.secret}\naws_access_key_id = {keys.key_id}\n"})
    env = {**repo.env(), "PRE_COMMIT_COLOR": "never"}
    every = subprocess.run(["pre-commit", "try-repo", "--ref", _head(), str(REPO_ROOT), "keysweep", "--all-files"],
                           cwd=repo.path, env=env, capture_output=True, text=True, timeout=600)
    assert every.returncode == 1, every.stdout + every.stderr
    assert "app.env:1:25" in every.stdout and "Passed" not in every.stdout
    assert keys.secret not in every.stdout + every.stderr


def _readme_block(after: str, lang: str) -> str:
    """The first ```lang block after the heading text ``after`` in the README, dedented."""
    import textwrap

    text = (REPO_ROOT / "README.md").read_text()
    start = text.index(f"```{lang}\n", text.index(after)) + len(lang) + 4
    return textwrap.dedent(text[start : text.index("```", start)].replace("\n   ", "\n")).strip() + "\n"


def test_readme_pre_commit_snippet_runs_as_printed(tmp_path: Path, pre_commit_home: Path) -> None:
    # What a user does: replace the placeholder with where their copy lives, paste, commit.
    script = _readme_block("Stop new leaks at the commit", "sh").replace(
        "https://github.com/YOUR-ORG/keysweep", str(REPO_ROOT))
    assert "YOUR-ORG" not in script and "v0.1.0" not in script
    repo = GitRepo(tmp_path / "project")
    env = {**repo.env(), "PRE_COMMIT_HOME": str(pre_commit_home), "PRE_COMMIT_COLOR": "never"}
    setup = subprocess.run(["bash", "-e", "-c", script], cwd=repo.path, env=env, capture_output=True, text=True,
                           timeout=600)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert f"rev: {_head()}" in (repo.path / ".pre-commit-config.yaml").read_text()
    keys = KeySet.generate()
    repo.write("creds.env", f"AWS_ACCESS_KEY_ID={keys.key_id}\nAWS_SECRET_ACCESS_KEY={keys.secret}\n")
    _git(repo, env, "add", ".")
    blocked = _git(repo, env, "commit", "-m", "creds")
    assert blocked.returncode != 0 and "creds.env:1:19" in blocked.stdout + blocked.stderr


def test_readme_local_hook_runs_as_printed(tmp_path: Path) -> None:
    import os
    import sys

    config = _readme_block("as a local hook", "yaml")
    repo = GitRepo(tmp_path / "project")
    repo.write(".pre-commit-config.yaml", config)
    # language: system runs the keysweep on PATH: the one installed in this environment.
    env = {**repo.env(), "PRE_COMMIT_COLOR": "never", "PRE_COMMIT_HOME": str(tmp_path / "home"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(["pre-commit", "install"], cwd=repo.path, env=env, check=True, capture_output=True)
    keys = KeySet.generate()
    repo.write("creds.env", f"AWS_ACCESS_KEY_ID={keys.key_id}\nAWS_SECRET_ACCESS_KEY={keys.secret}\n")
    _git(repo, env, "add", ".")
    blocked = _git(repo, env, "commit", "-m", "creds")
    output = blocked.stdout + blocked.stderr
    assert blocked.returncode != 0 and "creds.env:1:19" in output and "keysweep blocked this commit" in output
    assert keys.secret not in output
