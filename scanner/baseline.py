"""Baselines: known findings, recorded so that only new ones are reported.

Identity is the finding's fingerprint: the rule, a hash of the secret and the path, never
the line. Edits around a known secret do not resurrect it; a new secret on a baselined line
is still caught. The file holds no secret, only hashes.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from scanner import __version__
from scanner.errors import ConfigError
from scanner.findings import Finding

BASELINE_FILE = ".keysweep-baseline.json"
BASELINE_VERSION = 1


@dataclass(frozen=True)
class Baseline:
    fingerprints: frozenset[str]

    def new(self, findings: Iterable[Finding]) -> list[Finding]:
        return [f for f in findings if f.fingerprint not in self.fingerprints]


def render_baseline(findings: Iterable[Finding]) -> str:
    entries = {}
    for finding in findings:
        entries[finding.fingerprint] = {
            "fingerprint": finding.fingerprint,
            "rule": finding.rule_id,
            "path": finding.path if finding.path is not None else f"({finding.source})",
            "commit": finding.commit.sha if finding.commit else None,
        }
    document = {
        "version": BASELINE_VERSION,
        "tool": f"keysweep {__version__}",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "identity": "sha256(rule, sha256(secret), path): line numbers are not part of it",
        "findings": sorted(entries.values(), key=lambda e: (e["path"], e["rule"], e["fingerprint"])),
    }
    return json.dumps(document, indent=2) + "\n"


# A baseline of a million findings is about 200 MB; anything larger is not one of ours.
MAX_BASELINE_BYTES = 256 * 1024 * 1024


def load_baseline(path: Path) -> Baseline:
    try:
        # Only a regular file: opening a FIFO would block until a writer comes along.
        if not path.is_file():
            if not path.exists():
                raise FileNotFoundError(path)
            raise ConfigError(f"{path}: a baseline must be a regular file")
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BASELINE_BYTES + 1)
        if len(raw) > MAX_BASELINE_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_BASELINE_BYTES} bytes; not a keysweep baseline")
        document = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such baseline file (create one with `keysweep baseline create`)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a keysweep baseline: {exc}") from None
    except (RecursionError, ValueError):
        # Nesting deeper than Python's stack, or a number of thousands of digits.
        raise ConfigError(f"{path}: not a keysweep baseline (nested too deeply, or an over-long number)") from None
    if not isinstance(document, dict) or document.get("version") != BASELINE_VERSION:
        raise ConfigError(f"{path}: not a keysweep baseline (expected version {BASELINE_VERSION})")
    entries = document.get("findings")
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: 'findings' must be a list")
    prints = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("fingerprint"), str):
            raise ConfigError(f"{path}: findings[{index}] has no 'fingerprint'")
        prints.add(entry["fingerprint"])
    return Baseline(frozenset(prints))
