"""Train/validation/test splits: the reports' random splits and honest speaker splits.

A :class:`Split` holds three arrays of integer *positions* (``df.iloc`` positions, not
index labels) into the clip index, plus the name of the protocol that made it. Every
constructor here keeps byte-identical recordings (same ``content_id``, such as the
Actor_07 pair of RAVDESS) on one side, and checks the result before returning it.

- :func:`random_split` – what reports 000 (70/15/15), 001 (75/25) and 004 (60/15/25)
  did: clips shuffled regardless of who speaks, so every test speaker is also heard in
  training.
- :func:`speaker_split` – named actors held out for testing (and validation).
- :func:`actor_kfold` – k folds over actors, each actor tested exactly once.
- :func:`final_split` – every actor trains (a few may validate); nothing is tested.
- :func:`filter_gender` – the male-only / female-only subsets of report 000.

Explained in the chapter "Evaluating honestly".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from .errors import SerlibError

PARTS = ("train", "val", "test")


def _positions(values, name: str) -> np.ndarray:
    array = np.asarray(values if values is not None else [], dtype=np.int64).ravel()
    if array.size and array.min() < 0:
        raise SerlibError(f"Split.{name}: negative positions; positions count rows from 0 (df.iloc)")
    return np.sort(array)


@dataclass(frozen=True, eq=False)
class Split:
    """Which rows of a clip index are for training, validation and testing.

    ``train``, ``val`` and ``test`` are sorted integer arrays of ``df.iloc`` positions
    (so ``df.iloc[split.test]`` and ``X[split.test]`` select the test clips when ``X``
    was computed in index order). ``protocol`` is a short name ("random 70/15/15",
    "speaker-independent", "speaker-independent, actor 5-fold (fold 2/5)"); ``description`` says in a sentence
    what was held out and why it matters. ``n_rows`` is the length of the index the
    split was made for (checked by :meth:`check_disjoint`); ``actor_parts`` records the
    actors of each part when the index had an ``actor`` column.
    Explained in the chapter "Evaluating honestly".
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    protocol: str
    description: str = ""
    n_rows: int | None = None
    actor_parts: dict | None = field(default=None, repr=False)

    def __post_init__(self):
        for name in PARTS:
            object.__setattr__(self, name, _positions(getattr(self, name), name))

    # -- views -----------------------------------------------------------------------
    def parts(self) -> dict[str, np.ndarray]:
        """``{"train": positions, "val": positions, "test": positions}``."""
        return {name: getattr(self, name) for name in PARTS}

    def sizes(self) -> dict[str, int]:
        """Number of clips in each part."""
        return {name: int(len(pos)) for name, pos in self.parts().items()}

    def actors(self, df: pd.DataFrame | None = None) -> dict[str, list[int]]:
        """The sorted actor numbers of each part, from ``df`` or as recorded at creation."""
        if df is not None:
            self._check_rows(df)
            if "actor" not in df.columns:
                raise SerlibError("Split.actors: the index has no 'actor' column; pass a RAVDESS index")
            column = df["actor"].to_numpy()
            return {name: sorted({int(a) for a in column[pos]}) for name, pos in self.parts().items()}
        if self.actor_parts is None:
            raise SerlibError("Split.actors: this split recorded no actors; call split.actors(df) with its index")
        return {name: list(self.actor_parts.get(name, [])) for name in PARTS}

    def frames(self, df: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """``{"train": df.iloc[train], ...}`` for the index the split was made for."""
        self._check_rows(df)
        return {name: df.iloc[pos] for name, pos in self.parts().items()}

    def summary(self, df: pd.DataFrame) -> pd.DataFrame:
        """One row per part: clips, actors, female/male clips, and the actors themselves."""
        self._check_rows(df)
        rows = []
        for name, pos in self.parts().items():
            part = df.iloc[pos]
            row = {"part": name, "clips": len(part)}
            if "actor" in df.columns:
                actors = sorted({int(a) for a in part["actor"]})
                row["actors"] = len(actors)
                row["actor_ids"] = ", ".join(f"{a:02d}" for a in actors)
            if "gender" in df.columns:
                counts = part["gender"].value_counts()
                row["female"] = int(counts.get("female", 0))
                row["male"] = int(counts.get("male", 0))
            rows.append(row)
        return pd.DataFrame(rows).set_index("part")

    # -- checks ----------------------------------------------------------------------
    def _check_rows(self, df: pd.DataFrame) -> None:
        if self.n_rows is not None and len(df) != self.n_rows:
            raise SerlibError(f"this split was made for an index of {self.n_rows} rows, not {len(df)}; "
                              "use the same DataFrame (or subset) the split was made from")
        top = max((int(p.max()) for p in self.parts().values() if len(p)), default=-1)
        if top >= len(df):
            raise SerlibError(f"split position {top} is past the end of an index of {len(df)} rows; "
                              "use the DataFrame the split was made from")

    def overlap(self, df: pd.DataFrame | None = None) -> dict:
        """What the parts share: positions, and with ``df`` also content ids and actors.

        Returns ``{"positions": n, "content_ids": n, "actors": [...]}`` counted over the
        pairs train/val, train/test and val/test. A random split shares actors (that is
        its flaw); a sound split never shares positions or content ids.
        """
        parts = self.parts()
        pairs = [("train", "val"), ("train", "test"), ("val", "test")]
        shared_pos = set()
        for a, b in pairs:
            shared_pos |= set(np.intersect1d(parts[a], parts[b]).tolist())
        result = {"positions": len(shared_pos)}
        if df is not None:
            self._check_rows(df)
            for column, key in (("content_id", "content_ids"), ("actor", "actors")):
                if column not in df.columns:
                    continue
                values = df[column].to_numpy()
                shared = set()
                for a, b in pairs:
                    va = {v for v in values[parts[a]] if _usable_id(v)}
                    vb = {v for v in values[parts[b]] if _usable_id(v)}
                    shared |= va & vb
                result[key] = len(shared) if key == "content_ids" else sorted(int(v) for v in shared)
        return result

    def check_disjoint(self, df: pd.DataFrame | None = None, *, speakers: bool | None = None) -> "Split":
        """Raise :class:`SerlibError` unless the parts are disjoint; return the split.

        Always checks that no position is in two parts. With ``df`` it also checks that
        the positions fit the index and that no ``content_id`` (byte-identical clip) is
        on two sides. ``speakers`` (default: true for speaker-independent protocols)
        also requires that no actor is on two sides.
        """
        info = self.overlap(df)
        if info["positions"]:
            raise SerlibError(f"{self.protocol}: {info['positions']} clip position(s) are in more than one part")
        if info.get("content_ids"):
            raise SerlibError(f"{self.protocol}: {info['content_ids']} byte-identical clip group(s) straddle "
                              "train/val/test; build splits with serlib.splits, which groups them by content_id")
        if speakers is None:
            speakers = self.speaker_independent
        if speakers and info.get("actors"):
            raise SerlibError(f"{self.protocol}: actor(s) {info['actors']} appear in more than one part; "
                              "a speaker-independent split must hold each actor on one side")
        return self

    @property
    def speaker_independent(self) -> bool:
        """True for splits made by actor (:func:`speaker_split`, :func:`actor_kfold`)."""
        return self.protocol.startswith("speaker-independent")

    # -- storage ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        """A JSON-ready dict (run folders store the split they were trained on)."""
        out = {name: [int(p) for p in pos] for name, pos in self.parts().items()}
        out.update(protocol=self.protocol, description=self.description, n_rows=self.n_rows,
                   actor_parts=self.actor_parts)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Split":
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(train=d["train"], val=d.get("val", []), test=d["test"], protocol=d["protocol"],
                       description=d.get("description", ""), n_rows=d.get("n_rows"),
                       actor_parts=d.get("actor_parts"))
        except KeyError as missing:
            raise SerlibError(f"split record lacks the field {missing}; was it written by Split.to_dict()?") from None

    def __repr__(self) -> str:
        sizes = self.sizes()
        return (f"Split({self.protocol!r}, train={sizes['train']}, val={sizes['val']}, "
                f"test={sizes['test']})")


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def _usable_id(value) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value)) and value != ""


