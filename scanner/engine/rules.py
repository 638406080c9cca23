"""Rule files: YAML parsed once into validated, typed Rule objects.

Nothing named in a rule file is imported or executed: a rule is a set of regular
expressions, keywords and value checks, and its own examples.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from scanner.engine.lazyregex import REGEX_VERSION0, lazy_compile
from scanner.errors import RuleError, bounded, mask_credentials
from scanner.secret import SecretKind

if TYPE_CHECKING:
    import regex

CharClass = Literal["upper", "lower", "digit", "symbol", "digit-or-symbol"]
KINDS: tuple[SecretKind, ...] = ("key-id", "secret", "session-token", "smtp-password", "bearer-token")
CHAR_CLASSES: tuple[CharClass, ...] = ("upper", "lower", "digit", "symbol", "digit-or-symbol")

RULE_FIELDS = (
    "id", "description", "kind", "keywords", "value", "patterns", "near", "min-entropy",
    "require", "allow", "examples", "help",
)
VALUE_FIELDS = ("charset", "min-length", "max-length", "context-lines")
NEAR_FIELDS = ("kind", "lines", "patterns")
EXAMPLE_FIELDS = ("positive", "negative")
FILE_FIELDS = ("version", "rules")


@dataclass(frozen=True, slots=True)
class Near:
    """Patterns tried only within ``lines`` lines of a finding of ``kind`` (no keyword needed)."""

    kind: SecretKind
    lines: int
    patterns: tuple[regex.Pattern[bytes], ...]


@dataclass(frozen=True, slots=True)
class ValueShape:
    """What the secret itself looks like: a run of ``charset`` characters of a given length.

    A rule with a value shape is driven by its values, not its keywords: the engine finds
    every run of the charset in one fast pass, and only around a run of the right length
    does it look for the rule's keywords and patterns (within ``context_lines`` lines above).
    """

    charset: str  # the inside of a regex character class, e.g. "A-Za-z0-9/+"
    table: bytes  # bytes.translate table: 1 for a charset byte, 0 otherwise
    min_length: int
    max_length: int | None
    context_lines: int


# Whose allowance a rule file's rule spends (detect._within_allowance): the rule files a
# configuration names share one, those given with --rules have their own, so a repository's
# configuration cannot spend the operator's.
RulePool = Literal["configuration", "command line"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One validated rule: what it finds, how, and its own examples."""

    id: str
    description: str
    help: str
    kind: SecretKind
    keywords: tuple[bytes, ...]  # lower-case; a rule runs only if one occurs (case-insensitive)
    value: ValueShape | None
    patterns: tuple[regex.Pattern[bytes], ...]
    near: Near | None
    min_entropy: float
    require: frozenset[CharClass]
    allow: tuple[regex.Pattern[bytes], ...]
    positive_examples: tuple[str, ...]
    negative_examples: tuple[str, ...]
    file: str
    # One of the package's own rules: its allow patterns are checked without regex's clock
    # (setting it up costs ~2 us a call, three calls per value: a sixth of a line of 50,000
    # key IDs). Their linear time is a test (tests/test_attack_engine.py); a rule file from
    # anywhere else is hostile input and keeps the clock.
    builtin: bool = False
    pool: RulePool = "configuration"


# Why a rule was switched off, beside its own pattern running out of time (""): its charge ran
# the rule files' rules past their time allowance ("time") or their values ("values"), or
# they had spent it before it ran ("shared"). Rule ids hold no ':', so the event says both.
SwitchOffCause = Literal["", "time", "values", "shared"]


