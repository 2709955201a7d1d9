"""Feature extraction: every representation the five reports used, plus serlib's own.

CONTRACT (owned by the features work; other modules rely on it):

- :class:`FeatureSpec` – a frozen dataclass describing how to turn a file into an array;
  ``spec.to_dict()`` / ``FeatureSpec.from_dict(d)`` round-trip through JSON (run folders
  store it), ``spec.key()`` is a stable hash used by the cache.
- ``extract(y, spec) -> np.ndarray``: one mono waveform already at ``spec.sr``.
- ``extract_file(path, spec) -> np.ndarray``: load with :func:`serlib.audio.load_audio`
  (``sr``, ``offset``, ``duration``, ``trim`` from the spec) then :func:`extract`.
- ``extract_corpus(paths, spec, *, n_jobs=None, cache=True, progress=True) -> np.ndarray``:
  stacked ``float32`` array ``(n_clips, *spec.shape)``, parallel, cached on disk.

Arrays are time-major without a channel axis: ``(n_frames, n_features)`` for matrices,
``(n_frames,)`` for the 1-D series of report 000, ``(n_mfcc,)`` for per-clip vectors.
Model builders add any channel axis they need.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from .config import DEFAULT_SR

KINDS = ("mfcc", "mfcc_band_mean", "mfcc_mean", "frames162", "logmel", "mfcc_deltas")


@dataclass(frozen=True)
class FeatureSpec:
    """How to turn a recording into a model input. Explained in "Features and augmentation".

    kind: ``mfcc`` (n_frames × n_mfcc), ``mfcc_band_mean`` (report 000: mean over the MFCC
    bands per frame, n_frames), ``mfcc_mean`` (report 002: mean over frames, n_mfcc),
    ``frames162`` (report 004: MFCC 20 + RMS + ZCR + mel 128 + chroma 12 per frame),
    ``logmel`` (n_frames × n_mels), ``mfcc_deltas`` (n_frames × 3·n_mfcc).
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

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown feature kind {self.kind!r}; choose one of {', '.join(KINDS)}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureSpec":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def replace(self, **changes) -> "FeatureSpec":
        return dataclasses.replace(self, **changes)

    def key(self) -> str:
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:16]
