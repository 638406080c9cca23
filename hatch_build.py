"""Wheel build step: each built-in rule file is also shipped as JSON, written here from the
YAML (the source, shipped too), so an installed keysweep reads its rules without importing
PyYAML, about 15 ms of every pre-commit hook run. Never edited by hand, never in the checkout.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class RulesAsJson(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return  # an editable install reads rules/ from the checkout, as YAML
        import yaml

        self._scratch = Path(tempfile.mkdtemp(prefix="keysweep-rules-"))
        for source in sorted((Path(self.root) / "rules").glob("*.y*ml")):
            document = yaml.safe_load(source.read_text(encoding="utf-8"))
            target = self._scratch / f"{source.name}.json"
            target.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
            build_data["force_include"][str(target)] = f"scanner/_rules/{target.name}"

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        scratch = getattr(self, "_scratch", None)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