class RuleHealth:
    """Per-process state of a rule set in use.

    ``disabled``: rules whose patterns ran out of time in this process, off for the rest of
    the scan; ``events`` holds those not yet reported (the source that ran the text takes
    them, to report where it happened; a worker process sends them back with its results).
    ``prefilter``: the native prefilter once built (None: not yet; False: not used), and
    ``bytes_seen`` before it is worth building. The prefilter is never pickled: each worker
    process builds its own. ``verdicts``: whether a value passed its rule's value checks
    (require, allow, entropy), by rule and value: a history holds the same values in every
    version of a file (aws-cli: 23,676 checks of 399 values). Never pickled either.
    """

    def __init__(self) -> None:
        self.disabled: set[str] = set()
        self.events: list[str] = []
        self.prefilter: Any = None
        self.bytes_seen = 0
        self.verdicts: dict[str, dict[Hashable, bool]] = {}  # a built-in rule's, by rule id, then value
        self.rule_file_verdicts: dict[Hashable, bool] = {}  # the rule files' rules', by (rule id, value)
        # Seconds the rule files' rules have spent in this process, and the bytes of text
        # scanned here: their allowance grows with them (detect._within_allowance).
        self.custom_spent: dict[str, float] = {}  # by pool (Rule.pool)
        self.text_bytes = 0
        self.custom_values: dict[str, int] = {}  # reported here, by pool (detect._rule_file_values)
        # A built-in rule's allow patterns as one stdlib pattern (combined_allow), by rule id;
        # None where they cannot be combined.
        self.allow_any: dict[str, re.Pattern[bytes] | None] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"disabled": set(self.disabled), "events": list(self.events)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]
        self.disabled = state["disabled"]
        self.events = state["events"]

    def timed_out(self, rule_id: str, cause: SwitchOffCause = "") -> None:
        """Switch ``rule_id`` off for the rest of the scan and record why (switched_off_messages)."""
        if rule_id not in self.disabled:
            self.disabled.add(rule_id)
            self.events.append(f"{cause}:{rule_id}" if cause else rule_id)

    def take(self) -> list[str]:
        events, self.events = self.events, []
        return events


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The rules of one scan, with their per-process state (health)."""

    rules: tuple[Rule, ...]
    health: RuleHealth = field(default_factory=RuleHealth, compare=False, repr=False)
    # Whether inline allow comments (keysweep:allow and the like) hide what they mark. Off for
    # scans of untrusted changes (--no-config): a change could mark its own key.
    inline_allow: bool = True
    # The built-in rules' ids: where they and a rule file's rules report the same kind, the
    # built-in findings are trusted first (pairing, the same value at one place).
    builtin_ids: frozenset[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "builtin_ids", frozenset(rule.id for rule in self.rules if rule.builtin))

    def by_id(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)


def safe_loader() -> Any:
    """libyaml's C loader when PyYAML was built with it: rule files load 3x faster.

    PyYAML is imported on first use (~15 ms): an installed keysweep reads its built-in rules
    from the JSON copies its wheel carries, so the pre-commit hook never imports it.
    """
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """Parse a YAML document from a repository, refusing anchors and aliases.

    Rule and configuration files are input from the repository being scanned: an alias can
    expand a few kilobytes into gigabytes (a "billion laughs" document), so the events are
    checked before anything is built. Raises ``yaml.YAMLError`` for bad YAML and
    ``YamlAliasError`` for an anchor or alias.
    """
    import yaml

    loader = safe_loader()
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            line = event.start_mark.line + 1 if event.start_mark is not None else 0
            raise YamlAliasError(line)
    return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader


class YamlAliasError(ValueError):
    def __init__(self, line: int) -> None:
        self.line = line
        super().__init__(f"YAML anchors and aliases (& and *) are not accepted (line {line}): "
                         "write each value out")


def __getattr__(name: str) -> Any:
    if name == "SAFE_LOADER":  # the module constant it used to be, still importable
        return safe_loader()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def builtin_rules_dir() -> Path:
    """The rule files shipped with keysweep (inside the wheel, or rules/ in a checkout)."""
    # The package's own folder (what importlib.resources.files gives for an installed
    # package), without importing importlib.resources and zipfile on every start-up.
    packaged = Path(__file__).resolve().parent.parent / "_rules"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent.parent / "rules"


def load_ruleset(extra: Sequence[Path] = (), builtin: bool = True, *, inline_allow: bool = True,
                 given: Sequence[Path] = ()) -> RuleSet:
    """Load the built-in rules, every rule file in ``extra`` (files or folders, a
    configuration's) and in ``given`` (the command line's: limits and an allowance of their own)."""
    files: list[Path] = []
    if builtin:
        files += sorted(builtin_rules_dir().glob("*.y*ml"))
    builtin_count = len(files)
    configured = _expand_rule_paths(extra)
    _check_custom_size(configured)
    files += configured
    given_from = len(files)
    files += _expand_rule_paths(given)
    _check_custom_size(files[given_from:])
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    probe = ProbeBudget()  # one for the configuration's rule files, one for those given
    for position, file in enumerate(files):
        if position == given_from:
            probe = ProbeBudget()
        twin = file.with_name(file.name + ".json")
        try:
            if position < builtin_count and twin.is_file():
                # Written from this YAML file when the wheel was built (hatch_build.py).
                parsed = parse_rule_document(json.loads(twin.read_text(encoding="utf-8")), str(file), lazy=True)
            else:
                parsed = parse_rule_file(_read_rule_file(file, custom=position >= builtin_count), str(file),
                                         lazy=position < builtin_count, probe=probe)
        except (OSError, UnicodeDecodeError) as exc:
            raise RuleError(str(file), None, None, f"cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
        if position >= given_from:
            parsed = [replace(rule, pool="command line") for rule in parsed]
        for rule in parsed:
            if rule.id in seen:
                raise RuleError(str(file), rule.id, "id", f"duplicate rule id (also in {seen[rule.id]})")
            seen[rule.id] = str(file)
            rules.append(rule)
    if not rules:
        raise RuleError(", ".join(map(str, files)) or "<none>", None, None, "no rules loaded")
    return RuleSet(tuple(rules), inline_allow=inline_allow)


def _expand_rule_paths(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = _rule_files_in(path)
            if not found:
                raise RuleError(str(path), None, None, "folder holds no .yaml or .yml rule file")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise RuleError(str(path), None, None, "no such rule file or folder")
    return files


def parse_rule_file(text: str, file: str, *, lazy: bool = False, probe: ProbeBudget | None = None) -> list[Rule]:
    """``lazy``: compile patterns on first use (built-in rules only: a user's rule file is
    checked whole when it loads, so a bad pattern is a usage error, not a failed scan)."""
    import yaml

    try:
        doc = load_yaml(text)
    except YamlAliasError as exc:
        raise RuleError(file, None, None, str(exc)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise RuleError(file, None, None, f"not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    return parse_rule_document(doc, file, lazy=lazy, probe=probe)


def parse_rule_document(doc: Any, file: str, *, lazy: bool = False, probe: ProbeBudget | None = None) -> list[Rule]:
    """Validate a parsed rule file (YAML, or the JSON copy of a built-in one).

    ``lazy``: the package's own rules, whose patterns are compiled when first used (most
    scans never need some of them) and are trusted (Rule.builtin)."""
    if not isinstance(doc, dict):
        raise RuleError(file, None, None, "expected a mapping with a 'rules' list")
    _check_keys(doc, FILE_FIELDS, file, None, None)
    if doc.get("version", 1) != 1:
        raise RuleError(file, None, "version", f"unsupported version {bounded(doc.get('version'))} (expected 1)")
    raw_rules = doc.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise RuleError(file, None, "rules", "expected a non-empty list of rules")
    probe = probe if probe is not None else ProbeBudget()
    return [_parse_rule(raw, file, index, lazy, probe) for index, raw in enumerate(raw_rules)]


def _parse_rule(raw: Any, file: str, index: int, lazy: bool, probe: ProbeBudget) -> Rule:
    if not isinstance(raw, dict):
        raise RuleError(file, f"#{index + 1}", None, "a rule must be a mapping")
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-]*", rule_id):
        raise RuleError(file, f"#{index + 1}", "id", "required: lower-case letters, digits and '-'")
    _check_keys(raw, RULE_FIELDS, file, rule_id, None)

    def fail(field: str, problem: str) -> RuleError:
        return RuleError(file, rule_id, field, problem)

    description = raw.get("description")
    if not isinstance(description, str) or not description.strip():
        raise fail("description", "required: one line saying what the rule finds")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise fail("kind", f"must be one of {', '.join(KINDS)}, not {bounded(kind)}")
    keywords = _str_list(raw.get("keywords", []), fail, "keywords")
    if len(keywords) > MAX_KEYWORDS or any(not 0 < len(keyword) <= MAX_KEYWORD_CHARS for keyword in keywords):
        # Each is looked for in every text, outside any pattern's clock (40,000: 160 s a MiB).
        raise fail("keywords", f"at most {MAX_KEYWORDS} keywords of 1 to {MAX_KEYWORD_CHARS} characters each")
    patterns_raw = _str_list(raw.get("patterns"), fail, "patterns")
    patterns = tuple(_compile(p, fail, "patterns", need_group=True, lazy=lazy, probe=probe) for p in patterns_raw)
    near: Near | None = None
    if "near" in raw:
        near_raw = raw["near"]
        if not isinstance(near_raw, dict):
            raise fail("near", "must be a mapping with 'kind', 'lines' and 'patterns'")
        _check_keys(near_raw, NEAR_FIELDS, file, rule_id, "near")
        if near_raw.get("kind") not in KINDS:
            raise fail("near.kind", f"must be one of {', '.join(KINDS)}")
        lines = near_raw.get("lines")
        if not isinstance(lines, int) or isinstance(lines, bool) or not 0 <= lines <= 50:
            raise fail("near.lines", "must be a whole number from 0 to 50")
        near_patterns = _str_list(near_raw.get("patterns"), fail, "near.patterns")
        if not near_patterns:
            raise fail("near.patterns", "required: at least one regular expression")
        near = Near(cast(SecretKind, near_raw["kind"]), lines,
                    tuple(_compile(p, fail, "near.patterns", need_group=True, lazy=lazy, probe=probe) for p in near_patterns))
    if not patterns and near is None:
        raise fail("patterns", "required: at least one regular expression (or a 'near' block)")
    value = _parse_value(raw["value"], file, rule_id, fail, lazy) if "value" in raw else None
    min_entropy = raw.get("min-entropy", 0.0)
    if not isinstance(min_entropy, (int, float)) or isinstance(min_entropy, bool) or not 0 <= min_entropy <= 8:
        raise fail("min-entropy", "must be a number of bits per character from 0 to 8")
    require = _str_list(raw.get("require", []), fail, "require")
    for item in require:
        if item not in CHAR_CLASSES:
            raise fail("require", f"unknown class {bounded(item)}; use {', '.join(CHAR_CLASSES)}{_hint(item, CHAR_CLASSES)}")
    allow = tuple(_compile(p, fail, "allow", need_group=False, lazy=lazy) for p in _str_list(raw.get("allow", []), fail, "allow"))
    examples = raw.get("examples", {})
    if not isinstance(examples, dict):
        raise fail("examples", "must be a mapping with 'positive' and 'negative' lists")
    _check_keys(examples, EXAMPLE_FIELDS, file, rule_id, "examples")
    positive = _str_list(examples.get("positive", []), fail, "examples.positive")
    negative = _str_list(examples.get("negative", []), fail, "examples.negative")
    if not positive:
        raise fail("examples.positive", "required: at least one text the rule must find")
    help_text = raw.get("help", "")
    if not isinstance(help_text, str):
        raise fail("help", "must be a string")
    return Rule(
        # Shown in every report (SARIF's rule list, JSON's description): a rule file's text
        # gets the masking error messages give quoted text, whatever the scan finds.
        id=rule_id, description=mask_credentials(description.strip()), help=mask_credentials(help_text.strip()),
        kind=cast(SecretKind, kind),
        keywords=tuple(k.lower().encode() for k in keywords), value=value, patterns=patterns, near=near,
        min_entropy=float(min_entropy), require=frozenset(cast(Iterable[CharClass], require)), allow=allow,
        positive_examples=tuple(positive), negative_examples=tuple(negative), file=file, builtin=lazy,
    )


MAX_CHARSET_CHARS = 512


def _charset_problem(charset: str) -> str | None:
    """Why ``charset`` is not the inside of one character class, or None. It is pasted
    between brackets: an unescaped ``]`` would close the class and let any pattern follow
    (one that spells out millions of atoms, past the limits ``patterns`` are held to), and
    an unescaped ``[`` opens a nested set."""
    if len(charset) > MAX_CHARSET_CHARS:
        return f"{len(charset):,} characters; at most {MAX_CHARSET_CHARS} (list ranges: 'A-Za-z0-9/+')"
    escaped = False
    for char in charset:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in "[]":
            return (f"an unescaped {char!r} in {bounded(charset)}: a charset is the inside of one character class, "
                    f"such as 'A-Za-z0-9/+' (write \\{char} for the character itself)")
    if escaped:
        return f"{bounded(charset)} ends with a lone backslash"
    for operator in ("--", "&&", "||", "~~"):
        if operator in charset:
            # regex's set operations (its VERSION1): read here as the characters themselves.
            return f"{bounded(charset)} holds {operator!r}: set operations are not read; list the characters and ranges"
    return None


def _parse_value(raw: Any, file: str, rule_id: str, fail: Any, builtin: bool) -> ValueShape:
    if not isinstance(raw, dict):
        raise fail("value", "must be a mapping with 'charset' and 'min-length'")
    _check_keys(raw, VALUE_FIELDS, file, rule_id, "value")
    charset = raw.get("charset")
    if not isinstance(charset, str) or not charset:
        raise fail("value.charset", "required: the inside of a character class, such as 'A-Za-z0-9/+'")
    if (problem := _charset_problem(charset)) is not None:
        raise fail("value.charset", problem)
    try:
        # A built-in charset is plain ASCII ranges, read alike by re (tests/test_allow_combined.py): the
        # hook never imports regex for it.
        char_class: re.Pattern[bytes] | regex.Pattern[bytes]
        if builtin:
            char_class = re.compile(f"[{charset}]".encode())
        else:
            import regex

            char_class = regex.compile(f"[{charset}]".encode())
    except Exception as exc:  # noqa: BLE001 - regex.error; ValueError or KeyError for flags it refuses
        raise fail("value.charset", f"invalid character class {bounded(f'[{charset}]')}: {bounded(str(exc))}") from None
    table = bytes(1 if char_class.fullmatch(bytes([i])) else 0 for i in range(256))
    if not any(table):
        # Values are runs of bytes: \p{Greek} or \N{...} name characters no single byte is.
        raise fail("value.charset", f"[{bounded(charset)}] matches no byte: a charset is read byte by byte "
                                    "(ASCII ranges such as 'A-Za-z0-9/+')")
    numbers: dict[str, int | None] = {}
    for field, default in (("min-length", None), ("max-length", None), ("context-lines", 2)):
        number = raw.get(field, default)
        if number is None and field == "min-length":
            raise fail("value.min-length", "required: the shortest value, a whole number from 8 to 4096")
        if number is not None and (not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= 65536):
            raise fail(f"value.{field}", "must be a whole number")
        numbers[field] = number
    min_length = numbers["min-length"]
    assert min_length is not None
    if min_length < 8:
        raise fail("value.min-length", "must be 8 or more (shorter values cannot be found by shape)")
    max_length = numbers["max-length"]
    if max_length is not None and max_length < min_length:
        raise fail("value.max-length", "must not be less than min-length")
    return ValueShape(charset, table, min_length, max_length, numbers["context-lines"] or 0)


def _str_list(value: Any, fail: Any, field: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail(field, "must be a string or a list of strings")
    return cast(list[str], value)


# A rule file comes from the repository being scanned: hostile input. Compiling a pattern
# costs ~330 bytes of memory and ~10 us per character (a 4.8 MB alternation: 44 s, 1.6 GB,
# before any time budget applies); the built-in patterns are under 1,000 characters.
MAX_PATTERN_CHARS = 16 * 1024
MAX_KEYWORDS = 64
MAX_KEYWORD_CHARS = 100
# All rule files besides the built-in ones, together: a folder of files each within the
# limits held 11 MB of patterns (76 s to compile, in every worker again). Ordinary custom
# rules are a few kilobytes.
MAX_RULE_FILES_BYTES = 256 * 1024
MAX_RULE_FILES = 256
MAX_RULE_FOLDER_ENTRIES = 10_000


def _rule_files_in(folder: Path) -> list[Path]:
    """The .yaml and .yml files under ``folder``, looking at no more than a bounded number of
    entries (a rules folder named by a repository can be its root, or /)."""
    found = []
    for seen, path in enumerate(folder.rglob("*")):
        if seen >= MAX_RULE_FOLDER_ENTRIES:
            raise RuleError(str(folder), None, None, f"more than {MAX_RULE_FOLDER_ENTRIES:,} entries to search for rule "
                                                     "files: name the rule files, or a folder holding only them")
        # Regular files only: a committed symlink to /dev/zero, or a FIFO, named *.yaml would
        # be read until memory ran out (or for good).
        if path.suffix in (".yaml", ".yml") and path.is_file():
            found.append(path)
    return sorted(found)


def _read_rule_file(file: Path, *, custom: bool) -> str:
    """A rule file's text; a custom one read no further than the total allowed (its size as
    stat tells it can be a device's 0, or change between the look and the read)."""
    if not custom:
        return file.read_text(encoding="utf-8")
    if not file.is_file():
        raise RuleError(str(file), None, None, "not a regular file")
    with open(file, "rb") as handle:
        data = handle.read(MAX_RULE_FILES_BYTES + 1)
    if len(data) > MAX_RULE_FILES_BYTES:
        raise RuleError(str(file), None, None, f"more than {MAX_RULE_FILES_BYTES:,} bytes; rule files besides the "
                                               "built-in ones are at most that in all")
    return data.decode("utf-8")


def _check_custom_size(files: Sequence[Path]) -> None:
    if len(files) > MAX_RULE_FILES:
        raise RuleError(str(files[MAX_RULE_FILES]), None, None, f"more than {MAX_RULE_FILES} rule files in all")
    total = 0
    for file in files:
        try:
            total += file.stat().st_size
        except OSError:
            continue  # reported when it is read
        if total > MAX_RULE_FILES_BYTES:
            raise RuleError(str(file), None, None, f"rule files besides the built-in ones are at most "
                                                   f"{MAX_RULE_FILES_BYTES:,} bytes in all, and this one takes them "
                                                   f"to {total:,} (compiling that much costs seconds per worker)")


def too_long(pattern: str) -> str | None:
    """Why ``pattern`` is refused for its length, or None."""
    if len(pattern) <= MAX_PATTERN_CHARS:
        return None
    return (f"regular expression of {len(pattern):,} characters; at most {MAX_PATTERN_CHARS:,} (compiling a longer one "
            "costs seconds and hundreds of MB): split it, or match a shorter shape")


def _compile(pattern: str, fail: Any, field: str, need_group: bool, lazy: bool = False,
             probe: ProbeBudget | None = None) -> regex.Pattern[bytes]:
    if (problem := too_long(pattern)) is not None:
        raise fail(field, problem)
    if lazy:
        # Built-in rules: compiled when first used (the hook's few files need few of them).
        return lazy_compile(pattern.encode(), REGEX_VERSION0)
    _check_atoms(pattern, fail, field, probe)
    import regex

    try:
        compiled = regex.compile(pattern.encode(), regex.VERSION0)
    except (RecursionError, OverflowError, MemoryError):
        raise fail(field, f"regular expression {bounded(pattern)} is nested too deeply or too large") from None
    except Exception as exc:  # noqa: BLE001 - regex.error; ValueError for (?u) on bytes; (?V1) against
        # VERSION0 is a ValueError in some releases of regex and a KeyError in others (2026.5.9)
        raise fail(field, f"invalid regular expression {bounded(pattern)}: {type(exc).__name__}: {exc}") from None
    if need_group and "secret" not in compiled.groupindex:
        raise fail(field, f"pattern {bounded(pattern)} needs a named group (?P<secret>...) around the value")
    if need_group and _matches_empty(compiled, probe if probe is not None else ProbeBudget()):
        # Every position of every text would be a match (a value is never empty).
        raise fail(field, f"pattern {bounded(pattern)} matches the empty string: make the value required "
                          "(+ or {1,} where it has * or ?)")
    return compiled


# regex spells a counted repeat out when it compiles, about 300 bytes an atom: a 45-character
# pattern of three nested {100} took 300 MB, and 40 of them in a 6 KB rule file 6 GB and 27 s.
# A rule file's pattern may spell out this many atoms, and a load's rule files this many
# together (the configuration's and the command line's each), estimated before compiling.
MAX_PATTERN_ATOMS = 50_000
MAX_RULE_FILE_ATOMS = 200_000


def unrolled_atoms(pattern: str) -> tuple[int, str | None]:
    """How many atoms ``pattern`` spells out once its counted repeats are unrolled, and why it
    is refused for that (None: it is not). For a pattern from a rule or configuration file."""
    from scanner.engine.native import VERBOSE_OR_COMMENT, unrolled_size

    source = pattern.encode()
    if VERBOSE_OR_COMMENT.search(source):
        # Its size cannot be told before compiling: the space between a group and its repeat,
        # or a comment holding a '[' or a ')', would be misread.
        return 0, (f"pattern {bounded(pattern)} uses verbose mode (?x) or a (?#...) comment, which rule and "
                   "configuration files do not accept: write it without them")
    atoms = unrolled_size(source)
    if atoms > MAX_PATTERN_ATOMS:
        return atoms, (f"pattern {bounded(pattern)} spells out about {atoms:,} characters and classes once its "
                       f"counted repeats are unrolled; at most {MAX_PATTERN_ATOMS:,} (compiling costs ~300 bytes "
                       "each): use smaller counts")
    return atoms, None


TOO_MANY_ATOMS = (f"the patterns spell out more than {MAX_RULE_FILE_ATOMS:,} characters and classes together once "
                  "their counted repeats are unrolled (compiling costs ~300 bytes each): use smaller counts, or fewer")


def _check_atoms(pattern: str, fail: Any, field: str, probe: ProbeBudget | None) -> None:
    atoms, problem = unrolled_atoms(pattern)
    if problem is not None:
        raise fail(field, problem)
    if probe is not None:
        probe.atoms_left -= atoms
        if probe.atoms_left < 0:
            raise fail(field, f"the rule files' {TOO_MANY_ATOMS} rules")


# Every printable ASCII character and the common white space, twice: where a pattern's value
# can be empty after some context ((?<=x)(?P<secret>a*)), it is empty somewhere in here.
_EMPTY_PROBE = bytes(range(32, 127)) * 2 + b"\t\n\r\n" + bytes(range(32, 127))


class ProbeBudget:
    """The seconds one load of rule files may spend probing patterns for empty values: 2,800
    patterns in 256 KiB of rule files, each allowed its own, would be minutes. Past it only the
    empty text is tried (the scan's own budgets hold the rest)."""

    def __init__(self, seconds: float = 1.0) -> None:
        self.left = seconds
        self.atoms_left = MAX_RULE_FILE_ATOMS  # what the patterns may spell out together (see _compile)


def _matches_empty(compiled: regex.Pattern[bytes], probe: ProbeBudget) -> bool:
    if compiled.fullmatch(b"") is not None:
        return True
    if probe.left <= 0:
        return False
    began = time.perf_counter()
    try:
        return any(match.start("secret") == match.end("secret")
                   for match in compiled.finditer(_EMPTY_PROBE, overlapped=True, timeout=min(0.05, probe.left)))
    except (TimeoutError, MemoryError, RecursionError):
        return False  # the budgets at scan time hold such a pattern
    finally:
        probe.left -= time.perf_counter() - began


def combined_allow(sources: Sequence[bytes]) -> re.Pattern[bytes] | None:
    """The allow patterns of a built-in rule as one pattern of the standard ``re`` module,
    which matches where any of them matches; None when they cannot be put together.

    Per value, three ``regex`` searches of a 20-byte key ID cost ~9 us and this one ~2.4 us
    (a line of 50,000 key IDs checks 50,000 values). Built-in patterns only: ``re`` has no
    clock, and its syntax is the subset the built-in files keep to (tests/test_allow_combined.py
    compares the verdicts with the separate patterns'). A leading ``(?flags)`` becomes a
    scoped group; numbered back-references are shifted past the groups before them.
    """
    parts: list[bytes] = []
    groups = 0
    try:
        for source in sources:
            flags = _LEADING_FLAGS.match(source)
            body = source[flags.end():] if flags else source
            shifted = _shift_backreferences(body, groups)
            parts.append(b"(?%s:%s)" % (flags.group(1), shifted) if flags else b"(?:%s)" % shifted)
            groups += re.compile(body).groups
        return re.compile(b"|".join(parts)) if parts else None
    except (re.error, ValueError, OverflowError, RecursionError):
        return None


_LEADING_FLAGS = re.compile(rb"\(\?([imsx]+)\)")


def _shift_backreferences(source: bytes, offset: int) -> bytes:
    """``source`` with each numbered back-reference (``\\1``..``\\9`` outside a character
    class) moved up by ``offset``; anything the reading is unsure of raises ValueError."""
    if not offset:
        return source
    out = bytearray()
    index, inside = 0, False
    while index < len(source):
        byte = source[index]
        if byte == 0x5C:  # backslash
            following = source[index + 1 : index + 2]
            if following.isdigit() and not inside:
                if source[index + 2 : index + 3].isdigit() or following == b"0":
                    raise ValueError("a two-digit back-reference or an octal escape")
                out += b"\\%d" % (int(following) + offset)
            else:
                out += source[index : index + 2]
            index += 2
            continue
        if byte == 0x5B and not inside:  # [
            inside = True
        elif byte == 0x5D and inside:  # ]
            inside = False
        elif source.startswith(b"(?P=", index):
            raise ValueError("a named back-reference")
        out.append(byte)
        index += 1
    return bytes(out)


def _check_keys(mapping: Mapping[Any, Any], allowed: Sequence[str], file: str, rule: str | None, parent: str | None) -> None:
    for key in mapping:
        if key not in allowed:
            field = f"{parent}.{key}" if parent else str(key)
            raise RuleError(file, rule, field, f"unknown field{_hint(str(key), allowed)}")


def _hint(word: str, choices: Sequence[str]) -> str:
    import difflib

    if len(word) > 64:  # difflib's cost grows with the square of the length
        return ""
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _rule_file(ruleset: RuleSet | None, rule_id: str) -> str:
    try:
        return ruleset.by_id(rule_id).file if ruleset is not None else "?"
    except KeyError:
        return "?"


def _whose(ruleset: RuleSet | None, rule_id: str) -> str:
    """The rule files sharing ``rule_id``'s allowance, in words."""
    try:
        pool = ruleset.by_id(rule_id).pool if ruleset is not None else "configuration"
    except KeyError:
        pool = "configuration"
    return "the rule files given with --rules" if pool == "command line" else "the configuration's rule files"


def timeout_message(ruleset: RuleSet | None, rule_id: str, where: str) -> str:
    """Why a scan is incomplete: a rule's pattern ran past its time budget."""
    return (f"rule {rule_id!r} ({_rule_file(ruleset, rule_id)}) ran past its time budget on {where} and was disabled "
            "for the rest of the scan: its pattern backtracks catastrophically, or its matches overlap without end "
            "(a long repeat such as .* or {20,} matched again from every position); fix it, or remove the rule")


SHARED_NAMED = 5  # rules named in the one message for those switched off by a spent allowance


def switched_off_messages(ruleset: RuleSet | None, events: Iterable[tuple[str, str]]) -> list[str]:
    """The errors for rules switched off during a scan, from (event, where) pairs
    (RuleHealth.timed_out): one message a rule (every worker process switches a rule off in its
    own), and one for all those switched off because the rule files' rules had spent their
    allowance before they ran, so the rule that spent it is the one named as its cause."""
    first: dict[str, tuple[str, str]] = {}  # rule id -> (cause, where)
    for event, where in events:
        cause, _, rule_id = event.rpartition(":")
        if rule_id not in first or (first[rule_id][0] == "shared" and cause != "shared"):
            first[rule_id] = (cause, where)
    messages = []
    shared = []
    for rule_id, (cause, where) in first.items():
        named = f"rule {rule_id!r} ({_rule_file(ruleset, rule_id)})"
        whose = _whose(ruleset, rule_id)
        if cause == "time":
            messages.append(f"{whose} ran past the time a scan allows their rules on {where}, while {named} ran "
                            "(its keywords, its values' checks or its pattern): all their rules are switched off "
                            "for the rest of the scan; fix that rule, or remove it")
        elif cause == "values":
            messages.append(f"{whose} reported more values than a scan allows their rules on {where}, when {named} "
                            "did: it, and any of their rules reporting more, is switched off for the rest of the "
                            "scan; a rule matching far too much text is the likely cause: fix it, or remove it")
        elif cause == "shared":
            shared.append(named)
        else:
            messages.append(timeout_message(ruleset, rule_id, where))
    if shared:
        more = f" and {len(shared) - SHARED_NAMED} more" if len(shared) > SHARED_NAMED else ""
        messages.append(f"{len(shared)} more rule(s) from rule files were switched off, the allowance they share "
                        f"with the rule named above being spent: {', '.join(shared[:SHARED_NAMED])}{more}")
    return messages
