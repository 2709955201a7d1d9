"""serlib.voice_encoder: the numpy LSTM, the weights reader, the windows, the fetch."""
from __future__ import annotations

import collections
import hashlib
import os
import pathlib
import pickle
import struct
import sys
import types
from unittest import mock

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


# --- checkpoints written here, in PyTorch's legacy format, without PyTorch ---------------

MAGIC, PROTOCOL = 0x1950A86A20F9469CFC6C, 1001
SYS_INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}


class _Touch:
    """Unpickling this creates ``marker``: the payload a tampered checkpoint would carry."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


class _Slot:
    """A storage: ``key`` and its values."""

    def __init__(self, key, values):
        self.key, self.values = key, np.ascontiguousarray(values, dtype=np.float32).ravel()


class _View:
    """A tensor: a place in a storage."""

    def __init__(self, slot, offset, size, stride):
        self.slot, self.offset, self.size, self.stride = slot, offset, tuple(size), tuple(stride)

    def __reduce__(self):
        return sys.modules["torch._utils"]._rebuild_tensor_v2, (
            self.slot, self.offset, self.size, self.stride, False, collections.OrderedDict())


def _fake_torch():
    """Modules named torch and torch._utils, so pickle writes the references PyTorch writes."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args):
        raise AssertionError("only written here, never called")

    FloatStorage.__module__, _rebuild_tensor_v2.__module__ = "torch", "torch._utils"
    FloatStorage.__qualname__, _rebuild_tensor_v2.__qualname__ = "FloatStorage", "_rebuild_tensor_v2"
    torch.FloatStorage, torch._utils, utils._rebuild_tensor_v2 = FloatStorage, utils, _rebuild_tensor_v2
    return {"torch": torch, "torch._utils": utils}


def _write(path, state=None, *, views=None, first=None, keys=None):
    """A legacy checkpoint ``{"step": 7, "model_state": state}`` (arrays stored contiguous)
    plus ``views`` (name -> _View); ``first`` is pickled before the magic number, ``keys``
    replaces the list of storage keys."""
    state = state or {}
    slots = {name: _Slot(str(k), a) for k, (name, a) in enumerate(state.items())}
    tensors = collections.OrderedDict(
        (name, _View(slots[name], 0, a.shape, [int(np.prod(a.shape[i + 1:])) for i in range(a.ndim)]))
        for name, a in state.items())
    tensors.update(views or {})
    every = {id(v.slot): v.slot for v in tensors.values()}
    modules = _fake_torch()

    class Writer(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _Slot):
                return ("storage", modules["torch"].FloatStorage, obj.key, "cpu", len(obj.values))
            return None

    with mock.patch.dict(sys.modules, modules), open(path, "wb") as f:
        if first is not None:
            pickle.dump(first, f, protocol=2)
        for header in (MAGIC, PROTOCOL, SYS_INFO):
            pickle.dump(header, f, protocol=2)
        Writer(f, protocol=2).dump({"step": 7, "model_state": tensors})
        pickle.dump(keys if keys is not None else [slot.key for slot in every.values()], f, protocol=2)
        for slot in every.values():
            f.write(struct.pack("<q", len(slot.values)) + slot.values.tobytes())
    return pathlib.Path(path)


def _sha(path) -> str:
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def _encoder_state(seed=0) -> dict:
    rng = np.random.default_rng(seed)
    state = {}
    for k, width in enumerate((ve.N_MELS, ve.HIDDEN, ve.HIDDEN)):
        state[f"lstm.weight_ih_l{k}"] = rng.normal(0, 0.05, (4 * ve.HIDDEN, width))
        state[f"lstm.weight_hh_l{k}"] = rng.normal(0, 0.05, (4 * ve.HIDDEN, ve.HIDDEN))
        state[f"lstm.bias_ih_l{k}"] = rng.normal(0, 0.05, 4 * ve.HIDDEN)
        state[f"lstm.bias_hh_l{k}"] = rng.normal(0, 0.05, 4 * ve.HIDDEN)
    return state


@pytest.fixture
def no_weights_elsewhere(monkeypatch):
    """No installed resemblyzer package and no earlier load can answer for the file under test."""
    monkeypatch.setattr(ve, "_installed_path", lambda: None)
    ve._layers.cache_clear()
    yield
    ve._layers.cache_clear()


