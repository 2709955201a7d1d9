"""Download and unpack the official RAVDESS speech archive (or EmoDB's), safely and only once.

:func:`download_ravdess` fetches ``Audio_Speech_Actors_01-24.zip`` (Zenodo record
1188976, about 200 MB) into ``cache_dir()/ravdess`` (``SERLIB_CACHE_DIR`` moves it) or a
folder of your choice. Every step is written so that a failure leaves nothing that
looks finished:

1. the archive streams into a uniquely named temporary file beside the destination;
2. its size and MD5 checksum are checked *after* the download (a cached archive is
   checked too), and only then is it renamed to ``.zip`` (:func:`serlib.storage.atomic_write`);
3. it is unpacked into a temporary sibling folder (members that would escape it are
   refused), a completion marker is written into that folder last, and the folder is
   renamed into place in one atomic step (:func:`serlib.storage.atomic_folder`).

A destination holding the marker is reused without touching the network. If the download
cannot be done (no network, firewall, changed file), the error says how to do it by hand:
download the zip in a browser, unzip it and point ``SERLIB_DATA_DIR`` at the folder.

:func:`download_emodb` does the same for the Berlin EmoDB archive (``download.zip`` from
the authors' site, about 40 MB): only its ``wav/`` clips are unpacked, flat, into
``cache_dir()/emodb``. The authors publish no checksum, so none is pinned: the archive's
MD5 is recorded in the completion marker, and an archive fetched without ``md5`` must hold
exactly the 535 clip names of the release (their list's SHA-256 is
:data:`EMODB_NAMES_SHA256`), else it is refused. Explained in the chapter "The data".
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from ..config import cache_dir
from ..errors import DataError
from ..storage import PARTIAL_SUFFIX, TMP_SUFFIX, atomic_folder, atomic_write, remove_stale, temp_name, write_json

RAVDESS_RECORD = "https://zenodo.org/records/1188976"
RAVDESS_URL = "https://zenodo.org/records/1188976/files/Audio_Speech_Actors_01-24.zip?download=1"
#: MD5 of Audio_Speech_Actors_01-24.zip as listed on the Zenodo record page
#: (https://zenodo.org/records/1188976, "md5:bc696df654c87fed845eb13823edef8a").
RAVDESS_MD5 = "bc696df654c87fed845eb13823edef8a"
#: Written last into a finished download; its presence marks the folder complete.
DOWNLOAD_MARKER = ".serlib-download.json"

#: The authors' archive of the Berlin EmoDB (Burkhardt et al. 2005): wav/ holds the 535 clips.
EMODB_URL = "http://emodb.bilderbar.info/download/download.zip"
EMODB_PAGE = "http://emodb.bilderbar.info/"
#: No checksum of download.zip is published; pass ``md5`` for an archive you have checked.
EMODB_MD5 = None
#: SHA-256 of the sorted, newline-joined stems of the 535 released clips (03a01Fa ... 16b10Wb).
EMODB_NAMES_SHA256 = "4d6eb689055567ff60e64a114810bf55fbfa9d8a9528867793f5a727a697003d"
EMODB_CLIPS = 535

_ACTOR_DIR = re.compile(r"^Actor_\d{2}$")
_STALE_SECONDS = 24 * 3600   # leftovers of killed runs older than this are removed
_CHUNK = 1 << 16


@dataclass(frozen=True)
class _Layout:
    """What differs between the corpora's archives: names in messages and which members to unpack."""

    title: str                 # "the RAVDESS speech archive"
    page: str                  # where to get it by hand
    folder: str                # what SERLIB_DATA_DIR (or --data) should then point at
    select: Callable           # (parts of a member's path) -> relative target, or None to skip
    none_found: str            # why an archive without any selected member is refused
    check: Callable | None = None   # (unpacked folder, md5 given) -> None or raises DataError


def _ravdess_member(parts):
    depth = next((i for i, part in enumerate(parts[:-1]) if _ACTOR_DIR.match(part)), None)
    if depth is None or depth > 1 or len(parts) != depth + 2:
        return None
    return PurePosixPath(*parts[depth:])


def _emodb_member(parts):
    from .emodb import parse_name

    if len(parts) > 3 or not parts[-1].lower().endswith(".wav"):
        return None
    try:
        parse_name(parts[-1])
    except ValueError:
        return None
    return PurePosixPath(parts[-1])


