"""Augmented copies of the training clips, and their cache on disk.

Only the waveforms of a split's training clips are ever loaded, perturbed
(:func:`serlib.augment.augment_training_set`) and described as the model's features say,
so no validation or test clip can leak into training. Explained in the chapter "Features
and augmentation".
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import SerlibError
from ..features import FeatureSpec
from ..log import get_logger, info
from .data import PreparedData

logger = get_logger(__name__)


def _load_waveforms(paths, spec: FeatureSpec) -> list:
    """Training waveforms exactly as the features see them (rate, trim, offset, duration of ``spec``)."""
    from ..features import load_for_spec

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
    from ..config import cache_subdir
    from ..features import extract

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
    info(logger, verbose, f"augmenting {len(train_paths)} training clips x{settings['copies']} "
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
    from ..augment import augment_training_set
    from ..splits import Split

    everything = Split(train=np.arange(len(waveforms)), val=[], test=[], protocol="training clips only",
                       n_rows=len(waveforms))
    waves, labels_out, source = augment_training_set(
        waveforms, np.asarray(labels), everything, sr=sr, copies=settings["copies"], ops=tuple(settings["ops"]),
        seed=seed, include_originals=False, ranges=settings.get("ranges"))
    return list(waves), np.asarray(labels_out), np.asarray(source, dtype=np.int64)

