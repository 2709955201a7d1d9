"""serlib.cross_corpus_results: the cross-corpus results file read into tables and figures."""
import json

import matplotlib
import numpy as np
import pytest

from serlib.cross_corpus_results import (SHARED, cross_recall, emodb_folder, load_json, plot_cross_confusion,
                                         plot_within_cross, pooled_cross_confusion, standardise_by,
                                         within_cross_table)
from serlib.errors import DataError

matplotlib.use("Agg")


def _record(within, confusion, labels=SHARED, task="emotion", absent=None):
    confusion = np.asarray(confusion)
    n = int(confusion.sum())
    recall = confusion.diagonal() / confusion.sum(axis=1)
    return {"task": task, "within": {"uar": within},
            "cross": {"uar": float(recall.mean()), "n": n, "labels": list(labels), "confusion": confusion.tolist(),
                      "recall": dict(zip(labels, recall.tolist()))},
            "unrestricted": {"uar": float(recall.mean()) - 0.01, "predicted_absent": absent or {}}}


@pytest.fixture
def results():
    good = np.eye(6, dtype=int) * 8 + 1            # 9 right, 1 each wrong: recall 9/14
    poor = np.ones((6, 6), dtype=int)               # chance
    poor[:, 3] += 5                                 # everything drawn to angry
    five = np.eye(5, dtype=int) * 3 + 1
    return {"records": {
        "good": _record(0.7, good, absent={"calm": 10, "surprised": 2}),
        "poor": _record(0.4, poor),
        "five": _record(0.5, five, labels=SHARED[1:]),
        "gender": {"task": "gender", "within": {"uar": 0.9}, "cross": {"uar": 0.5, "n": 535, "labels": ["f", "m"],
                                                                        "confusion": [[1, 0], [0, 1]]}},
    }}


def test_table_rows_drop_and_order(results):
    table = within_cross_table(results, recommended="good")
    assert list(table["model"]) == ["good", "five", "poor"]          # gender left out, best cross first
    row = table.set_index("model").loc["good"]
    assert row["drop"] == pytest.approx(0.7 - 9 / 14)
    assert row["EmoDB clips"] == 84 and row["labels"] == 6 and bool(row["recommended"])
    assert row["called calm or surprised"] == pytest.approx(12 / 84)
    assert table.set_index("model").loc["poor", "cross UAR"] < 0.2
    assert not table.set_index("model").loc["poor", "recommended"]


def test_pooled_confusion_only_full_label_sets(results):
    counts, used = pooled_cross_confusion(results)
    assert used == ["good", "poor"]
    assert counts.loc["sad", "angry"] == 1 + 6
    assert counts.loc["angry", "angry"] == 9 + 6
    assert int(counts.to_numpy().sum()) == 84 + 66


def test_recall_table_has_nan_for_unknown_labels(results):
    recall = cross_recall(results)
    assert list(recall.columns) == list(SHARED)
    assert np.isnan(recall.loc["five", "neutral"])
    assert recall.loc["good", "sad"] == pytest.approx(9 / 14)
    assert "gender" not in recall.index


def test_plots_draw(results):
    import matplotlib.pyplot as plt

    counts, _ = pooled_cross_confusion(results)
    results["records"]["unknown within"] = _record(None, np.eye(6, dtype=int) * 2 + 1)
    ax = plot_within_cross(within_cross_table(results, recommended="good"))
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["unknown within", "poor", "five", "good ★"]        # no within score first, then by it
    dumbbells = [line for line in ax.lines if len(line.get_xdata()) == 2 and line.get_ydata()[0] == line.get_ydata()[1]]
    assert len(dumbbells) == 3                                               # none for the model without within
    assert sum(len(c.get_offsets()) for c in ax.collections) == 3 * 2 + 1  # the model without within: one dot
    ax = plot_cross_confusion(counts)
    assert [t.get_text() for t in ax.texts][:2] == ["40", "8"]     # neutral pooled: 10 and 2 of 25, in percent
    plt.close("all")


def test_standardise_by_groups():
    X = np.array([[1.0, 5.0], [3.0, 5.0], [10.0, 0.0], [30.0, 2.0]])
    Z = standardise_by(X, ["a", "a", "b", "b"])
    np.testing.assert_allclose(Z, [[-1, 0], [1, 0], [-1, -1], [1, 1]])
    with pytest.raises(ValueError, match="one group per clip"):
        standardise_by(X, ["a"])


def test_load_json(tmp_path):
    assert load_json(tmp_path / "missing.json") is None
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="bad.json: not valid JSON"):
        load_json(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(DataError, match="expected a JSON object"):
        load_json(bad)
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"records": {}}))
    assert load_json(good) == {"records": {}}


def test_emodb_folder_from_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("SERLIB_EMODB_DIR", str(tmp_path / "nowhere"))
    folder, why = emodb_folder()
    assert folder is None and "nowhere" in why
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("SERLIB_EMODB_DIR", str(empty))
    assert emodb_folder()[0] is None
    (empty / "03a01Fa.wav").write_bytes(b"")
    assert emodb_folder() == (empty, "$SERLIB_EMODB_DIR")
