"""The pre-commit hook's path: what `scan --staged` imports, and which staged lines count as
added (git's own diff; no per-line rescans)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scanner.errors import RuleError
from scanner.sources.git import parse_added_lines
from tests.conftest import REPO_ROOT, run_keysweep
from tests.gitrepo import GitRepo
from tests.keygen import KeySet

# Never on the plain scan path: each costs the hook tens of milliseconds, and none is used.
BANNED = ("boto3", "botocore", "git", "gitdb", "dask", "jinja2", "scanner.aws", "difflib", "pathspec", "hyperscan")


# Not on the staged path either (the hook runs on every commit): the history machinery, the
# work-tree walker, the baseline module, and logging while there is nothing to say. (YAML:
# an installed keysweep reads its built-in rules as JSON, a checkout reads YAML, so PyYAML
# is left to the wheel benchmark.)
STAGED_NEVER = {"scanner.sources.history", "scanner.sources.workers", "scanner.sources.files",
                "scanner.sources.whereabouts", "scanner.baseline", "multiprocessing", "concurrent.futures",
                "logging", "scanner.keyfacts", "tempfile", "shutil",
                # The built-in patterns run on re (their twins), read from their source.
                "regex"}


def imported_modules(*args: str | Path, cwd: Path) -> tuple[int, set[str]]:
    """Run the real CLI with -X importtime; the names of every module it imported."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "scanner", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), "NO_COLOR": "1"})
    names = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "scanner.cli" in names, proc.stderr[-2000:]
    return proc.returncode, names


def banned_in(names: set[str]) -> set[str]:
    return {n for n in names if any(n == b or n.startswith(b + ".") for b in BANNED)}


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    repo = GitRepo(tmp_path / "repo")
    repo.commit("initial", {"README.md": "# project\n", "app/settings.env": "DEBUG=1\n"})
    return repo


def test_staged_and_plain_scans_import_only_what_they_use(repo: GitRepo) -> None:
    keys = KeySet.generate()
    repo.write("clean.txt", "nothing here\n")
    repo.git("add", "clean.txt")
    code, names = imported_modules("scan", "--staged", "--no-progress", cwd=repo.path)
    assert code == 0 and banned_in(names) == set()
    assert STAGED_NEVER & names == set(), STAGED_NEVER & names
    # As pre-commit runs it: the files it passes after the path.
    code, names = imported_modules("scan", "--staged", "--no-progress", "--", ".", "clean.txt", cwd=repo.path)
    assert code == 0 and banned_in(names) == set()
    assert STAGED_NEVER & names == set(), STAGED_NEVER & names
    # The blocked commit goes further: an edited file with a match reads git's patch and
    # the old version, and the report is printed.
    repo.write("app/settings.env", f"DEBUG=1\nAWS_SECRET_ACCESS_KEY={keys.secret}\n")
    repo.git("add", "app/settings.env")
    code, names = imported_modules("scan", "--staged", "--no-progress", cwd=repo.path)
    assert code == 1 and banned_in(names) == set()
    assert "scanner.sources.files" not in names and "multiprocessing" not in names
    # (A finding's exposure, leak date and author from git, is one of the key facts.)
    assert STAGED_NEVER - {"scanner.keyfacts"} & names == set(), STAGED_NEVER & names
    code, names = imported_modules("scan", "--no-history", "--no-progress", ".", cwd=repo.path)
    assert code == 1 and banned_in(names) == set()


def staged(repo: GitRepo) -> list[dict[str, Any]]:
    result = run_keysweep("scan", "--staged", "--format", "json", "--show-secrets", repo.path)
    assert result.returncode in (0, 1), result.stderr
    findings: list[dict[str, Any]] = result.json()["findings"]
    return findings


