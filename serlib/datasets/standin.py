"""A small synthetic corpus shaped like RAVDESS, for tests and for readers without the data.

:func:`make_standin_corpus` writes ``Actor_XX/03-01-EE-II-SS-RR-AA.wav`` files exactly as
RAVDESS names them (60 clips per actor: eight emotions, two intensities except neutral,
two statements, two repetitions), but the "voices" are synthesised with a textbook
source-filter model:

* **source** – a glottal pulse train whose pitch (f0) follows a contour, low-pass shaped
  (the pole sets the spectral tilt: pressed voices are brighter, breathy ones darker),
  with cycle-to-cycle jitter and shimmer, plus aspiration noise (breathiness);
* **filter** – for each of seven "syllables" a cascade of five formant resonators set to
  a vowel of the statement ("Kids are talking by the door" / "Dogs are sitting by the
  door"), scaled by the speaker's vocal-tract length, with a short noise burst for the
  consonant in front;
* **prosody** – syllables with rise/decay envelopes, a phrase pause, declination and
  pitch accents on the stressed syllables.

Each actor has their own f0, formant scale, speaking rate, tilt and breathiness (odd
actors male, as in RAVDESS). Each emotion moves pitch level and range, contour (rising
for surprise, falling for sadness and disgust, tremor for fear), tempo, loudness and voice
quality away from neutral; strong intensity moves them 1.7 times as far. The clips are
1.5–2.5 s of 16-bit WAV at 16 kHz. A classifier on MFCC statistics learns the emotions
across speakers well above chance (``tests/test_datasets.py`` checks that), so every
pipeline in the book can be exercised on it, but **results on it say nothing about
RAVDESS**. Explained in the chapter "The data".
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from ..storage import atomic_folder, write_json
from .ravdess import EMOTIONS

#: Bumped whenever the generator changes, so cached corpora are regenerated.
STANDIN_VERSION = 1
#: Written last into a finished stand-in folder; its presence marks the corpus complete.
STANDIN_MARKER = ".serlib-standin.json"

# Emotion → deviation from neutral. f0: semitones; range: factor on pitch excursions;
# rate: factor on syllables per second; db: loudness; tilt: factor on (1 - glottal pole)
# (>1 brighter/pressed, <1 darker/softer); breath: added aspiration-noise ratio; jitter:
# added relative f0 perturbation; final: semitones of pitch movement over the last
# syllable; tremor: semitones of 6.5 Hz vibrato; formant: relative shift of F1/F2.
_EMOTION_PARAMS = {
    "neutral":   dict(f0=0.0,  range=1.00, rate=1.00, db=0.0,  tilt=1.00, breath=0.00, jitter=0.000, final=0.0,  tremor=0.0, formant=0.00),
    "calm":      dict(f0=-1.0, range=0.70, rate=0.90, db=-3.0, tilt=0.75, breath=0.05, jitter=0.000, final=-1.0, tremor=0.0, formant=-0.02),
    "happy":     dict(f0=3.0,  range=1.60, rate=1.08, db=4.0,  tilt=1.30, breath=0.00, jitter=0.004, final=1.5,  tremor=0.0, formant=0.06),
    "sad":       dict(f0=-1.5, range=0.50, rate=0.86, db=-5.0, tilt=0.55, breath=0.12, jitter=0.006, final=-3.0, tremor=0.0, formant=-0.05),
    "angry":     dict(f0=2.0,  range=1.40, rate=1.08, db=7.0,  tilt=2.00, breath=-0.02, jitter=0.010, final=-3.0, tremor=0.0, formant=0.08),
    "fearful":   dict(f0=5.0,  range=0.90, rate=1.12, db=1.0,  tilt=0.90, breath=0.08, jitter=0.015, final=0.5,  tremor=0.6, formant=0.02),
    "disgust":   dict(f0=-2.0, range=1.10, rate=0.88, db=1.0,  tilt=1.20, breath=0.02, jitter=0.020, final=-2.5, tremor=0.0, formant=-0.03),
    "surprised": dict(f0=4.0,  range=2.00, rate=1.00, db=3.0,  tilt=1.40, breath=0.02, jitter=0.004, final=5.0,  tremor=0.0, formant=0.04),
}
#: How much further strong intensity moves each parameter than normal intensity.
STRONG_FACTOR = 1.7

# Adult-male vowel formants (Hz), after the classic Peterson & Barney measurements.
_VOWELS = {
    "i": (270, 2290, 3010), "I": (390, 1990, 2550), "a": (730, 1090, 2440),
    "o": (570, 840, 2410), "@": (500, 1500, 2500), "u": (300, 870, 2240),
}
# Per statement: (onset consonant, vowel, stressed) for each of seven syllables.
_STATEMENTS = {
    1: [("k", "I", True), (None, "a", False), ("t", "o", True), ("k", "I", False),
        ("b", "a", False), ("dh", "@", False), ("d", "o", True)],   # Kids are talking by the door
    2: [("d", "a", True), (None, "@", False), ("s", "I", True), ("t", "I", False),
        ("b", "a", False), ("dh", "@", False), ("d", "o", True)],   # Dogs are sitting by the door
}
# Consonant → (duration s, noise centre Hz, bandwidth Hz, level, silent closure s before it).
_CONSONANTS = {
    "k": (0.025, 2200, 1200, 0.5, 0.04), "t": (0.030, 4000, 2000, 0.5, 0.04),
    "d": (0.015, 3500, 2000, 0.3, 0.03), "b": (0.012, 900, 800, 0.3, 0.03),
    "s": (0.090, 5500, 2500, 0.35, 0.0), "dh": (0.040, 4000, 3000, 0.12, 0.0),
}
_PHRASE_BREAK = 4   # pause before the fifth syllable: "Kids are talking | by the door"
_BASE_RMS = 0.035   # RMS of a neutral clip over its voiced part


def _speaker(actor: int, seed: int) -> dict:
    """Voice of one actor: odd actors male (lower f0, longer vocal tract), as in RAVDESS."""
    rng = np.random.default_rng([seed, 7919, actor])
    male = actor % 2 == 1
    return {
        "f0": rng.uniform(100, 135) if male else rng.uniform(185, 235),
        "formant_scale": rng.uniform(0.95, 1.04) if male else rng.uniform(1.12, 1.22),
        "rate": rng.uniform(4.4, 5.1),                 # syllables per second
        "one_minus_pole": rng.uniform(0.07, 0.10),     # glottal low-pass: tilt
        "breath": rng.uniform(0.02, 0.05) + (0.0 if male else 0.02),
        "db": rng.uniform(-2.0, 2.0),
        "range": rng.uniform(0.8, 1.25),
    }


def _emotion(emotion: str, intensity: int) -> dict:
    """Emotion parameters at normal (1) or strong (2) intensity, as deviations from neutral."""
    p = _EMOTION_PARAMS[emotion]
    k = 1.0 if intensity == 1 else STRONG_FACTOR
    return {
        "f0": p["f0"] * k, "range": p["range"] ** k, "rate": p["rate"] ** k, "db": p["db"] * k,
        "tilt": p["tilt"] ** k, "breath": p["breath"] * k, "jitter": p["jitter"] * k,
        "final": p["final"] * k, "tremor": p["tremor"] * k, "formant": p["formant"] * k,
    }


def _resonator_cascade(freqs, bws, sr):
    """Denominator and gain of cascaded two-pole resonators, each with unit gain at 0 Hz."""
    a, gain = np.array([1.0]), 1.0
    for f, bw in zip(freqs, bws):
        if f >= 0.45 * sr:
            continue
        r = np.exp(-np.pi * bw / sr)
        ak = np.array([1.0, -2 * r * np.cos(2 * np.pi * f / sr), r * r])
        a = np.convolve(a, ak)
        gain *= ak.sum()
    return a, gain


def _band_noise(rng, n, centre, bw, sr):
    from scipy.signal import lfilter

    a, gain = _resonator_cascade([min(centre, 0.44 * sr)], [bw], sr)
    noise = lfilter([gain], a, rng.standard_normal(n))
    return noise / (np.std(noise) + 1e-12)


def synthesize_clip(actor: int, emotion: str, intensity: int, statement: int, repetition: int,
                    *, sr: int = 16_000, seed: int = 0) -> np.ndarray:
    """One synthetic utterance as float32 in [-1, 1], deterministic in all its arguments.

    See the module docstring for the model. Explained in the chapter "The data".
    """
    from scipy.signal import lfilter

    if emotion not in _EMOTION_PARAMS:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {', '.join(EMOTIONS)}")
    if emotion == "neutral" and intensity == 2:
        raise ValueError("RAVDESS has no strong-intensity neutral clips")
    spk = _speaker(actor, seed)
    emo = _emotion(emotion, intensity)
    rng = np.random.default_rng([seed, actor, EMOTIONS.index(emotion), intensity, statement, repetition])

    # ---- timeline: consonant + vowel per syllable, gaps, phrase pause, lead/trail silence
    rate = spk["rate"] * emo["rate"] * rng.uniform(0.96, 1.04)
    syllables = _STATEMENTS[statement]
    lead, trail = rng.uniform(0.12, 0.2), rng.uniform(0.12, 0.2)
    t = lead
    plan = []  # (consonant start, vowel start, vowel end, consonant, vowel, stressed)
    for i, (cons, vowel, stressed) in enumerate(syllables):
        if i == _PHRASE_BREAK:
            t += 0.10 / emo["rate"] * rng.uniform(0.8, 1.2)
        slot = (1.25 if stressed else 0.8) / rate * rng.uniform(0.9, 1.1)
        c_dur = _CONSONANTS[cons][0] + _CONSONANTS[cons][4] if cons else 0.0
        c_start = t + (_CONSONANTS[cons][4] if cons else 0.0)
        v_start = t + c_dur
        v_end = t + max(slot - 0.06 / rate * 4.6, c_dur + 0.05)
        plan.append((c_start, v_start, v_end, cons, vowel, stressed))
        t += slot
    n = int(round((t + trail) * sr))
    time = np.arange(n) / sr
    total = plan[-1][2] - plan[0][1]

    # ---- pitch contour (semitones around the speaker's f0 moved by the emotion)
    rng_st = spk["range"] * emo["range"]
    st = np.full(n, emo["f0"] + rng.normal(0, 0.4))
    st += rng_st * 1.5 * (1 - 2 * np.clip((time - plan[0][1]) / total, 0, 1))       # declination
    for c0, v0, v1, _, _, stressed in plan:                                             # accents
        centre, width = 0.5 * (v0 + v1), 0.35 * (v1 - v0) + 1e-3
        height = (2.5 if stressed else 0.6) * rng_st * rng.uniform(0.8, 1.2)
        st += height * np.exp(-0.5 * ((time - centre) / width) ** 2)
    v0_last, v1_last = plan[-1][1], plan[-1][2]
    st += emo["final"] * np.clip((time - v0_last) / (v1_last - v0_last), 0, 1)        # final rise/fall
    if emo["tremor"]:
        st += emo["tremor"] * np.sin(2 * np.pi * 6.5 * time + rng.uniform(0, 2 * np.pi))
    block = max(1, sr // 200)                                                         # jitter, 5 ms blocks
    jitter = np.repeat(rng.standard_normal(n // block + 1), block)[:n]
    f0 = spk["f0"] * 2 ** (st / 12) * (1 + (0.004 + emo["jitter"]) * jitter)
    f0 = np.clip(f0, 50, 0.2 * sr)

    # ---- glottal source: pulse at each completed cycle, shaped by a double low-pass pole
    phase = np.cumsum(f0 / sr)
    pulses = np.zeros(n)
    at = np.flatnonzero(np.diff(np.floor(phase))) + 1
    pulses[at] = 1 + 0.08 * rng.standard_normal(len(at))                              # shimmer
    one_minus_p = np.clip(spk["one_minus_pole"] * emo["tilt"], 0.015, 0.4)
    p = 1 - one_minus_p
    source = lfilter([1.0, -0.98], [1.0, -2 * p, p * p], pulses)                      # glottis + lips
    if len(at):
        source /= np.sqrt(np.mean(source[at[0]:] ** 2)) + 1e-12
    breath = np.clip(spk["breath"] + emo["breath"], 0.005, 0.6)
    voiced_phase = 0.6 + 0.4 * np.cos(2 * np.pi * phase)                              # pulsed aspiration
    source = source + 2.5 * breath * voiced_phase * rng.standard_normal(n)

    # ---- syllables: envelope × source through the vowel's formants, consonant bursts
    out = np.zeros(n)
    scale = spk["formant_scale"]
    for c0, v0, v1, cons, vowel, stressed in plan:
        i0, i1 = int(v0 * sr), min(n, int(v1 * sr))
        m = i1 - i0
        env = np.ones(m)
        rise, fall = min(m // 3, int(0.025 * sr)), min(m // 2, int(0.35 * m))
        env[:rise] = np.sin(0.5 * np.pi * np.arange(rise) / rise) ** 2
        env[m - fall:] = np.cos(0.5 * np.pi * np.arange(fall) / fall) ** 2
        f1, f2, f3 = _VOWELS[vowel]
        shift = 1 + emo["formant"]
        freqs = [f1 * scale * shift, f2 * scale * (1 + 0.5 * emo["formant"]), f3 * scale, 3500 * scale, 4500 * scale]
        freqs = [f * rng.uniform(0.97, 1.03) for f in freqs]
        bws = np.array([80, 100, 150, 250, 300]) * (1 + 3 * breath)
        a, gain = _resonator_cascade(freqs, bws, sr)
        tail = min(n - i0, m + int(0.03 * sr))
        seg = np.zeros(tail)
        seg[:m] = source[i0:i1] * env * (1.0 if stressed else 0.6)
        out[i0:i0 + tail] += lfilter([gain], a, seg)
        if cons:
            dur, centre, bw, level, _ = _CONSONANTS[cons]
            j0, k = int(c0 * sr), max(8, int(dur * sr))
            k = min(k, n - j0)
            burst = _band_noise(rng, k, centre * (0.9 + 0.1 * scale), bw, sr)
            burst *= np.hanning(k) if cons in ("s", "dh") else np.exp(-np.arange(k) / (0.3 * k))
            out[j0:j0 + k] += level * 0.1 * burst

    # ---- loudness: scale the voiced part to the emotion's level, then a quiet room noise floor
    voiced = np.zeros(n, dtype=bool)
    for _, v0, v1, *_ in plan:
        voiced[int(v0 * sr):int(v1 * sr)] = True
    rms = np.sqrt(np.mean(out[voiced] ** 2)) + 1e-12
    level = _BASE_RMS * 10 ** ((spk["db"] + emo["db"] + rng.normal(0, 0.7)) / 20)
    out *= level / rms
    peak = np.abs(out).max()
    if peak > 0.95:   # like a recording engineer lowering the gain: never clip
        out *= 0.95 / peak
    out += 3e-4 * rng.standard_normal(n)
    return np.clip(out, -1.0, 0.999).astype(np.float32)


def standin_names(actors=(1, 2, 3, 4)):
    """Every RAVDESS speech name (with its ``Actor_XX`` folder) the stand-in holds for ``actors``.

    Explained in the chapter "The data".
    """
    names = []
    for actor in actors:
        for e, emotion in enumerate(EMOTIONS, start=1):
            for intensity in ((1,) if emotion == "neutral" else (1, 2)):
                for statement in (1, 2):
                    for repetition in (1, 2):
                        names.append((f"Actor_{actor:02d}", f"03-01-{e:02d}-{intensity:02d}-{statement:02d}-"
                                      f"{repetition:02d}-{actor:02d}.wav", actor, emotion, intensity,
                                      statement, repetition))
    return names


def _marker_matches(dest: Path, spec: dict) -> bool:
    try:
        found = json.loads((dest / STANDIN_MARKER).read_text())
    except (OSError, ValueError):
        return False
    return all(found.get(key) == value for key, value in spec.items())


def is_standin(folder) -> bool:
    """True when ``folder`` is a finished synthetic stand-in corpus written by serlib.

    Explained in the chapter "The data".
    """
    return (Path(folder) / STANDIN_MARKER).is_file()


def make_standin_corpus(dest, *, actors=(1, 2, 3, 4), sr: int = 16_000, seed: int = 0) -> Path:
    """Write (or reuse) the synthetic RAVDESS-shaped corpus in ``dest`` and return ``dest``.

    ``dest`` ends up holding ``Actor_XX/`` folders of 60 WAV clips per actor (default:
    actors 1–4, two men and two women, 240 clips) and a marker file. The clips are
    written into a temporary sibling folder that is renamed into place only when
    complete, so an interrupted run never leaves a corpus that looks finished; a
    finished one with the same actors, rate, seed and generator version is reused.
    A non-empty ``dest`` that is not a stand-in is never overwritten (``DataError``).
    Explained in the chapter "The data".
    """
    import soundfile as sf

    dest = Path(dest).expanduser()
    try:
        actors = tuple(int(a) for a in actors)
    except (TypeError, ValueError):
        raise ConfigError(f"actors must be numbers from 1 to 24, got {actors!r}") from None
    if not actors or any(not 1 <= a <= 24 for a in actors):
        raise ConfigError(f"actors must be numbers from 1 to 24, got {actors!r}")
    spec = {"version": STANDIN_VERSION, "actors": list(actors), "sr": int(sr), "seed": int(seed)}
    if _marker_matches(dest, spec):
        return dest
    if dest.exists() and not dest.is_dir():
        raise DataError(f"{dest}: exists and is not a folder; choose another place for the stand-in corpus")
    if dest.is_dir() and any(dest.iterdir()) and not is_standin(dest):
        raise DataError(f"{dest}: folder exists and is not a serlib stand-in corpus; "
                        "remove it or choose another folder")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_folder(dest, replace=True) as tmp:   # an outdated stand-in is replaced in one step
            for folder, name, actor, emotion, intensity, statement, repetition in standin_names(actors):
                (tmp / folder).mkdir(exist_ok=True)
                y = synthesize_clip(actor, emotion, intensity, statement, repetition, sr=sr, seed=seed)
                sf.write(str(tmp / folder / name), y, sr, subtype="PCM_16")
            write_json(tmp / STANDIN_MARKER, {**spec, "clips": 60 * len(actors),
                                              "note": "synthetic stand-in, not RAVDESS"})
    except OSError as error:   # disk full, read-only folder, ...
        if _marker_matches(dest, spec):   # another process finished the same corpus first
            return dest
        raise DataError(f"{error.filename or dest}: cannot write the stand-in corpus "
                        f"({error.strerror or error}); check that the folder is writable or set "
                        "SERLIB_CACHE_DIR") from None
    return dest
