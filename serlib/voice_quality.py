"""Voice-quality descriptors: how the voice sounds, beside what the spectrum holds.

Emotion changes more than pitch and loudness: an angry voice is pressed and bright, a sad
one breathy and dark, a fearful one unsteady. Phoneticians measure this with a handful of
descriptors, which the "minimalistic" parameter sets of the speech-emotion challenges
also use. This module computes its own versions with NumPy and SciPy, at 16 kHz:

* per frame (32 ms, 10 ms hop): harmonics-to-noise ratio from the normalised
  autocorrelation at the pitch period; the first three formant frequencies and the first
  bandwidth from linear prediction (order 16); the level differences H1-H2 (first minus
  second harmonic) and H1-A3 (first harmonic minus the strongest peak near the third
  formant); the alpha ratio (50-1000 Hz against 1-5 kHz), the Hammarberg index (strongest
  level below 2 kHz minus strongest in 2-5 kHz), spectral slopes over 0-500 and 500-1500 Hz,
  spectral flux and a loudness estimate (mel power to the 0.3);
* per clip: local jitter and shimmer from period-by-period peak picking inside voiced
  stretches, and timing (loudness peaks, voiced stretches per second, mean and spread of
  voiced and unvoiced stretch lengths).

The harmonic and formant descriptors are taken over voiced frames only (frames loud enough
and periodic enough: autocorrelation above :data:`VOICED_R`). :func:`voice_quality` returns
the frame rows and the clip scalars; :mod:`serlib.functionals` summarises the rows by the
same statistics as its other descriptors. Explained in the chapter "A second opinion".
"""
from __future__ import annotations

import numpy as np

SR = 16000
FRAME = 512            # 32 ms, the spectral frame of serlib.functionals
PITCH_FRAME = 1024     # 64 ms, the YIN frame: two periods of 60 Hz fit
HOP = 160
LPC_ORDER = 16
VOICED_R = 0.45        # normalised autocorrelation at the period above which a frame is voiced

VOICED_ROWS = ("hnr_db", "f1", "f2", "f3", "f1_bandwidth", "h1_h2_db", "h1_a3_db")
ALL_ROWS = ("alpha_ratio_db", "hammarberg_db", "slope_0_500", "slope_500_1500",
            "spectral_flux", "loudness")
SCALARS = ("jitter_local", "shimmer_local_db", "loudness_peaks_per_s", "voiced_runs_per_s",
           "voiced_run_mean_s", "voiced_run_std_s", "unvoiced_run_mean_s", "unvoiced_run_std_s")


