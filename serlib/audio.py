"""Reading audio the way every chapter needs it: mono, one sample rate, optional crop.

RAVDESS ships 48 kHz WAV (a few clips stereo); the shared development copy is 22,050 Hz
FLAC. :func:`load_audio` turns either, and any other readable file, into a mono
``float32`` array at the rate asked for. Explained in the chapter "The data".
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .config import DEFAULT_SR
from .errors import AudioError

#: Shortest clip (seconds) that still holds one analysis window at the usual settings.
MIN_DURATION = 0.05


#: Suffixes libsndfile reads itself; other formats (m4a, aac, ...) go through audioread.
_SNDFILE_SUFFIXES = {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".aifc", ".mp3",
                     ".au", ".snd", ".caf", ".w64", ".rf64"}


def _reason(error: Exception) -> str:
    """First line of a decoder's message, without libsndfile's "Error opening '<path>': " prefix."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    text = re.sub(r"^Error opening .*?: ", "", text).strip().rstrip(".")
    if "does not exist or is not a regular file" in text:
        # libsndfile says this when a decoder (e.g. mpg123) finds no audio in an existing file
        text = "no audio stream found; the file is damaged or not in the format its name says"
    return text[:1].lower() + text[1:] if text else type(error).__name__


def _check_file(path: Path) -> None:
    """Raise AudioError for a path that cannot be an audio file at all."""
    if not path.exists():
        raise AudioError(path, "no such file", "check the path")
    if path.is_dir():
        raise AudioError(path, "is a folder, not an audio file", "pass the files inside it")
    if path.stat().st_size == 0:
        raise AudioError(path, "the file is empty (0 bytes)", "re-copy or re-record it")


def _read(path: Path):
    """Return (samples[frames, channels] float32, sample_rate) or raise AudioError."""
    import soundfile as sf

    _check_file(path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        return data, int(sr)
    except Exception as sf_error:
        if path.suffix.lower() in _SNDFILE_SUFFIXES:   # libsndfile's verdict is final for these
            raise AudioError(path, f"not readable as audio ({_reason(sf_error)})") from None
        try:  # other containers (m4a, aac, wma, ...): audioread, which uses ffmpeg when installed
            import warnings

            import librosa

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                y, sr = librosa.load(str(path), sr=None, mono=False)
            y = np.atleast_2d(np.asarray(y, dtype=np.float32)).T
            return y, int(sr)
        except Exception:
            raise AudioError(path, f"not readable as audio ({_reason(sf_error)})",
                             "convert it to wav or flac (e.g. with ffmpeg), or install ffmpeg") from None


def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a mono signal with soxr (high quality); a no-op when the rates agree."""
    if orig_sr == target_sr:
        return y
    import soxr

    return soxr.resample(y, orig_sr, target_sr, quality="HQ").astype(np.float32)


def fix_length(y: np.ndarray, n: int) -> np.ndarray:
    """Crop or zero-pad (at the end) to exactly ``n`` samples, as the reports did."""
    if len(y) >= n:
        return y[:n]
    return np.pad(y, (0, n - len(y)))


def trim_silence(y: np.ndarray, sr: int, top_db: float = 30.0, frame_ms: float = 20.0) -> np.ndarray:
    """Drop leading and trailing frames quieter than ``top_db`` below the loudest frame.

    An energy voice-activity detector in the spirit of report 004's WebRTC VAD (which
    needs a compiled package); all-silent input comes back unchanged rather than empty.
    Explained in the chapter "Features and augmentation".
    """
    frame = max(1, int(sr * frame_ms / 1000))
    n_frames = len(y) // frame
    if n_frames == 0:
        return y
    rms = np.sqrt(np.mean(y[: n_frames * frame].reshape(n_frames, frame) ** 2, axis=1) + 1e-20)
    db = 20 * np.log10(rms / max(rms.max(), 1e-10))
    voiced = np.flatnonzero(db > -top_db)
    if rms.max() < 1e-6 or len(voiced) == 0:
        return y
    return y[voiced[0] * frame : min(len(y), (voiced[-1] + 1) * frame)]


def load_audio(
    path,
    sr: int | None = DEFAULT_SR,
    *,
    offset: float = 0.0,
    duration: float | None = None,
    pad: bool = True,
    trim: bool = False,
    top_db: float = 30.0,
) -> np.ndarray:
    """Load ``path`` as a mono float32 signal at ``sr`` Hz (``None`` keeps the file's rate).

    Stereo is mixed down by averaging the channels. ``offset`` skips that many seconds;
    ``duration`` keeps that many, zero-padding shorter clips when ``pad`` is true (the
    crop-and-pad of reports 000–002). ``trim`` removes leading/trailing silence first.

    Raises :class:`~serlib.errors.AudioError` with a one-line message for missing, empty,
    unreadable or too-short files. Explained in the chapter "The data".
    """
    path = Path(path)
    data, file_sr = _read(path)
    if data.size == 0 or data.shape[0] == 0:
        raise AudioError(path, "holds no audio samples", "re-copy or re-record it")
    y = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(y)):
        raise AudioError(path, "contains NaN or infinite samples", "re-export it as PCM audio")
    if len(y) / file_sr < MIN_DURATION:
        raise AudioError(
            path,
            f"is too short ({1000 * len(y) / file_sr:.1f} ms, need at least {1000 * MIN_DURATION:.0f} ms)",
            "use a longer recording",
        )
    target = file_sr if sr is None else int(sr)
    y = resample(np.ascontiguousarray(y, dtype=np.float32), file_sr, target)
    return shape_signal(y, target, offset=offset, duration=duration, pad=pad, trim=trim, top_db=top_db)


def shape_signal(y: np.ndarray, sr: int, *, offset: float = 0.0, duration: float | None = None,
                 pad: bool = True, trim: bool = False, top_db: float = 30.0) -> np.ndarray:
    """The trim, offset and crop-or-pad steps of :func:`load_audio`, for a signal already loaded.

    ``load_audio(path, sr, offset=..., trim=...)`` equals ``shape_signal(load_audio(path, sr),
    sr, offset=..., trim=...)``, so a caller that needs the whole recording too decodes the
    file once. Explained in the chapter "The data".
    """
    if trim:
        y = trim_silence(y, sr, top_db=top_db)
    if offset:
        y = y[int(round(offset * sr)) :]
    if duration is not None:
        n = int(round(duration * sr))
        y = fix_length(y, n) if pad else y[:n]
    return np.ascontiguousarray(y, dtype=np.float32)


def audio_info(path) -> dict:
    """Sample rate, channels and duration of a file without decoding it all.

    Raises :class:`~serlib.errors.AudioError` (one line naming the file) for missing,
    empty or unreadable files. Explained in the chapter "The data".
    """
    import soundfile as sf

    path = Path(path)
    _check_file(path)
    try:
        info = sf.info(str(path))
    except Exception as error:
        raise AudioError(path, f"not readable as audio ({_reason(error)})") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError(path, "holds no audio samples", "re-copy or re-record it")
    return {"sample_rate": int(info.samplerate), "channels": int(info.channels),
            "duration": float(info.frames) / info.samplerate}
