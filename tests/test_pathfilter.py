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


@pytest.mark.parametrize(
    ("globs", "path", "excluded"),
    [
        (("[ab]1.env",), "a1.env", True),  # character classes, as git has them
        (("[ab]1.env",), "sub/b1.env", True),
        (("[ab]1.env",), "c1.env", False),
        (("*.env", "!keep.env"), "config/prod.env", True),
        (("*.env", "!keep.env"), "config/keep.env", False),  # negation re-includes
        (("*.env", "!keep.env", "keep.env"), "keep.env", True),  # the last match decides
        (("a/**/b.env",), "a/x/y/b.env", True),
        (("a/**/b.env",), "a/b.env", True),
        (("\\#x.env",), "#x.env", True),
        (("# a comment",), "# a comment", False),
    ],
)
def test_gitignore_semantics(globs: tuple[str, ...], path: str, excluded: bool) -> None:
    assert PathFilter(globs).excluded(path) is excluded


def test_folder_pattern_prunes_the_folder_only() -> None:
    only_folders = PathFilter(("build/",))
    assert only_folders.excluded_folder("build")
    assert not only_folders.excluded("build")  # a file named build is not a folder
