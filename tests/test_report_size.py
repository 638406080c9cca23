"""Large reports stay cheap to write: past a threshold JSON is compact (the C encoder)."""

from __future__ import annotations

import json

from scanner.reporters.json import INDENT_UP_TO_FINDINGS, dump_document


def test_small_reports_are_indented_and_large_ones_compact_with_the_same_content() -> None:
    document = {"findings": [{"rule": "r", "line": n, "text": "é"} for n in range(3)], "summary": {"n": 3}}
    small = dump_document(document, 3)
    large = dump_document(document, INDENT_UP_TO_FINDINGS + 1)
    assert small.startswith("{\n  ") and "\n" not in large.rstrip("\n")
    assert json.loads(small) == json.loads(large) == document
    assert "é" in large  # not escaped: the same bytes a reader sees in the small form
