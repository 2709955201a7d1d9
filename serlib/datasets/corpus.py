"""Find the speech corpus a chapter should use, and say loudly which one it is.

:func:`load_corpus` looks, in this order, for

1. the folder you pass;
2. ``$SERLIB_DATA_DIR``;
3. ``ravdess/`` in the ``shared/data`` folder beside a development checkout;
4. a finished download in the cache (``serlib download`` / :func:`download_ravdess`);
5. a fresh download, only when ``allow_download=True`` and the network works;
6. otherwise the **synthetic stand-in corpus** (:mod:`serlib.datasets.standin`), generated
   once under ``cache_dir()/standin``, with a loud warning: every number computed on it is
   a number about synthetic voices, not about RAVDESS.

The result is a :class:`Corpus`: the folder, where it came from, and the one-row-per-clip
index of :func:`~serlib.datasets.adapters.index_folder`. A folder you pass may hold another
registered corpus (EmoDB): its kind is detected from the file names, or named with
``corpus="emodb"``. Explained in the chapter "The data".
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import cache_dir, env_path, shared_data_root
from ..errors import ConfigError, DataError
from ..log import get_logger, info
from .download import completed_download, download_ravdess
from .adapters import corpus_names, detect_corpus, get_corpus, index_folder, ordered_emotions
from .ravdess import index_ravdess
from .standin import is_standin, make_standin_corpus

#: Where a corpus came from: a folder of a registered corpus's real clips (its name), serlib's
#: download of one, or the synthetic stand-in.
SOURCES = ("ravdess", "emodb", "download", "synthetic")

#: Actors kept by :meth:`Corpus.quick_subset`: four women and four men spread over the
#: corpus, including 19 and 20, the test speakers the book holds out.
QUICK_ACTORS = (1, 2, 7, 8, 13, 14, 19, 20)

_SYNTHETIC_WARNING = """\
************************************************************************
***  SYNTHETIC STAND-IN CORPUS: results are NOT RAVDESS results
***  No RAVDESS copy was found (argument, $SERLIB_DATA_DIR, shared/data or
***  a finished download), so serlib generated synthetic voices in
***    {path}
***  Every cell runs, but accuracies describe synthetic voices only.
***  For the real data run `serlib download`, or unzip
***  Audio_Speech_Actors_01-24.zip and set SERLIB_DATA_DIR to that folder.
************************************************************************"""

log = get_logger(__name__)

_INDEX_CACHE: dict = {}
_WARNED: set = set()


def _signature(root: Path) -> tuple:
    """Cheap fingerprint of a folder: its own and its subfolders' modification times."""
    stats = [(root.name, root.stat().st_mtime_ns)]
    for child in sorted(root.iterdir()):
        if child.is_dir():
            stats.append((child.name, child.stat().st_mtime_ns))
    return tuple(stats)


def _index(root: Path, corpus: str | None) -> pd.DataFrame:
    name = corpus or detect_corpus(root).name
    return index_ravdess(root) if name == "ravdess" else index_folder(root, name)


def _cached_index(root: Path, corpus: str | None = None) -> pd.DataFrame:
    """The folder's index (:func:`index_ravdess` or the ``corpus``'s, detected when ``None``),
    remembered in memory until the folder changes."""
    if not root.is_dir():
        return index_folder(root, corpus)   # raises the one-line DataError for a missing folder
    key = (str(root.resolve()), corpus)
    signature = _signature(root)
    hit = _INDEX_CACHE.get(key)
    if hit is not None and hit[0] == signature:
        return hit[1].copy()
    df = _index(root, corpus)
    _INDEX_CACHE[key] = (signature, df)
    return df.copy()


def clear_index_cache() -> None:
    """Forget every index :func:`load_corpus` has remembered (they are rebuilt on demand).

    Explained in the chapter "The data".
    """
    _INDEX_CACHE.clear()


