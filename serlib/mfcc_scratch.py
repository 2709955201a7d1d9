"""MFCCs from first principles: every step a small NumPy function you can read and plot.

This module is for teaching (chapter "MFCCs from first principles"); the feature pipeline
of the package is :mod:`serlib.features`, which does the same arithmetic faster. The
steps, in the order :func:`mfcc` applies them:

1. :func:`pre_emphasis` – ``y[n] - a·y[n-1]`` lifts the high frequencies that the voice's
   spectral tilt (about -6 dB/octave) pushes down (report 003's filter ``H(z) = 1 - b z⁻¹``).
2. :func:`frame_signal` – cut the signal into overlapping frames of ``n_fft`` samples every
   ``hop_length`` samples (speech is roughly stationary over 20–30 ms).
3. :func:`hamming` – taper each frame so its ends do not leak energy across the spectrum.
4. :func:`power_spectrum` – ``|FFT|²`` of each windowed frame.
5. :func:`hz_to_mel` / :func:`mel_to_hz` – the mel scale ``2595·log10(1 + f/700)``: equal
   steps in mel sound like equal steps in pitch.
6. :func:`mel_filterbank` – triangular filters equally spaced in mel; each sums the power
   of a band (report 003, eq. 4).
7. :func:`log_compress` – decibels: loudness is perceived roughly logarithmically, and the
   log turns the source × filter product of speech into a sum.
8. :func:`dct` – an orthonormal DCT-II decorrelates the log band energies; the first few
   coefficients describe the smooth spectral envelope (vocal tract), the rest fine detail.

With ``pre_emph=None`` and the same window, framing and filterbank norm, :func:`mfcc`
reproduces ``librosa.feature.mfcc(..., htk=True)``; ``tests/test_mfcc_scratch.py`` checks
it to a stated tolerance. Arrays are time-major like the rest of serlib:
``(n_frames, n_coefficients)``.
"""
from __future__ import annotations

import numpy as np


def pre_emphasis(y: np.ndarray, coef: float = 0.97) -> np.ndarray:
    """First-order high-pass ``y[n] - coef·y[n-1]`` (the first sample is kept as is).

    Explained in the chapter "MFCCs from first principles".
    """
    y = np.asarray(y, dtype=np.float64)
    return np.concatenate([y[:1], y[1:] - coef * y[:-1]])


