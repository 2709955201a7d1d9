"""Emotion (or gender) and class probabilities for any recording, with a saved run.

Any file :func:`serlib.audio.load_audio` can read works: WAV, FLAC, OGG, MP3 (when an
ffmpeg/audioread backend is present), at any sample rate, mono or stereo (the channels
are averaged), of any length. Each recording goes through exactly the steps the run's
training clips went through, as the run's :class:`~serlib.features.FeatureSpec` says:
resampled to ``spec.sr``, silence-trimmed when ``spec.trim``, cut at ``spec.offset``
seconds, then cropped or zero-padded to ``spec.duration`` seconds and/or ``spec.n_frames``
frames. So a long recording is judged on its first seconds only (after the offset) and a
short one is padded with silence: cut long recordings into utterances first. A run that
fuses its network with a regression on clip functionals (:mod:`serlib.fusion`) also
computes :mod:`serlib.functionals` of the whole recording at 16 kHz.

File names need not be RAVDESS names. A file that cannot be read gets
``{"path", "error"}`` (one line) and the others are still predicted. The model is loaded
once. Explained in the chapter "Beyond the reports".
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import AudioError, SerlibError
from .runs import Run, load_run

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: Suffixes collected when a folder is given (a file given by name is always tried).
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".aiff", ".aif",
                  ".aifc", ".au", ".snd", ".wma", ".webm", ".caf")


def _as_run(run) -> Run:
    return run if isinstance(run, Run) else load_run(run)


def expand_paths(paths) -> list[tuple[str, str | None]]:
    """Files to predict: each file as given, each folder's audio files (recursively, sorted).

    Returns ``(path, error)`` pairs; ``error`` is None for files to try, or a one-line
    reason (missing path, folder without audio). Explained in "Beyond the reports".
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[tuple[str, str | None]] = []
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                out.append((str(given), f"folder holds no audio files ({', '.join(AUDIO_SUFFIXES[:4])}, ...)"))
            out.extend((str(p), None) for p in found)
        elif path.exists():
            out.append((str(given), None))
        else:
            out.append((str(given), "no such file or folder; check the path"))
    return out


def _error_line(error: Exception) -> str:
    if isinstance(error, AudioError):
        return f"{error.reason}; {error.hint}"
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]


def _result(run: Run, path: str, proba: np.ndarray) -> dict:
    probabilities = {label: float(p) for label, p in zip(run.labels, proba)}
    return {"path": path, "label": run.labels[int(np.argmax(proba))], "probabilities": probabilities}


def _proba(run: Run, X: np.ndarray, batch_size: int = 32, F: np.ndarray | None = None) -> np.ndarray:
    return run.predict_proba(X, batch_size=batch_size, functionals=F)


