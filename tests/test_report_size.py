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


def test_items_written_one_by_one_give_the_same_document() -> None:
    """A large report's findings are made and written one at a time (a generator in place of
    the list); small or large, with none, one or many, the text parses to the whole document."""
    from scanner.reporters.json import ITEMS

    for count in (0, 1, 5):
        items = [{"rule": "r", "line": n, "text": "é\x00\u202e"} for n in range(count)]
        whole = {"version": 1, "findings": items, "summary": {"n": count, "target": "a [ , ] b"}}
        shell = {"version": 1, "findings": ITEMS, "summary": {"n": count, "target": "a [ , ] b"}}
        for declared in (count, INDENT_UP_TO_FINDINGS + 1):
            text = dump_document(shell, declared, lambda: iter(items))
            assert json.loads(text) == whole, (count, declared)
            assert text == dump_document(whole, declared)  # the same text as the list given whole
