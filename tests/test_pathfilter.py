"""Path excludes: gitignore-like globs over '/'-separated repository paths."""

from __future__ import annotations

import pytest

from scanner.pathfilter import PathFilter


@pytest.mark.parametrize(
    ("glob", "path", "excluded"),
    [
        ("vendor/", "vendor/lib/a.py", True),
        ("vendor/", "src/vendor/lib/a.py", True),  # no slash inside: any depth
        ("/vendor", "src/vendor/a.py", False),  # leading slash: anchored at the root
        ("vendor/**", "vendor/x/y.env", True),
        ("*.min.js", "static/app.min.js", True),
        ("*.min.js", "static/app.js", False),
        ("docs/*.md", "docs/a.md", True),
        ("docs/*.md", "docs/sub/a.md", False),
        ("**/fixtures/*.env", "a/b/fixtures/x.env", True),
        ("**/fixtures/*.env", "fixtures/x.env", True),
        ("test_?.py", "tests/test_a.py", True),
        ("test_?.py", "tests/test_ab.py", False),
    ],
)
def test_globs(glob: str, path: str, excluded: bool) -> None:
    assert PathFilter((glob,)).excluded(path) is excluded


def test_empty_filter_excludes_nothing() -> None:
    assert not PathFilter().excluded("anything/at/all")
