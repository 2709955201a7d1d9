"""Augmented copies of the training clips, and their cache on disk.

Only the waveforms of a split's training clips are ever loaded, perturbed
(:func:`serlib.augment.augment_training_set`) and described as the model's features say,
so no validation or test clip can leak into training. The copies' features are cached like
the network features (:mod:`serlib.feature_cache`): keyed by the content of the training
clips, written in one atomic step with a BLAKE2b checksum trailer (:mod:`serlib.storage`),
checked before anything is decoded, never unpickled. Explained in the chapter "Features
and augmentation".
"""
from __future__ import annotations

import hashlib
import io
import json
import math
from pathlib import Path

import numpy as np

from ..augment import augment_training_set
from ..config import cache_subdir, warn_once, warn_unwritable_cache
from ..errors import SerlibError
from ..features import FeatureSpec, extract, load_for_spec
from ..log import get_logger, info
from ..splits import Split
from ..storage import read_sealed, atomic_write, file_blake2b, seal
from .data import PreparedData

logger = get_logger(__name__)


def _load_waveforms(paths, spec: FeatureSpec) -> list:
    """Training waveforms exactly as the features see them (rate, trim, offset, duration of ``spec``)."""
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
    content of the training clips (BLAKE2b), their labels, the feature spec, the seed and
    the settings (:func:`load_copies`, :func:`save_copies`). Returns ``(X, y, record)`` where
    ``record["source_paths"]`` names the clip each copy came from. Explained in the
    chapter "Features and augmentation".
    """
    settings = settings or augment_settings(True)
    train_paths = [str(p) for p in prep.index["path"].iloc[split.train]]
    key_blob = json.dumps({"clips": [file_blake2b(p) for p in train_paths], "spec": prep.spec.to_dict(),
                           "seed": int(seed), "settings": settings, "labels": prep.y[split.train].tolist()},
                          sort_keys=True)
    key = hashlib.blake2b(key_blob.encode(), digest_size=16).hexdigest()
    folder = cache_subdir("augmented")      # None: the cache cannot be written (warned once)
    target = folder / f"{prep.model_name}-{key}.npz" if folder is not None else None
    if target is not None:
        stored = load_copies(target, n_copies=settings["copies"] * len(train_paths), shape=prep.X.shape[1:],
                             n_labels=len(prep.labels), n_sources=len(train_paths))
        if stored is not None:
            X_aug, y_aug, src = stored
            return X_aug, y_aug, {**settings, "cached": True, "n": int(len(y_aug)),
                                  "source_paths": [train_paths[i] for i in src]}
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
        save_copies(target, X_aug, y_aug, source)
    return X_aug, y_aug, {**settings, "cached": False, "n": int(len(y_aug)),
                          "source_paths": [train_paths[i] for i in source]}


#: Bytes an ``.npz`` of three arrays may take beyond their data (zip and ``.npy`` headers).
_NPZ_OVERHEAD = 64 * 1024


def save_copies(target: Path, X: np.ndarray, y: np.ndarray, source) -> bool:
    """Store augmented copies (features ``X``, labels ``y``, the training clip each came from)
    at ``target`` in one atomic step (:func:`serlib.storage.atomic_write`), an ``.npz``
    followed by its BLAKE2b-256 trailer (:func:`serlib.storage.seal`). False, after one
    warning line, when the disk refuses. Explained in the chapter "Features and augmentation".
    """
    buffer = io.BytesIO()
    np.savez(buffer, X=np.ascontiguousarray(X, dtype=np.float32), y=np.asarray(y, dtype=np.int64),
             source=np.asarray(source, dtype=np.int64))
    blob = seal(buffer.getvalue())
    try:
        atomic_write(target, lambda fh: fh.write(blob))
        return True
    except OSError as error:
        warn_unwritable_cache(target.parent, error)
        return False


def load_copies(target: Path, *, n_copies: int, shape: tuple, n_labels: int, n_sources: int):
    """``(X, y, source)`` stored by :func:`save_copies` at ``target``, or None when there is
    none or it fails a check: its size (never read past what ``n_copies`` copies of features
    of ``shape`` can take), its checksum, its arrays (read with ``allow_pickle=False``),
    their shapes, finite float32 features, labels below ``n_labels`` and sources below
    ``n_sources``. A file that fails is deleted after one warning line naming it, and the
    copies are made again. Explained in the chapter "Features and augmentation".
    """
    payload, problem = read_sealed(target, n_copies * (4 * math.prod(shape) + 16) + _NPZ_OVERHEAD)
    if payload is None:
        return _rejected(target, problem) if problem else None
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as stored:   # a cache is data: never unpickled
            X, y, source = stored["X"], stored["y"], stored["source"]
    except (OSError, ValueError, KeyError, EOFError):
        return _rejected(target, "is not a readable set of arrays")
    n = len(y)
    if (X.dtype != np.float32 or tuple(X.shape) != (n, *tuple(shape)) or source.shape != (n,) or y.ndim != 1
            or n > n_copies or not np.isfinite(X).all() or y.dtype.kind != "i" or source.dtype.kind != "i"
            or (n and (y.min() < 0 or y.max() >= n_labels or source.min() < 0 or source.max() >= n_sources))):
        return _rejected(target, "does not hold the copies it should (shapes, labels or sources)")
    return X, y, source


def _rejected(path: Path, reason: str) -> None:
    warn_once(("augmented cache entry", str(path)), f"{path}: augmented-copies cache entry {reason}; "
              "deleted it, the copies are made again")
    try:
        Path(path).unlink(missing_ok=True)
    except OSError:      # an unreadable file in an unwritable folder: it is simply not used
        pass
    return None


def _call_augment(waveforms, labels, settings, *, sr, seed):
    """Augmented copies (no originals) of ``waveforms``, which are training clips only."""
    everything = Split(train=np.arange(len(waveforms)), val=[], test=[], protocol="training clips only",
                       n_rows=len(waveforms))
    waves, labels_out, source = augment_training_set(
        waveforms, np.asarray(labels), everything, sr=sr, copies=settings["copies"], ops=tuple(settings["ops"]),
        seed=seed, include_originals=False, ranges=settings.get("ranges"))
    return list(waves), np.asarray(labels_out), np.asarray(source, dtype=np.int64)

