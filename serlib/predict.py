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

File names need not be RAVDESS names. The model is loaded once. Every result has a
``status``:

``"ok"``
    ``{"path", "status": "ok", "label", "probabilities": {label: p}}``.
``"no speech found"``
    ``{"path", "status": "no speech found", "label": None, "probabilities": None, "reason"}``:
    the recording is digital silence (e.g. a stereo file whose channels cancel), near-silent
    (its 64 ms frames in the speech band 150-4000 Hz exceed -70 dBFS for less than 0.15 s in all) or has
    its sound only outside that band (hum, a DC offset, ultrasound). No emotion is guessed
    for it. This is an energy test: it does not tell speech from other loud sounds.
``"error"``
    ``{"path", "status": "error", "error"}``: the file cannot be read (one line); the others
    are still predicted.

A result may also carry ``"warning"`` (one line), e.g. for a truncated file (shorter than
its header declares), which is predicted on what is there. Explained in the chapter
"Beyond the reports".
"""
from __future__ import annotations

import math
import os
import struct
from pathlib import Path

import numpy as np

from .errors import AudioError, SerlibError
from .runs import Run, load_run

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: Result statuses (see the module docstring).
OK, NO_SPEECH, ERROR = "ok", "no speech found", "error"
#: The energy test of :func:`no_speech_reason`: speech band (Hz), level (dBFS) a frame must
#: exceed in it, and for how long (seconds) in all. The quietest RAVDESS clip reaches -57 dBFS.
SPEECH_BAND = (150.0, 4000.0)
SPEECH_DBFS = -70.0
MIN_SPEECH_SECONDS = 0.15
_FRAME_SECONDS = 0.064

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
    return {"path": path, "status": OK, "label": run.labels[int(np.argmax(proba))],
            "probabilities": probabilities}


def _no_speech(path: str, reason: str) -> dict:
    return {"path": path, "status": NO_SPEECH, "label": None, "probabilities": None, "reason": reason}


def _error(path: str, error: str) -> dict:
    return {"path": path, "status": ERROR, "error": error}


def speech_band_levels(y: np.ndarray, sr: int) -> np.ndarray:
    """Level (dBFS, a full-scale sine at -3) of each 64 ms frame of ``y`` within
    :data:`SPEECH_BAND`, each frame's mean removed and Hann-windowed. Memory stays bounded
    (2,048 frames at a time). Explained in the chapter "Beyond the reports".
    """
    n = max(16, int(round(_FRAME_SECONDS * sr)))
    y = np.asarray(y, dtype=np.float32)
    if len(y) < n:
        y = np.pad(y, (0, n - len(y)))
    count = len(y) // n
    window = np.hanning(n).astype(np.float32)
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    band = (freqs >= SPEECH_BAND[0]) & (freqs <= min(SPEECH_BAND[1], sr / 2))
    scale = 2.0 / (n * float(np.sum(window.astype(np.float64) ** 2)))
    levels = []
    for start in range(0, count, 2048):
        frames = y[start * n:min(count, start + 2048) * n].reshape(-1, n)
        frames = (frames - frames.mean(axis=1, keepdims=True)) * window
        power = scale * np.sum(np.abs(np.fft.rfft(frames, axis=1)[:, band]) ** 2, axis=1)
        levels.append(10 * np.log10(power + 1e-20))
    return np.concatenate(levels)


def no_speech_reason(y: np.ndarray, sr: int) -> str | None:
    """Why the mono recording ``y`` holds no speech to judge (one line), or None when it may.

    Digital silence; near-silence (under :data:`SPEECH_DBFS` in the speech band for all but
    :data:`MIN_SPEECH_SECONDS`); or sound only outside :data:`SPEECH_BAND` (hum, a DC offset).
    :func:`predict_paths` and :func:`predict_waveform` return ``status`` "no speech found"
    with this ``reason`` instead of an emotion. Explained in the chapter "Beyond the reports".
    """
    y = np.asarray(y, dtype=np.float32)
    if not np.any(y):
        return "digital silence: every sample is zero (a stereo file whose channels cancel mixes to this too)"
    levels = speech_band_levels(y, sr)
    need = min(len(levels), math.ceil(MIN_SPEECH_SECONDS / _FRAME_SECONDS))
    if int(np.sum(levels > SPEECH_DBFS)) >= need:
        return None
    band = f"{SPEECH_BAND[0]:.0f}-{SPEECH_BAND[1]:.0f} Hz"
    peak = 20 * np.log10(float(np.max(np.abs(y))))
    if peak > SPEECH_DBFS + 10 and levels.max() < SPEECH_DBFS:
        return (f"no sound in the speech band ({band}; loudest frame {levels.max():.0f} dBFS there, samples up to "
                f"{peak:.0f} dBFS): only hum, a DC offset or sounds outside the band")
    return (f"near-silent: the speech band ({band}) stays under {SPEECH_DBFS:.0f} dBFS except for "
            f"{int(np.sum(levels > SPEECH_DBFS)) * _FRAME_SECONDS:.2f} s (loudest frame {levels.max():.0f} dBFS)")


def _declared_shortfall(path) -> tuple[int, int] | None:
    """``(declared, present)`` bytes of the audio chunk of a WAV/AIFF file cut short, else None."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(12)
            if len(head) < 12:
                return None
            if head[:4] in (b"RIFF", b"RIFX") and head[8:12] == b"WAVE":
                endian, audio = ("<" if head[:4] == b"RIFF" else ">"), b"data"
            elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
                endian, audio = ">", b"SSND"
            else:
                return None
            pos = 12
            for _ in range(10_000):          # chunks before the audio (fmt, LIST, ...)
                if pos + 8 > size:
                    return None
                fh.seek(pos)
                chunk, length = struct.unpack(endian + "4sI", fh.read(8))
                if chunk == audio:
                    present = size - pos - 8
                    if length in (0, 0xFFFFFFFF) or length <= present:   # 0 / -1: written while streaming
                        return None
                    return length, present
                pos += 8 + length + (length & 1)
    except (OSError, struct.error):
        return None
    return None


