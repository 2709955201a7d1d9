"""Speed-perturbed training copies for the network (``ModelEntry.speed_copies``)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from serlib.errors import SerlibError
from serlib.features import FeatureSpec, extract_file
from serlib.models import register_variant
from serlib.training import PreparedData, default_split, fit_split, prepare_data, speed_copy_rows

BASE = "das2019_model_b"          # the fastest registered model


def _tone(path, freq=500.0, sr=16_000, seconds=1.0):
    t = np.arange(int(sr * seconds)) / sr
    sf.write(path, (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr)
    return path


def test_a_faster_copy_is_shorter_and_higher(tmp_path):
    spec = FeatureSpec(kind="logmel", sr=16_000, n_mels=64, n_fft=512, hop_length=160, win_length=400)
    path = _tone(tmp_path / "tone.wav")
    plain, fast = extract_file(path, spec), extract_file(path, spec, speed=1.25)
    assert abs(len(fast) - len(plain) / 1.25) <= 2                       # 101 frames -> about 81
    assert fast.mean(axis=0).argmax() > plain.mean(axis=0).argmax()      # 500 Hz -> 625 Hz: a higher band
    np.testing.assert_array_equal(extract_file(path, spec, speed=1.0), plain)


def test_copies_are_computed_only_for_the_rows_asked_for(monkeypatch):
    import serlib.features as features

    calls = []

    def fake(path, spec, *, speed=1.0):
        calls.append((speed, path))
        return np.full((3, 2), float(path[1:]) + 10 * speed, dtype=np.float32)

    monkeypatch.setattr(features, "extract_file", fake)
    index = pd.DataFrame({"path": [f"c{i}" for i in range(5)]})
    prep = PreparedData(model_name="m", entry=None, index=index, X=np.zeros((5, 3, 2), np.float32),
                        y=np.array([0, 1, 0, 1, 0]), labels=["a", "b"], spec=FeatureSpec(kind="logmel"), task="emotion")
    X, y = speed_copy_rows(prep, [1, 3], (0.9, 1.1), verbose=0)
    assert calls == [(0.9, "c1"), (0.9, "c3"), (1.1, "c1"), (1.1, "c3")]   # clips 0, 2, 4 untouched
    np.testing.assert_allclose(X[:, 0, 0], [10.0, 12.0, 12.0, 14.0])       # block per factor, rows in order
    np.testing.assert_array_equal(y, [1, 1, 1, 1])
    assert np.isnan(prep.perturbed_features[0.9][[0, 2, 4]]).all()
    speed_copy_rows(prep, [3, 4], (0.9,), verbose=0)                        # only clip 4 is new
    assert calls[-1] == (0.9, "c4") and len(calls) == 5
    X, y = speed_copy_rows(prep, [1, 3], (), verbose=0)
    assert X.shape == (0, 3, 2) and len(y) == 0


@pytest.mark.parametrize("bad", [(1.0,), (3.0,), "fast", (0.4,)])
def test_bad_speed_copies_are_refused_when_registering(bad):
    with pytest.raises(SerlibError, match="speed_copies"):
        register_variant(BASE, "test_bad_speed", speed_copies=bad)


def test_training_adds_copies_of_the_training_clips_only(standin_dir):
    from serlib.models import registry

    with pytest.MonkeyPatch.context() as patch:
        for name in ("_REGISTRY", "_ALIASES", "_PARAMS"):
            patch.setattr(registry, name, dict(getattr(registry, name)))
        register_variant(BASE, "test_das_b_speed", speed_copies=[0.9, "1.1"])
        prep = prepare_data("test_das_b_speed", standin_dir, verbose=0)
        assert prep.entry.speed_copies == (0.9, 1.1)
        split = default_split(prep.index, seed=0)
        held_out = np.concatenate([split.val, split.test])
        for factor in (0.9, 1.1):   # every clip's copies come from its one decode (serlib.pipeline) ...
            table = prep.perturbed_features[factor]
            assert not np.isnan(table).any() and not np.allclose(table, prep.X)
            table[held_out] = np.nan    # ... but training must read the training clips' copies only
        run = fit_split(prep, split, epochs=1, batch_size=16, quick=True, verbose=0)
    assert run.info["speed_copies"] == {"factors": [0.9, 1.1], "n_clips": 2 * len(split.train)}
    assert np.isfinite(run.history["loss"]).all()          # no NaN copy of a held-out clip reached training
