"""The on-disk store behind the feature cache: content hashes, checksummed arrays, one folder per spec.

Split from :mod:`serlib.feature_cache` (which runs the extraction over a corpus and is
the module to read first); the layout and the guarantees are described there. Explained
in the chapter "Features and augmentation".
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
import stat
from pathlib import Path

import numpy as np

from . import features
from .config import cache_dir, warn_once, warn_unwritable_cache
from .errors import AudioError
from .log import get_logger
from .storage import (read_sealed, DIGEST_BYTES, atomic_write, file_blake2b, remove_stale, same_digest, seal,
                      write_json)

log = get_logger(__name__)

INDEX_NAME = "content-index.json"
#: Version of the on-disk layout; entries of another format are dropped. 2: checksummed.
CACHE_FORMAT = 2
#: Bytes an ``.npy`` header may take beyond its array data (larger files are not read).
_HEADER_MAX = 4096
#: Calls with at least this many clips also store one consolidated array.
CORPUS_MIN_CLIPS = 16
#: Consolidated arrays kept per spec (least recently used are deleted first).
CORPUS_KEEP = 8
#: Temporary files older than this (seconds) are leftovers of killed runs and are deleted.
STALE_TMP_S = 600.0
#: Below this many clips to compute, one process is faster than starting worker processes
#: (each imports numpy, scipy.fft and soundfile: about a second on an idle machine).
PARALLEL_MIN_CLIPS = 200
#: Clips per task sent to a worker process (at most).
CHUNK_MAX = 16


def features_root() -> Path:
    """``cache_dir()/features``, created on demand when the cache can be written.

    Explained in the chapter "Features and augmentation".
    """
    root = cache_dir() / "features"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass       # extract_corpus warns (once) and works without the cache
    return root


def content_hash(path) -> str:
    """BLAKE2b-128 hex digest of a file's bytes (about 1 GB/s).

    Explained in the chapter "Features and augmentation".
    """
    return file_blake2b(path, digest_size=16)


def save_array(target: Path, array: np.ndarray) -> bool:
    """Atomically store ``array`` as ``.npy`` followed by its checksum trailer; False (with
    one warning line per process) when the disk refuses.

    Explained in the chapter "Features and augmentation".
    """
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    payload = buffer.getvalue()
    try:
        atomic_write(target, lambda fh: fh.write(seal(payload)))
        return True
    except OSError as error:
        warn_unwritable_cache(target.parent, error)
        return False


def load_array(path: Path, shape: tuple) -> np.ndarray | None:
    """The array stored at ``path`` by :func:`save_array` if its checksum matches and it is
    a finite float32 array of ``shape``; else None (with one warning line naming the file
    when the file exists but fails).

    Files larger than such an array can be are not read. Explained in the chapter
    "Features and augmentation".
    """
    payload, problem = read_sealed(path, 4 * math.prod(shape) + _HEADER_MAX)
    if payload is None:
        return _rejected(path, problem) if problem else None
    try:
        array = np.load(io.BytesIO(payload), allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return _rejected(path, "is not a readable array")
    if array.dtype != np.float32 or tuple(array.shape) != tuple(shape) or not np.all(np.isfinite(array)):
        return _rejected(path, f"holds a {array.dtype} array of shape {array.shape}, not float32 {tuple(shape)}")
    return array


def _rejected(path: Path, reason: str) -> None:
    warn_once(("cache entry", str(path)), f"{path}: feature cache entry {reason}; "
              "deleted it, the features are recomputed")
    return None


def _file_error(path, error: OSError) -> AudioError:
    if isinstance(error, FileNotFoundError):
        return AudioError(path, "no such file", "check the path")
    if isinstance(error, IsADirectoryError):
        return AudioError(path, "is a folder, not an audio file", "pass the files inside it")
    if isinstance(error, PermissionError):
        return AudioError(path, "cannot be read (permission denied)", "fix its permissions")
    return AudioError(path, f"cannot be read ({error.strerror or error})")


class ContentIndex:
    """Remembers the content hash of each file by (absolute path, size, mtime_ns).

    Looking a file up costs one ``stat``; only new or changed files are read and hashed.
    (A file rewritten with the same size within the same nanosecond timestamp would be
    missed; filesystems do not make that happen by accident.) Explained in the chapter
    "Features and augmentation".
    """

    def __init__(self, root: Path | None = None):
        self.file = (root or features_root()) / INDEX_NAME
        self.entries = self._read()
        self.changed: dict[str, list] = {}

    def _read(self) -> dict:
        """The stored entries, or {} when there are none or they fail their checksum."""
        try:
            data = json.loads(self.file.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
            return {}                    # none yet, or an older serlib's: files are hashed again
        entries = data.get("entries")
        if not isinstance(entries, dict) or not same_digest(str(data.get("blake2b")), self._checksum(entries)):
            warn_once(("cache entry", str(self.file)), f"{self.file}: feature cache index fails its "
                      "checksum (changed or damaged since serlib wrote it); ignoring it, files are hashed again")
            return {}
        return entries

    @staticmethod
    def _checksum(entries: dict) -> str:
        blob = json.dumps(entries, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.blake2b(blob, digest_size=DIGEST_BYTES).hexdigest()

    def lookup(self, path) -> str:
        key = os.path.abspath(path)
        try:
            st = os.stat(key)
            if not stat.S_ISREG(st.st_mode):
                raise IsADirectoryError(key)
        except OSError as error:
            raise _file_error(path, error) from None
        entry = self.entries.get(key)
        if (isinstance(entry, list) and len(entry) == 3 and entry[0] == st.st_size
                and entry[1] == st.st_mtime_ns):
            return entry[2]
        try:
            digest = content_hash(key)
        except OSError as error:
            raise _file_error(path, error) from None
        self.entries[key] = self.changed[key] = [st.st_size, st.st_mtime_ns, digest]
        return digest

    def save(self) -> None:
        if not self.changed:
            return
        merged = self._read()  # keep what other processes added meanwhile
        merged.update(self.changed)
        try:
            write_json(self.file, {"format": CACHE_FORMAT, "blake2b": self._checksum(merged), "entries": merged},
                       indent=None)
        except OSError:
            pass  # the index only saves time; losing an update is harmless
        self.changed = {}


class FeatureStore:
    """The cache folder of one :class:`~serlib.features.FeatureSpec` (or any spec with
    ``key()``, ``shape`` and ``to_dict()``; ``version``, if it has one, replaces
    :data:`serlib.features.ALGORITHM_VERSION`).

    Explained in the chapter "Features and augmentation".
    """

    def __init__(self, spec, root: Path | None = None):
        self.spec = spec
        self.shape = tuple(spec.shape)
        self.dir = (root or features_root()) / spec.key()
        self.dir.mkdir(parents=True, exist_ok=True)   # OSError: the caller goes on without a cache
        self._check_meta(getattr(spec, "version", features.ALGORITHM_VERSION))
        self._remove_stale_tmp()

    def _check_meta(self, version: int) -> None:
        meta = self.dir / "meta.json"
        try:
            stored = json.loads(meta.read_text())
            stored = (stored.get("version"), stored.get("format"))
        except (OSError, ValueError, AttributeError):
            stored = None
        if stored == (version, CACHE_FORMAT):
            return
        # written by another algorithm version or cache format (or meta.json is gone): drop it all
        for path in self.dir.glob("*.npy"):
            path.unlink(missing_ok=True)
        try:
            write_json(meta, {"version": version, "format": CACHE_FORMAT, "spec": self.spec.to_dict()})
        except OSError:
            pass

    def _remove_stale_tmp(self) -> None:
        remove_stale(self.dir, max_age=STALE_TMP_S, pattern=".*.tmp")

    def entry_path(self, digest: str) -> Path:
        return self.dir / f"{digest}.npy"

    def get(self, digest: str) -> np.ndarray | None:
        path = self.entry_path(digest)
        array = load_array(path, self.shape)
        if array is None:  # missing, truncated, damaged or overwritten: it will be recomputed
            _unlink(path)
        return array

    def put(self, digest: str, array: np.ndarray) -> bool:
        return save_array(self.entry_path(digest), array)

    def corpus_path(self, digests) -> Path:
        blob = "\n".join(digests).encode()
        return self.dir / f"corpus-{hashlib.blake2b(blob, digest_size=16).hexdigest()}.npy"

    def get_corpus(self, digests) -> np.ndarray | None:
        path = self.corpus_path(digests)
        array = load_array(path, (len(digests), *self.shape))
        if array is None:
            _unlink(path)
            return None
        try:
            os.utime(path)  # most recently used
        except OSError:
            pass
        return array

    def put_corpus(self, digests, array: np.ndarray) -> None:
        if len(digests) < CORPUS_MIN_CLIPS:
            return
        if save_array(self.corpus_path(digests), array):
            corpora = sorted(self.dir.glob("corpus-*.npy"), key=lambda p: p.stat().st_mtime, reverse=True)
            for old in corpora[CORPUS_KEEP:]:
                old.unlink(missing_ok=True)


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass          # a folder we may read but not write: the entry is simply not used


def clear_cache(spec=None) -> int:
    """Delete the cached features of ``spec`` (or of every spec); returns files removed.

    Explained in the chapter "Features and augmentation".
    """
    root = features_root()
    target = root / spec.key() if spec is not None else root
    if not target.exists():
        return 0
    count = sum(1 for p in target.rglob("*") if p.is_file())
    shutil.rmtree(target, ignore_errors=True)
    return count
