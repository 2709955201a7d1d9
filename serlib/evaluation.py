"""Scoring a saved run on new data.

:func:`evaluate_run` scores a run folder (or a loaded :class:`~serlib.runs.Run`) on every clip
of a data folder that its model can label, on RAVDESS or on another corpus (EmoDB: then over
the emotions both share, :mod:`serlib.cross_corpus`). Explained in the chapters "Evaluating honestly" and
"Does it travel? RAVDESS to EmoDB".
"""
from __future__ import annotations

import os

import numpy as np

from .cross_corpus import adapt_groups, adapted_proba, run_corpus, shared_scores, target_labels
from .datasets.corpus import load_corpus
from .errors import DataError, SerlibError
from .log import get_logger
from .metrics import classification_report
from .runs import Run, load_run
from .training.data import _resolve_data, select_clips

logger = get_logger(__name__)

__all__ = ["evaluate_run"]


def evaluate_run(run_dir, data_dir, *, corpus: str | None = None, verbose: bool = False,
                 predictions: bool = False, adapt: str | None = None, level_db: float | None = None) -> dict:
    """Score a saved run on every clip of ``data_dir`` that its model can label.

    ``data_dir`` is a folder (its corpus detected from the file names, or named by
    ``corpus``: "ravdess", "emodb"), a :class:`~serlib.datasets.Corpus` or an index.
    Clips outside the run's label set (e.g. disgust and surprised for a six-emotion
    model, EmoDB's boredom for any RAVDESS model) or outside its data filter (e.g. the
    other gender for a gender-specific model) are dropped, counted (``dropped``,
    ``dropped_labels``, ``dropped_reason``) and reported in one warning on the
    ``serlib.evaluation`` logger. Returns the :func:`serlib.metrics.classification_report`
    dict (``accuracy, uar, f1_macro, n, labels, confusion``, ...) plus ``data`` and
    ``dropped``.

    On another corpus than the run's (a RAVDESS run on EmoDB) the result also has
    ``cross_corpus``: the corpora, the shared labels, what was left out, and, when the run
    has labels the target corpus lacks (calm, surprised), the headline scores are over the
    shared labels with the arg-max restricted to them, and ``cross_corpus["unrestricted"]``
    holds the run's own arg-max scores (:mod:`serlib.cross_corpus`). A data filter on a
    column the target corpus does not have (Balata's ``intensity: strong``) is not applied
    there (``filter_skipped``). ``predictions=True`` adds one record per clip (path, true,
    predicted, probabilities).

    ``adapt="corpus"`` or ``"speaker"`` is *transductive* (not the default; it cannot score a
    single clip): the run's training-set standardisations are replaced by statistics of the
    unlabelled clips scored here, all of them or each speaker's
    (:func:`serlib.cross_corpus.adapted_proba`); the result then has ``adapt`` saying so.
    Explained in the chapter "Beyond the reports".

    ``level_db`` scales every clip so its loudest frames sit at that level before it is
    described (:mod:`serlib.level`), for a run trained without that setting: a single-clip
    change, not transductive; the result then has ``level_db``. Explained in the chapter
    "Does it travel? RAVDESS to EmoDB".
    """
    run = run_dir if isinstance(run_dir, Run) else load_run(run_dir)
    if isinstance(data_dir, (str, os.PathLike)):
        data_dir = load_corpus(data_dir, corpus=corpus, verbose=bool(verbose))
    df, source = _resolve_data(data_dir, verbose)
    entry = _RunEntry(run)
    trained_on = run_corpus(run.info)
    target = _target_corpus(df)
    skipped = _skip_foreign_filter(entry, df) if target != trained_on else []
    df, record = select_clips(df, entry)
    dropped = record["n_in"] - record["n_kept"]
    where = source.get("path") or data_dir
    if len(df) == 0:
        raise DataError(f"{where}: none of its {record['n_in']} clips has a label this run knows "
                        f"({', '.join(run.labels)})")
    pipeline = run.prediction_pipeline if level_db is None else run.prediction_pipeline.replace(level_db=level_db)
    views = pipeline.transform(df["path"], progress=bool(verbose), verbose=verbose)
    X, F = run.inputs(views)                  # the same views, by the same code, as in training
    if adapt:
        groups = adapt_groups(df, adapt)
        proba = adapted_proba(run, X, F, groups)
    else:
        proba = run.predict_proba(X, functionals=F)
    lookup = {label: i for i, label in enumerate(run.labels)}
    y = df[entry.task].astype(str).map(lookup).to_numpy(dtype=np.int64)
    possible = target_labels(target, entry.task)
    absent = [label for label in run.labels if possible is not None and label not in possible]
    if absent:
        shared = [label for label in run.labels if label not in absent]
        metrics, unrestricted = shared_scores(y, proba, list(run.labels), shared)
        predicted = metrics.pop("predicted")
        predicted_any = unrestricted.pop("predicted")
    else:
        metrics, unrestricted, shared = classification_report(y, proba, run.labels), None, list(run.labels)
        predicted = predicted_any = [run.labels[i] for i in np.argmax(proba, axis=1)]
    metrics["data"] = {"path": source.get("path"), "source": source.get("source"),
                       "synthetic": source.get("synthetic"), "corpus": target}
    metrics["dropped"] = int(dropped)
    if adapt:
        metrics["adapt"] = {"mode": adapt, "transductive": True, "groups": int(len(np.unique(groups))),
                            "what": "standardisation statistics taken from the unlabelled clips scored here "
                                    f"({'all of them' if adapt == 'corpus' else 'each speaker'}), not from training"}
    if level_db is not None:
        metrics["level_db"] = {"level_db": float(level_db), "transductive": False,
                               "what": "each clip scaled so its loudest frames sit at this level before it is "
                                       "described (serlib.level); the run was trained "
                                       + ("at the same level" if run.pipeline.level_db == level_db else
                                          "without it" if run.pipeline.level_db is None else
                                          f"at {run.pipeline.level_db:g} dB")}
    metrics["dropped_labels"] = record["dropped_labels"]
    if dropped:
        why = []
        if record["dropped_by_label"]:
            why.append(f"{record['dropped_by_label']} with labels outside the run's "
                       f"({', '.join(record['dropped_labels'])})")
        if record["dropped_by_filter"]:
            why.append(f"{record['dropped_by_filter']} outside the model's data filter ({record['filter']})")
        metrics["dropped_reason"] = "; ".join(why)
        logger.warning("%s: dropped %d of %d clips: %s", where, dropped, record["n_in"], metrics["dropped_reason"])
    if target != trained_on:
        metrics["cross_corpus"] = _cross_record(trained_on, target, shared, absent, record, skipped, unrestricted)
    if predictions:
        metrics["predictions"] = [
            {"path": str(path), "true": str(true), "predicted": p, "predicted_any_label": q,
             "probabilities": {label: float(v) for label, v in zip(run.labels, row)}}
            for path, true, p, q, row in zip(df["path"], df[entry.task], predicted, predicted_any, proba)]
    return metrics