def _frames(y: np.ndarray, length: int, n: int) -> np.ndarray:
    """``n`` centred frames of ``length`` samples (hop :data:`HOP`), as columns."""
    import librosa

    padded = np.pad(y, (length // 2, length // 2 + n * HOP))
    return librosa.util.frame(padded, frame_length=length, hop_length=HOP)[:, :n]


def _autocorrelation(frames: np.ndarray, f0: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation of each windowed frame at its pitch period (best of +-2 lags)."""
    n = frames.shape[0]
    window = np.hanning(n)[:, None]
    x = frames * window
    spectrum = np.fft.rfft(x, 2 * n, axis=0)
    r = np.fft.irfft(np.abs(spectrum) ** 2, axis=0)[:n]
    rw = np.fft.irfft(np.abs(np.fft.rfft(window[:, 0], 2 * n)) ** 2)[:n]   # the window's own decay
    r = r / np.maximum(r[:1], 1e-12) / np.maximum(rw / rw[0], 1e-3)[:, None]
    lag = np.clip(np.round(SR / f0).astype(int), 3, n // 2)
    best = np.max([r[np.clip(lag + d, 1, n - 1), np.arange(r.shape[1])] for d in range(-2, 3)], axis=0)
    return np.clip(best, 0.0, 1.0)


def _formants(frames: np.ndarray) -> np.ndarray:
    """F1, F2, F3 and F1's bandwidth (Hz) of each frame by linear prediction; NaN where absent."""
    import librosa

    out = np.full((4, frames.shape[1]), np.nan)
    if frames.shape[1] == 0:
        return out
    x = np.vstack([frames[:1], frames[1:] - 0.97 * frames[:-1]]) * np.hamming(frames.shape[0])[:, None]
    energetic = np.sum(x ** 2, axis=0) > 1e-10
    if not energetic.any():
        return out
    with np.errstate(all="ignore"):
        a = librosa.lpc(x[:, energetic].T.astype(np.float64), order=LPC_ORDER, axis=-1)
    companion = np.zeros((a.shape[0], LPC_ORDER, LPC_ORDER))
    companion[:, 0, :] = -a[:, 1:]
    companion[:, np.arange(1, LPC_ORDER), np.arange(LPC_ORDER - 1)] = 1.0
    good = np.all(np.isfinite(companion), axis=(1, 2))
    roots = np.zeros((a.shape[0], LPC_ORDER), complex)
    if good.any():
        roots[good] = np.linalg.eigvals(companion[good])
    freq = np.angle(roots) * SR / (2 * np.pi)
    bandwidth = -np.log(np.maximum(np.abs(roots), 1e-12)) * SR / np.pi
    keep = (freq > 90) & (freq < SR / 2 - 90) & (bandwidth < 400) & (roots.imag > 0)
    freq = np.where(keep, freq, np.inf)
    order = np.argsort(freq, axis=1)[:, :3]
    picked = np.take_along_axis(freq, order, axis=1)
    picked_bw = np.take_along_axis(bandwidth, order[:, :1], axis=1)[:, 0]
    picked[~np.isfinite(picked)] = np.nan
    picked_bw[~np.isfinite(picked[:, 0])] = np.nan
    out[:3, energetic] = picked.T
    out[3, energetic] = picked_bw
    return out


def _harmonic_levels(frames: np.ndarray, f0: np.ndarray, f3: np.ndarray) -> np.ndarray:
    """H1-H2 and H1-A3 (dB) of each frame, from its magnitude spectrum."""
    n = frames.shape[0]
    level = 20 * np.log10(np.abs(np.fft.rfft(frames * np.hanning(n)[:, None], axis=0)) + 1e-9)
    hz = SR / n
    cols = np.arange(frames.shape[1])

    def peak(centre, spread):
        lo = np.clip(np.floor(centre * (1 - spread) / hz).astype(int), 0, level.shape[0] - 1)
        hi = np.clip(np.ceil(centre * (1 + spread) / hz).astype(int) + 1, lo + 1, level.shape[0])
        return np.array([level[a:b, c].max() for a, b, c in zip(lo, hi, cols)])

    if frames.shape[1] == 0:
        return np.zeros((2, 0))
    h1, h2 = peak(f0, 0.1), peak(2 * f0, 0.1)
    a3 = peak(np.where(np.isfinite(f3), f3, 2500.0), 0.1)
    return np.vstack([h1 - h2, h1 - a3])


def _spectral_rows(magnitude: np.ndarray, mel_power: np.ndarray) -> np.ndarray:
    """Alpha ratio, Hammarberg index, two slopes, flux and loudness of each frame."""
    power = magnitude ** 2 + 1e-12
    hz = np.linspace(0, SR / 2, magnitude.shape[0])

    def band(lo, hi):
        return (hz >= lo) & (hz < hi)

    level = 10 * np.log10(power)
    alpha = 10 * np.log10(power[band(50, 1000)].sum(0) / power[band(1000, 5000)].sum(0))
    hammarberg = level[band(0, 2000)].max(0) - level[band(2000, 5000)].max(0)

    def slope(lo, hi):
        x = hz[band(lo, hi)] - hz[band(lo, hi)].mean()
        return (x[:, None] * level[band(lo, hi)]).sum(0) / (x ** 2).sum() * 1000   # dB per kHz

    unit = magnitude / np.maximum(np.linalg.norm(magnitude, axis=0, keepdims=True), 1e-9)
    flux = np.concatenate([[0.0], np.sum(np.diff(unit, axis=1) ** 2, axis=0)])
    loudness = np.sum(mel_power ** 0.3, axis=0)
    return np.vstack([alpha, hammarberg, slope(0, 500), slope(500, 1500), flux, loudness])


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lengths (in frames) of the True runs and of the False runs of ``mask``."""
    if mask.size == 0:
        return np.zeros(0), np.zeros(0)
    edges = np.flatnonzero(np.diff(mask.astype(int))) + 1
    pieces = np.split(mask, edges)
    lengths = np.array([len(p) for p in pieces])
    kinds = np.array([p[0] for p in pieces])
    return lengths[kinds], lengths[~kinds]


def _jitter_shimmer(y: np.ndarray, f0: np.ndarray, voiced: np.ndarray) -> tuple[float, float]:
    """Local jitter (relative period change) and shimmer (dB peak change) inside voiced runs."""
    periods, amplitude_steps = [], []
    start = None
    for i in range(len(voiced) + 1):
        if i < len(voiced) and voiced[i]:
            start = i if start is None else start
            continue
        if start is None:
            continue
        lo, hi = start * HOP, min(len(y), i * HOP + HOP)
        start = None
        first = int(round(SR / f0[lo // HOP]))
        if hi - lo < 3 * first:
            continue
        peaks = [lo + int(np.argmax(y[lo:lo + first]))]
        while True:
            t = int(round(SR / f0[min(peaks[-1] // HOP, len(f0) - 1)]))
            a, b = peaks[-1] + int(0.8 * t), peaks[-1] + int(1.25 * t) + 1
            if b > hi:
                break
            peaks.append(a + int(np.argmax(y[a:b])))
        if len(peaks) < 4:
            continue
        p = np.diff(peaks).astype(float)
        amp = np.maximum(y[peaks], 1e-6)
        periods.append(p)
        amplitude_steps.append(np.abs(20 * np.log10(amp[1:] / amp[:-1])))
    if not periods:
        return 0.0, 0.0
    jitter = np.mean(np.concatenate([np.abs(np.diff(p)) for p in periods])) / np.mean(np.concatenate(periods))
    return float(jitter), float(np.mean(np.concatenate(amplitude_steps)))


def voice_quality(y: np.ndarray, f0: np.ndarray, magnitude: np.ndarray, mel_power: np.ndarray,
                  loud: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voice-quality descriptors of a 16 kHz signal.

    ``f0`` is a YIN track (hop :data:`HOP`), ``magnitude`` and ``mel_power`` the STFT
    magnitude and mel power (frame :data:`FRAME`) and ``loud`` the frames loud enough to
    carry a voice. Returns ``(voiced_rows, all_rows, scalars)``: the
    :data:`VOICED_ROWS` over voiced frames (at least two columns), the :data:`ALL_ROWS`
    over every frame and the :data:`SCALARS`. Explained in the chapter "Beyond the
    reports".
    """
    from scipy.signal import find_peaks

    n = min(len(f0), magnitude.shape[1], mel_power.shape[1], len(loud))
    f0, loud = np.asarray(f0[:n], dtype=np.float64), np.asarray(loud[:n], dtype=bool)
    long_frames = _frames(y, PITCH_FRAME, n)
    r = _autocorrelation(long_frames, f0)
    voiced = loud & (r > VOICED_R)
    hnr = 10 * np.log10(np.clip(r, 1e-4, 0.9999) / (1 - np.clip(r, 1e-4, 0.9999)))
    chosen = np.flatnonzero(voiced) if voiced.sum() >= 2 else np.flatnonzero(loud) if loud.sum() >= 2 else np.arange(n)
    formants = _formants(_frames(y, FRAME, n)[:, chosen])
    harmonics = _harmonic_levels(long_frames[:, chosen], f0[chosen], formants[2])
    rows = np.vstack([hnr[chosen], formants, harmonics])
    finite = np.isfinite(rows)
    medians = [float(np.median(row[ok])) if ok.any() else 0.0 for row, ok in zip(rows, finite)]
    rows = np.where(finite, rows, np.array(medians)[:, None])   # missing formants: the clip's median
    all_rows = _spectral_rows(magnitude[:, :n], mel_power[:, :n])

    jitter, shimmer = _jitter_shimmer(y, f0, voiced)
    seconds = max(len(y) / SR, 1e-3)
    loudness = all_rows[-1]
    smooth = np.convolve(loudness, np.ones(5) / 5, mode="same") if n >= 5 else loudness
    peaks, _ = find_peaks(smooth, prominence=0.1 * (np.ptp(smooth) if n else 0.0) + 1e-9)
    on, off = _runs(voiced)
    frame_s = HOP / SR

    def mean_std(lengths):
        return (float(lengths.mean() * frame_s), float(lengths.std() * frame_s)) if len(lengths) else (0.0, 0.0)

    scalars = np.array([jitter, shimmer, len(peaks) / seconds, len(on) / seconds,
                        *mean_std(on), *mean_std(off)])
    if rows.shape[1] < 2:
        rows = np.repeat(rows, 2, axis=1) if rows.shape[1] else np.zeros((len(VOICED_ROWS), 2))
    return rows, all_rows, scalars