def test_the_payload_really_runs_under_plain_pickle(tmp_path):
    """The check on the tests below: the payload they plant does create its marker when unpickled."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_Touch(marker), protocol=2))
    assert marker.exists()


def test_a_small_checkpoint_reads_back_with_strided_views_and_its_own_hash(tmp_path):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    slot = _Slot("t", a.T)                                     # stored transposed: a is a strided view
    path = _write(tmp_path / "small.pt", {"w": a, "b": np.array([1.5, -2.0])},
                  views={"wt": _View(slot, 0, (3, 4), (1, 3)), "tail": _View(slot, 10, (2,), (1,))})
    got = ve.read_checkpoint(path, expected_sha256=_sha(path))
    assert got["step"] == 7 and list(got["model_state"]) == ["w", "b", "wt", "tail"]
    np.testing.assert_array_equal(got["model_state"]["w"], a)
    np.testing.assert_array_equal(got["model_state"]["b"], [1.5, -2.0])
    np.testing.assert_array_equal(got["model_state"]["wt"], a)
    np.testing.assert_array_equal(got["model_state"]["tail"], a.T.ravel()[10:12])
    with pytest.raises(SerlibError, match="SHA-256"):          # the genuine weights' hash by default
        ve.read_checkpoint(path)


@pytest.mark.parametrize("where", ["first", "keys"])
def test_a_payload_in_any_record_is_refused_and_never_runs(tmp_path, where):
    marker = tmp_path / "ran"
    payload = {"first": _Touch(marker)} if where == "first" else {"keys": [_Touch(marker)]}
    path = _write(tmp_path / "evil.pt", {"w": np.ones(3)}, **payload)
    with pytest.raises(SerlibError, match="refusing to load") as error:
        ve.read_checkpoint(path, expected_sha256=None)          # the unpickler alone stops it
    assert str(path) in str(error.value) and "\n" not in str(error.value)
    assert not marker.exists()
    with pytest.raises(SerlibError, match="SHA-256"):
        ve.read_checkpoint(path)
    assert not marker.exists()


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        for header in (MAGIC, PROTOCOL, SYS_INFO):
            pickle.dump(header, f)
        pickle.dump(os.system, f)                              # a reference to a callable
    with pytest.raises(SerlibError, match="refusing to load") as error:
        ve.read_checkpoint(path, expected_sha256=None)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_tensor_reaching_outside_its_storage_is_refused(tmp_path):
    slot = _Slot("s", np.arange(6))
    for view in (_View(slot, 4, (3,), (1,)), _View(slot, 0, (2, 3), (3, 2)), _View(slot, 0, (100,), (0,)),
                 _View(slot, -1, (2,), (1,))):
        path = _write(tmp_path / "far.pt", views={"x": view})
        with pytest.raises(SerlibError, match="not a readable voice-encoder checkpoint"):
            ve.read_checkpoint(path, expected_sha256=None)


def test_a_truncated_missing_or_huge_checkpoint_gets_one_line(tmp_path, monkeypatch):
    whole = _write(tmp_path / "whole.pt", {"w": np.ones(1000)}).read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(whole[:-100])
    with pytest.raises(SerlibError, match="not a readable voice-encoder checkpoint") as error:
        ve.read_checkpoint(cut, expected_sha256=None)
    assert "\n" not in str(error.value)
    with pytest.raises(SerlibError, match="(?i)no such file") as error:
        ve.read_checkpoint(tmp_path / "absent.pt")
    assert "delete it" not in str(error.value)
    monkeypatch.setattr(ve, "MAX_BYTES", 1000)
    with pytest.raises(SerlibError, match="larger than 1,000 bytes"):
        ve.read_checkpoint(tmp_path / "whole.pt", expected_sha256=None)


def test_a_wrong_hash_through_the_environment_is_refused_before_any_unpickling(
        tmp_path, monkeypatch, no_weights_elsewhere):
    marker = tmp_path / "ran"
    path = _write(tmp_path / "pretrained.pt", _encoder_state(), first=_Touch(marker))
    monkeypatch.setenv("SERLIB_ENCODER_WEIGHTS", str(path))
    monkeypatch.setattr(ve, "_Plain", mock.Mock(side_effect=AssertionError("unpickled before the hash")))
    for load in (ve.load_encoder, lambda: ve.encoder_features(_tone(0.5))):
        with pytest.raises(SerlibError, match="SHA-256") as error:
            load()
        message = str(error.value)
        assert message.startswith(f"{path}: ") and "\n" not in message
        assert "point SERLIB_ENCODER_WEIGHTS at the genuine pretrained.pt of resemblyzer 0.1.4" in message
    assert not marker.exists() and not ve._Plain.called


def test_the_encoder_loads_only_a_file_with_the_expected_hash(tmp_path, monkeypatch, no_weights_elsewhere):
    state = _encoder_state()
    path = _write(tmp_path / "pretrained.pt", state)
    monkeypatch.setattr(ve, "SHA256", _sha(path))               # as if this were the genuine file
    monkeypatch.setenv("SERLIB_ENCODER_WEIGHTS", str(path))
    layers = ve.load_encoder()
    np.testing.assert_allclose(layers[1][1], state["lstm.weight_hh_l1"].T, rtol=1e-6)
    assert ve.encoder_features(_tone(0.5)).shape == (1536,)
    ve._layers.cache_clear()
    data = bytearray(path.read_bytes())
    data[-5] ^= 1                                               # one bit of one weight
    path.write_bytes(bytes(data))
    with pytest.raises(SerlibError, match="SHA-256"):
        ve.load_encoder()


def test_a_tampered_cached_file_is_refused_and_says_to_delete_it(tmp_path, monkeypatch, no_weights_elsewhere):
    monkeypatch.setenv("SERLIB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SERLIB_ENCODER_WEIGHTS", raising=False)
    marker = tmp_path / "ran"
    cached = ve._cached_path()
    cached.parent.mkdir(parents=True, exist_ok=True)
    _write(cached, _encoder_state(), keys=[_Touch(marker)])
    with pytest.raises(SerlibError, match="SHA-256") as error:
        ve.load_encoder()
    message = str(error.value)
    assert message.startswith(f"{cached}: ") and "delete it and run `serlib download --encoder`" in message
    assert not marker.exists()


def test_the_genuine_weights_with_a_payload_in_front_are_refused(tmp_path, monkeypatch, weights,
                                                                  no_weights_elsewhere):
    marker = tmp_path / "ran"
    evil = tmp_path / "pretrained.pt"
    evil.write_bytes(pickle.dumps(_Touch(marker), protocol=2) + weights.read_bytes())
    monkeypatch.setenv("SERLIB_ENCODER_WEIGHTS", str(evil))
    with pytest.raises(SerlibError, match="SHA-256"):
        ve.load_encoder()
    with pytest.raises(SerlibError, match="refusing to load"):
        ve.read_checkpoint(evil, expected_sha256=None)
    assert not marker.exists()


def _blocked_cache(tmp_path, monkeypatch):
    """SERLIB_CACHE_DIR under a regular file: no folder can be made there, even by root."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SERLIB_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.delenv("SERLIB_ENCODER_WEIGHTS", raising=False)
    return blocker / "cache"


