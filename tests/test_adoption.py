"""Where users run it: SARIF for code scanning, CI recipes, baselines, configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.conftest import REPO_ROOT, run_keysweep
from tests.gitrepo import GitRepo
from tests.keygen import KeySet

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())


def env_file(keys: KeySet, header: str = "# settings\n") -> str:
    return f"{header}AWS_ACCESS_KEY_ID={keys.key_id}\nAWS_SECRET_ACCESS_KEY={keys.secret}\n"


def sarif_of(*args: str | Path) -> tuple[int, dict[str, Any], str]:
    result = run_keysweep("scan", "--format", "sarif", *args)
    return result.returncode, json.loads(result.stdout), result.stdout


# --- SARIF ------------------------------------------------------------------------------


def test_sarif_validates_and_carries_no_secret(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    keys = KeySet.generate(account="123456789012")
    sha = repo.commit("add creds", {"config/app.env": env_file(keys)})
    code, document, raw = sarif_of(repo.path)
    assert code == 1
    jsonschema.validate(document, SCHEMA)
    for value in (keys.secret, keys.key_id, keys.key_id[:8], keys.secret[:6]):
        assert value not in raw
    run = document["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert rule_ids[:3] == ["aws-access-key-id", "aws-secret-access-key", "aws-session-token"]
    assert all(r["help"]["text"] and r["shortDescription"]["text"] for r in run["tool"]["driver"]["rules"])
    results = run["results"]
    assert {r["ruleId"] for r in results} == {"aws-access-key-id", "aws-secret-access-key"}
    for result in results:
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"] == "config/app.env"
        assert location["region"]["startLine"] in (2, 3)
        assert result["properties"]["commit"] == sha and result["properties"]["author"] == "Ada Tester"
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]


def test_sarif_fingerprints_survive_line_moves(tmp_path: Path, keys: KeySet) -> None:
    (tmp_path / "a.env").write_text(env_file(keys))
    _, before, _ = sarif_of("--no-history", tmp_path)
    (tmp_path / "a.env").write_text("\n\n# moved\n" + env_file(keys))
    _, after, _ = sarif_of("--no-history", tmp_path)

    def prints(doc: dict[str, Any]) -> list[str]:
        return sorted(r["partialFingerprints"]["keysweep/v1"] for r in doc["runs"][0]["results"])

    assert prints(before) == prints(after)


def test_sarif_for_a_clean_scan_is_valid(tmp_path: Path) -> None:
    (tmp_path / "ok.txt").write_text("nothing\n")
    code, document, _ = sarif_of("--no-history", tmp_path)
    assert code == 0 and document["runs"][0]["results"] == []
    jsonschema.validate(document, SCHEMA)


def test_sarif_commit_message_finding_is_valid(tmp_path: Path, keys: KeySet) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit(f"oops AWS_SECRET_ACCESS_KEY={keys.secret}")
    code, document, raw = sarif_of("--history-only", repo.path)
    assert code == 1 and keys.secret not in raw
    jsonschema.validate(document, SCHEMA)
    # GitHub rejects the whole file when any result lacks an artifact location.
    [result] = document["runs"][0]["results"]
    sha = repo.git("rev-parse", "HEAD")
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == f"commit-message/{sha}"


# --- CI recipes, run as written ---------------------------------------------------------


def _run_script(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    bin_dir = Path(sys.executable).parent
    full_env = {**os.environ, **env, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=300)


def _github_scan_step() -> str:
    workflow = yaml.safe_load((REPO_ROOT / "examples" / "github-actions.yml").read_text())
    [step] = [s for s in workflow["jobs"]["keysweep"]["steps"] if s.get("id") == "scan"]
    assert workflow["jobs"]["keysweep"]["steps"][0]["with"]["fetch-depth"] == 0
    return str(step["run"])


@pytest.fixture
def pushed(tmp_path: Path) -> tuple[GitRepo, str, str, KeySet, KeySet]:
    repo = GitRepo(tmp_path / "repo")
    old, new = KeySet.generate(), KeySet.generate()
    before = repo.commit("old secret", {"old.env": env_file(old)})
    after = repo.commit("new secret", {"new.env": env_file(new), "old.env": env_file(old) + "X=1\n"})
    return repo, before, after, old, new


def test_github_workflow_push_range(pushed: tuple[GitRepo, str, str, KeySet, KeySet], tmp_path: Path) -> None:
    repo, before, after, old, new = pushed
    output = tmp_path / "github_output"
    proc = _run_script(_github_scan_step(), repo.path, {"EVENT": "push", "BEFORE": before, "AFTER": after, "GITHUB_OUTPUT": str(output)})
    assert proc.returncode == 0, proc.stderr
    assert output.read_text().strip() == "exit_code=1"
    document = json.loads((repo.path / "keysweep.sarif").read_text())
    jsonschema.validate(document, SCHEMA)
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in document["runs"][0]["results"]} == {"new.env"}


def test_github_workflow_new_branch_and_pull_request(pushed: tuple[GitRepo, str, str, KeySet, KeySet], tmp_path: Path) -> None:
    repo, before, after, _, _ = pushed
    output = tmp_path / "out"
    zeros = "0" * 40
    proc = _run_script(_github_scan_step(), repo.path, {"EVENT": "push", "BEFORE": zeros, "AFTER": after, "GITHUB_OUTPUT": str(output)})
    assert proc.returncode == 0, proc.stderr
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in json.loads((repo.path / "keysweep.sarif").read_text())["runs"][0]["results"]}
    assert uris == {"old.env", "new.env"}
    clean = repo.commit("docs", {"README.md": "hello\n"})
    proc = _run_script(_github_scan_step(), repo.path, {"EVENT": "pull_request", "PR_BASE": after, "PR_HEAD": clean, "GITHUB_OUTPUT": str(output)})
    assert proc.returncode == 0 and output.read_text().strip().endswith("exit_code=0")


def test_gitlab_job_range_and_new_branch(pushed: tuple[GitRepo, str, str, KeySet, KeySet]) -> None:
    repo, before, after, _, _ = pushed
    job = yaml.safe_load((REPO_ROOT / "examples" / "gitlab-ci.yml").read_text())["keysweep"]
    assert job["variables"]["GIT_DEPTH"] == "0"
    script = "\n".join(job["script"])
    proc = _run_script(script, repo.path, {"CI_COMMIT_BEFORE_SHA": before, "CI_COMMIT_SHA": after})
    assert proc.returncode == 1, proc.stderr
    proc = _run_script(script, repo.path, {"CI_COMMIT_BEFORE_SHA": "0" * 40, "CI_COMMIT_SHA": after})
    assert proc.returncode == 1 and "new branch" in proc.stderr
    proc = _run_script(script, repo.path, {"CI_MERGE_REQUEST_DIFF_BASE_SHA": after, "CI_COMMIT_SHA": after})
    assert proc.returncode == 0, proc.stderr


def _install_steps() -> list[str]:
    workflow = yaml.safe_load((REPO_ROOT / "examples" / "github-actions.yml").read_text())
    [github] = [s["run"] for s in workflow["jobs"]["keysweep"]["steps"] if s.get("name") == "Install keysweep"]
    gitlab = yaml.safe_load((REPO_ROOT / "examples" / "gitlab-ci.yml").read_text())["keysweep"]["before_script"][-1]
    return [str(github), str(gitlab)]


def test_ci_install_step_without_the_package_variable_says_what_to_set(tmp_path: Path) -> None:
    for step in _install_steps():
        proc = _run_script(step, tmp_path, {"KEYSWEEP_PACKAGE": ""})
        assert proc.returncode != 0 and "KEYSWEEP_PACKAGE" in proc.stderr and "git+https://" in proc.stderr


@pytest.mark.slow
def test_ci_install_step_installs_a_pinned_commit_of_this_repository(tmp_path: Path) -> None:
    """The install step as printed, KEYSWEEP_PACKAGE set as the README says (git+URL@COMMIT),
    into a fresh virtual environment; the keysweep it installs then scans."""
    if not (REPO_ROOT / ".git").exists():
        pytest.skip("needs keysweep's own git checkout")
    head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    venv = tmp_path / "venv"
    # The test environment's packages are visible, so pip installs only keysweep itself.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    env = {"KEYSWEEP_PACKAGE": f"git+file://{REPO_ROOT}@{head}", "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    proc = subprocess.run(["bash", "-e", "-c", _install_steps()[0]], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "a.env").write_text(env_file(KeySet.generate()))
    scan = subprocess.run([str(venv / "bin" / "keysweep"), "scan", "--no-history", str(tmp_path / "a.env")],
                          capture_output=True, text=True, timeout=120)
    assert scan.returncode == 1, scan.stderr


# --- baselines --------------------------------------------------------------------------


def test_baseline_hides_known_findings_but_not_swapped_secrets(tmp_path: Path, keys: KeySet) -> None:
    root = tmp_path / "legacy"
    root.mkdir()
    (root / "app.env").write_text(env_file(keys))
    created = run_keysweep("baseline", "create", "--no-history", root)
    assert created.returncode == 0, created.stderr
    baseline = root / ".keysweep-baseline.json"
    text = baseline.read_text()
    assert keys.secret not in text and keys.key_id not in text
    assert len(json.loads(text)["findings"]) == 2

    assert run_keysweep("scan", "--no-history", "--baseline", baseline, root).returncode == 0
    (root / "app.env").write_text("# a comment added above\n\n" + env_file(keys) + "MORE=1\n")
    assert run_keysweep("scan", "--no-history", "--baseline", baseline, root).returncode == 0

    swapped = KeySet.generate()
    (root / "app.env").write_text(env_file(KeySet(keys.key_id, swapped.secret, "")))
    result = run_keysweep("scan", "--no-history", "--baseline", baseline, "--format", "json", "--show-secrets", root)
    assert result.returncode == 1
    assert [f["secret"] for f in result.json()["findings"]] == [swapped.secret]


def test_same_secret_in_a_new_file_is_not_baselined(tmp_path: Path, keys: KeySet) -> None:
    (tmp_path / "a.env").write_text(env_file(keys))
    out = tmp_path / "base.json"
    assert run_keysweep("baseline", "create", "--no-history", "--output", out, tmp_path).returncode == 0
    (tmp_path / "b.env").write_text(env_file(keys))
    result = run_keysweep("scan", "--no-history", "--baseline", out, "--format", "json", tmp_path)
    assert {f["path"] for f in result.json()["findings"]} == {"b.env"}


def test_broken_baseline_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = run_keysweep("scan", "--no-history", "--baseline", bad, tmp_path)
    assert result.returncode == 2 and "bad.json" in result.stderr
    result = run_keysweep("scan", "--no-history", "--baseline", tmp_path / "missing.json", tmp_path)
    assert result.returncode == 2 and "baseline create" in result.stderr


# --- configuration ----------------------------------------------------------------------


def test_keysweep_yaml_excludes_allowlists_and_format(tmp_path: Path) -> None:
    kept, excluded, allowed = KeySet.generate(), KeySet.generate(), KeySet.generate()
    (tmp_path / "app.env").write_text(env_file(kept))
    (tmp_path / "fixtures").mkdir()
    (tmp_path / "fixtures" / "fake.env").write_text(env_file(excluded))
    (tmp_path / "docs.md").write_text(f"aws_access_key_id = {allowed.key_id}\n")
    (tmp_path / ".keysweep.yaml").write_text(
        f"exclude: ['fixtures/']\nallow-values: ['^{allowed.key_id}$']\nformat: json\n"
    )
    result = run_keysweep("scan", "--no-history", "--show-secrets", tmp_path)
    assert result.returncode == 1
    assert {f["secret"] for f in result.json()["findings"]} == {kept.key_id, kept.secret}
    # Said, not silent: the configuration may be a hostile commit's (allow-values: ['.']).
    assert "finding(s) not reported: their values match the configuration's allow-values" in result.stderr
    # The key ID in docs.md and in the allow-values pattern of .keysweep.yaml itself.
    assert result.json()["summary"]["hidden_by_allow_values"] == 2
    text = run_keysweep("scan", "--no-history", "--format", "text", tmp_path)
    assert "app.env" in text.stdout and not text.stdout.lstrip().startswith("{")
    assert "2 finding(s) (2 hidden: 2 by the configuration's allow-values)" in text.stdout


def test_a_changes_own_configuration_cannot_hide_its_secret_from_no_config(tmp_path: Path, keys: KeySet) -> None:
    """A pull request adding both a key and `allow-values: ['.']`: the scan does not look clean,
    and CI on untrusted changes reads no configuration from them."""
    repo = GitRepo(tmp_path / "repo")
    repo.commit("base", {"README.md": "base\n"})
    repo.commit("innocent", {"app.env": env_file(keys), ".keysweep.yaml": "allow-values: ['.']\n"})
    hidden = run_keysweep("scan", "--since", "HEAD~1", "--format", "text", repo.path)
    assert hidden.returncode == 0, hidden.stderr  # the configuration is obeyed when read ...
    assert "no secrets found" not in hidden.stdout and "hidden: 2 by the configuration's allow-values" in hidden.stdout
    strict = run_keysweep("scan", "--since", "HEAD~1", "--no-config", "--format", "json", "--show-secrets", repo.path)
    assert strict.returncode == 1, strict.stderr  # ... and not read with --no-config
    assert {f["secret"] for f in strict.json()["findings"]} == {keys.key_id, keys.secret}
    # Excluding the file, or a baseline the change brings along, is counted alike.
    repo.commit("exclude instead", {".keysweep.yaml": "exclude: ['app.env']\n"})
    excluded = run_keysweep("scan", "--since", "HEAD~2", "--format", "json", repo.path)
    assert excluded.returncode == 0 and excluded.json()["summary"]["hidden_by_exclude"] == 2, excluded.stderr
    assert "their paths are excluded" in excluded.stderr
    made = run_keysweep("baseline", "create", "--no-config", "--output", repo.path / "known.json", repo.path)
    assert made.returncode == 0, made.stderr
    repo.commit("baseline instead", {".keysweep.yaml": "baseline: known.json\n", "known.json": (repo.path / "known.json").read_text()})
    baselined = run_keysweep("scan", "--since", "HEAD~3", "--format", "text", repo.path)
    assert baselined.returncode == 0 and "no secrets reported (2 hidden: 2 by the baseline)" in baselined.stdout
    both = run_keysweep("scan", "--no-config", "--config", repo.path / ".keysweep.yaml", repo.path)
    assert both.returncode == 2 and "exclude each other" in both.stderr


def test_a_changes_own_allow_comment_cannot_hide_its_secret_from_no_config(tmp_path: Path, keys: KeySet) -> None:
    """The same with an inline '# keysweep:allow' on the key's lines: honoured by default,
    not with --no-config, in the range CI scans and in the files of the change."""
    repo = GitRepo(tmp_path / "repo")
    repo.commit("base", {"README.md": "base\n"})
    marked = "".join(f"{line}  # keysweep:allow\n" for line in env_file(keys).splitlines())
    repo.commit("innocent", {"app.env": marked})
    assert run_keysweep("scan", "--since", "HEAD~1", repo.path).returncode == 0
    for args in (("--since", "HEAD~1"), ("--no-history",)):
        strict = run_keysweep("scan", *args, "--no-config", "--format", "json", "--show-secrets", repo.path)
        assert strict.returncode == 1, strict.stderr
        assert {f["secret"] for f in strict.json()["findings"]} == {keys.key_id, keys.secret}


def test_exclude_flag_adds_to_configuration(tmp_path: Path, keys: KeySet) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.env").write_text(env_file(keys))
    (tmp_path / "b.env").write_text(env_file(KeySet.generate()))
    (tmp_path / ".keysweep.yaml").write_text("exclude: ['b.env']\n")
    assert run_keysweep("scan", "--no-history", tmp_path).returncode == 1
    assert run_keysweep("scan", "--no-history", "--exclude", "a/", tmp_path).returncode == 0


def test_pyproject_tool_keysweep(tmp_path: Path, keys: KeySet) -> None:
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "x.env").write_text(env_file(keys))
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.keysweep]\nexclude = ["vendor/**"]\n')
    assert run_keysweep("scan", "--no-history", tmp_path).returncode == 0


def test_config_errors_name_file_key_and_hint(tmp_path: Path) -> None:
    (tmp_path / ".keysweep.yaml").write_text("exclued: ['x']\n")
    result = run_keysweep("scan", "--no-history", tmp_path)
    assert result.returncode == 2
    assert ".keysweep.yaml" in result.stderr and "'exclued'" in result.stderr and "did you mean 'exclude'" in result.stderr
    (tmp_path / ".keysweep.yaml").write_text("max-file-size: huge\n")
    result = run_keysweep("scan", "--no-history", tmp_path)
    assert result.returncode == 2 and "max-file-size" in result.stderr


def test_cli_flag_wins_over_config(tmp_path: Path, keys: KeySet) -> None:
    (tmp_path / "big.env").write_text("x" * 3000 + "\n" + env_file(keys))
    (tmp_path / ".keysweep.yaml").write_text("max-file-size: 1k\n")
    assert run_keysweep("scan", "--no-history", tmp_path).returncode == 0
    assert run_keysweep("scan", "--no-history", "--max-file-size", "1m", tmp_path).returncode == 1


def test_config_rules_are_loaded(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "acme.yaml").write_text(
        "version: 1\nrules:\n  - id: acme-token\n    description: ACME token\n    kind: secret\n"
        "    keywords: [acme_]\n    patterns: ['(?P<secret>acme_[a-z0-9]{12})']\n"
        "    examples: {positive: ['acme_abcdef123456']}\n"
    )
    (tmp_path / ".keysweep.yaml").write_text("rules: [rules]\n")
    (tmp_path / "x.txt").write_text("token: acme_abcdef123456\n")
    result = run_keysweep("scan", "--no-history", "--format", "json", tmp_path)
    # The rule file's own example is found too: examples of real secrets belong in templates.
    assert {(f["rule"], f["path"]) for f in result.json()["findings"]} == {("acme-token", "x.txt"), ("acme-token", "rules/acme.yaml")}