def _emodb_check(tmp: Path, md5: str | None, url: str) -> None:
    if md5 is not None:
        return                 # the archive's checksum was verified: trust what it holds
    stems = sorted(p.name.split(".")[0] for p in tmp.iterdir() if p.suffix.lower() == ".wav")
    digest = hashlib.sha256("\n".join(stems).encode()).hexdigest()
    if len(stems) != EMODB_CLIPS or digest != EMODB_NAMES_SHA256:
        raise DataError(f"{url}: the archive holds {len(stems)} EmoDB clips, not the {EMODB_CLIPS} of the "
                        "official release (no checksum is published, so their names are checked); if you "
                        "trust this archive pass its MD5 with --md5, or " + _manual_hint(url, EMODB))


RAVDESS = _Layout("the RAVDESS speech archive", RAVDESS_RECORD, "the folder that holds Actor_01/ … Actor_24/",
                  _ravdess_member, "holds no Actor_XX/ folders of audio; it is not the RAVDESS speech archive")
EMODB = _Layout("the EmoDB archive", EMODB_PAGE, "the folder that holds its wav/ clips (03a01Fa.wav …)",
                _emodb_member, "holds no EmoDB clips (wav/03a01Fa.wav …); it is not the EmoDB archive", _emodb_check)


def _manual_hint(url: str, layout: _Layout = RAVDESS) -> str:
    return (f"download {url} by hand (or from {layout.page}), unzip it and set SERLIB_DATA_DIR "
            f"to {layout.folder}")


def _archive_name(zip_path: Path, url: str) -> tuple[str, str]:
    """How an error names the archive, and what to do with it.

    A fresh download is unpacked from its temporary file, which is deleted on the way out:
    the message then names the URL and never asks to delete a file that is gone. A kept
    archive (``keep_archive``) stays and is named by its path.
    """
    if zip_path.name.endswith(TMP_SUFFIX):
        return f"{url}: the downloaded file (not kept)", "try again"
    return f"{zip_path}: this file", "delete it and try again"


def default_destination() -> Path:
    """Where :func:`download_ravdess` unpacks by default: ``cache_dir()/ravdess``.

    Explained in the chapter "The data".
    """
    return cache_dir() / "ravdess"


def completed_download(dest=None) -> Path | None:
    """``dest`` (default: the cache) if it holds a finished download, else ``None``.

    Explained in the chapter "The data".
    """
    dest = Path(dest).expanduser() if dest is not None else default_destination()
    marker = dest / DOWNLOAD_MARKER
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    return dest if isinstance(info, dict) and info.get("complete") is True else None


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _remove_stale(parent: Path, name: str) -> None:
    """Delete temporary leftovers of runs that were killed (never a live run's)."""
    remove_stale(parent, max_age=_STALE_SECONDS, pattern=f".*{name}.*")