@dataclass(eq=False)
class Corpus:
    """A speech corpus: its folder, where it came from, and one row per clip.

    ``source`` is ``"ravdess"`` (a folder of real RAVDESS clips), ``"emodb"`` (a folder of
    EmoDB clips), ``"download"`` (an official archive downloaded by serlib) or
    ``"synthetic"`` (the stand-in corpus). :attr:`kind` says which corpus the clips are
    from. ``note`` records any subsetting. Explained in the chapter "The data".
    """

    root: Path
    source: str
    index: pd.DataFrame = field(repr=False)
    note: str = ""

    def __post_init__(self):
        self.root = Path(self.root)
        if self.source not in SOURCES:
            raise ConfigError(f"source must be one of {SOURCES}, got {self.source!r}")

    def __len__(self) -> int:
        return len(self.index)

    @property
    def synthetic(self) -> bool:
        """True for the synthetic stand-in corpus, whose results say nothing about RAVDESS."""
        return self.source == "synthetic"

    @property
    def kind(self) -> str:
        """The corpus the clips come from: "ravdess" (also the RAVDESS-shaped stand-in),
        "emodb", ... ("mixed" for an index that joins several)."""
        if "corpus" not in self.index.columns:
            return "ravdess"
        kinds = sorted(set(self.index["corpus"].dropna()))
        return kinds[0] if len(kinds) == 1 else "mixed" if kinds else "ravdess"

    @property
    def paths(self) -> list[str]:
        """The clip paths, in index order."""
        return self.index["path"].tolist()

    def banner(self) -> str:
        """One line saying what this corpus is: source, folder, clip and actor counts.

        For the stand-in it starts with "SYNTHETIC STAND-IN CORPUS — results are not
        RAVDESS results". Explained in the chapter "The data".
        """
        df = self.index
        genders = df.drop_duplicates("actor")["gender"].value_counts()
        kind = self.kind
        adapter = get_corpus(kind) if kind in corpus_names() else None
        word = adapter.speaker_word if adapter else "actors"
        counts = (f"{len(df):,} clips, {df['actor'].nunique()} {word} "
                  f"({genders.get('female', 0)} female, {genders.get('male', 0)} male), "
                  f"{df['emotion'].nunique()} emotions")
        note = f" [{self.note}]" if self.note else ""
        if self.synthetic:
            return f"SYNTHETIC STAND-IN CORPUS — results are not RAVDESS results — {self.root} — {counts}{note}"
        title = adapter.title if adapter else kind
        what = f"{title} (downloaded)" if self.source == "download" else title
        return f"{what} — {self.root} — {counts}{note}"

    def subset(self, actors=None, emotions=None, vocal_channel=None, *, intensity=None, gender=None,
               repetition=None, note: str | None = None) -> "Corpus":
        """A corpus with only the clips matching every filter given (``None`` keeps all).

        Each filter takes one value or a list: ``actors=[19, 20]``, ``emotions="angry"``,
        ``vocal_channel="speech"``, ``intensity="strong"``, ``gender="female"``,
        ``repetition=1``. The index is re-numbered from 0. Explained in the chapter "The data".
        """
        df = self.index
        mask = np.ones(len(df), dtype=bool)
        for column, wanted in (("actor", actors), ("emotion", emotions), ("vocal_channel", vocal_channel),
                               ("intensity", intensity), ("gender", gender), ("repetition", repetition)):
            if wanted is None:
                continue
            values = [wanted] if isinstance(wanted, (str, int, np.integer)) else list(wanted)
            if column == "actor" or column == "repetition":
                values = [int(v) for v in values]
            mask &= df[column].isin(values).to_numpy()
        sub = df[mask].reset_index(drop=True)
        if sub.empty:
            raise DataError(f"{self.root}: no clips match actors={actors}, emotions={emotions}, "
                            f"vocal_channel={vocal_channel}, intensity={intensity}, gender={gender}; "
                            "check the filters against corpus.index")
        if note is None:
            parts = [f"{k}={v}" for k, v in (("actors", actors), ("emotions", emotions),
                                             ("vocal_channel", vocal_channel), ("intensity", intensity),
                                             ("gender", gender), ("repetition", repetition)) if v is not None]
            note = "subset " + ", ".join(parts)
        return replace(self, index=sub, note="; ".join(n for n in (self.note, note) if n))

    def quick_subset(self) -> "Corpus":
        """The small corpus used when ``SERLIB_QUICK=1``: every emotion, both genders, 8 actors.

        Keeps actors :data:`QUICK_ACTORS` (1, 2, 7, 8, 13, 14, 19, 20: four men, four
        women, including the held-out test speakers 19 and 20) — or, for a corpus that
        lacks some of them (the stand-in has actors 1–4), up to eight of the actors it
        has, alternating genders. Of each actor it keeps repetition 1 of the strong
        clips plus the neutral clips (which only exist at normal intensity): 2 clips per
        emotion per actor, so the classes stay balanced (16 clips per actor, 128 for
        RAVDESS). Explained in the chapter "The data".
        """
        present = sorted(int(a) for a in self.index["actor"].unique())
        actors = [a for a in QUICK_ACTORS if a in present]
        if len(actors) < min(len(QUICK_ACTORS), len(present)):
            gender = dict(zip(self.index["actor"].astype(int), self.index["gender"]))
            men = [a for a in present if gender[a] == "male"]
            women = [a for a in present if gender[a] != "male"]
            actors = []
            for m, w in zip(men + [None] * len(women), women + [None] * len(men)):
                actors += [a for a in (m, w) if a is not None]
            actors = sorted(actors[:len(QUICK_ACTORS)])
        df = self.index
        keep = (df["actor"].isin(actors) & (df["repetition"] == 1)
                & ((df["intensity"] == "strong") | (df["emotion"] == "neutral")))
        if df["intensity"].isna().all():   # a corpus without intensity levels (EmoDB): first take of each
            first = ~df.duplicated(["actor", "statement", "emotion"])
            keep = df["actor"].isin(actors) & first
        sub = df[keep.to_numpy()].reset_index(drop=True)
        if sub.empty:   # nothing strong at repetition 1 (an unusual subset): keep it whole
            return self
        what = ("first take of each text and emotion" if df["intensity"].isna().all()
                else "strong + neutral, repetition 1")
        note = "; ".join(n for n in (self.note, f"quick subset: actors {','.join(map(str, actors))}, {what}") if n)
        return replace(self, index=sub, note=note)

    def classes(self, task: str = "emotion") -> list[str]:
        """Class names for ``task`` present in this corpus, in RAVDESS order for emotions
        (a corpus's own emotions, such as EmoDB's boredom, after them).

        Explained in the chapter "The data".
        """
        values = set(self.index[_task_column(task)])
        if task == "emotion":
            return ordered_emotions(values)
        return sorted(values)

    def labels(self, task: str = "emotion") -> np.ndarray:
        """One label per clip for ``task`` ("emotion", "gender", "intensity" or "actor").

        Explained in the chapter "The data".
        """
        return self.index[_task_column(task)].to_numpy()


