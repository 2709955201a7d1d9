"""serlib's recommended model: registry entry, custom layers, training, save and reload.

The accuracy of the design is measured by ``benchmarks/recommended.py`` (actor-wise
cross-validation on RAVDESS), not here; these tests check behaviour on the synthetic
stand-in corpus and on hand-made inputs, in seconds.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from serlib.models import build_model, describe_models, get_model, make_optimizer  # noqa: E402
from serlib.models import recommended as rec  # noqa: E402
from serlib.errors import ConfigError, SerlibError  # noqa: E402

NAME = "serlib_logmel_cnn_attn"


def _clips(n=4, frames=256, bands=64, speech=(180, 120, 256, 40), seed=0):
    """Log-mel-like clips: random 'speech' frames, then padding at the clip's floor value."""
    rng = np.random.default_rng(seed)
    x = rng.normal(-20.0, 10.0, size=(n, frames, bands)).astype("float32")
    for i in range(n):
        length = speech[i % len(speech)]
        x[i, length:] = x[i, :length].min() - 5.0
    return x


# --------------------------------------------------------------------------- registry
def test_recommended_alias_resolves_to_serlibs_own_model():
    entry = get_model("recommended")
    assert entry is get_model(NAME)
    assert (entry.family, entry.report) == ("ours", "serlib") and entry.recommended
    assert entry.features.kind == "logmel" and entry.features.sr == 16_000
    assert entry.input_shape == tuple(entry.features.shape) == (256, 64)
    assert entry.callbacks["early_stopping_patience"] is None  # fixed epochs: nothing tuned on test actors
    rows = {r["name"]: r for r in describe_models()}
    assert rows[NAME]["recommended"] is True and "recommended" in rows[NAME]["aliases"]


def test_cosine_schedule_warms_up_then_decays():
    opt = make_optimizer("recommended", total_steps=100)
    schedule = opt._learning_rate if hasattr(opt, "_learning_rate") else opt.learning_rate
    lr = [float(schedule(step)) for step in (0, 10, 55, 99)]
    peak = get_model("recommended").learning_rate
    assert lr[0] == pytest.approx(peak / 10, rel=1e-3)
    assert lr[1] == pytest.approx(peak, rel=1e-3)
    assert lr[1] > lr[2] > lr[3] and lr[3] < peak / 20
    # without a step count (e.g. build_model in a notebook) the rate is constant
    assert float(make_optimizer("recommended").learning_rate) == pytest.approx(peak)


# --------------------------------------------------------------------------- layers
def test_utterance_norm_uses_only_the_clip_and_ignores_padding():
    x = _clips()
    y = np.asarray(rec.UtteranceNorm()(x))
    for i, length in enumerate((180, 120, 256, 40)):
        speech = y[i, :length]
        assert abs(speech.mean()) < 1e-3 and speech.std() == pytest.approx(1.0, rel=1e-3)
        if length < 256:
            assert np.allclose(y[i, length:], speech.min())
    # scaling and offsetting a clip (louder recording) changes nothing
    z = np.asarray(rec.UtteranceNorm()(3.0 * x + 7.0))
    np.testing.assert_allclose(z, y, atol=1e-4)
    # one clip's result does not depend on the other clips in the batch
    np.testing.assert_allclose(np.asarray(rec.UtteranceNorm()(x[:1])), y[:1], atol=1e-6)


def test_augmentation_layers_act_only_in_training():
    x = _clips(n=8)
    for layer in (rec.SpeakerPerturbation(0.1, stretch=0.1, shift=10, seed=1),
                  rec.SpecAugment(2, 20, 2, 8, seed=1)):
        np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
        out = np.asarray(layer(x, training=True))
        assert out.shape == x.shape and not np.allclose(out, x)


def test_frequency_warp_moves_a_band_towards_higher_bands_for_a_larger_factor():
    layer = rec.SpeakerPerturbation(max_warp=0.2, n_steps=3)  # factors 0.8, 1.0, 1.2
    layer.build((None, 10, 64))
    table = layer._table
    np.testing.assert_allclose(table[1], np.arange(64), atol=1e-4)  # factor 1: identity
    # output band k reads input frequency f_k / factor: lower for factor > 1 (spectrum stretched up)
    assert (table[2][10:] < table[1][10:]).all() and (table[0][10:50] > table[1][10:50]).all()


def test_attentive_pooling_gives_mean_and_std_of_a_constant_sequence():
    x = np.tile(np.array([1.0, -2.0, 3.0], "float32"), (2, 7, 1))
    out = np.asarray(rec.AttentiveStatsPooling(8)(x))
    np.testing.assert_allclose(out[:, :3], x[:, 0], atol=1e-5)
    np.testing.assert_allclose(out[:, 3:], 1e-3, atol=1e-4)  # std floor sqrt(1e-6)


def test_builder_rejects_unknown_settings():
    with pytest.raises(ConfigError, match="unknown settings"):
        rec.build_recommended((256, 64), 8, wrap=0.1)