def _check_frame(df, need=()) -> None:
    if not isinstance(df, pd.DataFrame):
        raise SerlibError(f"expected the clip index as a pandas DataFrame, got {type(df).__name__}; "
                          "use serlib.datasets.index_ravdess(folder) or corpus.index")
    if len(df) == 0:
        raise SerlibError("the clip index is empty; nothing to split")
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise SerlibError(f"the clip index lacks the column(s) {', '.join(missing)}; "
                          "use serlib.datasets.index_ravdess(folder) or corpus.index")


def _groups(df: pd.DataFrame) -> np.ndarray:
    """Group number of each row: rows sharing a ``content_id`` share a group."""
    n = len(df)
    if "content_id" not in df.columns:
        return np.arange(n)
    ids = df["content_id"].to_numpy()
    groups = np.arange(n)
    first: dict = {}
    for i, value in enumerate(ids):
        if _usable_id(value):
            groups[i] = first.setdefault(value, i)
    return groups


def _actor_parts(df: pd.DataFrame, parts: dict) -> dict | None:
    if "actor" not in df.columns:
        return None
    column = df["actor"].to_numpy()
    return {name: sorted({int(a) for a in column[pos]}) for name, pos in parts.items()}


def _fraction_triple(fractions) -> tuple[float, float, float]:
    try:
        values = [float(f) for f in fractions]
    except (TypeError, ValueError):
        raise SerlibError(f"fractions={fractions!r}: give two or three numbers, e.g. (0.7, 0.15, 0.15)") from None
    if len(values) == 2:
        values = [values[0], 0.0, values[1]]
    if len(values) != 3:
        raise SerlibError(f"fractions={fractions!r}: give (train, test) or (train, val, test)")
    if any(v < 0 or not np.isfinite(v) for v in values):
        raise SerlibError(f"fractions={fractions!r}: fractions must be finite and non-negative")
    total = sum(values)
    if abs(total - 1.0) > 1e-6:
        hint = " (these look like percentages; divide by 100)" if abs(total - 100) < 1e-6 else ""
        raise SerlibError(f"fractions={fractions!r} sum to {total:g}, not 1{hint}")
    if values[0] <= 0:
        raise SerlibError(f"fractions={fractions!r}: the training fraction must be positive")
    if values[1] == 0 and values[2] == 0:
        raise SerlibError(f"fractions={fractions!r}: nothing left for validation or testing")
    return values[0], values[1], values[2]


