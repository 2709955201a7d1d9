"""Utterance functionals: one fixed-length vector of statistics per clip.

The networks of the book read frame sequences (MFCCs, log-mel). The classical alternative,
used by the openSMILE feature sets of the speech-emotion challenges, summarises each
frame-level descriptor over the whole clip by statistics (mean, spread, percentiles,
skew) and gives the vector to a linear classifier. This module computes such a vector with
librosa and NumPy (the last block also with borrowed weights, under their own Apache 2.0
licence):

* frame descriptors (16 kHz, 32 ms window, 10 ms hop, silence trimmed at 35 dB):
  20 MFCCs, 40 log-mel bands, log RMS energy, zero-crossing rate, log spectral centroid,
  bandwidth, roll-off and flatness, and 6 spectral-contrast bands;
* their frame-to-frame differences;
* ten statistics of each (mean, standard deviation, 1st/25th/50th/75th/99th percentile,
  1-99 range, skewness, kurtosis);
* the same statistics of log F0 (YIN, 60-500 Hz) over the louder frames, the voiced share
  and the trimmed duration;
* the same statistics of the voice-quality descriptors of :mod:`serlib.voice_quality`
  (harmonics-to-noise ratio, formants, harmonic level differences over voiced frames; alpha
  ratio, Hammarberg index, spectral slopes, flux and loudness over every frame) and its
  clip measures (jitter, shimmer, timing);
* the prosodic contour of :mod:`serlib.contour`: pitch, energy, pauses and timbre in each
  of eight equal stretches of the clip, which the statistics above, blind to order, miss;
* the mean and spread of each hidden layer of a pretrained voice encoder
  (:mod:`serlib.voice_encoder`, an LSTM trained to tell thousands of other speakers
  apart), the only part not computed from first principles.

Only the first :data:`MAX_ANALYSIS_SECONDS` (30 s, :data:`serlib.audio.MAX_ANALYSIS_SECONDS`)
of a recording are described, and only that much is decoded from disk, so memory stays
bounded whatever the recording's length (a 10-minute file: 0.5 GB and 4 s, as much as a
30 s one, where describing all of it took 5.8 GB and 200 s); a longer file gets one
warning line. RAVDESS clips (3 to 6 s) are never cut.

:func:`functionals` extracts the vectors for many files with a progress bar;
:func:`functional_names` names every column. ``benchmarks/fusion.py`` measures what a
logistic regression on them adds to the recommended network. Explained in the chapter
"A second opinion".
"""
from __future__ import annotations

import numpy as np

from .audio import MAX_ANALYSIS_SECONDS

SR = 16000
N_FFT = 512
HOP = 160
TOP_DB = 35.0
N_MFCC = 20
N_MELS = 40
N_CONTRAST = 5          # bands; librosa returns one more (the valley of the top band)
CHUNK = 32              # clips whose voice-encoder windows run as one batch
STATISTICS = ("mean", "std", "p01", "p25", "p50", "p75", "p99", "range", "skew", "kurtosis")


def _descriptor_names() -> list[str]:
    return ([f"mfcc{i}" for i in range(N_MFCC)] + [f"logmel{i}" for i in range(N_MELS)]
            + ["log_rms", "zcr", "log_centroid", "log_bandwidth", "log_rolloff", "log_flatness"]
            + [f"contrast{i}" for i in range(N_CONTRAST + 1)])


def functional_names() -> list[str]:
    """Column names of :func:`utterance_functionals`, in order.

    Explained in the chapter "A second opinion".
    """
    from .contour import contour_names
    from .voice_encoder import encoder_names
    from .voice_quality import ALL_ROWS, SCALARS, VOICED_ROWS

    names = []
    for rows in (_descriptor_names(), ["log_f0"]):
        for delta in ("", "d_"):
            names += [f"{delta}{row}_{stat}" for stat in STATISTICS for row in rows]
    names += ["duration_s", "voiced_share"]
    for rows in (VOICED_ROWS, ALL_ROWS):
        for delta in ("", "d_"):
            names += [f"{delta}{row}_{stat}" for stat in STATISTICS for row in rows]
    return names + list(SCALARS) + contour_names() + encoder_names()


def functional_blocks() -> dict[str, slice]:
    """The four blocks of :func:`functional_names`: spectral and pitch, voice quality,
    contour, voice encoder.

    ``benchmarks/fusion.py`` drops the voice-quality block to measure what it adds.
    Explained in the chapter "A second opinion".
    """
    from .contour import contour_names
    from .voice_quality import ALL_ROWS, SCALARS, VOICED_ROWS

    spectral = 2 * len(STATISTICS) * (len(_descriptor_names()) + 1) + 2
    voice = 2 * len(STATISTICS) * (len(VOICED_ROWS) + len(ALL_ROWS)) + len(SCALARS)
    from .voice_encoder import encoder_names

    shape = spectral + voice + len(contour_names())
    return {"spectral and pitch": slice(0, spectral), "voice quality": slice(spectral, spectral + voice),
            "contour": slice(spectral + voice, shape), "voice encoder": slice(shape, shape + len(encoder_names()))}


