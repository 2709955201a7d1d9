"""Settings shared by the whole package, each overridable by an environment variable.

============================  ==========================================================
``SERLIB_DATA_DIR``           folder holding RAVDESS speech (``Actor_XX/`` or flat)
``SERLIB_CACHE_DIR``          where downloads and the feature cache go
                              (default ``~/.cache/serlib``)
``SERLIB_QUICK``              ``1`` shrinks data and epochs so every chapter runs in minutes
``SERLIB_N_JOBS``             worker processes for feature extraction, a positive whole
                              number (default: all cores)
``SERLIB_ENCODER_WEIGHTS``    the voice encoder's ``pretrained.pt`` (default: fetched once
                              into the cache, :mod:`serlib.voice_encoder`)
============================  ==========================================================

The default sample rate is 16 kHz: emotional prosody and the formants that carry
voice quality lie well below 8 kHz, 16 kHz is the rate report 004 (Pankratz et al.)
chose, and it makes every spectrogram a third cheaper than the 22,050 Hz librosa
default that reports 000–002 inherited. Each report's model keeps the rate its report
used (see its ``FeatureSpec``). Explained in the chapter "Features and augmentation".
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import SerlibError
from .log import get_logger

log = get_logger(__name__)

DEFAULT_SR = 16_000

_REPO_ROOT = Path(__file__).resolve().parent.parent


def _truthy(value: str | None) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def quick_mode() -> bool:
    """True when ``SERLIB_QUICK`` asks for the shrunken, minutes-long runs used in CI."""
    return _truthy(os.environ.get("SERLIB_QUICK", "0"))


def cache_dir() -> Path:
    """Root of serlib's on-disk cache (downloads, features); created on demand.

    Never raises: a root that cannot be created (read-only, or below a regular file) is
    returned as it is. Code that writes there asks :func:`cache_subdir`, which warns once
    and answers None for such a root. Explained in the chapter "Features and augmentation".
    """
    root = os.environ.get("SERLIB_CACHE_DIR")
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "serlib"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
    return path


_WARNED: set = set()


def warn_once(key, line: str) -> None:
    """Log ``warning: <line>`` at WARNING, once per process for each ``key``.

    The command line shows it as ``serlib: warning: <line>`` on stderr (:mod:`serlib.log`).
    Explained in the chapter "Features and augmentation".
    """
    if key in _WARNED:
        return
    _WARNED.add(key)
    log.warning("warning: %s", line)


def warn_unwritable_cache(folder, error: OSError | str) -> None:
    """The one warning line (once per process and cache root) for a cache serlib cannot write.

    Explained in the chapter "Features and augmentation".
    """
    reason = error if isinstance(error, str) else (error.strerror or str(error))
    warn_once(("unwritable cache", str(cache_dir())),
              f"{folder}: cannot write serlib's cache there ({reason}); carrying on without caching "
              "(features computed in memory); make the folder writable or set SERLIB_CACHE_DIR "
              "to one you can write to")


def cache_subdir(name: str) -> Path | None:
    """``cache_dir()/name``, created, if serlib can write there; else None after one warning line.

    Explained in the chapter "Features and augmentation".
    """
    folder = cache_dir() / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        warn_unwritable_cache(folder if cache_dir().is_dir() else cache_dir(), error)
        return None
    if not os.access(folder, os.W_OK | os.X_OK):
        warn_unwritable_cache(folder, "permission denied")
        return None
    return folder


def env_path(variable: str, *, folder: bool, error, hint: str) -> Path | None:
    """The path the environment variable ``variable`` names, or None when it is unset.

    Raises ``error`` (a :class:`~serlib.errors.SerlibError` class) with a one-line message
    ending in ``hint`` when it names no folder (``folder``) or no file.
    """
    value = os.environ.get(variable)
    if not value:
        return None
    path = Path(value).expanduser()
    if not (path.is_dir() if folder else path.is_file()):
        raise error(f"{path}: {variable} names no {'folder' if folder else 'such file'}; {hint}")
    return path


def n_jobs() -> int:
    """Worker processes for corpus-wide work: ``SERLIB_N_JOBS`` or every core.

    Raises :class:`~serlib.errors.SerlibError` (one line naming the variable) when
    ``SERLIB_N_JOBS`` is set to anything but a positive whole number. Explained in the
    chapter "Features and augmentation".
    """
    env = os.environ.get("SERLIB_N_JOBS", "").strip()
    if env:
        try:
            value = int(env)
        except ValueError:
            value = 0
        if value < 1:
            raise SerlibError(f"SERLIB_N_JOBS={os.environ['SERLIB_N_JOBS']!r}: not a positive whole number; "
                              "set it to the number of worker processes (e.g. 4) or unset it to use every core")
        return value
    return max(1, os.cpu_count() or 1)


def shared_data_root() -> Path | None:
    """The ``shared/data`` folder beside a development checkout, if there is one."""
    for candidate in (_REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    return None
