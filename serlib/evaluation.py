"""Scoring a saved run on new data.

:func:`evaluate_run` scores a run folder (or a loaded :class:`~serlib.runs.Run`) on every clip
of a data folder that its model can label. Explained in the chapter "Beyond the reports".
"""
from __future__ import annotations

import numpy as np

from .errors import DataError, SerlibError
from .log import get_logger
from .metrics import classification_report
from .runs import Run, load_run
from .training.data import _resolve_data, select_clips

logger = get_logger(__name__)

__all__ = ["evaluate_run"]


def evaluate_run(run_dir, data_dir, *, verbose: bool = False) -> dict:
    """Score a saved run on every clip of ``data_dir`` that its model can label.

    Clips outside the run's label set (e.g. disgust and surprised for a six-emotion
    model) or outside its data filter (e.g. the other gender for a gender-specific model)
    are dropped, counted (``dropped``, ``dropped_labels``, ``dropped_reason``) and reported
    in one warning on the ``serlib.evaluation`` logger. Returns the
    :func:`serlib.metrics.classification_report` dict (``accuracy, uar, f1_macro, n,
    labels, confusion``, ...) plus ``data`` and ``dropped``. Explained in the chapter
    "Beyond the reports".
    """
    run = run_dir if isinstance(run_dir, Run) else load_run(run_dir)
    df, source = _resolve_data(data_dir, verbose)
    entry = _RunEntry(run)
    df, record = select_clips(df, entry)
    dropped = record["n_in"] - record["n_kept"]
    if len(df) == 0:
        raise DataError(f"{data_dir}: none of its {record['n_in']} clips has a label this run knows "
                        f"({', '.join(run.labels)})")
    views = run.prediction_pipeline.transform(df["path"], progress=bool(verbose), verbose=verbose)
    X, F = run.inputs(views)                  # the same views, by the same code, as in training
    proba = run.predict_proba(X, functionals=F)
    lookup = {label: i for i, label in enumerate(run.labels)}
    y = df[entry.task].astype(str).map(lookup).to_numpy(dtype=np.int64)
    metrics = classification_report(y, proba, run.labels)
    metrics["data"] = {"path": source.get("path"), "source": source.get("source"),
                       "synthetic": source.get("synthetic")}
    metrics["dropped"] = int(dropped)
    metrics["dropped_labels"] = record["dropped_labels"]
    if dropped:
        why = []
        if record["dropped_by_label"]:
            why.append(f"{record['dropped_by_label']} with labels outside the run's "
                       f"({', '.join(record['dropped_labels'])})")
        if record["dropped_by_filter"]:
            why.append(f"{record['dropped_by_filter']} outside the model's data filter ({record['filter']})")
        metrics["dropped_reason"] = "; ".join(why)
        logger.warning("%s: dropped %d of %d clips: %s", data_dir, dropped, record["n_in"], metrics["dropped_reason"])
    return metrics


class _RunEntry:
    """The parts of a registry entry :func:`select_clips` needs, rebuilt from a run."""

    def __init__(self, run: Run):
        self.name = run.info.get("model", "run")
        self.labels = list(run.labels)
        self.task = run.info.get("task") or "emotion"
        self.data_filter = None
        from .models import get_model   # lazy: the registry imports Keras

        try:
            entry = get_model(self.name)
        except SerlibError:  # model renamed/removed since training: score on labels alone
            return
        if [str(label) for label in entry.labels] == self.labels:
            self.data_filter = getattr(entry, "data_filter", None)
