"""Reading the cross-corpus benchmark: RAVDESS-trained runs scored on EmoDB.

``benchmarks/cross_corpus.py`` scores each saved RAVDESS run on the Berlin EmoDB and writes
``benchmarks/results/cross_corpus.json`` (schema in that script). This module turns that file
into what a reader looks at:

* :func:`within_cross_table`: one row per emotion model, its UAR on unseen RAVDESS actors
  (within-corpus), on EmoDB's shared emotions (cross-corpus) and the drop;
* :func:`pooled_cross_confusion` and :func:`cross_recall`: which emotions transfer;
* :func:`plot_within_cross` and :func:`plot_cross_confusion`: the two figures;
* :func:`standardise_by`: z-scores within groups (a corpus, a speaker), the normalisation
  from unlabelled clips that the chapter measures;
* :func:`emodb_folder`: where a copy of EmoDB is, if any.

Explained in the chapter "Does it travel? RAVDESS to EmoDB".
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError
from .results import RESULTS_DIR

#: The cross-corpus results file (``benchmarks/cross_corpus.py``).
CROSS_CORPUS_FILE = RESULTS_DIR / "cross_corpus.json"
#: The travel experiments' results file (``benchmarks/travel.py``), when recorded.
TRAVEL_FILE = RESULTS_DIR / "travel.json"
#: The six emotions RAVDESS and EmoDB share, in serlib's order.
SHARED = ("neutral", "happy", "sad", "angry", "fearful", "disgust")
#: ``SERLIB_EMODB_DIR``: a folder of EmoDB clips; set it to a missing folder to hide EmoDB.
EMODB_VARIABLE = "SERLIB_EMODB_DIR"

__all__ = ["CROSS_CORPUS_FILE", "TRAVEL_FILE", "SHARED", "load_json", "within_cross_table",
           "pooled_cross_confusion", "cross_recall", "plot_within_cross", "plot_cross_confusion",
           "standardise_by", "emodb_folder"]


def load_json(path) -> dict | None:
    """The JSON object in ``path``, or None when the file does not exist.

    Raises :class:`~serlib.errors.DataError` (one line naming the file) when it is not a JSON
    object. Explained in the chapter "Does it travel? RAVDESS to EmoDB".
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not valid JSON ({error}); restore it from git or rerun its benchmark") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object; restore it from git or rerun its benchmark")
    return data


def _records(results: dict) -> dict:
    records = (results or {}).get("records")
    if not isinstance(records, dict):
        raise DataError("cross-corpus results: no 'records' object; rerun benchmarks/cross_corpus.py")
    return records


def within_cross_table(results: dict, *, recommended: str | None = None) -> pd.DataFrame:
    """One row per emotion model of the cross-corpus ``results`` (the dict of cross_corpus.json).

    Columns: ``model``, ``within UAR`` (unseen RAVDESS actors), ``cross UAR`` (EmoDB, shared
    emotions, arg-max over them), ``drop`` (within - cross), ``EmoDB clips`` (n), ``labels``
    (how many of the six shared emotions the model knows), ``unrestricted UAR`` (its own
    arg-max over every label) and ``called calm or surprised`` (share of EmoDB clips). Gender
    models are left out. The ``recommended`` model's row is marked in ``recommended``.
    Sorted by cross UAR, best first. Explained in the chapter "Does it travel? RAVDESS to EmoDB".
    """
    rows = []
    for name, record in _records(results).items():
        if record.get("task", "emotion") != "emotion":
            continue
        within = (record.get("within") or {}).get("uar")
        cross = record["cross"]
        unrestricted = record.get("unrestricted") or {}
        absent = sum((unrestricted.get("predicted_absent") or {}).values())
        rows.append({"model": name, "within UAR": within, "cross UAR": cross["uar"],
                     "drop": None if within is None else within - cross["uar"],
                     "EmoDB clips": int(cross["n"]), "labels": len(cross.get("labels") or []),
                     "unrestricted UAR": unrestricted.get("uar", cross["uar"]),
                     "called calm or surprised": absent / cross["n"] if cross["n"] else 0.0,
                     "recommended": name == recommended})
    columns = ["model", "within UAR", "cross UAR", "drop", "EmoDB clips", "labels", "unrestricted UAR",
               "called calm or surprised", "recommended"]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values("cross UAR", ascending=False, ignore_index=True)


def pooled_cross_confusion(results: dict, *, labels=SHARED) -> tuple[pd.DataFrame, list[str]]:
    """(counts, models): the EmoDB confusion matrices summed over every emotion model that
    knows all of ``labels``, rows true and columns predicted (arg-max over the shared labels).

    Models with fewer labels (a seven-emotion model without neutral) are not pooled, so each
    row sums the same models. Explained in the chapter "Does it travel? RAVDESS to EmoDB".
    """
    labels = list(labels)
    total = np.zeros((len(labels), len(labels)), dtype=np.int64)
    used = []
    for name, record in _records(results).items():
        cross = record.get("cross") or {}
        if record.get("task", "emotion") != "emotion" or list(cross.get("labels") or []) != labels:
            continue
        total += np.asarray(cross["confusion"], dtype=np.int64)
        used.append(name)
    return pd.DataFrame(total, index=labels, columns=labels), used


def cross_recall(results: dict) -> pd.DataFrame:
    """Recall of each shared emotion on EmoDB, one row per emotion model, one column per
    emotion (NaN where the model does not know it). Explained in the chapter "Does it
    travel? RAVDESS to EmoDB".
    """
    rows = {name: (record.get("cross") or {}).get("recall") or {}
            for name, record in _records(results).items() if record.get("task", "emotion") == "emotion"}
    table = pd.DataFrame.from_dict(rows, orient="index")
    return table.reindex(columns=[c for c in SHARED if c in table.columns])