def _protocol_name(fr) -> str:
    pct = [int(round(100 * f)) for f in fr]
    if fr[1] == 0:
        return f"random {pct[0]}/{pct[2]}"
    return "random " + "/".join(str(p) for p in pct)


def _largest_remainder(ideal: np.ndarray, total: int) -> np.ndarray:
    """Round ``ideal`` (summing to about ``total``) to integers that sum to ``total``."""
    base = np.floor(ideal).astype(int)
    short = int(total - base.sum())
    if short > 0:
        order = np.argsort(-(ideal - base), kind="stable")
        base[order[:short]] += 1
    elif short < 0:
        order = np.argsort(ideal - base, kind="stable")
        for i in order[: -short]:
            base[i] -= 1
    return base


# ---------------------------------------------------------------------------------------
# random split
# ---------------------------------------------------------------------------------------
def random_split(df: pd.DataFrame, fractions=(0.7, 0.15, 0.15), stratify="emotion", seed: int = 0) -> Split:
    """Shuffle clips into train/val/test regardless of speaker, as the reports did.

    ``fractions`` is ``(train, val, test)`` or ``(train, test)``: (0.7, 0.15, 0.15) for
    report 000, (0.75, 0.25) for report 001 (no validation set: ``val`` is empty), and
    (0.6, 0.15, 0.25) for report 004. ``stratify`` names a column (or list of columns)
    whose class proportions each part keeps (``None``: no stratification). Part sizes
    are rounded so they add up to ``len(df)``; within each class they are allocated by
    largest remainder.

    Clips that share a ``content_id`` (byte-identical recordings) move together, so a
    duplicate can never be tested on after being trained on. Actors, however, are shared
    between the parts: this split measures how well a model knows *these* speakers, not
    new ones (compare :func:`speaker_split`). Deterministic for a given ``seed``.
    Explained in the chapter "Evaluating honestly".
    """
    fr = _fraction_triple(fractions)
    cols = [] if stratify is None else ([stratify] if isinstance(stratify, str) else list(stratify))
    _check_frame(df, cols)
    n = len(df)
    rng = np.random.default_rng(seed)
    groups = _groups(df)

    # Each group (usually one clip) belongs to the stratum of its first row.
    if cols:
        keys = pd.Series(list(zip(*[df[c].astype(str).to_numpy() for c in cols])), dtype=object)
        key_of_row = keys.to_numpy()
    else:
        key_of_row = np.full(n, "all", dtype=object)
    group_ids, first_rows, group_sizes = np.unique(groups, return_index=True, return_counts=True)
    strata: dict = {}
    for g, first, size in zip(group_ids, first_rows, group_sizes):
        strata.setdefault(key_of_row[first], []).append((g, size))

    # Target sizes: global totals by rounding, then per stratum by largest remainder.
    totals = _largest_remainder(np.array(fr) * n, n)
    names = sorted(strata, key=str)
    counts = np.array([sum(s for _, s in strata[k]) for k in names])
    target = np.zeros((len(names), 3), dtype=int)
    for j in (2, 1):  # test, then validation; train takes the rest
        if fr[j] > 0:
            target[:, j] = _largest_remainder(counts * fr[j], int(totals[j]))
    target[:, 1] = np.minimum(target[:, 1], counts - target[:, 2])
    target[:, 0] = counts - target[:, 1] - target[:, 2]

    part_of_group: dict = {}
    for k, (n_test, n_val) in zip(names, target[:, [2, 1]]):
        members = strata[k]
        order = rng.permutation(len(members))
        filled = 0
        for i in order:
            g, size = members[i]
            if filled < n_test:
                part_of_group[g] = 2
            elif filled < n_test + n_val:
                part_of_group[g] = 1
            else:
                part_of_group[g] = 0
            filled += size
    part = np.array([part_of_group[g] for g in groups])
    parts = {name: np.flatnonzero(part == j) for j, name in enumerate(PARTS)}
    for j, name in enumerate(PARTS):
        if fr[j] > 0 and len(parts[name]) == 0:
            raise SerlibError(f"random_split: {n} clip(s) are too few for fractions {fractions!r} "
                              f"(the {name} part came out empty); use more clips or other fractions")
    protocol = _protocol_name(fr)
    strat = f"stratified by {', '.join(cols)}" if cols else "not stratified"
    description = (f"{protocol}: {len(parts['train'])}/{len(parts['val'])}/{len(parts['test'])} clips "
                   f"shuffled regardless of speaker ({strat}, seed {seed}); byte-identical clips kept "
                   "together, but every test speaker is also heard in training")
    split = Split(**parts, protocol=protocol, description=description, n_rows=n,
                  actor_parts=_actor_parts(df, parts))
    return split.check_disjoint(df, speakers=False)


