"""Training any registered model the honest way, and scoring a saved run.

One function, :func:`train`, runs the whole protocol of the chapter "Evaluating honestly"
for every architecture of the book:

1. index the data (a folder, a :class:`~serlib.datasets.corpus.Corpus` or an index
   DataFrame) and keep the clips the model is for (its ``data_filter`` and label set:
   six emotions for report 003, the gender task, one gender's clips ...);
2. split **by speaker** unless a :class:`~serlib.splits.Split` is passed: the test actors
   are the ones given, or by default the last two actors present (19 and 20 for RAVDESS
   01-20: one man, one woman; the last one when fewer than six actors are present);
   validation actors are the ones given or drawn (gender-balanced, from ``seed``) from
   the rest; everyone else trains;
3. extract the model's features (cached on disk by :func:`serlib.features.extract_corpus`);
4. optionally augment the *training* clips only (waveform-level, after the split);
5. compute normalisation statistics on the training clips only, when the model wants them;
6. build and fit the model with its report's settings (epochs, batch size, optimiser,
   early stopping on the validation speakers with the best weights restored, learning-rate
   reduction, checkpointing) unless overridden;
7. score the untouched test speakers with :func:`serlib.metrics.classification_report`;
8. save everything in a run folder (:mod:`serlib.runs`).

:func:`cross_validate` repeats steps 5-7 over actor-wise folds (features extracted once)
and :func:`random_split_protocol` does the same over the reports' random splits, whose
numbers are inflated by hearing every test speaker in training.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError, SerlibError
from .features import FeatureSpec
from .runs import Run, apply_normalization, check_out_dir, load_run, normalization_stats, save_run

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: Epochs and steps per epoch when ``quick=True`` (smoke tests, SERLIB_QUICK=1).
QUICK_EPOCHS = 2
QUICK_STEPS = 8

#: An entry with ``ensemble=n`` trains network k (0 .. n-1) from ``seed + ENSEMBLE_SEED_STEP * k``.
ENSEMBLE_SEED_STEP = 100

#: The random split each report used (train, val, test), for :func:`random_split_protocol`.
#: Report 001 had no validation set (75/25, the test set was monitored); here 15 % of its
#: training share validates instead, so that nothing is tuned on the test clips.
#: Report 002 used 3923/490/491 clips (80/10/10); report 003 does not say (70/15/15 assumed).
REPORT_SPLITS = {
    "000": (0.70, 0.15, 0.15),
    "001": (0.6375, 0.1125, 0.25),
    "002": (0.80, 0.10, 0.10),
    "003": (0.70, 0.15, 0.15),
    "004": (0.60, 0.15, 0.25),
}
DEFAULT_RANDOM_FRACTIONS = (0.70, 0.15, 0.15)

__all__ = ["train", "load_run", "evaluate_run", "cross_validate", "random_split_protocol",
           "prepare_data", "fit_split", "default_split", "Run", "PreparedData", "REPORT_SPLITS"]


# ---------------------------------------------------------------------------------- data
@dataclass
class PreparedData:
    """A model's clips, features and integer labels, ready for any split.

    ``index`` is the filtered clip index (positions 0..n-1 match ``X`` and ``y``), ``X`` the
    features ``(n, *shape)``, ``y`` class numbers into ``labels``, ``entry`` the registry
    entry, ``data`` where the clips came from (path, source, synthetic, counts).
    Explained in the chapter "Evaluating honestly".
    """

    model_name: str
    entry: object
    index: pd.DataFrame
    X: np.ndarray
    y: np.ndarray
    labels: list
    spec: FeatureSpec
    task: str
    data: dict = field(default_factory=dict)
    #: :mod:`serlib.functionals` of every clip, computed on first use (:func:`prepared_functionals`).
    functionals: np.ndarray | None = field(default=None, repr=False)
    #: The same of speed-perturbed copies, by speed factor; rows not asked for yet are NaN
    #: (:func:`prepared_functionals`).
    perturbed_functionals: dict = field(default_factory=dict, repr=False)
    #: Features (``X``) of speed-perturbed copies, by speed factor, for the network's training
    #: rows; rows not asked for yet are NaN (:func:`prepared_speed_features`).
    perturbed_features: dict = field(default_factory=dict, repr=False)


def prepared_functionals(prep: PreparedData, verbose=1, speed: float = 1.0, rows=None) -> np.ndarray:
    """The utterance functionals of every clip of ``prep`` (computed once, then kept on it).

    With ``speed`` other than 1, those of each clip's speed-perturbed copy
    (:func:`serlib.augment.speed_perturb`), for the regression's training rows (and its test
    rows when it scores speed copies, :func:`serlib.fusion.speeds`); ``rows`` limits that
    work to the clips at those positions (the others stay NaN until asked for), so a single
    run perturbs only the clips it needs. Explained in the chapter "Beyond the reports".
    """
    from .functionals import functionals

    if speed != 1:
        wanted = np.arange(len(prep.index)) if rows is None else np.asarray(rows, dtype=int)
        table = prep.perturbed_functionals.get(speed)
        missing = wanted if table is None else wanted[np.isnan(table[wanted]).all(axis=1)]
        if len(missing):
            _log(verbose, f"functionals of {len(missing)} clips played at speed {speed:g} ...")
            computed = functionals(prep.index["path"].iloc[missing], progress=bool(verbose), speed=speed)
            if table is None:
                table = np.full((len(prep.index), computed.shape[1]), np.nan, dtype=computed.dtype)
                prep.perturbed_functionals[speed] = table
            table[missing] = computed
        return table
    if prep.functionals is None:
        _log(verbose, f"functionals of {len(prep.index)} clips (serlib.functionals) ...")
        prep.functionals = functionals(prep.index["path"], progress=bool(verbose))
    return prep.functionals


def prepared_speed_features(prep: PreparedData, speed: float, rows, verbose=1) -> np.ndarray:
    """The network's input features of speed-perturbed copies of the clips at ``rows``.

    Each clip is played ``speed`` times faster (:func:`serlib.augment.speed_perturb`) and
    described as ``prep.spec`` says (:func:`serlib.features.extract_file`). Computed once
    per clip and kept on ``prep``; returns the full ``(n, *shape)`` table, whose rows not
    asked for yet are NaN, so a single run never perturbs its validation or test clips.
    Explained in the chapter "Beyond the reports".
    """
    from tqdm import tqdm

    from .features import extract_file

    wanted = np.asarray(rows, dtype=int)
    table = prep.perturbed_features.get(speed)
    if table is None:
        table = np.full(prep.X.shape, np.nan, dtype=np.float32)
        prep.perturbed_features[speed] = table
    missing = wanted[np.isnan(table[wanted].reshape(len(wanted), -1)).all(axis=1)]
    if len(missing):
        paths = prep.index["path"].iloc[missing]
        bar = tqdm(paths, unit="clip", desc=f"{prep.spec.kind} at speed {speed:g}", disable=not verbose)
        table[missing] = np.stack([extract_file(path, prep.spec, speed=speed) for path in bar])
    return table


def speed_copy_rows(prep: PreparedData, rows, speed_copies=(), verbose=1) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of the speed-perturbed copies of the clips at ``rows``, one block
    per factor of ``speed_copies`` (empty arrays when there are none): the extra training
    clips of an entry with ``speed_copies``. Explained in the chapter "Beyond the reports".
    """
    rows = np.asarray(rows, dtype=int)
    if not len(speed_copies) or not len(rows):
        return np.zeros((0, *prep.X.shape[1:]), dtype=np.float32), np.zeros(0, dtype=prep.y.dtype)
    blocks = [prepared_speed_features(prep, float(f), rows, verbose)[rows] for f in speed_copies]
    return np.concatenate(blocks), np.tile(prep.y[rows], len(blocks))


