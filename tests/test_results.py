"""serlib.results and serlib.model_pages: benchmark tables and the model chapters' helpers."""
import json
from types import SimpleNamespace

import pandas as pd
import pytest

from serlib.model_pages import ModelPage
from serlib.results import benchmark_records, benchmark_table, one_label_only, recommended_results


def _record(model, protocol, fold, uar, *, quick=False, synthetic=False, epochs=None, folds=5):
    return {"model": model, "protocol": protocol, "fold": fold, "uar": uar, "accuracy": uar + 0.05,
            "params": 100, "seconds_per_epoch": 1.0,
            "settings": {"quick": quick, "epochs": epochs, "folds": folds},
            "data": {"synthetic": synthetic}}


@pytest.fixture
def results_file(tmp_path):
    records = [
        _record("das2019_model_b", "speaker", 0, 0.30),
        _record("das2019_model_b", "speaker", 1, 0.40),
        _record("das2019_model_b", "random", 0, 0.90),
        _record("das2019_model_b", "speaker", 0, 0.99, quick=True),           # smoke test: ignored
        _record("das2019_model_b", "speaker", 0, 0.11, epochs=3),             # shorter budget: ignored
        _record("das2019_model_c", "speaker", 0, 0.77, synthetic=True),       # only stand-in: kept
    ]
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"schema": 1, "records": records}))
    return path


def test_records_keep_full_real_runs_at_the_reports_budget(results_file):
    records = benchmark_records(path=results_file)
    b = records[records["model"] == "das2019_model_b"]
    assert sorted(b["uar"]) == [0.30, 0.40, 0.90]
    assert list(benchmark_records(["das2019_model_c"], path=results_file)["uar"]) == [0.77]


def test_learning_rate_overrides_stay_apart_from_report_settings(tmp_path):
    def at(rate, fold, uar):
        record = _record("ayadi_conv1d_lstm_speech", "speaker", fold, uar)
        if rate is not None:
            record["settings"]["learning_rate"] = rate
        return record

    path = tmp_path / "models.json"
    path.write_text(json.dumps({"schema": 1, "records": [at(None, 0, 0.17), at(None, 1, 0.17),
                                                         at(0.001, 0, 0.49), at(0.001, 1, 0.45),
                                                         at(0.003, 0, 0.30)]}))
    assert sorted(benchmark_records(path=path)["uar"]) == [0.17, 0.17]
    assert sorted(benchmark_records(path=path, learning_rate=0.001)["uar"]) == [0.45, 0.49]
    assert list(benchmark_records(path=path, learning_rate=0.003)["uar"]) == [0.30]
    assert benchmark_records(path=path, learning_rate=0.1).empty
    table = benchmark_table(path=path, learning_rate=0.001).set_index("protocol")
    assert table.loc["speaker", "uar"] == pytest.approx(0.47) and table.loc["speaker", "folds"] == 2
    # a results file with no override at all still answers both questions
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"schema": 1, "records": [at(None, 0, 0.2)]}))
    assert list(benchmark_records(path=plain)["uar"]) == [0.2]
    assert benchmark_records(path=plain, learning_rate=0.001).empty


def test_table_means_and_stds_per_model_and_protocol(results_file):
    table = benchmark_table(path=results_file).set_index(["model", "protocol"])
    row = table.loc[("das2019_model_b", "speaker")]
    assert row["uar"] == pytest.approx(0.35)
    assert row["uar_std"] == pytest.approx(pd.Series([0.3, 0.4]).std())
    assert row["folds"] == 2
    assert bool(table.loc[("das2019_model_c", "speaker"), "synthetic"])


def test_missing_files_give_empty_tables(tmp_path):
    assert benchmark_table(path=tmp_path / "none.json").empty
    assert recommended_results(tmp_path / "none.json") is None
    quick = tmp_path / "rec.json"
    quick.write_text(json.dumps({"settings": {"quick": True}, "folds": []}))
    assert recommended_results(quick) is None


def test_claims_vs_measured_lines_up_claim_run_and_benchmark(results_file):
    run = SimpleNamespace(metrics={"uar": 0.25, "accuracy": 0.5}, info={"data": {"synthetic": True}})
    claims = {"das2019_model_b": ("90 %", "random 80/20"), "das2019_model_d": ("80 %", "random")}
    table = ModelPage.claims_vs_measured(claims, {"das2019_model_b": run}, results_file)
    b = table.loc["das2019_model_b"]
    assert b["this page: UAR"] == "25.0% (stand-in)"
    assert b["benchmark: unseen speakers, UAR"].startswith("35.0% ± 7.1% (2 folds)")
    assert b["benchmark: report's random split, UAR"].startswith("90.0%")
    d = table.loc["das2019_model_d"]
    assert d["this page: UAR"] == "not run" and d["benchmark: unseen speakers, UAR"] == "not measured yet"


def test_one_label_only_spots_a_collapsed_fold():
    assert one_label_only([[0, 5, 0], [0, 7, 0], [0, 2, 0]])          # every clip called class 1
    assert not one_label_only([[4, 1, 0], [0, 7, 0], [0, 2, 0]])
    assert not one_label_only([[0, 0], [0, 0]]) and not one_label_only(None) and not one_label_only([])