def _target_corpus(df) -> str:
    if "corpus" not in df.columns:
        return "ravdess"
    kinds = sorted(set(df["corpus"].dropna().astype(str)))
    return kinds[0] if len(kinds) == 1 else "mixed" if kinds else "ravdess"


def _skip_foreign_filter(entry, df) -> list[str]:
    """Drop the keys of a dict data filter whose column the target corpus does not fill."""
    if not isinstance(entry.data_filter, dict):
        return []
    skipped = [c for c in entry.data_filter if c in df.columns and df[c].isna().all()]
    if skipped:
        entry.data_filter = {k: v for k, v in entry.data_filter.items() if k not in skipped} or None
    return skipped


def _cross_record(trained_on, target, shared, absent, record, skipped, unrestricted) -> dict:
    out = {"train_corpus": trained_on, "target_corpus": target, "shared_labels": list(shared),
           "left_out_labels": record["dropped_labels"], "left_out_clips": int(record["dropped_by_label"]),
           "run_labels_absent_from_target": list(absent)}
    if absent:
        out["rule"] = (f"arg-max over the {len(shared)} shared labels only (the probabilities of "
                       f"{', '.join(absent)} are set aside); 'unrestricted' scores the run's own arg-max")
        out["unrestricted"] = unrestricted
    if skipped:
        out["filter_skipped"] = skipped
    return out


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