def _task_column(task: str) -> str:
    if task not in ("emotion", "gender", "intensity", "actor", "statement", "vocal_channel"):
        raise ConfigError(f"unknown task {task!r}; use 'emotion', 'gender', 'intensity' or 'actor'")
    return task


def _source_of(root: Path, index: pd.DataFrame) -> str:
    if is_standin(root):
        return "synthetic"
    if completed_download(root):
        return "download"
    kinds = set(index["corpus"].dropna()) if "corpus" in index.columns else set()
    return kinds.pop() if len(kinds) == 1 and next(iter(kinds)) in SOURCES else "ravdess"


def _make(root: Path, source: str | None = None, *, verbose: bool, corpus: str | None = None) -> Corpus:
    root = Path(root).expanduser()
    index = _cached_index(root, corpus)
    corpus = Corpus(root=root, source=source or _source_of(root, index), index=index)
    if corpus.synthetic:
        key = str(root.resolve())
        if key not in _WARNED:          # the loud warning once per process and folder
            _WARNED.add(key)
            log.warning(_SYNTHETIC_WARNING.format(path=root))
    info(log, verbose, corpus.banner())
    return corpus


def load_corpus(path=None, *, corpus: str | None = None, allow_download: bool = False,
                verbose: bool = True) -> Corpus:
    """The corpus a chapter should use, found as described in :mod:`serlib.datasets.corpus`.

    ``path`` (a folder of RAVDESS clips) wins; then ``$SERLIB_DATA_DIR`` (an error if it
    names a missing folder: a typo should not silently switch corpora); then the shared
    development copy; then a finished download in the cache; then, with
    ``allow_download``, a fresh download; and last the synthetic stand-in, announced by a
    loud multi-line warning (logged at WARNING through :mod:`serlib.log`, once per process
    and folder). ``corpus`` ("ravdess", "emodb") names the corpus of a folder you pass;
    by default it is detected from the file names (:func:`~serlib.datasets.adapters.detect_corpus`).
    ``verbose`` logs the one-line :meth:`Corpus.banner` at INFO. Indexes are
    remembered in memory per folder, so repeated calls are cheap. Explained in the chapter "The data".
    """
    if corpus is not None:
        corpus = get_corpus(corpus).name       # an unknown name: one line, before any work
    if path is not None:
        return _make(Path(path), verbose=verbose, corpus=corpus)
    root = env_path("SERLIB_DATA_DIR", folder=True, error=DataError,
                    hint="fix or unset the variable (it should hold Actor_01/ … or the .wav/.flac files)")
    if root is not None:
        return _make(root, verbose=verbose, corpus=corpus)
    shared = shared_data_root()
    if shared is not None and (shared / "ravdess").is_dir():
        return _make(shared / "ravdess", "ravdess", verbose=verbose)
    done = completed_download()
    if done is not None:
        return _make(done, "download", verbose=verbose)
    if allow_download:
        try:
            return _make(download_ravdess(), "download", verbose=verbose)
        except DataError as error:
            log.warning("warning: could not download RAVDESS (%s); falling back to the synthetic stand-in", error)
    return _make(make_standin_corpus(cache_dir() / "standin"), "synthetic", verbose=verbose)
