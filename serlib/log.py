"""serlib's messages: Python's ``logging``, under the logger named ``"serlib"``.

The library never prints. Each module logs through ``logging.getLogger(__name__)``
(``serlib.training.fitting``, ``serlib.feature_cache``, ...): progress of long work at
INFO, things a user should know about (an unwritable cache, a run from another version)
at WARNING. Whoever runs the library chooses what to show:

* the ``serlib`` command shows INFO and up on stderr, one line each, prefixed ``serlib:``
  (``--quiet`` shows warnings only);
* the book's chapter header (:func:`serlib.book.chapter_header`) shows INFO and up in the
  notebook;
* a program of your own configures ``logging`` as it likes. If it configures nothing,
  serlib installs one stderr handler of its own on first use (:func:`default_handler`),
  so messages are not lost, and a program that configures the root logger or the
  ``serlib`` logger replaces that default.

Functions with a ``verbose`` argument log their progress only when it is true
(:func:`info`). Explained in the chapter "Introduction".
"""
from __future__ import annotations

import logging
import sys

ROOT = "serlib"
FORMAT = "serlib: %(message)s"
_DEFAULT = "_serlib_default_handler"


def get_logger(name: str = ROOT) -> logging.Logger:
    """The logger for a serlib module (pass ``__name__``), with the default handler in place."""
    default_handler()
    return logging.getLogger(name)


class _Fallback(logging.Handler):
    """Writes to stderr only while nobody configured logging (decided at each message)."""

    def __init__(self):
        super().__init__()
        self.setFormatter(logging.Formatter(FORMAT))

    def emit(self, record):
        if logging.getLogger().handlers:     # the program configured logging: its handlers show it
            return
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:                    # pragma: no cover - a closed stream
            self.handleError(record)


def default_handler() -> None:
    """Make sure serlib's messages are seen when the program configured no logging.

    Gives the ``serlib`` logger (once) a handler that writes INFO and up to stderr, but only
    while the root logger has no handler of its own: that is decided at each message, so a
    program that calls ``logging.basicConfig`` later sees every message once, through its
    own configuration.
    """
    logger = logging.getLogger(ROOT)
    if any(getattr(h, _DEFAULT, False) for h in logger.handlers):
        return
    handler = _Fallback()
    setattr(handler, _DEFAULT, True)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


def show(level: int | str = logging.INFO, stream=None) -> logging.Handler:
    """Show serlib's messages of ``level`` and above on ``stream`` (default stderr), one line each.

    Replaces any handler this module installed before; used by the command line and the
    chapters. Explained in the chapter "Introduction".
    """
    logger = logging.getLogger(ROOT)
    for handler in list(logger.handlers):
        if getattr(handler, _DEFAULT, False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    setattr(handler, _DEFAULT, True)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return handler


def info(logger: logging.Logger, verbose, message: str, *args) -> None:
    """Log ``message`` at INFO when ``verbose`` is true (the library's old ``print`` switch)."""
    if verbose:
        logger.info(message, *args)