def _statistics(frames: np.ndarray) -> np.ndarray:
    """Ten statistics of every row of ``frames`` and of its frame-to-frame differences.

    Skewness and excess kurtosis are the biased moment ratios of ``scipy.stats.skew`` and
    ``scipy.stats.kurtosis``, computed with NumPy alone (a quarter of the extraction time
    went to SciPy's argument handling); a row with no spread (variance at or below
    ``(eps * mean) ** 2``, as SciPy decides) gets 0 for both.
    """
    frames = np.atleast_2d(np.asarray(frames, dtype=np.float64))
    if frames.shape[1] < 2:          # one frame: no spread, no differences
        frames = np.repeat(frames, 2, axis=1)
    out = []
    eps = np.finfo(np.float64).eps
    for block in (frames, np.diff(frames, axis=1)):
        q = np.percentile(block, [1, 25, 50, 75, 99], axis=1)
        mean = block.mean(1)
        centred = block - mean[:, None]
        square = centred * centred
        m2, m3, m4 = square.mean(1), (square * centred).mean(1), (square * square).mean(1)
        with np.errstate(all="ignore"):
            flat = m2 <= (eps * mean) ** 2
            skew = np.nan_to_num(np.where(flat, 0.0, m3 / m2 ** 1.5))
            kurt = np.nan_to_num(np.where(flat, 0.0, m4 / m2 ** 2 - 3.0))
        out += [mean, np.sqrt(m2), *q, q[4] - q[0], skew, kurt]
    return np.concatenate(out)


def utterance_functionals(y: np.ndarray, sr: int = SR) -> np.ndarray:
    """One vector of clip statistics (length ``len(functional_names())``) for signal ``y``.

    ``y`` is cut to its first :data:`MAX_ANALYSIS_SECONDS`, resampled to 16 kHz when ``sr``
    differs and trimmed of leading and trailing silence. Explained in the chapter "A second opinion".
    """
    return many_functionals([y], sr)[0]


def many_functionals(signals, sr: int = SR) -> np.ndarray:
    """:func:`utterance_functionals` of each signal in ``signals``, as ``(n, d)``; the voice
    encoder reads all of them in one batch. Explained in the chapter "A second opinion".
    """
    from .voice_encoder import encoder_features_many

    clips = [_trimmed(y, sr) for y in signals]
    if not clips:
        return np.zeros((0, len(functional_names())), np.float32)
    own = np.stack([_own_functionals(y) for y in clips])
    return np.hstack([own, encoder_features_many(clips, SR)]).astype(np.float32)


def _first_seconds(y, sr: int) -> np.ndarray:
    """The first :data:`MAX_ANALYSIS_SECONDS` of ``y``: what the statistics describe."""
    return np.asarray(y, dtype=np.float32)[: int(np.ceil(MAX_ANALYSIS_SECONDS * sr))]


def _trimmed(y: np.ndarray, sr: int) -> np.ndarray:
    import librosa

    y = _first_seconds(y, sr)
    if sr != SR:
        y = librosa.resample(y, orig_sr=sr, target_sr=SR)
    trimmed, _ = librosa.effects.trim(y, top_db=TOP_DB)
    if len(trimmed) >= N_FFT:
        y = trimmed
    if len(y) < N_FFT:
        y = np.pad(y, (0, N_FFT - len(y)))
    return y