def test_value_line_added_under_an_existing_yaml_key_is_found(repo: GitRepo, keys: KeySet) -> None:
    # The rule confirms the value with the key on the line above: the whole new blob is
    # scanned, and only the match's own line has to be new.
    repo.commit("key", {"deploy.yaml": "aws_secret_access_key: |\n"})
    repo.write("deploy.yaml", f"aws_secret_access_key: |\n  {keys.secret}\n")
    repo.git("add", "deploy.yaml")
    assert [(f["secret"], f["line"]) for f in staged(repo)] == [(keys.secret, 2)]


def test_an_old_secret_moved_or_its_line_edited_is_not_new(repo: GitRepo, keys: KeySet) -> None:
    repo.commit("creds", {"creds.env": f"A=1\nAWS_ACCESS_KEY_ID={keys.key_id}\nB=2\n"})
    # Moved to the top (git's diff shows it as an added line) and its line edited.
    repo.write("creds.env", f"AWS_ACCESS_KEY_ID={keys.key_id}  # prod\nA=1\nB=2\nC=3\n")
    repo.git("add", "creds.env")
    assert staged(repo) == []


def test_lines_that_look_like_patch_headers_do_not_confuse_the_diff(repo: GitRepo, keys: KeySet) -> None:
    old = KeySet.generate()
    header_like = "diff --git a/x b/x\nindex 0000000..1111111 100644\n@@ -1 +900,3 @@\nBinary files a and b differ\n"
    repo.commit("doc", {"notes.md": f"{header_like}id {old.key_id}\n"})
    repo.write("notes.md", f"{header_like}id {old.key_id}\n{header_like}new {keys.key_id}\n")
    repo.git("add", "notes.md")
    assert [(f["secret"], f["line"]) for f in staged(repo)] == [(keys.key_id, 10)]


def test_blank_lines_and_one_changed_line(repo: GitRepo, keys: KeySet) -> None:
    # difflib took 100 s on this (20 KB of blank lines); git's diff is immediate.
    blank = "\n" * 20_000
    repo.commit("blank", {"blank.txt": blank})
    repo.write("blank.txt", blank[:10_000] + f"AWS_ACCESS_KEY_ID={keys.key_id}" + blank[10_000:])
    repo.git("add", "blank.txt")
    assert [(f["secret"], f["line"]) for f in staged(repo)] == [(keys.key_id, 10_001)]


def test_file_git_treats_as_binary_and_utf16_file(repo: GitRepo) -> None:
    old, new, wide = KeySet.generate(), KeySet.generate(), KeySet.generate()
    # .gitattributes `binary`: git shows no text diff; the old version's values still decide.
    repo.commit("binary attribute", {".gitattributes": "*.cfg binary\n", "svc.cfg": f"key={old.key_id}\n",
                                     "wide.txt": "\ufeffhello\n".encode("utf-16-le")})
    repo.write("svc.cfg", f"key={old.key_id}\nkey2={new.key_id}\n")
    repo.write("wide.txt", f"\ufeffhello\nid={wide.key_id}\n".encode("utf-16-le"))
    repo.git("add", "svc.cfg", "wide.txt")
    assert sorted((f["path"], f["secret"]) for f in staged(repo)) == [("svc.cfg", new.key_id), ("wide.txt", wide.key_id)]


def test_discovery_follows_the_path_not_an_inherited_git_dir(repo: GitRepo, keys: KeySet, tmp_path: Path) -> None:
    other = GitRepo(tmp_path / "other")
    other.commit("other", {"x.txt": "x\n"})
    repo.write("k.env", f"AWS_ACCESS_KEY_ID={keys.key_id}\n")
    repo.git("add", "k.env")
    result = run_keysweep("scan", "--staged", "--format", "json", repo.path,
                          env={"GIT_DIR": str(other.path / ".git"), "GIT_WORK_TREE": str(other.path)})
    assert result.returncode == 1, result.stderr
    assert [f["path"] for f in result.json()["findings"]] == ["k.env"]


