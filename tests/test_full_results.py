"""serlib.full_results: what the full runs measured, from small generated results files."""
import json

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import soundfile as sf

from serlib import full_results as fr

matplotlib.use("Agg")

LABELS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


def _confusion(fold):
    counts = np.full((8, 8), 1) + np.eye(8, dtype=int) * (20 + fold)
    counts[1, 0] += 5  # calm heard as neutral: the most frequent confusion
    counts[5, 7] += 3  # then fearful heard as surprised
    return counts.tolist()


def _record(model, protocol, fold, uar, *, quick=False, data_path="/nowhere", **extra):
    counts = _confusion(fold)
    return {"model": model, "protocol": protocol, "fold": fold, "n_folds": 5, "uar": uar, "accuracy": uar + 0.02,
            "n": int(np.sum(counts)), "labels": LABELS, "confusion": counts, "params": 10, "epochs_run": 10 + fold,
            "seconds_per_epoch": 1.0, "created": f"2026-01-0{fold + 1}T00:00:{int(quick)}{protocol[0]}",
            "settings": {"quick": quick, "epochs": None, "folds": 5, "seed": 0},
            "data": {"path": data_path, "synthetic": False}, **extra}


def _history(epochs=4):
    return {"loss": list(np.linspace(2, 1, epochs)), "accuracy": list(np.linspace(0.2, 0.5, epochs)),
            "val_loss": list(np.linspace(2.1, 1.5, epochs)), "val_accuracy": list(np.linspace(0.1, 0.3, epochs))}


def _predictions():
    one_hot = lambda i, p: [p if j == i else (1 - p) / 7 for j in range(8)]  # noqa: E731
    return {"labels": LABELS,
            "clips": ["Actor_06/a.wav", "Actor_06/b.wav", "Actor_09/missing.wav", "../outside.wav", "Actor_06/c.wav"],
            "true": ["calm", "calm", "calm", "calm", "sad"],
            "predicted": ["neutral", "neutral", "neutral", "neutral", "sad"],
            "proba": [one_hot(0, 0.6), one_hot(0, 0.9), one_hot(0, 0.8), one_hot(0, 0.95), one_hot(3, 0.9)]}


@pytest.fixture
def results(tmp_path, monkeypatch):
    data = tmp_path / "ravdess"
    (data / "Actor_06").mkdir(parents=True)
    for clip in ("a", "b", "c"):
        sf.write(data / "Actor_06" / f"{clip}.wav", 0.1 * np.sin(np.arange(8000) / 5.0), 16000)
    (tmp_path / "outside.wav").write_bytes((data / "Actor_06" / "a.wav").read_bytes())
    records = [_record("das2019_model_b", "speaker", f, u, data_path=str(data))
               for f, u in zip((3, 1, 2, 4), (0.40, 0.20, 0.30, 0.50))]
    records += [_record("das2019_model_b", "speaker", 0, 0.10, data_path=str(data),
                        history=_history(), predictions=_predictions()),
                _record("das2019_model_b", "speaker", 0, 0.99, quick=True),        # smoke test: ignored
                _record("das2019_model_b", "random", 0, 0.70), _record("das2019_model_b", "random", 1, 0.80)]
    records += [_record("das2019_model_c", "speaker", f, 0.25) for f in range(5)]   # nothing recorded per epoch
    records += [_record("serlib_logmel_cnn_attn", "speaker", 0, 0.5, history=_history(6))]
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"schema": 1, "records": records}))
    folds = [{"fold": f, "uar": 0.6 + f / 100, "accuracy": 0.62, "n": 240, "labels": LABELS,
              "confusion": _confusion(f), "epochs": 120, "training_seconds": 10.0} for f in range(5)]
    (tmp_path / "recommended.json").write_text(json.dumps({
        "model": "serlib_logmel_cnn_attn", "settings": {"epochs": 120, "quick": False, "seed": 0},
        "data": {"path": str(data)}, "folds": folds}))
    monkeypatch.delenv("SERLIB_DATA_DIR", raising=False)
    monkeypatch.setattr(fr, "_SHARED_DATA", tmp_path / "no-shared-data")
    yield path
    plt.close("all")


