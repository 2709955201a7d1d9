"""serlib.mfcc_scratch: each teaching step on its own, and the whole against librosa.

Settings matched for the librosa comparison: no pre-emphasis (librosa has none), HTK mel
formula (``htk=True``: 2595·log10(1 + f/700)), periodic Hamming window of n_fft samples,
centred frames with zero padding (librosa 0.11's ``pad_mode="constant"``), power 2,
Slaney area-normalised filters (librosa's default ``norm="slaney"``), dB with
``amin=1e-10`` and ``top_db=80`` (``power_to_db`` defaults), orthonormal DCT-II.
Tolerance: Pearson r > 0.9999 and max |difference| ≤ 1e-4 × the coefficient range. (In
float64 the two agree to ~1e-9; librosa on float32 input leaves ~1e-7 of the range.)
"""
from __future__ import annotations

import librosa
import numpy as np
import pytest
import scipy.fft
import scipy.signal

from serlib import mfcc_scratch as M


def _voice(sr=16000, seconds=1.5, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    phase = 2 * np.pi * np.cumsum(120 * (1 + 0.3 * np.sin(2 * np.pi * 0.8 * t))) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, 10)) * (0.4 + 0.6 * np.sin(2 * np.pi * 2.5 * t) ** 2)
    return (0.2 * y + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def _agree(ours, ref):
    assert ours.shape == ref.shape
    r = np.corrcoef(ours.ravel(), ref.ravel())[0, 1]
    worst = np.abs(ours - ref).max() / np.ptp(ref)
    assert r > 0.9999 and worst <= 1e-4, (r, worst)


# ------------------------------------------------------------------------------ the mel scale


def test_mel_scale_values_and_round_trip():
    assert M.hz_to_mel(0.0) == 0.0
    assert M.hz_to_mel(700.0) == pytest.approx(2595 * np.log10(2))
    assert M.hz_to_mel(1000.0) == pytest.approx(1000.0, abs=0.5)     # the scale's anchor: 1 kHz ≈ 1000 mel
    f = np.linspace(0, 24000, 1001)
    np.testing.assert_allclose(M.mel_to_hz(M.hz_to_mel(f)), f, atol=1e-8)
    assert np.all(np.diff(M.hz_to_mel(f)) > 0)
    assert np.all(np.diff(M.hz_to_mel(f), 2) < 0)                     # compressive: log-like above ~1 kHz
    np.testing.assert_allclose(M.hz_to_mel(f), librosa.hz_to_mel(f, htk=True), rtol=1e-12)


def test_mel_filterbank_shape_and_partition():
    sr, n_fft, n_mels = 16000, 512, 40
    fb = M.mel_filterbank(sr, n_fft, n_mels, norm=None)
    assert fb.shape == (n_mels, n_fft // 2 + 1)
    assert fb.min() >= 0 and fb.max() <= 1 + 1e-12
    assert np.all(fb.max(axis=1) > 0.5)                               # no empty filter
    edges = M.mel_to_hz(np.linspace(0, M.hz_to_mel(sr / 2), n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1 / sr)
    inside = (bins >= edges[1]) & (bins <= edges[-2])                 # between the first and last centre
    np.testing.assert_allclose(fb[:, inside].sum(axis=0), 1.0, atol=1e-9)  # half-overlapping triangles
    assert np.all((fb > 0).sum(axis=0) <= 2)                          # each bin feeds at most two filters
    peaks = bins[fb.argmax(axis=1)]
    assert np.all(np.diff(peaks) >= 0)
    centre_mels = np.diff(M.hz_to_mel(edges[1:-1]))
    np.testing.assert_allclose(centre_mels, centre_mels[0])          # centres equally spaced in mel
    np.testing.assert_allclose(fb, librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, htk=True, norm=None),
                               atol=1e-6)


def test_slaney_norm_gives_equal_areas():
    sr, n_fft = 16000, 16384                                          # fine bins: sums approximate integrals
    fb = M.mel_filterbank(sr, n_fft, 40, norm="slaney")
    area = fb.sum(axis=1) * (sr / n_fft)
    np.testing.assert_allclose(area, 1.0, rtol=0.02)
    with pytest.raises(ValueError, match="norm"):
        M.mel_filterbank(sr, 512, 40, norm="peak")


# ------------------------------------------------------------------------------ framing, window, spectrum


def test_frame_count_and_content():
    y = np.arange(1000, dtype=np.float64)
    assert M.n_frames(1000, 400, 160, center=False) == 1 + (1000 - 400) // 160 == 4
    assert M.n_frames(1000, 400, 160, center=True) == 1 + 1000 // 160 == 7
    assert M.n_frames(100, 400, 160, center=False) == 0
    plain = M.frame_signal(y, 400, 160, center=False)
    assert plain.shape == (4, 400)
    for t in range(4):
        np.testing.assert_array_equal(plain[t], y[160 * t:160 * t + 400])
    centred = M.frame_signal(y, 400, 160)
    assert centred.shape == (7, 400)
    for t in range(7):
        assert centred[t, 200] == y[160 * t]                          # frame t is centred on sample t·hop
    assert np.all(centred[0, :200] == 0)                              # zero padding before the start
    with pytest.raises(ValueError, match="shorter than one frame"):
        M.frame_signal(y[:100], 400, 160, center=False)
    assert M.frame_signal(y[:100], 400, 160).shape == (1, 400)         # centred: padded into one frame
    assert len(M.frame_signal(_voice(), 512, 160)) == len(librosa.util.frame(
        np.pad(_voice(), 256), frame_length=512, hop_length=160, axis=0))


def test_hamming_window():
    sym = M.hamming(401, periodic=False)
    assert sym[0] == pytest.approx(0.08) and sym[-1] == pytest.approx(0.08) and sym[200] == pytest.approx(1.0)
    np.testing.assert_allclose(sym, sym[::-1])
    np.testing.assert_allclose(M.hamming(400), scipy.signal.get_window("hamming", 400), atol=1e-12)
    np.testing.assert_allclose(M.hamming(400, periodic=False), np.hamming(400), atol=1e-12)


def test_pre_emphasis():
    np.testing.assert_allclose(M.pre_emphasis(np.array([1.0, 0, 0, 0]), 0.97), [1.0, -0.97, 0, 0])
    out = M.pre_emphasis(np.ones(10), 0.9)
    assert out[0] == 1 and np.allclose(out[1:], 0.1)                   # DC is almost removed
    y = _voice()
    _, plain = M.mfcc(y, 16000, pre_emph=None, return_steps=True)
    _, emph = M.mfcc(y, 16000, pre_emph=0.97, return_steps=True)
    tilt = lambda log_mel: log_mel[:, -10:].mean() - log_mel[:, :10].mean()  # noqa: E731
    assert tilt(emph["log_mel"]) > tilt(plain["log_mel"]) + 10       # high bands lifted by >10 dB


def test_power_spectrum_peak_and_parseval():
    n = 512
    k = 37
    frame = np.cos(2 * np.pi * k * np.arange(n) / n)[None, :]
    P = M.power_spectrum(frame, n)
    assert P.shape == (1, n // 2 + 1) and P[0].argmax() == k
    x = np.random.default_rng(0).standard_normal((3, n))
    P = M.power_spectrum(x, n)
    two_sided = P[:, 0] + P[:, -1] + 2 * P[:, 1:-1].sum(axis=1)
    np.testing.assert_allclose(two_sided / n, (x ** 2).sum(axis=1))   # Parseval
    assert M.power_spectrum(x[:, :300], n).shape == (3, n // 2 + 1)   # zero-padded to n_fft


def test_log_and_dct():
    assert np.all(np.isfinite(M.log_compress(np.zeros((5, 40)))))     # silence stays finite
    db = M.log_compress(np.array([[1.0, 1e-3, 1e-12]]), top_db=None)
    np.testing.assert_allclose(db, [[0.0, -30.0, -100.0]])
    np.testing.assert_allclose(M.log_compress(np.array([[1.0, 1e-12]]), top_db=80.0), [[0.0, -80.0]])
    D = M.dct_matrix(40, 40)
    np.testing.assert_allclose(D @ D.T, np.eye(40), atol=1e-12)      # orthonormal
    x = np.random.default_rng(1).standard_normal((7, 40))
    np.testing.assert_allclose(M.dct(x, 13), scipy.fft.dct(x, type=2, norm="ortho", axis=-1)[:, :13], atol=1e-12)
    flat = M.dct(np.full(40, 3.0))
    assert flat[0] == pytest.approx(3.0 * np.sqrt(40)) and np.allclose(flat[1:], 0, atol=1e-12)


# ------------------------------------------------------------------------------ the whole chain


@pytest.mark.parametrize("n_fft,hop,n_mels,n_mfcc", [(512, 160, 40, 13), (2048, 512, 128, 20)])
def test_mfcc_matches_librosa(n_fft, hop, n_mels, n_mfcc):
    y = _voice()
    ours = M.mfcc(y, 16000, n_mfcc=n_mfcc, n_fft=n_fft, hop_length=hop, n_mels=n_mels, pre_emph=None)
    ref = librosa.feature.mfcc(y=y, sr=16000, n_mfcc=n_mfcc, n_fft=n_fft, hop_length=hop, n_mels=n_mels,
                               htk=True, window="hamming", center=True, pad_mode="constant").T
    _agree(ours, ref)


def test_mfcc_matches_librosa_on_a_real_clip(ravdess_dir):
    import soundfile as sf

    y, sr = sf.read(ravdess_dir / "Actor_03" / "03-01-05-02-01-01-03.flac", dtype="float32")
    ours = M.mfcc(y, sr, n_mfcc=13, n_fft=1024, hop_length=256, n_mels=40, pre_emph=None)
    ref = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13, n_fft=1024, hop_length=256, n_mels=40, htk=True,
                               window="hamming").T
    _agree(ours, ref)


def test_mfcc_steps_are_returned():
    y = _voice(seconds=0.5)
    coefficients, steps = M.mfcc(y, 16000, n_mfcc=13, n_fft=400, hop_length=160, n_mels=26, return_steps=True)
    frames = 1 + len(y) // 160
    assert coefficients.shape == (frames, 13)
    assert steps["frames"].shape == steps["windowed"].shape == (frames, 400)
    assert steps["power"].shape == (frames, 201)
    assert steps["filterbank"].shape == (26, 201)
    assert steps["mel_power"].shape == steps["log_mel"].shape == (frames, 26)
    np.testing.assert_array_equal(steps["mfcc"], coefficients)
    silent = M.mfcc(np.zeros(8000), 16000)
    assert np.all(np.isfinite(silent))