def test_download_encoder_into_a_cache_that_cannot_be_made_says_so_in_one_line(
        tmp_path, monkeypatch, capsys, no_weights_elsewhere):
    from serlib.cli import main

    cache = _blocked_cache(tmp_path, monkeypatch)
    assert main(["download", "--encoder"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err and str(cache) in err
    assert "SERLIB_CACHE_DIR" in err and "SERLIB_ENCODER_WEIGHTS" in err
    with pytest.raises(SerlibError, match="cannot keep the voice encoder's weights there") as error:
        ve.fetch_weights(cache / "voice_encoder" / "pretrained.pt", quiet=True)
    assert str(error.value).startswith(f"{cache / 'voice_encoder'}: ")


def test_a_read_only_cache_folder_says_so_in_one_line(tmp_path, no_weights_elsewhere):
    folder = tmp_path / "read-only" / "voice_encoder"
    folder.mkdir(parents=True)
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as root: chmod does not stop writes (the test above covers this case)")
        with pytest.raises(SerlibError, match="cannot keep the voice encoder's weights there") as error:
            ve.fetch_weights(folder / "pretrained.pt", quiet=True)
        assert str(error.value).startswith(f"{folder}: ") and "SERLIB_CACHE_DIR" in str(error.value)
        assert "\n" not in str(error.value)
    finally:
        folder.chmod(0o700)


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