def _texts(axes):
    return [t.get_text() for ax in axes for t in ax.texts] + [ax.get_title() for ax in axes]


def test_full_runs_are_the_full_speaker_folds_sorted(results):
    runs = fr.full_runs("das2019_model_b", results)
    assert [r["fold"] for r in runs] == [0, 1, 2, 3, 4]
    assert [r["uar"] for r in runs] == [0.10, 0.20, 0.30, 0.40, 0.50]  # the quick 0.99 and random runs left out
    assert "history" in runs[0] and "history" not in runs[1]
    assert fr.full_runs("kalokyris_lstm", results) == []
    assert fr.full_runs("das2019_model_b", results.parent / "absent.json") == []


def test_summary_of_a_model_with_and_without_per_epoch_records(results):
    info = fr.summary("das2019_model_b", results)
    assert info["uar"] == pytest.approx(0.30) and info["uar_std"] == pytest.approx(np.std([.1, .2, .3, .4, .5], ddof=1))
    assert info["accuracy"] == pytest.approx(0.32)
    assert (info["folds"], info["labels"], info["epochs_run"]) == (5, LABELS, 12.0)
    assert info["n_clips"] == sum(np.sum(_confusion(f)) for f in range(5))
    assert info["random_uar"] == pytest.approx(0.75)
    assert info["has_history"] and info["has_predictions"]
    other = fr.summary("das2019_model_c", results)
    assert other["random_uar"] is None and not other["has_history"] and not other["has_predictions"]
    none = fr.summary("kalokyris_lstm", results)
    assert none["folds"] == 0 and none["uar"] is None and none["labels"] == LABELS  # the registry's labels


def test_recommended_model_reads_its_folds_and_the_rerun_history(results):
    runs = fr.full_runs("recommended", results)  # the alias works too
    assert [r["uar"] for r in runs] == pytest.approx([0.60, 0.61, 0.62, 0.63, 0.64])
    assert "history" in runs[0] and all("history" not in r for r in runs[1:])
    assert fr.summary("serlib_logmel_cnn_attn", results)["epochs_run"] == 120


def test_pooled_confusion_sums_the_folds(results):
    counts, labels = fr.pooled_confusion("das2019_model_b", results)
    assert labels == LABELS
    np.testing.assert_array_equal(counts, np.sum([_confusion(f) for f in range(5)], axis=0))
    empty, _ = fr.pooled_confusion("kalokyris_lstm", results)
    assert empty.shape == (0, 0)


def test_confusion_heatmap_is_row_normalised_with_counts(results):
    ax = fr.plot_full_confusion("das2019_model_b", path=results)
    counts, _ = fr.pooled_confusion("das2019_model_b", results)
    assert f"5 unseen-speaker folds pooled (n = {counts.sum():,})" in ax.get_title()
    texts = [t.get_text() for t in ax.texts]
    assert str(counts[1, 0]) in texts and len(texts) == 64
    colours = ax.collections[0].get_array().reshape(8, 8)
    np.testing.assert_allclose(colours.sum(axis=1), 1.0)
    empty = fr.plot_full_confusion("kalokyris_lstm", path=results)
    assert "no full runs recorded" in " ".join(t.get_text().replace("\n", " ") for t in empty.texts)


def test_history_plots_recorded_curves_or_says_they_are_missing(results):
    axes = fr.plot_full_history("das2019_model_b", path=results)
    assert [len(ax.lines) for ax in axes] == [2, 2]  # training and validation of the one fold recorded
    np.testing.assert_allclose(axes[0].lines[0].get_ydata(), _history()["loss"])
    missing = fr.plot_full_history("das2019_model_c", path=results)
    assert all(not ax.lines for ax in missing)
    assert [t.replace("\n", " ") for t in _texts(missing)[:1]] == [f"das2019_model_c: {fr.NO_HISTORY}"]
    assert len(missing) == 1  # one panel for the message


