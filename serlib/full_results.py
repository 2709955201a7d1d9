"""What the full runs measured, for each model's chapter, in any build of the book (quick or full).

From the committed benchmark (``benchmarks/results/models.json``, :mod:`serlib.results`): a
model's speaker-independent 5-fold runs at its report's settings, as numbers
(:func:`summary`), the pooled confusion matrix, the learning curves, and the clips it got
wrong, to listen to. Curves and per-clip predictions exist only for folds rerun with them
(``benchmarks/models.py --refresh``); until then each function says so in one line.
Explained in the chapter "The comparison".
"""
from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from .errors import DataError
from .results import MODELS_FILE, RECOMMENDED_FILE, benchmark_records, recommended_results

NO_HISTORY = "learning curves not recorded yet (benchmarks/models.py --refresh)"
NO_PREDICTIONS = "per-clip predictions not recorded yet (benchmarks/models.py --refresh)"
_SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ravdess"


def _entry(name: str):
    try:
        from .models import get_model

        return get_model(name)
    except Exception:  # not registered (e.g. a results file of another version)
        return None


def _canonical(name: str) -> str:
    entry = _entry(name)
    return entry.name if entry is not None else name


def _raw(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    try:
        records = json.loads(path.read_text()).get("records", [])
    except (ValueError, AttributeError) as error:
        raise DataError(f"{path}: not a benchmark results file ({type(error).__name__}); "
                        "restore it from git (git checkout -- benchmarks/results)") from None
    return [r for r in records if isinstance(r, dict)]


def _key(model, protocol, fold, created) -> tuple:
    created = "" if created is None or (isinstance(created, float) and np.isnan(created)) else str(created)
    return model, protocol, int(fold), created


def full_runs(name: str, path=None) -> list[dict]:
    """The full speaker-independent records of ``name``, one per fold, sorted by fold.

    The records :func:`serlib.results.benchmark_records` keeps (no ``--quick`` runs, the
    report's settings, the 5-fold layout), as the plain dicts of ``models.json``. For the
    recommended model (``serlib_logmel_cnn_attn``) the folds of ``recommended.json``, with
    ``history`` and ``predictions`` taken from its ``models.json`` record of the same fold
    when there is one. Empty when nothing was recorded. Explained in the chapter "The comparison".
    """
    name = _canonical(name)
    path = Path(path) if path is not None else MODELS_FILE
    raw = _raw(path)
    recommended = recommended_results(path.parent / RECOMMENDED_FILE.name)
    if recommended and recommended.get("model") == name and recommended.get("folds"):
        extra = {}  # the models.json rerun's curves and predictions, by fold
        for r in raw:
            if r.get("model") == name and r.get("protocol") == "speaker" and not r.get("settings", {}).get("quick"):
                extra.setdefault(r.get("fold"), {}).update({k: r[k] for k in ("history", "predictions") if k in r})
        epochs = recommended.get("settings", {}).get("epochs")
        runs = [{**fold, "model": name, "protocol": "speaker", "n_folds": len(recommended["folds"]),
                 "epochs_run": fold.get("epochs") or epochs, "data": recommended.get("data", {}),
                 "source": "recommended.json", **extra.get(fold.get("fold"), {})} for fold in recommended["folds"]]
        return sorted(runs, key=lambda r: r.get("fold", 0))
    table = benchmark_records([name], path, include_recommended=False)
    if table.empty:
        return []
    table = table[table["protocol"] == "speaker"]
    created = table["created"] if "created" in table else [None] * len(table)
    wanted = {_key(*row) for row in zip(table["model"], table["protocol"], table["fold"], created)}
    return sorted((r for r in raw if _key(r.get("model"), r.get("protocol"), r.get("fold", -1), r.get("created"))
                   in wanted), key=lambda r: r.get("fold", 0))


def _labels(name: str, runs) -> list:
    recorded = [run["labels"] for run in runs if run.get("labels")]
    entry = _entry(name)
    return list(recorded[0]) if recorded else list(entry.labels) if entry is not None else []


def summary(name: str, path=None) -> dict:
    """Mean and spread over the full runs' folds, and what else was recorded.

    Keys: ``uar``, ``uar_std``, ``accuracy``, ``accuracy_std`` (fractions; std over folds,
    ddof 1; ``None`` without runs), ``folds``, ``n_clips`` (test clips over all folds),
    ``labels``, ``epochs_run`` (mean), ``random_uar`` (mean UAR of the report's random
    split, or ``None``), ``has_history``, ``has_predictions``. Explained in the chapter
    "The comparison".
    """
    name = _canonical(name)
    runs = full_runs(name, path)

    def stats(key):
        values = np.array([float(r[key]) for r in runs if r.get(key) is not None])
        if not len(values):
            return None, None
        return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else None

    uar, uar_std = stats("uar")
    accuracy, accuracy_std = stats("accuracy")
    epochs = [float(r["epochs_run"]) for r in runs if r.get("epochs_run") is not None]
    random = benchmark_records([name], path, include_recommended=False)
    random = random[random["protocol"] == "random"] if not random.empty else random
    return {"uar": uar, "uar_std": uar_std, "accuracy": accuracy, "accuracy_std": accuracy_std,
            "folds": len(runs), "n_clips": int(sum(int(r.get("n") or 0) for r in runs)),
            "labels": _labels(name, runs), "epochs_run": float(np.mean(epochs)) if epochs else None,
            "random_uar": float(random["uar"].mean()) if len(random) else None,
            "has_history": any(isinstance(r.get("history"), dict) and r["history"].get("loss") for r in runs),
            "has_predictions": any(isinstance(r.get("predictions"), dict) and r["predictions"].get("clips")
                                   for r in runs)}


def pooled_confusion(name: str, path=None) -> tuple[np.ndarray, list]:
    """Confusion counts (true class by row) summed over the full runs' folds, and the labels.

    A ``0 × 0`` array when nothing was recorded. Explained in the chapter "The comparison".
    """
    runs = [r for r in full_runs(name, path) if r.get("confusion")]
    labels = _labels(_canonical(name), runs)
    if not runs:
        return np.zeros((0, 0), dtype=int), labels
    return np.sum([np.asarray(r["confusion"], dtype=int) for r in runs], axis=0), labels


def _message(ax, text: str):
    import textwrap

    ax.set_axis_off()
    ax.text(0.5, 0.5, textwrap.fill(text, 60), ha="center", va="center", transform=ax.transAxes, fontsize=9,
            color="#444444")


def plot_full_confusion(name: str, ax=None, path=None):
    """The pooled confusion matrix as a seaborn heatmap: colour = share of the row, text = clips.

    Rows are true classes, columns predictions; the diagonal's colour is each class's recall.
    Returns the Axes. Explained in the chapter "The comparison".
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    name = _canonical(name)
    counts, labels = pooled_confusion(name, path)
    if ax is None:
        _, ax = plt.subplots(figsize=(0.55 * max(len(labels), 4) + 2.2, 0.5 * max(len(labels), 4) + 1.6),
                             constrained_layout=True)
    if counts.size == 0:
        _message(ax, f"{name}: no full runs recorded")
        return ax
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    sns.heatmap(pd.DataFrame(share, index=labels, columns=labels), annot=counts, fmt="d", cmap="Blues",
                vmin=0, vmax=1, cbar=False, square=True, linewidths=0.5, linecolor="white",
                annot_kws={"fontsize": 8}, ax=ax)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    ax.tick_params(axis="x", rotation=45)
    ax.tick_params(axis="y", rotation=0)
    folds = sum(1 for r in full_runs(name, path) if r.get("confusion"))
    ax.set_title(f"{name}:\n{folds} unseen-speaker folds pooled (n = {int(counts.sum()):,})", fontsize=9)
    return ax


def _with_history(name: str, path) -> list[dict]:
    return [r for r in full_runs(name, path) if isinstance(r.get("history"), dict) and r["history"].get("loss")]


def plot_full_history(name: str, axes=None, path=None):
    """The full runs' learning curves: loss and accuracy per epoch, training and validation.

    One pair of lines per fold that recorded its history (``benchmarks/models.py
    --refresh``); when only one fold is shown, a dotted line marks its best epoch (of the
    metric the run monitored). Without any history the first Axes says so in one line and
    the others stay blank. ``axes`` is a pair of Axes (loss, accuracy), or one Axes, or
    ``None`` for a new figure (a single panel when there is nothing to show). Returns the
    list of Axes. Explained in the chapter "The comparison".
    """
    import matplotlib.pyplot as plt

    name = _canonical(name)
    runs = _with_history(name, path)
    if axes is None:
        _, axes = plt.subplots(1, 2 if runs else 1, figsize=(9, 3.2), constrained_layout=True, squeeze=False)
    axes = list(np.ravel(axes))
    if not runs:
        _message(axes[0], f"{name}: {NO_HISTORY}")
        for ax in axes[1:]:
            ax.set_axis_off()
        return axes
    for ax, metric, label in zip(axes, ("loss", "accuracy"), ("Loss", "Accuracy")):
        for i, run in enumerate(runs):
            history = run["history"]
            fold = f" (fold {int(run.get('fold', 0)) + 1})" if len(runs) > 1 else ""
            for key, colour, text in ((metric, "C0", "training"), (f"val_{metric}", "C1", "validation")):
                values = history.get(key)
                if values:
                    ax.plot(np.arange(1, len(values) + 1), values, color=colour, alpha=0.85 if len(runs) == 1 else 0.6,
                            linestyle=("-", "--", ":", "-.")[i % 4], label=f"{text}{fold}")
        best = runs[0].get("best_epoch")
        if len(runs) == 1 and best:
            ax.axvline(best, color="grey", linestyle=":", linewidth=1, label=f"best epoch ({best})")
        ax.set_xlabel("Epoch")
        ax.set_ylabel(label)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=7)
    if len(runs) == 1:
        run = runs[0]
        actors = run.get("test_actors")
        unseen = f", actors {', '.join(str(a) for a in actors)} unseen" if actors else ""
        heading = f"{name}: full run, fold {int(run.get('fold', 0)) + 1} of {run.get('n_folds', '?')}{unseen}"
    else:
        heading = f"{name}: full runs, {len(runs)} unseen-speaker folds"
    axes[0].set_title(heading, fontsize=9, loc="left")
    return axes


def _percent(mean, std) -> str:
    if mean is None:
        return "not recorded"
    return f"{100 * mean:.1f} %" + (f" ± {100 * std:.1f}" if std is not None else "")


def show_full_results(name: str, *, glue: bool = True, path=None) -> None:
    """One line of numbers and one figure (learning curves, pooled confusion) for ``name``.

    Prints ``Full runs, 5 unseen-speaker folds: UAR 41.2 % ± 3.1, accuracy ...; chance
    12.5 %``, then shows the learning curves (:func:`plot_full_history`) beside the pooled
    confusion heatmap (:func:`plot_full_confusion`). With ``glue`` it stores
    ``full_<name>_uar`` and ``full_<name>_acc`` (e.g. ``"41.2 % ± 3.1"``) for the prose
    (:func:`serlib.book.glue`). Explained in the chapter "The comparison".
    """
    import matplotlib.pyplot as plt

    name = _canonical(name)
    info = summary(name, path)
    uar, acc = _percent(info["uar"], info["uar_std"]), _percent(info["accuracy"], info["accuracy_std"])
    if info["folds"]:
        chance = f"; chance {100 / len(info['labels']):.1f} %" if info["labels"] else ""
        random = (f"; the report's random split: UAR {100 * info['random_uar']:.1f} %"
                  if info["random_uar"] is not None else "")
        print(f"Full runs, {info['folds']} unseen-speaker folds: UAR {uar}, accuracy {acc}{chance}{random}")
    else:
        print(f"Full runs: none recorded for {name} yet (benchmarks/models.py --models {name})")
    if glue:
        from .book import glue as _glue

        _glue(f"full_{name}_uar", uar)
        _glue(f"full_{name}_acc", acc)
    fig = plt.figure(figsize=(12, 3.9), constrained_layout=True)
    grid = fig.add_gridspec(1, 3, width_ratios=(1, 1, 1.15))
    history_axes = ([fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])] if info["has_history"]
                    else [fig.add_subplot(grid[0, :2])])
    plot_full_history(name, history_axes, path)
    plot_full_confusion(name, fig.add_subplot(grid[0, 2]), path)
    _show(fig)


def _show(fig) -> None:
    """Display ``fig`` now, once, in a notebook (and close it); elsewhere leave it open for ``plt.show()``."""
    from IPython import get_ipython

    if getattr(get_ipython(), "kernel", None) is not None:
        import matplotlib.pyplot as plt

        _display(fig)
        plt.close(fig)


def _resolve(clip: str, record: dict, data) -> str | None:
    """The audio file of a recorded clip path, or ``None``; paths leaving the data folder are refused."""
    relative = PurePosixPath(str(clip))
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        return None
    roots = [data, os.environ.get("SERLIB_DATA_DIR"), (record.get("data") or {}).get("path"), _SHARED_DATA]
    for root in roots:
        if root:
            candidate = Path(root) / Path(*relative.parts)
            if candidate.is_file():
                return str(candidate)
    return None


def confused_clips(name: str, *, true=None, predicted=None, n: int | None = 3, data=None, path=None) -> pd.DataFrame:
    """The recorded test clips that the full runs got wrong, most confident errors first.

    Columns: ``clip`` (as recorded, relative to the data folder), ``path`` (the audio file
    found under ``data``, ``$SERLIB_DATA_DIR``, the record's data folder or
    ``../shared/data/ravdess``; ``None`` when not on this machine), ``true``,
    ``predicted``, ``confidence`` (the probability given to the wrong class), ``fold``
    (1-based). ``true`` and ``predicted`` keep only those labels; ``n`` rows at most
    (``None``: all). Empty when no predictions were recorded. Explained in the chapter "The comparison".
    """
    columns = ["clip", "path", "true", "predicted", "confidence", "fold"]
    rows = []
    for run in full_runs(name, path):
        pred = run.get("predictions")
        if not isinstance(pred, dict):
            continue
        labels = list(pred.get("labels") or run.get("labels") or [])
        proba = pred.get("proba") or []
        for i, (clip, t, p) in enumerate(zip(pred.get("clips", []), pred.get("true", []), pred.get("predicted", []))):
            if t == p or (true is not None and t != true) or (predicted is not None and p != predicted):
                continue
            confidence = float(proba[i][labels.index(p)]) if i < len(proba) and p in labels else float("nan")
            rows.append({"clip": clip, "path": None, "true": t, "predicted": p, "confidence": confidence,
                         "fold": int(run.get("fold", 0)) + 1, "_run": run})
    rows.sort(key=lambda r: -np.nan_to_num(r["confidence"], nan=-1.0))
    rows = rows if n is None else rows[:n]
    paths = [_resolve(row["clip"], row.pop("_run"), data) for row in rows]
    table = pd.DataFrame(rows, columns=columns)
    table["path"] = pd.Series(paths, index=table.index, dtype=object)  # None, not NaN, when not found
    return table


def _top_pairs(name: str, path, k: int = 2) -> list[tuple[str, str]]:
    counts, labels = pooled_confusion(name, path)
    if counts.size == 0:
        return []
    recorded = confused_clips(name, n=None, path=path)
    have = set(zip(recorded["true"], recorded["predicted"]))
    off = [(int(counts[i, j]), labels[i], labels[j]) for i in range(len(labels)) for j in range(len(labels))
           if i != j and counts[i, j] > 0]
    off.sort(key=lambda c: (-((c[1], c[2]) in have), -c[0]))
    return [(t, p) for _, t, p in off[:k]]


def listen_confused(name: str, pairs=None, *, n: int = 2, data=None, path=None) -> None:
    """Play clips the full runs confused: for each (true, predicted) pair, ``n`` clips.

    ``pairs`` defaults to the two most frequent confusions of the pooled matrix (among
    those with recorded clips). Each clip gets a line (``calm heard as neutral (p = 0.83):
    Actor_06/...flac``) and an audio player (:func:`serlib.book.listen`). Missing
    predictions, audio not on this machine or unreadable files each give one line instead;
    nothing here raises for missing data. Explained in the chapter "The comparison".
    """
    from .audio import load_audio
    from .book import listen
    from .errors import SerlibError

    name = _canonical(name)
    if not summary(name, path)["has_predictions"]:
        print(f"{name}: {NO_PREDICTIONS}")
        return
    pairs = list(pairs) if pairs is not None else _top_pairs(name, path)
    for true, predicted in pairs:
        clips = confused_clips(name, true=true, predicted=predicted, n=n, data=data, path=path)
        if clips.empty:
            print(f"{true} heard as {predicted}: no such error among the recorded predictions")
            continue
        for row in clips.itertuples():
            print(f"{row.true} heard as {row.predicted} (p = {row.confidence:.2f}, fold {row.fold}): {row.clip}")
            if row.path is None:
                print("  (the audio is not on this machine: set SERLIB_DATA_DIR to the RAVDESS folder to hear it)")
                continue
            try:
                player = listen(load_audio(row.path, sr=16_000), 16_000)
            except (SerlibError, OSError) as error:
                print(f"  (cannot play it: {str(error).splitlines()[0] if str(error) else type(error).__name__})")
                continue
            _display(player)


def _display(obj) -> None:
    from IPython.display import display

    display(obj)


__all__ = ["full_runs", "summary", "pooled_confusion", "plot_full_confusion", "plot_full_history",
           "show_full_results", "confused_clips", "listen_confused", "NO_HISTORY", "NO_PREDICTIONS"]
