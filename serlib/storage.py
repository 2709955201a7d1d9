"""Writing files and folders so that nobody ever reads half of one, and checksums.

Every file serlib writes (cache entries, CSV indexes, figures, run files, downloads) goes
through :func:`atomic_write`: the bytes go to a temporary name beside the target, unique
to the process (``.NAME.PID.TOKEN.tmp``), which is then renamed over the target with
:func:`os.replace`, an atomic step on one file system. A reader sees the old file or the
new one, never a mixture; two processes writing the same file never collide; a process
killed mid-write leaves at most a hidden ``.tmp`` file, which :func:`remove_stale` deletes
once it is old. ``fsync=True`` also forces the bytes (and the rename) to the disk before
returning, for files that must survive a power cut, not just a killed process.

A folder of several files (a run, an unpacked download) is written inside
:func:`atomic_folder`: a hidden sibling ``.NAME.HOST-PID-TOKEN.partial`` that becomes
``NAME`` in one rename when the block ends without an error, and is removed when it fails.
The host and process id in its name let :func:`owner_gone` tell a killed writer's
leftovers from a live one's.

Checksums: :func:`file_sha256` (run folders record one per file), :func:`file_blake2b`
(content keys of the feature cache, about 1 GB/s) and :func:`seal` / :func:`unseal`,
which append a BLAKE2b-256 trailer to a blob and check it before anything is decoded.
Explained in the chapter "Features and augmentation".
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import socket
import tempfile
import time
from pathlib import Path

#: Ends every temporary file :func:`atomic_write` creates.
TMP_SUFFIX = ".tmp"
#: Ends every temporary folder :func:`atomic_folder` creates.
PARTIAL_SUFFIX = ".partial"
#: Ends a blob :func:`seal` wrote: this tag, then the BLAKE2b-256 digest of the bytes before it.
TRAILER_TAG = b"serlib-blake2b-256:"
DIGEST_BYTES = 32
_OWNER = re.compile(r"\.(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)-[A-Za-z0-9_]*\.partial$")


# ============================================================================ files
def temp_name(target) -> Path:
    """A fresh hidden temporary name beside ``target``: ``.NAME.PID.TOKEN.tmp``.

    Explained in the chapter "Features and augmentation".
    """
    target = Path(target)
    return target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}{TMP_SUFFIX}")


def atomic_write(target, write, *, fsync: bool = False) -> Path:
    """Call ``write(fh)`` on a new binary file beside ``target``, then rename it into place.

    On any error (``OSError`` from a full or read-only disk, an exception from ``write``,
    an interrupt) the temporary file is removed and the error raised; ``target`` is then
    untouched. ``fsync=True`` makes the data and the rename durable before returning.
    Returns ``target`` as a :class:`~pathlib.Path`. Explained in the chapter "Features and
    augmentation".
    """
    target = Path(target)
    tmp = temp_name(target)
    try:
        with open(tmp, "xb") as fh:
            write(fh)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        _fsync_folder(target.parent)
    return target


def write_bytes(target, data: bytes, *, fsync: bool = False) -> Path:
    """Write ``data`` to ``target`` atomically (:func:`atomic_write`).

    Explained in the chapter "Features and augmentation".
    """
    return atomic_write(target, lambda fh: fh.write(data), fsync=fsync)


def write_text(target, text: str, *, fsync: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically (:func:`atomic_write`).

    Explained in the chapter "Features and augmentation".
    """
    return write_bytes(target, text.encode("utf-8"), fsync=fsync)


def to_jsonable(obj):
    """``obj`` with NumPy scalars and arrays, tuples and paths turned into plain JSON values.

    Explained in the chapter "Beyond the reports".
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    tolist = getattr(obj, "tolist", None)     # NumPy arrays and scalars (no NumPy import needed)
    if tolist is not None and type(obj).__module__ == "numpy":
        return to_jsonable(tolist())
    return obj


def write_json(target, obj, *, indent: int | None = 1, fsync: bool = False) -> Path:
    """Write ``obj`` as JSON (NumPy values as plain numbers, :func:`to_jsonable`) atomically.

    ``indent=None`` writes it compactly. Explained in the chapter "Beyond the reports".
    """
    separators = (",", ":") if indent is None else None
    text = json.dumps(to_jsonable(obj), indent=indent, separators=separators)
    return write_text(target, text + "\n", fsync=fsync)


def _fsync_folder(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ============================================================================ folders
def host_tag() -> str:
    """This machine's name as it appears in temporary folder names (letters, digits, _)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:40] or "host"