def test_parse_added_lines() -> None:
    patch = (b"diff --git a/f b/f\nindex " + b"1" * 40 + b".." + b"2" * 40 + b" 100644\n--- a/f\n+++ b/f\n"
             b"@@ -2 +2 @@ ctx\n-b\n+B\n@@ -3,0 +4,3 @@\n+@@ -1 +7 @@\n+index 3..4\n+diff --git a/y b/y\n"
             b"@@ -9,2 +11,0 @@\n-gone\n-gone\n"
             b"diff --git a/bin b/bin\nindex " + b"3" * 40 + b".." + b"4" * 40 + b" 100644\n"
             b"Binary files a/bin and b/bin differ\n"
             b"diff --git a/old b/new\nsimilarity index 100%\nrename from old\nrename to new\n")
    assert parse_added_lines(patch) == {("1" * 40, "2" * 40): ((2, 1), (4, 3)), ("3" * 40, "4" * 40): None}


def test_built_in_rules_from_their_json_copy_are_the_yaml_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An installed wheel carries aws.yaml.json beside aws.yaml (hatch_build.py): the same
    # rules, read without importing PyYAML.
    import dataclasses
    import json

    import yaml

    from scanner.engine import rules

    for source in sorted(rules.builtin_rules_dir().glob("*.y*ml")):
        (tmp_path / source.name).write_text("not: [valid yaml")  # proves the copy is what is read
        (tmp_path / f"{source.name}.json").write_text(json.dumps(yaml.safe_load(source.read_text())))
    from_yaml = [repr(dataclasses.replace(r, file="")) for r in rules.load_ruleset().rules]
    monkeypatch.setattr(rules, "builtin_rules_dir", lambda: tmp_path)
    from_json = rules.load_ruleset()
    assert [repr(dataclasses.replace(r, file="")) for r in from_json.rules] == from_yaml
    assert {Path(r.file).name for r in from_json.rules} == {p.name for p in tmp_path.glob("*.y*ml")}
    # A user's rule file is never read from a JSON file beside it.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "x.yaml").write_text("not: [valid yaml")
    (tmp_path / "mine" / "x.yaml.json").write_text("{}")
    with pytest.raises(RuleError, match="not valid YAML"):
        rules.load_ruleset([tmp_path / "mine" / "x.yaml"])


def test_built_in_patterns_compile_on_first_use_and_scan_as_compiled_ones(tmp_path: Path) -> None:
    # The hook scans a few small files: built-in patterns are compiled when first used (most
    # never are there), so they are checked here instead of at load. User rule files still
    # compile whole when they load (a bad pattern is exit 2, before anything is scanned).
    import pickle

    import regex

    from scanner.engine.detect import detect
    from scanner.engine.lazyregex import LazyPattern
    from scanner.engine.rules import RuleSet, load_ruleset, parse_rule_file

    built_in = load_ruleset()
    lazy = [p for r in built_in.rules for p in (*r.patterns, *r.allow, *(r.near.patterns if r.near else ()))]
    assert lazy and all(isinstance(p, LazyPattern) and set(vars(p)) == {"pattern", "given_flags"} for p in lazy)
    for rule in built_in.rules:
        for pattern in (*rule.patterns, *(rule.near.patterns if rule.near else ())):
            assert "secret" in regex.compile(pattern.pattern, regex.VERSION0).groupindex, (rule.id, pattern.pattern)
        for pattern in rule.allow:
            regex.compile(pattern.pattern, regex.VERSION0)
    # The same rules compiled up front find the same secrets, and so does a copy sent to a
    # worker process (pickled before and after first use).
    eager = RuleSet(tuple(r for f in sorted({r.file for r in built_in.rules})
                          for r in parse_rule_file(Path(f).read_text(), f)))
    assert not any(isinstance(p, LazyPattern) for r in eager.rules for p in r.patterns)
    keys = KeySet.generate()
    texts = [keys.fill(example).encode() for r in built_in.rules for example in (*r.positive_examples, *r.negative_examples)]
    texts.append(f"aws_access_key_id = {keys.key_id}\naws_secret_access_key = {keys.secret}\n".encode())
    expected = [repr(detect(text, eager)) for text in texts]
    assert sum(1 for e in expected if e != "[]") >= len(built_in.rules)
    unused = pickle.loads(pickle.dumps(load_ruleset()))
    assert [repr(detect(text, built_in)) for text in texts] == expected
    assert [repr(detect(text, unused)) for text in texts] == expected
    assert [repr(detect(text, pickle.loads(pickle.dumps(built_in)))) for text in texts] == expected
    (tmp_path / "bad.yaml").write_text("rules:\n- id: bad\n  description: d\n  kind: key-id\n  patterns: ['(?P<secret>[']\n"
                                       "  examples: {positive: [x]}\n")
    with pytest.raises(RuleError, match="invalid regular expression"):
        load_ruleset([tmp_path / "bad.yaml"])


