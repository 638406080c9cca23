"""Project configuration: ``.keysweep.yaml`` at the repository root, or ``[tool.keysweep]``
in ``pyproject.toml``. Parsed once into a typed Config; errors name the file, the key and,
for a misspelt key, the closest valid one. Command-line flags win over the file."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from scanner.engine.lazyregex import lazy_compile
from scanner.engine.rules import MAX_RULE_FILE_ATOMS, TOO_MANY_ATOMS, too_long, unrolled_atoms
from scanner.errors import ConfigError, bounded

if TYPE_CHECKING:
    import regex

CONFIG_FILE = ".keysweep.yaml"
KEYS = ("rules", "exclude", "allow-values", "max-file-size", "format", "baseline")
FORMATS = ("text", "json", "jsonl", "sarif")


@dataclass(frozen=True)
class Config:
    """A repository's keysweep settings (.keysweep.yaml or [tool.keysweep])."""

    source: Path | None = None
    rules: tuple[Path, ...] = ()
    exclude: tuple[str, ...] = ()
    allow_values: tuple[regex.Pattern[str], ...] = ()
    max_file_size: int | None = None
    format: str | None = None
    baseline: Path | None = None


MAX_SIZE = 1 << 40
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
# Digits, an optional fraction only with a unit (1.5m, not 1.5 bytes), and an optional unit.
_SIZE = lazy_compile(r"(?i)(\d{1,15})(?:(\.\d{1,6})?\s*([kmg])(?:i?b)?|\s*b?)")


def parse_size(text: str | int) -> int:
    """A size such as 1000000, 512k, 25m or 1.5g, in bytes. ValueError for anything else
    (booleans, fractions of a byte, inf, nan, negative numbers)."""
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise ValueError("not a size")
    if isinstance(text, int):
        size = text
    else:
        match = _SIZE.fullmatch(text.strip())
        if match is None:
            raise ValueError("not a size")
        whole, fraction, unit = match.group(1), match.group(2) or "", (match.group(3) or "").lower()
        size = int(float(whole + fraction) * _SIZE_UNITS[unit]) if fraction else int(whole) * _SIZE_UNITS[unit]
    if size > MAX_SIZE:
        # A YAML integer has no bound: 10**20 would reach file.read() and overflow there.
        raise ValueError("larger than 1 TiB")
    return size


def find_config(root: Path) -> Path | None:
    folder = root if root.is_dir() else root.parent
    candidate = folder / CONFIG_FILE
    if candidate.is_file():
        return candidate
    pyproject = folder / "pyproject.toml"
    try:
        if not pyproject.is_file():
            return None
        if pyproject.is_symlink() and not pyproject.resolve().is_relative_to(folder.resolve()):
            return None  # a link out of the repository (a host's file): not read, not a configuration
        with open(pyproject, "rb") as handle:  # no more than a configuration may hold
            head = handle.read(MAX_CONFIG_BYTES + 1)
        if b"[tool.keysweep]" in head:
            return pyproject
    except (OSError, RuntimeError, ValueError):
        return pyproject  # unreadable: load_config names it

    return None


MAX_CONFIG_BYTES = 256 * 1024
MAX_ALLOW_VALUES = 256


def load_config(path: Path | None, *, confine: bool = False) -> Config:
    """``confine``: the file is a scanned repository's own (found, not given with --config):
    the rule and baseline files it names must be inside its folder. A pull request's
    configuration naming /etc/... or ../ had keysweep read host files and echo what it
    found there (a field's value, whether the file exists) into the job's log."""
    if path is None:
        return Config()
    if not path.is_file():
        raise ConfigError(f"{path}: no such configuration file")
    if confine:
        try:
            linked_out = not path.resolve().is_relative_to(path.parent.resolve())
        except (OSError, RuntimeError, ValueError):
            linked_out = True
        if linked_out:
            # Read, its keys would be echoed in the errors: a host file's first lines in a CI log.
            raise ConfigError(f"{path}: a link to a file outside the repository; not read (give it with --config)")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        # A repository's own file: its allow-values are compiled (a 3.8 MB one, 26 s).
        raise ConfigError(f"{path}: more than {MAX_CONFIG_BYTES:,} bytes; a configuration file is at most that")
    text = raw.decode("utf-8", errors="replace")
    if path.name == "pyproject.toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            import tomli as tomllib
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        tool = document.get("tool", {})
        if not isinstance(tool, dict):
            raise ConfigError(f"{path}: key 'tool': must be a table ([tool.keysweep] is read from it)")
        data = tool.get("keysweep", {})
        where = f"{path} [tool.keysweep]"
    else:
        import yaml  # here, not at start-up: most scans have no configuration file

        from scanner.engine.rules import YamlAliasError, load_yaml

        try:
            data = load_yaml(text)
        except YamlAliasError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
        where = str(path)
        if data is None:
            data = {}  # an empty file (or only comments) is an empty configuration
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of settings")
    return _parse(cast(dict[str, Any], data), where, path.parent, confine)


