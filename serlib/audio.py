"""Reading audio the way every chapter needs it: mono, one sample rate, optional crop.

RAVDESS ships 48 kHz WAV (a few clips stereo); the shared development copy is 22,050 Hz
FLAC. :func:`load_audio` turns either, and any other readable file, into a mono
``float32`` array at the rate asked for. Explained in the chapter "The data".

Memory stays bounded whatever a file holds or declares:

* only the first :data:`MAX_ANALYSIS_SECONDS` (30 s) of a recording are decoded (read from
  disk in blocks, mixed to mono block by block) and analysed, with one warning line per
  file when a recording is longer; RAVDESS clips last 3 to 6 s, so they are never cut;
* files declaring a sample rate outside :data:`MIN_SAMPLE_RATE` to
  :data:`MAX_SAMPLE_RATE` (4 kHz to 384 kHz) are refused with a one-line
  :class:`~serlib.errors.AudioError`: a 12 KB file that declares 50 Hz would otherwise
  become minutes of 16 kHz audio once resampled.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .config import DEFAULT_SR, warn_once
from .errors import AudioError

#: Shortest clip (seconds) that still holds one analysis window at the usual settings.
MIN_DURATION = 0.05
#: Longest stretch (seconds) of a recording that is decoded and analysed: the first 30 s.
#: Longer recordings are cut there (one warning line per file). Far above RAVDESS's 3-6 s
#: clips, so their results are unchanged; it bounds memory whatever the recording's length
#: (the clip statistics of :mod:`serlib.functionals` of 30 s take about 0.2 GB beyond the
#: 0.3 GB of the libraries themselves).
MAX_ANALYSIS_SECONDS = 30.0
#: Sample rates (Hz) serlib reads; files declaring others are refused.
MIN_SAMPLE_RATE = 4_000
MAX_SAMPLE_RATE = 384_000
#: Samples (all channels together) decoded per block: many-channel files stay bounded too.
_BLOCK_SAMPLES = 1 << 21


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


def _check_rate(path: Path, sr: int) -> None:
    if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
        raise AudioError(path, f"declares a sample rate of {sr:,} Hz, outside the {MIN_SAMPLE_RATE:,}-"
                         f"{MAX_SAMPLE_RATE:,} Hz serlib reads", "re-export it at a usual rate (16 or 48 kHz)")


def _read(path: Path, max_seconds: float | None = None):
    """Return (mono float32 samples, sample rate, seconds cut off) or raise AudioError.

    The seconds cut off are 0.0 for a recording read whole, NaN when a longer one's length
    is unknown (audioread).

    At most ``max_seconds`` from the start are decoded (all of it when None), in blocks of
    about :data:`_BLOCK_SAMPLES` samples mixed to mono one block at a time.
    """
    import soundfile as sf

    _check_file(path)
    try:
        with sf.SoundFile(str(path)) as fh:
            sr, channels, frames = int(fh.samplerate), max(1, int(fh.channels)), int(fh.frames)
            _check_rate(path, sr)
            limit = frames if max_seconds is None else min(frames, int(np.ceil(max_seconds * sr)))
            y = np.empty(max(0, limit), dtype=np.float32)
            block, done = max(4096, _BLOCK_SAMPLES // channels), 0
            while done < limit:
                data = fh.read(min(block, limit - done), dtype="float32", always_2d=True)
                if len(data) == 0:
                    break
                y[done:done + len(data)] = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
                done += len(data)
            return y[:done], sr, max(0.0, (frames - done) / sr) if done == limit else 0.0
    except AudioError:
        raise
    except Exception as sf_error:
        if path.suffix.lower() in _SNDFILE_SUFFIXES:   # libsndfile's verdict is final for these
            raise AudioError(path, f"not readable as audio ({_reason(sf_error)})") from None
        try:  # other containers (m4a, aac, wma, ...): audioread, which uses ffmpeg when installed
            import warnings

            import librosa

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                y, sr = librosa.load(str(path), sr=None, mono=True, duration=max_seconds)
        except Exception:
            raise AudioError(path, f"not readable as audio ({_reason(sf_error)})",
                             "convert it to wav or flac (e.g. with ffmpeg), or install ffmpeg") from None
        _check_rate(path, int(sr))
        y = np.asarray(y, dtype=np.float32)
        return y, int(sr), float("nan") if max_seconds is not None and len(y) >= max_seconds * sr else 0.0


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
    max_seconds: float | None = MAX_ANALYSIS_SECONDS,
) -> np.ndarray:
    """Load ``path`` as a mono float32 signal at ``sr`` Hz (``None`` keeps the file's rate).

    Stereo is mixed down by averaging the channels. ``offset`` skips that many seconds;
    ``duration`` keeps that many, zero-padding shorter clips when ``pad`` is true (the
    crop-and-pad of reports 000–002). ``trim`` removes leading/trailing silence first.
    Only the first ``max_seconds`` (default :data:`MAX_ANALYSIS_SECONDS`, at least
    ``offset + duration``; ``None``: all) are decoded, with one warning line per file when
    the recording is longer.

    Raises :class:`~serlib.errors.AudioError` with a one-line message for missing, empty,
    unreadable or too-short files and for sample rates outside :data:`MIN_SAMPLE_RATE` to
    :data:`MAX_SAMPLE_RATE`. Explained in the chapter "The data".
    """
    path = Path(path)
    if max_seconds is not None and duration is not None:
        max_seconds = max(float(max_seconds), offset + duration)
    y, file_sr, cut = _read(path, max_seconds)
    if y.size == 0:
        raise AudioError(path, "holds no audio samples", "re-copy or re-record it")
    if not cut == 0.0:      # NaN: cut, length unknown
        length = f"longer than {max_seconds:g} s" if np.isnan(cut) else f"{len(y) / file_sr + cut:,.1f} s long"
        warn_once(("long recording", str(path), max_seconds),
                  f"{path}: {length}; serlib analyses only its first {max_seconds:g} s "
                  "(serlib.audio.MAX_ANALYSIS_SECONDS); cut it into shorter clips to analyse the rest")
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
    _check_rate(path, int(info.samplerate))
    return {"sample_rate": int(info.samplerate), "channels": int(info.channels),
            "duration": float(info.frames) / info.samplerate}