def _fetch(url: str, fh, *, progress: bool, timeout: float, layout: _Layout = RAVDESS) -> str:
    """Stream ``url`` into the open file ``fh``; return the MD5 (hex) of what arrived.

    Raises DataError on HTTP/network errors or a short read."""
    import urllib.error
    import urllib.request

    from tqdm.auto import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": "serlib (python urllib)"})
    digest = hashlib.md5()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            expected = response.headers.get("Content-Length")
            expected = int(expected) if expected and expected.isdigit() else None
            received = 0
            label = PurePosixPath(url.split("?")[0]).name or "download"
            with tqdm(total=expected, unit="B", unit_scale=True, unit_divisor=1024,
                      desc=label, disable=not progress, leave=False) as bar:
                while True:
                    chunk = response.read(_CHUNK)
                    if not chunk:
                        break
                    fh.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as error:
        raise DataError(f"{url}: the server answered HTTP {error.code} ({error.reason}); "
                        f"try again later or {_manual_hint(url, layout)}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        if isinstance(error, OSError) and getattr(error, "filename", None):
            raise                  # writing the file failed (disk full), not the network
        reason = getattr(error, "reason", None) or error
        raise DataError(f"{url}: download failed ({str(reason).splitlines()[0] if str(reason) else type(error).__name__}); "
                        f"check the network or {_manual_hint(url, layout)}") from None
    except Exception as error:  # http.client.IncompleteRead and other protocol errors
        raise DataError(f"{url}: download broke off ({type(error).__name__}); try again or "
                        f"{_manual_hint(url, layout)}") from None
    if expected is not None and received != expected:
        raise DataError(f"{url}: download broke off after {received:,} of {expected:,} bytes; "
                        f"try again or {_manual_hint(url, layout)}")
    return digest.hexdigest()


def _fetch_verified(url: str, fh, md5: str | None, *, progress: bool, timeout: float,
                    layout: _Layout = RAVDESS) -> None:
    got = _fetch(url, fh, progress=progress, timeout=timeout, layout=layout)
    if md5 is not None and got != md5.lower():
        raise DataError(f"{url}: checksum mismatch (md5 {got}, expected {md5.lower()}): the download "
                        f"is corrupt or the file changed; try again or {_manual_hint(url, layout)}")


def _safe_members(archive: zipfile.ZipFile, zip_path: Path, url: str, layout: _Layout = RAVDESS):
    """Yield (member, relative target path) for the audio the layout selects.

    RAVDESS: the audio under ``Actor_XX/`` folders, which may sit at the top of the archive
    or one folder down (an archive re-zipped with its parent folder); EmoDB: the clips
    named like EmoDB's (``wav/03a01Fa.wav``), unpacked flat. Names that are absolute or
    contain ``..`` make the whole archive refused: they could write outside the destination.
    """
    found = []
    for member in archive.infolist():
        name = member.filename.replace("\\", "/")
        parts = PurePosixPath(name).parts
        if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in parts:
            where, _ = _archive_name(zip_path, url)
            raise DataError(f"{where} has a member {member.filename!r} that points outside the folder it "
                            f"unpacks into; refusing to unpack it: it is not {layout.title}; "
                            f"{_manual_hint(url, layout)}")
        if member.is_dir() or not parts or parts[0] == "__MACOSX" or parts[-1].startswith("."):
            continue
        target = layout.select(parts)
        if target is not None:
            found.append((member, target))
    return found


def _unpack(zip_path: Path, tmp: Path, url: str, layout: _Layout = RAVDESS) -> int:
    """Unpack the audio of ``zip_path`` the layout selects into ``tmp``; return the number of files."""
    where, again = _archive_name(zip_path, url)
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = _safe_members(archive, zip_path, url, layout)
            if not members:
                raise DataError(f"{where} {layout.none_found}; {_manual_hint(url, layout)}")
            root = tmp.resolve()
            for member, rel in members:
                target = (tmp / Path(*rel.parts)).resolve()
                if root not in target.parents:
                    raise DataError(f"{where} has a member {member.filename!r} that points outside the "
                                    f"folder it unpacks into; refusing to unpack it; {_manual_hint(url, layout)}")
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
            return len(members)
    except zipfile.BadZipFile as error:
        raise DataError(f"{where} is not a valid zip archive ({error}); {again}, or "
                        f"{_manual_hint(url, layout)}") from None
    except (zipfile.LargeZipFile, NotImplementedError, EOFError, RuntimeError) as error:
        raise DataError(f"{where} cannot be unpacked ({error}); {_manual_hint(url, layout)}") from None


def download_ravdess(dest=None, *, url: str = RAVDESS_URL, md5: str | None = RAVDESS_MD5,
                     progress: bool = True, keep_archive: bool = False, timeout: float = 60.0) -> Path:
    """Download and unpack the RAVDESS speech archive; return the folder holding ``Actor_XX/``.

    ``dest`` defaults to ``cache_dir()/ravdess`` (``$SERLIB_CACHE_DIR/ravdess``). A
    finished download there is returned at once, without network. Otherwise the archive
    is streamed (with a progress bar unless ``progress=False``) into a temporary file,
    its size and ``md5`` are verified (``md5=None`` skips the checksum, e.g. for a
    mirror you trust), and it is unpacked into a temporary sibling folder that is renamed
    to ``dest`` with the completion marker already inside. The archive is deleted
    afterwards unless ``keep_archive``; a verified archive left beside ``dest`` is reused.

    Raises :class:`~serlib.errors.DataError` (one line: the URL or file, and how to get
    the data by hand) on HTTP or network errors, a truncated download, a checksum
    mismatch, a corrupt or foreign archive, or a non-empty ``dest`` that is not a
    finished download. Nothing that looks complete is left behind after a failure.
    Explained in the chapter "The data".
    """
    dest = Path(dest).expanduser() if dest is not None else default_destination()
    return _download_corpus(dest, url, md5, RAVDESS, progress=progress, keep_archive=keep_archive,
                            timeout=timeout)


def download_emodb(dest=None, *, url: str = EMODB_URL, md5: str | None = EMODB_MD5, progress: bool = True,
                   keep_archive: bool = False, timeout: float = 60.0) -> Path:
    """Download the Berlin EmoDB archive and unpack its 535 clips, flat; return the folder.

    ``dest`` defaults to ``cache_dir()/emodb``. Everything :func:`download_ravdess` does
    holds here too (reuse without network, temporary names, atomic rename, one-line
    errors). The authors publish no checksum: with ``md5=None`` the unpacked names must be
    exactly the release's 535 (:data:`EMODB_NAMES_SHA256`), else nothing is kept; with
    ``md5`` the archive is checked instead. The archive's own MD5 is recorded in the
    folder's completion marker. Explained in the chapter "The data".
    """
    dest = Path(dest).expanduser() if dest is not None else cache_dir() / "emodb"
    return _download_corpus(dest, url, md5, EMODB, progress=progress, keep_archive=keep_archive, timeout=timeout)


def _download_corpus(dest: Path, url: str, md5: str | None, layout: _Layout, *, progress: bool,
                     keep_archive: bool, timeout: float) -> Path:
    if completed_download(dest):
        return dest
    try:
        return _download(dest, url, md5, progress=progress, keep_archive=keep_archive, timeout=timeout,
                         layout=layout)
    except DataError:
        raise
    except OSError as error:   # disk full, read-only folder, ...
        where = Path(error.filename) if error.filename else dest
        if any(part.startswith(".") and dest.name in part and part.endswith((TMP_SUFFIX, PARTIAL_SUFFIX))
               for part in where.parts):
            where = dest.parent        # a temporary file or folder, already removed: name the folder
        raise DataError(f"{where}: cannot write the download ({error.strerror or error}); check that the "
                        "folder is writable and has about 1 GB free, or choose another with dest=/--dest") from None


def _download(dest: Path, url: str, md5: str | None, *, progress: bool, keep_archive: bool,
              timeout: float, layout: _Layout = RAVDESS) -> Path:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        corpus = "RAVDESS" if layout is RAVDESS else "EmoDB"
        raise DataError(f"{dest}: exists but is not a finished serlib download; remove it or choose another "
                        f"destination (or set SERLIB_DATA_DIR to it if it already holds {corpus})")
    parent = dest.parent
    parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(parent, dest.name)
    archive = parent / f".{dest.name}.zip"

    if archive.is_file() and (md5 is None or _md5(archive) != md5.lower()):
        archive.unlink()   # an unverifiable or stale archive: fetch it again
    fresh = None           # a download unpacked straight from its temporary file, then deleted
    if not archive.is_file():
        if keep_archive:
            atomic_write(archive, lambda fh: _fetch_verified(url, fh, md5, progress=progress, timeout=timeout,
                                                             layout=layout))
        else:
            fresh = temp_name(archive)
            try:
                with open(fresh, "xb") as fh:
                    _fetch_verified(url, fh, md5, progress=progress, timeout=timeout, layout=layout)
            except BaseException:
                fresh.unlink(missing_ok=True)
                raise
    try:
        with atomic_folder(dest) as tmp:
            source = fresh or archive
            n_files = _unpack(source, tmp, url) if layout is RAVDESS else _unpack(source, tmp, url, layout)
            if layout.check is not None:
                layout.check(tmp, md5, url)
            record = {"complete": True, "url": url, "md5": md5, "files": n_files,
                      "actors": sorted(p.name for p in tmp.iterdir() if p.is_dir()),
                      "unpacked": time.strftime("%Y-%m-%dT%H:%M:%S")}
            if layout is not RAVDESS:
                record.update(corpus="emodb", archive_md5=_md5(source))
            write_json(tmp / DOWNLOAD_MARKER, record)     # last file written
    except OSError:
        if not completed_download(dest):   # another process finishing first is fine
            raise
    finally:
        if fresh is not None:
            fresh.unlink(missing_ok=True)
    return dest
