"""The RAVDESS file-naming scheme and a one-row-per-clip index of a folder.

A RAVDESS name such as ``03-01-05-02-01-02-12`` holds seven fields: modality (03 audio
only), vocal channel (01 speech, 02 song), emotion, intensity, statement, repetition and
actor (odd actors are male). Explained in the chapter "The data".
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .adapters import AUDIO_SUFFIXES, COLUMNS, EMOTIONS, CorpusAdapter, index_folder, register_corpus
from .adapters import summarize as summarize_index

__all__ = ["EMOTIONS", "SONG_EMOTIONS", "AUDIO_SUFFIXES", "COLUMNS", "RAVDESS", "parse_name", "index_ravdess",
           "summarize"]
#: The six emotions of RAVDESS song (no disgust, no surprised).
SONG_EMOTIONS = EMOTIONS[:6]
MODALITIES = {1: "audio-video", 2: "video-only", 3: "audio-only"}
VOCAL_CHANNELS = {1: "speech", 2: "song"}
INTENSITIES = {1: "normal", 2: "strong"}
STATEMENTS = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}


def parse_name(name: str) -> dict:
    """Parse a RAVDESS file name (with or without folder and suffix) into its fields.

    Raises ``ValueError`` naming what is wrong when it is not a RAVDESS name.
    """
    stem = Path(name).name.split(".")[0]
    parts = stem.split("-")
    if len(parts) != 7 or not all(p.isdigit() and len(p) == 2 for p in parts):
        raise ValueError(f"{name!r} is not a RAVDESS name (expected 7 two-digit fields like 03-01-05-02-01-02-12)")
    modality, channel, emotion, intensity, statement, repetition, actor = map(int, parts)
    checks = [(modality in MODALITIES, "modality"), (channel in VOCAL_CHANNELS, "vocal channel"),
              (1 <= emotion <= 8, "emotion"), (intensity in INTENSITIES, "intensity"),
              (statement in STATEMENTS, "statement"), (repetition in (1, 2), "repetition"),
              (1 <= actor <= 24, "actor")]
    for ok, field in checks:
        if not ok:
            raise ValueError(f"{name!r} has an out-of-range {field} field")
    if emotion == 1 and intensity == 2:
        raise ValueError(f"{name!r} claims a strong-intensity neutral clip, which RAVDESS does not have")
    return {
        "actor": actor,
        "gender": "male" if actor % 2 else "female",
        "emotion": EMOTIONS[emotion - 1],
        "intensity": INTENSITIES[intensity],
        "statement": statement,
        "repetition": repetition,
        "vocal_channel": VOCAL_CHANNELS[channel],
        "modality": MODALITIES[modality],
    }


def index_ravdess(folder, *, warn=None, content_ids: bool = True) -> pd.DataFrame:
    """Index every RAVDESS clip under ``folder`` (``Actor_XX/`` subfolders or flat).

    One row per readable clip with the columns in :data:`~serlib.datasets.adapters.COLUMNS`
    (``corpus`` "ravdess", ``speaker`` "ravdess01" …), sorted by path.
    ``content_id`` is a hash of the file's bytes, so byte-identical recordings (the
    Actor_07 pair) can be kept on one side of every split. Files whose names are not
    RAVDESS names, or that cannot be read or are too short to analyse, are skipped with
    one warning line each (``warn`` is called with that line; default: logged at WARNING,
    :mod:`serlib.log`) and a summary line;
    hidden files and folders (``._*`` macOS litter, ``__MACOSX``, serlib's own temporary
    ``.name.*.partial`` folders) are ignored.
    Raises :class:`~serlib.errors.DataError` when the folder is missing or holds no
    usable clip. :func:`~serlib.datasets.adapters.index_folder` does the work for any
    registered corpus. Explained in the chapter "The data".
    """
    return index_folder(folder, RAVDESS, warn=warn, content_ids=content_ids)


RAVDESS = register_corpus(CorpusAdapter(
    name="ravdess", title="RAVDESS", parse=parse_name, emotions=tuple(EMOTIONS),
    example="03-01-05-02-01-02-12.wav", folder="the folder that holds Actor_01/ … or the .wav/.flac files",
    hint="point to the unpacked Audio_Speech_Actors_01-24 folder or run `serlib download`"))


def summarize(df: pd.DataFrame) -> dict:
    """Counts by emotion, actor and gender, as ``serlib index`` prints them."""
    return summarize_index(df)