def test_model_accepts_other_lengths_and_class_counts():
    model = build_model("recommended", input_shape=(None, 64), n_classes=3)
    for frames in (64, 300):
        probs = np.asarray(model(_clips(n=2, frames=frames, speech=(frames, frames // 2)), training=False))
        assert probs.shape == (2, 3)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_label_smoothing_adds_a_training_only_loss():
    layer = rec.SmoothedSoftmax(0.1)
    logits = np.array([[5.0, 0.0, 0.0]], "float32")
    probs = np.asarray(layer(logits, training=False))
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-6)
    assert not layer.losses
    layer(logits, training=True)
    expected = -0.1 * np.mean(logits - np.log(np.exp(logits).sum()))
    assert float(layer.losses[-1]) == pytest.approx(expected, rel=1e-5)


def test_source_uses_keras_layers_only():
    text = Path(rec.__file__).read_text()
    for pattern in (r"\btf\.", r"import tensorflow", r"from tensorflow", r"\btorch\.", r"\bjax\."):
        assert not re.search(pattern, text), pattern


# --------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def trained(standin_dir, tmp_path_factory):
    from serlib.training import train

    out = tmp_path_factory.mktemp("recommended") / "run"
    return train("recommended", standin_dir, out_dir=out, seed=0, epochs=2, batch_size=16, quick=True,
                 verbose=0)


def test_trains_on_the_standin_corpus_and_reloads_with_identical_predictions(trained, standin_dir):
    from serlib.runs import load_run
    from serlib.training import probabilities

    assert get_model(trained.info["model"]).name == NAME and trained.info["epochs_run"] == 2
    assert all(np.isfinite(trained.history["loss"]))
    lr = trained.history["learning_rate"]
    assert lr[0] > lr[-1]  # the cosine schedule ran
    reloaded = load_run(trained.dir)
    X = np.random.default_rng(0).normal(-20, 10, size=(5, 256, 64)).astype("float32")
    np.testing.assert_allclose(probabilities(reloaded.model, X), probabilities(trained.model, X), atol=1e-6)
    def layer_types(model):   # the recommended model averages two networks (ensemble=2): look inside them
        found = set()
        for layer in model.layers:
            found |= {type(layer).__name__} | (layer_types(layer) if hasattr(layer, "layers") else set())
        return found

    assert get_model("recommended").ensemble == 2 and len(trained.info["ensemble"]) == 2
    types = layer_types(reloaded.model)
    assert {"UtteranceNorm", "SpeakerPerturbation", "SpecAugment", "AttentiveStatsPooling",
            "SmoothedSoftmax"} <= types


def test_predicts_a_recording_on_its_own(trained, standin_dir):
    from serlib.predict import predict_paths

    clip = sorted(Path(standin_dir).rglob("*.wav"))[0]
    (result,) = predict_paths(trained.dir, [clip])
    assert result["label"] in get_model("recommended").labels
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


def test_the_run_carries_its_functionals_regression(trained, standin_dir):
    """The recommended model pools its network 50/50 with a regression on clip functionals, equal priors."""
    from serlib.features import extract_file
    from serlib.functionals import functionals
    from serlib.predict import predict_paths
    from serlib.runs import load_run
    from serlib.training import probabilities

    assert get_model("recommended").functionals_fusion == {"weight": 0.5, "C": 0.01, "uniform_prior": True,
                                                        "pooling": "geometric", "speed_copies": (0.9, 1.1),
                                                        "score_speed_copies": True}
    assert trained.info["functionals_fusion"]["n_regression_rows"] == 3 * trained.info["n_train"]
    assert (trained.dir / "functionals.npz").is_file()
    assert trained.info["functionals_fusion"]["network_alone"]["uar"] >= 0
    run = load_run(trained.dir)
    clips = sorted(Path(standin_dir).rglob("*.wav"))[:2]
    X = np.stack([extract_file(c, run.spec) for c in clips])
    network = probabilities(run.model, X)
    assert run.functional_speeds == (1.0, 0.9, 1.1)
    F = functionals(clips, progress=False, speeds=run.functional_speeds)
    assert F.shape[:2] == (2, 3)
    fused = run.predict_proba(X, functionals=F)
    assert not np.allclose(network, fused, atol=1e-4)
    with pytest.raises(SerlibError, match="speeds"):     # the clip as it is only: a one-line error, not a guess
        run.predict_proba(X, functionals=F[:, 0])
    from serlib.fusion import geometric_pool, linear_log_proba, uniform_prior

    each = np.mean([linear_log_proba(run.fusion, F[:, k]) for k in range(3)], axis=0)   # averaged over speeds
    by_hand = uniform_prior(geometric_pool(network, each - np.log(np.exp(each).sum(1, keepdims=True)), 0.5),
                            run.fusion["prior"])
    np.testing.assert_allclose(fused, by_hand, atol=1e-5)
    from serlib import audio

    reads = []
    original = audio._read
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(audio, "_read", lambda path, *a, **k: reads.append(path) or original(path, *a, **k))
        predicted = [[r["probabilities"][k] for k in run.labels] for r in predict_paths(run, clips)]
    np.testing.assert_allclose(predicted, fused, atol=1e-4)
    assert len(reads) == len(clips)          # each file decoded once, for both the features and the functionals


def test_evaluate_and_a_waveform_use_the_three_speeds_too(trained, standin_dir):
    """evaluate_run and predict_waveform describe each clip at the run's speeds, like predict_paths."""
    import soundfile as sf

    from serlib.predict import predict_paths, predict_waveform
    from serlib.evaluation import evaluate_run

    report = evaluate_run(trained.dir, standin_dir)
    assert report["n"] > 0 and 0 <= report["uar"] <= 1
    clip = sorted(Path(standin_dir).rglob("*.wav"))[0]
    y, sr = sf.read(clip, dtype="float32")   # as recorded: the same samples predict_paths decodes
    from_wave = predict_waveform(trained, y, sr)["probabilities"]
    (from_file,) = predict_paths(trained, [clip])
    for label in trained.labels:
        assert from_wave[label] == pytest.approx(from_file["probabilities"][label], abs=1e-4)
