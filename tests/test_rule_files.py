"""Broken rule files fail with one message naming the file, the rule and the field."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from scanner.engine.detect import detect
from scanner.engine.rules import RuleSet, load_ruleset, parse_rule_file
from scanner.errors import RuleError
from tests.conftest import run_keysweep
from tests.keygen import KeySet

GOOD_RULE = """\
version: 1
rules:
  - id: acme-token
    description: ACME deploy token
    kind: secret
    keywords: [acme_]
    patterns: ['(?P<secret>acme_[a-z0-9]{12})']
    examples:
      positive: ['token = acme_abcdef123456']
      negative: ['token = acme_short']
"""


def _error(text: str) -> RuleError:
    with pytest.raises(RuleError) as info:
        parse_rule_file(text, "custom.yaml")
    return info.value


def test_misspelt_field_names_file_rule_field_and_hint() -> None:
    error = _error(GOOD_RULE.replace("keywords:", "keyword:"))
    assert (error.file, error.rule, error.field) == ("custom.yaml", "acme-token", "keyword")
    assert "did you mean 'keywords'" in str(error)


def test_bad_regex_names_the_field() -> None:
    error = _error(GOOD_RULE.replace("(?P<secret>acme_[a-z0-9]{12})", "(?P<secret>acme_[a-z"))
    assert error.field == "patterns" and error.rule == "acme-token"
    assert "invalid regular expression" in str(error)


def test_pattern_without_secret_group_is_rejected() -> None:
    error = _error(GOOD_RULE.replace("(?P<secret>acme_[a-z0-9]{12})", "acme_[a-z0-9]{12}"))
    assert error.field == "patterns" and "(?P<secret>" in str(error)


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("kind: secret", "kind: password", "kind"),
        ("description: ACME deploy token", "description: ''", "description"),
        ("    examples:\n      positive: ['token = acme_abcdef123456']\n", "    examples:\n", "examples.positive"),
        ("kind: secret\n", "kind: secret\n    near: {kind: key-id, lines: 99, patterns: ['(?P<secret>x)']}\n", "near.lines"),
        ("kind: secret\n", "kind: secret\n    min-entropy: high\n", "min-entropy"),
        ("kind: secret\n", "kind: secret\n    require: [uppercase]\n", "require"),
    ],
)
def test_each_field_is_validated(old: str, new: str, field: str) -> None:
    assert old in GOOD_RULE
    assert _error(GOOD_RULE.replace(old, new)).field == field


def test_invalid_yaml_names_line() -> None:
    error = _error("rules:\n  - id: [unclosed\n")
    assert "not valid YAML" in str(error) and error.file == "custom.yaml"


def test_duplicate_rule_id_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD_RULE)
    (tmp_path / "b.yaml").write_text(GOOD_RULE)
    with pytest.raises(RuleError, match="duplicate rule id"):
        load_ruleset([tmp_path])


def test_custom_rule_file_adds_a_rule(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text(GOOD_RULE)
    ruleset = load_ruleset([tmp_path / "acme.yaml"])
    found = detect(b"deploy: acme_abcdef123456\n", ruleset)
    assert [m.rule_id for m in found] == ["acme-token"]


def test_cli_reports_broken_rule_file_with_exit_2(tmp_path: Path) -> None:
    rules = tmp_path / "broken.yaml"
    rules.write_text(GOOD_RULE.replace("patterns:", "patern:"))
    result = run_keysweep("scan", "--no-history", "--rules", rules, tmp_path)
    assert result.returncode == 2
    assert "broken.yaml" in result.stderr and "acme-token" in result.stderr and "'patern'" in result.stderr
    assert "did you mean 'patterns'" in result.stderr and "Traceback" not in result.stderr


def test_cli_missing_rule_path_exits_2(tmp_path: Path) -> None:
    result = run_keysweep("scan", "--no-history", "--rules", tmp_path / "nope.yaml", tmp_path)
    assert result.returncode == 2 and "nope.yaml" in result.stderr


def test_rule_file_that_is_not_utf8_exits_2(tmp_path: Path) -> None:
    rules = tmp_path / "latin1.yaml"
    rules.write_bytes(b"rules:\n  - id: caf\xe9\n")
    result = run_keysweep("scan", "--no-history", "--rules", rules, tmp_path)
    assert result.returncode == 2 and "latin1.yaml" in result.stderr and "cannot be read" in result.stderr


def test_an_error_quoting_a_rule_file_masks_what_looks_like_a_key(tmp_path: Path) -> None:
    """A rule file's broken pattern holding a key ID or a secret-like value is quoted in the
    error, masked: an error message is output too."""
    keys = KeySet.generate()
    rules = tmp_path / "bad.yaml"
    rules.write_text("version: 1\nrules:\n  - id: bad\n    description: d\n    kind: key-id\n"
                     f"    patterns: ['(?P<secret>{keys.key_id}[', '{keys.secret}']\n")
    result = run_keysweep("scan", "--no-progress", "--rules", rules, tmp_path)
    assert result.returncode == 2 and "invalid regular expression" in result.stderr, result.stderr
    assert keys.key_id not in result.stderr and keys.key_id[:8] + "…" in result.stderr
    from scanner.errors import bounded

    assert keys.secret not in bounded(f"x {keys.secret} y") and "********" in bounded(f"x {keys.secret} y")
    assert bounded("a_plain_identifier_of_more_than_thirty_characters") == \
        repr("a_plain_identifier_of_more_than_thirty_characters")


def test_a_rule_files_description_and_help_never_print_a_key(tmp_path: Path) -> None:
    """Rule texts go into every SARIF and JSON report: a key pair written into them (by a
    repository's own rule file) is masked there, as in error messages."""
    keys = KeySet.generate()
    pair = f"aws_access_key_id={keys.key_id} aws_secret_access_key={keys.secret}"
    rules = tmp_path / "r.yaml"
    rules.write_text("version: 1\nrules:\n  - id: tok\n    kind: bearer-token\n"
                     f"    description: 'leaked {pair}'\n    help: 'see {pair}'\n"
                     "    patterns: ['(?P<secret>TOK[a-z0-9]{20})']\n    examples: {positive: [TOKabcdefghij0123456789]}\n")
    (tmp_path / "scan").mkdir()
    (tmp_path / "scan" / "t.txt").write_text("TOKabcdefghij0123456789\n")
    for fmt in ("json", "jsonl", "sarif", "text"):
        result = run_keysweep("scan", "--no-progress", "--rules", rules, "--format", fmt, tmp_path / "scan")
        assert result.returncode == 1, result.stderr
        assert keys.key_id not in result.stdout and keys.secret not in result.stdout, fmt
    assert keys.key_id[:8] + "…" in run_keysweep("scan", "--no-progress", "--rules", rules, "--format", "sarif",
                                                  tmp_path / "scan").stdout


def test_an_enormous_pattern_or_rule_file_is_refused_before_compiling(tmp_path: Path) -> None:
    # A repository's rule file is hostile input: a 4.8 MB alternation took 44 s and 1.6 GB to
    # compile before any time budget applied.
    from scanner.engine.rules import MAX_PATTERN_CHARS, MAX_RULE_FILES_BYTES

    alternation = "|".join(f"w{i:06d}" for i in range(MAX_PATTERN_CHARS // 7 + 10))
    error = _error(GOOD_RULE.replace("(?P<secret>acme_[a-z0-9]{12})", f"(?P<secret>(?:{alternation})z)"))
    assert (error.file, error.rule, error.field) == ("custom.yaml", "acme-token", "patterns")
    assert "at most 16,384" in str(error)
    big = tmp_path / "big.yaml"
    big.write_text(GOOD_RULE + "# " + "x" * MAX_RULE_FILES_BYTES + "\n")
    started = time.monotonic()
    result = run_keysweep("scan", "--no-history", "--rules", big, tmp_path)
    assert result.returncode == 2 and "big.yaml" in result.stderr and "at most" in result.stderr
    assert time.monotonic() - started < 30
    # Many files each within the limits: their total is bounded too.
    folder = tmp_path / "many"
    folder.mkdir()
    for index in range(40):
        (folder / f"r{index:02d}.yaml").write_text(GOOD_RULE.replace("acme-token", f"acme-token-{index}")
                                                   + "# " + "x" * (MAX_RULE_FILES_BYTES // 20) + "\n")
    result = run_keysweep("scan", "--no-history", "--rules", folder, tmp_path)
    assert result.returncode == 2 and "in all" in result.stderr and "many" in result.stderr
    config = tmp_path / "repo"
    config.mkdir()
    (config / ".keysweep.yaml").write_text(f"allow-values: ['{alternation}']\n")
    result = run_keysweep("scan", "--no-history", config)
    assert result.returncode == 2 and "allow-values" in result.stderr and "at most" in result.stderr
    (config / ".keysweep.yaml").write_text("allow-values: [" + ", ".join(f"'x{i}'" for i in range(300)) + "]\n")
    result = run_keysweep("scan", "--no-history", config)
    assert result.returncode == 2 and "at most 256" in result.stderr
    (config / ".keysweep.yaml").write_text("allow-values: ['x']\n# " + "y" * 300_000 + "\n")
    result = run_keysweep("scan", "--no-history", config)
    assert result.returncode == 2 and "configuration file is at most" in result.stderr
    # 45 characters that regex would spell out to a million atoms (300 MB) when it compiles.
    (config / ".keysweep.yaml").write_text("allow-values: ['x(?:(?:[a-y]{100}){100}){100}']\n")
    result = run_keysweep("scan", "--no-history", config)
    assert result.returncode == 2 and "allow-values" in result.stderr and "unrolled" in result.stderr


def test_a_rule_file_pattern_hyperscan_would_unroll_for_seconds_is_not_prefiltered() -> None:
    # (?:[a-z]{1000}){100} took Hyperscan 14 s to compile, in every worker (regex now refuses it at
    # load, past 50,000 atoms): such a pattern of a rule file runs on every text instead, found the same.
    from scanner.engine import native

    if not native.available():
        pytest.skip("no hyperscan wheel here")
    rules = parse_rule_file(GOOD_RULE.replace("(?P<secret>acme_[a-z0-9]{12})", "(?P<secret>acme_(?:[a-z0-9]{1000}){40})"),
                            "custom.yaml")
    ruleset = load_ruleset()
    combined = type(ruleset)(ruleset.rules + tuple(rules))
    started = time.monotonic()
    prefilter = native.Prefilter(combined)
    assert time.monotonic() - started < 10
    assert "acme-token" in prefilter.always
    assert native.unrolled_size(b"(?:(?:(?:[a-z]{16}x){16}y){16}z){16}") > native.MAX_UNROLLED
    assert all(native.unrolled_size(native.widen_repeats(p.pattern)) <= native.MAX_UNROLLED
               for r in ruleset.rules for p in r.patterns)  # a rule file like the built-in ones is prefiltered


def _prefilter_of_many(pattern: str, example: str, count: int) -> tuple[Any, float, set[str], RuleSet]:
    """The prefilter for the built-in rules and ``count`` rules of one shape (``{n}``: each
    one's number): it, the seconds it took to build, the rules' ids, and the rule set."""
    from scanner.engine import native

    if not native.available():
        pytest.skip("no hyperscan wheel here")
    text = "version: 1\nrules:\n" + "".join(
        f"  - id: r-{n}\n    description: d\n    kind: secret\n    patterns: ['{pattern.format(n=n)}']\n"
        f"    examples: {{positive: ['{example.format(n=n)}']}}\n" for n in range(count))
    custom = parse_rule_file(text, "many.yaml")
    builtin = load_ruleset()
    combined = RuleSet(builtin.rules + tuple(custom))
    started = time.monotonic()
    prefilter = native.Prefilter(combined)
    return prefilter, time.monotonic() - started, {rule.id for rule in custom}, combined


def test_rule_files_with_many_patterns_just_under_the_unroll_limit_are_prefiltered_only_so_far() -> None:
    # 1,500 patterns each just under a per-pattern bound of 2,000 took every process 70 s and
    # 1.3 GB to compile: the rule files' patterns together are bounded too; past that they run
    # on every text.
    from scanner.engine import native
    from scanner.engine.detect import detect

    prefilter, seconds, ids, combined = _prefilter_of_many("(?P<secret>q{n:03d}a(?:z|[a-y]{{1900}}))", "q{n:03d}az", 60)
    assert seconds < 10
    unfiltered = ids & prefilter.always
    assert len(ids) - len(unfiltered) <= native.MAX_UNROLLED_RULE_FILES // native.MAX_UNROLLED
    assert len(unfiltered) >= 49
    # Findings are the same: a rule past the bound runs on every text.
    combined.health.prefilter = prefilter
    assert "r-59" in {m.rule_id for m in detect(b"key q059az\n" + b"x" * (5 << 20), combined)}


def test_rule_file_patterns_costly_to_hyperscan_are_not_prefiltered() -> None:
    # Hyperscan's cost follows a pattern's shape: eleven of these (1,810 atoms each, under the
    # per-pattern bound of the time) took 24 s to compile in every process, each refused at last.
    prefilter, seconds, ids, _ = _prefilter_of_many("(?P<secret>q{n:02d}(?:z|(?:[ab]*a[ab]{{15}}){{100}}))", "q{n:02d}z", 11)
    assert seconds < 6
    assert ids <= prefilter.always


@pytest.mark.parametrize("pattern", ["(?P<secret>qz(?:z|(?:(?:[a-y]{100}){100}){100}))", "(?P<secret>q[a-y]{1000000})"])
def test_a_pattern_that_would_unroll_to_gigabytes_is_refused_before_compiling(pattern: str) -> None:
    # regex spells counted repeats out at ~300 bytes an atom: 40 such 45-character patterns in a
    # 6 KB rule file took 6 GB and 27 s to load.
    started = time.monotonic()
    error = _error(GOOD_RULE.replace("(?P<secret>acme_[a-z0-9]{12})", pattern))
    assert time.monotonic() - started < 4
    assert (error.file, error.rule, error.field) == ("custom.yaml", "acme-token", "patterns")
    assert "counted repeats are unrolled" in str(error)


def test_rule_files_whose_patterns_together_would_unroll_too_far_are_refused(tmp_path: Path) -> None:
    text = "version: 1\nrules:\n" + "".join(
        f"  - id: r{n}\n    description: d\n    kind: secret\n    patterns: ['(?P<secret>q{n:02d}(?:z|(?:[a-y]{{100}}){{400}}))']\n"
        f"    examples: {{positive: ['q{n:02d}z']}}\n" for n in range(6))
    (tmp_path / "many.yaml").write_text(text)
    with pytest.raises(RuleError) as info:
        load_ruleset([tmp_path / "many.yaml"])
    assert info.value.rule == "r4" and "together" in str(info.value)  # 5 x 40,000 atoms passes 200,000
    # The command line's rule files have their own: a configuration's cannot make them fail.
    (tmp_path / "four.yaml").write_text(text.split("  - id: r4")[0])
    (tmp_path / "given.yaml").write_text(text.split("  - id: r1")[0].replace("id: r0", "id: given").replace("q00", "q99"))
    loaded = load_ruleset([tmp_path / "four.yaml"], given=[tmp_path / "given.yaml"])
    assert {"r3", "given"} <= {rule.id for rule in loaded.rules}


def test_verbose_mode_and_comments_are_refused_in_rule_files() -> None:
    for pattern in ["(?x)(?P<secret>zq(?:[a-z]{1000}) {100})", "(?P<secret>zq(?:[a-z]{10})(?#c){10})"]:
        error = _error(GOOD_RULE.replace("(?P<secret>acme_[a-z0-9]{12})", pattern))
        assert error.field == "patterns" and "verbose mode" in str(error)


@pytest.mark.parametrize("pattern", ["(?P<secret>q?)", "(?s)(?P<secret>.*)", "x?(?P<secret>[a-z]*)",
                                     "(?<=x)(?P<secret>a*)", "\\b(?P<secret>[A-Z]*)\\b"])
def test_a_pattern_matching_the_empty_string_is_refused(pattern: str) -> None:
    # It matches at every position of every text: (?P<secret>q?) made a 23 MiB scan 35x slower.
    error = _error(GOOD_RULE.replace("(?P<secret>acme_[a-z0-9]{12})", pattern))
    assert (error.file, error.rule, error.field) == ("custom.yaml", "acme-token", "patterns")
    assert "matches the empty string" in str(error)


def test_a_rule_folder_entry_that_is_no_regular_file_is_never_read(tmp_path: Path) -> None:
    # A committed symlink to /dev/zero named evil.yaml was read until memory ran out.
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "evil.yaml").symlink_to("/dev/zero")
    os.mkfifo(folder / "fifo.yaml")
    started = time.monotonic()
    result = run_keysweep("scan", "--no-history", "--rules", folder, tmp_path, timeout=60)
    assert result.returncode == 2 and "holds no .yaml" in result.stderr, result.stderr
    (folder / "good.yaml").write_text(GOOD_RULE)
    assert run_keysweep("scan", "--no-history", "--rules", folder, tmp_path / "rules" / "good.yaml").returncode == 1
    assert time.monotonic() - started < 30


def test_verbose_patterns_are_not_estimated_small() -> None:
    # Under (?x) the space between a group and its repeat is no atom: "(?:[a-z]{1000}) {100}"
    # read as small went to Hyperscan, 21 s to compile.
    from scanner.engine import native

    assert native.unrolled_size(b"(?x)(?P<secret>zq(?:[a-z]{1000}) {100})") > native.MAX_UNROLLED
    assert native.unrolled_size(b"(?P<secret>zq(?:[a-z]{1000})(?#c){100})") > native.MAX_UNROLLED
    assert native.unrolled_size(b"(?P<secret>zq(?:[a-z]{10}){10})") <= native.MAX_UNROLLED


def test_too_many_keywords_are_refused() -> None:
    # Keywords are looked for in every text outside any pattern's clock: 40,000 took 160 s a MiB.
    many = "[" + ", ".join(f"e{i:05d}" for i in range(65)) + "]"
    error = _error(GOOD_RULE.replace("keywords: [acme_]", f"keywords: {many}"))
    assert (error.file, error.rule, error.field) == ("custom.yaml", "acme-token", "keywords")
    assert "at most 64" in str(error)


def test_probing_for_empty_values_is_bounded_for_the_whole_load() -> None:
    # Each probe may take up to 50 ms; thousands of patterns in 256 KiB would be minutes. Past
    # the load's budget only the empty text is tried.
    import regex

    from scanner.engine.rules import ProbeBudget, _matches_empty

    context_only = regex.compile(rb"(?<=x)(?P<secret>a*)")
    assert _matches_empty(context_only, ProbeBudget())
    spent = ProbeBudget(0.0)
    assert not _matches_empty(context_only, spent) and spent.left == 0.0
    assert _matches_empty(regex.compile(rb"(?P<secret>q?)"), spent)  # the empty text is always tried
