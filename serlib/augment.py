"""Data augmentation of waveforms, and the right and wrong moment to do it.

Four perturbations that keep the emotion of a clip: white noise at a chosen
signal-to-noise ratio, pitch shift, time stretch and time shift (the first three are
those of reports 001 and 004, the last that of the Kaggle notebook report 004 compares
with). :func:`random_augment` applies one of them with random strength.

:func:`augment_training_set` is the safe way to enlarge a training set: it takes a
:class:`~serlib.splits.Split` rather than a list of clips, augments only the clips at
``split.train``, and returns the source position of every clip it returns, so a test
can prove that no validation or test clip was touched. :func:`augment_before_split`
reproduces on purpose what report 001 did (augment everything, then split at random),
so that the chapter can measure how much that flatters the test score.

Every function works on one mono ``float32`` waveform (1-D array) and returns a new
array; none changes its input. Explained in the chapter "Features and augmentation"
(the leakage measurement in "Evaluating honestly").
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .audio import fix_length
from .errors import SerlibError
from .splits import Split, random_split

#: The augmentations :func:`random_augment` can choose from.
OPS = ("noise", "pitch", "stretch", "shift")

#: Strength ranges :func:`random_augment` draws from (override with ``ranges=``):
#: noise SNR in dB, pitch shift size in semitones (either direction), stretch rate,
#: largest time shift in seconds.
DEFAULT_RANGES = {
    "noise": (10.0, 30.0),
    "pitch": (0.5, 2.0),
    "stretch": (0.85, 1.15),
    "shift": 0.2,
}


def _rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)) or (isinstance(rng, Sequence) and not isinstance(rng, str)):
        return np.random.default_rng(rng)
    raise SerlibError(f"rng={rng!r}: pass a numpy Generator, an integer seed, or None")


def _mono(y, name: str = "y") -> np.ndarray:
    array = np.asarray(y)
    if array.ndim != 1:
        raise SerlibError(f"{name}: expected a mono waveform (1-D array), got shape {array.shape}; "
                          "load clips with serlib.audio.load_audio, which mixes to mono")
    if array.size == 0:
        raise SerlibError(f"{name}: the waveform is empty")
    return array.astype(np.float32, copy=False)


# ---------------------------------------------------------------------------------------
# the four perturbations
# ---------------------------------------------------------------------------------------
def measure_snr(clean, noisy) -> float:
    """Signal-to-noise ratio in dB of ``noisy`` against ``clean`` (same length).

    ``10 log10(P_clean / P_noise)`` with powers averaged over the whole clip and the
    noise taken as ``noisy - clean``. Explained in the chapter "Features and augmentation".
    """
    clean = np.asarray(clean, dtype=np.float64)
    noisy = np.asarray(noisy, dtype=np.float64)
    if clean.shape != noisy.shape:
        raise SerlibError(f"measure_snr: shapes differ ({clean.shape} vs {noisy.shape})")
    p_signal = np.mean(clean ** 2)
    p_noise = np.mean((noisy - clean) ** 2)
    if p_noise == 0:
        return float("inf")
    if p_signal == 0:
        return float("-inf")
    return float(10 * np.log10(p_signal / p_noise))


def add_noise(y, snr_db: float, rng=None) -> np.ndarray:
    """Add white Gaussian noise so that the clip's signal-to-noise ratio is ``snr_db``.

    The noise is drawn from ``rng`` (a numpy Generator or integer seed) and then scaled
    so that its power is exactly ``P_signal / 10**(snr_db / 10)``, powers being averaged
    over the whole clip. RAVDESS clips start and end with silence, so the SNR during
    speech is somewhat higher than the figure asked for. A silent clip (zero power)
    comes back unchanged, since no SNR can be defined for it. Report 001 scaled its
    noise by the clip's maximum instead, and report 004 says only "a small amount of
    Gaussian noise"; an SNR is the usual, comparable measure.
    Explained in the chapter "Features and augmentation".
    """
    y = _mono(y)
    if not np.isfinite(snr_db):
        raise SerlibError(f"add_noise: snr_db={snr_db!r} must be a finite number of decibels")
    p_signal = float(np.mean(y.astype(np.float64) ** 2))
    if p_signal == 0.0:
        return y.copy()
    noise = _rng(rng).standard_normal(len(y))
    noise *= np.sqrt(p_signal / 10 ** (snr_db / 10) / np.mean(noise ** 2))
    return (y.astype(np.float64) + noise).astype(np.float32)


def pitch_shift(y, sr: int, n_steps: float) -> np.ndarray:
    """Shift the pitch by ``n_steps`` semitones (negative: down) at the same duration.

    ``librosa.effects.pitch_shift`` (time stretch, then resampling); the result has the
    input's length. Formants move with the pitch, so large shifts sound like another
    (smaller or larger) speaker: ±2 semitones keeps voices plausible. Explained in the
    chapter "Features and augmentation".
    """
    import librosa

    y = _mono(y)
    if n_steps == 0:
        return y.copy()
    out = librosa.effects.pitch_shift(y, sr=int(sr), n_steps=float(n_steps))
    return fix_length(np.asarray(out, dtype=np.float32), len(y))


def time_stretch(y, rate: float, *, keep_length: bool = False) -> np.ndarray:
    """Speed speech up (``rate > 1``) or slow it down (``rate < 1``) at the same pitch.

    ``librosa.effects.time_stretch`` (phase vocoder): the output has about
    ``len(y) / rate`` samples. With ``keep_length=True`` it is then cut or zero-padded
    *at the end* back to ``len(y)`` (as :func:`random_augment` always does), so a clip
    slowed down loses its last samples, usually trailing silence in RAVDESS, and a clip
    sped up ends in zeros. Explained in the chapter "Features and augmentation".
    """
    import librosa

    y = _mono(y)
    if not (np.isfinite(rate) and rate > 0):
        raise SerlibError(f"time_stretch: rate={rate!r} must be a positive number (1.0 = unchanged)")
    out = y.copy() if rate == 1 else np.asarray(librosa.effects.time_stretch(y, rate=float(rate)),
                                                 dtype=np.float32)
    return fix_length(out, len(y)) if keep_length else out


def shift(y, n_samples: int, *, mode: str = "pad") -> np.ndarray:
    """Move the clip ``n_samples`` later (negative: earlier), keeping its length.

    ``mode="pad"`` fills the gap with zeros and drops what falls off the other end;
    ``mode="roll"`` wraps it round to the other end (``np.roll``, as the Kaggle notebooks
    do), which joins the clip's end to its start. Explained in the chapter
    "Features and augmentation".
    """
    y = _mono(y)
    n = int(n_samples)
    if mode == "roll":
        return np.roll(y, n)
    if mode != "pad":
        raise SerlibError(f"shift: mode={mode!r}; use 'pad' or 'roll'")
    out = np.zeros_like(y)
    if n >= len(y) or -n >= len(y):
        return out
    if n >= 0:
        out[n:] = y[: len(y) - n]
    else:
        out[:n] = y[-n:]
    return out


def speed_perturb(y, sr: int, factor: float) -> np.ndarray:
    """Play ``y`` ``factor`` times faster, as a tape would: shorter, higher and brighter.

    The clip is resampled to ``sr / factor`` and read back at ``sr``, so duration shrinks by
    ``factor`` while pitch *and* formants rise by it (about +1.7 semitones at 1.1). That
    moves every resonance together, like a speaker with a shorter vocal tract who also
    talks faster, which is why speech recognisers train on copies at 0.9 and 1.1
    (speed perturbation). The recommended model's clip-statistics regression does
    (``speed_copies``). Explained in the chapter "Beyond the reports".
    """
    import librosa

    y = _mono(y)
    if not (np.isfinite(factor) and 0.5 <= factor <= 2.0):
        raise SerlibError(f"speed_perturb: factor={factor!r} must lie between 0.5 and 2 (1.0 = unchanged)")
    if factor == 1:
        return y.copy()
    target = max(1, int(round(sr / float(factor))))
    return np.asarray(librosa.resample(y, orig_sr=int(sr), target_sr=target, res_type="soxr_hq"), dtype=np.float32)


def time_shift(y, sr: int, max_shift_s: float = 0.2, rng=None, *, mode: str = "pad") -> np.ndarray:
    """Shift the clip by a random offset of up to ``max_shift_s`` seconds either way.

    The offset is a whole number of samples drawn uniformly from
    ``[-max_shift_s * sr, +max_shift_s * sr]``; see :func:`shift` for ``mode`` (zero
    padding by default, so nothing wraps round). The length is kept. Explained in the
    chapter "Features and augmentation".
    """
    if not (np.isfinite(max_shift_s) and max_shift_s >= 0):
        raise SerlibError(f"time_shift: max_shift_s={max_shift_s!r} must be a non-negative number of seconds")
    limit = int(round(max_shift_s * sr))
    n = int(_rng(rng).integers(-limit, limit + 1)) if limit else 0
    return shift(y, n, mode=mode)


# ---------------------------------------------------------------------------------------
# random augmentation
# ---------------------------------------------------------------------------------------
def _check_ops(ops) -> tuple[str, ...]:
    if isinstance(ops, str):
        ops = (ops,)
    ops = tuple(ops)
    unknown = [op for op in ops if op not in OPS]
    if unknown or not ops:
        raise SerlibError(f"augmentation ops {list(ops)}: choose one or more of {', '.join(OPS)}")
    return ops


def random_augment(y, sr: int, rng=None, ops=OPS, *, ranges: dict | None = None,
                   return_info: bool = False):
    """Apply one augmentation, chosen at random from ``ops``, with a random strength.

    The strength is drawn uniformly from :data:`DEFAULT_RANGES` (updated with
    ``ranges``): an SNR in dB for ``noise``; a shift size in semitones, up or down with
    equal chance, for ``pitch``; a rate for ``stretch``; a largest offset in seconds for
    ``shift``. The output always has the input's length (stretched clips are cut or
    padded at the end). With ``return_info=True`` returns ``(y_aug, info)`` where ``info``
    says what was done, e.g. ``{"op": "pitch", "n_steps": -1.3}``. Deterministic for a
    given ``rng`` seed. Explained in the chapter "Features and augmentation".
    """
    y = _mono(y)
    ops = _check_ops(ops)
    rng = _rng(rng)
    r = {**DEFAULT_RANGES, **(ranges or {})}
    op = ops[int(rng.integers(len(ops)))]
    if op == "noise":
        snr = float(rng.uniform(*r["noise"]))
        out, info = add_noise(y, snr, rng), {"op": op, "snr_db": snr}
    elif op == "pitch":
        steps = float(rng.uniform(*r["pitch"])) * (1 if rng.random() < 0.5 else -1)
        out, info = pitch_shift(y, sr, steps), {"op": op, "n_steps": steps}
    elif op == "stretch":
        rate = float(rng.uniform(*r["stretch"]))
        out, info = time_stretch(y, rate, keep_length=True), {"op": op, "rate": rate}
    else:
        limit = int(round(float(r["shift"]) * sr))
        n = int(rng.integers(-limit, limit + 1)) if limit else 0
        out, info = shift(y, n), {"op": op, "samples": n}
    return (out, info) if return_info else out


def _check_waveforms(waveforms, labels, n_rows: int | None, who: str) -> int:
    try:
        n = len(waveforms)
    except TypeError:
        raise SerlibError(f"{who}: `waveforms` must be a list of 1-D arrays or a 2-D array (clips × samples)") from None
    if labels is not None and len(labels) != n:
        raise SerlibError(f"{who}: {n} waveforms but {len(labels)} labels; they must pair up one to one")
    if n_rows is not None and n != n_rows:
        raise SerlibError(f"{who}: the split was made for an index of {n_rows} clips but {n} waveforms "
                          "were given; pass the waveforms of every clip of that index, in index order")
    return n


def _collect(waveforms, outputs: list) -> np.ndarray | list:
    if isinstance(waveforms, np.ndarray) and waveforms.ndim == 2:
        return np.stack(outputs).astype(np.float32) if outputs else np.zeros((0, waveforms.shape[1]), np.float32)
    return outputs


def augment_training_set(waveforms, labels, split: Split, *, sr: int, copies: int = 1, ops=OPS,
                         seed: int = 0, include_originals: bool = True, ranges: dict | None = None):
    """Enlarge the training part of ``split`` with augmented copies; touch nothing else.

    ``waveforms`` and ``labels`` hold *every* clip of the index the split was made
    from, in index order (a list of 1-D arrays, or a 2-D array clips × samples); the
    function reads only the positions in ``split.train``. Each training clip gets
    ``copies`` augmented versions from :func:`random_augment` (one random op from
    ``ops`` each, same length as the source), seeded from ``(seed, copy, position)`` so
    the result is reproducible and independent of the order of work.

    Returns ``(waveforms, labels, source_positions)``: with ``include_originals`` (the
    default) the training originals come first, in ``split.train`` order, then copy 1 of
    each, copy 2, …; ``source_positions[i]`` is the index position the i-th clip came
    from, always a member of ``split.train`` (``df.iloc[source_positions]`` gives their
    metadata). Waveforms come back as a list, or a 2-D array when a 2-D array came in.
    Requiring the :class:`~serlib.splits.Split` itself, not a list of clips, is what
    keeps validation and test clips out of reach. Explained in the chapter
    "Features and augmentation".
    """
    if not isinstance(split, Split):
        raise SerlibError("augment_training_set: `split` must be a serlib.splits.Split (the function augments only "
                          "split.train); make one with random_split, speaker_split or actor_kfold")
    n = _check_waveforms(waveforms, labels, split.n_rows, "augment_training_set")
    train = split.train
    if len(train) == 0:
        raise SerlibError("augment_training_set: the split's training part is empty; nothing to augment")
    if int(train.max()) >= n:
        raise SerlibError(f"augment_training_set: split position {int(train.max())} is past the {n} waveforms "
                          "given; pass the waveforms of the index the split was made from")
    ops = _check_ops(ops)
    if int(copies) != copies or copies < 0:
        raise SerlibError(f"augment_training_set: copies={copies!r} must be a whole number >= 0")
    outputs: list = []
    sources: list[int] = []
    if include_originals:
        outputs += [_mono(waveforms[int(p)], f"waveforms[{int(p)}]").copy() for p in train]
        sources += [int(p) for p in train]
    for copy in range(int(copies)):
        for p in train:
            p = int(p)
            rng = np.random.default_rng([int(seed), copy, p])
            outputs.append(random_augment(_mono(waveforms[p], f"waveforms[{p}]"), sr, rng, ops, ranges=ranges))
            sources.append(p)
    source_positions = np.asarray(sources, dtype=np.int64)
    return _collect(waveforms, outputs), np.asarray(labels)[source_positions], source_positions


def leaked_fraction(source_positions, split: Split, part: str = "test") -> float:
    """Share of the clips in ``split``'s ``part`` that have a sibling in its training part.

    ``split`` must index the *augmented* set that ``source_positions`` describes (one
    source position per augmented clip, as returned by :func:`augment_before_split`).
    A clip leaks when the recording it was made from, or another copy of it, is also in
    training: the model has then heard that very recording. Explained in the chapter
    "Evaluating honestly".
    """
    sources = np.asarray(source_positions, dtype=np.int64)
    if part not in ("val", "test"):
        raise SerlibError(f"leaked_fraction: part={part!r}; use 'val' or 'test'")
    held = getattr(split, part)
    if len(held) == 0:
        return 0.0
    if max(int(held.max()), int(split.train.max(initial=-1))) >= len(sources):
        raise SerlibError("leaked_fraction: the split does not index these source positions; pass the split "
                          "of the augmented set and the source positions that came with it")
    trained_on = set(sources[split.train].tolist())
    return float(np.mean([s in trained_on for s in sources[held]]))


def augment_before_split(waveforms, labels, *, sr: int, fractions=(0.75, 0.25), copies: int = 2,
                         ops=("noise", "stretch", "pitch"), seed: int = 0, ranges: dict | None = None):
    """THE WRONG WAY, on purpose: augment every clip, then split the enlarged set at random.

    Reproduces report 001 (noise, stretch and pitch copies of every clip, so the set is
    three times larger, then a random 75/25 split), so that the chapter "Evaluating
    honestly" can measure the damage. Nearly every test clip then has its source
    recording, or another copy of it, in training, and the test score measures
    memory rather than generalisation. Do not train on this to report a result; use
    :func:`serlib.splits.random_split` or :func:`~serlib.splits.speaker_split` on the
    original clips, then :func:`augment_training_set`.

    Returns ``(waveforms, labels, source_positions, split)``: the originals followed by
    ``copies`` augmented versions of each, their labels and source positions, and a
    :class:`~serlib.splits.Split` over that enlarged set (stratified by label, made with
    ``fractions`` and ``seed``, and blind to which clips are copies of which, as
    scikit-learn's ``train_test_split`` was). Its description states the leaked share.
    """
    n = _check_waveforms(waveforms, labels, None, "augment_before_split")
    if n == 0:
        raise SerlibError("augment_before_split: no waveforms given")
    everything = Split(train=np.arange(n), val=[], test=[], protocol="all clips (augment_before_split)",
                       n_rows=n)
    out, out_labels, sources = augment_training_set(waveforms, labels, everything, sr=sr, copies=copies,
                                                    ops=ops, seed=seed, include_originals=True, ranges=ranges)
    import pandas as pd

    label_array = np.asarray(out_labels)
    strata = (np.argmax(label_array, axis=1) if label_array.ndim == 2 else label_array).astype(str)
    flat = random_split(pd.DataFrame({"label": strata}), fractions=fractions, stratify="label", seed=seed)
    leak = leaked_fraction(sources, flat, "test")
    protocol = f"augment-then-split {flat.protocol} (leaky)"
    description = (f"WRONG WAY, for measurement only: {n} clips augmented to {len(sources)} before a "
                   f"{flat.protocol} split; {leak:.0%} of the test clips have their source recording or a "
                   "copy of it in training")
    leaky = Split(train=flat.train, val=flat.val, test=flat.test, protocol=protocol, description=description,
                  n_rows=len(sources))
    return out, out_labels, sources, leaky


__all__ = ["OPS", "DEFAULT_RANGES", "measure_snr", "add_noise", "pitch_shift", "time_stretch", "shift",
           "time_shift", "random_augment", "augment_training_set", "augment_before_split", "leaked_fraction"]