def truncation_warning(path, decoded_seconds: float | None = None) -> str | None:
    """A one-line warning when ``path`` holds less audio than its header declares (a WAV or
    AIFF file cut short, or a file that decoded to ``decoded_seconds``, clearly fewer than
    the header's frames or :data:`serlib.audio.MAX_ANALYSIS_SECONDS`), else None. Explained
    in the chapter "Beyond the reports".
    """
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception:   # not a libsndfile format: nothing to compare with
        info = None
    shortfall = _declared_shortfall(path)
    if shortfall is not None:
        declared, present = shortfall
        if info is not None and info.samplerate > 0 and info.frames > 0:
            seconds = info.frames / info.samplerate
            return (f"truncated: its header declares {seconds * declared / present:.2f} s of audio but the file "
                    f"holds {seconds:.2f} s; predicted on what is there, re-copy or re-export it")
        return (f"truncated: its header declares {declared} bytes of audio but the file holds {present}; "
                "re-copy or re-export it")
    if decoded_seconds is not None and info is not None and info.samplerate > 0 and info.frames > 0:
        from .audio import MAX_ANALYSIS_SECONDS

        declared_seconds = info.frames / info.samplerate
        expected = min(declared_seconds, MAX_ANALYSIS_SECONDS)   # longer files are cut there on purpose
        if expected - decoded_seconds > max(0.1, 0.05 * expected):
            return (f"decoded {decoded_seconds:.2f} s of the {declared_seconds:.2f} s its header declares: the file "
                    "may be truncated; predicted on what is there, re-copy or re-export it")
    return None


def _proba(run: Run, X: np.ndarray, batch_size: int = 32, F: np.ndarray | None = None) -> np.ndarray:
    return run.predict_proba(X, batch_size=batch_size, functionals=F)


def _file_inputs(run: Run, path: str, level_db: float | None = None) -> dict:
    """The features of ``path`` and, for a fused run, its clip functionals, or the reason it
    holds no speech; also the seconds decoded.

    The file is decoded once, at the rate the run's pipeline reads, and every view comes
    from that signal by the same code as in training (:meth:`serlib.pipeline.Pipeline.describe_signal`).
    """
    from .audio import audio_info, load_audio

    pipeline = run.prediction_pipeline if level_db is None else run.prediction_pipeline.replace(level_db=level_db)
    sr = pipeline.decode_rate or int(audio_info(path)["sample_rate"])
    y = load_audio(path, sr=sr)
    out = {"features": None, "functionals": None, "reason": no_speech_reason(y, sr), "seconds": len(y) / sr}
    if out["reason"] is None:
        X, F = run.inputs(pipeline.describe_signal(y, sr, path))
        out["features"], out["functionals"] = X[0], (F[0] if F is not None else None)
    return out


