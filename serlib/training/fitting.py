"""Fitting one model on one split: seeding, callbacks, ensembles, fusion, the unsaved run.

:func:`fit_split` is the step every protocol repeats (:mod:`serlib.training.protocols`):
augment and normalise the training clips, build and fit the network (or an ensemble of
networks from their own seeds), fit a regression on clip functionals when the model fuses
one, and score the test clips. Explained in the chapter "Evaluating honestly".
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..errors import SerlibError
from ..fusion import fit_linear, fuse, speeds
from ..log import get_logger, info
from ..metrics import classification_report
from ..recipes import Recipe, resolve
from ..runs import Run, apply_normalization, normalization_stats, probabilities
from ..song import song_for_split
from .augmentation import augment_settings, augmented_features
from .data import PreparedData, prepared_functionals, regression_rows, speed_copy_rows

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
logger = get_logger(__name__)

#: Epochs and steps per epoch when ``quick=True`` (smoke tests, SERLIB_QUICK=1).
QUICK_EPOCHS = 2
QUICK_STEPS = 8

#: A recipe with ``ensemble=n`` trains network k (0 .. n-1) from ``seed + ENSEMBLE_SEED_STEP * k``.
ENSEMBLE_SEED_STEP = 100


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


def _callbacks(recipe: Recipe, *, has_val: bool, checkpoint_path: Path | None, verbose: int):
    """Keras callbacks from the recipe's ``callbacks`` dict; returns (callbacks, monitor, weights)."""
    import keras

    cfg = dict(recipe.callbacks or {})
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


def recipe_of(prep: PreparedData, recipe=None) -> Recipe:
    """The recipe ``prep``'s model trains by: ``recipe`` when it is a
    :class:`~serlib.recipes.Recipe`; the model's own (:func:`serlib.models.get_recipe`)
    otherwise, changed by ``recipe`` when that is a dict of settings or a list of
    ``"key=value"`` strings. Explained in the chapter "The comparison".
    """
    return resolve(prep.entry, recipe)


