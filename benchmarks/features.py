"""How long MFCC extraction for a whole corpus takes: serlib against the reports' plain loop.

One run measures, on the same files, with the files already in the OS page cache and
librosa already imported and warmed up (so neither side pays import or JIT time):

* ``report loop`` – the per-file loop as report 000 wrote it (the Kaggle recipe):
  ``y, sr = librosa.load(path, sr=44100, offset=0.5, duration=2.5)`` (librosa 0.11
  resamples the 22,050 Hz FLAC up with its default ``soxr_hq``; the recipe's
  ``res_type="kaiser_fast"`` needs resampy, which is not installed), then
  ``np.mean(librosa.feature.mfcc(y=y, sr=sr, n_mfcc=12), axis=0)`` – one process;
* ``same-settings loop`` – the same plain loop computing exactly serlib's features for the
  spec (for report 000: ``librosa.load(sr=22050, offset=0.5, duration=2.5)`` +
  ``librosa.feature.mfcc(n_fft=1024, hop_length=256, n_mfcc=12)``, mean over bands) – one
  process; it separates the gain of serlib's engineering from that of its choice of rate;
* the plain loops run with one BLAS thread (``--blas-threads``; threadpoolctl): on a
  machine shared with other jobs, OpenBLAS's default threads fight over the cores and can
  make librosa's mel product many times slower, which would flatter serlib;
* ``serlib cold`` – :func:`serlib.feature_cache.extract_corpus` into an empty cache (a fresh
  temporary ``SERLIB_CACHE_DIR`` inside the usual cache folder, deleted afterwards):
  content hashing, reading with soundfile, vectorised STFT/mel/DCT, one ``.npy`` per clip
  plus the consolidated array, written atomically – with 1 process, with ``--n-jobs``
  worker processes (default: every core) started by the call itself, and with those
  workers already running (:func:`serlib.feature_cache.start_workers`);
* ``serlib warm`` – the same call again (median of 3): one ``stat`` per file and one array
  load; and ``warm, per-clip entries`` with the consolidated array deleted first.

Every row also gives the CPU time used (user + system, of this process and of the worker
processes, their start-up included): on a machine whose cores are busy with other jobs
the wall-clock times mostly measure the share of the CPU the benchmark got, while the
CPU ratio still compares the work each way needs.

It checks that serlib's array equals the same-settings loop's (max |difference| relative
to the value range) and prints a table with the ratios; nothing is hard-coded. The
targets from the project brief (cold ≥ 3× faster than the report loop on 2 cores, judged
on the default call ``extract_corpus(paths, spec)``; warm ≥ 50×) are printed as met or
not. Results go to ``benchmarks/results/features.json``.

Usage::

    python benchmarks/features.py                      # all 1,200 RAVDESS clips, report 000
    python benchmarks/features.py --limit 200 --spec 001
    python benchmarks/features.py --data /path/to/Audio_Speech_Actors_01-24

The machine is shared with other jobs while developing: the load average before and after
is recorded, and timings from a loaded machine are noisy.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from serlib import feature_cache as FC  # noqa: E402
from serlib import features as F  # noqa: E402
from serlib.config import n_jobs as default_n_jobs  # noqa: E402
from serlib.config import shared_data_root  # noqa: E402
from serlib.storage import write_json  # noqa: E402

SPECS = ("000", "000-2d", "001", "002", "003", "004")


# ------------------------------------------------------------------------------ the plain loops
def report_000_as_written(path):
    """Report 000's recipe, per file, exactly as the Kaggle notebooks wrote it (librosa 0.11)."""
    import librosa

    y, sr = librosa.load(path, sr=44100, offset=0.5, duration=2.5)
    return np.mean(librosa.feature.mfcc(y=y, sr=sr, n_mfcc=12), axis=0)


