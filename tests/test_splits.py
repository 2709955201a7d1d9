"""Tests for serlib.splits: random and speaker-independent splits, folds, gender subsets."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fake_index import ravdess_like_frame
from serlib.errors import SerlibError
from serlib.splits import Split, actor_kfold, filter_gender, random_split, speaker_split


def with_duplicates(df: pd.DataFrame) -> pd.DataFrame:
    """Give the Actor_07 pair (and a triple of actor 3) one content id, as byte-identical clips."""
    df = df.copy()
    pair = df["content_id"].isin(["03-01-03-01-02-01-07", "03-01-03-01-02-02-07"])
    df.loc[pair, "content_id"] = "dup-07"
    triple = df["content_id"].isin(["03-01-05-02-01-01-03", "03-01-05-02-01-02-03", "03-01-05-02-02-01-03"])
    df.loc[triple, "content_id"] = "dup-03"
    return df


@pytest.fixture(scope="module")
def frame():
    return with_duplicates(ravdess_like_frame())


def side_of(split: Split, n: int) -> np.ndarray:
    side = np.full(n, "", dtype=object)
    for name, pos in split.parts().items():
        side[pos] = name
    return side


# --------------------------------------------------------------------------- random_split
@pytest.mark.parametrize("fractions, sizes", [
    ((0.7, 0.15, 0.15), (840, 180, 180)),
    ((0.75, 0.25), (900, 0, 300)),
    ((0.75, 0.0, 0.25), (900, 0, 300)),
    ((0.6, 0.15, 0.25), (720, 180, 300)),
])
def test_random_split_sizes_partition_and_protocol(frame, fractions, sizes):
    split = random_split(frame, fractions, seed=3)
    got = split.sizes()
    # groups of identical clips may move a part by at most the largest group size (3)
    for name, want in zip(("train", "val", "test"), sizes):
        assert abs(got[name] - want) <= 3, (name, got, sizes)
    everything = np.concatenate([split.train, split.val, split.test])
    assert sorted(everything.tolist()) == list(range(len(frame)))
    assert split.protocol.startswith("random ")
    assert not split.speaker_independent
    assert split.n_rows == len(frame)


def test_random_split_protocol_names(frame):
    assert random_split(frame, (0.7, 0.15, 0.15)).protocol == "random 70/15/15"
    assert random_split(frame, (0.75, 0.25)).protocol == "random 75/25"
    assert random_split(frame, (0.75, 0, 0.25)).protocol == "random 75/25"
    assert random_split(frame, (0.6, 0.15, 0.25)).protocol == "random 60/15/25"


def test_random_split_is_stratified_by_emotion(frame):
    split = random_split(frame, (0.6, 0.15, 0.25), seed=1)
    overall = frame["emotion"].value_counts(normalize=True)
    for name, pos in split.parts().items():
        share = frame.iloc[pos]["emotion"].value_counts(normalize=True).reindex(overall.index)
        assert np.allclose(share, overall, atol=0.02), name


def test_random_split_deterministic_and_seed_dependent(frame):
    a = random_split(frame, seed=5)
    b = random_split(frame, seed=5)
    c = random_split(frame, seed=6)
    for name in ("train", "val", "test"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.test, c.test)


def test_random_split_keeps_identical_clips_together(frame):
    groups = frame.groupby("content_id").indices
    dup_groups = [pos for pos in groups.values() if len(pos) > 1]
    assert len(dup_groups) == 2
    for seed in range(30):
        split = random_split(frame, (0.6, 0.15, 0.25), seed=seed)
        side = side_of(split, len(frame))
        for pos in dup_groups:
            assert len(set(side[pos])) == 1, (seed, side[pos])
        assert split.overlap(frame)["content_ids"] == 0


def test_random_split_shares_actors(frame):
    split = random_split(frame, seed=0)
    actors = split.actors()
    assert actors == split.actors(frame)
    assert set(actors["test"]) <= set(actors["train"])  # the flaw of random splits
    assert len(split.overlap(frame)["actors"]) == 20
    with pytest.raises(SerlibError, match="appear in more than one part"):
        split.check_disjoint(frame, speakers=True)


def test_random_split_without_stratification_or_content_id():
    df = ravdess_like_frame(actors=[1, 2]).drop(columns=["content_id"])
    split = random_split(df, (0.5, 0.5), stratify=None, seed=0)
    assert split.sizes() == {"train": 60, "val": 0, "test": 60}


def test_random_split_multi_column_stratification(frame):
    split = random_split(frame, (0.7, 0.15, 0.15), stratify=["emotion", "gender"], seed=2)
    test = frame.iloc[split.test]
    counts = test.groupby(["emotion", "gender"]).size()
    assert counts.min() >= 5 and counts.max() <= 13


@pytest.mark.parametrize("fractions, message", [
    ((0.7, 0.2, 0.2), "sum to"),
    ((70, 15, 15), "percentages"),
    ((0.0, 0.5, 0.5), "training fraction"),
    ((1.0, 0.0, 0.0), "nothing left"),
    ((0.5, -0.1, 0.6), "non-negative"),
    ((0.5, 0.2, 0.2, 0.1), r"\(train, test\)"),
])
def test_random_split_rejects_bad_fractions(frame, fractions, message):
    with pytest.raises(SerlibError, match=message):
        random_split(frame, fractions)


def test_random_split_rejects_too_few_clips_and_bad_input(frame):
    with pytest.raises(SerlibError, match="too few"):
        random_split(frame.iloc[:2], (0.7, 0.15, 0.15), stratify=None)
    with pytest.raises(SerlibError, match="lacks the column"):
        random_split(frame.drop(columns=["emotion"]))
    with pytest.raises(SerlibError, match="DataFrame"):
        random_split(frame.to_dict("records"))
    with pytest.raises(SerlibError, match="empty"):
        random_split(frame.iloc[:0])


# --------------------------------------------------------------------------- speaker_split
def test_speaker_split_holds_out_named_actors(frame):
    split = speaker_split(frame, test_actors=[19, 20], seed=0)
    actors = split.actors()
    assert actors["test"] == [19, 20]
    assert len(actors["val"]) == 2
    genders = {("male" if a % 2 else "female") for a in actors["val"]}
    assert genders == {"male", "female"}  # one woman and one man
    assert set(actors["train"]) == set(range(1, 21)) - {19, 20} - set(actors["val"])
    assert split.speaker_independent and split.protocol == "speaker-independent"
    assert split.overlap(frame)["actors"] == []
    assert set(frame.iloc[split.test]["actor"]) == {19, 20}
    assert split.sizes() == {"train": 960, "val": 120, "test": 120}
    assert "19" in split.description and "20" in split.description


def test_speaker_split_explicit_val_and_no_val(frame):
    split = speaker_split(frame, test_actors=[1, 2], val_actors=["03", 4])
    assert split.actors()["val"] == [3, 4]
    split = speaker_split(frame, test_actors=5, n_val_actors=0)
    assert split.actors()["val"] == [] and len(split.val) == 0
    assert split.actors()["test"] == [5]


def test_speaker_split_val_draw_depends_on_seed(frame):
    draws = {tuple(speaker_split(frame, [19, 20], seed=s).actors()["val"]) for s in range(10)}
    assert len(draws) > 1
    assert speaker_split(frame, [19, 20], seed=4).actors() == speaker_split(frame, [19, 20], seed=4).actors()


def test_speaker_split_errors(frame):
    with pytest.raises(SerlibError, match=r"actor\(s\) \[23\] are not in this index"):
        speaker_split(frame, test_actors=[23])
    with pytest.raises(SerlibError, match="both test and validation"):
        speaker_split(frame, test_actors=[1], val_actors=[1, 2])
    with pytest.raises(SerlibError, match="3 actors are too few"):
        speaker_split(ravdess_like_frame([1, 2, 3]), test_actors=[1], n_val_actors=2)
    with pytest.raises(SerlibError, match="no actor is left"):
        speaker_split(ravdess_like_frame([1, 2]), test_actors=[1], val_actors=[2])
    with pytest.raises(SerlibError, match="at least one test actor"):
        speaker_split(frame, test_actors=[])
    with pytest.raises(SerlibError, match="not an actor number"):
        speaker_split(frame, test_actors=["seven"])


# --------------------------------------------------------------------------- actor_kfold
def test_actor_kfold_covers_every_actor_once_and_balances_gender(frame):
    folds = actor_kfold(frame, k=5, seed=0)
    assert len(folds) == 5
    tested = [a for f in folds for a in f.actors()["test"]]
    assert sorted(tested) == list(range(1, 21))
    for i, fold in enumerate(folds):
        actors = fold.actors()
        assert len(actors["test"]) == 4
        assert sum(a % 2 for a in actors["test"]) == 2  # two men, two women
        assert len(actors["val"]) == 2 and sum(a % 2 for a in actors["val"]) == 1
        assert not set(actors["val"]) & set(actors["test"])
        assert set(actors["train"]) | set(actors["val"]) | set(actors["test"]) == set(range(1, 21))
        assert fold.protocol == f"speaker-independent, actor 5-fold (fold {i + 1}/5)"
        fold.check_disjoint(frame)  # no actor or identical clip on two sides
        assert len(fold.train) + len(fold.val) + len(fold.test) == len(frame)


def test_actor_kfold_deterministic_and_seeded(frame):
    a = [f.actors()["test"] for f in actor_kfold(frame, k=4, seed=1)]
    b = [f.actors()["test"] for f in actor_kfold(frame, k=4, seed=1)]
    c = [f.actors()["test"] for f in actor_kfold(frame, k=4, seed=2)]
    assert a == b and a != c


def test_actor_kfold_uneven_numbers():
    df = ravdess_like_frame(actors=[1, 2, 3, 4, 5, 6, 7, 9, 11])  # 6 men, 3 women
    folds = actor_kfold(df, k=4, seed=0, n_val_actors=1)
    sizes = sorted(len(f.actors()["test"]) for f in folds)
    assert sizes == [2, 2, 2, 3]
    assert sorted(a for f in folds for a in f.actors()["test"]) == [1, 2, 3, 4, 5, 6, 7, 9, 11]
    women = [sum(1 - a % 2 for a in f.actors()["test"]) for f in folds]
    assert max(women) - min(women) <= 1


def test_actor_kfold_errors(frame):
    with pytest.raises(SerlibError, match="at least 2"):
        actor_kfold(frame, k=1)
    with pytest.raises(SerlibError, match="need at least 21 actors"):
        actor_kfold(frame, k=21)
    with pytest.raises(SerlibError, match="too few"):
        actor_kfold(ravdess_like_frame([1, 2, 3]), k=3, n_val_actors=2)


# --------------------------------------------------------------------------- Split helpers
def test_filter_gender(frame):
    men = filter_gender(frame, "male")
    women = filter_gender(frame, "F")
    assert len(men) == len(women) == 600
    assert set(men["actor"]) == set(range(1, 21, 2))
    assert list(women.index[:3]) == list(frame.index[frame["gender"] == "female"][:3])  # labels kept
    folds = actor_kfold(women, k=5)
    assert all(len(f.actors()["test"]) == 2 for f in folds)
    with pytest.raises(SerlibError, match="unknown gender"):
        filter_gender(frame, "other")
    with pytest.raises(SerlibError, match="no female clips"):
        filter_gender(men, "female")


def test_check_disjoint_catches_overlaps(frame):
    bad = Split(train=[0, 1, 2], val=[], test=[2, 3], protocol="hand-made")
    with pytest.raises(SerlibError, match="more than one part"):
        bad.check_disjoint()
    pair = np.flatnonzero(frame["content_id"] == "dup-07")
    straddle = Split(train=[pair[0]], val=[], test=[pair[1]], protocol="hand-made")
    with pytest.raises(SerlibError, match="byte-identical"):
        straddle.check_disjoint(frame)
    with pytest.raises(SerlibError, match="past the end"):
        Split(train=[0], val=[], test=[5000], protocol="x").check_disjoint(frame)
    with pytest.raises(SerlibError, match="negative"):
        Split(train=[-1], val=[], test=[1], protocol="x")


def test_split_round_trip_summary_and_row_check(frame):
    split = speaker_split(frame, [19, 20], seed=0)
    back = Split.from_dict(split.to_dict())
    for name in ("train", "val", "test"):
        assert np.array_equal(getattr(back, name), getattr(split, name))
    assert back.protocol == split.protocol and back.actors() == split.actors()
    table = split.summary(frame)
    assert table.loc["test", "clips"] == 120 and table.loc["test", "actors"] == 2
    assert table.loc["test", "female"] == 60 and table.loc["test", "male"] == 60
    assert set(split.frames(frame)["test"]["actor"]) == {19, 20}
    with pytest.raises(SerlibError, match="made for an index of 1200 rows"):
        split.actors(frame.iloc[:100])
    with pytest.raises(SerlibError, match="recorded no actors"):
        Split(train=[0], val=[], test=[1], protocol="x").actors()


# --------------------------------------------------------------------------- real data
def test_real_actor07_duplicate_pair_never_straddles(ravdess_index):
    df = ravdess_index
    names = df["path"].map(lambda p: Path(p).name.split(".")[0])
    pair = np.flatnonzero(names.isin(["03-01-03-01-02-01-07", "03-01-03-01-02-02-07"]).to_numpy())
    assert len(pair) == 2
    assert df["content_id"].iloc[pair[0]] == df["content_id"].iloc[pair[1]]
    for seed in range(20):
        split = random_split(df, (0.7, 0.15, 0.15), seed=seed)
        side = side_of(split, len(df))
        assert side[pair[0]] == side[pair[1]], seed
        assert split.overlap(df)["content_ids"] == 0
    folds = actor_kfold(df, k=5)
    assert sorted(a for f in folds for a in f.actors()["test"]) == sorted(int(a) for a in df["actor"].unique())
    for fold in folds:
        fold.check_disjoint(df)