@contextlib.contextmanager
def atomic_folder(dest, *, replace: bool = False, fsync: bool = False):
    """Yield a new hidden folder beside ``dest``; when the block ends, it becomes ``dest``.

    The folder is ``.NAME.HOST-PID-TOKEN.partial`` in ``dest``'s parent (which must exist).
    When the block finishes, an empty ``dest`` folder is removed and the temporary folder
    renamed to ``dest`` in one step; with ``replace=True`` a non-empty ``dest`` is first
    moved aside and deleted after the rename. Otherwise a non-empty ``dest`` makes the
    rename fail with :class:`OSError` (e.g. another process finished first: the caller
    decides whether that is fine). On any error the temporary folder is removed and the
    error raised. ``fsync=True`` flushes every file written before the rename.
    Explained in the chapter "Beyond the reports".
    """
    dest = Path(dest)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.{host_tag()}-{os.getpid()}-", suffix=PARTIAL_SUFFIX,
                                dir=dest.parent))
    old = None
    try:
        yield tmp
        if fsync:
            for path in tmp.rglob("*"):
                if path.is_file() and not path.is_symlink():
                    with open(path, "rb") as fh:
                        os.fsync(fh.fileno())
        if dest.is_dir() and not dest.is_symlink() and not any(dest.iterdir()):
            dest.rmdir()
        elif replace and (dest.exists() or dest.is_symlink()):
            old = dest.with_name(f".{dest.name}.{host_tag()}-{os.getpid()}-{secrets.token_hex(4)}.old")
            os.replace(dest, old)
        try:
            os.replace(tmp, dest)
        except BaseException:
            if old is not None and not dest.exists():
                os.replace(old, dest)        # put the previous folder back
                old = None
            raise
        if fsync:
            _fsync_folder(dest.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if old is not None:
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:   # exists but not ours (PermissionError), or cannot tell
        return True
    return True


def owner_gone(path) -> bool:
    """True when ``path`` is a temporary name of :func:`atomic_write` or :func:`atomic_folder`
    whose process, on this machine, has ended (it was killed before finishing).

    A folder written on another machine (a shared disk) is never judged gone by this; its
    age decides (:func:`remove_stale`). Explained in the chapter "Beyond the reports".
    """
    name = Path(path).name
    match = _OWNER.search(name)
    if match:
        return match["host"] == host_tag() and not _pid_alive(int(match["pid"]))
    return False


def last_change(path) -> float:
    """The newest modification time of ``path`` and (for a folder) what it holds directly."""
    path = Path(path)
    times = [path.stat().st_mtime]
    if path.is_dir() and not path.is_symlink():
        times += [p.stat().st_mtime for p in path.iterdir()]
    return max(times)


def remove_stale(folder, *, max_age: float, pattern: str = ".*", keep=None) -> list:
    """Remove the temporary leftovers of killed writers in ``folder``; returns what was removed.

    Considered: names matching the glob ``pattern`` that end in ``.tmp`` or ``.partial``.
    One is removed when its owner process on this machine has ended (:func:`owner_gone`)
    or nothing in it changed for ``max_age`` seconds, unless ``keep(path)`` says True (a
    folder holding something its writer never writes). Never raises. Explained in the
    chapter "Beyond the reports".
    """
    removed = []
    now = time.time()
    try:
        candidates = [p for p in Path(folder).glob(pattern)
                      if p.name.endswith((TMP_SUFFIX, PARTIAL_SUFFIX)) and not p.is_symlink()]
    except OSError:
        return removed
    for path in candidates:
        try:
            stale = owner_gone(path) or now - last_change(path) > max_age
            if not stale or (keep is not None and keep(path)):
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        except OSError:
            continue
        if not path.exists():
            removed.append(path)
    return removed


# ============================================================================ checksums
def _file_digest(path, digest) -> str:
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path) -> str:
    """SHA-256 (hex) of a file, read in 1 MiB blocks. Explained in the chapter "Beyond the reports"."""
    return _file_digest(path, hashlib.sha256())


def file_blake2b(path, digest_size: int = 16) -> str:
    """BLAKE2b hex digest of a file's bytes (default 128 bits; about 1 GB/s).

    Explained in the chapter "Features and augmentation".
    """
    return _file_digest(path, hashlib.blake2b(digest_size=digest_size))


def blake2b_256(data: bytes) -> bytes:
    """The BLAKE2b-256 digest of ``data`` (raw bytes)."""
    return hashlib.blake2b(data, digest_size=DIGEST_BYTES).digest()


def same_digest(a, b) -> bool:
    """Compare two digests (bytes or hex strings) in constant time."""
    if isinstance(a, str) or isinstance(b, str):
        return hmac.compare_digest(str(a), str(b))
    return hmac.compare_digest(a, b)


def seal(payload: bytes) -> bytes:
    """``payload`` followed by :data:`TRAILER_TAG` and its BLAKE2b-256 digest.

    Explained in the chapter "Features and augmentation".
    """
    return payload + TRAILER_TAG + blake2b_256(payload)


def unseal(blob: bytes) -> bytes | None:
    """The payload of a blob :func:`seal` wrote, or None when its trailer is missing or
    does not match (the blob was changed, truncated or written by someone else).

    Explained in the chapter "Features and augmentation".
    """
    trailer = len(TRAILER_TAG) + DIGEST_BYTES
    if len(blob) < trailer:
        return None
    payload, tag, digest = blob[:-trailer], blob[-trailer:-DIGEST_BYTES], blob[-DIGEST_BYTES:]
    if tag != TRAILER_TAG or not hmac.compare_digest(digest, blake2b_256(payload)):
        return None
    return payload


def read_sealed(path, max_payload: int) -> tuple[bytes | None, str | None]:
    """Read a file :func:`seal` wrote, never more than ``max_payload`` bytes of payload:
    ``(payload, None)`` when its checksum holds, ``(None, None)`` when there is no such file,
    and ``(None, reason)`` when it is too large, unreadable or fails its checksum.

    Explained in the chapter "Features and augmentation".
    """
    limit = int(max_payload) + len(TRAILER_TAG) + DIGEST_BYTES
    try:
        with open(path, "rb") as fh:
            blob = fh.read(limit + 1)
    except FileNotFoundError:
        return None, None
    except OSError as error:
        return None, f"cannot be read ({error.strerror or error})"
    if len(blob) > limit:
        return None, "is larger than what it should hold can be"
    payload = unseal(blob)
    if payload is None:
        return None, "fails its checksum (changed or damaged since serlib wrote it)"
    return payload, None


__all__ = ["read_sealed", "atomic_write", "write_bytes", "write_text", "write_json", "to_jsonable", "temp_name",
           "atomic_folder", "owner_gone", "remove_stale", "host_tag", "last_change", "file_sha256",
           "file_blake2b", "blake2b_256", "same_digest", "seal", "unseal", "TRAILER_TAG", "DIGEST_BYTES"]
