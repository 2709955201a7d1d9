"""Tests for serlib.metrics: accuracy, UAR, macro F1, confusion and fold summaries."""
import json

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score

from serlib.errors import SerlibError
from serlib.metrics import classification_report, format_mean_std, summarize_folds

LABELS = ["neutral", "happy", "sad"]


def test_report_by_hand():
    # neutral: 2 clips, 1 right; happy: 4 clips, 4 right; sad: 4 clips, 2 right
    y_true = ["neutral"] * 2 + ["happy"] * 4 + ["sad"] * 4
    y_pred = ["neutral", "sad", "happy", "happy", "happy", "happy", "sad", "sad", "happy", "neutral"]
    r = classification_report(y_true, y_pred, LABELS)
    assert r["n"] == 10
    assert r["labels"] == LABELS
    assert r["accuracy"] == pytest.approx(7 / 10)
    assert r["uar"] == pytest.approx((1 / 2 + 4 / 4 + 2 / 4) / 3)
    assert r["confusion"] == [[1, 0, 1], [0, 4, 0], [1, 1, 2]]
    assert all(type(v) is int for row in r["confusion"] for v in row)
    assert r["per_class"]["happy"]["recall"] == pytest.approx(1.0)
    assert r["per_class"]["happy"]["precision"] == pytest.approx(4 / 5)
    assert r["per_class"]["sad"]["support"] == 4
    json.dumps(r)  # plain Python types only


def test_uar_differs_from_accuracy_on_imbalance_and_matches_sklearn():
    rng = np.random.default_rng(0)
    y_true = rng.choice(3, size=300, p=[0.7, 0.2, 0.1])
    y_pred = np.where(rng.random(300) < 0.6, y_true, rng.integers(0, 3, 300))
    r = classification_report(y_true, y_pred, LABELS)
    assert r["uar"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert r["f1_macro"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    always_majority = classification_report(y_true, np.zeros(300, int), LABELS)
    assert always_majority["accuracy"] > 0.6
    assert always_majority["uar"] == pytest.approx(1 / 3)  # chance, whatever the balance


def test_inputs_as_indices_strings_onehot_and_probabilities():
    y_true = [0, 1, 2, 2]
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.6, 0.3], [0.0, 0.1, 0.9]])
    a = classification_report(y_true, probs, LABELS)
    b = classification_report(["neutral", "happy", "sad", "sad"], ["neutral", "happy", "happy", "sad"], LABELS)
    c = classification_report(np.eye(3)[y_true], [0, 1, 1, 2], LABELS)
    d = classification_report(np.array([0, 1, 2, 2], dtype=object), [0.0, 1.0, 1.0, 2.0], LABELS)
    for r in (b, c, d):
        assert r["confusion"] == a["confusion"]
        assert r["accuracy"] == a["accuracy"] == 0.75


def test_absent_class_ignored_by_uar_but_shown_in_confusion():
    r = classification_report(["happy", "happy", "sad"], ["happy", "sad", "sad"], LABELS)
    assert r["uar"] == pytest.approx((0.5 + 1.0) / 2)
    assert r["confusion"][0] == [0, 0, 0]
    assert r["per_class"]["neutral"]["recall"] is None
    assert r["per_class"]["neutral"]["support"] == 0


@pytest.mark.parametrize("y_true, y_pred, labels, message", [
    (["happy"], ["angry"], LABELS, "not among"),
    ([0, 5], [0, 1], LABELS, "outside 0..2"),
    ([0, 1], [0], LABELS, "pair up"),
    ([], [], LABELS, "no clips"),
    ([0], [0], [], "labels` is empty"),
    ([0], [0], ["a", "a"], "duplicates"),
    ([0], np.ones((1, 4)), LABELS, "4 columns"),
])
def test_bad_input_raises(y_true, y_pred, labels, message):
    with pytest.raises(SerlibError, match=message):
        classification_report(y_true, y_pred, labels)


def test_summarize_folds_mean_std_and_summed_confusion():
    folds = [
        classification_report([0, 1, 2, 2], [0, 1, 2, 2], LABELS),
        classification_report([0, 1, 2, 2], [0, 0, 2, 1], LABELS),
        classification_report([0, 1, 2, 2], [1, 1, 2, 2], LABELS),
    ]
    s = summarize_folds(folds)
    accs = [1.0, 0.5, 0.75]
    assert s["n_folds"] == 3 and s["n"] == 12
    assert s["accuracy"]["values"] == accs
    assert s["accuracy"]["mean"] == pytest.approx(np.mean(accs))
    assert s["accuracy"]["std"] == pytest.approx(np.std(accs, ddof=1))
    assert s["confusion"] == (np.sum([f["confusion"] for f in folds], axis=0)).tolist()
    assert s["labels"] == LABELS
    assert format_mean_std(s, "accuracy") == "75.0 ± 25.0 %"
    assert format_mean_std(s, "accuracy", percent=False, digits=2) == "0.75 ± 0.25"
    assert summarize_folds(folds[:1])["uar"]["std"] == 0.0


def test_summarize_folds_errors():
    with pytest.raises(SerlibError, match="no fold reports"):
        summarize_folds([])
    with pytest.raises(SerlibError, match="lacks 'uar'"):
        summarize_folds([{"accuracy": 0.5}])
    s = summarize_folds([{"accuracy": 0.5}], keys=["accuracy"])
    with pytest.raises(SerlibError, match="not in this summary"):
        format_mean_std(s, "uar")