def fit_split(prep: PreparedData, split, *, recipe=None, epochs=None, batch_size=None, seed: int = 0,
              augment=None, quick=False, verbose=1, song: PreparedData | None = None) -> Run:
    """Fit ``prep``'s model on ``split.train`` (validating on ``split.val``), score ``split.test``.

    How it trains is ``recipe`` (a :class:`~serlib.recipes.Recipe`, or changes to the
    model's own recipe as a dict or ``"key=value"`` strings; default the model's own,
    :func:`recipe_of`); ``epochs``, ``batch_size`` and ``augment`` (when not None) change
    it for this fit. The recipe used is saved in ``run.info["recipe"]``. ``song`` (prepared RAVDESS song, :func:`serlib.song.song_data`) adds the sung clips of the
    training actors to training (:func:`serlib.song.song_for_split`); validation and test stay
    speech. A recipe with ``speed_copies`` also trains the network on copies of the training
    clips played at those speeds (:func:`speed_copy_rows`; ``run.info["speed_copies"]``). A
    recipe with ``functionals_fusion`` then fits a logistic regression on the
    :mod:`serlib.functionals` of the speech training clips (:mod:`serlib.fusion`) and scores the
    two fused as the recipe says (:func:`serlib.fusion.fuse`; ``run.info["functionals_fusion"]``
    keeps the network's own score). A recipe with ``ensemble=n`` trains n networks on the same
    clips, network k from ``seed + ENSEMBLE_SEED_STEP * k``, and keeps their average
    (:func:`average_networks`; ``run.info["ensemble"]`` lists each network's seed and time,
    ``run.history`` is the first network's). Returns an unsaved :class:`~serlib.runs.Run`
    (``dir`` is None).

    A split with no test clips (a final model, :func:`serlib.splits.final_split`) trains the
    same way but scores nothing: ``run.metrics`` and ``run.network_test_proba`` are None,
    ``run.info["n_test"]`` is 0 and ``run.info["split"]["note"]`` says why.
    Explained in the chapter "Evaluating honestly".
    """
    import keras

    entry = prep.entry
    recipe = recipe_of(prep, recipe)
    changes = {k: v for k, v in (("epochs", epochs), ("batch_size", batch_size), ("augment", augment))
               if v is not None and (v or k == "augment")}
    recipe = recipe.override(**{k: int(v) if k != "augment" else v for k, v in changes.items()})
    split.check_disjoint(prep.index)
    if len(split.train) == 0:
        raise SerlibError(f"{split.protocol}: the training part is empty")
    scored = len(split.test) > 0   # a final model (every speaker trains) has nothing to score
    epochs_requested = recipe.epochs
    batch = recipe.batch_size
    if quick:
        epochs_requested = min(epochs_requested, QUICK_EPOCHS) if epochs is None else epochs_requested
    seed_everything(seed)

    X_train, y_train = prep.X[split.train], prep.y[split.train]
    n_augmented = 0
    augment_info = None
    settings = augment_settings(recipe.augment)
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
    copies = recipe.speed_copies
    X_speed, y_speed = speed_copy_rows(prep, split.train, copies, verbose)
    if len(X_speed):
        X_train = np.concatenate([X_train, X_speed])
        y_train = np.concatenate([y_train, y_speed])
    speed_info = {"factors": list(copies), "n_clips": int(len(X_speed))} if copies else None
    X_val, y_val = prep.X[split.val], prep.y[split.val]
    X_test, y_test = prep.X[split.test], prep.y[split.test]

    stats = normalization_stats(X_train) if recipe.normalize else None
    X_train, X_val, X_test = (apply_normalization(a, stats) for a in (X_train, X_val, X_test))

    steps_per_epoch = math.ceil(len(X_train) / batch)
    if quick:
        steps_per_epoch = max(1, min(QUICK_STEPS, steps_per_epoch))
    has_val = len(X_val) > 0
    n_members = recipe.ensemble
    members, member_info, seconds = [], [], 0.0
    for k in range(n_members):   # one network, or several from their own seeds (an ensemble)
        member_seed = seed + ENSEMBLE_SEED_STEP * k
        if n_members > 1:
            info(logger, verbose, f"network {k + 1} of {n_members} (seed {member_seed})")
        model, curves, fitted = _fit_network(prep, recipe, X_train, y_train, X_val, y_val, epochs=epochs_requested,
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

    proba = network_proba = probabilities(model, X_test) if scored else None
    fusion, fusion_info = None, None
    settings = recipe.functionals_fusion
    if settings:  # a regression on the training clips' functionals, fused with the network
        F = prepared_functionals(prep, verbose)
        F_fit, y_fit = regression_rows(prep, split.train, settings.get("speed_copies", ()), verbose)
        fusion = fit_linear(F_fit, y_fit, len(prep.labels), **settings)
        fusion_info = {**settings, "n_functionals": int(F.shape[1]), "n_train": int(len(split.train)),
                       "n_regression_rows": int(len(y_fit)), "network_alone": None}
        if scored:
            alone = classification_report(y_test, proba, prep.labels)
            F_test = F[split.test] if len(speeds(fusion)) == 1 else np.stack(   # each test clip at its scored speeds
                [(prepared_functionals(prep, verbose, speed=f, rows=split.test) if f != 1 else F)[split.test]
                 for f in speeds(fusion)], axis=1)
            proba = fuse(fusion, proba, F_test)
            fusion_info["network_alone"] = {"uar": alone["uar"], "accuracy": alone["accuracy"]}
    metrics = None
    if scored:
        metrics = classification_report(y_test, proba, prep.labels)
        metrics["protocol"] = split.protocol
    split_record = _split_record(prep.index, split)
    if not scored:
        split_record["note"] = "final model: no test speakers, so no test scores"

    record = {
        "model": prep.model_name,
        "source": getattr(entry, "source", None),
        "report": getattr(entry, "report", None),
        "family": getattr(entry, "family", None),
        "task": prep.task,
        "split": split_record,
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
        "recipe": recipe.to_dict(),
        "n_val": int(len(split.val)),
        "n_test": int(len(split.test)),
        "params": int(model.count_params()),
        "training_seconds": round(seconds, 3),
        "seconds_per_epoch": round(float(np.mean(curves["epoch_seconds"])), 4) if curves["epoch_seconds"] else None,
        "ensemble": member_info if n_members > 1 else None,
        "data": prep.data,
        "pipeline": prep.pipeline.to_dict() if getattr(prep, "pipeline", None) is not None else None,
        "serlib_version": __version__,
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    return Run(dir=None, model=model, history=curves, metrics=metrics, labels=list(prep.labels),
               spec=prep.spec, normalization=stats, info=record, fusion=fusion, network_test_proba=network_proba,
               test_proba=proba)


def _fit_network(prep, recipe, X_train, y_train, X_val, y_val, *, epochs, batch, total_steps, seed, quick, has_val,
                 verbose):
    """Build ``prep``'s network from ``seed`` and fit it by ``recipe``; returns ``(model, curves, details)``."""
    from ..models import build_model

    seed_everything(seed)
    model = build_model(prep.entry, input_shape=tuple(prep.X.shape[1:]), n_classes=len(prep.labels),
                        total_steps=total_steps, recipe=recipe)
    with tempfile.TemporaryDirectory(prefix="serlib-ckpt-") as tmp:
        checkpoint = Path(tmp) / "best.weights.h5"
        callbacks, monitor, weights = _callbacks(recipe, has_val=has_val, checkpoint_path=checkpoint,
                                                 verbose=verbose)
        timer = _EpochTimer()
        if quick:
            steps = max(1, min(QUICK_STEPS, math.ceil(len(X_train) / batch)))
            X_train, y_train = _quick_cap(X_train, y_train, steps * batch, seed)
        class_weight = balanced_class_weights(y_train, len(prep.labels)) \
            if recipe.class_weight == "balanced" else None
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


def _split_record(df: pd.DataFrame, split) -> dict:
    record = {"protocol": split.protocol, "description": split.description}
    try:
        record["actors"] = split.actors(df)
    except SerlibError:
        record["actors"] = None
    record["sizes"] = split.sizes()
    if not split.speaker_independent and len(split.test):  # a random split cannot be described by actors alone
        record["test_paths"] = [str(p) for p in df["path"].iloc[split.test]]
    return record
