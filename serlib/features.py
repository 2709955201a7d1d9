"""Feature extraction: every representation the five reports used, plus serlib's own.

CONTRACT (other modules rely on it):

- :class:`FeatureSpec` – a frozen dataclass describing how to turn a file into an array;
  ``spec.to_dict()`` / ``FeatureSpec.from_dict(d)`` round-trip through JSON (run folders
  store it), ``spec.key()`` is a stable hash used by the cache, ``spec.shape`` the
  per-clip output shape.
- ``extract(y, spec) -> np.ndarray``: one mono waveform already at ``spec.sr``.
- ``extract_file(path, spec) -> np.ndarray``: load with :func:`serlib.audio.load_audio`
  (``sr``, ``offset``, ``duration``, ``trim`` from the spec) then :func:`extract`.
- :func:`serlib.feature_cache.extract_corpus` stacks the features of many files into one
  ``float32`` array ``(n_clips, *spec.shape)``, in parallel, cached on disk; it builds on
  this module (:func:`feature_plan`, :func:`install_plan`, :func:`extract_file`), never the
  other way round.

Arrays are time-major without a channel axis: ``(n_frames, n_features)`` for matrices,
``(n_frames,)`` for the 1-D series of report 000, ``(n_mfcc,)`` for per-clip vectors.
Model builders add any channel axis they need.

How the numbers are computed (the same for every kind, and equal to librosa 0.11's
``librosa.feature.mfcc`` / ``melspectrogram`` / ``rms`` / ``chroma_stft`` with the same
settings to float32 precision; ``tests/test_features.py`` checks it):

1. frames of ``n_fft`` samples every ``hop_length`` samples, centred (the signal is
   zero-padded by ``n_fft // 2`` at both ends), so a clip of ``n`` samples gives
   ``1 + n // hop_length`` frames;
2. a ``window`` ("hann" or "hamming", periodic) of ``win_length`` samples centred in
   each frame, then the power spectrum ``|FFT|²``;
3. a Slaney-style triangular mel filterbank (``librosa.filters.mel``, 0 Hz to sr/2);
4. decibels ``10·log10(max(S, 1e-10))``, floored 80 dB below the loudest value of the
   clip (``librosa.power_to_db`` defaults) – so digital silence stays finite;
5. MFCC = orthonormal DCT-II of the log-mel bands, first ``n_mfcc`` coefficients.

The window and the (sparse) mel filterbank are built once per spec with librosa and
reused; worker processes receive them ready-made, so they never import librosa. The
large per-clip temporaries live in reused scratch buffers, and nothing calls a
multi-threaded BLAS, so extraction stays fast on a machine whose cores are busy with
other work. Explained in the chapter "Features and augmentation" (the steps themselves
in "MFCCs from first principles", see :mod:`serlib.mfcc_scratch`).

Decisions worth knowing: ``n_frames`` crops or zero-pads the *feature matrix* (zeros,
as reports 001 and 004 padded); a clip shorter than one analysis window is zero-padded
into at least one frame, while one shorter than :data:`serlib.audio.MIN_DURATION`
(50 ms) is refused with an :class:`~serlib.errors.AudioError`; ``frames162`` scales its
parts as described in ``REPORT_NOTES["004"]``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import threading
from dataclasses import dataclass

import numpy as np

from .config import DEFAULT_SR
from .errors import AudioError, ConfigError

KINDS = ("mfcc", "mfcc_band_mean", "mfcc_mean", "frames162", "logmel", "mfcc_deltas")
#: Kinds that give one vector per clip (no time axis).
VECTOR_KINDS = ("mfcc_mean",)
#: Window functions FeatureSpec accepts (periodic, as ``scipy.signal.get_window`` builds them).
WINDOWS = ("hann", "hamming")
#: Bumped whenever the numbers extract() produces change, so old cache entries are dropped.
ALGORITHM_VERSION = 1

#: Floor for power before the logarithm and headroom below the clip maximum (dB).
AMIN = 1e-10
TOP_DB = 80.0
#: Floor for the RMS energy of ``frames162`` before it is turned into dB (-100 dB).
RMS_FLOOR = 1e-5
#: Width of the regression window for the deltas of ``mfcc_deltas`` (librosa's default).
DELTA_WIDTH = 9
#: ``frames162`` is defined by its 162 rows: 20 MFCC + RMS + ZCR + 128 mel + 12 chroma.
FRAMES162_LAYOUT = (("mfcc", 20), ("rms_db", 1), ("zcr", 1), ("mel_db", 128), ("chroma", 12))


@dataclass(frozen=True)
class FeatureSpec:
    """How to turn a recording into a model input. Explained in "Features and augmentation".

    kind: ``mfcc`` (n_frames × n_mfcc), ``mfcc_band_mean`` (report 000: mean over the MFCC
    bands per frame, n_frames), ``mfcc_mean`` (report 002: mean over frames, n_mfcc),
    ``frames162`` (report 004: MFCC 20 + RMS + ZCR + mel 128 + chroma 12 per frame),
    ``logmel`` (n_frames × n_mels), ``mfcc_deltas`` (n_frames × 3·n_mfcc).

    ``sr`` is the rate the audio is resampled to; ``n_fft``/``hop_length``/``win_length``/
    ``window`` the analysis frames; ``offset``/``duration`` crop the waveform (zero-padding
    short clips), ``trim`` removes leading/trailing silence first (``top_db`` below the
    loudest 20 ms frame); ``n_frames`` fixes the number of frames by cropping or
    zero-padding the *feature matrix* at the end (as reports 001 and 004 did). For
    ``mfcc_mean`` ``n_frames`` only caps the frames averaged (padding would bias the mean).
    ``frames162`` always has 20 MFCC and 128 mel bands (its name); leaving ``n_mfcc`` at
    the default 40 selects 20.
    """

    kind: str = "mfcc"
    sr: int = DEFAULT_SR
    n_mfcc: int = 40
    n_mels: int = 128
    n_fft: int = 512
    hop_length: int = 160
    win_length: int | None = None
    n_frames: int | None = None
    offset: float = 0.0
    duration: float | None = None
    trim: bool = False
    top_db: float = 30.0
    window: str = "hann"

    def __post_init__(self):
        if not isinstance(self.kind, str) or self.kind not in KINDS:
            raise ConfigError(f"unknown feature kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if not isinstance(self.window, str) or self.window not in WINDOWS:
            raise ConfigError(f"unknown window {self.window!r}; choose one of {', '.join(WINDOWS)}")
        for name in ("sr", "n_fft", "hop_length", "n_mels", "n_mfcc"):
            _whole(name, getattr(self, name))
        for name in ("win_length", "n_frames"):
            if getattr(self, name) is not None:
                _whole(name, getattr(self, name), "or None")
        for name, lowest in (("offset", 0.0), ("duration", None), ("top_db", None)):
            value = getattr(self, name)
            if name == "duration" and value is None:
                continue
            if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
                    or (value < lowest if lowest is not None else value <= 0)):
                limit = "0 or more" if lowest is not None else "above 0" + (" (or None)" if name == "duration" else "")
                raise ConfigError(f"FeatureSpec.{name} must be a number {limit}, got {value!r}")
        if not isinstance(self.trim, bool):
            raise ConfigError(f"FeatureSpec.trim must be True or False, got {self.trim!r}")
        if self.kind == "frames162" and self.n_mfcc == 40:
            object.__setattr__(self, "n_mfcc", 20)  # the class default means "the kind's own"
        if self.kind == "frames162" and (self.n_mfcc, self.n_mels) != (20, 128):
            raise ConfigError("kind 'frames162' is 20 MFCC + RMS + ZCR + 128 mel + 12 chroma; "
                              f"got n_mfcc={self.n_mfcc}, n_mels={self.n_mels} (use kind 'mfcc'/'logmel' for others)")
        if self.win_length is not None and not 1 <= self.win_length <= self.n_fft:
            raise ConfigError(f"win_length={self.win_length} must lie between 1 and n_fft={self.n_fft}")
        if self.uses_mfcc and self.n_mfcc > self.n_mels:
            raise ConfigError(f"n_mfcc={self.n_mfcc} cannot exceed n_mels={self.n_mels}")

    # --------------------------------------------------------------------- contract
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureSpec":
        """The spec :meth:`to_dict` described (unknown keys are ignored); a bad one raises
        :class:`~serlib.errors.ConfigError`."""
        if not isinstance(d, dict):
            raise ConfigError(f"a feature spec is a dict of settings, not {type(d).__name__} {str(d)[:60]!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def replace(self, **changes) -> "FeatureSpec":
        """A copy with ``changes``; an unknown setting raises :class:`~serlib.errors.ConfigError`."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(f"FeatureSpec has no setting {', '.join(unknown)}; "
                              f"choose from {', '.join(f.name for f in dataclasses.fields(self))}")
        return dataclasses.replace(self, **changes)

    def key(self) -> str:
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:16]

    # --------------------------------------------------------------------- derived
    @property
    def uses_mfcc(self) -> bool:
        return self.kind in ("mfcc", "mfcc_band_mean", "mfcc_mean", "frames162", "mfcc_deltas")

    @property
    def n_features(self) -> int | None:
        """Values per frame (per clip for vector kinds); ``None`` for the 1-D series."""
        return {
            "mfcc": self.n_mfcc,
            "mfcc_band_mean": None,
            "mfcc_mean": self.n_mfcc,
            "frames162": sum(n for _, n in FRAMES162_LAYOUT),
            "logmel": self.n_mels,
            "mfcc_deltas": 3 * self.n_mfcc,
        }[self.kind]

    @property
    def fixed(self) -> bool:
        """True when every clip gives the same shape (``n_frames`` set, or a vector kind)."""
        return self.kind in VECTOR_KINDS or self.n_frames is not None

    @property
    def shape(self) -> tuple:
        """Per-clip output shape, time-major, no channel axis.

        ``(n_frames, n_features)`` for matrices, ``(n_frames,)`` for ``mfcc_band_mean``,
        ``(n_mfcc,)`` for ``mfcc_mean``. When ``n_frames`` is ``None`` the time entry is
        ``None`` (clips differ in length; a Keras ``Input`` accepts that). Explained in
        the chapter "Features and augmentation".
        """
        if self.kind in VECTOR_KINDS:
            return (self.n_features,)
        if self.kind == "mfcc_band_mean":
            return (self.n_frames,)
        return (self.n_frames, self.n_features)

    def frames_for(self, n_samples: int) -> int:
        """Frames a waveform of ``n_samples`` gives before any cropping or padding.

        Centred framing: ``1 + n_samples // hop_length`` for an even ``n_fft``. Explained in
        the chapter "MFCCs from first principles".
        """
        return 1 + (n_samples + 2 * (self.n_fft // 2) - self.n_fft) // self.hop_length


def _whole(name: str, value, extra: str = "") -> None:
    """Refuse anything but a whole number of 1 or more (a whole float such as 16000.0 passes)."""
    ok = (not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
          and value == int(value) and value >= 1)
    if not ok:
        raise ConfigError(f"FeatureSpec.{name} must be a positive whole number{' ' + extra if extra else ''}, "
                          f"got {value!r}")


def feature_shape(spec: FeatureSpec) -> tuple:
    """The per-clip array shape ``spec`` produces (see :attr:`FeatureSpec.shape`).

    Explained in the chapter "Features and augmentation".
    """
    return spec.shape


# ============================================================================ report specs
#: The feature settings of the five reports, as serlib reproduces them. Keys are report
#: numbers; ``"000-2d"`` is report 000's full matrix for its 2-D CNN and LSTM.
#: :data:`REPORT_NOTES` says what each report stated and what was chosen.
REPORT_SPECS: dict[str, FeatureSpec] = {
    "000": FeatureSpec(kind="mfcc_band_mean", sr=22050, n_mfcc=12, n_mels=128, n_fft=1024,
                       hop_length=256, n_frames=216, offset=0.5, duration=2.5),
    "000-2d": FeatureSpec(kind="mfcc", sr=22050, n_mfcc=12, n_mels=128, n_fft=1024,
                          hop_length=256, n_frames=216, offset=0.5, duration=2.5),
    "001": FeatureSpec(kind="mfcc", sr=22050, n_mfcc=20, n_mels=128, n_fft=512, hop_length=256,
                       n_frames=223, offset=0.5, duration=3.1),
    "002": FeatureSpec(kind="mfcc_mean", sr=22050, n_mfcc=40, n_mels=128, n_fft=512, hop_length=220),
    "003": FeatureSpec(kind="mfcc", sr=22050, n_mfcc=32, n_mels=128, n_fft=2048, hop_length=512,
                       n_frames=256),
    "004": FeatureSpec(kind="frames162", sr=16000, n_mfcc=20, n_mels=128, n_fft=512, win_length=400,
                       hop_length=320, window="hamming", n_frames=226, trim=True, top_db=30.0),
}

REPORT_NOTES: dict[str, str] = {
    "000": (
        "Stated: 12 MFCC bands averaged per time step, 216 time steps. The 216 comes from the "
        "Kaggle recipe the report follows: librosa.load(sr=44100, offset=0.5, duration=2.5) and "
        "librosa's default hop of 512 give 1 + 110250 // 512 = 216 frames. serlib keeps the same "
        "time and frequency resolution at half the rate: 22,050 Hz (the rate of the shared copy, "
        "so no resampling), hop 256 (11.6 ms), n_fft 1024 (46 ms, as 2048 at 44.1 kHz): "
        "1 + 55125 // 256 = 216 frames. The upper half of the 44.1 kHz spectrum (11-22 kHz) that "
        "the recipe's 128 mel bands also covered is absent; every clip is at least 2.9 s long, "
        "so the 2.5 s window never needs padding on RAVDESS."
    ),
    "000-2d": (
        "Report 000's 2-D CNN and LSTM take the MFCC matrix the 1-D series was averaged from: "
        "216 time steps x 12 bands (time-major; the 2-D CNN adds a channel axis)."
    ),
    "001": (
        "Stated: 20 MFCC, n_fft 512, hop 256, 3.1 s after a 0.5 s offset, zero-filled to "
        "223 x 20. Those settings do not give 223 frames: 3.1 s at 22,050 Hz (librosa's default "
        "rate; the report names none) with hop 256 gives 1 + 68355 // 256 = 268 frames. 223 "
        "frames is 2.59 s of audio, close to what the window 0.5-3.1 s (2.6 s, 224 frames) "
        "would give, so the report probably cut the clip at 3.1 s rather than keeping 3.1 s. "
        "serlib loads 3.1 s as stated and crops the MFCC matrix to the 223 frames stated (the "
        "first 2.59 s after the offset), zero-padding shorter clips."
    ),
    "002": (
        "Stated: 40-dimensional MFCCs every 10 ms; the models take a 40-vector (Conv1D output "
        "(None, 38, 8) from kernel 3, LSTM with 66,560 parameters = one input feature per "
        "step), so the frames are averaged per clip. Chosen: 22,050 Hz (the Kaggle kernel's "
        "librosa default), hop 220 samples (9.98 ms), n_fft 512 (23 ms, librosa's "
        "recommendation for speech), whole clip, no offset."
    ),
    "003": (
        "Stated: 'the data is treated as frames with size [32, 256]' and a first Conv1D kernel "
        "of (5 x 256 x 256), i.e. 256 input channels. Read as librosa's (n_mfcc, n_frames) "
        "orientation: 32 MFCC x 256 frames, at librosa's defaults (22,050 Hz, n_fft 2048, "
        "hop 512), whole clip zero-padded/cropped to 256 frames = 5.94 s (every speech clip "
        "fits; the report says clips do not exceed 5 s). serlib stores it time-major, "
        "(256, 32). Feeding the report's network literally means transposing to (32, 256), "
        "so its Conv1D slides along the 32 coefficients with the 256 frames as channels - "
        "a quirk the model builder reproduces and documents, not a choice serlib recommends."
    ),
    "004": (
        "Stated: 16 kHz, 20 ms frames, WebRTC VAD against silence, librosa MFCC + RMS + ZCR + "
        "mel spectrogram + chroma_stft stacked to 162 x K, zero-padded to the longest clip. "
        "Chosen: 20 ms frame step (hop 320) with a 25 ms Hamming window (win_length 400, the "
        "report cites 25 ms windows as the usual choice and Hamming as the best window) in a "
        "512-point FFT; RMS and ZCR over the same 25 ms of raw samples; serlib's energy trim "
        "(top_db 30) stands in for WebRTC VAD (a compiled package); 226 frames = 4.5 s covers "
        "the longest trimmed speech clip (4.24 s) with a margin. Scaling: MFCC as librosa "
        "(from dB mel), mel in dB (floor 80 dB below the clip maximum), RMS in dB (floor "
        "-100 dB), ZCR as a rate in [0, 1], chroma max-normalised per frame in [0, 1], "
        "tuning fixed at 0 (no per-clip tuning estimate). The report's Kaggle source fed raw "
        "mel power, whose range spans ten orders of magnitude; standardise per feature with "
        "training statistics either way."
    ),
}


def report_spec(report: str) -> FeatureSpec:
    """The :class:`FeatureSpec` of a report (``"000"`` … ``"004"``, ``"000-2d"``).

    Explained in the chapter "Features and augmentation".
    """
    key = str(report)
    if key not in REPORT_SPECS:
        raise ConfigError(f"no feature spec for report {report!r}; choose one of {', '.join(REPORT_SPECS)}")
    return REPORT_SPECS[key]


# ============================================================================ the plan
@dataclass(frozen=True)
class FeaturePlan:
    """Everything about a spec that does not depend on the waveform, built once per spec.

    Worker processes receive it ready-made (:func:`install_plan`), so they never import
    librosa. Explained in the chapter "Features and augmentation".
    """

    window: np.ndarray  # (n_fft,) float32, the analysis window centred in the frame
    mel: object  # scipy.sparse CSR (n_mels, n_bins) float32: each filter touches few bins
    chroma: np.ndarray | None  # (n_bins, 12) float32


_PLANS: dict[FeatureSpec, FeaturePlan] = {}


def _build_plan(spec: FeatureSpec) -> FeaturePlan:
    import librosa
    from scipy.signal import get_window
    from scipy.sparse import csr_matrix

    win_length = spec.win_length or spec.n_fft
    win = get_window(spec.window, win_length, fftbins=True)
    window = np.zeros(spec.n_fft, dtype=np.float64)
    start = (spec.n_fft - win_length) // 2
    window[start:start + win_length] = win
    mel = librosa.filters.mel(sr=spec.sr, n_fft=spec.n_fft, n_mels=spec.n_mels)
    chroma = None
    if spec.kind == "frames162":
        chroma = librosa.filters.chroma(sr=spec.sr, n_fft=spec.n_fft, tuning=0.0, n_chroma=12).T
        chroma = np.ascontiguousarray(chroma, dtype=np.float32)
    return FeaturePlan(window=window.astype(np.float32), mel=csr_matrix(mel.astype(np.float32)), chroma=chroma)


def feature_plan(spec: FeatureSpec) -> FeaturePlan:
    """The :class:`FeaturePlan` of ``spec`` (built on first use, then reused).

    Explained in the chapter "Features and augmentation".
    """
    plan = _PLANS.get(spec)
    if plan is None:
        plan = _PLANS[spec] = _build_plan(spec)
    return plan


def install_plan(spec: FeatureSpec, plan: FeaturePlan) -> None:
    """Use ``plan``, built in another process, for ``spec`` (what worker processes do).

    Explained in the chapter "Features and augmentation".
    """
    _PLANS.setdefault(spec, plan)


# ============================================================================ the numbers
_WORKSPACE = threading.local()
#: Scratch arrays larger than this are not kept between calls.
_BUFFER_KEEP_BYTES = 16 << 20


def _buffer(name: str, shape: tuple, dtype=np.float32) -> np.ndarray:
    """A scratch array reused from call to call (per thread; contents are garbage).

    Reusing the few large temporaries of a clip, instead of allocating them afresh,
    spares the ~500 page faults per clip that the C allocator's give-back-and-fault-again
    cycle would otherwise cost (as much time as the FFT itself).
    """
    size = int(np.prod(shape))
    if size * np.dtype(dtype).itemsize > _BUFFER_KEEP_BYTES:  # a long recording: do not hoard memory
        return np.empty(shape, dtype=dtype)
    store = _WORKSPACE.__dict__.setdefault("buffers", {})
    buf = store.get((name, np.dtype(dtype).str))
    if buf is None or buf.size < size:
        buf = store[(name, np.dtype(dtype).str)] = np.empty(max(size, 1), dtype=dtype)
    return buf[:size].reshape(shape)


def _frames(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Centred, zero-padded frames ``(T, n_fft)``: a strided view into a scratch buffer."""
    pad = n_fft // 2
    total = max(len(y) + 2 * pad, n_fft)  # n_fft: only for odd n_fft and one sample
    padded = _buffer("padded", (total,))
    padded[:pad] = 0
    padded[pad:pad + len(y)] = y
    padded[pad + len(y):] = 0
    return np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]


def _power_db(S: np.ndarray) -> np.ndarray:
    """``librosa.power_to_db`` (ref 1, amin 1e-10, top_db 80) into a new C-ordered array."""
    db = np.maximum(S, np.float32(AMIN), dtype=np.float32, order="C")
    np.log10(db, out=db)
    db *= np.float32(10.0)
    return np.maximum(db, db.max() - np.float32(TOP_DB), out=db)


def _fix_frames(X: np.ndarray, n: int | None) -> np.ndarray:
    if n is None or len(X) == n:
        return X
    if len(X) > n:
        return X[:n]
    pad = [(0, n - len(X))] + [(0, 0)] * (X.ndim - 1)
    return np.pad(X, pad)


def _deltas(X: np.ndarray, order: int) -> np.ndarray:
    from scipy.signal import savgol_filter

    mode = "interp" if len(X) >= DELTA_WIDTH else "nearest"
    return savgol_filter(X, DELTA_WIDTH, polyorder=order, deriv=order, axis=0, mode=mode).astype(np.float32)


def _zcr(y: np.ndarray, frame_length: int, hop: int, n_out: int) -> np.ndarray:
    """librosa.feature.zero_crossing_rate(center=True): edge-padded frames, crossings / length."""
    half = frame_length // 2
    padded = np.pad(y, (half, half), mode="edge")
    negative = padded < -1e-10  # |x| <= 1e-10 counts as 0, and 0 as positive
    flips = np.concatenate([[0], np.cumsum(negative[1:] != negative[:-1])])
    starts = np.arange(n_out) * hop
    ends = np.minimum(starts + frame_length - 1, len(padded) - 1)
    return ((flips[ends] - flips[starts]) / frame_length).astype(np.float32)


def _compute(y: np.ndarray, spec: FeatureSpec, plan: FeaturePlan) -> np.ndarray:
    from scipy import fft as sp_fft

    frames = _frames(y, spec.n_fft, spec.hop_length)
    windowed = np.multiply(frames, plan.window, out=_buffer("windowed", frames.shape))
    spectrum = sp_fft.rfft(windowed, axis=1, overwrite_x=True)
    power = np.multiply(spectrum.real, spectrum.real, out=_buffer("power", spectrum.shape))
    power += np.multiply(spectrum.imag, spectrum.imag, out=_buffer("scratch", spectrum.shape))
    del spectrum
    # Sparse filterbank times the spectrogram: each of the ~2 weights per bin adds one
    # contiguous row of T values; several times faster than a dense product, no BLAS
    # threads (which fight over shared cores) and a fixed summation order.
    mel_db = _power_db((plan.mel @ power.T).T)
    if spec.kind == "logmel":
        out = mel_db
    else:
        mfcc = sp_fft.dct(mel_db, type=2, norm="ortho", axis=1)[:, : spec.n_mfcc]
        if spec.kind == "mfcc":
            out = mfcc
        elif spec.kind == "mfcc_band_mean":
            out = mfcc.mean(axis=1)
        elif spec.kind == "mfcc_mean":
            return mfcc[: spec.n_frames].mean(axis=0)
        elif spec.kind == "mfcc_deltas":
            out = np.concatenate([mfcc, _deltas(mfcc, 1), _deltas(mfcc, 2)], axis=1)
        else:  # frames162
            win_length = spec.win_length or spec.n_fft
            start = (spec.n_fft - win_length) // 2
            raw = frames[:, start:start + win_length]
            rms = np.sqrt(np.mean(raw * raw, axis=1, dtype=np.float32))
            rms_db = 20.0 * np.log10(np.maximum(rms, RMS_FLOOR))
            zcr = _zcr(y, win_length, spec.hop_length, len(frames))
            chroma = np.einsum("tf,fc->tc", power, plan.chroma)  # plain loops: no BLAS threads
            peak = chroma.max(axis=1, keepdims=True)
            chroma = chroma / np.where(peak > np.finfo(np.float32).tiny, peak, 1.0)
            out = np.concatenate([mfcc, rms_db[:, None], zcr[:, None], mel_db, chroma], axis=1)
    return _fix_frames(out, spec.n_frames)


def _check_waveform(y, source="<waveform>") -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise AudioError(source, f"has shape {y.shape}; extract() takes one mono 1-D waveform",
                         "mix the channels down first (serlib.audio.load_audio does)")
    if y.size == 0:
        raise AudioError(source, "holds no samples", "pass a non-empty waveform")
    y = np.ascontiguousarray(y, dtype=np.float32)
    if not np.all(np.isfinite(y)):
        raise AudioError(source, "contains NaN or infinite samples", "clean or re-export the audio")
    return y


def extract(y, spec: FeatureSpec) -> np.ndarray:
    """Features of one mono waveform ``y`` already sampled at ``spec.sr`` (float32).

    ``spec.offset``/``duration``/``trim`` are *not* applied here (they belong to loading,
    see :func:`extract_file`); ``spec.n_frames`` is. The result has shape ``spec.shape``
    when ``n_frames`` is set, else ``(1 + len(y) // hop_length, ...)``. A waveform shorter
    than one analysis window is zero-padded into one frame (the centred framing does that);
    digital silence gives finite values (log floors). Empty or non-finite input raises
    :class:`~serlib.errors.AudioError`. Explained in the chapter "Features and augmentation".
    """
    y = _check_waveform(y)
    out = _compute(y, spec, feature_plan(spec))
    if not np.all(np.isfinite(out)):
        raise AudioError("<waveform>", "gave non-finite features (samples far outside [-1, 1]?)",
                         "scale the waveform to [-1, 1]")
    return np.ascontiguousarray(out, dtype=np.float32)


def load_for_spec(path, spec: FeatureSpec) -> np.ndarray:
    """The waveform :func:`extract_file` analyses: rate, trim, offset, duration of ``spec``.

    Raises :class:`~serlib.errors.AudioError` naming ``path`` when nothing is left (a clip
    shorter than ``spec.offset`` with no ``duration`` to pad to). Explained in the chapter
    "Features and augmentation".
    """
    from .audio import load_audio

    return _shaped_for_spec(load_audio(path, spec.sr), spec, path)


def _shaped_for_spec(y: np.ndarray, spec: FeatureSpec, path) -> np.ndarray:
    """``y`` (the whole recording at ``spec.sr``) trimmed, offset and cropped as ``spec`` says."""
    from .audio import shape_signal

    y = shape_signal(y, spec.sr, offset=spec.offset, duration=spec.duration, pad=True,
                     trim=spec.trim, top_db=spec.top_db)
    if len(y) == 0:
        raise AudioError(path, f"has no audio after the {spec.offset:g} s offset",
                         "use a longer recording or a spec with a smaller offset")
    return y


def extract_file(path, spec: FeatureSpec, *, speed: float = 1.0) -> np.ndarray:
    """Load ``path`` as ``spec`` says (:func:`load_for_spec`) and :func:`extract` its features.

    Clips shorter than :data:`serlib.audio.MIN_DURATION` (50 ms) raise
    :class:`~serlib.errors.AudioError`; longer ones shorter than one window are
    zero-padded. ``speed`` other than 1 describes the recording played that many times
    faster (:func:`serlib.augment.speed_perturb`, applied before trimming and cropping), a
    training copy for models with ``speed_copies``. Explained in the chapter "Features and
    augmentation".
    """
    if speed != 1:
        from .audio import load_audio
        from .augment import speed_perturb

        return extract_recording(speed_perturb(load_audio(path, spec.sr), spec.sr, speed), spec, path)
    return extract_recording(load_for_spec(path, spec), spec, path, shaped=True)


def extract_recording(y: np.ndarray, spec: FeatureSpec, path, *, shaped: bool = False) -> np.ndarray:
    """:func:`extract_file`'s features from ``y``, the whole recording of ``path`` at ``spec.sr``.

    For callers that also need the untrimmed recording (``serlib predict`` for a fused
    model), so the file is decoded once; ``shaped=True`` says ``y`` is already trimmed and
    cropped. Explained in the chapter "Features and augmentation".
    """
    if not shaped:
        y = _shaped_for_spec(y, spec, path)
    out = _compute(y, spec, feature_plan(spec))
    if not np.all(np.isfinite(out)):
        raise AudioError(path, "gave non-finite features", "re-export it as PCM audio in [-1, 1]")
    return np.ascontiguousarray(out, dtype=np.float32)


__all__ = ["KINDS", "FeatureSpec", "feature_shape", "REPORT_SPECS", "REPORT_NOTES", "report_spec",
           "extract", "extract_file", "extract_recording", "load_for_spec", "FeaturePlan", "feature_plan",
           "install_plan", "FRAMES162_LAYOUT"]