# ---------------------------------------------------------------------------------------
# speaker-independent splits
# ---------------------------------------------------------------------------------------
def _as_actor_list(actors, name: str) -> list[int]:
    if actors is None:
        return []
    if isinstance(actors, (int, np.integer, str)):
        actors = [actors]
    out = []
    for a in actors:
        try:
            out.append(int(a))
        except (TypeError, ValueError):
            raise SerlibError(f"{name}: {a!r} is not an actor number (RAVDESS actors are 1-24)") from None
    if len(set(out)) != len(out):
        raise SerlibError(f"{name}: actor(s) listed twice in {out}")
    return out


def _actor_genders(df: pd.DataFrame) -> dict[int, str]:
    if "gender" in df.columns:
        pairs = df[["actor", "gender"]].drop_duplicates("actor")
        return {int(a): str(g) for a, g in zip(pairs["actor"], pairs["gender"])}
    return {int(a): ("male" if int(a) % 2 else "female") for a in df["actor"].unique()}


def _draw_balanced(candidates: Sequence[int], k: int, genders: dict, rng: np.random.Generator) -> list[int]:
    """Draw ``k`` actors, alternating genders (random first gender) as far as possible."""
    pools: dict[str, list[int]] = {}
    for a in sorted(candidates):
        pools.setdefault(genders[a], []).append(a)
    for key in pools:
        pools[key] = [pools[key][i] for i in rng.permutation(len(pools[key]))]
    keys = sorted(pools)
    keys = [keys[i] for i in rng.permutation(len(keys))]
    chosen: list[int] = []
    while len(chosen) < k:
        progressed = False
        for key in keys:
            if len(chosen) < k and pools[key]:
                chosen.append(pools[key].pop())
                progressed = True
        if not progressed:
            break
    return sorted(chosen)


def _fmt(actors) -> str:
    return "[" + ", ".join(f"{a:02d}" for a in sorted(actors)) + "]"


