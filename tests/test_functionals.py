"""Utterance functionals (serlib.functionals): names, pitch, sample rates, short and bad files."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from serlib.errors import AudioError
from serlib.functionals import SR, functional_blocks, functional_names, functionals, utterance_functionals


def _vowel(f0: float, seconds: float = 1.5, sr: int = SR) -> np.ndarray:
    """A harmonic tone with a loud middle and quiet edges (something for the trimmer)."""
    t = np.arange(int(seconds * sr)) / sr
    y = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))
    envelope = np.clip(np.minimum(t, t[-1] - t) / 0.1, 0, 1)
    return (0.3 * y * envelope).astype(np.float32)


def _value(vector, name):
    return float(vector[functional_names().index(name)])


def test_one_named_value_per_column_and_all_finite():
    names = functional_names()
    assert len(names) == len(set(names))
    vector = utterance_functionals(_vowel(150.0))
    assert vector.shape == (len(names),) and vector.dtype == np.float32
    assert np.all(np.isfinite(vector))


def test_the_blocks_split_the_columns_where_voice_quality_the_contour_and_the_encoder_start():
    names, blocks = functional_names(), functional_blocks()
    spectral, voice, shape = blocks["spectral and pitch"], blocks["voice quality"], blocks["contour"]
    encoder = blocks["voice encoder"]
    assert spectral.start == 0 and spectral.stop == voice.start and voice.stop == shape.start
    assert shape.stop == encoder.start and encoder.stop == len(names)
    assert names[encoder.start] == "enc1_mean0" and names[encoder.stop - 1] == "enc3_std255"
    assert names[voice.start] == "hnr_db_mean" and names[voice.stop - 1] == "unvoiced_run_std_s"
    assert names[shape.start] == "contour0_log_f0" and all(n.startswith("contour") for n in names[shape])
    assert "voiced_share" in names[spectral] and not any(n.startswith(("hnr", "f1_", "jitter")) for n in names[spectral])


@pytest.mark.parametrize("f0", [110.0, 220.0])
def test_pitch_statistics_follow_the_voice(f0):
    vector = utterance_functionals(_vowel(f0))
    assert abs(np.exp(_value(vector, "log_f0_p50")) - f0) / f0 < 0.05
    assert _value(vector, "log_f0_std") < 0.05          # a steady tone: no pitch movement


def test_sample_rate_is_handled():
    y16 = _vowel(200.0)
    t = np.arange(int(1.5 * 48000)) / 48000
    y48 = np.interp(t, np.arange(len(y16)) / SR, y16).astype(np.float32)
    a, b = utterance_functionals(y16, SR), utterance_functionals(y48, 48000)
    for name in ("log_f0_p50", "duration_s", "log_centroid_mean", "mfcc1_mean"):
        assert _value(a, name) == pytest.approx(_value(b, name), rel=0.05, abs=0.05), name


def test_a_tiny_or_silent_clip_still_gives_a_finite_vector():
    assert np.all(np.isfinite(utterance_functionals(np.zeros(100, np.float32))))
    assert np.all(np.isfinite(utterance_functionals(_vowel(180.0, seconds=0.05))))


def test_files_and_a_broken_one(tmp_path):
    good = tmp_path / "tone.flac"
    sf.write(good, np.stack([_vowel(130.0, sr=22050)] * 2, axis=1), 22050)   # stereo at 22.05 kHz
    X = functionals([good, good], progress=False)
    assert X.shape == (2, len(functional_names()))
    assert abs(np.exp(_value(X[0], "log_f0_p50")) - 130.0) < 7
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    with pytest.raises(AudioError) as error:
        functionals([good, bad], progress=False)
    assert str(bad) in str(error.value) and "\n" not in str(error.value)


def test_a_speed_perturbed_copy_is_shorter_and_higher(tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(path, _vowel(150.0), SR)
    plain, fast = functionals([path], progress=False), functionals([path], progress=False, speed=1.1)
    assert _value(fast[0], "duration_s") == pytest.approx(_value(plain[0], "duration_s") / 1.1, rel=0.03)
    assert np.exp(_value(fast[0], "log_f0_p50")) == pytest.approx(1.1 * np.exp(_value(plain[0], "log_f0_p50")),
                                                                  rel=0.03)