def test_collapsed_folds_are_counted_and_shown(tmp_path):
    collapsed, fine = [[0, 3], [0, 3]], [[2, 1], [1, 2]]
    records = [{**_record("das2019_model_b", "speaker", f, 0.5), "confusion": m}
               for f, m in enumerate([collapsed, fine, collapsed])]
    records.append(_record("das2019_model_c", "speaker", 0, 0.6))        # no confusion matrix: not counted
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"schema": 1, "records": records}))
    table = benchmark_table(path=path).set_index("model")
    assert table.loc["das2019_model_b", "one_label_folds"] == 2
    assert table.loc["das2019_model_c", "one_label_folds"] == 0
    claims = {"das2019_model_b": ("90 %", "random"), "das2019_model_c": ("80 %", "random")}
    shown = ModelPage.claims_vs_measured(claims, {}, path)["benchmark: unseen speakers, UAR"]
    assert shown["das2019_model_b"].endswith("(3 folds); one label for every clip in 2 of them")
    assert "one label" not in shown["das2019_model_c"]


def test_page_fit_trains_into_a_temporary_folder_that_cleanup_removes(standin_dir, capsys):
    page = ModelPage(standin_dir)
    run = page.fit("das2019_model_b", quick=True, seed=0)
    out = capsys.readouterr().out
    assert "SYNTHETIC STAND-IN" in out and "UAR" in out
    assert run.dir.parent == page.run_root and (run.dir / "model.keras").is_file()
    page.show_entry("das2019_model_b")
    assert "Das 2019" in capsys.readouterr().out
    page.cleanup()
    assert not page.run_root.exists()


def test_recommended_cross_validation_joins_the_table_unless_the_benchmark_has_it(results_file):
    rec = {"model": "serlib_logmel_cnn_attn", "settings": {"quick": False, "epochs": 40, "seed": 0},
           "data": {"synthetic": False},
           "folds": [{"fold": i, "test_actors": [i + 1, i + 2], "uar": u, "accuracy": u, "params": 5,
                      "training_seconds": 80.0, "epochs": 40}
                     for i, u in enumerate((0.5, 0.6))]}
    (results_file.parent / "recommended.json").write_text(json.dumps(rec))
    table = benchmark_table(path=results_file).set_index(["model", "protocol"])
    row = table.loc[("serlib_logmel_cnn_attn", "speaker")]
    assert row["uar"] == pytest.approx(0.55) and row["seconds_per_epoch"] == pytest.approx(2.0)
    # its folds carry the per-fold columns chapter 11 shows for benchmark records
    folds = benchmark_records(["serlib_logmel_cnn_attn"], path=results_file)
    assert folds[["fold", "test_actors", "uar", "accuracy", "epochs_run"]].shape == (2, 5)
    assert list(folds["epochs_run"]) == [40, 40]
    assert "serlib_logmel_cnn_attn" not in set(
        benchmark_records(path=results_file, include_recommended=False)["model"])
    # one fold of the model rerun by the benchmark (for its curves) does not replace the
    # cross-validation; as many benchmark folds as recommended.json's take precedence
    data = json.loads(results_file.read_text())
    data["records"].append(_record("serlib_logmel_cnn_attn", "speaker", 0, 0.42))
    results_file.write_text(json.dumps(data))
    table = benchmark_table(path=results_file).set_index(["model", "protocol"])
    assert table.loc[("serlib_logmel_cnn_attn", "speaker"), "uar"] == pytest.approx(0.55)
    assert table.loc[("serlib_logmel_cnn_attn", "speaker"), "folds"] == 2
    data["records"].append(_record("serlib_logmel_cnn_attn", "speaker", 1, 0.44))
    results_file.write_text(json.dumps(data))
    table = benchmark_table(path=results_file).set_index(["model", "protocol"])
    assert table.loc[("serlib_logmel_cnn_attn", "speaker"), "uar"] == pytest.approx(0.43)


def test_runs_with_different_fold_counts_are_not_pooled(results_file):
    data = json.loads(results_file.read_text())
    # a 2-fold speaker run splits the actors differently: its folds must not join the 5-fold run's
    data["records"] += [_record("das2019_model_b", "speaker", 0, 0.90, folds=2),
                        _record("das2019_model_b", "speaker", 1, 0.90, folds=2),
                        # random repeats counted separately: a 2-repeat run is kept for its protocol
                        _record("das2019_model_c", "random", 0, 0.60, synthetic=True, folds=2)]
    results_file.write_text(json.dumps(data))
    table = benchmark_table(path=results_file).set_index(["model", "protocol"])
    assert table.loc[("das2019_model_b", "speaker"), "uar"] == pytest.approx(0.35)
    assert table.loc[("das2019_model_b", "speaker"), "folds"] == 2   # folds 0 and 1 of the 5-fold run
    assert table.loc[("das2019_model_c", "random"), "uar"] == pytest.approx(0.60)


def test_chapter_timings_lists_one_mode_in_reading_order(tmp_path):
    from serlib.results import chapter_timings

    assert chapter_timings(path=tmp_path / "absent.json").empty
    machine = {"cores": 2, "gpu": False}
    records = [{"chapter": "08_recurrent", "mode": "full", "ok": True, "error": None, "seconds": 2700.0,
                "machine": machine, "data": "RAVDESS", "created": "2026-12-03T21:00:00"},
               {"chapter": "06_cnn1d", "mode": "full", "ok": False, "error": "ValueError: x", "seconds": 90.0,
                "machine": machine, "data": "RAVDESS", "created": "2026-12-03T20:00:00"},
               {"chapter": "06_cnn1d", "mode": "quick", "ok": True, "error": None, "seconds": 60.0,
                "machine": machine, "data": "RAVDESS", "created": "2026-12-03T20:00:00"}]
    path = tmp_path / "chapters.json"
    path.write_text(json.dumps({"schema": 1, "records": records}))
    table = chapter_timings(path=path)
    assert list(table["chapter"]) == ["06_cnn1d", "08_recurrent"]
    assert list(table["minutes"]) == [1.5, 45.0]
    assert list(table["outcome"]) == ["failed: ValueError: x", "every cell ran"]
    assert list(chapter_timings("quick", path)["minutes"]) == [1.0]
