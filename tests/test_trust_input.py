"""Issue "Trust", items 4-6: a scanned repository cannot stall or fool keysweep, a failed read
is never a clean result, and output files, signals and exit codes behave as promised."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import uuid
import zlib
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, run_keysweep
from tests.gitrepo import GitRepo
from tests.keygen import KeySet


def env_file(keys: KeySet) -> str:
    return f"AWS_ACCESS_KEY_ID={keys.key_id}\nAWS_SECRET_ACCESS_KEY={keys.secret}\n"


# --- 4. hostile configuration and rule files ----------------------------------------------

ALIAS_BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
    f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n" for i in range(9)
) + "rules: *j\n"


@pytest.mark.parametrize("where", ["config", "rules"])
def test_yaml_alias_bomb_is_refused_at_once(tmp_path: Path, where: str) -> None:
    (tmp_path / "app.txt").write_text("nothing\n")
    if where == "config":
        (tmp_path / ".keysweep.yaml").write_text(ALIAS_BOMB)
        args: tuple[str, ...] = ()
    else:
        (tmp_path / "bomb.yaml").write_text(ALIAS_BOMB)
        args = ("--rules", str(tmp_path / "bomb.yaml"))
    started = time.monotonic()
    result = run_keysweep("scan", "--no-history", *args, tmp_path, timeout=60)
    assert time.monotonic() - started < 20
    assert result.returncode == 2, result.stderr
    assert "anchors and aliases" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr) < 500


def test_error_messages_do_not_embed_unbounded_values(tmp_path: Path) -> None:
    huge = "(" * 200_000
    (tmp_path / "rule.yaml").write_text(
        "version: 1\nrules:\n  - id: broken\n    description: d\n    help: h\n    kind: secret\n    examples: {positive: [], negative: []}\n    patterns: ['" + huge + "']\n"
    )
    result = run_keysweep("scan", "--no-history", "--rules", tmp_path / "rule.yaml", tmp_path)
    assert result.returncode == 2
    assert "broken" in result.stderr and "patterns" in result.stderr
    assert len(result.stderr) < 1000
    (tmp_path / "rule.yaml").unlink()
    (tmp_path / ".keysweep.yaml").write_text("? " + "x" * 100_000 + "\n: 1\n")
    result = run_keysweep("scan", "--no-history", tmp_path)
    assert result.returncode == 2 and "unknown setting" in result.stderr
    assert len(result.stderr) < 1000


HOSTILE_NAMES = [
    "forged\nfake.env:1:1  aws-secret-access-key  ********\nno secrets found.env",
    "\x1b[2J\x1b[H\x1b[32mno secrets found\x1b[0m.env",
    "\x1b]0;owned\x07title.env",
    "c1\x9b31mred.env",
    "bidi\u202egnp.env",
]


def test_text_output_escapes_control_characters_from_the_repository(tmp_path: Path, keys: KeySet) -> None:
    for name in HOSTILE_NAMES:
        (tmp_path / name).write_text(env_file(keys))
    result = run_keysweep("scan", "--no-history", "--jobs", "1", tmp_path)
    assert result.returncode == 1, result.stderr
    out = result.stdout.encode("utf-8", "surrogateescape")
    # No terminal control byte at all (no colour: NO_COLOR is set), no C1, no bidi override.
    assert not any(b < 0x20 and b != 0x0A for b in out), out
    assert b"\x7f" not in out and "\x9b" not in result.stdout and "\u202e" not in result.stdout
    # Every finding line is a real finding: 2 per file, nothing forged by a newline.
    finding_lines = [line for line in result.stdout.splitlines() if "aws-" in line and not line.startswith(" ")]
    assert len(finding_lines) == 2 * len(HOSTILE_NAMES)
    assert "forged\\nfake.env" in result.stdout and "\\x1b[2J" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1].startswith(f"{2 * len(HOSTILE_NAMES)} finding(s)")


def test_commit_subject_and_author_with_escape_sequences_are_escaped(tmp_path: Path, keys: KeySet) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.git("config", "user.name", "Eve \x1b[2J")
    repo.commit("add\x1b]0;pwned\x07 creds\rno secrets found", {"creds.env": env_file(keys)})
    result = run_keysweep("scan", "--history-only", repo.path)
    assert result.returncode == 1, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout and "\r" not in result.stdout
    assert "\\x1b]0;pwned\\x07" in result.stdout


# Characters JSON leaves as they are: C1 CSI, DEL, bidi overrides and isolates, line and
# paragraph separators, zero-width and byte-order marks.
# By category, not a list: soft hyphen, Mongolian vowel separator, deprecated format controls,
# interlinear annotations, the invisible "tag" letters (ASCII smuggling), and the Hangul
# fillers that render blank.
UNSAFE_IN_JSON = ("\x9b\x7f\u202e\u2066\u2069\u2028\u2029\u200b\ufeff\u061c"
                  "\u00ad\u180e\u206a\ufff9\U000e0041\U000e0042\u3164\u115f")


@pytest.mark.parametrize("fmt", ["text", "json", "jsonl", "sarif"])
def test_every_format_escapes_what_a_terminal_acts_on_from_commit_metadata(tmp_path: Path, keys: KeySet,
                                                                           fmt: str) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit(f"add creds {UNSAFE_IN_JSON}", {f"bidi\u202e\u200bcreds.env": env_file(keys)})
    repo.git("tag", "v1\u202e\ufeff")
    result = run_keysweep("scan", "--history-only", "-f", fmt, repo.path)
    assert result.returncode == 1, result.stderr
    assert not [c for c in UNSAFE_IN_JSON if c in result.stdout], [c for c in UNSAFE_IN_JSON if c in result.stdout]
    assert keys.secret not in result.stdout
    if fmt == "text":
        assert "\\u202e" in result.stdout and "\\x9b" in result.stdout
        return
    documents = [json.loads(line) for line in result.stdout.splitlines()] if fmt == "jsonl" else [json.loads(result.stdout)]
    # The same values, written as escapes: a reader of the JSON still gets them exactly.
    if fmt != "sarif":  # (SARIF's message text is escaped for display: its own test)
        assert f"add creds {UNSAFE_IN_JSON}" in json.dumps(documents, ensure_ascii=False)
        assert "\\u009b" in result.stdout and "\\u202e" in result.stdout


# --- 5. never a clean result from a failed read --------------------------------------------

def _without_dac_override(args: list[str]) -> list[str] | None:
    """Run as root without the capabilities that let root read any file, so that a chmod
    means to the process what it means to every other user."""
    if os.geteuid() != 0:
        return args
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *args]


@pytest.mark.parametrize("unreadable", [".git", ".git/objects"])
def test_unreadable_git_folder_exits_2_naming_it(tmp_path: Path, keys: KeySet, unreadable: str) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit("creds", {"creds.env": env_file(keys)})
    repo.git("rm", "-q", "creds.env")
    repo.commit("remove")
    command = _without_dac_override([sys.executable, "-m", "scanner", "scan", str(repo.path)])
    if command is None:
        pytest.skip("running as root without setpriv: root reads any folder")
    git_dir = repo.path / ".git"
    # An unreadable objects folder makes git say "not a git repository": a plain-folder scan.
    (repo.path / unreadable).chmod(0)
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=60,
                              env={**os.environ, "NO_COLOR": "1"})
    finally:
        (repo.path / unreadable).chmod(0o755)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert str(git_dir) in proc.stderr and "permission denied" in proc.stderr
    assert "no secrets found" not in proc.stdout


def test_unreadable_target_folder_exits_2(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    command = _without_dac_override([sys.executable, "-m", "scanner", "scan", str(folder)])
    if command is None:
        pytest.skip("running as root without setpriv: root reads any folder")
    folder.chmod(0)
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
    finally:
        folder.chmod(0o755)
    assert proc.returncode == 2, proc.stderr
    assert "permission denied" in proc.stderr and "Traceback" not in proc.stderr


def _loose_object(repo: GitRepo, sha: str) -> Path:
    path = repo.path / ".git" / "objects" / sha[:2] / sha[2:]
    path.chmod(0o644)
    return path


def test_corrupt_commit_does_not_abort_the_scan(tmp_path: Path, keys: KeySet) -> None:
    other = KeySet.generate()
    repo = GitRepo(tmp_path / "repo")
    repo.commit("first", {"a.env": env_file(keys)})
    damaged = repo.commit("second", {"b.txt": "hello\n"})
    repo.commit("third", {"c.env": env_file(other)})
    _loose_object(repo, damaged).write_bytes(zlib.compress(b"commit 12\x00not a commit"))
    result = run_keysweep("scan", "--history-only", "--format", "json", "--show-secrets", repo.path)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    report = result.json()
    found = {f["secret"] for f in report["findings"]}
    assert {keys.key_id, keys.secret, other.key_id, other.secret} <= found
    assert report["summary"]["errors"], "the damage must be named"
    assert damaged in result.stderr or damaged[:12] in result.stderr or "history walk stopped" in result.stderr


def test_corrupt_tree_is_named_and_exits_3(tmp_path: Path, keys: KeySet) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit("creds", {"a.env": env_file(keys)})
    repo.commit("more", {"sub/b.txt": "text\n"})
    tree = repo.git("rev-parse", "HEAD:sub")
    _loose_object(repo, tree).write_bytes(b"\x78\x9cnot zlib")
    result = run_keysweep("scan", "--history-only", "--format", "json", "--show-secrets", repo.path)
    assert result.returncode == 3, result.stderr
    assert tree in result.stderr
    assert {keys.key_id, keys.secret} <= {f["secret"] for f in result.json()["findings"]}


def test_corrupt_pack_exits_3_never_clean(tmp_path: Path, keys: KeySet) -> None:
    repo = GitRepo(tmp_path / "repo")
    for index in range(5):
        repo.commit(f"c{index}", {f"f{index}.txt": f"content {index}\n" * 50})
    repo.commit("creds", {"a.env": env_file(keys)})
    repo.git("gc", "-q")
    pack = next((repo.path / ".git" / "objects" / "pack").glob("*.pack"))
    data = bytearray(pack.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = b"\xff" * 64
    pack.chmod(0o644)
    pack.write_bytes(bytes(data))
    result = run_keysweep("scan", "--history-only", "--format", "json", repo.path)
    assert result.returncode in (2, 3), result.stderr
    assert result.returncode != 0 and "Traceback" not in result.stderr


# --- 6. output files, configuration values, usage errors ------------------------------------

def test_no_report_is_written_through_a_link_out_of_its_folder(tmp_path: Path, keys: KeySet) -> None:
    """A repository that commits `.keysweep-baseline.json -> ~/.bashrc` (or `results.sarif`)
    had `keysweep baseline create` or `scan -o` replace that file with the report."""
    victim = tmp_path / "victim.txt"
    victim.write_text("IMPORTANT USER DATA\n")
    repo = GitRepo(tmp_path / "repo")
    (repo.path / "creds.env").write_text(env_file(keys))
    (repo.path / ".keysweep-baseline.json").symlink_to(victim)
    (repo.path / "results.sarif").symlink_to(tmp_path / "created-by-keysweep")  # dangling: would be made
    repo.git("add", "-A")
    repo.git("commit", "-qm", "links")
    created = run_keysweep("baseline", "create", repo.path)
    assert created.returncode == 2 and "outside its folder" in created.stderr, created.stderr
    scanned = run_keysweep("scan", "--no-history", "-f", "sarif", "-o", repo.path / "results.sarif", repo.path)
    assert scanned.returncode == 2 and "outside its folder" in scanned.stderr, scanned.stderr
    assert victim.read_text() == "IMPORTANT USER DATA\n" and not (tmp_path / "created-by-keysweep").exists()



def test_output_into_fifo_symlink_and_device(tmp_path: Path, keys: KeySet) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.env").write_text(env_file(keys))
    # A symlink to a regular file: the target is replaced, the link stays a link.
    target = tmp_path / "real.json"
    target.write_text("old\n")
    target.chmod(0o640)
    link = tmp_path / "link.json"
    link.symlink_to(target)
    result = run_keysweep("scan", "--no-history", "--format", "json", "-o", link, tmp_path / "src")
    assert result.returncode == 1, result.stderr
    assert link.is_symlink() and '"findings"' in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    # A FIFO: written into, not replaced.
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    result = run_keysweep("scan", "--no-history", "--format", "json", "-o", fifo, tmp_path / "src")
    received = reader.communicate(timeout=60)[0]
    assert result.returncode == 1 and b'"findings"' in received
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    # A device: written into, never replaced. As root the test makes its own device nodes
    # (the same devices as /dev/null and /dev/full), so a regression cannot replace the
    # machine's; otherwise the real ones, which a non-root user cannot replace anyway.
    null, full = Path("/dev/null"), Path("/dev/full")
    if os.geteuid() == 0:
        null, full = tmp_path / "null", tmp_path / "full"
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    result = run_keysweep("scan", "--no-history", "-o", null, tmp_path / "src")
    assert result.returncode == 1 and stat.S_ISCHR(os.stat(null).st_mode)
    result = run_keysweep("scan", "--no-history", "-o", full, tmp_path / "src")
    assert result.returncode == 2 and str(full) in result.stderr
    assert stat.S_ISCHR(os.stat(full).st_mode)


def test_new_output_file_modes(tmp_path: Path, keys: KeySet) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.env").write_text(env_file(keys))
    old = os.umask(0o022)
    try:
        run_keysweep("scan", "--no-history", "-o", tmp_path / "plain.txt", tmp_path / "src")
        run_keysweep("scan", "--no-history", "--show-secrets", "-o", tmp_path / "secret.txt", tmp_path / "src")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "secret.txt").stat().st_mode) == 0o600


@pytest.mark.parametrize("setting", ["1.5", "infk", "true", "'infm'", "-5", "99999999999999999999"])
def test_bad_max_file_size_in_config_exits_2(tmp_path: Path, setting: str) -> None:
    (tmp_path / ".keysweep.yaml").write_text(f"max-file-size: {setting}\n")
    result = run_keysweep("scan", "--no-history", tmp_path)
    assert result.returncode == 2, result.stderr
    assert "max-file-size" in result.stderr and str(tmp_path / ".keysweep.yaml") in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["infm", "inf", "1.5", "nan"])
def test_bad_max_file_size_flag_exits_2(tmp_path: Path, value: str) -> None:
    result = run_keysweep("scan", "--no-history", "--max-file-size", value, tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_tool_not_a_table_in_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('tool = "x"\n[tool.keysweep]\n' if False else 'tool = "x"\n# [tool.keysweep]\n')
    result = run_keysweep("scan", "--no-history", "--config", tmp_path / "pyproject.toml", tmp_path)
    assert result.returncode == 2 and "'tool'" in result.stderr and "Traceback" not in result.stderr


# ids: pytest 8 (9 shortens long ones) puts the whole 200 kB parameter in the test id, and so
# in PYTEST_CURRENT_TEST, which makes the keysweep subprocess's exec fail (E2BIG).
@pytest.mark.parametrize("content", ["[" * 100_000 + "]" * 100_000, '{"version": 1, "findings": ' + "9" * 10_000 + "}"],
                         ids=["nesting", "huge-number"])
def test_hostile_baseline_exits_2(tmp_path: Path, content: str) -> None:
    (tmp_path / "b.json").write_text(content)
    result = run_keysweep("scan", "--no-history", "--baseline", tmp_path / "b.json", tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "baseline" in result.stderr


def test_baseline_fifo_does_not_block(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "b.json")
    result = run_keysweep("scan", "--no-history", "--baseline", tmp_path / "b.json", tmp_path, timeout=30)
    assert result.returncode == 2 and "regular file" in result.stderr


def test_staged_in_bare_repository_exits_2(tmp_path: Path) -> None:
    GitRepo(tmp_path / "bare.git", bare=True)
    result = run_keysweep("scan", "--staged", tmp_path / "bare.git")
    assert result.returncode == 2 and "bare" in result.stderr


@pytest.mark.parametrize("flag", ["--since=--output=/tmp/x", "--range=--all..HEAD", "--range=HEAD..-p"])
def test_revisions_beginning_with_dash_are_refused(tmp_path: Path, flag: str) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit("one", {"a.txt": "a\n"})
    result = run_keysweep("scan", flag, repo.path)
    assert result.returncode == 2 and "'-'" in result.stderr, result.stderr


def test_jobs_far_above_cores_is_capped(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("nothing\n")
    result = run_keysweep("scan", "--no-history", "--jobs", "100000", tmp_path)
    assert result.returncode == 0 and "--jobs 100000" in result.stderr


# --- 6. signals ---------------------------------------------------------------------------

def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _children(pid: int) -> list[int]:
    result = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                result.append(int(entry.name))
    return result


def _big_tree(root: Path, keys: KeySet) -> None:
    filler = ("x = 'some text of no interest' # " * 30 + "\n") * 20
    # Enough work (about 5,000 distinct files) that the scan is still running when the
    # signal lands, even on a busy machine.
    for index in range(5000):
        folder = root / f"d{index % 50}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{index}.py").write_text(f"# file {index}\n{filler}")  # distinct blobs
    (root / "d0" / "creds.env").write_text(env_file(keys))


def _interrupt(args: list[str], signum: int, cwd: Path | None = None, group: bool = False) -> tuple[int, str, list[int]]:
    """Run keysweep, signal it mid-scan (``group``: its whole process group, as a closed
    terminal does), and return its exit code, its stderr and any process it left behind."""
    marker = f"KEYSWEEP_TEST_MARKER_{uuid.uuid4().hex}"
    env = {**os.environ, "NO_COLOR": "1", marker: "1"}
    proc = subprocess.Popen([sys.executable, "-m", "scanner", *args], env=env, cwd=cwd, start_new_session=group,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    # Wait until the scan has started its workers, so the signal lands mid-scan.
    while time.monotonic() < deadline and len(_children(proc.pid)) < 2 and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the scan ended before it could be interrupted"
    if group:
        os.killpg(proc.pid, signum)
    else:
        proc.send_signal(signum)
    try:
        _, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"keysweep did not stop within 30 s of signal {signum}") from None
    leftover: list[int] = []
    for _ in range(50):  # workers get a moment to finish dying
        leftover = _processes_with(marker)
        if not leftover:
            break
        time.sleep(0.1)
    for pid in leftover:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return proc.returncode, stderr, leftover


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_signal_during_work_tree_scan_stops_workers(tmp_path: Path, keys: KeySet, signum: int, code: int) -> None:
    _big_tree(tmp_path / "tree", keys)
    out = tmp_path / "report.json"
    returncode, stderr, leftover = _interrupt(
        ["scan", "--no-history", "--jobs", "2", "--format", "json", "-o", str(out), str(tmp_path / "tree")], signum)
    assert returncode == code, stderr
    assert leftover == [], "orphaned worker processes"
    assert not out.exists() and not list(tmp_path.glob(".report.json.*"))
    assert "Traceback" not in stderr


@pytest.mark.parametrize("signum,code,group", [(signal.SIGTERM, 143, False), (signal.SIGHUP, 129, True)])
def test_signal_during_history_scan_leaves_no_git_or_workers(tmp_path: Path, keys: KeySet, signum: int, code: int,
                                                             group: bool) -> None:
    # SIGHUP to the whole group (a closed terminal) once killed multiprocessing's resource
    # tracker too, and the one started in its place printed a KeyError traceback per semaphore.
    repo = GitRepo(tmp_path / "repo")
    _big_tree(repo.path, keys)
    repo.git("add", "-A")
    repo.commit("many files")
    returncode, stderr, leftover = _interrupt(["scan", "--history-only", "--jobs", "2", str(repo.path)], signum,
                                              group=group)
    assert returncode == code, stderr
    assert leftover == [], "orphaned worker or git processes"
    assert "Traceback" not in stderr, stderr


def test_readme_documents_signal_exit_codes() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert "143" in readme and "129" in readme and "## Security promises" in readme


# --- 4. a rule that backtracks forever -------------------------------------------------------

CATASTROPHIC_RULE = """\
version: 1
rules:
  - id: backtracker
    description: a pattern that backtracks exponentially
    help: none
    kind: secret
    patterns: ['(?P<secret>(a|aa)+b)']
    examples: {positive: ['aab'], negative: ['xyz']}
