"""Where text comes from: files on disk (files.py) and git (git.py runs git; history.py,
staged.py and ranges are built on it)."""