def same_settings(path, spec):
    """serlib's features for ``spec`` computed the plain way: librosa.load + librosa.feature.*."""
    import librosa

    y, sr = librosa.load(path, sr=spec.sr, offset=spec.offset, duration=spec.duration)
    if spec.duration is not None:
        y = librosa.util.fix_length(y, size=int(round(spec.duration * spec.sr)))
    if spec.trim:
        from serlib.audio import trim_silence  # the same energy trim serlib uses

        y = trim_silence(y, sr, top_db=spec.top_db)
    kw = dict(n_fft=spec.n_fft, hop_length=spec.hop_length, win_length=spec.win_length, window=spec.window)
    if spec.kind == "frames162":
        S = np.abs(librosa.stft(y, **kw)) ** 2
        mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=S, sr=sr, n_mels=128))
        frame = spec.win_length or spec.n_fft
        rms = librosa.feature.rms(y=y, frame_length=frame, hop_length=spec.hop_length)
        out = np.vstack([librosa.feature.mfcc(S=mel_db, n_mfcc=20), 20 * np.log10(np.maximum(rms, 1e-5)),
                         librosa.feature.zero_crossing_rate(y, frame_length=frame, hop_length=spec.hop_length),
                         mel_db, librosa.feature.chroma_stft(S=S, sr=sr, tuning=0.0)]).T
    else:
        out = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=spec.n_mfcc, n_mels=spec.n_mels, **kw).T
        if spec.kind == "mfcc_band_mean":
            out = out.mean(axis=1)
        elif spec.kind == "mfcc_mean":
            return out[: spec.n_frames].mean(axis=0)
    n = spec.n_frames
    out = out[:n] if len(out) >= n else np.pad(out, [(0, n - len(out))] + [(0, 0)] * (out.ndim - 1))
    return out


