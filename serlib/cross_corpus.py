"""Scoring a run on another corpus: only the emotions both corpora share.

A model trained on RAVDESS knows eight emotions; EmoDB has seven, of which six are
RAVDESS's (neutral, happy, sad, angry, fearful, disgust) and one is its own (boredom).
Scored on EmoDB, such a model can only be judged on the six shared emotions (454 of the 535
clips; the boredom clips are left out), and it can still answer calm or surprised, labels
the target corpus does not have. serlib's rule:

* **restricted** (the headline numbers): the decision is the arg-max over the shared
  labels only — the probabilities of labels the target corpus lacks are set aside and the
  rest renormalised — as a user who knows the target's label set would decide. Accuracy,
  UAR and the confusion matrix are over the shared labels.
* **unrestricted** (reported beside it): the run's own arg-max over all its labels; a clip
  it calls calm or surprised counts as an error. The counts of such predictions are
  reported, so the cost of the foreign labels is visible.

**Transductive adaptation** (``serlib evaluate --adapt corpus|speaker``; never the default,
since it needs many clips of the target and cannot score one clip on its own): the parts of
a run that standardise their input with *training-set* statistics use those of the
unlabelled target clips instead (:func:`adapted_proba`): all of them (``corpus``) or each
speaker's own (``speaker``). That is the fused regression's standardisation of the clip
statistics, and the network's input normalisation where the run has one (the recommended
network normalises each clip by itself already, so it is unchanged). No target label is read.

Explained in the chapter "Does it travel? RAVDESS to EmoDB".
"""
from __future__ import annotations

import numpy as np

from .datasets.adapters import corpus_names, get_corpus
from .metrics import classification_report

__all__ = ["run_corpus", "target_labels", "shared_scores", "ADAPT", "adapt_groups", "adapted_proba"]

#: The modes of transductive adaptation (:func:`adapted_proba`).
ADAPT = ("corpus", "speaker")


def run_corpus(info: dict) -> str:
    """The corpus a run was trained on, from its ``run.json`` (``data.corpus``; runs that do
    not record it were trained on RAVDESS or its RAVDESS-shaped stand-in). Explained in the
    chapter "Does it travel? RAVDESS to EmoDB".
    """
    data = info.get("data") or {}
    return str(data.get("corpus") or "ravdess")


def target_labels(corpus: str, task: str) -> list[str] | None:
    """Every label the corpus ``corpus`` can have for ``task`` (its emotions), or None when
    unknown (a mixed index, or a task other than emotion). Explained in "Does it travel? RAVDESS to EmoDB".
    """
    if task != "emotion" or corpus not in corpus_names():
        return None
    return list(get_corpus(corpus).emotions)


def shared_scores(y: np.ndarray, proba: np.ndarray, labels: list[str], shared: list[str]) -> tuple[dict, dict]:
    """(restricted report, unrestricted summary) of clips whose true labels are all in ``shared``.

    ``y`` indexes ``labels`` (the run's labels); ``proba`` has one column per run label.
    The restricted report is :func:`serlib.metrics.classification_report` over ``shared``
    with the arg-max taken over those columns only, plus ``predicted`` (label per clip).
    The unrestricted summary holds accuracy, UAR and macro-F1 of the run's own arg-max, the
    confusion matrix with rows = shared labels and columns = all run labels,
    ``predicted_absent`` (clips called each label the target lacks) and ``predicted``.
    Explained in the chapter "Does it travel? RAVDESS to EmoDB".
    """
    columns = [labels.index(label) for label in shared]
    remap = {old: new for new, old in enumerate(columns)}
    y_shared = np.array([remap[int(v)] for v in y], dtype=np.int64)
    sub = np.asarray(proba, dtype=np.float64)[:, columns]
    sub = sub / np.clip(sub.sum(axis=1, keepdims=True), 1e-12, None)
    restricted = classification_report(y_shared, sub, shared)
    restricted["predicted"] = [shared[i] for i in np.argmax(sub, axis=1)]
    full = classification_report(y, proba, labels)
    absent = [label for label in labels if label not in shared]
    raw = np.argmax(proba, axis=1)
    unrestricted = {
        "rule": "arg-max over all of the run's labels",
        "accuracy": full["accuracy"], "uar": full["uar"], "f1_macro": full["f1_macro"], "n": full["n"],
        "rows": list(shared), "columns": list(labels),
        "confusion": [full["confusion"][labels.index(label)] for label in shared],
        "predicted_absent": {label: int(np.sum(raw == labels.index(label))) for label in absent},
        "predicted": [labels[i] for i in raw],
    }
    return restricted, unrestricted


def adapt_groups(df, mode: str) -> np.ndarray:
    """One group id per row of the clip index ``df`` for :func:`adapted_proba`: 0 for every
    clip (``mode="corpus"``), or the clip's speaker (``"speaker"``: the ``speaker`` column,
    else ``actor``). Explained in the chapter "Does it travel? RAVDESS to EmoDB".
    """
    from .errors import SerlibError

    if mode not in ADAPT:
        raise SerlibError(f"adapt {mode!r}: choose one of {', '.join(ADAPT)}")
    if mode == "corpus":
        return np.zeros(len(df), dtype=np.int64)
    column = "speaker" if "speaker" in df.columns and df["speaker"].notna().all() else "actor"
    _, groups = np.unique(df[column].astype(str).to_numpy(), return_inverse=True)
    return groups.astype(np.int64)


def _group_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and spread over every axis but the last (floored as in training)."""
    x = np.asarray(x, dtype=np.float64).reshape(-1, np.shape(x)[-1])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    return mean, np.where(scale < 1e-8, 1.0, scale)


def adapted_proba(run, X: np.ndarray, F, groups: np.ndarray) -> np.ndarray:
    """Class probabilities of ``run`` for features ``X`` (and functionals ``F`` of a fused run)
    with its standardisations re-estimated on each group of target clips (``groups``, from
    :func:`adapt_groups`) instead of taken from training: transductive, labels never read.

    The regression's ``mean``/``scale`` become the group's (over its clips and, for a
    regression that scores speed copies, their copies too, as training pooled them); a run
    with input normalisation (``run.normalization``) gets the group's per-feature statistics
    there. Everything else (the network's weights, the fusion, the prior) is the run's.
    Explained in the chapter "Does it travel? RAVDESS to EmoDB".
    """
    from . import fusion
    from .runs import normalization_stats, probabilities

    groups = np.asarray(groups)
    out = None
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        stats = normalization_stats(X[rows]) if run.normalization else None
        x = X[rows] if stats is None else ((np.asarray(X[rows], np.float32) - np.asarray(stats["mean"], np.float32))
                                           / np.asarray(stats["std"], np.float32))
        network = probabilities(run.model, x if stats is not None else run.prepare(x))
        if run.fusion is not None:
            mean, scale = _group_stats(F[rows])
            network = fusion.fuse({**run.fusion, "mean": mean, "scale": scale}, network, F[rows])
        if out is None:
            out = np.zeros((len(groups), network.shape[1]), dtype=np.float64)
        out[rows] = network
    return out
