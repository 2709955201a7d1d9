"""Voice-quality descriptors (serlib.voice_quality) on synthetic voices whose answer is known."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from serlib.functionals import SR, functional_names, utterance_functionals


def _source_filter(f0=120.0, formants=(700.0, 1220.0, 2600.0), seconds=1.2, jitter=0.0, noise=0.0, seed=0):
    """A glottal pulse train (period jitter ``jitter``) through three resonators, plus white noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    pulses, t = np.zeros(n), 0.0
    while t < n:
        pulses[int(t)] = 1.0
        t += SR / f0 * (1 + jitter * rng.standard_normal())
    y = lfilter([1.0], [1.0, -0.95], pulses)          # a softer, sloping source
    for f, bw in zip(formants, (80.0, 100.0, 140.0)):
        r = np.exp(-np.pi * bw / SR)
        y = lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * f / SR), r * r], y)
    y = y / np.abs(y).max()
    y = y + noise * rng.standard_normal(n)
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


def _value(vector, name):
    return float(vector[functional_names().index(name)])


def test_formants_are_found_where_the_resonators_are():
    vector = utterance_functionals(_source_filter())
    assert _value(vector, "f1_p50") == pytest.approx(700, rel=0.12)
    assert _value(vector, "f2_p50") == pytest.approx(1220, rel=0.12)
    assert _value(vector, "f3_p50") == pytest.approx(2600, rel=0.12)
    vector = utterance_functionals(_source_filter(formants=(350.0, 2000.0, 2900.0)))   # an /i/-like vowel
    assert _value(vector, "f1_p50") == pytest.approx(350, rel=0.15)
    assert _value(vector, "f2_p50") == pytest.approx(2000, rel=0.12)


def test_noise_lowers_the_harmonics_to_noise_ratio():
    clean = _value(utterance_functionals(_source_filter()), "hnr_db_p50")
    breathy = _value(utterance_functionals(_source_filter(noise=0.3)), "hnr_db_p50")
    assert clean > 10 and breathy < clean - 5


def test_period_jitter_raises_jitter():
    steady = _value(utterance_functionals(_source_filter()), "jitter_local")
    shaky = _value(utterance_functionals(_source_filter(jitter=0.03)), "jitter_local")
    assert steady < 0.01 and shaky > 2 * steady + 0.01


def test_spectral_balance_measures_point_the_right_way():
    rng = np.random.default_rng(1)
    white = rng.standard_normal(SR).astype(np.float32) * 0.1
    dark = lfilter([1.0], [1.0, -0.97], white).astype(np.float32)
    dark *= 0.1 / np.abs(dark).max()
    a, b = utterance_functionals(white), utterance_functionals(dark)
    assert _value(b, "alpha_ratio_db_mean") > _value(a, "alpha_ratio_db_mean") + 10
    assert _value(b, "hammarberg_db_mean") > _value(a, "hammarberg_db_mean") + 10
    assert _value(b, "slope_500_1500_mean") < _value(a, "slope_500_1500_mean") - 3


def test_silence_and_noise_have_no_voiced_stretches():
    vector = utterance_functionals(np.random.default_rng(2).standard_normal(SR).astype(np.float32) * 0.1)
    assert _value(vector, "voiced_runs_per_s") <= 2
    assert _value(utterance_functionals(_source_filter()), "voiced_runs_per_s") >= 0.5
