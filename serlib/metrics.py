"""Scores for emotion classifiers: accuracy beside unweighted average recall (UAR).

RAVDESS has half as many neutral clips as clips of any other emotion, and a gender or
speaker subset can be more lopsided still, so accuracy alone flatters a model that
favours the big classes. UAR, the mean of the per-class recalls, gives every emotion
the same weight; chance level is ``1 / n_classes`` whatever the class balance. Both are
computed here with scikit-learn. Explained in the chapter "Evaluating honestly".
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import SerlibError

SCORES = ("accuracy", "uar", "f1_macro")


def _to_indices(values, labels: list[str], name: str) -> np.ndarray:
    """Class indices from label strings, integer indices, one-hot rows or probabilities."""
    array = np.asarray(values)
    if array.ndim == 2:
        if array.shape[1] != len(labels):
            raise SerlibError(f"{name}: {array.shape[1]} columns of scores for {len(labels)} labels; "
                              "pass one column per label, in the order of `labels`")
        return np.argmax(array, axis=1).astype(np.int64)
    if array.ndim != 1:
        raise SerlibError(f"{name}: expected a 1-D sequence of labels, got shape {array.shape}")
    if array.size == 0:
        return array.astype(np.int64)
    if array.dtype == object and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in array):
        array = array.astype(np.int64)
    if np.issubdtype(array.dtype, np.integer) or (np.issubdtype(array.dtype, np.floating)
                                                   and np.all(np.mod(array, 1) == 0)):
        idx = array.astype(np.int64)
        bad = sorted({int(v) for v in idx if v < 0 or v >= len(labels)})
        if bad:
            raise SerlibError(f"{name}: class index(es) {bad[:5]} are outside 0..{len(labels) - 1} "
                              f"for labels {labels}")
        return idx
    lookup = {label: i for i, label in enumerate(labels)}
    strings = [str(v) for v in array]
    unknown = sorted({s for s in strings if s not in lookup})
    if unknown:
        raise SerlibError(f"{name}: label(s) {unknown[:5]} are not among {labels}; "
                          "pass the full list of class names as `labels`")
    return np.array([lookup[s] for s in strings], dtype=np.int64)


def classification_report(y_true, y_pred, labels: Sequence) -> dict:
    """Accuracy, UAR, macro F1, per-class scores and the confusion matrix of a test run.

    ``labels`` is the list of class names in index order. ``y_true`` and ``y_pred`` may
    each be label strings, integer indices into ``labels``, or 2-D arrays of one-hot rows
    or class probabilities (the arg-max is taken), so ``model.predict(X)`` can be passed
    as it is.

    Returns a dict: ``accuracy``; ``uar`` (unweighted average recall: the mean recall
    over the labels that occur in ``y_true``, which is scikit-learn's balanced accuracy);
    ``f1_macro`` (mean F1 over the labels that occur in ``y_true`` or ``y_pred``, as
    scikit-learn's default); ``n`` (clips scored); ``labels``; ``confusion`` (list of
    lists of ints, rows = true class, columns = predicted class, in label order); and
    ``per_class`` (label -> precision, recall, f1, support). All numbers are plain
    Python floats and ints, ready for JSON. Explained in the chapter "Evaluating honestly".
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    labels = [str(label) for label in labels]
    if not labels:
        raise SerlibError("classification_report: `labels` is empty; pass the class names in index order")
    if len(set(labels)) != len(labels):
        raise SerlibError(f"classification_report: labels {labels} contain duplicates")
    true = _to_indices(y_true, labels, "y_true")
    pred = _to_indices(y_pred, labels, "y_pred")
    if len(true) != len(pred):
        raise SerlibError(f"classification_report: {len(true)} true labels but {len(pred)} predictions; "
                          "they must pair up one to one")
    if len(true) == 0:
        raise SerlibError("classification_report: no clips to score (empty y_true)")

    everything = list(range(len(labels)))
    in_true = sorted(set(true.tolist()))
    in_either = sorted(set(true.tolist()) | set(pred.tolist()))
    precision, recall, f1, support = precision_recall_fscore_support(
        true, pred, labels=everything, zero_division=0)
    uar = float(np.mean(recall[in_true]))
    f1_macro = float(f1_score(true, pred, labels=in_either, average="macro", zero_division=0))
    confusion = confusion_matrix(true, pred, labels=everything)
    per_class = {
        label: {"precision": float(precision[i]), "recall": float(recall[i]) if support[i] else None,
                "f1": float(f1[i]), "support": int(support[i])}
        for i, label in enumerate(labels)
    }
    return {
        "accuracy": float(accuracy_score(true, pred)),
        "uar": uar,
        "f1_macro": f1_macro,
        "n": int(len(true)),
        "labels": labels,
        "confusion": [[int(v) for v in row] for row in confusion],
        "per_class": per_class,
    }


def summarize_folds(reports: Sequence[dict], keys: Sequence[str] = SCORES) -> dict:
    """Mean and spread of scores over cross-validation folds.

    ``reports`` are :func:`classification_report` dicts (or any dicts holding ``keys``).
    Returns ``{key: {"mean", "std", "values"}}`` for each key, where ``std`` is the
    sample standard deviation over folds (``ddof=1``; 0.0 for a single fold), plus
    ``n_folds``, ``n`` (clips over all folds, when the reports carry it) and, when every
    report has a confusion matrix over the same labels, the summed ``confusion`` and its
    ``labels``. Explained in the chapter "Evaluating honestly".
    """
    reports = list(reports)
    if not reports:
        raise SerlibError("summarize_folds: no fold reports given")
    out: dict = {"n_folds": len(reports)}
    for key in keys:
        try:
            values = np.array([float(r[key]) for r in reports])
        except KeyError:
            raise SerlibError(f"summarize_folds: a fold report lacks {key!r}; "
                              "pass dicts from serlib.metrics.classification_report") from None
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        out[key] = {"mean": float(values.mean()), "std": std, "values": [float(v) for v in values]}
    if all("n" in r for r in reports):
        out["n"] = int(sum(int(r["n"]) for r in reports))
    if all("confusion" in r and "labels" in r for r in reports):
        first = list(reports[0]["labels"])
        if all(list(r["labels"]) == first for r in reports):
            total = np.sum([np.asarray(r["confusion"], dtype=np.int64) for r in reports], axis=0)
            out["confusion"] = [[int(v) for v in row] for row in total]
            out["labels"] = first
    return out


def format_mean_std(summary: dict, key: str = "uar", *, percent: bool = True, digits: int = 1) -> str:
    """``"54.3 ± 3.1 %"`` for one score of a :func:`summarize_folds` result.

    Explained in the chapter "Evaluating honestly".
    """
    if key not in summary or not isinstance(summary[key], dict):
        raise SerlibError(f"format_mean_std: {key!r} is not in this summary; "
                          f"choose one of {[k for k, v in summary.items() if isinstance(v, dict)]}")
    scale, unit = (100.0, " %") if percent else (1.0, "")
    entry = summary[key]
    return f"{entry['mean'] * scale:.{digits}f} ± {entry['std'] * scale:.{digits}f}{unit}"


__all__ = ["classification_report", "summarize_folds", "format_mean_std", "SCORES"]
