"""serlib.training and serlib.runs: the protocol, the run folder, determinism, leakage.

Runs on the synthetic stand-in corpus (``standin_dir``) with a tiny model and two short
epochs, so the whole file takes seconds.
"""
from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np
import pandas as pd
import pytest

from serlib import cli
from serlib.errors import SerlibError
from serlib.runs import RUN_FILES, load_run
from serlib.evaluation import evaluate_run
from serlib.training import default_split, prepare_data, train

MODEL = "das2019_model_b"  # 4,456 parameters, 40 MFCC means per clip: the fastest model
TINY = dict(epochs=2, batch_size=16, quick=True, verbose=0)


@pytest.fixture(scope="module")
def trained(standin_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "run"
    return train(MODEL, standin_dir, out_dir=out, seed=0, **TINY)


def test_run_folder_is_complete(trained, standin_dir):
    files = sorted(p.name for p in trained.dir.iterdir())
    assert files == sorted(RUN_FILES)
    info = json.loads((trained.dir / "run.json").read_text())
    assert info["model"] == MODEL
    assert info["source"] == "Das 2019"
    assert info["labels"] == list(trained.labels) and len(info["labels"]) == 8
    assert info["feature_spec"]["kind"] == "mfcc_mean"
    assert info["seed"] == 0 and info["epochs_run"] == 2
    assert info["training_seconds"] > 0
    assert info["serlib_version"]
    assert info["data"]["synthetic"] is True and info["data"]["source"] == "synthetic"
    actors = info["split"]["actors"]
    assert actors["test"] == [4] and len(actors["val"]) == 1  # 4 stand-in actors: 1 test, 1 val, 2 train
    assert not set(actors["test"]) & (set(actors["train"]) | set(actors["val"]))
    assert "normalization" in info
    history = json.loads((trained.dir / "history.json").read_text())
    assert len(history["loss"]) == 2 and len(history["val_loss"]) == 2
    metrics = json.loads((trained.dir / "metrics.json").read_text())
    for key in ("accuracy", "uar", "f1_macro", "n", "labels", "confusion"):
        assert key in metrics
    actor_4 = [p for p in standin_dir.rglob("*") if p.stem.endswith("-04")]
    assert metrics["n"] == info["n_test"] == len(actor_4) > 0


def test_load_run_round_trip(trained, standin_dir):
    run = load_run(trained.dir)
    assert run.labels == trained.labels and run.spec == trained.spec
    prep = prepare_data(MODEL, standin_dir, verbose=0)
    X = prep.X[:5]
    np.testing.assert_allclose(run.predict_proba(X), trained.predict_proba(X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run.predict_proba(X).sum(axis=1), 1.0, rtol=1e-5)


def test_evaluate_run_scores_every_clip(trained, standin_dir, capsys):
    m = evaluate_run(trained.dir, standin_dir)
    n_clips = len([p for p in standin_dir.rglob("*") if p.suffix in (".wav", ".flac")])
    assert m["n"] == n_clips and m["dropped"] == 0
    assert 0.0 <= m["uar"] <= 1.0 and len(m["confusion"]) == 8
    assert sum(map(sum, m["confusion"])) == n_clips
    # the CLI prints the same as JSON with the documented keys
    assert cli.main(["evaluate", str(trained.dir), "--data", str(standin_dir), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("accuracy", "uar", "f1_macro", "n", "labels", "confusion"):
        assert key in out
    assert out["accuracy"] == pytest.approx(m["accuracy"])


class _Records(logging.Handler):
    """Collects the records of one serlib logger, whatever handlers the CLI installed."""

    def __init__(self, name):
        super().__init__(logging.DEBUG)
        self.logger, self.records = logging.getLogger(name), []

    def emit(self, record):
        self.records.append(record)

    def __enter__(self):
        self.logger.addHandler(self)
        return self.records

    def __exit__(self, *exc):
        self.logger.removeHandler(self)


def test_evaluate_drops_labels_the_run_does_not_know(trained, standin_dir, tmp_path):
    # the run restricted to six emotions, as report 003's models are (in memory: a run folder
    # whose labels do not match its model's outputs is refused by load_run)
    run = load_run(trained.dir)
    run = dataclasses.replace(run, model=_first_six_outputs(run.model), labels=run.labels[:6],
                              info={**run.info, "model": "not_registered_anymore"})
    with _Records("serlib.evaluation") as records:
        m = evaluate_run(run, standin_dir)
    clips = [p for p in standin_dir.rglob("*") if p.suffix in (".wav", ".flac")]
    n_clips = len(clips)
    n_disgust_surprised = len([p for p in clips if p.name.split("-")[2] in ("07", "08")])
    assert m["dropped"] == n_disgust_surprised > 0
    assert m["n"] == n_clips - n_disgust_surprised
    assert sorted(m["dropped_labels"]) == ["disgust", "surprised"]
    (warning,) = [r for r in records if r.levelno == logging.WARNING]       # one line, naming the folder
    message = warning.getMessage()
    assert str(standin_dir) in message and f"dropped {n_disgust_surprised} of {n_clips} clips" in message
    assert "disgust, surprised" in message and "\n" not in message


def _first_six_outputs(model):
    import keras

    inputs = keras.Input(shape=model.input_shape[1:])
    probs = model(inputs)
    six = keras.layers.Lambda(lambda p: p[:, :6] / keras.ops.sum(p[:, :6], axis=1, keepdims=True))(probs)
    return keras.Model(inputs, six)


def test_same_seed_same_numbers(trained, standin_dir, tmp_path):
    a = trained  # seed 0
    b = train(MODEL, standin_dir, out_dir=tmp_path / "again", seed=0, **TINY)
    assert a.metrics == b.metrics
    assert a.history["loss"] == b.history["loss"]
    assert a.info["split"] == b.info["split"]


def test_train_refuses_a_non_empty_out_dir(standin_dir, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(SerlibError, match="not empty"):
        train(MODEL, standin_dir, out_dir=out, **TINY)
    assert cli.main(["train", MODEL, "--data", str(standin_dir), "--out", str(out), "--quick"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not empty" in err[0] and "Traceback" not in err[0]
    assert (out / "keep.txt").read_text() == "mine" and len(list(out.iterdir())) == 1


@pytest.mark.parametrize("argv, expect", [
    (["train", "no_such_model", "--data", "{data}", "--out", "{tmp}/r"], "unknown model"),
    (["train", MODEL, "--data", "{tmp}/missing", "--out", "{tmp}/r"], "no such"),
    (["evaluate", "{tmp}", "--data", "{data}"], "not a serlib run"),
    (["evaluate", "{tmp}/missing", "--data", "{data}"], "no such run folder"),
    (["predict", "{tmp}", "x.wav"], "not a serlib run"),
])
def test_cli_errors_are_one_line(argv, expect, standin_dir, tmp_path, capsys):
    argv = [a.format(data=standin_dir, tmp=tmp_path) for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert expect in err[0]


def test_augmentation_never_touches_test_clips(standin_dir, tmp_path, monkeypatch):
    import serlib.training.augmentation as augmentation

    loaded = []
    original = augmentation._load_waveforms

    def spy(paths, spec):
        loaded.extend(paths)
        return original(paths, spec)

    monkeypatch.setattr(augmentation, "_load_waveforms", spy)
    monkeypatch.setenv("SERLIB_CACHE_DIR", str(tmp_path / "cache"))  # no cached augmentation
    run = train(MODEL, standin_dir, out_dir=tmp_path / "aug", seed=1,
                augment={"copies": 1, "ops": ["noise", "shift"]}, **TINY)
    prep = prepare_data(MODEL, standin_dir, verbose=0)
    split = default_split(prep.index, seed=1)
    paths = prep.index["path"].astype(str).to_numpy()
    assert sorted(loaded) == sorted(paths[split.train])
    assert not set(loaded) & set(paths[split.test]) and not set(loaded) & set(paths[split.val])
    assert run.info["n_train_augmented"] == run.info["n_train"] == len(split.train)
    assert run.metrics["n"] == len(split.test)


@pytest.mark.slow
def test_random_split_protocol_and_cross_validation(standin_dir):
    from serlib.training import cross_validate, random_split_protocol

    cv = cross_validate(MODEL, standin_dir, k=2, folds=[0], **TINY)
    assert len(cv["folds"]) == 1 and cv["folds"][0]["fold"] == 0
    tested = set(cv["folds"][0]["actors"]["test"])
    assert tested and not tested & set(cv["folds"][0]["actors"]["train"])
    assert cv["summary"]["uar"]["mean"] == pytest.approx(cv["folds"][0]["uar"])
    rnd = random_split_protocol(MODEL, standin_dir, repeats=1, **TINY)
    assert rnd["protocol"] == "random 80/10/10"  # report 002's 3923/490/491
    assert set(rnd["folds"][0]["actors"]["test"]) <= set(rnd["folds"][0]["actors"]["train"])


def test_default_split_holds_out_last_actors():
    df = pd.DataFrame({"actor": np.repeat(np.arange(1, 21), 3), "path": [f"{i}" for i in range(60)],
                       "gender": ["male" if a % 2 else "female" for a in np.repeat(np.arange(1, 21), 3)]})
    split = default_split(df, seed=0)
    actors = split.actors(df)
    assert actors["test"] == [19, 20] and len(actors["val"]) == 2
    assert len(actors["train"]) == 16
    with pytest.raises(SerlibError, match="at least 3"):
        default_split(df[df["actor"] <= 2])


def test_normalisation_uses_training_clips_only(standin_dir, tmp_path):
    from serlib.runs import save_run
    from serlib.training import fit_split

    prep = prepare_data(MODEL, standin_dir, verbose=0)
    split = default_split(prep.index, seed=0)
    run = fit_split(prep, split, seed=0, recipe={"normalize": True}, **TINY)
    assert run.info["recipe"]["normalize"] is True
    train_part = prep.X[split.train].astype(np.float64)
    np.testing.assert_allclose(run.normalization["mean"], train_part.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(run.normalization["std"], train_part.std(axis=0), rtol=1e-6)
    everything = prep.X.astype(np.float64).mean(axis=0)
    assert not np.allclose(run.normalization["mean"], everything)  # the test actor changes the mean
    # stored in run.json and applied again at prediction time
    loaded = load_run(save_run(run, tmp_path / "norm"))
    assert set(loaded.normalization) == set(run.normalization)
    for key, value in run.normalization.items():
        np.testing.assert_allclose(np.asarray(loaded.normalization[key], dtype=np.float64),
                                   np.asarray(value, dtype=np.float64), rtol=1e-6, err_msg=key)
    X = prep.X[split.test][:4]
    np.testing.assert_allclose(loaded.predict_proba(X), run.predict_proba(X), rtol=1e-5, atol=1e-6)
    raw = loaded.model.predict(X, verbose=0)
    assert not np.allclose(raw, loaded.predict_proba(X), atol=1e-4)


def test_checkpoint_keeps_the_best_validation_epoch(standin_dir):
    from serlib.training import fit_split

    prep = prepare_data(MODEL, standin_dir, verbose=0)
    split = default_split(prep.index, seed=0)
    run = fit_split(prep, split, seed=0, recipe=['callbacks={"checkpoint": true, "monitor": "val_loss"}'],
                    **{**TINY, "epochs": 4})
    assert "checkpoint" in run.info["weights"]
    X_val, y_val = prep.X[split.val], prep.y[split.val]
    loss = run.model.evaluate(X_val, y_val, verbose=0, batch_size=256)[0]
    assert loss == pytest.approx(min(run.history["val_loss"]), rel=1e-4)
    assert run.info["best_epoch"] == int(np.argmin(run.history["val_loss"])) + 1


def test_the_recipe_decides_the_optimizer(standin_dir):
    # benchmarks/models.py --learning-rate passes a recipe; the compiled model must follow it,
    # not the registered recipe of the same model
    from serlib.models import get_recipe
    from serlib.training import fit_split

    prep = prepare_data(MODEL, standin_dir, verbose=0)
    rate = get_recipe(MODEL).learning_rate / 7
    recipe = get_recipe(MODEL, learning_rate=rate, lr_schedule=None)
    run = fit_split(prep, default_split(prep.index, seed=0), seed=0, recipe=recipe, **TINY)
    assert run.info["recipe"]["learning_rate"] == pytest.approx(rate)
    assert run.history["learning_rate"][0] == pytest.approx(rate)
    assert float(run.model.optimizer.learning_rate) == pytest.approx(rate)


def test_balanced_class_weights_make_every_class_count_equally():
    from serlib.training import balanced_class_weights

    y = np.array([0] * 10 + [1] * 20 + [2] * 20)
    w = balanced_class_weights(y, 4)
    totals = [w[k] * np.sum(y == k) for k in range(3)]
    assert totals == pytest.approx([50 / 3] * 3)     # each present class carries the same total weight
    assert w[0] == pytest.approx(2 * w[1]) and w[3] == 1.0


def test_balanced_recipe_records_its_weights_in_the_run(standin_dir):
    from serlib.models import get_recipe
    from serlib.training import fit_split

    prep = prepare_data(MODEL, standin_dir, verbose=0)
    run = fit_split(prep, default_split(prep.index, seed=0), seed=0, recipe=["class_weight=balanced"], **TINY)
    weights = run.info["class_weight"]
    assert set(weights) == set(prep.labels)
    assert weights["neutral"] > weights["calm"]      # the stand-in, like RAVDESS, has half as many neutral clips
    with pytest.raises(SerlibError, match="class_weight"):
        get_recipe(MODEL, class_weight="inverse")


def test_an_ensemble_averages_networks_trained_from_their_own_seeds(standin_dir, tmp_path):
    import keras

    from serlib.models import get_recipe
    from serlib.runs import save_run
    from serlib.training import ENSEMBLE_SEED_STEP, fit_split

    prep = prepare_data(MODEL, standin_dir, verbose=0)
    split = default_split(prep.index, seed=0)
    single = fit_split(prep, split, seed=3, **TINY)
    run = fit_split(prep, split, seed=3, recipe=get_recipe(MODEL, ensemble=2), **TINY)
    assert [n["seed"] for n in run.info["ensemble"]] == [3, 3 + ENSEMBLE_SEED_STEP]
    assert run.info["params"] == 2 * single.info["params"]
    assert run.info["training_seconds"] == pytest.approx(sum(n["training_seconds"] for n in run.info["ensemble"]),
                                                         abs=0.01)
    X = prep.X[split.test]
    first, second = (layer for layer in run.model.layers if isinstance(layer, keras.Model))
    members = [first.predict(X, verbose=0), second.predict(X, verbose=0)]
    proba = run.model.predict(X, verbose=0)
    assert np.allclose(proba, np.mean(members, axis=0), atol=1e-6)
    assert np.allclose(members[0], single.model.predict(X, verbose=0), atol=1e-6)  # network 1 = the single run
    assert not np.allclose(members[0], members[1], atol=1e-3)                     # network 2 has its own seed
    save_run(run, tmp_path / "run")
    assert np.allclose(load_run(tmp_path / "run").model.predict(X, verbose=0), proba, atol=1e-6)
    with pytest.raises(SerlibError, match="ensemble"):
        get_recipe(MODEL, ensemble=0)


def test_gender_pipeline_takes_runs_not_folders(trained):
    """serlib.models sits below serlib.runs: from_runs assembles loaded runs and names anything else."""
    from serlib.models import GenderThenEmotion

    gender = dataclasses.replace(trained, labels=["female", "male"])
    with pytest.raises(SerlibError, match="female_run=.*is not a run.*load_run"):
        GenderThenEmotion.from_runs(gender, str(trained.dir), trained)
    pipe = GenderThenEmotion.from_runs(gender, trained, trained)
    assert pipe.emotion_labels == tuple(trained.labels) and pipe.gender_model is trained.model


# ----------------------------------------------------------------------------- a final model on every speaker
@pytest.fixture(scope="module")
def final(standin_dir, tmp_path_factory):
    return train(MODEL, standin_dir, out_dir=tmp_path_factory.mktemp("final") / "run", seed=0, test_actors=[],
                 **TINY)


def test_a_final_model_trains_on_every_speaker_and_says_it_has_no_scores(final, standin_dir):
    prep = prepare_data(MODEL, standin_dir, verbose=0)
    actors = final.info["split"]["actors"]
    assert actors["test"] == [] and len(actors["val"]) == 1               # 4 stand-in actors: 3 train, 1 validates
    assert sorted(actors["train"] + actors["val"]) == sorted(prep.index["actor"].unique().tolist())
    assert final.info["n_train"] + final.info["n_val"] == len(prep.index) and final.info["n_test"] == 0
    assert final.metrics is None and final.network_test_proba is None
    assert "final model: no test speakers" in final.info["split"]["note"]
    assert "no test scores" in final.info["split"]["description"]
    assert len(final.history["val_loss"]) == 2                             # early stopping still watches validation
    assert json.loads((final.dir / "metrics.json").read_text()) is None
    reloaded = load_run(final.dir)
    assert reloaded.metrics is None and reloaded.info["split"]["note"] == final.info["split"]["note"]
    np.testing.assert_allclose(reloaded.predict_proba(prep.X[:4]), final.predict_proba(prep.X[:4]), atol=1e-6)
    m = evaluate_run(reloaded, standin_dir)        # scoring it later on other data still works
    assert m["n"] == len(prep.index)


def test_a_final_model_without_validation_trains_on_every_clip(standin_dir, tmp_path):
    from serlib.training import fit_split

    prep = prepare_data(MODEL, standin_dir, verbose=0)
    split = default_split(prep.index, test_actors=[], val_actors=[], seed=0)
    assert len(split.train) == len(prep.index) and len(split.val) == len(split.test) == 0
    run = fit_split(prep, split, seed=0, **TINY)
    assert run.metrics is None and "val_loss" not in run.history and run.info["monitor"] == "loss"
    assert default_split(prep.index, test_actors=(), val_actors=[2, 3]).actors(prep.index)["val"] == [2, 3]
    with pytest.raises(SerlibError, match="not in this index"):
        default_split(prep.index, test_actors=[], val_actors=[9])
    with pytest.raises(SerlibError, match="no actor is left for training"):
        default_split(prep.index, test_actors=[], val_actors=[1, 2, 3, 4])


def test_cli_all_speakers(standin_dir, tmp_path, capsys):
    out = tmp_path / "final"
    assert cli.main(["train", MODEL, "--data", str(standin_dir), "--out", str(out), "--all-speakers", "--quick",
                     "--epochs", "1", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "test: none (final model: no test speakers, so no test scores)" in lines
    assert load_run(out).metrics is None and load_run(out).info["split"]["actors"]["test"] == []
    with pytest.raises(SystemExit) as stop:   # argparse: one or the other
        cli.main(["train", MODEL, "--data", str(standin_dir), "--out", str(tmp_path / "x"), "--all-speakers",
                  "--test-actors", "4"])
    assert stop.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the augmented-copies cache
def test_augmented_copies_are_cached_checked_and_made_again_when_damaged(standin_dir, tmp_path, monkeypatch):
    from serlib.splits import Split
    from serlib.training import augmented_features

    prep = prepare_data(MODEL, standin_dir, verbose=0)
    monkeypatch.setenv("SERLIB_CACHE_DIR", str(tmp_path / "cache"))
    split = Split(train=np.arange(6), val=[], test=np.arange(6, 8), protocol="six clips", n_rows=len(prep.index))
    settings = {"copies": 2, "ops": ["noise", "shift"]}
    X, y, record = augmented_features(prep, split, settings=settings, seed=3, verbose=0)
    assert X.shape == (12, *prep.X.shape[1:]) and record["cached"] is False
    (entry,) = (tmp_path / "cache" / "augmented").iterdir()       # one file: no temporary leftovers
    assert entry.read_bytes()[-51:-32] == b"serlib-blake2b-256:"   # sealed like the feature cache
    X2, y2, record2 = augmented_features(prep, split, settings=settings, seed=3, verbose=0)
    assert record2["cached"] is True and record2["source_paths"] == record["source_paths"]
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)

    blob = bytearray(entry.read_bytes())
    blob[len(blob) // 2] ^= 0xFF                                   # one flipped byte
    entry.write_bytes(bytes(blob))
    with _Records("serlib") as records:
        X3, _, record3 = augmented_features(prep, split, settings=settings, seed=3, verbose=0)
    assert record3["cached"] is False and any("fails its checksum" in r.getMessage() for r in records)
    np.testing.assert_array_equal(X3, X)                           # made again, the same
    assert augmented_features(prep, split, settings=settings, seed=3, verbose=0)[2]["cached"] is True

    import io

    from serlib.storage import seal

    buffer = io.BytesIO()   # a checksummed file holding pickled objects is still refused, never unpickled
    np.savez(buffer, X=np.array([object()], dtype=object), y=np.zeros(1, np.int64), source=np.zeros(1, np.int64))
    entry.write_bytes(seal(buffer.getvalue()))
    assert augmented_features(prep, split, settings=settings, seed=3, verbose=0)[2]["cached"] is False
    assert augmented_features(prep, split, settings=settings, seed=3, verbose=0)[2]["cached"] is True  # rewritten
    other = augmented_features(prep, split, settings=settings, seed=4, verbose=0)   # another seed, another entry
    assert other[2]["cached"] is False and len(list((tmp_path / "cache" / "augmented").iterdir())) == 2
