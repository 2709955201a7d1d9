"""serlib.experiments: the reports' experiments beside their models, fold by fold."""
import json

import matplotlib

matplotlib.use("Agg")

from serlib.experiments import AS_REPORTED, experiment_records, experiment_table, plot_experiment  # noqa: E402


def _record(model, fold, uar, **extra):
    return {"model": model, "protocol": "speaker", "fold": fold, "uar": uar, "accuracy": uar + 0.01,
            "epochs_run": 10, "training_seconds": 5.0, "n_train": 800,
            "settings": {"quick": False, "epochs": None, "seed": 0, "folds": 5}, **extra}


def _write(tmp_path, experiments, models):
    e, m = tmp_path / "experiments.json", tmp_path / "models.json"
    e.write_text(json.dumps({"schema": 1, "records": experiments}))
    m.write_text(json.dumps({"schema": 1, "records": models}))
    return e, m


def test_variant_is_paired_with_the_current_harness_folds_of_its_model(tmp_path):
    exp = [_record("m", f, 0.30 + 0.01 * f, experiment="004-activation", question="ReLU or LeakyReLU?",
                   variant="LeakyReLU", n_train_augmented=0, n_song=0) for f in range(3)]
    models = [_record("m", 0, 0.20, history={"loss": [1.0]}), _record("m", 1, 0.25, history={"loss": [1.0]}),
              _record("m", 2, 0.90),                                 # older harness: no history, not paired
              _record("m", 3, 0.20, history={}, settings={"quick": True}),   # smoke test: ignored
              _record("other", 0, 0.5, history={})]
    e, m = _write(tmp_path, exp, models)
    rows = experiment_records("004-activation", e, m)
    assert set(rows["variant"]) == {AS_REPORTED, "LeakyReLU"}
    assert sorted(rows[rows["variant"] == AS_REPORTED]["fold"]) == [0, 1]
    table = experiment_table(e, m).set_index("variant")
    assert table.loc["LeakyReLU", "folds"] == 3
    assert table.loc["LeakyReLU", "paired folds"] == 2
    # (0.30 - 0.20) and (0.31 - 0.25) -> +10 and +6 points
    assert table.loc["LeakyReLU", "Δ UAR (points)"] == 8.0
    assert table.loc[AS_REPORTED, "paired folds"] == 0


def test_nothing_recorded_gives_empty_tables_and_a_figure_that_says_so(tmp_path):
    e, m = _write(tmp_path, [], [])
    assert experiment_table(e, m).empty
    assert experiment_records(None, tmp_path / "missing.json", m).empty
    fig = plot_experiment("002-song", path=e, models_path=m)
    assert "not run yet" in fig.axes[0].texts[0].get_text()


def test_figure_has_one_row_per_variant(tmp_path):
    exp = [_record("m", f, 0.3, experiment="002-song", question="What do the song clips add?",
                   variant="speech + song", n_train_augmented=0, n_song=500) for f in range(2)]
    e, m = _write(tmp_path, exp, [_record("m", f, 0.2, history={}) for f in range(2)])
    fig = plot_experiment("002-song", path=e, models_path=m)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == [f"m\n{AS_REPORTED}", "m\nspeech + song"]


def test_report_004_builder_options_change_only_what_they_say():
    from serlib.models import build_model
    from serlib.models.hybrid import _pankratz

    base = build_model("pankratz2024_cnn_bilstm")
    leaky = _pankratz((226, 162), 8, dropout=0.25, name="leaky", activation="leaky_relu")
    pool3 = _pankratz((226, 162), 8, dropout=0.25, name="pool3", pool=3)
    assert leaky.count_params() == base.count_params()
    assert leaky.get_layer("conv1").activation.__name__ == "leaky_relu"
    assert base.get_layer("pool").output.shape[1] == 222 // 5
    assert pool3.get_layer("pool").output.shape[1] == 222 // 3


def test_summary_sentences_quote_both_and_the_paired_change(tmp_path):
    exp = [_record("m", f, 0.30 + 0.02 * f, experiment="000-optimizer", question="RMSprop, SGD or Adam?",
                   variant="SGD", n_train_augmented=0, n_song=0) for f in range(2)]
    e, m = _write(tmp_path, exp, [_record("m", f, 0.20, history={}) for f in range(2)])
    from serlib.experiments import experiment_summary

    text = experiment_summary("000-optimizer", e, m)["SGD"]
    assert text.startswith("UAR 31.0 % ± 1.4 over 2 folds, against 20.0 % ± 0.0 as in the report")
    assert "a change of +11.0 ± 1.4 points on the 2 folds both ran" in text
    assert experiment_summary("004-pool", e, m) == {}


def test_changes_plot_has_one_row_per_paired_variant(tmp_path):
    from serlib.experiments import plot_changes

    exp = [_record("m", 0, 0.3, experiment="004-pool", question="Which pooling size?", variant=v,
                   n_train_augmented=0, n_song=0) for v in ("pool 3", "pool 8")]
    e, m = _write(tmp_path, exp, [_record("m", 0, 0.2, history={})])
    fig = plot_changes(path=e, models_path=m)
    assert len(fig.axes[0].get_yticklabels()) == 2
    empty_e, empty_m = _write(tmp_path, [], [])
    assert "no experiment" in plot_changes(path=empty_e, models_path=empty_m).axes[0].texts[0].get_text()
