"""Prosodic contour: how pitch, loudness and timbre move through the utterance.

The statistics of :mod:`serlib.functionals` describe a clip as a bag of frames: its mean
pitch, its spread, its percentiles. They cannot tell a sentence whose pitch rises at the
end from one whose pitch falls, nor a stressed first word from a stressed last one, yet
intonation and emphasis carry much of an emotion. This module keeps the order: it cuts the
clip (silence trimmed) into :data:`N_SEGMENTS` equal stretches of time and describes each by

* its mean log F0 over loud frames, relative to the clip's median (0 when a stretch has no
  loud frame), so the contour's shape counts and not the speaker's register;
* its mean log RMS energy relative to the clip's loudest frame;
* its share of loud frames (pauses);
* its mean of the first :data:`N_MFCC` MFCCs, relative to the clip's mean (how the
  timbre moves away from the speaker's average).

That is ``N_SEGMENTS * (3 + N_MFCC)`` numbers, computed from the frame tracks that
:func:`serlib.functionals.utterance_functionals` already has, so it costs almost nothing.
RAVDESS speakers all say one of two sentences, so equal stretches line up roughly with the
same words; on free speech the contour is a coarser but still meaningful summary.
``benchmarks/results/recommended_tuning.json`` records what it adds to the regression.
Explained in the chapter "A second opinion".
"""
from __future__ import annotations

import numpy as np

N_SEGMENTS = 8
N_MFCC = 13
ROWS = ("log_f0", "log_rms", "loud_share", *(f"mfcc{i}" for i in range(N_MFCC)))


def contour_names() -> list[str]:
    """Column names of :func:`contour`, in order: segment by segment, :data:`ROWS` in each.

    Explained in the chapter "A second opinion".
    """
    return [f"contour{s}_{row}" for s in range(N_SEGMENTS) for row in ROWS]


def contour(log_f0: np.ndarray, log_rms: np.ndarray, loud: np.ndarray, mfcc: np.ndarray) -> np.ndarray:
    """The contour vector (length ``len(contour_names())``) of one clip's frame tracks.

    ``log_f0``, ``log_rms`` and ``loud`` hold one value per frame (log F0 of every frame,
    log RMS energy, and whether the frame is loud enough to carry a voice); ``mfcc`` is
    ``(coefficients >= N_MFCC, frames)``. The tracks are cut to their common length; a clip
    of fewer frames than segments repeats its frames. Explained in the chapter "Beyond the
    reports".
    """
    n = min(len(log_f0), len(log_rms), len(loud), mfcc.shape[1])
    if n == 0:
        return np.zeros(len(contour_names()), dtype=np.float32)
    log_f0 = np.asarray(log_f0[:n], dtype=np.float64)
    log_rms = np.asarray(log_rms[:n], dtype=np.float64)
    loud = np.asarray(loud[:n], dtype=bool)
    mfcc = np.asarray(mfcc[:N_MFCC, :n], dtype=np.float64)
    reference = np.median(log_f0[loud]) if loud.any() else np.median(log_f0)
    log_rms = log_rms - log_rms.max()
    mfcc = mfcc - mfcc.mean(axis=1, keepdims=True)
    frames = np.arange(n) if n >= N_SEGMENTS else (np.arange(N_SEGMENTS) * n) // N_SEGMENTS
    out = []
    for segment in np.array_split(frames, N_SEGMENTS):
        voiced = loud[segment]
        pitch = float(log_f0[segment][voiced].mean() - reference) if voiced.any() else 0.0
        out += [pitch, log_rms[segment].mean(), voiced.mean(), *mfcc[:, segment].mean(axis=1)]
    return np.asarray(out, dtype=np.float32)