def regression_rows(prep: PreparedData, rows, speed_copies=(), verbose=1) -> tuple[np.ndarray, np.ndarray]:
    """Functionals and labels the fusion regression learns from: the clips at ``rows``, then
    their speed-perturbed copies, one block per factor of ``speed_copies``.

    Explained in the chapter "Beyond the reports".
    """
    rows = np.asarray(rows)
    blocks = [prepared_functionals(prep, verbose)[rows]]
    blocks += [prepared_functionals(prep, verbose, speed=f, rows=rows)[rows] for f in speed_copies]
    return np.concatenate(blocks), np.tile(prep.y[rows], len(blocks))


def _log(verbose, message: str) -> None:
    if verbose:
        print(message, flush=True)


def _resolve_data(data, verbose=1) -> tuple[pd.DataFrame, dict]:
    """(index DataFrame, data description) from a folder, a Corpus or a DataFrame."""
    if isinstance(data, pd.DataFrame):
        df = data
        info = {"path": df.attrs.get("root"), "source": df.attrs.get("source", "dataframe"),
                "synthetic": bool(df.attrs.get("synthetic", False))}
    elif hasattr(data, "index") and isinstance(getattr(data, "index"), pd.DataFrame):
        df = data.index
        info = {"path": str(getattr(data, "root", "") or "") or None,
                "source": str(getattr(data, "source", "corpus")),
                "synthetic": bool(getattr(data, "synthetic", False))}
    elif isinstance(data, (str, os.PathLike)):
        folder = Path(data).expanduser()
        if not folder.is_dir():
            raise DataError(f"{folder}: no such folder; pass the folder that holds Actor_01/ … "
                            "(or run `serlib download`)")
        try:
            from .datasets.corpus import load_corpus
        except ImportError:  # pragma: no cover - corpus module always ships
            load_corpus = None
        if load_corpus is not None:
            corpus = load_corpus(folder, verbose=bool(verbose))
            return _resolve_data(corpus, verbose)
        from .datasets import index_ravdess

        df = index_ravdess(folder)
        info = {"path": str(folder), "source": "ravdess", "synthetic": False}
    else:
        raise SerlibError(f"data={type(data).__name__}: pass a folder of RAVDESS clips, a Corpus "
                          "(serlib.datasets.load_corpus) or an index DataFrame")
    if len(df) == 0:
        raise DataError(f"{info.get('path') or 'the index'}: holds no clips")
    if "path" not in df.columns:
        raise DataError("the clip index has no 'path' column; use serlib.datasets.index_ravdess(folder)")
    return df, info


def _entry_task(entry) -> str:
    return str(getattr(entry, "task", None) or "emotion")


def _label_column(entry, df: pd.DataFrame) -> str:
    task = _entry_task(entry)
    if task not in df.columns:
        raise DataError(f"the clip index has no {task!r} column, which model {entry.name!r} predicts; "
                        "use serlib.datasets.index_ravdess(folder)")
    return task


def select_clips(df: pd.DataFrame, entry) -> tuple[pd.DataFrame, dict]:
    """The clips a model is for: its ``data_filter``, then its label set.

    Returns the filtered index (renumbered 0..n-1) and a record of what was dropped.
    Explained in the chapter "Evaluating honestly".
    """
    n0 = len(df)
    out = df
    data_filter = getattr(entry, "data_filter", None)
    if data_filter is not None:
        out = _apply_filter(out, data_filter)
    n_filter = len(out)
    column = _label_column(entry, out)
    labels = [str(label) for label in entry.labels]
    keep = out[column].astype(str).isin(labels)
    dropped_labels = sorted(set(out.loc[~keep, column].astype(str)))
    out = out[keep].reset_index(drop=True)
    record = {"n_in": n0, "n_kept": len(out), "dropped_by_filter": n0 - n_filter,
              "dropped_by_label": n_filter - len(out), "dropped_labels": dropped_labels,
              "filter": _describe_filter(data_filter)}
    return out, record


def _apply_filter(df: pd.DataFrame, data_filter) -> pd.DataFrame:
    if callable(data_filter):
        result = data_filter(df)
    elif isinstance(data_filter, dict):
        result = df
        for column, allowed in data_filter.items():
            if column not in result.columns:
                raise DataError(f"the clip index has no {column!r} column needed by the model's data filter")
            values = allowed if isinstance(allowed, (list, tuple, set)) else [allowed]
            result = result[result[column].isin(list(values))]
    else:
        raise SerlibError(f"unsupported data_filter {data_filter!r} (a function or a column→values dict)")
    if not isinstance(result, pd.DataFrame):
        raise SerlibError("a model's data_filter must return a DataFrame")
    return result


