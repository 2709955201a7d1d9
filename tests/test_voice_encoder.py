"""serlib.voice_encoder: the numpy LSTM, the weights reader, the windows, the fetch."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from serlib import voice_encoder as ve
from serlib.errors import SerlibError

SR = 16000


def _tone(seconds: float, amplitude: float = 0.1, f0: float = 180.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * f0 * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def _random_layers(seed=0, units=8, n_in=ve.N_MELS):
    rng = np.random.default_rng(seed)
    layers, width = [], n_in
    for _ in range(3):
        layers.append((rng.normal(0, 0.3, (width, 4 * units)).astype(np.float32),
                       rng.normal(0, 0.3, (units, 4 * units)).astype(np.float32),
                       rng.normal(0, 0.3, 4 * units).astype(np.float32)))
        width = units
    return layers


@pytest.fixture(scope="module")
def weights():
    try:
        return ve.weights_path()
    except SerlibError as error:
        pytest.skip(f"the pretrained voice encoder is not available here: {error}")


def test_the_numpy_lstm_matches_keras_lstm_with_the_same_weights():
    import keras

    w_in, w_rec, bias = _random_layers(units=16)[0]
    x = np.random.default_rng(1).normal(size=(3, 25, ve.N_MELS)).astype(np.float32)
    layer = keras.layers.LSTM(16, return_sequences=True)
    layer.build((None, 25, ve.N_MELS))
    layer.set_weights([w_in, w_rec, bias])                     # Keras' gate order: i, f, c, o
    expected = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(ve.lstm_layer(x, w_in, w_rec, bias), expected, atol=2e-5)


def test_windows_cover_the_clip_every_77_frames_and_mask_the_padding():
    one, mask = ve.encoder_windows(_tone(1.0))
    assert one.shape == (1, ve.WINDOW, ve.N_MELS) and mask.sum() == 101    # 1 s: 101 frames, rest padding
    assert not one[0, 101:].any()
    five, mask = ve.encoder_windows(_tone(5.0))
    assert len(five) == 5 and mask.all()                       # 501 frames: starts 0, 77, …, 308
    _, mask = ve.encoder_windows(_tone(2.0))                   # 201 frames: a 2nd window 124/160 full is kept
    assert mask.sum(axis=1).tolist() == [160, 124]


def test_quiet_clips_are_raised_to_minus_30_dbfs_and_loud_ones_left_alone():
    quiet, _ = ve.encoder_windows(_tone(1.0, amplitude=0.001))
    quieter, _ = ve.encoder_windows(_tone(1.0, amplitude=0.0001))
    np.testing.assert_allclose(quiet, quieter, rtol=1e-3, atol=1e-9)
    loud, _ = ve.encoder_windows(_tone(1.0, amplitude=0.5))
    louder, _ = ve.encoder_windows(_tone(1.0, amplitude=0.9))
    assert louder.sum() > 3 * loud.sum()                       # (0.9 / 0.5)² = 3.24 in power


def test_batched_features_equal_one_clip_at_a_time_and_pool_only_real_frames():
    layers = _random_layers(units=8)
    clips = [_tone(0.7), _tone(2.3, f0=120.0), _tone(1.4, amplitude=0.02)]
    together = ve.encoder_features_many(clips, SR, layers, batch=2)
    assert together.shape == (3, 6 * 8)
    for clip, row in zip(clips, together):
        states, mask = ve.encoder_states(clip, SR, layers)
        frames = states[2][mask]
        np.testing.assert_allclose(row[-16:-8], frames.mean(axis=0), atol=1e-5)
        np.testing.assert_allclose(row[-8:], frames.std(axis=0), atol=1e-5)
    assert ve.encoder_features_many([], SR, layers).shape == (0, 6 * 8)


def test_names_match_the_feature_length():
    names = ve.encoder_names()
    assert len(names) == len(set(names)) == 1536 and names[0] == "enc1_mean0" and names[-1] == "enc3_std255"


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001, {}):
            pickle.dump(header, f)
        pickle.dump(os.system, f)                              # a reference to a callable
    with pytest.raises(SerlibError, match="refusing to load") as error:
        ve.read_checkpoint(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_truncated_or_missing_checkpoint_gets_one_line(tmp_path, weights):
    cut = tmp_path / "cut.pt"
    cut.write_bytes(weights.read_bytes()[:100_000])
    with pytest.raises(SerlibError, match="not a readable voice-encoder checkpoint"):
        ve.read_checkpoint(cut)
    with pytest.raises(SerlibError, match="(?i)no such file"):
        ve.read_checkpoint(tmp_path / "absent.pt")


def test_the_real_weights_load_without_pytorch_and_give_sane_states(weights):
    layers = ve.load_encoder(weights)
    assert [w.shape for w, _, _ in layers] == [(40, 1024), (256, 1024), (256, 1024)]
    vector = ve.encoder_features(_tone(1.5), SR, layers)
    assert vector.shape == (1536,) and np.isfinite(vector).all()
    means = vector.reshape(3, 2, 256)[:, 0]
    assert np.abs(means).max() < 1 and vector.reshape(3, 2, 256)[:, 1].max() > 0   # tanh-bounded, moving


def test_a_missing_weights_file_named_by_the_environment_gets_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("SERLIB_ENCODER_WEIGHTS", str(tmp_path / "nope.pt"))
    with pytest.raises(SerlibError, match="SERLIB_ENCODER_WEIGHTS names no such file"):
        ve.weights_path()


def test_a_failed_fetch_says_what_to_do_and_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(ve, "PACKAGE", "serlib-no-such-package-for-tests==0.0.1")
    dest = tmp_path / "enc" / "pretrained.pt"
    with pytest.raises(SerlibError, match="cannot fetch the pretrained voice encoder") as error:
        ve.fetch_weights(dest, quiet=True)
    assert "pip install --no-deps" in str(error.value) and "\n" not in str(error.value)
    assert list(dest.parent.iterdir()) == []
