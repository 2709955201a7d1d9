"""The model zoo: every registered architecture builds, runs, and matches its report."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from serlib.errors import SerlibError  # noqa: E402
from serlib.features import FeatureSpec  # noqa: E402
from serlib.models import (  # noqa: E402
    GenderThenEmotion,
    build_model,
    count_params,
    describe_models,
    get_model,
    list_models,
    make_optimizer,
    register,
)
from serlib.models import registry  # noqa: E402

MODELS_DIR = Path(registry.__file__).parent
NAMES = list_models()
CHAPTERS = {"1-D CNNs", "2-D CNNs", "Recurrent models", "CNN-LSTM hybrids", "Gender and gender-specific models",
            "The comparison", "Beyond the reports"}
# variants (gender task, one gender's clips) share their base model's builder: run each builder once
_FIRST_OF_BUILDER = {}
for _name in NAMES:
    _FIRST_OF_BUILDER.setdefault(get_model(_name).builder, _name)
FORWARD = set(_FIRST_OF_BUILDER.values())


def _batch(shape, n=2, seed=0):
    shape = tuple(40 if d is None else d for d in shape)
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype("float32")


# --------------------------------------------------------------------------- every model
def test_zoo_covers_all_five_reports_and_both_tasks():
    reports = {get_model(n).report for n in NAMES}
    assert {"000", "001", "002", "003", "004"} <= reports
    assert {get_model(n).task for n in NAMES} == {"emotion", "gender"}
    for name in ["balata2021_cnn1d_baseline", "balata2021_cnn1d", "balata2021_cnn2d", "balata2021_lstm",
                 "balata2021_cnn1d_gender", "balata2021_cnn2d_gender", "balata2021_cnn2d_female",
                 "balata2021_cnn2d_male", "kalokyris_cnn2d_a", "kalokyris_cnn2d_d", "kalokyris_lstm",
                 "kalokyris_cnn_lstm1", "kalokyris_cnn_lstm4", "das2019_model_a", "das2019_model_d",
                 "ayadi_conv1d_lstm_speech", "ayadi_conv1d_lstm_song", "pankratz2024_cnn_bilstm",
                 "pankratz2024_cnn_bilstm_nodropout"]:
        assert name in NAMES


@pytest.mark.parametrize("name", NAMES)
def test_model_builds_compiles_and_predicts(name):
    entry = get_model(name)
    model = build_model(name)
    n = len(entry.labels)
    assert model.output_shape == (None, n)
    assert model.optimizer is not None and model.loss == "sparse_categorical_crossentropy"
    if name not in FORWARD:  # same builder as an earlier entry, only the class count may differ
        return
    probs = np.asarray(model(_batch(entry.input_shape), training=False))
    assert probs.shape == (2, n)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert (probs >= 0).all()


@pytest.mark.parametrize("name", NAMES)
def test_entry_is_complete_and_consistent(name):
    e = get_model(name)
    assert e.source and e.notes and all(isinstance(s, str) and s for s in e.notes)
    assert isinstance(e.features, FeatureSpec)
    assert e.batch_size >= 1 and e.epochs >= 1 and e.learning_rate > 0
    assert set(e.callbacks) == {"early_stopping_patience", "monitor", "reduce_lr", "checkpoint"}
    if e.task == "gender":
        assert e.labels == ("female", "male")
    # the entry's input is what its FeatureSpec produces (time-major, no channel axis)
    spec = e.features
    expected = {"mfcc": (spec.n_frames, spec.n_mfcc), "mfcc_band_mean": (spec.n_frames,),
                "mfcc_mean": (spec.n_mfcc,), "frames162": (spec.n_frames, 162),
                "logmel": (spec.n_frames, spec.n_mels), "mfcc_deltas": (spec.n_frames, 3 * spec.n_mfcc)}[spec.kind]
    assert e.input_shape == expected
    if hasattr(type(spec), "shape"):
        assert tuple(spec.shape) == e.input_shape
    # the builder says which chapter explains it
    chapter = re.search(r'chapter\s+"([^"]+)"', e.builder.__doc__ or "")
    assert chapter and chapter.group(1) in CHAPTERS


def test_compiled_model_trains_on_integer_labels():
    model = build_model("das2019_model_b")
    x, y = _batch((40,), n=4), np.array([0, 3, 7, 3])
    loss, accuracy = model.train_on_batch(x, y)
    assert np.isfinite(loss) and 0.0 <= accuracy <= 1.0


def test_a_model_can_be_built_for_another_input_and_class_count():
    model = build_model("balata2021_cnn2d", input_shape=(128, 12), n_classes=3)
    assert model.output_shape == (None, 3)
    assert model(_batch((128, 12)), training=False).shape == (2, 3)
    with pytest.raises(SerlibError):
        build_model("das2019_model_b", n_classes=1)


def test_pankratz_accepts_any_sequence_length():
    model = build_model("pankratz2024_cnn_bilstm", input_shape=(None, 162))
    for length in (60, 231):
        assert model(_batch((length, 162)), training=False).shape == (2, 8)


def test_pankratz_dropout_is_the_only_difference():
    with_dropout = build_model("pankratz2024_cnn_bilstm")
    without = build_model("pankratz2024_cnn_bilstm_nodropout")
    kinds = lambda m: [type(layer).__name__ for layer in m.layers]  # noqa: E731
    assert kinds(with_dropout).count("Dropout") == 2 and "Dropout" not in kinds(without)
    assert with_dropout.count_params() == without.count_params()
    assert [k for k in kinds(with_dropout) if k != "Dropout"] == kinds(without)
    bilstm = with_dropout.get_layer("bilstm")
    assert bilstm.output.shape[-1] == 80
    assert with_dropout.get_layer("mean_max").output.shape[-1] == 160


def test_ayadi_reproduces_the_printed_kernel_shapes():
    for name, dropouts in [("ayadi_conv1d_lstm_speech", 3), ("ayadi_conv1d_lstm_song", 5)]:
        model = build_model(name)
        assert tuple(model.get_layer("conv1").kernel.shape) == (5, 256, 256)
        assert tuple(model.get_layer("conv2").kernel.shape) == (5, 256, 256)
        for lstm in ("lstm1", "lstm2", "lstm3", "lstm4"):
            cell = model.get_layer(lstm).cell
            assert tuple(cell.kernel.shape) == (256, 1024)
            assert tuple(cell.recurrent_kernel.shape) == (256, 1024)
        assert sum(type(layer).__name__ == "Dropout" for layer in model.layers) == dropouts
        assert get_model(name).labels == ("neutral", "calm", "happy", "sad", "angry", "fearful")
    assert get_model("ayadi_conv1d_lstm_song").corpus == "song"


# --------------------------------------------------------------------------- parameter counts
DAS_PRINTED = {"das2019_model_a": 77160, "das2019_model_b": 4456, "das2019_model_c": 6520,
               "das2019_model_d": 87944}


@pytest.mark.parametrize("name", sorted(DAS_PRINTED))
def test_das_parameter_counts_match_the_report_exactly(name):
    assert get_model(name).reference_params == DAS_PRINTED[name]
    assert count_params(name) == DAS_PRINTED[name]
    assert build_model(name).count_params() == DAS_PRINTED[name]


def test_das_output_shapes_match_the_printed_summaries():
    def conv_shapes(name):
        model = build_model(name)
        return [tuple(layer.output.shape[1:]) for layer in model.layers if type(layer).__name__ == "Conv1D"]

    assert conv_shapes("das2019_model_b") == [(38, 8), (36, 16), (16, 32), (14, 16)]
    assert conv_shapes("das2019_model_c") == [(40, 8), (40, 16), (5, 32), (5, 16)]
    assert conv_shapes("das2019_model_d") == [(40, 128), (5, 128)]
    lstm = build_model("das2019_model_a").get_layer("lstm")
    assert lstm.count_params() == 66560


def test_kalokyris_printed_and_implemented_counts_are_both_exposed_and_differ():
    printed = {"kalokyris_cnn2d_a": 134088, "kalokyris_cnn2d_b": 583592,
               "kalokyris_cnn2d_c": 258024, "kalokyris_cnn2d_d": 150600}
    rows = {r["name"]: r for r in describe_models()}
    for name, count in printed.items():
        assert rows[name]["reference_params"] == count
        assert rows[name]["params"] > 0 and rows[name]["params"] != count
    # the listed layers: two convs of 32, one of 32, 32+64, 32+64+64+64 filters
    widths = {name: [layer.filters for layer in build_model(name).layers if type(layer).__name__ == "Conv2D"]
              for name in printed}
    assert widths == {"kalokyris_cnn2d_a": [32, 32], "kalokyris_cnn2d_b": [32],
                      "kalokyris_cnn2d_c": [32, 64], "kalokyris_cnn2d_d": [32, 64, 64, 64]}


def test_kalokyris_cnn_lstm_has_one_to_four_convs():
    for n in (1, 2, 3, 4):
        model = build_model(f"kalokyris_cnn_lstm{n}")
        assert sum(type(layer).__name__ == "Conv1D" for layer in model.layers) == n
        assert any(type(layer).__name__ == "LSTM" for layer in model.layers)


def test_balata_baseline_has_the_reported_conv_stack():
    model = build_model("balata2021_cnn1d_baseline")
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv1D"]
    assert [c.filters for c in convs] == [256, 256, 128, 128, 128, 128, 64, 64]
    assert all(c.kernel_size == (8,) for c in convs)
    assert sum(type(layer).__name__ == "MaxPooling1D" for layer in model.layers) == 2
    assert not any(type(layer).__name__ in ("BatchNormalization", "Dropout") for layer in model.layers)
    improved = build_model("balata2021_cnn1d")
    rates = {layer.rate for layer in improved.layers if type(layer).__name__ == "Dropout"}
    assert rates == {0.2}
    assert sum(type(layer).__name__ == "BatchNormalization" for layer in improved.layers) == 8
    cnn2d = [layer.filters for layer in build_model("balata2021_cnn2d").layers if type(layer).__name__ == "Conv2D"]
    assert cnn2d == [128, 128, 64, 64, 64, 64, 32, 32]


def test_describe_models_lists_every_model_with_its_size():
    rows = describe_models()
    assert [r["name"] for r in rows] == NAMES
    for r in rows:
        assert r["params"] > 0 and r["source"] and r["input"]
        assert {"name", "source", "input", "params", "recommended", "family", "report",
                "reference_params"} <= set(r)
    json.dumps(rows)  # the CLI prints it as JSON


# --------------------------------------------------------------------------- training settings
def test_training_settings_follow_the_reports():
    balata = get_model("balata2021_cnn1d")
    assert (balata.optimizer, balata.batch_size, balata.epochs) == ("rmsprop", 16, 150)
    assert balata.callbacks["early_stopping_patience"] == 20
    assert get_model("balata2021_cnn1d_baseline").callbacks["early_stopping_patience"] is None
    assert "neutral" not in balata.labels and len(balata.labels) == 7
    assert balata.data_filter == {"intensity": "strong"}
    assert get_model("balata2021_cnn1d_female").data_filter["gender"] == "female"
    for name in DAS_PRINTED:
        assert (get_model(name).batch_size, get_model(name).epochs) == (1, 100)
    assert get_model("kalokyris_lstm").callbacks["checkpoint"] is True
    assert get_model("kalokyris_cnn2d_a").callbacks["reduce_lr"] is not None
    ayadi = get_model("ayadi_conv1d_lstm_speech")
    assert (ayadi.optimizer, ayadi.learning_rate) == ("adam", 0.01)
    pankratz = get_model("pankratz2024_cnn_bilstm")
    assert (pankratz.batch_size, pankratz.epochs, pankratz.features.sr) == (256, 80, 16000)


def test_data_filters_select_the_report_subsets():
    training = pytest.importorskip("serlib.training")
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({
        "path": [f"clip{i}.flac" for i in range(6)],
        "emotion": ["neutral", "calm", "calm", "angry", "angry", "disgust"],
        "intensity": ["normal", "strong", "normal", "strong", "strong", "strong"],
        "gender": ["male", "female", "male", "male", "female", "female"],
    })

    def kept(name):
        return list(training.select_clips(df, get_model(name))[0]["path"].str[4].astype(int))

    assert kept("balata2021_cnn1d") == [1, 3, 4, 5]          # strong intensity, so no neutral
    assert kept("balata2021_cnn1d_female") == [1, 4, 5]
    assert kept("balata2021_cnn2d_gender") == [1, 3, 4, 5]
    assert kept("ayadi_conv1d_lstm_speech") == [0, 1, 2, 3, 4]  # six emotions: no disgust
    assert kept("pankratz2024_cnn_bilstm") == [0, 1, 2, 3, 4, 5]


def test_make_optimizer_uses_the_entry_settings():
    opt = make_optimizer("ayadi_conv1d_lstm_song")
    assert isinstance(opt, keras.optimizers.Adam)
    assert float(opt.learning_rate) == pytest.approx(0.01)
    assert isinstance(make_optimizer(get_model("balata2021_lstm")), keras.optimizers.RMSprop)


# --------------------------------------------------------------------------- registry behaviour
def test_unknown_name_raises_one_line_error_listing_names():
    with pytest.raises(SerlibError) as info:
        get_model("no_such_model")
    message = str(info.value)
    assert "no_such_model" in message and "das2019_model_b" in message and "\n" not in message
    with pytest.raises(SerlibError):
        build_model("no_such_model")


@pytest.fixture
def scratch_entries():
    added = []
    yield added
    for name in added:
        entry = registry._REGISTRY.pop(name, None)
        for alias in getattr(entry, "aliases", ()):
            registry._ALIASES.pop(alias, None)


def test_register_alias_and_duplicates(scratch_entries):
    spec = FeatureSpec(kind="mfcc_mean", n_mfcc=8)

    @register("zz_tiny", family="ours", report="serlib", source="serlib", features=spec,
              input_shape=(8,), input_text="8 MFCC means", aliases=("zz_best",), recommended=True,
              notes="a test model")
    def build_tiny(input_shape, n_classes):
        """A test model. Explained in the chapter "The comparison"."""
        inputs = keras.Input(shape=input_shape)
        return keras.Model(inputs, keras.layers.Dense(n_classes, activation="softmax")(inputs))

    scratch_entries.append("zz_tiny")
    assert get_model("zz_best") is get_model("zz_tiny")
    assert "zz_tiny" in list_models() and "zz_best" not in list_models()
    assert build_model("zz_best").output_shape == (None, 8)
    row = {r["name"]: r for r in describe_models()}["zz_tiny"]
    assert row["recommended"] is True and row["params"] == 8 * 8 + 8

    with pytest.raises(SerlibError, match="already registered"):
        register("zz_tiny", family="ours", report="serlib", source="serlib", features=spec,
                 input_shape=(8,), input_text="x")(lambda shape, n: None)
    with pytest.raises(SerlibError, match="family"):
        register("zz_bad", family="transformer", report="serlib", source="serlib", features=spec,
                 input_shape=(8,), input_text="x")(build_tiny)
    assert "zz_bad" not in list_models()


# --------------------------------------------------------------------------- gender pipeline
class _Fixed:
    """A dummy model: returns one probability row per input row and records what it saw."""

    def __init__(self, fn):
        self.fn, self.seen = fn, []

    def predict(self, x):
        self.seen.append(np.asarray(x).copy())
        return np.array([self.fn(row) for row in np.asarray(x)])


def _pipeline(mode="route"):
    # feature 0 > 0 means "male"; the gender model is 90% sure either way
    gender = _Fixed(lambda r: [0.1, 0.9] if r[0] > 0 else [0.9, 0.1])
    female = _Fixed(lambda r: [1.0, 0.0, 0.0])
    male = _Fixed(lambda r: [0.0, 0.0, 1.0])
    pipe = GenderThenEmotion(gender, {"female": female, "male": male},
                             emotion_labels=["calm", "happy", "angry"], mode=mode)
    return pipe, gender, female, male


def test_gender_then_emotion_routes_each_clip_to_its_specialist():
    pipe, gender, female, male = _pipeline()
    x = np.array([[1.0, 5.0], [-1.0, 6.0], [2.0, 7.0]])
    probs = pipe.predict_proba(x)
    np.testing.assert_allclose(probs, [[0, 0, 1], [1, 0, 0], [0, 0, 1]])
    assert pipe.predict(x) == ["angry", "calm", "angry"]
    # each specialist saw only the clips routed to it
    np.testing.assert_array_equal(male.seen[-1][:, 1], [5.0, 7.0])
    np.testing.assert_array_equal(female.seen[-1][:, 1], [6.0])
    # a different emotion input is routed by the same gender decisions
    pipe.predict_proba(x, x_emotion=np.array([[0, 10.0], [0, 20.0], [0, 30.0]]))
    np.testing.assert_array_equal(male.seen[-1][:, 1], [10.0, 30.0])


def test_gender_then_emotion_mix_weights_by_gender_probability():
    pipe, *_ = _pipeline(mode="mix")
    probs = pipe.predict_proba(np.array([[1.0, 0.0], [-1.0, 0.0]]))
    np.testing.assert_allclose(probs, [[0.1, 0, 0.9], [0.9, 0, 0.1]])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    with pytest.raises(SerlibError):
        pipe.predict_proba(np.zeros((1, 2)), mode="vote")


def test_gender_then_emotion_checks_its_models():
    pipe, *_ = _pipeline()
    with pytest.raises(SerlibError, match="male"):
        GenderThenEmotion(pipe.gender_model, {"female": pipe.emotion_models["female"]},
                          emotion_labels=["calm", "happy", "angry"])
    bad = GenderThenEmotion(pipe.gender_model, pipe.emotion_models, emotion_labels=["calm", "happy"])
    with pytest.raises(SerlibError, match="expected"):
        bad.predict_proba(np.array([[1.0, 0.0]]))


def test_gender_then_emotion_with_keras_models():
    def linear(weights):
        inputs = keras.Input(shape=(2,))
        layer = keras.layers.Dense(len(weights[1]), activation="softmax")
        model = keras.Model(inputs, layer(inputs))
        layer.set_weights([np.asarray(weights[0], "float32"), np.asarray(weights[1], "float32")])
        return model

    gender = linear(([[-20.0, 20.0], [0.0, 0.0]], [0.0, 0.0]))       # x0 > 0 -> male
    female = linear(([[0.0, 0.0], [0.0, 0.0]], [10.0, -10.0]))         # always "calm"
    male = linear(([[0.0, 0.0], [0.0, 0.0]], [-10.0, 10.0]))           # always "angry"
    pipe = GenderThenEmotion(gender, {"female": female, "male": male}, emotion_labels=["calm", "angry"])
    assert pipe.predict(np.array([[1.0, 0.0], [-1.0, 0.0]], "float32")) == ["angry", "calm"]


# --------------------------------------------------------------------------- backend neutrality
def test_builders_use_keras_layers_only():
    offenders = []
    for path in sorted(MODELS_DIR.glob("*.py")):
        text = path.read_text()
        for pattern in (r"\btf\.", r"import tensorflow", r"from tensorflow", r"\btorch\.", r"\bjax\."):
            if re.search(pattern, text):
                offenders.append(f"{path.name}: {pattern}")
    assert offenders == []


_OTHER_BACKEND = next((b for b in ("jax", "torch") if importlib.util.find_spec(b)), None)


@pytest.mark.skipif(_OTHER_BACKEND is None, reason="neither JAX nor PyTorch is installed")
def test_a_builder_runs_under_another_keras_backend():
    code = ("import numpy as np, keras; from serlib.models import build_model;"
            "m = build_model('das2019_model_b'); p = np.asarray(m.predict(np.zeros((2, 40), 'float32'), verbose=0));"
            "assert keras.backend.backend() == '%s' and p.shape == (2, 8)" % _OTHER_BACKEND)
    env = {**os.environ, "KERAS_BACKEND": _OTHER_BACKEND}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
