"""RAVDESS song as extra training data: the sung clips of the TRAINING actors only.

RAVDESS recorded the same actors singing six of the eight emotions (neutral, calm, happy,
sad, angry, fearful). A model that classifies speech can still learn from them: they add
about 40 clips per actor in voices it will hear anyway. Only the song clips of actors in a
split's training part are ever added, so no validation or test speaker's voice reaches
training, sung or spoken; prediction and evaluation stay speech-only.

Where the song folder comes from (:func:`find_song_folder`): ``$SERLIB_SONG_DIR``; a folder
``ravdess-song`` or ``Audio_Song_Actors_01-24`` beside the speech folder; the shared
development copy (``shared/data/ravdess-song``). :func:`song_for_split` picks the clips of a
split's training actors; :func:`serlib.training.song_data` prepares a song folder for a model.
This module sits below :mod:`serlib.training` and imports nothing from it. Explained in the
chapter "Beyond the reports".
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DataError

#: Folder names searched beside the speech folder.
SONG_FOLDER_NAMES = ("ravdess-song", "Audio_Song_Actors_01-24")


def find_song_folder(speech_root=None) -> Path | None:
    """The RAVDESS song folder to train with, or ``None`` when there is none.

    ``$SERLIB_SONG_DIR`` wins (an error if it names no folder); then a folder named as in
    :data:`SONG_FOLDER_NAMES` beside ``speech_root``; then ``shared/data/ravdess-song`` of a
    development checkout. Explained in the chapter "Beyond the reports".
    """
    from .config import env_path, shared_data_root

    folder = env_path("SERLIB_SONG_DIR", folder=True, error=DataError,
                      hint="fix or unset the variable (it should hold the song clips, Actor_01/ …)")
    if folder is not None:
        return folder
    candidates = []
    if speech_root:
        parent = Path(speech_root).expanduser().absolute().parent
        candidates += [parent / name for name in SONG_FOLDER_NAMES]
    shared = shared_data_root()
    if shared is not None:
        candidates.append(shared / "ravdess-song")
    return next((c for c in candidates if c.is_dir()), None)


def song_for_split(prep, split, song) -> tuple[np.ndarray, np.ndarray, dict | None]:
    """``(X, y, record)``: the clips of ``song`` sung by the actors of ``split.train``.

    ``prep`` is the speech data the split indexes; ``song`` a prepared song corpus (or
    ``None``: nothing added). Labels are mapped through the label names, so they agree with
    ``prep.labels``. ``record`` says where the clips came from and which actors sang them.
    Explained in the chapter "Beyond the reports".
    """
    empty = (np.zeros((0, *prep.X.shape[1:]), dtype=prep.X.dtype), np.zeros(0, dtype=prep.y.dtype), None)
    if song is None:
        return empty
    if song.spec.to_dict() != prep.spec.to_dict() or song.X.shape[1:] != prep.X.shape[1:]:
        raise DataError(f"{song.data.get('path')}: song features {song.X.shape[1:]} do not match the "
                        f"speech features {prep.X.shape[1:]}; prepare both for the same model")
    unknown = sorted(set(song.labels) - set(prep.labels))
    if unknown:
        raise DataError(f"{song.data.get('path')}: song labels {unknown} are not among the model's labels")
    actors = set(prep.index["actor"].iloc[split.train].astype(int))
    keep = np.flatnonzero(song.index["actor"].astype(int).isin(actors).to_numpy())
    number = {label: i for i, label in enumerate(prep.labels)}
    y = np.asarray([number[song.labels[k]] for k in song.y[keep]], dtype=prep.y.dtype)
    record = {"path": song.data.get("path"), "n_clips": int(len(keep)),
              "actors": sorted(int(a) for a in song.index["actor"].iloc[keep].unique())}
    return song.X[keep], y, record
