"""Errors serlib raises on bad input.

Every error here carries a one-line message that names the file, folder or setting at
fault and what to do about it; the command line prints that line and exits non-zero,
without a traceback (see :mod:`serlib.cli`). Any other exception reaching the command line
is a bug in serlib, reported as such. Explained in the chapter "Beyond the reports".
"""
from __future__ import annotations


class SerlibError(Exception):
    """Base class: a problem with the user's input, reported in one line."""


class AudioError(SerlibError):
    """A file that cannot be used as audio (missing, empty, corrupt, not audio, too short)."""

    def __init__(self, path, reason: str, hint: str | None = None):
        self.path = str(path)
        self.reason = reason
        self.hint = hint or "check that it is a readable audio file (wav, flac, ogg, mp3)"
        super().__init__(f"{self.path}: {reason}; {self.hint}")


class DataError(SerlibError):
    """A data folder or data set problem (missing folder, no usable clips, bad download)."""


class ConfigError(SerlibError, ValueError):
    """A bad setting: an unknown name (model, report, feature kind, option) or a value out of
    range. Also a :class:`ValueError`, so code that caught those before still does."""
