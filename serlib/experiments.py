"""The reports' own experiments on unseen speakers, as tables and figures.

``benchmarks/experiments.py`` reruns what the reports compared (data normalisation and
optimisers in report 000, augmentation in reports 001 and 004, the song clips in report 002,
ReLU vs LeakyReLU and pooling sizes in report 004), each as a change to one registered model
under the speaker-independent protocol, and writes ``benchmarks/results/experiments.json``.
Each variant is set beside its model at the report's own settings, fold by fold: the same
test actors, the same seed, the same harness (the model benchmark's records that carry
per-epoch history, i.e. those run on the current training code). Explained in the chapters
that reproduce each report, and in "The comparison".
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .results import MODELS_FILE, RESULTS_DIR

#: The experiments' results file (``benchmarks/experiments.py``).
EXPERIMENTS_FILE = RESULTS_DIR / "experiments.json"
#: The variant label of a model at its report's own settings.
AS_REPORTED = "as in the report"


def _records(path) -> list:
    path = Path(path)
    if not path.is_file():
        return []
    return [r for r in json.loads(path.read_text()).get("records", []) if not r["settings"].get("quick")]


def experiment_records(experiment: str | None = None, path=None, models_path=None) -> pd.DataFrame:
    """One row per fold: every variant of ``experiment`` (an id such as ``"004-activation"``;
    all when None) and, for each model it changes, that model's own folds at the report's
    settings (``variant`` :data:`AS_REPORTED`, from the model benchmark, only records run on
    the current harness). Columns: experiment, question, model, variant, fold, uar, accuracy,
    epochs_run, training_seconds, n_train, n_train_augmented, n_song. Empty when nothing is
    recorded. Explained in "The comparison".
    """
    rows = []
    for r in _records(EXPERIMENTS_FILE if path is None else path):
        if experiment is not None and r["experiment"] != experiment:
            continue
        rows.append({k: r.get(k) for k in ("experiment", "question", "model", "variant", "fold", "uar", "accuracy",
                                           "epochs_run", "training_seconds", "n_train", "n_train_augmented",
                                           "n_song")})
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    base = []
    pairs = df[["experiment", "question", "model"]].drop_duplicates()
    models = _records(MODELS_FILE if models_path is None else models_path)
    for _, pair in pairs.iterrows():
        for r in models:
            if (r["model"] == pair["model"] and r["protocol"] == "speaker" and "history" in r
                    and r["settings"].get("learning_rate") is None and r["settings"].get("epochs") is None):
                base.append({**pair.to_dict(), "variant": AS_REPORTED, "fold": r["fold"], "uar": r["uar"],
                             "accuracy": r["accuracy"], "epochs_run": r["epochs_run"],
                             "training_seconds": r["training_seconds"], "n_train": r["n_train"],
                             "n_train_augmented": 0, "n_song": 0})
    return pd.concat([pd.DataFrame(base), df], ignore_index=True) if base else df


def experiment_table(path=None, models_path=None) -> pd.DataFrame:
    """Mean ± std of UAR per experiment, model and variant, with the paired change.

    ``Δ UAR`` is the mean over the folds both have of (variant - the model as in the report),
    in points, with its standard deviation; ``paired folds`` counts them (0 when the model's
    own folds on the current harness are not recorded yet). Explained in "The comparison".
    """
    df = experiment_records(None, path, models_path)
    if df.empty:
        return pd.DataFrame()
    out = []
    for (exp, model, variant), part in df.groupby(["experiment", "model", "variant"], sort=False):
        base = df[(df["experiment"] == exp) & (df["model"] == model) & (df["variant"] == AS_REPORTED)]
        paired = part.merge(base[["fold", "uar"]], on="fold", suffixes=("", "_base"))
        diff = 100 * (paired["uar"] - paired["uar_base"]) if variant != AS_REPORTED else pd.Series(dtype=float)
        out.append({"experiment": exp, "question": part["question"].iloc[0], "model": model, "variant": variant,
                    "folds": int(part["fold"].nunique()), "UAR %": 100 * part["uar"].mean(),
                    "± std": 100 * part["uar"].std(ddof=1) if len(part) > 1 else np.nan,
                    "Δ UAR (points)": diff.mean() if len(diff) else np.nan,
                    "Δ ± std": diff.std(ddof=1) if len(diff) > 1 else np.nan,
                    "paired folds": int(len(diff))})
    return pd.DataFrame(out).round(1)


def plot_experiment(experiment: str, ax=None, path=None, models_path=None):
    """Fold-wise UAR of each variant of ``experiment`` (a seaborn strip plot over a box
    per variant; one dot per unseen-speaker fold, lines joining a fold's variants).
    Returns the Figure. Explained in the chapter that reproduces the report."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    df = experiment_records(experiment, path, models_path)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 3.2), constrained_layout=True)
    fig = ax.figure
    if df.empty:
        ax.text(0.5, 0.5, f"{experiment}: not run yet (benchmarks/experiments.py)", ha="center", va="center")
        ax.set_axis_off()
        return fig
    df = df.assign(label=df["model"] + "\n" + df["variant"], UAR=100 * df["uar"], fold=df["fold"] + 1)
    order = list(dict.fromkeys(df.sort_values("variant", key=lambda s: s != AS_REPORTED)["label"]))
    sns.boxplot(data=df, y="label", x="UAR", order=order, ax=ax, color="0.9", fliersize=0, width=0.5)
    sns.stripplot(data=df, y="label", x="UAR", order=order, hue="fold", palette="deep", ax=ax, size=6, jitter=False)
    ax.set_ylabel("")
    ax.set_xlabel("UAR on unseen speakers (%), one dot per fold")
    ax.set_title(f"Report {experiment.split('-')[0]}: {df['question'].iloc[0]}", fontsize=10)
    ax.legend(title="fold", fontsize=7, title_fontsize=8, loc="best")
    return fig


def experiment_summary(experiment: str, path=None, models_path=None, *, model: str | None = None) -> dict:
    """One sentence per variant of ``experiment``, for glued prose: its UAR on unseen speakers,
    the model's as in the report, and the paired change, e.g. ``{"LeakyReLU": "UAR 20.1 % ± 3.2
    over 5 folds, against 21.0 % ± 4.1 as in the report: a change of -0.9 ± 2.1 points on the
    5 folds both ran"}``. ``model`` keeps one model's variants (an experiment may change
    several). A variant whose model's own current-harness folds are missing says so; an
    experiment with no records gives ``{}``. Explained in the chapter that reproduces the report.
    """
    table = experiment_table(path, models_path)
    if table.empty:
        return {}
    mine = table[(table["experiment"] == experiment) & ((table["model"] == model) if model else True)]
    out = {}
    for _, row in mine.iterrows():
        if row["variant"] == AS_REPORTED:
            continue
        base = mine[(mine["model"] == row["model"]) & (mine["variant"] == AS_REPORTED)]

        def spread(value):
            return "" if pd.isna(value) else f" ± {value:.1f}"

        text = f"UAR {row['UAR %']:.1f} %{spread(row['± std'])} over {row['folds']} folds"
        if len(base):
            b = base.iloc[0]
            text += f", against {b['UAR %']:.1f} %{spread(b['± std'])} as in the report"
        if row["paired folds"]:
            text += (f": a change of {row['Δ UAR (points)']:+.1f}{spread(row['Δ ± std'])} points on the "
                     f"{row['paired folds']} folds both ran")
        else:
            text += " (the model's own folds on the current harness are not recorded yet)"
        out[row["variant"]] = text
    return out


def plot_changes(ax=None, path=None, models_path=None):
    """Every variant's paired change in UAR against its model as in the report (mean ± std
    over the folds both ran, in points), one row per variant, a line at no change. Returns
    the Figure. Explained in the chapter "The comparison"."""
    import matplotlib.pyplot as plt

    table = experiment_table(path, models_path)
    rows = table[(table["variant"] != AS_REPORTED) & (table["paired folds"] > 0)] if len(table) else table
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 0.45 * max(len(rows), 2) + 1.2), constrained_layout=True)
    fig = ax.figure
    if rows.empty:
        ax.text(0.5, 0.5, "no experiment paired with its model yet (benchmarks/experiments.py)", ha="center",
                va="center")
        ax.set_axis_off()
        return fig
    labels = [f"report {r.experiment.split('-')[0]} · {r.model}: {r.variant}" for r in rows.itertuples()]
    y = np.arange(len(rows))[::-1]
    ax.errorbar(rows["Δ UAR (points)"], y, xerr=rows["Δ ± std"].fillna(0), fmt="o", color="C0", capsize=3)
    ax.axvline(0, color="0.4", lw=1, ls="--")
    ax.set_yticks(y, labels)
    ax.set_xlabel("change in UAR on unseen speakers (points; mean ± std over paired folds)")
    ax.set_title("The reports' own comparisons, rerun on unseen speakers", fontsize=10)
    return fig
