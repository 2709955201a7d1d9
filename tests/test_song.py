"""serlib.song: RAVDESS song clips of the training actors as extra training data."""
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from serlib.errors import DataError
from serlib.song import find_song_folder, song_for_split
from serlib.training import default_split, prepare_data, song_data

MODEL = "das2019_model_b"  # 40 MFCC means per clip: the fastest model
TINY = dict(epochs=2, batch_size=16, quick=True, verbose=0)


@pytest.fixture(scope="module")
def speech(standin_dir):
    return prepare_data(MODEL, standin_dir, verbose=0)


def _as_song(prep, *, reverse_labels=False):
    """The stand-in clips relabelled as song (same actors), optionally with its label list reversed."""
    song = dataclasses.replace(prep, index=prep.index.assign(vocal_channel="song"))
    if reverse_labels:
        n = len(prep.labels)
        song = dataclasses.replace(song, labels=list(reversed(prep.labels)), y=n - 1 - prep.y)
    return song


def test_only_the_training_actors_songs_are_added(speech):
    split = default_split(speech.index, seed=0)
    X, y, record = song_for_split(speech, split, _as_song(speech, reverse_labels=True))
    train_actors = sorted(set(speech.index["actor"].iloc[split.train].astype(int)))
    assert record["actors"] == train_actors
    held_out = set(speech.index["actor"].iloc[np.concatenate([split.val, split.test])].astype(int))
    assert not held_out & set(record["actors"])
    mine = np.flatnonzero(speech.index["actor"].astype(int).isin(train_actors).to_numpy())
    assert record["n_clips"] == len(mine) == len(X)
    # labels are matched by name, not by position in the song's own label list
    np.testing.assert_array_equal(y, speech.y[mine])
    np.testing.assert_array_equal(X, speech.X[mine])


def test_no_song_adds_nothing(speech):
    X, y, record = song_for_split(speech, default_split(speech.index, seed=0), None)
    assert X.shape == (0, *speech.X.shape[1:]) and len(y) == 0 and record is None


def test_song_with_other_features_is_refused(speech):
    other = dataclasses.replace(_as_song(speech), X=speech.X[:, :10])
    with pytest.raises(DataError, match="do not match"):
        song_for_split(speech, default_split(speech.index, seed=0), other)


def test_fit_split_trains_on_the_added_songs_and_records_them(speech):
    from serlib.training import fit_split

    split = default_split(speech.index, seed=0)
    run = fit_split(speech, split, seed=0, song=_as_song(speech), **{**TINY, "quick": False})
    assert run.info["song"]["n_clips"] == len(split.train)   # every training actor's clips, once more
    plain = fit_split(speech, split, seed=0, **{**TINY, "quick": False})
    assert plain.info["song"] is None
    assert run.info["n_test"] == plain.info["n_test"]        # the test part is untouched


def test_song_folder_is_found_beside_the_speech_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("SERLIB_SONG_DIR", raising=False)
    monkeypatch.setattr("serlib.config.shared_data_root", lambda: None)
    speech_dir = tmp_path / "Audio_Speech_Actors_01-24"
    speech_dir.mkdir()
    assert find_song_folder(speech_dir) is None
    (tmp_path / "Audio_Song_Actors_01-24").mkdir()
    assert find_song_folder(speech_dir) == tmp_path / "Audio_Song_Actors_01-24"
    elsewhere = tmp_path / "my-song"
    elsewhere.mkdir()
    monkeypatch.setenv("SERLIB_SONG_DIR", str(elsewhere))
    assert find_song_folder(speech_dir) == elsewhere
    monkeypatch.setenv("SERLIB_SONG_DIR", str(tmp_path / "typo"))
    with pytest.raises(DataError, match="SERLIB_SONG_DIR names no folder"):
        find_song_folder(speech_dir)


def _trains_with_song(prep, monkeypatch):
    """``prep`` whose entry is a variant whose recipe trains with song (gone after the test)."""
    from serlib import recipes
    from serlib.models import register_variant, registry

    for name in ("_REGISTRY", "_ALIASES", "_PARAMS"):
        monkeypatch.setattr(registry, name, dict(getattr(registry, name)))
    monkeypatch.setattr(recipes, "_REGISTERED", dict(recipes._REGISTERED))
    entry = register_variant(prep.model_name, f"{prep.model_name}_with_song", train_with_song=True)
    assert entry.train_with_song and not prep.entry.train_with_song
    return dataclasses.replace(prep, entry=entry)


def test_song_data_follows_the_entry_and_the_caller(speech, monkeypatch):
    from serlib.models import get_recipe
    from serlib.training.protocols import _song

    assert song_data(MODEL, False, speech=speech) is None
    assert song_data(MODEL, None, speech=speech) is None            # this entry does not train with song
    assert speech.data["synthetic"]
    withsong = _trains_with_song(speech, monkeypatch)
    assert song_data(MODEL, None, speech=withsong, verbose=0) is None   # never with the stand-in
    assert _song(MODEL, None, speech, get_recipe(MODEL, train_with_song=True), 0) is None


def test_a_speech_folder_passed_as_song_is_refused(ravdess_dir, ravdess_song_dir):
    speech = prepare_data("das2019_model_b", ravdess_dir, verbose=0)
    with pytest.raises(DataError, match="not song"):
        song_data("das2019_model_b", ravdess_dir, speech=speech, verbose=0)
    song = song_data("das2019_model_b", ravdess_song_dir, speech=speech, verbose=0)
    assert set(song.index["vocal_channel"]) == {"song"}
    assert set(song.labels) <= set(speech.labels)


def test_a_model_that_trains_with_song_finds_the_folder_beside_the_speech(ravdess_dir, ravdess_song_dir,
                                                                          monkeypatch):
    monkeypatch.delenv("SERLIB_SONG_DIR", raising=False)
    from serlib.models import get_recipe
    from serlib.training.protocols import _song

    speech = prepare_data("das2019_model_b", ravdess_dir, verbose=0)
    recipe = get_recipe("das2019_model_b", "train_with_song=true")   # the recipe decides, overridable per run
    song = _song("das2019_model_b", None, speech, recipe, 0)
    assert song is not None and Path(song.data["path"]).resolve() == Path(ravdess_song_dir).resolve()
    assert _song("das2019_model_b", None, speech, get_recipe("das2019_model_b"), 0) is None
    speech = _trains_with_song(speech, monkeypatch)
    song = song_data("das2019_model_b", None, speech=speech, verbose=0)
    assert song is not None and Path(song.data["path"]).resolve() == Path(ravdess_song_dir).resolve()


def test_cli_refuses_a_missing_song_folder_in_one_line(standin_dir, tmp_path, capsys):
    from serlib import cli

    out = tmp_path / "run"
    status = cli.main(["train", MODEL, "--data", str(standin_dir), "--out", str(out),
                       "--song", str(tmp_path / "no-such-song"), "--quick"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1
    assert "no-such-song: no such song folder" in err
    assert not out.exists()


def test_cli_song_and_no_song_exclude_each_other(standin_dir, tmp_path):
    from serlib import cli

    with pytest.raises(SystemExit) as exc:
        cli.main(["train", MODEL, "--data", str(standin_dir), "--out", str(tmp_path / "r"),
                  "--song", str(tmp_path), "--no-song"])
    assert exc.value.code == 2
