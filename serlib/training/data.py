"""The data side of training: which clips a model is for, their labels and features.

:func:`prepare_data` turns a folder, a :class:`~serlib.datasets.corpus.Corpus` or an index
DataFrame into a :class:`PreparedData` (the clips a model is for, by its ``data_filter``
and label set, with their features and integer labels), ready for any split. Every view
of a clip the model reads (its features, the features of its speed-perturbed training
copies, the clip functionals of a fused model at each speed) comes from one
:class:`~serlib.pipeline.Pipeline`: each clip is decoded once and every view cached on
disk. Speeds asked for later (benchmarks) are computed on first use and kept on it
(:func:`prepared_functionals`, :func:`prepared_speed_features`).
:func:`song_data` prepares RAVDESS song clips as extra training data. Explained in the
chapter "Evaluating honestly".
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..datasets.corpus import load_corpus
from ..errors import DataError, SerlibError
from ..features import FeatureSpec
from ..log import get_logger, info
from ..pipeline import Pipeline
from ..song import find_song_folder

logger = get_logger(__name__)


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
    #: The :class:`~serlib.pipeline.Pipeline` that described the clips: :func:`prepare_data`
    #: fills every view the model's recipe reads at once (each clip decoded once, every view
    #: cached), so the tables above are complete from the start.
    pipeline: Pipeline | None = field(default=None, repr=False)


def prepared_functionals(prep: PreparedData, verbose=1, speed: float = 1.0, rows=None) -> np.ndarray:
    """The utterance functionals of every clip of ``prep`` (computed once, then kept on it).

    With ``speed`` other than 1, those of each clip's speed-perturbed copy
    (:func:`serlib.augment.speed_perturb`), for the regression's training rows (and its test
    rows when it scores speed copies, :func:`serlib.fusion.speeds`); ``rows`` limits that
    work to the clips at those positions (the others stay NaN until asked for), so a single
    run perturbs only the clips it needs. Explained in the chapter "Beyond the reports".
    """
    from ..functionals import functionals

    if speed != 1:
        wanted = np.arange(len(prep.index)) if rows is None else np.asarray(rows, dtype=int)
        table = prep.perturbed_functionals.get(speed)
        missing = wanted if table is None else wanted[np.isnan(table[wanted]).all(axis=1)]
        if len(missing):
            info(logger, verbose, f"functionals of {len(missing)} clips played at speed {speed:g} ...")
            computed = _levelled(prep, "functionals", speed, missing, verbose)
            if computed is None:
                computed = functionals(prep.index["path"].iloc[missing], progress=bool(verbose), speed=speed)
            if table is None:
                table = np.full((len(prep.index), computed.shape[1]), np.nan, dtype=computed.dtype)
                prep.perturbed_functionals[speed] = table
            table[missing] = computed
        return table
    if prep.functionals is None:
        info(logger, verbose, f"functionals of {len(prep.index)} clips (serlib.functionals) ...")
        prep.functionals = _levelled(prep, "functionals", 1.0, np.arange(len(prep.index)), verbose)
        if prep.functionals is None:
            prep.functionals = functionals(prep.index["path"], progress=bool(verbose))
    return prep.functionals


def _levelled(prep: PreparedData, kind: str, speed: float, rows, verbose) -> np.ndarray | None:
    """A view computed through ``prep``'s pipeline when that pipeline scales the level (so a
    table filled late is described as the rest); None when it does not."""
    pipeline = prep.pipeline
    if pipeline is None or pipeline.level_db is None:
        return None
    paths = prep.index["path"].iloc[np.asarray(rows, dtype=int)]
    if kind == "functionals":
        views = pipeline.replace(feature_speeds=(1.0,), functional_speeds=(speed,)).transform(
            paths, progress=bool(verbose))
        return views.functionals[speed]
    views = pipeline.replace(feature_speeds=(1.0, speed), functional_speeds=()).transform(paths, progress=bool(verbose))
    return views.features[speed]


def prepared_speed_features(prep: PreparedData, speed: float, rows, verbose=1) -> np.ndarray:
    """The network's input features of speed-perturbed copies of the clips at ``rows``.

    Each clip is played ``speed`` times faster (:func:`serlib.augment.speed_perturb`) and
    described as ``prep.spec`` says (:func:`serlib.features.extract_file`). Computed once
    per clip and kept on ``prep``; returns the full ``(n, *shape)`` table, whose rows not
    asked for yet are NaN, so a single run never perturbs its validation or test clips.
    Explained in the chapter "Beyond the reports".
    """
    from tqdm import tqdm

    from ..features import extract_file

    wanted = np.asarray(rows, dtype=int)
    table = prep.perturbed_features.get(speed)
    if table is None:
        table = np.full(prep.X.shape, np.nan, dtype=np.float32)
        prep.perturbed_features[speed] = table
    missing = wanted[np.isnan(table[wanted].reshape(len(wanted), -1)).all(axis=1)]
    if len(missing):
        paths = prep.index["path"].iloc[missing]
        levelled = _levelled(prep, "features", speed, missing, verbose)
        if levelled is not None:
            table[missing] = levelled
        else:
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


def _resolve_data(data, verbose=1) -> tuple[pd.DataFrame, dict]:
    """(index DataFrame, data description) from a folder, a Corpus or a DataFrame."""
    if isinstance(data, pd.DataFrame):
        df = data
        record = {"path": df.attrs.get("root"), "source": df.attrs.get("source", "dataframe"),
                  "synthetic": bool(df.attrs.get("synthetic", False))}
    elif hasattr(data, "index") and isinstance(getattr(data, "index"), pd.DataFrame):
        df = data.index
        record = {"path": str(getattr(data, "root", "") or "") or None,
                  "source": str(getattr(data, "source", "corpus")),
                  "synthetic": bool(getattr(data, "synthetic", False))}
    elif isinstance(data, (str, os.PathLike)):
        folder = Path(data).expanduser()
        if not folder.is_dir():
            raise DataError(f"{folder}: no such folder; pass the folder that holds Actor_01/ … "
                            "(or run `serlib download`)")
        return _resolve_data(load_corpus(folder, verbose=bool(verbose)), verbose)
    else:
        raise SerlibError(f"data={type(data).__name__}: pass a folder of RAVDESS clips, a Corpus "
                          "(serlib.datasets.load_corpus) or an index DataFrame")
    if len(df) == 0:
        raise DataError(f"{record.get('path') or 'the index'}: holds no clips")
    if "path" not in df.columns:
        raise DataError("the clip index has no 'path' column; use serlib.datasets.index_ravdess(folder)")
    return df, record


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


def prepare_data(model_name: str, data, *, verbose=1, recipe=None) -> PreparedData:
    """Index, filter, label and extract the features of ``data`` for ``model_name``.

    Every view of a clip that the model's recipe reads (``recipe``: a
    :class:`~serlib.recipes.Recipe` or changes to the model's own, as for
    :func:`serlib.training.fit_split`) is described at once, from one decode per clip.
    Explained in the chapter "Evaluating honestly".
    """
    from ..recipes import resolve

    from ..models import get_model

    entry = get_model(model_name)
    df, record = _resolve_data(data, verbose)
    df, kept = select_clips(df, entry)
    if len(df) == 0:
        raise DataError(f"{record.get('path') or 'the data'}: no clips left for model {model_name!r} "
                        f"after its filter and label set {list(entry.labels)}")
    record.update(kept)
    record["n_clips"] = len(df)
    record["n_actors"] = int(df["actor"].nunique()) if "actor" in df.columns else None
    labels = [str(label) for label in entry.labels]
    task = _label_column(entry, df)
    lookup = {label: i for i, label in enumerate(labels)}
    y = df[task].astype(str).map(lookup).to_numpy(dtype=np.int64)
    spec = entry.features
    info(logger, verbose, f"{model_name}: {len(df)} clips from {record.get('path') or record['source']}"
                          f"{' (SYNTHETIC stand-in, not RAVDESS)' if record.get('synthetic') else ''}; "
                          f"features {spec.kind} ...")
    pipeline = Pipeline.for_model(entry, recipe=resolve(entry, recipe))
    views = pipeline.transform(df["path"], progress=bool(verbose), verbose=verbose)
    return PreparedData(model_name=entry.name, entry=entry, index=df, X=views.features[1.0], y=y, labels=labels,
                        spec=spec, task=task, data=record, pipeline=pipeline,
                        functionals=views.functionals.get(1.0),
                        perturbed_functionals={s: t for s, t in views.functionals.items() if s != 1.0},
                        perturbed_features={s: t for s, t in views.features.items() if s != 1.0})



def song_data(model_name: str, song=None, *, speech: PreparedData | None = None, verbose=1) -> PreparedData | None:
    """The song clips prepared for ``model_name`` (a :class:`PreparedData`), or ``None``.

    ``song``: ``False`` for none; a folder or corpus to use; ``None`` for the entry's
    default: models registered with ``train_with_song`` look for a folder with
    :func:`serlib.song.find_song_folder` (next to ``speech``, the speech data's
    :class:`PreparedData`), others use none. Never used with the synthetic stand-in speech
    corpus. Only the clips of a split's training actors are ever added to training
    (:func:`serlib.song.song_for_split`). Explained in the chapter "Beyond the reports".
    """
    from ..models import get_model

    if song is False:
        return None
    if speech is not None and speech.data.get("synthetic"):
        if song is not None:
            info(logger, verbose, "song clips ignored: the speech data is the synthetic stand-in")
        return None
    if song is None:
        entry = speech.entry if speech is not None else get_model(model_name)
        if not getattr(entry, "train_with_song", False):
            return None
        song = find_song_folder(speech.data.get("path") if speech is not None else None)
        if song is None:
            info(logger, verbose, f"{model_name}: no RAVDESS song folder found (set SERLIB_SONG_DIR to add one); "
                                  "training on speech only")
            return None
    prep = prepare_data(speech.model_name if speech is not None else model_name, song, verbose=0)
    channel = prep.index["vocal_channel"] if "vocal_channel" in prep.index else None
    if channel is not None and not (channel.astype(str) == "song").all():
        raise DataError(f"{prep.data.get('path')}: holds speech clips (03-01-…), not song (03-02-…); "
                        "pass the RAVDESS song folder")
    return prep