def plot_within_cross(table: pd.DataFrame, ax=None, *, chance: float | None = 1 / len(SHARED)):
    """A dumbbell chart: each model's within-corpus and cross-corpus UAR joined by a line,
    with chance for six balanced classes dotted. Returns the axes. Explained in the chapter
    "Does it travel? RAVDESS to EmoDB".
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.35 * max(len(table), 3) + 1.2), constrained_layout=True)
    shown = table.sort_values(["within UAR", "cross UAR"], na_position="first", ignore_index=True)
    names = [f"{m} ★" if r else m for m, r in zip(shown["model"], shown["recommended"])]
    for y, (within, cross) in enumerate(zip(shown["within UAR"], shown["cross UAR"])):
        if pd.notna(within):        # a model without a within-corpus score gets its EmoDB dot only
            ax.plot([within, cross], [y, y], color="0.75", linewidth=2, zorder=1)
    positions = list(range(len(shown)))
    long = pd.DataFrame({"position": positions * 2, "UAR": list(shown["within UAR"]) + list(shown["cross UAR"]),
                         "scored on": ["RAVDESS, unseen actors"] * len(shown) + ["EmoDB, shared emotions"] * len(shown)})
    sns.scatterplot(data=long.dropna(subset=["UAR"]), x="UAR", y="position", hue="scored on", s=60, ax=ax, zorder=2,
                    palette=["tab:blue", "tab:red"], hue_order=["RAVDESS, unseen actors", "EmoDB, shared emotions"])
    ax.set_yticks(positions, names)
    ax.set_ylim(-0.7, len(shown) - 0.3)
    if chance is not None:
        ax.axvline(chance, color="0.4", linestyle=":", linewidth=1)
        ax.text(chance, 0.01, " chance", fontsize=8, color="0.4", va="bottom", transform=ax.get_xaxis_transform())
    ax.set(xlabel="UAR", ylabel="", xlim=(0, 1))
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_cross_confusion(counts: pd.DataFrame, ax=None, *, title: str | None = None):
    """A seaborn heatmap of ``counts`` normalised by row (the recall of each true emotion),
    annotated in percent. Returns the axes. Explained in the chapter "Does it travel?
    RAVDESS to EmoDB".
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4.2), constrained_layout=True)
    values = counts.to_numpy(dtype=float)
    share = values / np.clip(values.sum(axis=1, keepdims=True), 1, None)
    sns.heatmap(pd.DataFrame(100 * share, index=counts.index, columns=counts.columns), annot=True, fmt=".0f",
                cmap="Blues", vmin=0, vmax=100, cbar_kws={"label": "% of the true emotion's clips"}, ax=ax)
    ax.set(xlabel="predicted", ylabel="true (EmoDB)", title=title or "")
    return ax


def standardise_by(X, groups) -> np.ndarray:
    """``X`` (clips × features) with each group's rows z-scored by that group's own mean and
    standard deviation (a feature that does not vary within a group becomes 0).

    ``groups`` labels each row (a corpus, a speaker). It uses no emotion label, only the
    clips of the group, so on a test corpus it is *transductive*: it needs the target's
    unlabelled clips (all of a speaker's, or the corpus's) before it can classify one.
    Explained in the chapter "Does it travel? RAVDESS to EmoDB".
    """
    X = np.asarray(X, dtype=np.float64)
    groups = np.asarray(groups)
    if X.ndim != 2 or len(groups) != len(X):
        raise ValueError(f"expected X of shape (clips, features) and one group per clip; got {X.shape} "
                         f"and {len(groups)} groups")
    out = np.empty_like(X)
    for group in pd.unique(groups):
        rows = groups == group
        mean, std = X[rows].mean(axis=0), X[rows].std(axis=0)
        out[rows] = np.where(std > 0, (X[rows] - mean) / np.where(std > 0, std, 1.0), 0.0)
    return out


def _has_clips(folder: Path) -> bool:
    return any(p.suffix.lower() in (".wav", ".flac") for p in folder.rglob("*"))


def emodb_folder() -> tuple[Path | None, str]:
    """(folder, where): a copy of EmoDB, or (None, why none was found).

    Looked for in order: ``$SERLIB_EMODB_DIR`` (when set, and only there: naming a missing
    folder hides EmoDB, which is how the book checks its fallback), ``emodb/`` in the
    ``shared/data`` folder beside a development checkout, and ``$SERLIB_CACHE_DIR/emodb``
    (``serlib download --corpus emodb``). Explained in the chapter "Does it travel? RAVDESS
    to EmoDB".
    """
    from .config import cache_dir, shared_data_root

    named = os.environ.get(EMODB_VARIABLE)
    if named:
        folder = Path(named).expanduser()
        if folder.is_dir() and _has_clips(folder):
            return folder, f"${EMODB_VARIABLE}"
        return None, f"${EMODB_VARIABLE} names {folder}, which holds no EmoDB clips"
    shared = shared_data_root()
    candidates = ([(shared / "emodb", "shared/data/emodb")] if shared is not None else []) + \
        [(cache_dir() / "emodb", "serlib download --corpus emodb")]
    for folder, where in candidates:
        if folder.is_dir() and _has_clips(folder):
            return folder, where
    return None, "no EmoDB copy found (run `serlib download --corpus emodb`, or set $SERLIB_EMODB_DIR)"