def _speaker_parts(df: pd.DataFrame, train, val, test, protocol: str, description: str) -> Split:
    column = df["actor"].astype(int).to_numpy()
    parts = {name: np.flatnonzero(np.isin(column, list(actors)))
             for name, actors in zip(PARTS, (train, val, test))}
    split = Split(**parts, protocol=protocol, description=description, n_rows=len(df),
                  actor_parts={name: sorted(actors) for name, actors in zip(PARTS, (train, val, test))})
    return split.check_disjoint(df, speakers=True)


def speaker_split(df: pd.DataFrame, test_actors, val_actors=None, n_val_actors: int = 2, seed: int = 0) -> Split:
    """Hold out whole speakers: ``test_actors`` for testing, others for training.

    ``val_actors`` are the validation speakers; when not given, ``n_val_actors`` of the
    remaining actors are drawn (deterministically from ``seed``), alternating between
    genders so that two validation actors are one woman and one man when possible.
    Every other actor is for training. Raises :class:`SerlibError` for an actor that is
    not in the index, an actor named twice, or too few actors left for training.
    Explained in the chapter "Evaluating honestly".
    """
    _check_frame(df, ["actor"])
    present = sorted({int(a) for a in df["actor"].unique()})
    test = _as_actor_list(test_actors, "test_actors")
    val = _as_actor_list(val_actors, "val_actors")
    for name, actors in (("test_actors", test), ("val_actors", val)):
        unknown = [a for a in actors if a not in present]
        if unknown:
            raise SerlibError(f"{name}: actor(s) {unknown} are not in this index (actors present: "
                              f"{_fmt(present)}); choose among those")
    if not test:
        raise SerlibError("speaker_split: give at least one test actor, e.g. test_actors=[19, 20]")
    both = sorted(set(test) & set(val))
    if both:
        raise SerlibError(f"speaker_split: actor(s) {both} are both test and validation actors; keep them apart")
    rest = [a for a in present if a not in test and a not in val]
    if val_actors is None:
        if n_val_actors < 0:
            raise SerlibError(f"n_val_actors={n_val_actors}: must be 0 or more")
        if n_val_actors > len(rest) - 1:
            raise SerlibError(f"speaker_split: {len(present)} actors are too few to hold out {len(test)} for "
                              f"testing and {n_val_actors} for validation and still train on one; "
                              "use fewer held-out actors")
        rng = np.random.default_rng(seed)
        val = _draw_balanced(rest, n_val_actors, _actor_genders(df), rng)
        rest = [a for a in rest if a not in val]
    if not rest:
        raise SerlibError(f"speaker_split: no actor is left for training after holding out {_fmt(test)} "
                          f"and {_fmt(val)}; hold out fewer actors")
    description = (f"speaker-independent: train on actors {_fmt(rest)}, validate on {_fmt(val)}, "
                   f"test on {_fmt(test)}; no test voice is heard in training")
    return _speaker_parts(df, rest, val, test, "speaker-independent", description)


def final_split(df: pd.DataFrame, val_actors=None, n_val_actors: int = 1, seed: int = 0) -> Split:
    """Every speaker for the final model: no test part, at most a few validation speakers.

    ``val_actors`` (or, when not given, ``n_val_actors`` drawn gender-balanced from
    ``seed`` as in :func:`speaker_split`) only steer training (early stopping, learning-rate
    reduction, checkpoints); every other actor trains. With no validation actor the
    callbacks watch the training curve. Nothing is left to test on, so a model trained on
    this split has no test scores. Explained in the chapter "Evaluating honestly".
    """
    _check_frame(df, ["actor"])
    present = sorted({int(a) for a in df["actor"].unique()})
    val = _as_actor_list(val_actors, "val_actors")
    unknown = [a for a in val if a not in present]
    if unknown:
        raise SerlibError(f"val_actors: actor(s) {unknown} are not in this index (actors present: "
                          f"{_fmt(present)}); choose among those")
    if val_actors is None:
        if not 0 <= n_val_actors < len(present):
            raise SerlibError(f"final_split: {len(present)} actor(s) cannot give {n_val_actors} for validation "
                              "and still train on one; use fewer validation actors")
        val = _draw_balanced(present, n_val_actors, _actor_genders(df), np.random.default_rng(seed))
    train = [a for a in present if a not in val]
    if not train:
        raise SerlibError(f"final_split: no actor is left for training after validating on {_fmt(val)}; "
                          "validate on fewer actors")
    description = (f"final model: train on every actor but the validation ones, {_fmt(train)}; validate on "
                   f"{_fmt(val) if val else 'none (callbacks watch the training curve)'}; no test speakers, "
                   "so no test scores")
    return _speaker_parts(df, train, val, [], "final model, every speaker", description)