def _describe_filter(data_filter) -> str | None:
    if not data_filter:
        return None
    if isinstance(data_filter, dict):
        return ", ".join(f"{k} in {v}" for k, v in data_filter.items())
    doc = (getattr(data_filter, "__doc__", None) or "").strip().splitlines()
    return doc[0] if doc else getattr(data_filter, "__name__", repr(data_filter))


def _extract(paths, spec: FeatureSpec, verbose) -> np.ndarray:
    from .features import extract_corpus

    X = extract_corpus(list(paths), spec, cache=True, progress=bool(verbose))
    X = np.asarray(X)
    if X.dtype == object:
        raise SerlibError("features of different lengths cannot be stacked; give the FeatureSpec a "
                          "fixed n_frames or duration")
    return X.astype(np.float32, copy=False)


def prepare_data(model_name: str, data, *, verbose=1) -> PreparedData:
    """Index, filter, label and extract the features of ``data`` for ``model_name``.

    Explained in the chapter "Evaluating honestly".
    """
    from .models import get_model

    entry = get_model(model_name)
    df, info = _resolve_data(data, verbose)
    df, record = select_clips(df, entry)
    if len(df) == 0:
        raise DataError(f"{info.get('path') or 'the data'}: no clips left for model {model_name!r} "
                        f"after its filter and label set {list(entry.labels)}")
    info.update(record)
    info["n_clips"] = len(df)
    info["n_actors"] = int(df["actor"].nunique()) if "actor" in df.columns else None
    labels = [str(label) for label in entry.labels]
    task = _label_column(entry, df)
    lookup = {label: i for i, label in enumerate(labels)}
    y = df[task].astype(str).map(lookup).to_numpy(dtype=np.int64)
    spec = entry.features
    _log(verbose, f"{model_name}: {len(df)} clips from {info.get('path') or info['source']}"
                  f"{' (SYNTHETIC stand-in, not RAVDESS)' if info.get('synthetic') else ''}; "
                  f"features {spec.kind} ...")
    X = _extract(df["path"], spec, verbose)
    return PreparedData(model_name=entry.name, entry=entry, index=df, X=X, y=y, labels=labels,
                        spec=spec, task=task, data=info)


# ---------------------------------------------------------------------------------- splits
def default_split(df: pd.DataFrame, *, test_actors=None, val_actors=None, seed: int = 0):
    """The default speaker-independent split of :func:`train`.

    Test actors: the ones given, else the last two actors present (19 and 20 for
    RAVDESS 01-20), or the last one when fewer than six actors are present. Validation
    actors: the ones given, else two (one when fewer than eight actors are present)
    drawn gender-balanced from the rest with ``seed``. Explained in "Evaluating honestly".
    """
    from .splits import speaker_split

    if "actor" not in df.columns:
        raise DataError("the clip index has no 'actor' column; a speaker-independent split needs one")
    present = sorted({int(a) for a in df["actor"].unique()})
    if test_actors is None:
        if len(present) < 3:
            raise DataError(f"only {len(present)} actor(s) in the data ({present}); a speaker-independent "
                            "split needs at least 3 (train, validation, test) — use more actors or pass "
                            "split=serlib.splits.random_split(...)")
        n_test = 2 if len(present) >= 6 else 1
        test_actors = present[-n_test:]
    n_val = 2 if len(present) >= 8 else 1
    return speaker_split(df, test_actors=test_actors, val_actors=val_actors, n_val_actors=n_val, seed=seed)


# ---------------------------------------------------------------------------------- fitting
def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the Keras backend, and ask TensorFlow for deterministic ops.

    With the same seed, data and CPU, two trainings give the same weights and numbers.
    Explained in the chapter "Evaluating honestly".
    """
    import keras

    keras.utils.set_random_seed(int(seed))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.experimental.enable_op_determinism()
        except Exception:  # pragma: no cover - older TF
            pass


def _model_classes(model) -> int:
    shape = model.output_shape
    if isinstance(shape, list):
        shape = shape[0]
    return int(shape[-1])


def _loss_name(model) -> str:
    loss = getattr(model, "loss", None)
    if loss is None:
        return ""
    if isinstance(loss, str):
        return loss.lower()
    name = getattr(loss, "name", None) or getattr(loss, "__name__", None) or type(loss).__name__
    return str(name).lower()


def _targets(model, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Integer labels in the form the compiled loss expects."""
    outputs = _model_classes(model)
    loss = _loss_name(model)
    if outputs == 1:  # sigmoid binary output
        return y.astype(np.float32).reshape(-1, 1)
    if "sparse" in loss:
        return y.astype(np.int64)
    if "categorical" in loss or "crossentropy" in loss:
        return np.eye(n_classes, dtype=np.float32)[y]
    return y.astype(np.int64)