def _link_out_of(folder: Path, root: Path) -> Path | None:
    """The first link under ``folder`` naming something outside ``root`` (None: none, or
    ``folder`` is no folder), looking at as many entries as the rule loader reads at most."""
    from scanner.engine.rules import MAX_RULE_FOLDER_ENTRIES

    if not folder.is_dir():
        return None
    for seen, entry in enumerate(folder.rglob("*")):
        if seen >= MAX_RULE_FOLDER_ENTRIES:
            break  # the loader refuses such a folder itself
        if entry.is_symlink() and not entry.resolve().is_relative_to(root):
            return entry
    return None


def _parse(data: dict[str, Any], where: str, base: Path, confine: bool = False) -> Config:
    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{where}: key {bounded(key)}: {problem}")

    def inside(key: str, name: str) -> Path:
        path = base / name
        if confine:
            try:
                root = base.resolve()
                # A folder of rule files is read whole: a link in it counts as what it names.
                outside = path if not path.resolve().is_relative_to(root) else _link_out_of(path, root)
            except (OSError, RuntimeError, ValueError):  # a symlink loop; a NUL in the name
                outside = path
            if outside is not None:
                shown = name if outside == path else str(outside.relative_to(base))
                raise fail(key, f"{bounded(shown)} is outside the repository: its own configuration names files "
                                f"inside it (give others with --{key} on the command line)")
        return path

    for key in data:
        if key not in KEYS:
            import difflib

            close = difflib.get_close_matches(str(key), KEYS, n=1) if len(str(key)) <= 64 else []
            raise fail(str(key), "unknown setting" + (f" (did you mean {close[0]!r}?)" if close else "")
                       + f"; known: {', '.join(KEYS)}")

    def strings(key: str) -> list[str]:
        value = data.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise fail(key, "must be a list of strings")
        return cast(list[str], value)

    allow = []
    if len(strings("allow-values")) > MAX_ALLOW_VALUES:
        raise fail("allow-values", f"at most {MAX_ALLOW_VALUES} regular expressions")
    atoms_left = MAX_RULE_FILE_ATOMS
    for pattern in strings("allow-values"):
        if (problem := too_long(pattern)) is not None:
            raise fail("allow-values", problem)
        atoms, problem = unrolled_atoms(pattern)
        atoms_left -= atoms
        if problem is not None or atoms_left < 0:
            raise fail("allow-values", problem or f"the allow-values' {TOO_MANY_ATOMS} patterns")
        try:
            import regex  # here: most scans have no allow-values, and the hook never loads regex

            allow.append(regex.compile(pattern))
        except Exception:  # noqa: BLE001 - regex.error, and what some releases raise instead (ValueError,
            # KeyError for version flags, RecursionError and OverflowError for size)
            raise fail("allow-values", f"invalid regular expression {bounded(pattern)}") from None
    size = None
    if "max-file-size" in data:
        try:
            size = parse_size(data["max-file-size"])
        except (ValueError, TypeError, OverflowError):
            raise fail("max-file-size", f"must be a whole size such as 25m, 512k or 1000000, not "
                                        f"{bounded(data['max-file-size'])}") from None
        if size <= 0:
            raise fail("max-file-size", "must be more than 0")
    fmt = data.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise fail("format", f"must be one of {', '.join(FORMATS)}")
    baseline = data.get("baseline")
    if baseline is not None and not isinstance(baseline, str):
        raise fail("baseline", "must be a path")
    return Config(
        source=base,
        rules=tuple(inside("rules", p) for p in strings("rules")),
        exclude=tuple(strings("exclude")),
        allow_values=tuple(allow),
        max_file_size=size,
        format=fmt,
        baseline=inside("baseline", baseline) if baseline else None,
    )