def predict_paths(run_dir, paths, *, batch_size: int = 32, level_db: float | None = None) -> list[dict]:
    """Predict every audio file in ``paths`` (files and/or folders) with the run in ``run_dir``.

    ``run_dir`` is a run folder or a loaded :class:`~serlib.runs.Run` (the model is loaded
    once). Returns one dict per file, in input order, with a ``status``:
    ``{"path", "status": "ok", "label", "probabilities": {label: p}}``;
    ``{"path", "status": "no speech found", "label": None, "probabilities": None, "reason"}``
    for silence, near-silence or sound only outside the speech band (:func:`no_speech_reason`);
    ``{"path", "status": "error", "error"}`` for a file that cannot be read (the others are
    still predicted). Any of them may carry a one-line ``"warning"``, e.g. for a truncated
    file (:func:`truncation_warning`). Raises :class:`~serlib.errors.SerlibError` only when
    the run itself is unusable. ``level_db`` scales each file so its loudest frames sit at
    that level first (:mod:`serlib.level`, chapter "Does it travel? RAVDESS to EmoDB"), for a
    run trained without that setting. Explained in the chapter "Beyond the reports".
    """
    from .level import check_level

    level_db = check_level(level_db)
    run = _as_run(run_dir)
    if run.fusion is not None:   # the encoder's weights (cache, fetch) fail here, once, naming their folder
        from .voice_encoder import load_encoder

        load_encoder()
    items = expand_paths(paths)
    results: list[dict] = []
    chunk = max(1, 4 * int(batch_size))
    for start in range(0, len(items), chunk):
        results.extend(_predict_chunk(run, items[start:start + chunk], batch_size, level_db))
    return results


def _predict_chunk(run: Run, items, batch_size: int, level_db: float | None = None) -> list[dict]:
    out: list[dict | None] = []
    groups: dict[tuple, list[tuple[int, str, np.ndarray, np.ndarray | None]]] = {}
    notes: dict[int, str] = {}
    for path, error in items:
        if error is not None:
            out.append(_error(path, error))
            continue
        try:
            inputs = _file_inputs(run, path, level_db)
            warning = truncation_warning(path, inputs["seconds"])
            if inputs["reason"] is None:
                features = np.asarray(inputs["features"], dtype=np.float32)
                if not np.all(np.isfinite(features)):
                    raise AudioError(path, "gives non-finite features", "check that the recording is not corrupt")
        except Exception as error:  # one bad file must not stop the others
            out.append(_error(path, _error_line(error)))
            continue
        if warning:
            notes[len(out)] = warning
        if inputs["reason"] is not None:
            out.append(_no_speech(path, inputs["reason"]))
            continue
        out.append(None)
        groups.setdefault(features.shape, []).append((len(out) - 1, path, features, inputs["functionals"]))
    for shape, members in groups.items():
        X = np.stack([m[2] for m in members])
        F = None if run.fusion is None else np.stack([m[3] for m in members])
        try:
            proba = _proba(run, X, batch_size, F)
        except Exception as error:
            for slot, path, *_ in members:
                out[slot] = _error(path, f"features of shape {shape} do not fit the model ({_error_line(error)})")
            continue
        for (slot, path, *_), p in zip(members, proba):
            out[slot] = _result(run, path, p)
    for slot, warning in notes.items():
        out[slot]["warning"] = warning   # type: ignore[index]
    return out  # type: ignore[return-value]


def _mono(y, sr: int) -> tuple[np.ndarray, int]:
    """Check a waveform and return it as mono float32, with its rate as an int."""
    from .audio import MAX_SAMPLE_RATE, MIN_DURATION, MIN_SAMPLE_RATE

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
    if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
        raise SerlibError(f"sample rate {sr} Hz: serlib reads {MIN_SAMPLE_RATE:,} to {MAX_SAMPLE_RATE:,} Hz; "
                          "resample the recording first")
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
    signal at ``sr`` Hz. Returns ``{"status": "ok", "label", "probabilities": {label: p}}``,
    or ``{"status": "no speech found", "label": None, "probabilities": None, "reason"}`` for
    silence, near-silence or sound only outside the speech band (:func:`no_speech_reason`).
    Explained in the chapter "Beyond the reports".
    """
    run = _as_run(run)
    y, sr = _mono(y, sr)
    reason = no_speech_reason(y, sr)
    if reason is not None:
        result = _no_speech("", reason)
        result.pop("path")
        return result
    features, F = run.inputs(run.prediction_pipeline.describe_signal(y, sr))
    proba = _proba(run, features, F=F)[0]
    result = _result(run, "", proba)
    result.pop("path")
    return result


__all__ = ["predict_paths", "predict_waveform", "prepare_waveform", "expand_paths", "no_speech_reason",
           "speech_band_levels", "truncation_warning", "AUDIO_SUFFIXES", "OK", "NO_SPEECH", "ERROR"]
