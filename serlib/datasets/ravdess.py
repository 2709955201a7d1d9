"""The RAVDESS file-naming scheme and a one-row-per-clip index of a folder.

A RAVDESS name such as ``03-01-05-02-01-02-12`` holds seven fields: modality (03 audio
only), vocal channel (01 speech, 02 song), emotion, intensity, statement, repetition and
actor (odd actors are male). Explained in the chapter "The data".
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..audio import MIN_DURATION, audio_info
from ..errors import AudioError, DataError
from ..log import get_logger
from ..storage import file_blake2b

log = get_logger(__name__)

EMOTIONS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
#: The six emotions of RAVDESS song (no disgust, no surprised).
SONG_EMOTIONS = EMOTIONS[:6]
MODALITIES = {1: "audio-video", 2: "video-only", 3: "audio-only"}
VOCAL_CHANNELS = {1: "speech", 2: "song"}
INTENSITIES = {1: "normal", 2: "strong"}
STATEMENTS = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}
AUDIO_SUFFIXES = {".wav", ".flac"}

COLUMNS = ["path", "actor", "gender", "emotion", "intensity", "statement", "repetition",
           "vocal_channel", "modality", "sample_rate", "channels", "duration", "content_id"]


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


def _hidden(relative: Path) -> bool:
    """Hidden files and folders (``._x.wav`` from macOS, ``.partial`` work folders, ``__MACOSX``)."""
    return any(part.startswith(".") or part == "__MACOSX" for part in relative.parts)


def _content_id(path: Path) -> str:
    return file_blake2b(path, digest_size=10)


def index_ravdess(folder, *, warn=None, content_ids: bool = True) -> pd.DataFrame:
    """Index every RAVDESS clip under ``folder`` (``Actor_XX/`` subfolders or flat).

    One row per readable clip with the columns in :data:`COLUMNS`, sorted by path.
    ``content_id`` is a hash of the file's bytes, so byte-identical recordings (the
    Actor_07 pair) can be kept on one side of every split. Files whose names are not
    RAVDESS names, or that cannot be read or are too short to analyse, are skipped with
    one warning line each (``warn`` is called with that line; default: logged at WARNING,
    :mod:`serlib.log`) and a summary line;
    hidden files and folders (``._*`` macOS litter, ``__MACOSX``, serlib's own temporary
    ``.name.*.partial`` folders) are ignored.
    Raises :class:`~serlib.errors.DataError` when the folder is missing or holds no
    usable clip. Explained in the chapter "The data".
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder; pass the folder that holds Actor_01/ … or the .wav/.flac files "
                        "(or run `serlib download`)")
    if warn is None:
        def warn(line):
            log.warning("warning: %s", line)
    rows, skipped = [], 0
    candidates = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()
                        and not _hidden(p.relative_to(folder)))
    for path in candidates:
        try:
            row = parse_name(path.name)
        except ValueError as error:
            warn(f"skipping {path}: {error}")
            skipped += 1
            continue
        try:
            row.update(audio_info(path))
        except AudioError as error:
            warn(f"skipping {path}: {error.reason}")
            skipped += 1
            continue
        if row["duration"] < MIN_DURATION:
            warn(f"skipping {path}: too short ({1000 * row['duration']:.1f} ms, need at least "
                 f"{1000 * MIN_DURATION:.0f} ms)")
            skipped += 1
            continue
        row["path"] = str(path)
        row["content_id"] = _content_id(path) if content_ids else ""
        rows.append(row)
    if skipped:
        warn(f"indexed {len(rows)} clips, skipped {skipped} file(s) under {folder} (see the lines above)")
    if not rows:
        raise DataError(f"{folder}: no readable RAVDESS clips (.wav/.flac named like 03-01-05-02-01-02-12.wav); "
                        "point to the unpacked Audio_Speech_Actors_01-24 folder or run `serlib download`")
    df = pd.DataFrame(rows)[COLUMNS].sort_values("path").reset_index(drop=True)
    return df


def summarize(df: pd.DataFrame) -> dict:
    """Counts by emotion, actor and gender, as ``serlib index`` prints them."""
    return {
        "clips": len(df),
        "emotion": df["emotion"].value_counts().reindex([e for e in EMOTIONS if e in set(df["emotion"])]).to_dict(),
        "actor": df["actor"].value_counts().sort_index().to_dict(),
        "gender": df["gender"].value_counts().sort_index().to_dict(),
        "stereo": int((df["channels"] > 1).sum()),
        "sample_rates": sorted(int(s) for s in df["sample_rate"].unique()),
    }
