"""Features of a whole corpus: :func:`extract_corpus`, its on-disk cache and its worker processes.

This module builds on :mod:`serlib.features` (one clip's features); that module never
imports this one.

Layout under ``cache_dir()/features/``::

    content-index.json            path -> [size, mtime_ns, content hash]: a file whose size
                                  and modification time are unchanged is not re-read; the
                                  entries carry a BLAKE2b-256 checksum
    <spec.key()>/meta.json        the spec, the extraction algorithm version and the
                                  cache format version
    <spec.key()>/<hash>.npy       one clip's features; <hash> = BLAKE2b-128 of the file's bytes
    <spec.key()>/corpus-<h>.npy   one call's stacked array; <h> hashes the ordered clip hashes

Keys are file *contents* (plus the spec, through the folder), not names: a renamed or
duplicated file hits the cache, an edited one misses it. The byte-identical RAVDESS pair
is computed once.

Every file is written with :func:`serlib.storage.atomic_write` (a temporary name in the
same folder, renamed into place): a run killed mid-write leaves at most a stray
``.*.tmp`` file (ignored, and deleted once it is old), never a half-written entry under a
real name. Every ``.npy`` carries a checksum (:func:`serlib.storage.seal`): after the
array comes a trailer, ``serlib-blake2b-256:`` and the BLAKE2b-256 digest of everything
before it (a plain ``np.load`` ignores it). On load the digest is checked before the array is decoded, then
shape, dtype and finite values; an entry that fails (truncated, damaged or overwritten)
is deleted with one warning line naming it and recomputed, never used. Entries written
by an older extraction algorithm (``ALGORITHM_VERSION``) or cache format
(``CACHE_FORMAT``) are dropped.

A cache folder serlib cannot write to (read-only, or ``SERLIB_CACHE_DIR`` below a
regular file) is warned about once; features are then computed in memory, uncached.

A warm call costs one ``stat`` per file, one small JSON read and one array load.
Explained in the chapter "Features and augmentation".
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np

from . import features
from .config import cache_subdir, warn_unwritable_cache
from .config import n_jobs as default_n_jobs
from .errors import AudioError, ConfigError, SerlibError
# The store's names stay reachable here, where the cache is documented.
from .feature_store import (CACHE_FORMAT, CORPUS_KEEP, CORPUS_MIN_CLIPS, INDEX_NAME,  # noqa: F401
                            STALE_TMP_S, ContentIndex, FeatureStore, clear_cache, content_hash, features_root,
                            load_array, save_array)
from .log import get_logger

log = get_logger(__name__)

#: Below this many clips to compute, one process is faster than starting worker processes
#: (each imports numpy, scipy.fft and soundfile: about a second on an idle machine).
PARALLEL_MIN_CLIPS = 200
#: Clips per task sent to a worker process (at most).
CHUNK_MAX = 16


# ============================================================================ workers
def _work(items, spec, plan, store_dir):
    """Extract ``items`` = [(position, path, digest)] in one process; store each result.

    Returns [(position, array or None, (path, reason, hint) or None)]. Errors travel as
    tuples because AudioError's constructor does not survive pickling.
    """
    features.install_plan(spec, plan)
    out = []
    for position, path, digest in items:
        try:
            array = features.extract_file(path, spec)
        except AudioError as error:
            out.append((position, None, (error.path, error.reason, error.hint)))
            continue
        if store_dir is not None and digest is not None:
            save_array(Path(store_dir) / f"{digest}.npy", array)
        out.append((position, array, None))
    return out


def _idle_cores() -> float | None:
    """Cores not busy with other work: core count minus the 1-minute load average (Unix)."""
    try:
        return (os.cpu_count() or 1) - os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _resolve_jobs(n_jobs) -> int:
    """Worker processes to use. ``None`` means automatic: ``SERLIB_N_JOBS`` if set, else every
    core that is idle (plus this process's own), so a machine already busy with other jobs
    is not handed extra processes whose start-up would cost more than they return."""
    if n_jobs is None:
        if os.environ.get("SERLIB_N_JOBS"):
            return default_n_jobs()
        idle = _idle_cores()
        limit = default_n_jobs()
        return limit if idle is None else max(1, min(limit, int(idle + 1.5)))
    n_jobs = int(n_jobs)
    if n_jobs < 0:  # joblib's convention: -1 = every core
        n_jobs = (os.cpu_count() or 1) + 1 + n_jobs
    return max(1, n_jobs)


#: Environment of the worker processes: one thread each for any numeric library.
_WORKER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


_EXECUTOR = None


def _executor(n_jobs: int):
    """joblib's reusable loky executor with ``n_jobs`` workers (started or reused)."""
    global _EXECUTOR
    from joblib.externals.loky import get_reusable_executor

    _EXECUTOR = get_reusable_executor(max_workers=n_jobs, env=_WORKER_ENV)
    return _EXECUTOR


def _ping(delay: float) -> int:
    import scipy.fft  # noqa: F401  (what extraction imports, loaded ahead of the work)
    import soundfile  # noqa: F401

    time.sleep(delay)
    return os.getpid()


def start_workers(n_jobs: int | None = None) -> int:
    """Start the worker processes of :func:`extract_corpus` ahead of time.

    Each worker process takes about a second to start (it imports numpy, scipy.fft and
    soundfile); they then stay up between calls (joblib's reusable executor, shut down
    after some idle minutes). Calling this early – say while a notebook loads its data
    index – hides that start-up. Returns the number of workers. Explained in the chapter
    "Features and augmentation".
    """
    n_jobs = _resolve_jobs(n_jobs)
    if n_jobs > 1:
        executor = _executor(n_jobs)
        list(executor.map(_ping, [0.2] * n_jobs))
    return n_jobs


def stop_workers() -> None:
    """Shut the worker processes down now (they also stop by themselves when idle).

    Explained in the chapter "Features and augmentation".
    """
    global _EXECUTOR
    if _EXECUTOR is not None:
        _EXECUTOR.shutdown(wait=True)
        _EXECUTOR = None


def _run(todo, spec, store_dir, n_jobs: int, progress: bool, stop_on_error: bool):
    """Yield (position, array, error) for every item of ``todo``, in completion order.

    Few clips (or ``n_jobs == 1``): in this process. Otherwise the clips go in chunks to
    ``n_jobs`` loky worker processes (joblib's reusable executor, kept alive between calls),
    and while those start up – a second or more per process: each imports numpy, scipy.fft
    and soundfile – this process works through the chunks from the *end* of the list,
    taking each only if no worker has started it. So a cold pool never makes a call slower
    than working alone, and a warm one gets all the help it can.
    """
    from tqdm import tqdm

    plan = features.feature_plan(spec)  # built here once; workers never import librosa
    bar = tqdm(total=len(todo), unit="clip", desc=f"features {spec.kind}", disable=not progress,
               leave=False, mininterval=0.5)
    try:
        if n_jobs == 1 or len(todo) < PARALLEL_MIN_CLIPS:
            for item in todo:
                for result in _work([item], spec, plan, store_dir):
                    bar.update(1)
                    yield result
                    if stop_on_error and result[2] is not None:
                        return
            return
        from concurrent.futures import FIRST_COMPLETED, wait

        size = max(1, min(CHUNK_MAX, math.ceil(len(todo) / (8 * n_jobs))))
        chunks = [todo[i:i + size] for i in range(0, len(todo), size)]
        executor = _executor(n_jobs)
        futures = [executor.submit(_work, chunk, spec, plan, store_dir) for chunk in chunks]
        pending = set(futures)

        def finished(block: bool):
            done, _ = wait(pending, timeout=None if block else 0, return_when=FIRST_COMPLETED)
            for future in done:
                pending.discard(future)
                yield future.result()

        try:
            for k in range(len(chunks) - 1, -1, -1):  # help from the back while workers take the front
                if not futures[k].cancel():
                    break
                pending.discard(futures[k])
                outputs = [_work(chunks[k], spec, plan, store_dir)]
                outputs.extend(finished(block=False))
                for chunk_results in outputs:
                    bar.update(len(chunk_results))
                    for result in chunk_results:
                        yield result
                        if stop_on_error and result[2] is not None:
                            return
            while pending:
                for chunk_results in finished(block=True):
                    bar.update(len(chunk_results))
                    for result in chunk_results:
                        yield result
                        if stop_on_error and result[2] is not None:
                            return
        finally:
            for future in pending:  # stopping early (error, interrupt): drop what has not started
                future.cancel()
    finally:
        bar.close()


def _as_paths(paths) -> list:
    if hasattr(paths, "columns") and "path" in getattr(paths, "columns", ()):
        paths = paths["path"]
    if isinstance(paths, (str, os.PathLike)):
        raise SerlibError(f"{paths}: extract_corpus takes a list of files; use extract_file for one file")
    return [str(p) for p in paths]


#: What the latest :func:`extract_corpus` call did: ``clips``, ``computed``,
#: ``from_cache``, ``consolidated`` (one array load), ``workers`` (worker processes that
#: helped; 0: this process alone) and ``seconds``. The book prints it; benchmarks record it.
LAST_RUN: dict = {}


def open_store(spec) -> FeatureStore | None:
    """The spec's :class:`FeatureStore` (any view with ``key``, ``shape`` and ``to_dict``), or
    None (after one warning line) when the cache cannot be written: the features are then
    computed in memory. Explained in the chapter "Features and augmentation"."""
    root = cache_subdir("features")
    if root is None:
        return None
    try:
        return FeatureStore(spec, root)
    except OSError as error:
        warn_unwritable_cache(root / spec.key(), error)
        return None


def extract_corpus(paths, spec, *, n_jobs: int | None = None, cache: bool = True, progress: bool = True,
                   errors: str = "raise", return_kept: bool = False):
    """Features of many files stacked into one ``float32`` array ``(n_clips, *spec.shape)``.

    ``paths``: file paths (or an index DataFrame with a ``path`` column), in the order of
    the result rows; ``spec``: a :class:`~serlib.features.FeatureSpec`. Work is spread over
    ``n_jobs`` worker processes with a progress bar (default ``None``: ``SERLIB_N_JOBS`` if
    set, else the idle cores – on a machine already busy with other work extra processes
    cost more to start than they return; fewer than 200 clips are always done in this
    process), and every clip's features are cached under
    ``cache_dir()/features/<spec.key()>/`` keyed by a hash of the file's *bytes*, so
    renamed or duplicated files hit the cache and edited ones do not; a second call with
    the same files loads one consolidated array.

    ``errors="raise"`` (default) stops at the first unusable file with an
    :class:`~serlib.errors.AudioError` naming it; ``errors="skip"`` leaves such files out
    with a warning naming each (logged), and ``return_kept=True`` then also returns the
    positions (into ``paths``) of the rows kept. Specs without a fixed shape
    (``n_frames=None`` for a frame-level kind) cannot be stacked and raise
    :class:`~serlib.errors.SerlibError`. Explained in the chapter "Features and augmentation".
    """
    if errors not in ("raise", "skip"):
        raise ConfigError(f"errors must be 'raise' or 'skip', got {errors!r}")
    if not spec.fixed:
        raise SerlibError(f"feature kind {spec.kind!r} with n_frames=None gives clips of different lengths, "
                          "which cannot be stacked; set n_frames (spec.replace(n_frames=...)) or call "
                          "extract_file per clip")
    started = time.perf_counter()
    paths = _as_paths(paths)
    shape = tuple(spec.shape)
    n_jobs = _resolve_jobs(n_jobs)
    LAST_RUN.clear()
    LAST_RUN.update(clips=len(paths), computed=0, from_cache=0, workers=0, consolidated=False, seconds=0.0)
    failures: dict[int, AudioError] = {}
    digests: list[str | None] = [None] * len(paths)
    known: dict = {}  # key_of(position) -> array (None: failed)
    store = None

    def key_of(i):  # clips are identified by content with a cache, by position without
        return digests[i] if cache else i

    if cache:
        store = open_store(spec)
        cache = store is not None
    if cache:
        index = ContentIndex(store.dir.parent)
        try:
            for i, path in enumerate(paths):
                try:
                    digests[i] = index.lookup(path)
                except AudioError as error:
                    if errors == "raise":
                        raise
                    failures[i] = error
        finally:
            index.save()
        if not failures and paths:
            stacked = store.get_corpus(digests)
            if stacked is not None:
                LAST_RUN.update(from_cache=len(paths), consolidated=True, seconds=time.perf_counter() - started)
                return (stacked, np.arange(len(paths))) if return_kept else stacked

    todo, pending = [], set()
    for i, path in enumerate(paths):
        if i in failures:
            continue
        key = key_of(i)
        if key in known or key in pending:  # a byte-identical file seen before: computed once
            continue
        array = store.get(key) if cache else None
        if array is not None:
            known[key] = array
        else:
            pending.add(key)
            todo.append((i, path, digests[i]))

    store_dir = str(store.dir) if store is not None else None
    parallel = n_jobs > 1 and len(todo) >= PARALLEL_MIN_CLIPS
    LAST_RUN.update(computed=len(todo), from_cache=len(known), workers=n_jobs if parallel else 0)
    for position, array, error in _run(todo, spec, store_dir, n_jobs, progress, errors == "raise"):
        key = key_of(position)
        if error is not None:
            failure = AudioError(*error)
            if errors == "raise":
                raise failure
            failures[position] = failure
            known[key] = None
        else:
            known[key] = array

    for i in range(len(paths)):  # duplicates of a file that failed fail with it
        if i not in failures and known.get(key_of(i)) is None:
            failures[i] = next(failures[j] for j in failures if key_of(j) == key_of(i))
    kept = [i for i in range(len(paths)) if i not in failures]
    for i in sorted(failures):
        log.warning("warning: extract_corpus skipped %s", failures[i])

    X = np.empty((len(kept), *shape), dtype=np.float32)
    for row, i in enumerate(kept):
        X[row] = known[key_of(i)]
    if cache and not failures and len(kept):
        store.put_corpus(digests, X)
    LAST_RUN["seconds"] = time.perf_counter() - started
    return (X, np.asarray(kept, dtype=np.int64)) if return_kept else X