def probabilities(model, X: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Class probabilities ``(n, n_classes)``, also for one-unit sigmoid outputs.

    Explained in the chapter "Beyond the reports".
    """
    if len(X) == 0:
        return np.zeros((0, max(2, _model_classes(model))), dtype=np.float64)
    p = np.asarray(model.predict(X, batch_size=batch_size, verbose=0), dtype=np.float64)
    if p.ndim == 2 and p.shape[1] == 1:
        p = np.concatenate([1.0 - p, p], axis=1)
    return p


class _EpochTimer:
    """Keras callback recording seconds per epoch and the learning rate."""

    def __new__(cls, *args, **kwargs):
        import keras

        class EpochTimer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seconds, self.lr = [], []

            def on_epoch_begin(self, epoch, logs=None):
                self._t = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self._t)
                try:
                    self.lr.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))
                except Exception:
                    self.lr.append(None)

        return EpochTimer()


def _watch(monitor: str, has_val: bool) -> str:
    """The metric to watch; without validation speakers the training curve, never the test set."""
    monitor = monitor or "val_loss"
    return monitor[4:] if not has_val and monitor.startswith("val_") else monitor


def _callbacks(entry, *, has_val: bool, checkpoint_path: Path | None, verbose: int):
    """Keras callbacks from the entry's ``callbacks`` dict; returns (callbacks, monitor, weights)."""
    import keras

    cfg = dict(getattr(entry, "callbacks", None) or {})
    monitor = _watch(cfg.get("monitor"), has_val)
    mode = "max" if "acc" in monitor else "min"
    out = []
    weights = "last epoch"
    patience = cfg.get("early_stopping_patience")
    if patience:
        out.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=int(patience),
                                                 restore_best_weights=True, verbose=int(verbose > 0)))
        weights = f"best epoch by {monitor} (early stopping)"
    reduce = cfg.get("reduce_lr")
    if reduce:
        options = dict(reduce) if isinstance(reduce, dict) else {}
        lr_monitor = _watch(options.pop("monitor", None) or monitor, has_val)
        options.setdefault("factor", 0.5)
        options.setdefault("patience", max(2, int(patience or 10) // 2))
        options.setdefault("min_lr", 1e-6)
        out.append(keras.callbacks.ReduceLROnPlateau(monitor=lr_monitor, mode="max" if "acc" in lr_monitor else "min",
                                                     verbose=int(verbose > 0), **options))
    if cfg.get("checkpoint") and checkpoint_path is not None and not patience:
        out.append(keras.callbacks.ModelCheckpoint(str(checkpoint_path), monitor=monitor, mode=mode,
                                                   save_best_only=True, save_weights_only=True, verbose=0))
        weights = f"best epoch by {monitor} (checkpoint)"
    return out, monitor, weights


def fit_split(prep: PreparedData, split, *, epochs=None, batch_size=None, seed: int = 0, augment=False,
              quick=False, verbose=1, song: PreparedData | None = None) -> Run:
    """Fit ``prep``'s model on ``split.train`` (validating on ``split.val``), score ``split.test``.

    ``song`` (prepared RAVDESS song, :func:`serlib.song.song_data`) adds the sung clips of the
    training actors to training (:func:`serlib.song.song_for_split`); validation and test stay
    speech. An entry with ``speed_copies`` also trains the network on copies of the training
    clips played at those speeds (:func:`speed_copy_rows`; ``run.info["speed_copies"]``). An
    entry with ``functionals_fusion`` then fits a logistic regression on the
    :mod:`serlib.functionals` of the speech training clips (:mod:`serlib.fusion`) and scores the
    two fused as the entry says (:func:`serlib.fusion.fuse`; ``run.info["functionals_fusion"]``
    keeps the network's own score). An entry with ``ensemble=n`` trains n networks on the same
    clips, network k from ``seed + ENSEMBLE_SEED_STEP * k``, and keeps their average
    (:func:`average_networks`; ``run.info["ensemble"]`` lists each network's seed and time,
    ``run.history`` is the first network's). Returns an unsaved :class:`~serlib.runs.Run`
    (``dir`` is None).
    Explained in the chapter "Evaluating honestly".
    """
    import keras

    from .metrics import classification_report
    from .song import song_for_split

    entry = prep.entry
    split.check_disjoint(prep.index)
    if len(split.train) == 0 or len(split.test) == 0:
        raise SerlibError(f"{split.protocol}: the training or test part is empty")
    epochs_requested = int(epochs or getattr(entry, "epochs", None) or 50)
    batch = int(batch_size or getattr(entry, "batch_size", None) or 32)
    if quick:
        epochs_requested = min(epochs_requested, QUICK_EPOCHS) if epochs is None else epochs_requested
    seed_everything(seed)

    X_train, y_train = prep.X[split.train], prep.y[split.train]
    n_augmented = 0
    augment_info = None
    settings = augment_settings(augment)
    if settings:
        X_aug, y_aug, augment_info = augmented_features(prep, split, settings=settings, seed=seed,
                                                        verbose=verbose)
        augment_info = {k: v for k, v in augment_info.items() if k != "source_paths"}
        n_augmented = len(X_aug)
        if n_augmented:
            X_train = np.concatenate([X_train, X_aug])
            y_train = np.concatenate([y_train, y_aug])
    X_song, y_song, song_info = song_for_split(prep, split, song)
    if len(X_song):
        X_train = np.concatenate([X_train, X_song])
        y_train = np.concatenate([y_train, y_song])
    copies = tuple(getattr(entry, "speed_copies", ()) or ())
    X_speed, y_speed = speed_copy_rows(prep, split.train, copies, verbose)
    if len(X_speed):
        X_train = np.concatenate([X_train, X_speed])
        y_train = np.concatenate([y_train, y_speed])
    speed_info = {"factors": list(copies), "n_clips": int(len(X_speed))} if copies else None
    X_val, y_val = prep.X[split.val], prep.y[split.val]
    X_test, y_test = prep.X[split.test], prep.y[split.test]

    stats = normalization_stats(X_train) if _wants_normalization(entry) else None
    X_train, X_val, X_test = (apply_normalization(a, stats) for a in (X_train, X_val, X_test))

    steps_per_epoch = math.ceil(len(X_train) / batch)
    if quick:
        steps_per_epoch = max(1, min(QUICK_STEPS, steps_per_epoch))
    has_val = len(X_val) > 0
    n_members = int(getattr(entry, "ensemble", 1) or 1)
    members, member_info, seconds = [], [], 0.0
    for k in range(n_members):   # one network, or several from their own seeds (an ensemble)
        member_seed = seed + ENSEMBLE_SEED_STEP * k
        if n_members > 1:
            _log(verbose, f"network {k + 1} of {n_members} (seed {member_seed})")
        model, curves, fitted = _fit_network(prep, entry, X_train, y_train, X_val, y_val, epochs=epochs_requested,
                                             batch=batch, total_steps=epochs_requested * steps_per_epoch,
                                             seed=member_seed, quick=quick, has_val=has_val, verbose=verbose)
        members.append(model)
        member_info.append({"seed": int(member_seed), "training_seconds": round(fitted["seconds"], 3),
                            "epochs_run": len(curves["epoch_seconds"]),
                            **{k2: curves[k2][-1] for k2 in ("loss", "val_loss") if curves.get(k2)}})
        seconds += fitted["seconds"]
        if k == 0:  # the run's curves and settings are the first network's
            first_curves, first = curves, fitted
    model = members[0] if n_members == 1 else average_networks(members)
    curves, monitor, weights, class_weight = first_curves, first["monitor"], first["weights"], first["class_weight"]
    epochs_run = len(curves["epoch_seconds"])
    best_epoch = _best_epoch(curves, monitor)

    proba = network_proba = probabilities(model, X_test)
    fusion, fusion_info = None, None
    settings = getattr(entry, "functionals_fusion", None)
    if settings:  # a regression on the training clips' functionals, fused with the network
        from .fusion import fit_linear, fuse, speeds

        F = prepared_functionals(prep, verbose)
        F_fit, y_fit = regression_rows(prep, split.train, settings.get("speed_copies", ()), verbose)
        fusion = fit_linear(F_fit, y_fit, len(prep.labels), **settings)
        alone = classification_report(y_test, proba, prep.labels)
        F_test = F[split.test] if len(speeds(fusion)) == 1 else np.stack(   # each test clip at its scored speeds
            [(prepared_functionals(prep, verbose, speed=f, rows=split.test) if f != 1 else F)[split.test]
             for f in speeds(fusion)], axis=1)
        proba = fuse(fusion, proba, F_test)
        fusion_info = {**settings, "n_functionals": int(F.shape[1]), "n_train": int(len(split.train)),
                       "n_regression_rows": int(len(y_fit)),
                       "network_alone": {"uar": alone["uar"], "accuracy": alone["accuracy"]}}
    metrics = classification_report(y_test, proba, prep.labels)
    metrics["protocol"] = split.protocol

    info = {
        "model": prep.model_name,
        "source": getattr(entry, "source", None),
        "report": getattr(entry, "report", None),
        "family": getattr(entry, "family", None),
        "task": prep.task,
        "split": _split_record(prep.index, split),
        "seed": int(seed),
        "epochs_requested": epochs_requested,
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        "monitor": monitor,
        "weights": weights,
        "batch_size": batch,
        "class_weight": {prep.labels[k]: round(v, 4) for k, v in class_weight.items()} if class_weight else None,
        "quick": bool(quick),
        "augment": augment_info,
        "n_train": int(len(split.train)),
        "n_train_augmented": int(n_augmented),
        "song": song_info,
        "speed_copies": speed_info,
        "functionals_fusion": fusion_info,
        "n_val": int(len(split.val)),
        "n_test": int(len(split.test)),
        "params": int(model.count_params()),
        "training_seconds": round(seconds, 3),
        "seconds_per_epoch": round(float(np.mean(curves["epoch_seconds"])), 4) if curves["epoch_seconds"] else None,
        "ensemble": member_info if n_members > 1 else None,
        "data": prep.data,
        "serlib_version": _serlib_version(),
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    return Run(dir=None, model=model, history=curves, metrics=metrics, labels=list(prep.labels),
               spec=prep.spec, normalization=stats, info=info, fusion=fusion, network_test_proba=network_proba)


def _fit_network(prep, entry, X_train, y_train, X_val, y_val, *, epochs, batch, total_steps, seed, quick, has_val,
                 verbose):
    """Build ``prep``'s network from ``seed`` and fit it; returns ``(model, curves, details)``."""
    from .models import build_model

    seed_everything(seed)
    model = build_model(entry, input_shape=tuple(prep.X.shape[1:]), n_classes=len(prep.labels),
                        total_steps=total_steps)
    with tempfile.TemporaryDirectory(prefix="serlib-ckpt-") as tmp:
        checkpoint = Path(tmp) / "best.weights.h5"
        callbacks, monitor, weights = _callbacks(entry, has_val=has_val, checkpoint_path=checkpoint,
                                                 verbose=verbose)
        timer = _EpochTimer()
        if quick:
            steps = max(1, min(QUICK_STEPS, math.ceil(len(X_train) / batch)))
            X_train, y_train = _quick_cap(X_train, y_train, steps * batch, seed)
        class_weight = balanced_class_weights(y_train, len(prep.labels)) \
            if getattr(entry, "class_weight", None) == "balanced" else None
        started = time.perf_counter()
        history = model.fit(
            X_train, _targets(model, y_train, len(prep.labels)),
            validation_data=(X_val, _targets(model, y_val, len(prep.labels))) if has_val else None,
            epochs=epochs, batch_size=batch, shuffle=True, verbose=int(verbose),
            callbacks=callbacks + [timer], class_weight=class_weight,
        )
        seconds = time.perf_counter() - started
        if "checkpoint" in weights:
            if checkpoint.is_file():
                model.load_weights(checkpoint)  # the report kept its best epoch's weights
            else:  # the monitored value was never finite, so no epoch was saved
                weights = "last epoch (no checkpoint was saved)"
    curves = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    curves["epoch_seconds"] = [float(s) for s in timer.seconds]
    curves["learning_rate"] = timer.lr
    return model, curves, {"seconds": seconds, "monitor": monitor, "weights": weights, "class_weight": class_weight}


def average_networks(members):
    """One Keras model whose output is the average of the ``members``' class probabilities.

    Each member (a trained functional model taking the same input) is wrapped under its
    own name (``network1``, ``network2``, ...), so the whole ensemble saves to and loads
    from one ``.keras`` file and predicts like a single network. Explained in the chapter
    "Beyond the reports".
    """
    import keras

    if len(members) == 1:
        return members[0]
    named = [keras.Model(m.input, m.output, name=f"network{k}") for k, m in enumerate(members, start=1)]
    inputs = keras.Input(shape=tuple(members[0].input.shape[1:]), name=members[0].input.name)
    outputs = keras.layers.Average(name="average")([m(inputs) for m in named])
    return keras.Model(inputs, outputs, name=f"{members[0].name}_x{len(members)}")


def _quick_cap(X, y, n, seed):
    if len(X) <= n:
        return X, y
    order = np.sort(np.random.default_rng(seed).permutation(len(X))[:n])
    return X[order], y[order]


def balanced_class_weights(y, n_classes: int) -> dict:
    """``{class: n / (n_classes x count)}`` over the training labels ``y`` (absent classes: 1.0).

    With these weights every class contributes equally to the loss, which is what
    unweighted average recall rewards (RAVDESS has half as many neutral clips as clips of
    any other emotion). Explained in the chapter "Beyond the reports".
    """
    y = np.asarray(y, dtype=int)
    counts = np.bincount(y, minlength=n_classes)
    present = counts > 0
    weights = np.ones(n_classes)
    weights[present] = len(y) / (present.sum() * counts[present])
    return {int(k): float(w) for k, w in enumerate(weights)}


def _best_epoch(curves: dict, monitor: str):
    values = np.asarray(curves.get(monitor) or [], dtype=float)
    if not np.isfinite(values).any():  # nothing recorded, or every epoch diverged
        return None
    values = np.where(np.isfinite(values), values, -np.inf if "acc" in monitor else np.inf)
    pick = np.argmax if "acc" in monitor else np.argmin
    return int(pick(values)) + 1


def _wants_normalization(entry) -> bool:
    for name in ("normalize", "normalise", "normalization", "standardize"):
        value = getattr(entry, name, None)
        if value is not None:
            return bool(value)
    return False


def _split_record(df: pd.DataFrame, split) -> dict:
    record = {"protocol": split.protocol, "description": split.description}
    try:
        record["actors"] = split.actors(df)
    except SerlibError:
        record["actors"] = None
    record["sizes"] = split.sizes()
    if not split.speaker_independent:  # a random split cannot be described by actors alone
        record["test_paths"] = [str(p) for p in df["path"].iloc[split.test]]
    return record


def _serlib_version() -> str:
    from . import __version__

    return __version__


# ---------------------------------------------------------------------------------- augmentation
def _load_waveforms(paths, spec: FeatureSpec) -> list:
    """Training waveforms exactly as the features see them (rate, trim, offset, duration of ``spec``)."""
    from .features import load_for_spec

    return [load_for_spec(p, spec) for p in paths]


#: Default augmentation of ``train(augment=True)``: two perturbed copies of every training
#: clip (reports 001 and 004 tripled their data), each with one random op of serlib.augment.
DEFAULT_AUGMENT = {"copies": 2, "ops": ("noise", "pitch", "stretch", "shift")}


def augment_settings(augment) -> dict | None:
    """Normalise ``train``'s ``augment`` argument: False/None, True, a copy count or a dict.

    Explained in the chapter "Features and augmentation".
    """
    if augment is None or augment is False:
        return None
    if augment is True:
        return {"copies": DEFAULT_AUGMENT["copies"], "ops": list(DEFAULT_AUGMENT["ops"])}
    if isinstance(augment, int):
        if augment < 0:
            raise SerlibError(f"augment={augment}: the number of copies must be 0 or more")
        return {"copies": int(augment), "ops": list(DEFAULT_AUGMENT["ops"])} if augment else None
    if isinstance(augment, dict):
        unknown = set(augment) - {"copies", "ops", "ranges"}
        if unknown:
            raise SerlibError(f"augment: unknown keys {sorted(unknown)}; use copies, ops, ranges")
        out = {"copies": int(augment.get("copies", DEFAULT_AUGMENT["copies"])),
               "ops": list(augment.get("ops", DEFAULT_AUGMENT["ops"]))}
        if augment.get("ranges"):
            out["ranges"] = dict(augment["ranges"])
        return out
    raise SerlibError(f"augment={augment!r}: use True, a number of copies, or a dict(copies=, ops=)")


def augmented_features(prep: PreparedData, split, *, settings=None, seed: int = 0, verbose=1):
    """Features of augmented copies of the TRAINING clips only, cached on disk.

    Only the waveforms of ``split.train`` are ever loaded; they are perturbed with
    :func:`serlib.augment.augment_training_set` and turned into features with
    :func:`serlib.features.extract`, so no validation or test clip can leak into
    training. The result is cached under ``$SERLIB_CACHE_DIR/augmented`` keyed by the
    clips, the feature spec, the seed and the settings. Returns ``(X, y, record)`` where
    ``record["source_paths"]`` names the clip each copy came from. Explained in the
    chapter "Features and augmentation".
    """
    from .config import cache_subdir
    from .features import extract

    settings = settings or augment_settings(True)
    train_paths = [str(p) for p in prep.index["path"].iloc[split.train]]
    stamps = [[os.stat(p).st_size, os.stat(p).st_mtime_ns] for p in train_paths]
    key_blob = json.dumps({"paths": train_paths, "stamps": stamps, "spec": prep.spec.to_dict(), "seed": int(seed),
                           "settings": settings, "labels": prep.y[split.train].tolist()}, sort_keys=True)
    key = hashlib.sha1(key_blob.encode()).hexdigest()[:20]
    folder = cache_subdir("augmented")      # None: the cache cannot be written (warned once)
    target = folder / f"{prep.model_name}-{key}.npz" if folder is not None else None
    if target is not None and target.is_file():
        try:
            with np.load(target, allow_pickle=False) as stored:   # a cache is data: never unpickled
                X_aug, y_aug, src = stored["X"], stored["y"], stored["source"]
            return X_aug, y_aug, {**settings, "cached": True, "n": int(len(y_aug)),
                                  "source_paths": [train_paths[i] for i in src]}
        except Exception:
            target.unlink(missing_ok=True)
    _log(verbose, f"augmenting {len(train_paths)} training clips x{settings['copies']} "
                  "(validation and test clips untouched) ...")
    waveforms = _load_waveforms(train_paths, prep.spec)
    new_waves, new_labels, source = _call_augment(waveforms, prep.y[split.train], settings,
                                                  sr=prep.spec.sr, seed=seed)
    if len(new_waves) == 0:
        return (np.zeros((0, *prep.X.shape[1:]), dtype=np.float32), np.zeros(0, dtype=np.int64),
                {**settings, "n": 0, "source_paths": []})
    X_aug = np.stack([np.asarray(extract(np.asarray(w, dtype=np.float32), prep.spec), dtype=np.float32)
                      for w in new_waves])
    y_aug = np.asarray(new_labels, dtype=np.int64)
    if target is not None:
        fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp.npz", dir=folder)
        os.close(fd)
        try:
            np.savez(tmp, X=X_aug, y=y_aug, source=np.asarray(source, dtype=np.int64))
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return X_aug, y_aug, {**settings, "cached": False, "n": int(len(y_aug)),
                          "source_paths": [train_paths[i] for i in source]}


def _call_augment(waveforms, labels, settings, *, sr, seed):
    """Augmented copies (no originals) of ``waveforms``, which are training clips only."""
    from .augment import augment_training_set
    from .splits import Split

    everything = Split(train=np.arange(len(waveforms)), val=[], test=[], protocol="training clips only",
                       n_rows=len(waveforms))
    waves, labels_out, source = augment_training_set(
        waveforms, np.asarray(labels), everything, sr=sr, copies=settings["copies"], ops=tuple(settings["ops"]),
        seed=seed, include_originals=False, ranges=settings.get("ranges"))
    return list(waves), np.asarray(labels_out), np.asarray(source, dtype=np.int64)


# ---------------------------------------------------------------------------------- public API
def train(model_name: str, data, *, out_dir=None, split=None, val_actors=None, test_actors=None, epochs=None,
          batch_size=None, seed: int = 0, augment: bool = False, quick: bool | None = None, verbose=1,
          song=None) -> Run:
    """Train ``model_name`` on ``data`` speaker-independently, score it, save a run folder.

    ``data``: a RAVDESS folder, a :class:`~serlib.datasets.corpus.Corpus`, or an index
    DataFrame. ``split``: a :class:`~serlib.splits.Split` over the *filtered* index
    (the model's clips); by default :func:`default_split` with ``test_actors`` /
    ``val_actors``. ``epochs``/``batch_size`` override the report's values. ``augment``
    adds perturbed copies of the training clips only. ``quick`` (default: the
    ``SERLIB_QUICK`` setting) trains for at most two short epochs, for smoke tests.
    ``verbose``: 0 silent, 1 Keras progress bars, 2 one line per epoch. ``song``: RAVDESS
    song clips of the training actors as extra training data: a folder, ``False`` for none,
    or ``None`` for the model's default (see :func:`serlib.song.song_data`).

    ``out_dir`` must not exist or be empty (nothing is overwritten); default
    ``$SERLIB_CACHE_DIR/runs/<model>-<date>-<time>``. Returns the saved
    :class:`~serlib.runs.Run`. Explained in the chapter "Evaluating honestly".
    """
    from .config import cache_dir, quick_mode
    from .song import song_data

    quick = quick_mode() if quick is None else bool(quick)
    if out_dir is not None:
        check_out_dir(out_dir)  # refuse early, before any expensive work
    prep = prepare_data(model_name, data, verbose=verbose)
    if split is None:
        split = default_split(prep.index, test_actors=test_actors, val_actors=val_actors, seed=seed)
    elif test_actors is not None or val_actors is not None:
        raise SerlibError("pass either split= or test_actors/val_actors, not both")
    _log(verbose, split.description)
    song_prep = song_data(model_name, song, speech=prep, verbose=verbose)
    run = fit_split(prep, split, epochs=epochs, batch_size=batch_size, seed=seed, augment=augment,
                    quick=quick, verbose=verbose, song=song_prep)
    if run.info["song"]:
        _log(verbose, f"also trained on {run.info['song']['n_clips']} song clips of the training actors "
                      f"from {run.info['song']['path']}")
    if out_dir is None:
        root = cache_dir() / "runs"
        root.mkdir(parents=True, exist_ok=True)
        out_dir = root / f"{model_name}-{time.strftime('%Y%m%d-%H%M%S')}-s{seed}"
        while Path(out_dir).exists():
            out_dir = Path(str(out_dir) + "x")
    save_run(run, out_dir)
    m = run.metrics
    _log(verbose, f"test ({split.protocol}): accuracy {m['accuracy']:.3f}, UAR {m['uar']:.3f}, "
                  f"macro-F1 {m['f1_macro']:.3f} on {m['n']} clips; run saved in {run.dir}")
    return run


def cross_validate(model_name: str, data, *, k: int = 5, seed: int = 0, epochs=None, batch_size=None,
                   augment: bool = False, quick: bool | None = None, folds=None, on_fold=None,
                   verbose=0, song=None) -> dict:
    """Actor-wise k-fold cross-validation (:func:`serlib.splits.actor_kfold`).

    Features are extracted once; each fold trains a fresh model (seed ``seed + fold``)
    and scores its test actors. ``folds`` restricts to some fold numbers (0-based);
    ``on_fold(report)`` is called after each fold (the benchmark saves there). Returns
    ``{"model", "protocol", "folds": [report, ...], "summary": summarize_folds(...)}``,
    each report holding the metrics plus fold, actors, epochs run and seconds. ``song`` as
    in :func:`train` (each fold adds the song clips of its own training actors only).
    Explained in the chapters "Evaluating honestly" and "The comparison".
    """
    from .config import quick_mode
    from .song import song_data
    from .splits import actor_kfold

    quick = quick_mode() if quick is None else bool(quick)
    prep = prepare_data(model_name, data, verbose=verbose)
    splits = actor_kfold(prep.index, k=k, seed=seed, n_val_actors=kfold_val_actors(prep.index, k))
    return _run_protocol(prep, splits, f"speaker-independent actor {k}-fold", folds=folds, on_fold=on_fold,
                         seed=seed, epochs=epochs, batch_size=batch_size, augment=augment, quick=quick,
                         verbose=verbose, song=song_data(model_name, song, speech=prep, verbose=verbose))


def random_split_protocol(model_name: str, data, *, repeats: int = 1, fractions=None, seed: int = 0,
                          epochs=None, batch_size=None, augment: bool = False, quick: bool | None = None,
                          folds=None, on_fold=None, verbose=0) -> dict:
    """The report's own protocol: clips shuffled regardless of speaker (inflated numbers).

    ``fractions`` default to the model's report (:data:`REPORT_SPLITS`, or the entry's
    ``random_split`` attribute). ``repeats`` random splits (seeds ``seed``,
    ``seed + 1``, ...) give a mean ± std comparable to :func:`cross_validate`. Same
    return value as :func:`cross_validate`. Explained in the chapter "Evaluating honestly".
    """
    from .config import quick_mode
    from .splits import random_split

    quick = quick_mode() if quick is None else bool(quick)
    prep = prepare_data(model_name, data, verbose=verbose)
    fractions = fractions or report_fractions(prep.entry)
    splits = [random_split(prep.index, fractions=fractions, stratify=prep.task, seed=seed + i)
              for i in range(int(repeats))]
    name = splits[0].protocol
    return _run_protocol(prep, splits, name, folds=folds, on_fold=on_fold, seed=seed, epochs=epochs,
                         batch_size=batch_size, augment=augment, quick=quick, verbose=verbose)


def kfold_val_actors(df: pd.DataFrame, k: int) -> int:
    """Validation actors per fold: two, or fewer when the actors are too few (stand-in corpus).

    Explained in the chapter "Evaluating honestly".
    """
    n = int(df["actor"].nunique())
    largest_fold = -(-n // int(k))
    return max(0, min(2, n - largest_fold - 1))


def report_fractions(entry) -> tuple:
    """The (train, val, test) fractions of the random split the model's report used.

    See :data:`REPORT_SPLITS`. Explained in the chapter "Evaluating honestly".
    """
    own = getattr(entry, "random_split", None)
    if own:
        return tuple(own)
    report = str(getattr(entry, "report", "") or "")[:3]
    if report in REPORT_SPLITS:
        return REPORT_SPLITS[report]
    name = str(getattr(entry, "name", ""))
    for key, value in REPORT_SPLITS.items():
        if key in name:
            return value
    return DEFAULT_RANDOM_FRACTIONS


def _run_protocol(prep, splits, name, *, folds, on_fold, seed, epochs, batch_size, augment, quick, verbose,
                  song=None):
    from .metrics import summarize_folds

    wanted = set(range(len(splits))) if folds is None else {int(f) for f in folds}
    reports = []
    for i, split in enumerate(splits):
        if i not in wanted:
            continue
        _log(verbose, f"{prep.model_name}: {split.description}")
        run = fit_split(prep, split, epochs=epochs, batch_size=batch_size, seed=seed + i, augment=augment,
                        quick=quick, verbose=2 if int(verbose) >= 2 else 0, song=song)
        report = dict(run.metrics)
        report.update(fold=i, n_folds=len(splits), protocol=split.protocol, seed=seed + i,
                      actors=run.info["split"]["actors"], epochs_run=run.info["epochs_run"],
                      best_epoch=run.info["best_epoch"], params=run.info["params"],
                      training_seconds=run.info["training_seconds"],
                      seconds_per_epoch=run.info["seconds_per_epoch"],
                      n_train=run.info["n_train"], n_val=run.info["n_val"], song=run.info["song"])
        reports.append(report)
        _log(verbose, f"  fold {i + 1}/{len(splits)}: accuracy {report['accuracy']:.3f}  UAR {report['uar']:.3f}")
        if on_fold is not None:
            on_fold(report)
        _free(run)
    summary = summarize_folds(reports) if reports else None
    return {"model": prep.model_name, "protocol": name, "folds": reports, "summary": summary,
            "data": prep.data}


def _free(run) -> None:
    import keras

    run.model = None
    keras.backend.clear_session()


def evaluate_run(run_dir, data_dir, *, verbose: bool = False) -> dict:
    """Score a saved run on every clip of ``data_dir`` that its model can label.

    Clips outside the run's label set (e.g. disgust and surprised for a six-emotion
    model) or outside its data filter (e.g. the other gender for a gender-specific model)
    are dropped and counted (``dropped``, ``dropped_labels``). Returns the
    :func:`serlib.metrics.classification_report` dict (``accuracy, uar, f1_macro, n,
    labels, confusion``, ...) plus ``data`` and ``dropped``. Explained in the chapter
    "Beyond the reports".
    """
    run = run_dir if isinstance(run_dir, Run) else load_run(run_dir)
    df, info = _resolve_data(data_dir, verbose)
    entry = _RunEntry(run)
    df, record = select_clips(df, entry)
    dropped = record["n_in"] - record["n_kept"]
    if len(df) == 0:
        raise DataError(f"{data_dir}: none of its {record['n_in']} clips has a label this run knows "
                        f"({', '.join(run.labels)})")
    X = _extract(df["path"], run.spec, verbose)
    F = None
    if run.fusion is not None:
        from .functionals import functionals

        F = functionals(df["path"], progress=bool(verbose), speeds=run.functional_speeds)
    proba = run.predict_proba(X, functionals=F)
    from .metrics import classification_report

    lookup = {label: i for i, label in enumerate(run.labels)}
    y = df[entry.task].astype(str).map(lookup).to_numpy(dtype=np.int64)
    metrics = classification_report(y, proba, run.labels)
    metrics["data"] = {"path": info.get("path"), "source": info.get("source"),
                       "synthetic": info.get("synthetic")}
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
        print(f"evaluate: dropped {dropped} of {record['n_in']} clips: {'; '.join(why)}", file=sys.stderr)
    return metrics


class _RunEntry:
    """The parts of a registry entry :func:`select_clips` needs, rebuilt from a run."""

    def __init__(self, run: Run):
        self.name = run.info.get("model", "run")
        self.labels = list(run.labels)
        self.task = run.info.get("task") or "emotion"
        self.data_filter = None
        try:
            from .models import get_model

            entry = get_model(self.name)
            if [str(label) for label in entry.labels] == self.labels:
                self.data_filter = getattr(entry, "data_filter", None)
        except Exception:  # model renamed/removed since training: score on labels alone
            pass