@pytest.mark.skipif(not (REPO_ROOT / ".git").exists(), reason="needs keysweep's own git checkout")
def test_readme_set_up_scan_runs_verbatim_on_a_fresh_checkout(tmp_path: Path) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    block = readme.split("Set up on a fresh machine", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    install, scan = (part.strip() for part in block.splitlines()[0].split("#")[0].split("&&"))
    assert install == "pip install ." and scan == "keysweep scan ."
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(checkout)], check=True)
    # The clone's own package, as the installed command would be (cwd first on sys.path).
    proc = subprocess.run([sys.executable, "-m", "scanner", *scan.split()[1:]], cwd=checkout,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no secrets found" in proc.stdout


def test_a_single_file_in_a_repository_uses_the_repository_configuration(repo: GitRepo, keys: KeySet) -> None:
    repo.commit("config", {".keysweep.yaml": "allow-values: ['^" + keys.key_id + "$']\n"})
    repo.write("app/k.env", f"AWS_ACCESS_KEY_ID={keys.key_id}\n")
    result = run_keysweep("scan", "--format", "json", repo.path / "app" / "k.env")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.json()["findings"] == []


def test_a_repository_git_refuses_is_an_error_but_a_plain_folder_inside_it_is_scanned(repo: GitRepo, keys: KeySet) -> None:
    repo.write("plain/k.env", f"AWS_ACCESS_KEY_ID={keys.key_id}\n")
    with open(repo.path / ".git" / "config", "a") as handle:
        handle.write("[broken\n")
    refused = run_keysweep("scan", "--staged", repo.path)
    assert refused.returncode == 3 and "cannot open the git repository" in refused.stderr
    assert "Traceback" not in refused.stderr
    folder = run_keysweep("scan", "--format", "json", repo.path / "plain")
    assert folder.returncode == 1, folder.stderr
    assert [f["path"] for f in folder.json()["findings"]] == ["k.env"]


def test_a_clean_hook_run_starts_three_git_processes(repo: GitRepo, tmp_path: Path) -> None:
    # Each git process costs the hook milliseconds: one rev-parse (the repository), one
    # diff-index (what is staged, also for telling whether the files given are staged) and
    # one cat-file (the staged blobs), as pre-commit runs it, with the files after the path.
    log = tmp_path / "git-calls.log"
    wrapper = tmp_path / "git-wrapper"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec git "$@"\n')
    wrapper.chmod(0o755)
    repo.write("a.py", "print('a')\n")
    repo.write("app/settings.env", "DEBUG=0\n")
    repo.git("add", "a.py", "app/settings.env")
    result = run_keysweep("scan", "--staged", "--no-progress", "--", ".", "a.py", "app/settings.env", cwd=repo.path,
                          env={"GIT_PYTHON_GIT_EXECUTABLE": str(wrapper)})
    assert result.returncode == 0, result.stderr
    commands = [line.split() for line in log.read_text().splitlines()]
    verbs = sorted(next(word for word in words if word in ("rev-parse", "diff-index", "cat-file", "diff"))
                   for words in commands)
    assert verbs == ["cat-file", "diff-index", "rev-parse"], commands


def test_git_error_file_without_tempfile_is_unnamed_and_works(tmp_path: Path) -> None:
    # The hook's cat-file writes its standard error to a file made without importing
    # tempfile (~4 ms): unnamed, in $TMPDIR, readable after git wrote to it.
    script = ("import sys, os; from scanner.sources.git import _error_file\n"
              "f = _error_file(); f.write(b'fatal: x'); f.flush(); os.write(f.fileno(), b'!'); f.seek(0)\n"
              "print(f.read().decode(), 'tempfile' in sys.modules, os.listdir(os.environ['TMPDIR']))\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), "TMPDIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["fatal:", "x!", "False", "[]"], out.stderr
    # A $TMPDIR that is not there: tempfile's own choice, as before.
    env["TMPDIR"] = str(tmp_path / "missing")
    script = script.replace("os.listdir(os.environ['TMPDIR'])", "0")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["fatal:", "x!", "True", "0"], out.stderr


def test_staged_files_named_like_options_are_each_scanned(repo: GitRepo) -> None:
    """pre-commit runs `keysweep scan --staged -- . FILE...`: argparse dropped every "--" among
    the positionals, so a staged file named "--" left the list, and its key went unscanned."""
    names = ["--", "-", "-f", "--staged"]
    pairs = {name: KeySet.generate() for name in names}
    for name, keys in pairs.items():
        (repo.path / name).write_text(f"AWS_ACCESS_KEY_ID={keys.key_id}\nAWS_SECRET_ACCESS_KEY={keys.secret}\n")
    repo.git("add", "--", *names)
    for files in (names, ["--"], ["-f", "--"]):
        result = run_keysweep("scan", "--staged", "--no-progress", "-f", "json", "--", ".", *files, cwd=repo.path)
        assert result.returncode == 1, result.stderr
        found = {f["path"] for f in json.loads(result.stdout)["findings"]}
        assert found == set(files), (files, found)


def test_a_staged_file_whose_name_is_not_utf8_is_scanned_from_the_index(repo: GitRepo) -> None:
    """As pre-commit passes it (`-- . NAME`): the name from the command line (surrogates)
    was not matched with git's listing of the change (escaped), so it was read from the disk,
    and hashing its path failed: exit 3, nothing reported, the commit blocked for no reason."""
    import os

    odd = os.fsdecode(b"bad\xff\x9b.env")
    pairs = [KeySet.generate(), KeySet.generate()]
    for name, keys in zip((odd, "ok.env"), pairs):
        (repo.path / name).write_text(f"AWS_ACCESS_KEY_ID={keys.key_id}\nAWS_SECRET_ACCESS_KEY={keys.secret}\n")
    repo.git("add", "-A")
    (repo.path / odd).write_text("edited on disk after staging\n")  # the staged blob is what counts
    result = run_keysweep("scan", "--staged", "--no-progress", "-f", "json", "--", ".", odd, "ok.env", cwd=repo.path)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert sorted({f["path"] for f in report["findings"]}) == ["bad\\xff\\x9b.env", "ok.env"]
    assert len(report["findings"]) == 4 and "internal error" not in result.stderr


def test_a_folder_among_the_staged_files_is_refused(repo: GitRepo) -> None:
    """`scan --staged -- . src`: the files-on-disk branch kept regular files only, said it had
    scanned the files "whole", and exited 0 over a staged key in src/."""
    keys = KeySet.generate()
    (repo.path / "src").mkdir()
    (repo.path / "src" / "a.env").write_text(f"AWS_ACCESS_KEY_ID={keys.key_id}\nAWS_SECRET_ACCESS_KEY={keys.secret}\n")
    repo.git("add", "src/a.env")
    for folder in ("src", "src/", "."):
        result = run_keysweep("scan", "--staged", "--no-progress", "--", ".", folder, cwd=repo.path)
        assert result.returncode == 2 and "a folder" in result.stderr, (folder, result.stdout, result.stderr)
    assert run_keysweep("scan", "--staged", "--no-progress", "--", ".", "src/a.env", cwd=repo.path).returncode == 1
