"""keysweep's diagnostics on standard error: ``logging``, imported only when a message is emitted.

The pre-commit hook runs on every commit and usually says nothing; importing logging (and
traceback, string and textwrap with it) was ~5 ms of its ~0.1 s. ``get_logger(__name__)``
gives the ``logging.Logger`` methods keysweep uses. A message below the level the command
line set (warnings, by default, as logging's own) is dropped without importing anything.
Once logging is imported, here or by anything else (a library, a test runner), every
message goes to it, so its handlers and levels decide, as for any logger.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40  # logging's levels

_level = WARNING
_pending: Callable[[], None] | None = None


def configure(level: int, install: Callable[[], None]) -> None:
    """The command line's ``level``, and ``install``, which sets logging up: called now if
    logging is imported already, else just before the first message that reaches it."""
    global _level, _pending
    _level, _pending = level, install
    if "logging" in sys.modules:
        _install()


def _install() -> None:
    global _pending
    install, _pending = _pending, None
    if install is not None:
        install()


class Logger:
    """Stands in for ``logging.getLogger(name)``: debug, info, warning and error."""

    def __init__(self, name: str) -> None:
        self.name = name

    def debug(self, msg: str, *args: object) -> None:
        self._log(DEBUG, msg, args)

    def info(self, msg: str, *args: object) -> None:
        self._log(INFO, msg, args)

    def warning(self, msg: str, *args: object) -> None:
        self._log(WARNING, msg, args)

    def error(self, msg: str, *args: object) -> None:
        self._log(ERROR, msg, args)

    def _log(self, level: int, msg: str, args: tuple[object, ...]) -> None:
        if level < _level and "logging" not in sys.modules:
            return
        import logging

        _install()
        # stacklevel: the record names the caller of warning() (or info()...), not this module.
        logging.getLogger(self.name).log(level, msg, *args, stacklevel=3)


def level() -> int:
    """The level the command line set: what a caller may ask of a library's own logging."""
    return _level


def get_logger(name: str) -> Logger:
    return Logger(name)