def _proc_cpu(pids) -> float:
    """CPU seconds (user + system) used so far by processes ``pids`` (Linux /proc)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def measured(fn, *, stop=None, pids=()):
    """(wall seconds, CPU seconds, result). CPU counts this process; with ``stop`` also the
    worker processes it reaps (resource.RUSAGE_CHILDREN, after ``stop()``, untimed); with
    ``pids`` those running processes (via /proc)."""
    import resource

    def own():
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime

    def children():
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ru.ru_utime + ru.ru_stime

    cpu0, kids0, procs0 = own(), children(), _proc_cpu(pids)
    start = time.perf_counter()
    result = fn()
    wall = time.perf_counter() - start
    cpu = own() - cpu0 + _proc_cpu(pids) - procs0
    if stop is not None:
        stop()
        cpu += children() - kids0
    return wall, cpu, result


# ------------------------------------------------------------------------------ main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="RAVDESS folder (default: $SERLIB_DATA_DIR or ../shared/data/ravdess)")
    parser.add_argument("--limit", type=int, help="use N clips spread over the corpus")
    parser.add_argument("--spec", default="000", choices=SPECS, help="report feature spec (default 000)")
    parser.add_argument("--n-jobs", type=int, default=None, help="worker processes (default: every core)")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="BLAS threads for the plain loops (default 1: their best case on a shared machine; "
                             "0 leaves the library default)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "features.json"))
    args = parser.parse_args(argv)

    from serlib.datasets.ravdess import index_ravdess

    folder = args.data or os.environ.get("SERLIB_DATA_DIR") or (
        shared_data_root() / "ravdess" if shared_data_root() else None)
    if folder is None:
        parser.error("no RAVDESS folder found: pass --data")
    paths = index_ravdess(folder, content_ids=False)["path"].tolist()
    if args.limit and args.limit < len(paths):
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, args.limit).round().astype(int)]
    spec = F.REPORT_SPECS[args.spec]
    n_jobs = args.n_jobs or default_n_jobs()
    n = len(paths)
    load_before = os.getloadavg()
    print(f"{n} clips from {folder}; spec {args.spec} = {spec.kind}, shape {spec.shape}; "
          f"{os.cpu_count()} cores, n_jobs={n_jobs}; load average {load_before[0]:.2f}", flush=True)

    # Fairness: files in the page cache, librosa imported and warmed, for every contender.
    for path in paths:
        Path(path).read_bytes()
    import librosa

    report_000_as_written(paths[0])
    same_settings(paths[0], spec)

    rows = []

    def add(name, seconds, cpu, what):
        rows.append({"name": name, "seconds": seconds, "ms_per_clip": 1000 * seconds / n,
                     "cpu_seconds": cpu, "cpu_ms_per_clip": None if cpu is None else 1000 * cpu / n, "what": what})
        cpu_text = "" if cpu is None else f" (CPU {cpu:.3f} s)"
        print(f"  {name:<40} {seconds:8.3f} s{cpu_text}", flush=True)

    from contextlib import nullcontext

    from threadpoolctl import threadpool_limits

    def limited():
        return threadpool_limits(args.blas_threads, user_api="blas") if args.blas_threads else nullcontext()

    if args.spec in ("000", "000-2d"):
        with limited():
            t, cpu, _ = measured(lambda: [report_000_as_written(p) for p in paths])
        add("report loop (as written)", t, cpu, "librosa.load(sr=44100, offset=0.5, duration=2.5) + "
            "librosa.feature.mfcc(n_mfcc=12) + mean over bands, per file, 1 process")
    with limited():
        t, cpu, reference = measured(lambda: np.stack([same_settings(p, spec) for p in paths]).astype(np.float32))
    add("same-settings loop", t, cpu, "librosa.load + librosa.feature.* with serlib's settings for the spec, "
        "per file, 1 process")

    from serlib.feature_cache import LAST_RUN, PARALLEL_MIN_CLIPS, _executor, _idle_cores, _ping, stop_workers

    note = "" if n >= PARALLEL_MIN_CLIPS or n_jobs == 1 else \
        f" (fewer than PARALLEL_MIN_CLIPS={PARALLEL_MIN_CLIPS} clips: ran in 1 process)"
    old_cache = os.environ.get("SERLIB_CACHE_DIR")
    from serlib.config import cache_dir

    # A fresh cache inside the usual cache folder (same filesystem as real use; /tmp may differ).
    scratch = Path(tempfile.mkdtemp(prefix="bench-", dir=cache_dir()))
    try:
        os.environ["SERLIB_CACHE_DIR"] = str(scratch / "serial")
        t, cpu, serial = measured(lambda: FC.extract_corpus(paths, spec, n_jobs=1, progress=False))
        add("serlib cold, 1 process", t, cpu, "extract_corpus(n_jobs=1) into an empty cache")

        stop_workers()
        os.environ["SERLIB_CACHE_DIR"] = str(scratch / "auto")
        idle = _idle_cores()
        t, cpu, X_auto = measured(lambda: FC.extract_corpus(paths, spec, progress=False), stop=stop_workers)
        used = LAST_RUN.get("workers", 0)
        how = f"{used} worker processes + this one" if used else "this process only"
        add("serlib cold, automatic", t, cpu, f"extract_corpus(n_jobs=None) into an empty cache: {how} "
            f"(idle cores at the start: {idle:.1f}); the default call")
        auto_workers = used

        os.environ["SERLIB_CACHE_DIR"] = str(scratch / "parallel")
        t, cpu, X = measured(lambda: FC.extract_corpus(paths, spec, n_jobs=n_jobs, progress=False),
                             stop=stop_workers)
        add(f"serlib cold, {n_jobs} processes", t, cpu, f"extract_corpus(n_jobs={n_jobs}) into an empty cache; "
            f"worker start-up included (CPU: this process + the workers, whole lives){note}")

        pids = sorted(set(_executor(n_jobs).map(_ping, [0.3] * n_jobs))) if n_jobs > 1 else []
        os.environ["SERLIB_CACHE_DIR"] = str(scratch / "running")
        t, cpu, X_running = measured(lambda: FC.extract_corpus(paths, spec, n_jobs=n_jobs, progress=False),
                                     pids=pids)
        add(f"serlib cold, {n_jobs} processes already up", t, cpu, "the same with the workers started beforehand "
            f"(serlib.feature_cache.start_workers, e.g. a second corpus in one session){note}")

        warm = [measured(lambda: FC.extract_corpus(paths, spec, n_jobs=n_jobs, progress=False)) for _ in range(3)]
        middle = sorted(warm, key=lambda w: w[0])[1]
        add("serlib warm", middle[0], middle[1], "the same call again: one consolidated array (median of 3)")
        store = scratch / "running" / "features" / spec.key()
        for corpus in store.glob("corpus-*.npy"):
            corpus.unlink()
        t, cpu, X_entries = measured(lambda: FC.extract_corpus(paths, spec, n_jobs=n_jobs, progress=False))
        add("serlib warm, per-clip entries", t, cpu, "consolidated array deleted first: one .npy per clip")
    finally:
        stop_workers()
        if old_cache is None:
            os.environ.pop("SERLIB_CACHE_DIR", None)
        else:
            os.environ["SERLIB_CACHE_DIR"] = old_cache
        shutil.rmtree(scratch, ignore_errors=True)

    same = all(np.array_equal(X, other) for other in (serial, X_auto, X_running, warm[0][2], X_entries))
    difference = float(np.abs(X - reference).max() / max(np.ptp(reference), 1e-12))
    load_after = os.getloadavg()

    base = rows[0]["seconds"]
    same_base = next(r["seconds"] for r in rows if r["name"] == "same-settings loop")
    print()
    two = rows[0]["name"] != "same-settings loop"
    base_cpu = rows[0]["cpu_seconds"]
    print(f"{'':<40} {'seconds':>8} {'ms/clip':>8} {'CPU ms/clip':>12} {'speed-up':>9}"
          + (f" {'vs same-settings':>17}" if two else "") + f" {'CPU ratio':>10}")
    for row in rows:
        row["speedup_vs_first"] = base / row["seconds"]
        row["speedup_vs_same_settings"] = same_base / row["seconds"]
        row["cpu_ratio_vs_first"] = base_cpu / row["cpu_seconds"] if row["cpu_seconds"] else None
        print(f"{row['name']:<40} {row['seconds']:8.3f} {row['ms_per_clip']:8.2f} {row['cpu_ms_per_clip']:12.2f} "
              f"{row['speedup_vs_first']:8.1f}×" + (f" {row['speedup_vs_same_settings']:16.1f}×" if two else "")
              + (f" {row['cpu_ratio_vs_first']:9.1f}×" if row["cpu_ratio_vs_first"] else f" {'-':>10}"))
    print(f"(speed-up and CPU ratio relative to the {rows[0]['name']}; CPU = user + system time of every "
          "process involved)")
    cold = next(r for r in rows if r["name"] == "serlib cold, automatic")
    warm_row = next(r for r in rows if r["name"] == "serlib warm")
    targets = {"cold_3x": cold["speedup_vs_first"] >= 3.0, "warm_50x": warm_row["speedup_vs_first"] >= 50.0}
    print(f"\nserlib == same-settings loop: max |difference| = {difference:.2e} of the value range; "
          f"serial, parallel, warm and per-clip results identical: {same}")
    print(f"targets vs {rows[0]['name']}: cold (default call) ≥ 3× {'met' if targets['cold_3x'] else 'NOT met'} "
          f"({cold['speedup_vs_first']:.1f}×), warm ≥ 50× {'met' if targets['warm_50x'] else 'NOT met'} "
          f"({warm_row['speedup_vs_first']:.0f}×)")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} on {os.cpu_count()} cores")

    result = {
        "schema": 1,
        "description": "MFCC extraction for a corpus: serlib (cold/warm cache) vs the reports' per-file loop",
        "spec_name": args.spec, "spec": spec.to_dict(), "shape": list(spec.shape),
        "data": str(folder), "n_clips": n, "n_jobs": n_jobs, "automatic_workers": auto_workers,
        "baseline_blas_threads": args.blas_threads or "default",
        "rows": rows, "targets": targets,
        "max_rel_difference_vs_same_settings": difference, "results_identical_across_paths": bool(same),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_before": load_before, "load_average_after": load_after,
                    "librosa": librosa.__version__, "numpy": np.__version__},
        "created": datetime.now().isoformat(timespec="seconds"),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