def _file_inputs(run: Run, path: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The features of ``path`` and, for a fused run, its clip functionals (``None`` otherwise).

    When the run's rate is the functionals' rate (the recommended model) the file is decoded
    once and both come from the same signal, exactly as in training.
    """
    from .audio import load_audio
    from .features import extract_file, extract_recording
    from .functionals import SR, speed_functionals

    if run.fusion is None:
        return extract_file(path, run.spec), None
    if run.spec.sr == SR:
        y = load_audio(path, sr=SR)
        return extract_recording(y, run.spec, path), speed_functionals(y, SR, run.functional_speeds)
    return extract_file(path, run.spec), speed_functionals(load_audio(path, sr=SR), SR, run.functional_speeds)


def predict_paths(run_dir, paths, *, batch_size: int = 32) -> list[dict]:
    """Predict every audio file in ``paths`` (files and/or folders) with the run in ``run_dir``.

    ``run_dir`` is a run folder or a loaded :class:`~serlib.runs.Run` (the model is loaded
    once). Returns, in input order, ``{"path", "label", "probabilities": {label: p}}`` per
    file, or ``{"path", "error"}`` for one that cannot be read (the others are still
    predicted). Raises :class:`~serlib.errors.SerlibError` only when the run itself is
    unusable. Explained in the chapter "Beyond the reports".
    """
    run = _as_run(run_dir)
    items = expand_paths(paths)
    results: list[dict] = []
    chunk = max(1, 4 * int(batch_size))
    for start in range(0, len(items), chunk):
        results.extend(_predict_chunk(run, items[start:start + chunk], batch_size))
    return results


def _predict_chunk(run: Run, items, batch_size: int) -> list[dict]:
    out: list[dict | None] = []
    groups: dict[tuple, list[tuple[int, str, np.ndarray, np.ndarray | None]]] = {}
    for path, error in items:
        if error is not None:
            out.append({"path": path, "error": error})
            continue
        try:
            features, functionals = _file_inputs(run, path)
            features = np.asarray(features, dtype=np.float32)
            if not np.all(np.isfinite(features)):
                raise AudioError(path, "gives non-finite features", "check that the recording is not corrupt")
        except Exception as error:  # one bad file must not stop the others
            out.append({"path": path, "error": _error_line(error)})
            continue
        out.append(None)
        groups.setdefault(features.shape, []).append((len(out) - 1, path, features, functionals))
    for shape, members in groups.items():
        X = np.stack([m[2] for m in members])
        F = None if run.fusion is None else np.stack([m[3] for m in members])
        try:
            proba = _proba(run, X, batch_size, F)
        except Exception as error:
            for slot, path, *_ in members:
                out[slot] = {"path": path, "error": f"features of shape {shape} do not fit the model "
                                                    f"({_error_line(error)})"}
            continue
        for (slot, path, *_), p in zip(members, proba):
            out[slot] = _result(run, path, p)
    return out  # type: ignore[return-value]


def _mono(y, sr: int) -> tuple[np.ndarray, int]:
    """Check a waveform and return it as mono float32, with its rate as an int."""
    from .audio import MIN_DURATION

    y = np.asarray(y)
    if np.issubdtype(y.dtype, np.integer):  # e.g. int16 from a browser upload
        y = y.astype(np.float32) / float(np.iinfo(y.dtype).max)
    y = y.astype(np.float32)
    if y.ndim == 2:
        axis = 0 if y.shape[0] < y.shape[1] else 1
        y = y.mean(axis=axis)
    if y.ndim != 1 or y.size == 0:
        raise SerlibError(f"waveform of shape {np.shape(y)}: expected a non-empty mono or stereo signal")
    if not np.all(np.isfinite(y)):
        raise SerlibError("waveform contains NaN or infinite samples")
    sr = int(sr)
    if sr <= 0:
        raise SerlibError(f"sample rate {sr}: must be positive")
    if len(y) / sr < MIN_DURATION:
        raise SerlibError(f"recording too short ({1000 * len(y) / sr:.0f} ms); record at least a second")
    return y, sr


def prepare_waveform(y, sr: int, spec) -> np.ndarray:
    """A waveform as the run's features expect it: mono, ``spec.sr``, trimmed, cropped/padded.

    The same steps :func:`serlib.audio.load_audio` applies to a file for
    :func:`serlib.features.extract_file`. ``y`` may be ``(n,)``, ``(n, channels)`` or
    ``(channels, n)`` (the shorter axis is taken as channels). Explained in the chapter
    "Beyond the reports".
    """
    from .audio import MIN_DURATION, fix_length, resample, trim_silence

    y, sr = _mono(y, sr)
    y = resample(np.ascontiguousarray(y), sr, spec.sr)
    if spec.trim:
        y = trim_silence(y, spec.sr, top_db=spec.top_db)
    if spec.offset:
        y = y[int(round(spec.offset * spec.sr)):]
    if spec.duration is not None:
        y = fix_length(y, int(round(spec.duration * spec.sr)))
    if y.size == 0:
        y = np.zeros(int(spec.sr * MIN_DURATION), dtype=np.float32)
    return np.ascontiguousarray(y, dtype=np.float32)


def predict_waveform(run, y, sr: int) -> dict:
    """Label and class probabilities for one waveform (e.g. from the book's upload widget).

    ``run`` is a loaded :class:`~serlib.runs.Run` or a run folder; ``y`` a mono or stereo
    signal at ``sr`` Hz. Returns ``{"label", "probabilities": {label: p}}``. Explained in
    the chapter "Beyond the reports".
    """
    from .features import extract

    run = _as_run(run)
    features = np.asarray(extract(prepare_waveform(y, sr, run.spec), run.spec), dtype=np.float32)
    F = None
    if run.fusion is not None:
        from .functionals import speed_functionals

        F = speed_functionals(*_mono(y, sr), run.functional_speeds)[None]
    proba = _proba(run, features[None, ...], F=F)[0]
    result = _result(run, "", proba)
    result.pop("path")
    return result


__all__ = ["predict_paths", "predict_waveform", "prepare_waveform", "expand_paths", "AUDIO_SUFFIXES"]
