"""serlib.results: per-clip predictions of the full runs and the errors models share (chapter 11)."""
import json
import math

import pytest

from serlib.results import CLIP_COLUMNS, SHARED_COLUMNS, clip_predictions, shared_errors

LABELS = ["neutral", "calm", "happy"]
CLIPS = ["Actor_06/a.flac", "Actor_06/b.flac", "Actor_09/c.flac"]


def _record(model, predicted, *, fold=0, quick=False, proba=True, protocol="speaker"):
    record = {"model": model, "protocol": protocol, "fold": fold, "uar": 0.5, "accuracy": 0.5, "params": 10,
              "seconds_per_epoch": 1.0, "settings": {"quick": quick, "epochs": None, "folds": 5},
              "data": {"synthetic": False, "path": "/data/ravdess"}}
    if predicted is not None:
        record["predictions"] = {"labels": LABELS, "clips": CLIPS, "true": ["neutral", "calm", "happy"],
                                 "predicted": predicted}
        if proba:
            record["predictions"]["proba"] = [[0.7 if label == p else 0.15 for label in LABELS] for p in predicted]
    return record


def _write(tmp_path, records):
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"schema": 1, "records": records}))
    return path


@pytest.fixture
def results_file(tmp_path):
    return _write(tmp_path, [
        _record("das2019_model_b", ["calm", "calm", "happy"]),                   # neutral heard as calm
        _record("das2019_model_c", ["calm", "neutral", "happy"], proba=False),  # two errors, no probabilities
        _record("das2019_model_d", ["calm", "calm", "neutral"]),
        _record("das2019_model_a", ["happy", "happy", "happy"], quick=True),    # smoke test: ignored
        _record("das2019_model_a", ["happy", "happy", "happy"], protocol="random"),  # random split: ignored
        _record("kalokyris_lstm", None),                                        # recorded before predictions
    ])


def test_clip_predictions_one_row_per_model_and_clip(results_file):
    clips = clip_predictions(path=results_file)
    assert list(clips.columns) == CLIP_COLUMNS
    assert sorted(clips["model"].unique()) == ["das2019_model_b", "das2019_model_c", "das2019_model_d"]
    assert len(clips) == 9
    b = clips[clips["model"] == "das2019_model_b"].set_index("clip")
    assert b.loc["Actor_06/a.flac", "predicted"] == "calm" and b.loc["Actor_06/a.flac", "true"] == "neutral"
    assert b.loc["Actor_06/a.flac", "confidence"] == pytest.approx(0.7)
    assert b.loc["Actor_06/a.flac", "data_path"] == "/data/ravdess"
    assert all(math.isnan(c) for c in clips.loc[clips["model"] == "das2019_model_c", "confidence"])
    assert list(clip_predictions(["das2019_model_d"], path=results_file)["model"].unique()) == ["das2019_model_d"]


def test_shared_errors_ranks_clips_by_how_many_models_erred(results_file):
    shared = shared_errors(path=results_file)
    assert list(shared.columns) == SHARED_COLUMNS
    first = shared.iloc[0]
    # every model heard Actor_06/a.flac (neutral) as calm
    assert (first["clip"], first["true"], first["models"], first["wrong"]) == ("Actor_06/a.flac", "neutral", 3, 3)
    assert first["heard as"] == "calm" and first["agreeing"] == 3 and first["share"] == pytest.approx(1.0)
    rest = shared.set_index("clip")
    assert rest.loc["Actor_06/b.flac", "wrong"] == 1 and rest.loc["Actor_06/b.flac", "heard as"] == "neutral"
    assert rest.loc["Actor_09/c.flac", "wrong"] == 1
    assert list(shared["share"]) == sorted(shared["share"], reverse=True)
    # a clip only one model classified does not count as shared
    assert shared_errors(["das2019_model_b"], path=results_file).empty
    assert len(shared_errors(["das2019_model_b"], path=results_file, min_models=1)) == 1


def test_no_predictions_give_empty_tables_with_their_columns(tmp_path):
    old = _write(tmp_path, [_record("das2019_model_b", None)])
    assert clip_predictions(path=old).empty and list(clip_predictions(path=old).columns) == CLIP_COLUMNS
    assert shared_errors(path=old).empty and list(shared_errors(path=old).columns) == SHARED_COLUMNS
    missing = tmp_path / "absent" / "models.json"
    assert clip_predictions(path=missing).empty and shared_errors(path=missing).empty
