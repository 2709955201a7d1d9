"""serlib.fusion: a network averaged with a regression on clip functionals, from training to predict."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from serlib import fusion
from serlib.errors import SerlibError
from serlib.functionals import functionals
from serlib.models import register_variant
from serlib.runs import load_run
from serlib.evaluation import evaluate_run
from serlib.training import prepare_data, train

BASE = "das2019_model_b"          # the fastest registered model
FUSED = "test_das_b_fused"
TINY = dict(epochs=2, batch_size=16, quick=True, verbose=0)


# ------------------------------------------------------------------------------- the arithmetic
def test_linear_part_matches_scikit_learn_and_fuses_to_probabilities():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    F = rng.normal(size=(60, 5))
    y = (F[:, 0] > 0).astype(int) + 2 * (F[:, 1] > 0)           # classes 0..3; class 4 never seen
    params = fusion.fit_linear(F, y, 5, C=0.5, weight=0.25)
    reference = LogisticRegression(C=0.5, max_iter=5000).fit((F - F.mean(0)) / F.std(0), y)
    expected = reference.predict_proba((F - F.mean(0)) / F.std(0))
    got = fusion.linear_proba(params, F)
    np.testing.assert_allclose(got[:, :4], expected, atol=1e-6)
    assert np.all(got[:, 4] == 0)                                  # an unseen class gets nothing
    network = np.full((60, 5), 0.2)
    fused = fusion.fuse(params, network, F)
    np.testing.assert_allclose(fused, 0.25 * network + 0.75 * got, atol=1e-6)
    np.testing.assert_allclose(fused.sum(axis=1), 1.0, atol=1e-5)


def test_uniform_prior_divides_by_the_training_share_and_renormalises():
    prior = np.array([0.5, 0.25, 0.25, 0.0])
    proba = np.array([[0.4, 0.3, 0.3, 0.0], [0.25, 0.25, 0.25, 0.25]])
    got = fusion.uniform_prior(proba, prior)
    np.testing.assert_allclose(got[0], np.array([0.8, 1.2, 1.2, 0.0]) / 3.2)
    np.testing.assert_allclose(got[1], [0.2, 0.4, 0.4, 0.0])         # a class never trained on stays at 0
    assert got[0].argmax() != proba[0].argmax()                       # the common class loses its head start


def test_fuse_applies_the_uniform_prior_only_when_asked():
    rng = np.random.default_rng(2)
    F = rng.normal(size=(80, 4))
    y = np.r_[np.zeros(40, int), np.ones(20, int), np.full(20, 2)]   # class 0 twice as common
    network = rng.dirichlet(np.ones(3), size=80)
    plain = fusion.fit_linear(F, y, 3, C=1.0, weight=0.5)
    uniform = fusion.fit_linear(F, y, 3, C=1.0, weight=0.5, uniform_prior=True)
    np.testing.assert_allclose(plain["prior"], [0.5, 0.25, 0.25])
    assert not plain["uniform_prior"] and uniform["uniform_prior"]
    np.testing.assert_allclose(fusion.fuse(uniform, network, F),
                               fusion.uniform_prior(fusion.fuse(plain, network, F), plain["prior"]), atol=1e-6)
    assert (fusion.fuse(uniform, network, F).argmax(1) == 0).sum() < (fusion.fuse(plain, network, F).argmax(1) == 0).sum()


def test_a_regression_saved_before_uniform_prior_existed_loads_with_it_off(tmp_path):
    params = fusion.fit_linear(np.eye(4), np.arange(4) % 2, 2, C=1.0, weight=0.5)
    old = {k: v for k, v in params.items() if k not in ("prior", "uniform_prior")}
    fusion.save(old, tmp_path / "old.npz")
    assert fusion.load(tmp_path / "old.npz")["uniform_prior"] is False
    fusion.save({**params, "uniform_prior": True}, tmp_path / "new.npz")
    loaded = fusion.load(tmp_path / "new.npz")
    assert loaded["uniform_prior"] is True and np.allclose(loaded["prior"], [0.5, 0.5])


def test_geometric_pooling_is_the_renormalised_weighted_product():
    rng = np.random.default_rng(3)
    F = rng.normal(size=(50, 4))
    y = (F[:, 0] > 0).astype(int) + 2 * (F[:, 1] > 0)             # classes 0..3; class 4 never seen
    params = fusion.fit_linear(F, y, 5, C=1.0, weight=0.3, pooling="geometric")
    network = rng.dirichlet(np.ones(5), size=50)
    linear = fusion.linear_proba(params, F)
    expected = network ** 0.3 * linear ** 0.7
    expected /= expected.sum(axis=1, keepdims=True)
    got = fusion.fuse(params, network, F)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert np.all(got[:, 4] == 0)                                   # the regression rules out an unseen class
    arithmetic = fusion.fuse({**params, "pooling": "arithmetic"}, network, F)
    assert not np.allclose(got, arithmetic, atol=1e-3)


def test_geometric_pooling_favours_the_class_both_models_find_plausible():
    # the network is sure of class 0, which the regression finds unlikely; both find class 1 plausible
    network = np.array([[0.70, 0.25, 0.05]])
    linear_log = np.log(np.array([[0.10, 0.30, 0.60]]))
    arithmetic = 0.5 * network + 0.5 * np.exp(linear_log)
    geometric = fusion.geometric_pool(network, linear_log, 0.5)
    assert arithmetic.argmax() == 0 and geometric.argmax() == 1
    np.testing.assert_allclose(geometric.sum(), 1.0)
    # a network probability that underflowed to 0 does not veto its class on its own
    rescued = fusion.geometric_pool(np.array([[0.0, 1.0, 0.0]]), np.log(np.array([[0.98, 0.01, 0.01]])), 0.5)
    assert rescued[0, 0] > 0 and np.isfinite(rescued).all()


def test_a_regression_saved_before_pooling_existed_loads_arithmetic(tmp_path):
    params = fusion.fit_linear(np.eye(4), np.arange(4) % 2, 2, C=1.0, weight=0.5, pooling="geometric")
    fusion.save({k: v for k, v in params.items() if k != "pooling"}, tmp_path / "old.npz")
    assert fusion.load(tmp_path / "old.npz")["pooling"] == "arithmetic"
    fusion.save(params, tmp_path / "new.npz")
    assert fusion.load(tmp_path / "new.npz")["pooling"] == "geometric"
    with pytest.raises(SerlibError, match="pooling"):
        fusion.fit_linear(np.eye(4), np.arange(4) % 2, 2, C=1.0, weight=0.5, pooling="median")


def test_two_classes_use_the_single_row_scikit_learn_keeps():
    rng = np.random.default_rng(1)
    F = rng.normal(size=(40, 3))
    y = (F[:, 2] > 0).astype(int)
    p = fusion.linear_proba(fusion.fit_linear(F, y, 2, C=1.0, weight=0.5), F)
    assert ((p[:, 1] > 0.5) == (y == 1)).mean() > 0.9


@pytest.mark.parametrize("bad", [{"weight": 1.0}, {"weight": -0.1}, {"C": 0}, {"alpha": 1}, "0.5",
                                 {"uniform_prior": "yes"}, {"pooling": "median"}, {"speed_copies": (1.0,)},
                                 {"speed_copies": (3.0,)}, {"speed_copies": "fast"},
                                 {"score_speed_copies": True}, {"speed_copies": (0.9,), "score_speed_copies": "yes"}])
def test_bad_settings_are_refused_when_registering(bad):
    with pytest.raises(SerlibError, match="functionals_fusion"):
        register_variant(BASE, "test_bad_fusion", functionals_fusion=bad)


def test_speed_copies_add_rows_to_the_regression_only_for_the_given_clips():
    from serlib.training import PreparedData, regression_rows

    F = np.arange(12.0).reshape(6, 2)
    prep = PreparedData(model_name="m", entry=None, index=None, X=None, y=np.array([0, 1, 2, 0, 1, 2]),
                        labels=["a", "b", "c"], spec=None, task="emotion", functionals=F,
                        perturbed_functionals={0.9: F + 100, 1.1: F + 200})
    rows, labels = regression_rows(prep, [1, 4], (0.9, 1.1), verbose=0)
    np.testing.assert_array_equal(rows, np.vstack([F[[1, 4]], F[[1, 4]] + 100, F[[1, 4]] + 200]))
    np.testing.assert_array_equal(labels, [1, 1, 1, 1, 1, 1])
    rows, labels = regression_rows(prep, [0, 2], (), verbose=0)
    np.testing.assert_array_equal(rows, F[[0, 2]])
    np.testing.assert_array_equal(labels, [0, 2])
    settings = fusion.check_settings({"speed_copies": [0.9, "1.1"]})
    assert settings["speed_copies"] == (0.9, 1.1) and fusion.check_settings({})["speed_copies"] == ()


def test_a_clip_heard_at_several_speeds_gets_the_renormalised_mean_of_its_log_probabilities(tmp_path):
    rng = np.random.default_rng(0)
    F, y = rng.normal(size=(60, 4)), np.arange(60) % 3
    plain = fusion.fit_linear(F, y, 3, C=1.0, weight=0.5, uniform_prior=True, pooling="geometric",
                              speed_copies=(0.9, 1.1))
    scored = fusion.fit_linear(F, y, 3, C=1.0, weight=0.5, uniform_prior=True, pooling="geometric",
                               speed_copies=(0.9, 1.1), score_speed_copies=True)
    assert fusion.speeds(plain) == (1.0,) and fusion.speeds(scored) == (1.0, 0.9, 1.1) and fusion.speeds(None) == (1.0,)
    versions = rng.normal(size=(5, 3, 4))
    each = np.mean([fusion.linear_log_proba(plain, versions[:, k]) for k in range(3)], axis=0)
    expected = each - np.log(np.exp(each).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(fusion.linear_log_proba(scored, versions), expected, atol=1e-12)
    np.testing.assert_allclose(np.exp(expected).sum(axis=1), 1.0)
    np.testing.assert_allclose(fusion.linear_log_proba(plain, versions[:, :1]), fusion.linear_log_proba(plain, versions[:, 0]),
                               atol=1e-12)   # one version is the clip as it is
    network = rng.dirichlet(np.ones(3), size=5)
    fused = fusion.fuse(scored, network, versions)
    assert not np.allclose(fused, fusion.fuse(plain, network, versions[:, 0]), atol=1e-4)
    with pytest.raises(SerlibError, match="speeds 1, 0.9, 1.1"):      # only the clip as it is: refused
        fusion.fuse(scored, network, versions[:, 0])
    fusion.save(scored, tmp_path / "f.npz")
    assert fusion.speeds(fusion.load(tmp_path / "f.npz")) == (1.0, 0.9, 1.1)
    old = {k: v for k, v in scored.items() if k != "score_speed_copies"}   # saved before the option existed
    fusion.save(old, tmp_path / "old.npz")
    assert fusion.speeds(fusion.load(tmp_path / "old.npz")) == (1.0,)


def test_functionals_at_several_speeds_stack_the_clip_as_it_is_first(standin_dir):
    from serlib.audio import load_audio
    from serlib.functionals import SR, speed_functionals, utterance_functionals

    clips = sorted(standin_dir.rglob("*.wav"))[:2]
    stacked = functionals(clips, progress=False, speeds=(1.0, 0.9, 1.1))
    assert stacked.shape == (2, 3, functionals(clips[:1], progress=False).shape[1])
    np.testing.assert_allclose(stacked[:, 0], functionals(clips, progress=False), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(stacked[:, 2], functionals(clips, progress=False, speed=1.1), rtol=1e-5, atol=1e-5)
    assert not np.allclose(stacked[:, 1], stacked[:, 2])
    y = load_audio(clips[0], sr=SR)
    np.testing.assert_allclose(speed_functionals(y, SR, (1.0,))[0], utterance_functionals(y, SR), rtol=1e-6)
    assert functionals([], progress=False, speeds=(1.0, 0.9)).shape[:2] == (0, 2)


def test_wrong_width_is_a_one_line_error():
    params = fusion.fit_linear(np.eye(4), np.arange(4) % 2, 2, C=1.0, weight=0.5)
    with pytest.raises(SerlibError, match="retrain"):
        fusion.linear_proba(params, np.zeros((1, 7)))


# ------------------------------------------------------------------------------- a whole run
@pytest.fixture(scope="module")
def fused_run(standin_dir, tmp_path_factory):
    """A tiny run of a fused variant; the variant leaves the registry afterwards (other tests list models)."""
    from serlib.models import registry

    with pytest.MonkeyPatch.context() as patch:
        for name in ("_REGISTRY", "_ALIASES", "_PARAMS"):
            patch.setattr(registry, name, dict(getattr(registry, name)))
        register_variant(BASE, FUSED, functionals_fusion={"weight": 0.5, "C": 0.01, "uniform_prior": True,
                                                          "pooling": "geometric"})
        yield train(FUSED, standin_dir, out_dir=tmp_path_factory.mktemp("fused") / "run", seed=0, **TINY)


def test_training_stores_the_regression_and_both_scores(fused_run):
    assert (fused_run.dir / fusion.FILE).is_file()
    info = json.loads((fused_run.dir / "run.json").read_text())
    record = info["functionals_fusion"]
    assert record["weight"] == 0.5 and record["C"] == 0.01 and record["n_functionals"] > 1000
    assert record["uniform_prior"] is True and fused_run.fusion["uniform_prior"]
    assert record["pooling"] == "geometric" and load_run(fused_run.dir).fusion["pooling"] == "geometric"
    assert fused_run.fusion["prior"].sum() == pytest.approx(1.0)
    assert 0 <= record["network_alone"]["uar"] <= 1
    assert fused_run.fusion["coef"].shape == (8, record["n_functionals"])


def test_the_run_keeps_the_networks_own_test_probabilities(fused_run, standin_dir):
    from serlib.metrics import classification_report

    info = json.loads((fused_run.dir / "run.json").read_text())
    prep = prepare_data(FUSED, standin_dir, verbose=0)
    test = prep.index["actor"].isin(info["split"]["actors"]["test"]).to_numpy()
    network = fused_run.network_test_proba
    assert network.shape == (test.sum(), len(fused_run.labels))
    alone = classification_report(prep.y[test], network, fused_run.labels)
    assert alone["uar"] == pytest.approx(info["functionals_fusion"]["network_alone"]["uar"])
    fused = fused_run.predict_proba(prep.X[test], functionals=functionals(prep.index["path"][test], progress=False))
    assert not np.allclose(network, fused, atol=1e-4)          # the fused scores are not the network's


def test_speed_copies_are_computed_only_for_the_clips_asked_for(monkeypatch):
    import pandas as pd

    import serlib.functionals as module
    from serlib.training import PreparedData, prepared_functionals, regression_rows

    calls = []

    def fake(paths, progress=True, speed=1.0):
        paths = list(paths)
        calls.append((speed, paths))
        return np.array([[float(p[1:]) * speed, speed] for p in paths])

    monkeypatch.setattr(module, "functionals", fake)
    index = pd.DataFrame({"path": [f"c{i}" for i in range(5)]})
    prep = PreparedData(model_name="m", entry=None, index=index, X=None, y=np.array([0, 1, 0, 1, 0]),
                        labels=["a", "b"], spec=None, task="emotion")
    rows, labels = regression_rows(prep, [1, 3], (2.0,), verbose=0)
    assert calls == [(1.0, ["c0", "c1", "c2", "c3", "c4"]), (2.0, ["c1", "c3"])]   # no copy of clips 0, 2, 4
    np.testing.assert_array_equal(rows[2:], [[2.0, 2.0], [6.0, 2.0]])
    np.testing.assert_array_equal(labels, [1, 1, 1, 1])
    assert np.isnan(prep.perturbed_functionals[2.0][[0, 2, 4]]).all()
    regression_rows(prep, [3, 4], (2.0,), verbose=0)           # only clip 4 is new
    assert calls[-1] == (2.0, ["c4"])
    table = prepared_functionals(prep, verbose=0, speed=2.0)   # all rows: the two still missing
    assert calls[-1] == (2.0, ["c0", "c2"]) and not np.isnan(table).any()


def test_loaded_run_predicts_the_same_and_needs_the_functionals(fused_run, standin_dir):
    prep = prepare_data(FUSED, standin_dir, verbose=0)
    paths = prep.index["path"].iloc[:6]
    X, F = prep.X[:6], functionals(paths, progress=False)
    run = load_run(fused_run.dir)
    np.testing.assert_allclose(run.predict_proba(X, functionals=F), fused_run.predict_proba(X, functionals=F),
                               atol=1e-5)
    network = dataclasses.replace(run, fusion=None).predict_proba(X)          # the network alone
    assert not np.allclose(network, run.predict_proba(X, functionals=F), atol=1e-4)
    with pytest.raises(SerlibError, match="functionals"):
        run.predict_proba(X)


def test_evaluate_and_predict_use_the_fusion(fused_run, standin_dir):
    from serlib.audio import load_audio
    from serlib.predict import predict_paths, predict_waveform

    metrics = evaluate_run(fused_run.dir, standin_dir)
    assert metrics["n"] == 240 and 0 <= metrics["uar"] <= 1
    prep = prepare_data(FUSED, standin_dir, verbose=0)
    paths = [str(p) for p in prep.index["path"].iloc[:3]]
    expected = fused_run.predict_proba(prep.X[:3], functionals=functionals(paths, progress=False))
    results = predict_paths(fused_run.dir, paths)
    for result, row in zip(results, expected):
        np.testing.assert_allclose([result["probabilities"][k] for k in fused_run.labels], row, atol=1e-4)
    y = load_audio(paths[0], sr=48000)
    single = predict_waveform(fused_run, y, 48000)
    assert single["label"] in fused_run.labels
    assert sum(single["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


def test_a_run_folder_without_its_regression_is_refused(fused_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(fused_run.dir, copy)
    (copy / fusion.FILE).unlink()
    with pytest.raises(SerlibError, match="damaged"):
        load_run(copy)


def test_a_final_fused_model_fits_its_regression_and_scores_nothing(fused_run, standin_dir):
    """Every speaker trains: the regression is fitted on every training clip, nothing is scored."""
    from serlib.training import default_split, fit_split

    prep = prepare_data(FUSED, standin_dir, verbose=0)
    prep.functionals = np.random.default_rng(0).normal(size=(len(prep.index), 6))   # stand-in statistics
    split = default_split(prep.index, test_actors=[], seed=0)
    run = fit_split(prep, split, seed=0, **TINY)
    assert run.metrics is None and run.network_test_proba is None
    record = run.info["functionals_fusion"]
    assert record["network_alone"] is None and record["n_regression_rows"] == len(split.train) == record["n_train"]
    assert run.fusion["coef"].shape == (8, 6)
    proba = run.predict_proba(prep.X[:3], functionals=prep.functionals[:3])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