def n_frames(n_samples: int, frame_length: int, hop_length: int, center: bool = True) -> int:
    """How many frames :func:`frame_signal` makes from ``n_samples`` samples.

    Centred framing pads ``frame_length // 2`` zeros at both ends, so every sample is the
    centre of some frame's neighbourhood: ``1 + n_samples // hop_length`` frames for an
    even ``frame_length``. Without centring, only whole frames count:
    ``1 + (n_samples - frame_length) // hop_length`` (zero if the signal is shorter).
    Explained in the chapter "MFCCs from first principles".
    """
    if center:
        n_samples += 2 * (frame_length // 2)
    if n_samples < frame_length:
        return 0
    return 1 + (n_samples - frame_length) // hop_length


def frame_signal(y: np.ndarray, frame_length: int, hop_length: int, center: bool = True) -> np.ndarray:
    """Overlapping frames ``(n_frames, frame_length)``; frame ``t`` starts at ``t·hop_length``.

    With ``center=True`` the signal is first zero-padded by ``frame_length // 2`` on both
    sides, so frame ``t`` is centred on sample ``t·hop_length`` (librosa's convention).
    Explained in the chapter "MFCCs from first principles".
    """
    y = np.asarray(y, dtype=np.float64)
    if center:
        pad = frame_length // 2
        y = np.pad(y, (pad, pad))
    count = n_frames(len(y), frame_length, hop_length, center=False)
    if count == 0:
        raise ValueError(f"a signal of {len(y)} samples is shorter than one frame of {frame_length}")
    index = np.arange(frame_length)[None, :] + hop_length * np.arange(count)[:, None]
    return y[index]


def hamming(n: int, periodic: bool = True) -> np.ndarray:
    """Hamming window ``0.54 - 0.46·cos(2πk/N)``, ``k = 0 … n-1``.

    ``periodic=True`` uses ``N = n`` (the window tiles when frames overlap; what
    ``scipy.signal.get_window`` and librosa use for spectra); ``periodic=False`` uses
    ``N = n - 1``, the symmetric textbook form (report 004's formula).
    Explained in the chapter "MFCCs from first principles".
    """
    if n == 1:
        return np.ones(1)
    N = n if periodic else n - 1
    k = np.arange(n)
    return 0.54 - 0.46 * np.cos(2 * np.pi * k / N)


def power_spectrum(frames: np.ndarray, n_fft: int | None = None) -> np.ndarray:
    """``|FFT|²`` of each frame: ``(n_frames, n_fft // 2 + 1)`` non-negative frequencies.

    Frames shorter than ``n_fft`` are zero-padded. No ``1/N`` scaling (librosa's
    convention): scaling only adds a constant to the log energies, i.e. to MFCC 0.
    Explained in the chapter "MFCCs from first principles".
    """
    spectrum = np.fft.rfft(frames, n=n_fft, axis=-1)
    return spectrum.real ** 2 + spectrum.imag ** 2


def hz_to_mel(f):
    """Mel from hertz, ``2595·log10(1 + f/700)`` (O'Shaughnessy; the HTK formula).

    Explained in the chapter "MFCCs from first principles".
    """
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    """Hertz from mel, the inverse of :func:`hz_to_mel`: ``700·(10^(m/2595) - 1)``.

    Explained in the chapter "MFCCs from first principles".
    """
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(sr: int, n_fft: int, n_mels: int = 40, fmin: float = 0.0, fmax: float | None = None,
                   norm: str | None = "slaney") -> np.ndarray:
    """Triangular filters ``(n_mels, n_fft // 2 + 1)`` with centres equally spaced in mel.

    ``n_mels + 2`` edge frequencies are spaced evenly on the mel scale between ``fmin``
    and ``fmax`` (default ``sr / 2``); filter ``m`` rises linearly from edge ``m`` to edge
    ``m + 1`` and falls to zero at edge ``m + 2``, evaluated at each FFT bin's frequency.
    Neighbouring triangles overlap by half, so between the first and last centre the
    (unnormalised) filters sum to one at every bin. ``norm="slaney"`` divides each
    filter by half its width in Hz (``2 / (f[m+2] - f[m])``) so every filter has the same
    area (librosa's default); ``None`` leaves peaks at 1. Explained in the chapter
    "MFCCs from first principles".
    """
    fmax = sr / 2 if fmax is None else fmax
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    bins_hz = np.fft.rfftfreq(n_fft, 1.0 / sr)
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bins_hz[None, :] - lower) / (centre - lower)
    falling = (upper - bins_hz[None, :]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        weights *= (2.0 / (upper - lower))
    elif norm is not None:
        raise ValueError(f"norm must be 'slaney' or None, got {norm!r}")
    return weights


def log_compress(S: np.ndarray, amin: float = 1e-10, top_db: float | None = 80.0) -> np.ndarray:
    """Decibels ``10·log10(max(S, amin))``, optionally floored ``top_db`` below the maximum.

    The floor keeps silent frames finite (log of zero is −∞). Report 003's formula uses
    ``log10`` without the factor 10: that only scales every coefficient by 10.
    Explained in the chapter "MFCCs from first principles".
    """
    db = 10.0 * np.log10(np.maximum(S, amin))
    if top_db is not None:
        db = np.maximum(db, db.max() - top_db)
    return db


def dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II basis ``(n_out, n_in)``: row ``k`` is ``cos(π·k·(2m+1) / 2M)``, scaled.

    Rows are orthonormal (``D @ D.T = I`` when ``n_out == n_in``), so the transform keeps
    energy; row 0 is the (scaled) mean. Explained in the chapter "MFCCs from first principles".
    """
    m = np.arange(n_in)[None, :]
    k = np.arange(n_out)[:, None]
    basis = np.sqrt(2.0 / n_in) * np.cos(np.pi * k * (2 * m + 1) / (2 * n_in))
    basis[0] /= np.sqrt(2.0)
    return basis


def dct(x: np.ndarray, n_out: int | None = None) -> np.ndarray:
    """Orthonormal DCT-II along the last axis, keeping the first ``n_out`` coefficients.

    Explained in the chapter "MFCCs from first principles".
    """
    x = np.asarray(x, dtype=np.float64)
    n_out = x.shape[-1] if n_out is None else n_out
    return x @ dct_matrix(n_out, x.shape[-1]).T


def mfcc(y: np.ndarray, sr: int, n_mfcc: int = 13, n_fft: int = 512, hop_length: int = 160,
         n_mels: int = 40, *, fmin: float = 0.0, fmax: float | None = None, pre_emph: float | None = 0.97,
         center: bool = True, norm: str | None = "slaney", top_db: float | None = 80.0,
         return_steps: bool = False):
    """MFCCs ``(n_frames, n_mfcc)`` composed from the steps above.

    pre-emphasis (skipped when ``pre_emph`` is None) → frames → Hamming window →
    power spectrum → mel filterbank → dB → DCT-II (orthonormal), first ``n_mfcc``.
    ``return_steps=True`` also returns a dict of every intermediate array, for plotting.
    Explained in the chapter "MFCCs from first principles".
    """
    y = np.asarray(y, dtype=np.float64)
    steps = {"signal": y}
    if pre_emph is not None:
        y = steps["pre_emphasis"] = pre_emphasis(y, pre_emph)
    frames = steps["frames"] = frame_signal(y, n_fft, hop_length, center=center)
    windowed = steps["windowed"] = frames * hamming(n_fft)
    power = steps["power"] = power_spectrum(windowed, n_fft)
    fbank = steps["filterbank"] = mel_filterbank(sr, n_fft, n_mels, fmin=fmin, fmax=fmax, norm=norm)
    mel_power = steps["mel_power"] = power @ fbank.T
    log_mel = steps["log_mel"] = log_compress(mel_power, top_db=top_db)
    coefficients = steps["mfcc"] = dct(log_mel, n_mfcc)
    return (coefficients, steps) if return_steps else coefficients