def actor_kfold(df: pd.DataFrame, k: int = 5, seed: int = 0, n_val_actors: int = 2) -> list[Split]:
    """Cross-validation over speakers: ``k`` splits whose test actors partition the actors.

    Actors are shuffled within each gender (from ``seed``) and dealt to the folds in
    turn, men first then women continuing the same rotation, so each fold gets as even a
    share of both genders (and of actors) as the numbers allow: with RAVDESS actors
    01-20 and ``k=5``, every fold tests two women and two men. Each fold then draws
    ``n_val_actors`` validation actors from its own training actors (balanced by
    gender where possible); the rest train. Every actor is tested exactly once.
    Explained in the chapter "Evaluating honestly".
    """
    _check_frame(df, ["actor"])
    present = sorted({int(a) for a in df["actor"].unique()})
    try:
        k = int(k)
    except (TypeError, ValueError):
        raise SerlibError(f"actor_kfold: k={k!r} is not a whole number") from None
    if k < 2:
        raise SerlibError(f"actor_kfold: k={k} folds; use at least 2")
    if k > len(present):
        raise SerlibError(f"actor_kfold: k={k} folds need at least {k} actors, but the index has "
                          f"{len(present)} ({_fmt(present)}); use k <= {len(present)}")
    if n_val_actors < 0:
        raise SerlibError(f"n_val_actors={n_val_actors}: must be 0 or more")
    largest_fold = -(-len(present) // k)
    if len(present) - largest_fold - n_val_actors < 1:
        raise SerlibError(f"actor_kfold: {len(present)} actors are too few for k={k} folds with "
                          f"{n_val_actors} validation actor(s) each; lower k or n_val_actors")
    genders = _actor_genders(df)
    rng = np.random.default_rng(seed)
    dealt: list[int] = []
    for gender in sorted({genders[a] for a in present}, key=lambda g: (g != "male", g)):
        pool = [a for a in present if genders[a] == gender]
        dealt += [pool[i] for i in rng.permutation(len(pool))]
    folds = [sorted(dealt[i::k]) for i in range(k)]
    splits = []
    for i, test in enumerate(folds):
        others = [a for a in present if a not in test]
        fold_rng = np.random.default_rng([seed, i])
        val = _draw_balanced(others, n_val_actors, genders, fold_rng)
        train = [a for a in others if a not in val]
        protocol = f"speaker-independent, actor {k}-fold (fold {i + 1}/{k})"
        description = (f"speaker-independent fold {i + 1} of {k}: test on actors {_fmt(test)}, validate on "
                       f"{_fmt(val)}, train on the other {len(train)}")
        splits.append(_speaker_parts(df, train, val, test, protocol, description))
    return splits


# ---------------------------------------------------------------------------------------
# gender subsets
# ---------------------------------------------------------------------------------------
_GENDER_ALIASES = {"male": "male", "m": "male", "man": "male", "men": "male",
                   "female": "female", "f": "female", "woman": "female", "women": "female"}


def filter_gender(df: pd.DataFrame, gender: str) -> pd.DataFrame:
    """The clips of one gender (``"male"``/``"female"``, or ``"m"``/``"f"``).

    The original index labels are kept, so ``sub.index`` says which rows of the full
    index were taken (``X[sub.index]`` selects their features when ``X`` was computed
    for a full index numbered 0..n-1). Splits made from ``sub`` hold positions into
    ``sub``. Explained in the chapter "Gender and gender-specific models".
    """
    _check_frame(df, ["gender"])
    key = _GENDER_ALIASES.get(str(gender).strip().lower())
    if key is None:
        raise SerlibError(f"filter_gender: unknown gender {gender!r}; use 'male' or 'female'")
    sub = df[df["gender"].astype(str).str.lower() == key]
    if sub.empty:
        raise SerlibError(f"filter_gender: the index holds no {key} clips")
    return sub


__all__ = ["Split", "random_split", "speaker_split", "final_split", "actor_kfold", "filter_gender"]