def _own_functionals(y: np.ndarray) -> np.ndarray:
    """Every block but the voice encoder's, for a trimmed 16 kHz signal."""
    import librosa

    from .contour import contour
    from .voice_quality import voice_quality

    magnitude = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP))
    power = magnitude ** 2
    mel_power = librosa.feature.melspectrogram(S=power, sr=SR, n_mels=N_MELS)
    log_mel = librosa.power_to_db(mel_power)
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=N_MFCC)
    rms = librosa.feature.rms(S=magnitude, frame_length=N_FFT)
    spectral = [
        np.log(rms + 1e-6),
        librosa.feature.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP),
        np.log1p(librosa.feature.spectral_centroid(S=magnitude, sr=SR)),
        np.log1p(librosa.feature.spectral_bandwidth(S=magnitude, sr=SR)),
        np.log1p(librosa.feature.spectral_rolloff(S=magnitude, sr=SR)),
        np.log(librosa.feature.spectral_flatness(S=magnitude) + 1e-8),
        librosa.feature.spectral_contrast(S=magnitude, sr=SR, n_bands=N_CONTRAST, fmin=100),
    ]
    n = min(block.shape[1] for block in [mfcc, log_mel, *spectral])
    frames = np.vstack([block[:, :n] for block in [mfcc, log_mel, *spectral]])

    f0 = librosa.yin(y, fmin=60, fmax=500, sr=SR, frame_length=2 * N_FFT, hop_length=HOP)
    loud = rms[0, : len(f0)] > 0.1 * rms.max() if rms.max() > 0 else np.zeros(len(f0), bool)
    loud = np.pad(loud, (0, len(f0) - len(loud)))
    log_f0 = np.log(f0[loud] if loud.sum() >= 2 else f0)
    voiced_rows, all_rows, scalars = voice_quality(y, f0, magnitude, mel_power, loud)
    shape = contour(np.log(f0), np.log(rms[0] + 1e-6), loud, mfcc)
    return np.concatenate([_statistics(frames), _statistics(log_f0[None]),
                           [len(y) / SR, float(loud.mean())],
                           _statistics(voiced_rows), _statistics(all_rows), scalars, shape]).astype(np.float32)


def speed_functionals(y: np.ndarray, sr: int = SR, speeds=(1.0,)) -> np.ndarray:
    """:func:`utterance_functionals` of ``y`` played at each of ``speeds``, as ``(len(speeds), d)``.

    Speed 1 is the clip as it is; others are :func:`serlib.augment.speed_perturb` copies.
    A fused run that scores its regression at several speeds takes this per clip
    (``speeds=run.functional_speeds``). Explained in the chapter "A second opinion".
    """
    from .augment import speed_perturb

    y = _first_seconds(y, sr)
    if sr != SR:
        import librosa

        y = librosa.resample(y, orig_sr=int(sr), target_sr=SR)
    return many_functionals([y if f == 1 else speed_perturb(y, SR, f) for f in speeds], SR)


def functionals(paths, *, n_jobs: int = 1, progress: bool = True, speed: float = 1.0, speeds=None) -> np.ndarray:
    """:func:`utterance_functionals` of every file in ``paths``, as an ``(n, d)`` array.

    Files are read with :func:`serlib.audio.load_audio` (any rate, stereo mixed down, only
    the first :data:`MAX_ANALYSIS_SECONDS` decoded); an unreadable file raises its one-line
    :class:`~serlib.errors.AudioError`. ``speed`` other
    than 1 describes a speed-perturbed copy of each clip instead
    (:func:`serlib.augment.speed_perturb`). ``speeds`` (e.g. ``run.functional_speeds``)
    describes each clip at every one of those speeds and returns ``(n, len(speeds), d)``
    (:func:`speed_functionals`). Explained in the chapter "A second opinion".
    """
    from joblib import Parallel, delayed
    from tqdm import tqdm

    from .audio import load_audio
    from .augment import speed_perturb
    from .voice_encoder import encoder_features_many, load_encoder

    factors = tuple(speeds) if speeds is not None else (speed,)

    def one(path):                      # the clip at each speed, trimmed, and its own blocks
        y = load_audio(path, sr=SR)
        clips = [_trimmed(y if f == 1 else speed_perturb(y, SR, f), SR) for f in factors]
        return clips, np.stack([_own_functionals(c) for c in clips])

    paths = list(paths)
    width = len(functional_names())
    if not paths:
        return np.zeros((0, len(factors), width) if speeds is not None else (0, width), np.float32)
    layers = load_encoder()             # fetched (once) before the progress bar starts
    desc = "functionals" if speed == 1 else f"functionals at speed {speed:g}"
    if speeds is not None and tuple(speeds) != (1.0,):
        desc = "functionals at speeds " + ", ".join(f"{f:g}" for f in speeds)
    rows = []
    with tqdm(total=len(paths), unit="clip", desc=desc, disable=not progress) as bar:
        for start in range(0, len(paths), CHUNK):   # the encoder reads a chunk's clips in one batch
            done = Parallel(n_jobs=n_jobs)(delayed(one)(p) for p in paths[start:start + CHUNK])
            clips = [c for chunk_clips, _ in done for c in chunk_clips]
            own = np.concatenate([o for _, o in done])
            rows.append(np.hstack([own, encoder_features_many(clips, SR, layers)]).astype(np.float32))
            bar.update(len(done))
    table = np.concatenate(rows)
    return table.reshape(len(paths), len(factors), width) if speeds is not None else table