def test_show_full_results_prints_one_line_and_glues(results, capsys, monkeypatch):
    import serlib.book

    glued = {}
    monkeypatch.setattr(serlib.book, "glue", lambda name, value, fmt=None: glued.update({name: value}))
    fr.show_full_results("das2019_model_b", path=results)
    line = capsys.readouterr().out.strip()
    assert "\n" not in line
    assert line.startswith("Full runs, 5 unseen-speaker folds: UAR 30.0 % ± 15.8, accuracy 32.0 % ± 15.8")
    assert "chance 12.5 %" in line
    assert glued == {"full_das2019_model_b_uar": "30.0 % ± 15.8", "full_das2019_model_b_acc": "32.0 % ± 15.8"}
    assert len(plt.gcf().axes) == 3
    fr.show_full_results("das2019_model_c", glue=False, path=results)  # no history: still one figure, no error
    fr.show_full_results("kalokyris_lstm", glue=False, path=results)
    assert "none recorded" in capsys.readouterr().out


def test_confused_clips_most_confident_first_with_paths(results):
    data = results.parent / "ravdess"
    table = fr.confused_clips("das2019_model_b", n=None, path=results)
    assert list(table.columns) == ["clip", "path", "true", "predicted", "confidence", "fold"]
    assert list(table["clip"]) == ["../outside.wav", "Actor_06/b.wav", "Actor_09/missing.wav", "Actor_06/a.wav"]
    assert table["confidence"].tolist() == pytest.approx([0.95, 0.9, 0.8, 0.6])
    paths = dict(zip(table["clip"], table["path"]))
    assert paths["Actor_06/b.wav"] == str(data / "Actor_06" / "b.wav")
    assert paths["Actor_09/missing.wav"] is None and paths["../outside.wav"] is None  # never outside the folder
    assert set(table["fold"]) == {1}
    assert len(fr.confused_clips("das2019_model_b", true="calm", predicted="neutral", path=results)) == 3
    assert fr.confused_clips("das2019_model_b", true="sad", path=results).empty
    assert fr.confused_clips("das2019_model_c", path=results).empty


def test_confused_clips_look_in_the_folder_given(results, tmp_path):
    other = tmp_path / "copy"
    (other / "Actor_09").mkdir(parents=True)
    sf.write(other / "Actor_09" / "missing.wav", np.zeros(1600), 16000)
    table = fr.confused_clips("das2019_model_b", n=None, data=other, path=results)
    assert dict(zip(table["clip"], table["path"]))["Actor_09/missing.wav"] == str(other / "Actor_09" / "missing.wav")


def test_listen_confused_plays_found_clips_and_never_raises(results, capsys, monkeypatch):
    shown = []
    monkeypatch.setattr(fr, "_display", shown.append)
    fr.listen_confused("das2019_model_b", n=3, path=results)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("calm heard as neutral (p = 0.95")
    assert any("not on this machine" in line for line in out)
    assert len(shown) == 1 and shown[0].__class__.__name__ == "Audio"  # b.wav; outside.wav refused, missing absent
    fr.listen_confused("das2019_model_b", pairs=[("happy", "sad")], path=results)
    assert "no such error" in capsys.readouterr().out
    fr.listen_confused("das2019_model_c", path=results)
    assert capsys.readouterr().out.strip() == f"das2019_model_c: {fr.NO_PREDICTIONS}"
    (results.parent / "ravdess" / "Actor_06" / "b.wav").write_bytes(b"not audio")
    fr.listen_confused("das2019_model_b", pairs=[("calm", "neutral")], n=2, path=results)
    assert "cannot play it" in capsys.readouterr().out


def test_a_damaged_results_file_is_one_line(tmp_path):
    path = tmp_path / "models.json"
    path.write_text('{"records": [')
    with pytest.raises(fr.DataError, match="not a benchmark results file") as info:
        fr.full_runs("das2019_model_b", path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