"""


@pytest.mark.parametrize("mode", ["--no-history", "--history-only"])
def test_catastrophic_rule_pattern_is_disabled_and_scan_is_incomplete(tmp_path: Path, keys: KeySet, mode: str) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.write("rules/slow.yaml", CATASTROPHIC_RULE)
    repo.write(".keysweep.yaml", "rules: [rules/slow.yaml]\n")
    repo.write("trap.txt", "a" * 40 + "\n")
    repo.write("creds.env", env_file(keys))
    repo.git("add", "-A")
    repo.commit("trap")
    started = time.monotonic()
    result = run_keysweep("scan", mode, "--format", "json", "--show-secrets", repo.path, timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode == 3, result.stderr
    assert "backtracker" in result.stderr and "slow.yaml" in result.stderr and "time budget" in result.stderr
    assert elapsed < 30, f"took {elapsed:.1f}s"
    report = result.json()
    assert {keys.key_id, keys.secret} <= {f["secret"] for f in report["findings"]}
    assert any("backtracker" in error for error in report["summary"]["errors"])


def test_a_rule_files_words_reach_sarif_escaped(tmp_path: Path) -> None:
    """A repository's rule file wrote links, HTML, terminal sequences and a bidi override into
    the SARIF alerts code scanning renders: its words are text there now."""
    import json

    (tmp_path / "rules.yaml").write_text(
        "version: 1\nrules:\n  - id: acme-token\n    kind: secret\n"
        '    description: "X<img src=x onerror=alert(2)> \\e[2J\\u202e"\n'
        '    help: "[rotate here](https://evil.example/phish) \\e[31mRED"\n'
        "    patterns: ['(?P<secret>acme_[a-z0-9]{12})']\n    examples: {positive: ['acme_abcdef123456']}\n")
    (tmp_path / "app.env").write_text("token = acme_q1w2e3r4t5y6\n")
    result = run_keysweep("scan", "--no-history", "--rules", tmp_path / "rules.yaml", "-f", "sarif", tmp_path / "app.env")
    assert result.returncode == 1, result.stderr
    sarif = json.loads(result.stdout)
    descriptor = next(r for r in sarif["runs"][0]["tool"]["driver"]["rules"] if r["id"] == "acme-token")
    markdown = descriptor["help"]["markdown"]
    assert "\\<img src=x onerror=alert\\(2\\)\\>" in markdown and "\\[rotate here\\]\\(https://evil\\.example" in markdown

    def strings(value: object) -> list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        if isinstance(value, list):
            return [s for v in value for s in strings(v)]
        return []

    texts = strings(descriptor) + strings(sarif["runs"][0]["results"])
    assert not [t for t in texts if "\x1b" in t or "\u202e" in t]
    assert "\\x1b[2J" in descriptor["shortDescription"]["text"] and "\\u202e" in descriptor["shortDescription"]["text"]


def test_a_repositorys_configuration_names_no_file_outside_it(tmp_path: Path, keys: KeySet) -> None:
    """A pull request's .keysweep.yaml naming ../host.yaml or /etc/os-release had keysweep read
    host files and echo their fields (and whether they exist) into the job's log."""
    host = tmp_path / "host_secret.yaml"
    host.write_text("version: 1\nrules:\n  - id: leak\n    kind: HOST-SECRET-VALUE-1234\n")
    repo = tmp_path / "repo"
    (repo / "rules").mkdir(parents=True)
    (repo / "app.env").write_text(env_file(keys))
    (repo / "rules" / "link.yaml").symlink_to(host)
    for named in ("../host_secret.yaml", str(host), "rules/link.yaml", "/etc/os-release", "/nonexistent.yaml"):
        for key in ("rules", "baseline"):
            value = f"[{named!r}]" if key == "rules" else repr(named)
            (repo / ".keysweep.yaml").write_text(f"{key}: {value}\n")
            result = run_keysweep("scan", "--no-history", repo)
            assert result.returncode == 2, (named, key, result.stdout, result.stderr)
            assert "outside the repository" in result.stderr and "HOST-SECRET" not in result.stderr, result.stderr
            assert f"--{key}" in result.stderr
    # A pyproject.toml linked out of the repository is not even read (a 1 GiB host file took
    # 2 GB to look for [tool.keysweep] in): no configuration.
    (repo / ".keysweep.yaml").unlink()
    (tmp_path / "host.toml").write_text('[tool.keysweep]\nrules = ["host_secret.yaml"]\n')
    (repo / "pyproject.toml").symlink_to(tmp_path / "host.toml")
    linked = run_keysweep("scan", "--no-history", repo)
    assert linked.returncode == 1 and "HOST-SECRET" not in linked.stderr, linked.stderr
    (repo / "pyproject.toml").unlink()
    # Inside it, a rule file works; and one the user names on the command line may be anywhere.
    (repo / "rules" / "link.yaml").unlink()
    (repo / "rules" / "ok.yaml").write_text(
        "version: 1\nrules:\n  - id: acme-token\n    kind: secret\n    description: acme\n"
        "    patterns: ['(?P<secret>acme_[a-z0-9]{12})']\n    examples: {positive: ['acme_abcdef123456']}\n")
    (repo / ".keysweep.yaml").write_text("rules: [rules/ok.yaml]\n")
    assert run_keysweep("scan", "--no-history", repo).returncode == 1
    given = tmp_path / "given.yaml"
    given.write_text("rules: [host_secret.yaml]\n")
    outside = run_keysweep("scan", "--no-history", "--config", given, repo)
    assert outside.returncode == 2 and "host_secret.yaml: rule 'leak'" in outside.stderr  # read: the user asked for it
