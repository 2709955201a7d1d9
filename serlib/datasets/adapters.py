"""Corpus adapters: what serlib must know about one corpus to index it, and the generic index.

A corpus is described by a :class:`CorpusAdapter`: its name, how to parse one file name
into the index's fields (speaker, gender, emotion in serlib's names, ...), its emotions and
an example name for error messages. :func:`index_folder` turns a folder of clips into
serlib's one-row-per-clip index with any adapter, and :func:`detect_corpus` tells from the
file names which corpus a folder holds. RAVDESS (:mod:`serlib.datasets.ravdess`) and EmoDB
(:mod:`serlib.datasets.emodb`) are registered; a third corpus (TESS, CREMA-D, SAVEE) is
one ``parse`` function and one :func:`register_corpus` call.

Index columns, the same for every corpus (:data:`COLUMNS`): ``path``; ``actor``, an
integer unique across corpora (RAVDESS actors 1–24 as numbered; other corpora add an
offset, EmoDB 100 + its speaker number, so speaker 03 is actor 103), so splits by actor
never mix two corpora's speakers; ``gender``; ``emotion`` (serlib's names: neutral, calm,
happy, sad, angry, fearful, disgust, surprised, plus a corpus's own, e.g. EmoDB's boredom);
``intensity``, ``statement``, ``repetition``, ``vocal_channel``, ``modality`` where the
corpus has them (None where it has not: EmoDB has no intensity levels); ``sample_rate``,
``channels``, ``duration``, ``content_id``; ``corpus`` ("ravdess", "emodb") and
``speaker``, a readable id such as "ravdess01" or "emodb03". Explained in the chapter "The data".
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from ..audio import MIN_DURATION, audio_info
from ..errors import AudioError, ConfigError, DataError
from ..log import get_logger
from ..storage import file_blake2b

log = get_logger(__name__)

#: serlib's emotion names, in the order tables and confusion matrices use (RAVDESS's codes 1-8).
EMOTIONS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
AUDIO_SUFFIXES = {".wav", ".flac"}
COLUMNS = ["path", "actor", "gender", "emotion", "intensity", "statement", "repetition",
           "vocal_channel", "modality", "sample_rate", "channels", "duration", "content_id",
           "corpus", "speaker"]


@dataclass(frozen=True)
class CorpusAdapter:
    """One corpus's naming scheme and labels, as :func:`index_folder` needs them.

    ``parse(name)`` returns the fields ``actor`` (already offset, unique across corpora),
    ``gender``, ``emotion`` (serlib's names) and any of ``intensity``, ``statement``,
    ``repetition``, ``vocal_channel``, ``modality``; it raises ``ValueError`` naming the
    file and what a name should look like. ``emotions`` lists every emotion the corpus
    has; ``example`` is a valid file name; ``hint`` says what to do when a folder holds no
    clip; ``folder`` names the folder to pass;
    ``speaker_number`` turns an ``actor`` back into the corpus's own speaker number.
    Explained in the chapter "The data".
    """

    name: str
    title: str
    parse: Callable[[str], dict]
    emotions: tuple
    example: str
    hint: str
    folder: str = "the folder that holds the .wav/.flac files"
    actor_offset: int = 0
    speaker_word: str = "actors"

    def speaker_number(self, actor) -> int:
        """The corpus's own speaker number of an index ``actor`` (EmoDB actor 103 is speaker 3)."""
        return int(actor) - self.actor_offset

    def speaker_id(self, actor) -> str:
        """The readable speaker id of an ``actor`` number: ``"ravdess01"``, ``"emodb03"``."""
        return f"{self.name}{self.speaker_number(actor):02d}"


_CORPORA: dict[str, CorpusAdapter] = {}


def register_corpus(adapter: CorpusAdapter) -> CorpusAdapter:
    """Make ``adapter`` known to :func:`get_corpus`, :func:`detect_corpus` and the CLI.

    Actor numbers of two corpora must not overlap: give each a distinct ``actor_offset``.
    Explained in the chapter "The data".
    """
    _CORPORA[adapter.name] = adapter
    return adapter


def corpus_names() -> list[str]:
    """Names of the registered corpora ("ravdess", "emodb", ...). Explained in the chapter "The data"."""
    return list(_CORPORA)


def get_corpus(name: str) -> CorpusAdapter:
    """The registered adapter called ``name``; a one-line ConfigError for an unknown one.

    Explained in the chapter "The data".
    """
    key = str(name).lower()
    if key not in _CORPORA:
        raise ConfigError(f"unknown corpus {name!r}; use one of {', '.join(_CORPORA)}")
    return _CORPORA[key]


def ordered_emotions(values) -> list[str]:
    """``values`` in serlib's emotion order, any corpus-specific emotion (boredom) after them.

    Explained in the chapter "The data".
    """
    values = {str(v) for v in values}
    return [e for e in EMOTIONS if e in values] + sorted(values - set(EMOTIONS))


def parse_any(name: str) -> tuple[CorpusAdapter, dict] | None:
    """(adapter, fields) for the first registered corpus whose scheme ``name`` follows, else None.

    Explained in the chapter "The data".
    """
    for adapter in _CORPORA.values():
        try:
            return adapter, adapter.parse(Path(name).name)
        except ValueError:
            continue
    return None


def label_from_name(path) -> dict | None:
    """``{"corpus", "speaker", "emotion"}`` read from a clip's file name, or None when no
    registered corpus names files that way (``serlib predict`` shows it beside the prediction).

    Explained in the chapter "Beyond the reports".
    """
    found = parse_any(str(path))
    if found is None:
        return None
    adapter, row = found
    return {"corpus": adapter.name, "speaker": adapter.speaker_id(row["actor"]), "emotion": row["emotion"]}


def _hidden(relative: Path) -> bool:
    """Hidden files and folders (``._x.wav`` from macOS, ``.partial`` work folders, ``__MACOSX``)."""
    return any(part.startswith(".") or part == "__MACOSX" for part in relative.parts)


def audio_files(folder: Path) -> list[Path]:
    """The .wav/.flac files under ``folder``, sorted, hidden files and folders left out."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()
                  and not _hidden(p.relative_to(folder)))


def detect_corpus(folder, files=None) -> CorpusAdapter:
    """The registered corpus whose naming scheme most of ``folder``'s audio files follow.

    RAVDESS wins ties, including a folder where no name parses (its index then says what a
    RAVDESS name looks like). Explained in the chapter "The data".
    """
    names = [p.name for p in (files if files is not None else audio_files(Path(folder)))]
    best, best_count = _CORPORA["ravdess"], 0
    for adapter in _CORPORA.values():
        count = 0
        for name in names:
            try:
                adapter.parse(name)
                count += 1
            except ValueError:
                pass
        if count > best_count:
            best, best_count = adapter, count
    return best


def index_folder(folder, corpus=None, *, warn=None, content_ids: bool = True) -> pd.DataFrame:
    """Index every clip of one corpus under ``folder`` (any depth), one row per clip.

    ``corpus`` is an adapter or a registered name; ``None`` detects it from the file names
    (:func:`detect_corpus`). Columns: :data:`COLUMNS`, sorted by path. ``content_id`` is a
    hash of the file's bytes, so byte-identical recordings can be kept on one side of every
    split. Files whose names do not follow the corpus's scheme, or that cannot be read or
    are too short to analyse, are skipped with one warning line each naming the file and
    what is expected (``warn`` is called with that line; default: logged at WARNING) and a
    summary line; hidden files and folders are ignored. Raises
    :class:`~serlib.errors.DataError` when the folder is missing or holds no usable clip.
    Explained in the chapter "The data".
    """
    folder = Path(folder).expanduser()
    adapter = corpus if isinstance(corpus, CorpusAdapter) else get_corpus(corpus) if corpus else None
    if not folder.is_dir():
        what = (adapter or _CORPORA["ravdess"]).folder
        raise DataError(f"{folder}: no such folder; pass {what} (or run `serlib download`)")
    if warn is None:
        def warn(line):
            log.warning("warning: %s", line)
    candidates = audio_files(folder)
    if adapter is None:
        adapter = detect_corpus(folder, candidates)
    rows, skipped = [], 0
    for path in candidates:
        try:
            row = adapter.parse(path.name)
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
        row["content_id"] = file_blake2b(path, digest_size=10) if content_ids else ""
        row["corpus"] = adapter.name
        row["speaker"] = adapter.speaker_id(row["actor"])
        rows.append(row)
    if skipped:
        warn(f"indexed {len(rows)} clips, skipped {skipped} file(s) under {folder} (see the lines above)")
    if not rows:
        others = [a for a in _CORPORA.values() if a is not adapter]
        also = "".join(f" (or {a.title} clips named like {a.example})" for a in others) if corpus is None else ""
        raise DataError(f"{folder}: no readable {adapter.title} clips (.wav/.flac named like {adapter.example})"
                        f"{also}; {adapter.hint}")
    df = pd.DataFrame(rows).reindex(columns=COLUMNS).sort_values("path").reset_index(drop=True)
    return df


def summarize(df: pd.DataFrame) -> dict:
    """Counts by emotion, actor and gender, as ``serlib index`` prints them.

    Explained in the chapter "The data".
    """
    corpora = sorted(df["corpus"].dropna().unique()) if "corpus" in df.columns else ["ravdess"]
    return {
        "clips": len(df),
        "corpus": corpora,
        "emotion": df["emotion"].value_counts().reindex(ordered_emotions(df["emotion"].unique())).to_dict(),
        "actor": df["actor"].value_counts().sort_index().to_dict(),
        "gender": df["gender"].value_counts().sort_index().to_dict(),
        "stereo": int((df["channels"] > 1).sum()),
        "sample_rates": sorted(int(s) for s in df["sample_rate"].unique()),
    }
