"""Prosodic contour (serlib.contour): names, the shape of pitch and energy, short clips, the plot."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest

from serlib.contour import N_MFCC, N_SEGMENTS, ROWS, contour, contour_names
from serlib.errors import SerlibError
from serlib.functionals import SR, functional_blocks, functional_names, utterance_functionals
from serlib.plots import plot_contours


def _glide(f_start: float, f_end: float, seconds: float = 1.6, fade: bool = False) -> np.ndarray:
    """A harmonic tone whose pitch glides from ``f_start`` to ``f_end`` (log scale)."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = f_start * (f_end / f_start) ** (t / t[-1])
    phase = 2 * np.pi * np.cumsum(f0) / SR
    y = sum(np.sin(k * phase) / k for k in range(1, 6))
    ramp = np.clip(np.minimum(t, t[-1] - t) / 0.05, 0, 1)            # no clicks at the edges
    if fade:                                                          # loud start, 20 dB quieter end
        ramp = ramp * np.where(t < t[-1] / 2, 1.0, 0.1)
    return (0.3 * y * ramp).astype(np.float32)


def _row(vector, row):
    names = functional_names()
    return np.array([vector[names.index(f"contour{s}_{row}")] for s in range(N_SEGMENTS)])


def test_names_one_per_segment_and_row():
    names = contour_names()
    assert len(names) == len(set(names)) == N_SEGMENTS * (3 + N_MFCC) == N_SEGMENTS * len(ROWS)
    assert names[0] == "contour0_log_f0" and names[-1] == f"contour{N_SEGMENTS - 1}_mfcc{N_MFCC - 1}"
    block = functional_blocks()["contour"]
    assert functional_names()[block] == names


@pytest.mark.parametrize("start, end", [(120.0, 240.0), (240.0, 120.0)])
def test_the_pitch_contour_follows_a_rising_or_falling_voice(start, end):
    pitch = _row(utterance_functionals(_glide(start, end)), "log_f0")
    semitones = 12 / np.log(2) * (pitch[-1] - pitch[0])
    expected = 12 * np.log2(end / start) * (N_SEGMENTS - 1) / N_SEGMENTS   # segment centres, first to last
    assert semitones == pytest.approx(expected, abs=2.0)
    assert np.all(np.sign(np.diff(pitch)) == np.sign(end - start))       # monotone, segment by segment


def test_the_energy_contour_sees_a_voice_fading_out():
    vector = utterance_functionals(_glide(150.0, 150.0, fade=True))
    energy = 20 / np.log(10) * _row(vector, "log_rms")
    assert energy[1] - energy[-2] == pytest.approx(20.0, abs=3.0)      # the quiet half is 20 dB down
    pitch = _row(vector, "log_f0")
    assert np.all(np.abs(pitch) < 0.03)                                # a steady tone: a flat pitch contour


def test_fewer_frames_than_segments_and_no_frames():
    tracks = (np.log([100.0, 200.0, 150.0]), np.log([0.1, 0.2, 0.3]), np.array([True, True, False]),
              np.ones((20, 3)))
    short = contour(*tracks)
    assert short.shape == (len(contour_names()),) and np.all(np.isfinite(short))
    pitch = short[0::len(ROWS)]
    reference = (np.log(100.0) + np.log(200.0)) / 2                   # median log F0 of the two loud frames
    assert pitch[0] == pytest.approx(np.log(100.0) - reference, abs=1e-6)
    assert pitch[-1] == 0.0                                            # the last frame is not loud
    empty = contour(np.zeros(0), np.zeros(0), np.zeros(0, bool), np.zeros((20, 0)))
    assert empty.shape == short.shape and not empty.any()


def test_plot_contours_draws_one_line_per_class_and_refuses_a_wrong_shape():
    F = np.stack([utterance_functionals(_glide(120.0, 240.0)), utterance_functionals(_glide(240.0, 120.0))])
    axes = plot_contours(F, ["happy", "sad"])
    assert len(axes) == 2 and all(len(ax.get_lines()) == 2 for ax in axes)
    rising = axes[0].get_lines()[0].get_ydata()
    assert rising[-1] > rising[0]
    only = plot_contours(F[:, functional_blocks()["contour"]], ["happy", "sad"], rows=("loud_share",))
    assert len(only.get_lines()) == 2
    np.testing.assert_allclose(only.get_lines()[0].get_ydata(), _row(F[0], "loud_share"), atol=1e-6)
    import matplotlib.pyplot as plt
    _, one = plt.subplots()
    with pytest.raises(SerlibError, match="2 rows need 2 axes, got 1"):
        plot_contours(F, ["happy", "sad"], ax=one)
    with pytest.raises(SerlibError, match="numbers per clip"):
        plot_contours(F[:, :10], ["happy", "sad"])
    with pytest.raises(SerlibError, match="unknown rows"):
        plot_contours(F, ["happy", "sad"], rows=("tempo",))
    import matplotlib.pyplot as plt
    plt.close("all")
