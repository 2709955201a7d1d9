"""Recording level: how loud a clip's loudest frames are, and scaling a clip to a set level.

A corpus keeps, or removes, the level at which each take was recorded. RAVDESS keeps it (an
angry take's loudest frames sit about 20 dB above a calm take's), EmoDB scales every clip to
full scale, and a user's recording has whatever gain the microphone had. A model that reads
absolute loudness learns a cue that does not travel. :func:`match_level` removes it: every
clip is scaled so that its loudest frames (:func:`loud_level`) sit at one level, for
training and prediction alike (a :class:`~serlib.pipeline.Pipeline` with ``level_db``, the
recipe setting ``level_db``), or for prediction only (``serlib evaluate --level-db``).
Explained in the chapter "Does it travel? RAVDESS to EmoDB".
"""
from __future__ import annotations

import math

import numpy as np

from .errors import SerlibError

#: Frame and hop of the level measurement: 25 ms and 10 ms at 16 kHz.
FRAME_SECONDS, HOP_SECONDS = 0.025, 0.010
#: Levels a clip may be scaled to, dB re full scale (a sine at full scale is -3 dB).
LEVEL_RANGE = (-80.0, -3.0)


def check_level(value, what: str = "level_db") -> float | None:
    """``value`` as a float in :data:`LEVEL_RANGE` (None stays None); anything else raises a
    one-line :class:`~serlib.errors.SerlibError`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SerlibError(f"{what}={value!r}: give a level in dB re full scale, e.g. -30")
    low, high = LEVEL_RANGE
    if not low <= value <= high:
        raise SerlibError(f"{what}={value!r}: a level lies between {low:g} and {high:g} dB re full scale")
    return float(value)


def loud_level(y: np.ndarray, sr: int) -> float:
    """The 99th percentile of the 25 ms frame levels of ``y`` (mono), in dB re full scale: how
    loud the loudest stretch of the clip is, little moved by pauses or one click.
    Explained in the chapter "Does it travel? RAVDESS to EmoDB"."""
    y = np.asarray(y, dtype=np.float64)
    frame, hop = max(1, round(FRAME_SECONDS * sr)), max(1, round(HOP_SECONDS * sr))
    if len(y) < frame:
        y = np.pad(y, (0, frame - len(y)))
    power = np.mean(np.lib.stride_tricks.sliding_window_view(y, frame)[::hop] ** 2, axis=1)
    return float(np.percentile(10 * np.log10(power + 1e-12), 99))


def match_level(y: np.ndarray, sr: int, level_db: float) -> np.ndarray:
    """``y`` scaled so that :func:`loud_level` is ``level_db`` (a silent clip is returned as it
    is; samples beyond full scale are clipped). Explained in the chapter "Does it travel?
    RAVDESS to EmoDB"."""
    y = np.asarray(y, dtype=np.float32)
    now = loud_level(y, sr)
    if now <= -115.0:           # digital silence: nothing to scale
        return y
    return np.clip(y * np.float32(10 ** ((level_db - now) / 20)), -1.0, 1.0).astype(np.float32)


__all__ = ["LEVEL_RANGE", "check_level", "loud_level", "match_level"]
