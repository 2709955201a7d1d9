"""The benchmark results the book reads: ``benchmarks/results/*.json`` as tables.

``benchmarks/models.py`` appends one record per (model, protocol, fold) to
``models.json``; ``benchmarks/recommended.py`` writes ``recommended.json``. These
functions turn them into pandas tables: full runs only (``--quick`` smoke tests are
ignored), real RAVDESS preferred to the synthetic stand-in, and the report's own epoch
budget preferred to an ``--epochs`` override. They return empty tables when a file is
absent (e.g. on Colab, where the repository's ``benchmarks/`` folder is not installed).

Explained in the chapter "The comparison".
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

#: Where the benchmark scripts write (override with ``$SERLIB_RESULTS_DIR``).
RESULTS_DIR = Path(os.environ.get("SERLIB_RESULTS_DIR")
                   or Path(__file__).resolve().parent.parent / "benchmarks" / "results")
#: The model benchmark's results file.
MODELS_FILE = RESULTS_DIR / "models.json"
#: The recommended model's cross-validation file.
RECOMMENDED_FILE = RESULTS_DIR / "recommended.json"
#: Wall-clock time per chapter (``benchmarks/chapters.py``).
CHAPTERS_FILE = RESULTS_DIR / "chapters.json"


def recommended_records(path=None) -> pd.DataFrame:
    """The folds of ``recommended.json`` as benchmark records (protocol ``speaker``).

    ``benchmarks/recommended.py`` uses the same test actors as the model benchmark
    (``actor_kfold`` with the same seed) but trains on all 16 other actors, as the model
    needs no validation actors (fixed epochs). Explained in the chapter "The comparison".
    """
    result = recommended_results(None if path is None else path)
    if not result or not result.get("folds"):
        return pd.DataFrame()
    rows = []
    for fold in result["folds"]:
        epochs = fold.get("epochs") or result["settings"].get("epochs")
        rows.append({**fold, "model": result["model"], "protocol": "speaker", "n_folds": len(result["folds"]),
                     "epochs_run": epochs,
                     "seconds_per_epoch": fold["training_seconds"] / epochs if epochs else None,
                     "settings": {"quick": False, "epochs": None, "seed": result["settings"].get("seed"),
                                  "source": "benchmarks/recommended.py"},
                     "data": result.get("data", {})})
    return pd.json_normalize(rows)


def benchmark_records(models=None, path=None, *, include_recommended: bool = True,
                      learning_rate: float | None = None) -> pd.DataFrame:
    """The model benchmark's per-fold records, one flattened row each (empty if none).

    Keeps full runs only; for each model, one set of settings: real data before the
    stand-in, then the largest epoch budget (the report's own, ``settings.epochs`` null,
    counts as largest), and per protocol only the run with the most folds (folds of a
    2-fold and a 5-fold run are different splits). ``models`` restricts to those registry
    names. Runs at the report's own learning rate are kept by default; ``learning_rate``
    selects instead the runs made with ``benchmarks/models.py --learning-rate`` at that
    rate. With ``include_recommended`` the recommended model's cross-validation
    (:func:`recommended_records`) is used instead of the results file's speaker-independent
    records of it when those are fewer (only at the default learning rate). Explained in the chapter "The comparison".
    """
    path = Path(path) if path is not None else MODELS_FILE
    records = pd.json_normalize(json.loads(path.read_text())["records"]) if path.is_file() else pd.DataFrame()
    if include_recommended and learning_rate is None:
        extra = recommended_records(path.parent / RECOMMENDED_FILE.name)
        if len(extra):
            name = extra["model"].iloc[0]
            mine = ((records["model"] == name) & (records["protocol"] == "speaker")) if len(records) else None
            # recommended.json's cross-validation wins over fewer folds of the same model in the
            # results file (e.g. one fold rerun by benchmarks/models.py for its curves and predictions)
            if mine is None or int(mine.sum()) < len(extra):
                records = pd.concat([records[~mine] if mine is not None else records, extra], ignore_index=True)
    if records.empty:
        return records
    records = records[~records["settings.quick"].astype(bool)]
    override = (records["settings.learning_rate"].astype(float) if "settings.learning_rate" in records
                else pd.Series(np.nan, index=records.index))
    if learning_rate is None:
        records = records[override.isna()]
    else:
        records = records[np.isclose(override.fillna(-1.0), float(learning_rate))]
    if models is not None:
        records = records[records["model"].isin(list(models))]
    if records.empty:
        return records
    epochs = records["settings.epochs"].astype(float).fillna(1e9)
    rank = (~records["data.synthetic"].astype(bool)) * 1e10 + epochs
    records = records[rank == rank.groupby(records["model"]).transform("max")]
    # one fold layout per model and protocol: a 2-fold and a 5-fold run split the actors
    # differently, so only the run with the most folds is kept
    folds = (records["settings.folds"] if "settings.folds" in records else pd.Series(0, index=records.index))
    folds = folds.astype(float).fillna(0)
    keep = folds == folds.groupby([records["model"], records["protocol"]]).transform("max")
    return records[keep].reset_index(drop=True)


def one_label_only(confusion) -> bool:
    """True when a fold's confusion matrix has a single non-empty column.

    That is a model that gave every test clip the same label: it has collapsed to one
    class, and its UAR on that fold is exactly chance (one over the number of classes),
    whatever its accuracy. ``False`` for a missing matrix. Explained in the chapter "The
    comparison".
    """
    if not isinstance(confusion, (list, tuple)) or not confusion:
        return False
    column_sums = [sum(column) for column in zip(*confusion)]
    return sum(1 for total in column_sums if total) == 1


def benchmark_table(models=None, path=None, *, learning_rate: float | None = None) -> pd.DataFrame:
    """Mean and standard deviation over folds, one row per model and protocol.

    Columns: ``model, protocol, uar, uar_std, accuracy, accuracy_std, folds, params,
    seconds_per_epoch, epochs, synthetic, one_label_folds`` (``epochs`` is NaN for the
    report's own budget; ``one_label_folds`` counts the folds in which the model gave every
    test clip the same label, see :func:`one_label_only`). ``learning_rate`` picks the runs
    made at that overridden rate, as in :func:`benchmark_records`. Explained in the chapter
    "The comparison".
    """
    records = benchmark_records(models, path, learning_rate=learning_rate)
    if records.empty:
        return pd.DataFrame()
    records = records.assign(one_label=[one_label_only(c) for c in records.get("confusion", [None] * len(records))])
    table = records.groupby(["model", "protocol"], sort=False).agg(
        uar=("uar", "mean"), uar_std=("uar", "std"), accuracy=("accuracy", "mean"),
        accuracy_std=("accuracy", "std"), folds=("fold", "nunique"), params=("params", "first"),
        seconds_per_epoch=("seconds_per_epoch", "mean"), epochs=("settings.epochs", "first"),
        synthetic=("data.synthetic", "any"), one_label_folds=("one_label", "sum"))
    return table.reset_index()


#: The columns of :func:`clip_predictions`.
CLIP_COLUMNS = ["model", "fold", "clip", "true", "predicted", "confidence", "data_path"]
#: The columns of :func:`shared_errors`.
SHARED_COLUMNS = ["clip", "true", "models", "wrong", "share", "heard as", "agreeing", "data_path"]


def clip_predictions(models=None, path=None) -> pd.DataFrame:
    """Per-clip predictions of the full speaker-independent runs, one row per model and clip.

    Only records that carry ``predictions`` count (``benchmarks/models.py`` records them
    since the rerun for issue 26; older records have none), chosen as in
    :func:`benchmark_records`. Columns: :data:`CLIP_COLUMNS`; ``clip`` is relative to
    ``data_path`` (the record's data folder), ``confidence`` is the probability the model
    gave its predicted label (NaN when not recorded). Empty, with those columns, when no
    record has predictions. Explained in the chapter "The comparison".
    """
    records = benchmark_records(models, path, include_recommended=False)
    if records.empty or "predictions.clips" not in records:
        return pd.DataFrame(columns=CLIP_COLUMNS)
    records = records[(records["protocol"] == "speaker") & records["predictions.clips"].apply(
        lambda clips: isinstance(clips, list) and len(clips) > 0)]
    rows = []
    for _, record in records.iterrows():
        labels = list(record.get("predictions.labels") or [])
        proba = record.get("predictions.proba")
        proba = proba if isinstance(proba, list) else []
        for i, (clip, true, predicted) in enumerate(zip(record["predictions.clips"], record["predictions.true"],
                                                        record["predictions.predicted"])):
            confidence = (float(proba[i][labels.index(predicted)])
                          if i < len(proba) and predicted in labels and len(proba[i]) == len(labels) else np.nan)
            rows.append({"model": record["model"], "fold": int(record["fold"]), "clip": clip, "true": true,
                         "predicted": predicted, "confidence": confidence,
                         "data_path": record.get("data.path")})
    return pd.DataFrame(rows, columns=CLIP_COLUMNS)


def shared_errors(models=None, path=None, *, min_models: int = 2) -> pd.DataFrame:
    """The clips that several models got wrong, the most widely shared errors first.

    One row per test clip that at least ``min_models`` models with recorded predictions
    (:func:`clip_predictions`) classified, and at least one of them wrongly. Columns:
    :data:`SHARED_COLUMNS`: ``models`` is how many models classified the clip, ``wrong``
    how many erred, ``share`` their fraction, ``heard as`` the wrong label chosen most often
    and ``agreeing`` how many erring models chose it. Sorted by ``share``, then ``wrong``.
    Pass the emotion models only, so that every model answers the same question. Explained
    in the chapter "The comparison".
    """
    clips = clip_predictions(models, path)
    if clips.empty:
        return pd.DataFrame(columns=SHARED_COLUMNS)
    rows = []
    for (clip, true), group in clips.groupby(["clip", "true"], sort=False):
        per_model = group.drop_duplicates("model")
        errors = per_model[per_model["predicted"] != true]
        if len(per_model) < min_models or errors.empty:
            continue
        counts = errors["predicted"].value_counts()
        rows.append({"clip": clip, "true": true, "models": len(per_model), "wrong": len(errors),
                     "share": len(errors) / len(per_model), "heard as": counts.index[0],
                     "agreeing": int(counts.iloc[0]), "data_path": per_model["data_path"].iloc[0]})
    table = pd.DataFrame(rows, columns=SHARED_COLUMNS)
    return table.sort_values(["share", "wrong", "agreeing"], ascending=False, kind="stable").reset_index(drop=True)


def recommended_results(path=None) -> dict | None:
    """The recommended model's cross-validation (``recommended.json``), or ``None``.

    ``None`` too when the file holds only a ``--quick`` smoke test. Explained in the
    chapter "Beyond the reports".
    """
    path = Path(path) if path is not None else RECOMMENDED_FILE
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    return None if result.get("settings", {}).get("quick") else result


def chapter_timings(mode: str = "full", path=None) -> pd.DataFrame:
    """How long each chapter took to execute in ``mode`` (``benchmarks/chapters.py``), one row each.

    Columns: chapter, minutes, outcome (``every cell ran`` or the first error), the
    machine's cores and whether it had a GPU, the data line of the chapter header, and the
    date. Empty when nothing was recorded. Explained in the chapter "Introduction".
    """
    path = Path(path) if path is not None else CHAPTERS_FILE
    if not path.is_file():
        return pd.DataFrame()
    records = [r for r in json.loads(path.read_text()).get("records", []) if r.get("mode") == mode]
    rows = [{"chapter": r["chapter"], "minutes": round(r["seconds"] / 60, 1),
             "outcome": "every cell ran" if r["ok"] else f"failed: {r['error']}",
             "CPU cores": r.get("machine", {}).get("cores"), "GPU": bool(r.get("machine", {}).get("gpu")),
             "data": r.get("data"), "date": str(r.get("created", ""))[:10]}
            for r in sorted(records, key=lambda r: r["chapter"])]
    return pd.DataFrame(rows)
