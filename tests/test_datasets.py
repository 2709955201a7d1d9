"""RAVDESS names and index, the synthetic stand-in corpus, and corpus resolution."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

import serlib.datasets.corpus as corpus_mod
from serlib.datasets import (EMOTIONS, Corpus, QUICK_ACTORS, index_ravdess, load_corpus,
                             make_standin_corpus, parse_name)
from serlib.datasets.standin import STANDIN_MARKER, synthesize_clip
from serlib.errors import DataError

# ------------------------------------------------------------------------------ names


@pytest.mark.parametrize("name, expected", [
    ("03-01-05-02-01-02-12.wav", dict(actor=12, gender="female", emotion="angry", intensity="strong",
                                      statement=1, repetition=2, vocal_channel="speech", modality="audio-only")),
    ("Actor_01/03-01-01-01-02-01-01.flac", dict(actor=1, gender="male", emotion="neutral", intensity="normal",
                                                statement=2, repetition=1)),
    ("03-02-06-01-01-01-23", dict(actor=23, gender="male", emotion="fearful", vocal_channel="song")),
    ("01-01-08-02-02-02-24.wav", dict(actor=24, emotion="surprised", modality="audio-video")),
])
def test_parse_name_valid(name, expected):
    fields = parse_name(name)
    for key, value in expected.items():
        assert fields[key] == value, key


@pytest.mark.parametrize("name, complaint", [
    ("recording.wav", "not a RAVDESS name"),
    ("03-01-05-02-01-02.wav", "not a RAVDESS name"),          # six fields
    ("3-1-5-2-1-2-12.wav", "not a RAVDESS name"),             # one-digit fields
    ("03-01-0a-02-01-02-12.wav", "not a RAVDESS name"),
    ("03-01-09-01-01-01-01.wav", "emotion"),
    ("03-03-05-01-01-01-01.wav", "vocal channel"),
    ("04-01-05-01-01-01-01.wav", "modality"),
    ("03-01-05-03-01-01-01.wav", "intensity"),
    ("03-01-05-01-03-01-01.wav", "statement"),
    ("03-01-05-01-01-03-01.wav", "repetition"),
    ("03-01-05-01-01-01-25.wav", "actor"),
    ("03-01-05-01-01-01-00.wav", "actor"),
    ("03-01-01-02-01-01-01.wav", "strong-intensity neutral"),
])
def test_parse_name_invalid(name, complaint):
    with pytest.raises(ValueError, match=complaint):
        parse_name(name)


# ------------------------------------------------------------------------------ real data


def test_real_counts(ravdess_index):
    df = ravdess_index
    assert len(df) == 1200
    assert sorted(df["actor"].unique()) == list(range(1, 21))
    assert (df.groupby("actor").size() == 60).all()
    assert df["gender"].value_counts().to_dict() == {"female": 600, "male": 600}
    counts = df["emotion"].value_counts()
    assert counts["neutral"] == 80
    assert all(counts[e] == 160 for e in EMOTIONS[1:])
    assert set(df["vocal_channel"]) == {"speech"}
    assert set(df.loc[df["emotion"] == "neutral", "intensity"]) == {"normal"}
    assert df["duration"].between(2.9, 5.3).all()


def test_real_stereo_clips(ravdess_index):
    # The data README lists five stereo clips (its heading says four; the list has five).
    stereo = sorted(Path(p).stem for p in ravdess_index.loc[ravdess_index["channels"] == 2, "path"])
    assert stereo == ["03-01-02-01-01-02-01", "03-01-02-01-02-02-05", "03-01-03-01-02-01-20",
                      "03-01-06-01-01-02-20", "03-01-08-01-02-02-01"]
    assert set(ravdess_index["channels"]) == {1, 2}


def test_real_duplicate_pair_shares_content_id(ravdess_index):
    df = ravdess_index
    stems = df["path"].map(lambda p: Path(p).stem)
    a = df.loc[stems == "03-01-03-01-02-01-07", "content_id"].item()
    b = df.loc[stems == "03-01-03-01-02-02-07", "content_id"].item()
    assert a == b
    duplicated = df[df["content_id"].duplicated(keep=False)]
    assert sorted(duplicated["path"].map(lambda p: Path(p).stem)) == ["03-01-03-01-02-01-07", "03-01-03-01-02-02-07"]


def test_real_song(ravdess_song_dir):
    df = index_ravdess(ravdess_song_dir, content_ids=False)
    assert len(df) == 836
    assert set(df["vocal_channel"]) == {"song"}
    assert set(df["emotion"]) == set(EMOTIONS[:6])
    assert 18 not in set(df["actor"]) and df["actor"].nunique() == 19


# ------------------------------------------------------------------------------ index: bad input


def _copy_clips(src: Path, dest: Path, n: int) -> list[Path]:
    clips = sorted(src.rglob("*.wav"))[:n]
    out = []
    for clip in clips:
        target = dest / clip.parent.name / clip.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, target)
        out.append(target)
    return out


def test_index_missing_folder(tmp_path):
    with pytest.raises(DataError, match="no such folder") as info:
        index_ravdess(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value) and "\n" not in str(info.value)


def test_index_skips_bad_files_with_one_line_each(tmp_path, standin_dir):
    good = _copy_clips(standin_dir, tmp_path, 3)
    actor = tmp_path / "Actor_01"
    (actor / "not-a-ravdess-name.wav").write_bytes(good[0].read_bytes())
    (actor / "03-01-02-01-01-01-01.wav").write_bytes(b"")                                # empty
    (actor / "03-01-02-01-01-02-01.wav").write_bytes(os.urandom(3000))                   # noise bytes
    (actor / "03-01-02-01-02-01-01.wav").write_text("this is a text file, not audio\n")  # text
    sf.write(actor / "03-01-02-01-02-02-01.wav", np.zeros(160), 16000)                    # 10 ms
    (actor / "._03-01-03-01-01-01-01.wav").write_bytes(b"\x00\x05\x16\x07")              # macOS litter: ignored
    (actor / "notes.txt").write_text("ignored: not audio by suffix")
    lines = []
    df = index_ravdess(tmp_path, warn=lines.append)
    assert len(df) == 3
    assert sorted(df["path"]) == sorted(map(str, good))
    assert len(lines) == 6, lines           # five bad files + one summary
    assert all("\n" not in line for line in lines)
    for name in ("not-a-ravdess-name", "03-01-02-01-01-01-01", "03-01-02-01-01-02-01",
                 "03-01-02-01-02-01-01", "03-01-02-01-02-02-01"):
        assert sum(name in line for line in lines[:-1]) == 1
    assert "empty" in next(line for line in lines if "03-01-02-01-01-01-01" in line)
    assert "too short" in next(line for line in lines if "03-01-02-01-02-02-01" in line)
    assert "skipped 5" in lines[-1] and "indexed 3" in lines[-1]


def test_index_all_bad_is_a_data_error(tmp_path, capsys):
    (tmp_path / "03-01-02-01-01-01-01.wav").write_bytes(b"")
    (tmp_path / "03-01-02-01-01-02-01.wav").write_text("text")
    with pytest.raises(DataError, match="no readable RAVDESS clips"):
        index_ravdess(tmp_path)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "skipped 2" in err[-1]


def test_index_flat_folder(tmp_path, standin_dir):
    for clip in sorted(standin_dir.rglob("*.wav"))[:4]:
        shutil.copy(clip, tmp_path / clip.name)
    df = index_ravdess(tmp_path)
    assert len(df) == 4 and (df["sample_rate"] == 16000).all()


# ------------------------------------------------------------------------------ stand-in corpus


@pytest.fixture(scope="module")
def standin_index(standin_dir):
    return index_ravdess(standin_dir)


def test_standin_shape(standin_dir, standin_index):
    df = standin_index
    assert len(df) == 240
    assert sorted(df["actor"].unique()) == [1, 2, 3, 4]
    assert (df.groupby("actor").size() == 60).all()
    assert df.drop_duplicates("actor")["gender"].tolist() == ["male", "female", "male", "female"]
    counts = df["emotion"].value_counts()
    assert counts["neutral"] == 16 and all(counts[e] == 32 for e in EMOTIONS[1:])
    assert set(df.loc[df["emotion"] == "neutral", "intensity"]) == {"normal"}
    assert (df["sample_rate"] == 16000).all() and (df["channels"] == 1).all()
    assert df["duration"].between(1.4, 2.6).all()
    assert df["content_id"].is_unique
    assert sorted(p.name for p in standin_dir.iterdir()) == [STANDIN_MARKER] + [f"Actor_0{a}" for a in (1, 2, 3, 4)]
    info = sf.info(df["path"][0])
    assert info.subtype == "PCM_16" and info.format == "WAV"


def test_standin_is_deterministic(standin_dir):
    y = synthesize_clip(3, "happy", 2, 1, 2)
    on_disk, sr = sf.read(standin_dir / "Actor_03" / "03-01-03-02-01-02-03.wav", dtype="float32")
    assert sr == 16000
    np.testing.assert_allclose(on_disk, y, atol=1 / 32768 + 1e-7)
    assert not np.allclose(synthesize_clip(3, "happy", 2, 1, 2, seed=1)[:8000], y[:8000])
    assert not np.allclose(synthesize_clip(3, "happy", 2, 1, 1)[:8000], y[:8000])   # repetitions differ


def test_standin_emotions_change_prosody(standin_index):
    df = standin_index

    def rms(path):
        y, _ = sf.read(path)
        return float(np.sqrt(np.mean(y ** 2)))

    strong = df[df["intensity"] == "strong"]
    for actor in (1, 2, 3, 4):
        mine = strong[strong["actor"] == actor]
        angry, sad = mine[mine["emotion"] == "angry"], mine[mine["emotion"] == "sad"]
        assert np.mean([rms(p) for p in angry["path"]]) > 2 * np.mean([rms(p) for p in sad["path"]])
        assert sad["duration"].mean() > angry["duration"].mean()          # sad is slower
    normal_angry = df[(df["emotion"] == "angry") & (df["intensity"] == "normal")]
    strong_angry = strong[strong["emotion"] == "angry"]
    assert np.mean([rms(p) for p in strong_angry["path"]]) > np.mean([rms(p) for p in normal_angry["path"]])


def _mfcc_stats(y: np.ndarray, sr: int, n_fft: int = 512, hop: int = 160, n_mels: int = 40, n_mfcc: int = 20):
    """Mean and standard deviation of plain MFCCs (numpy only, so the test stays quick)."""
    from scipy.fft import dct

    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop] * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    mel = lambda f: 2595 * np.log10(1 + f / 700)                       # noqa: E731
    edges = 700 * (10 ** (np.linspace(0, mel(sr / 2), n_mels + 2) / 2595) - 1)
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    bank = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0, None)
    mfcc = dct(np.log(power @ bank.T + 1e-10), type=2, norm="ortho", axis=1)[:, :n_mfcc]
    return np.r_[mfcc.mean(axis=0), mfcc.std(axis=0)]


def test_standin_is_learnable_across_speakers(standin_index):
    """MFCC mean+std and logistic regression, trained on actors 1-3, tested on actor 4."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    df = standin_index
    with threadpool_limits(1):   # tiny matrix products: BLAS threads only get in the way
        X = np.array([_mfcc_stats(*sf.read(path, dtype="float32")) for path in df["path"]])
    labels = df["emotion"].to_numpy()
    train = (df["actor"] != 4).to_numpy()
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)).fit(X[train], labels[train])
    accuracy = float(np.mean(clf.predict(X[~train]) == labels[~train]))
    assert accuracy > 0.5, f"unseen-speaker accuracy {accuracy:.2f} (chance 0.125)"


def test_standin_reused_and_atomic(tmp_path):
    dest = tmp_path / "standin"
    make_standin_corpus(dest, actors=(5,))
    clip = dest / "Actor_05" / "03-01-01-01-01-01-05.wav"
    stamp = clip.stat().st_mtime_ns
    assert make_standin_corpus(dest, actors=(5,)) == dest
    assert clip.stat().st_mtime_ns == stamp                      # reused, not rewritten
    assert [p.name for p in tmp_path.iterdir()] == ["standin"]   # no temporary folders left
    make_standin_corpus(dest, actors=(6,))                       # different request: replaced
    assert sorted(p.name for p in dest.iterdir() if p.is_dir()) == ["Actor_06"]
    assert [p.name for p in tmp_path.iterdir()] == ["standin"]


def test_standin_interrupted_leaves_nothing(tmp_path, monkeypatch):
    import serlib.datasets.standin as standin

    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) > 5:
            raise KeyboardInterrupt
        return np.zeros(16000, dtype=np.float32)

    monkeypatch.setattr(standin, "synthesize_clip", failing)
    with pytest.raises(KeyboardInterrupt):
        make_standin_corpus(tmp_path / "standin", actors=(1,))
    assert list(tmp_path.iterdir()) == []


def test_standin_refuses_foreign_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(DataError, match="not a serlib stand-in"):
        make_standin_corpus(tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "precious"


# ------------------------------------------------------------------------------ corpus


@pytest.fixture
def no_real_data(monkeypatch, tmp_path):
    """No SERLIB_DATA_DIR, no shared copy, an empty cache: load_corpus must fall back."""
    monkeypatch.delenv("SERLIB_DATA_DIR", raising=False)
    monkeypatch.setattr(corpus_mod, "shared_data_root", lambda: None)
    monkeypatch.setenv("SERLIB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(corpus_mod, "_WARNED", set())
    return tmp_path / "cache"


def test_corpus_explicit_standin_is_flagged(standin_dir, capsys):
    c = load_corpus(standin_dir, verbose=True)
    assert c.source == "synthetic" and c.synthetic and len(c) == 240
    banner = c.banner()
    assert banner.startswith("SYNTHETIC STAND-IN CORPUS — results are not RAVDESS results")
    assert "240 clips, 4 actors (2 female, 2 male)" in banner and "\n" not in banner
    assert f"serlib: {banner}" in capsys.readouterr().err.splitlines()     # logged at INFO


def test_corpus_falls_back_to_standin_loudly(no_real_data, standin_dir, capsys):
    no_real_data.mkdir()
    (no_real_data / "standin").symlink_to(standin_dir)   # the cached stand-in, to skip regeneration
    c = load_corpus(verbose=False)
    assert c.synthetic and c.root == no_real_data / "standin"
    err = capsys.readouterr().err
    assert "SYNTHETIC STAND-IN CORPUS" in err and "NOT RAVDESS" in err and len(err.splitlines()) >= 5
    load_corpus(verbose=False)
    assert capsys.readouterr().err == ""       # the warning once per process and folder


def test_corpus_download_failure_falls_back(no_real_data, standin_dir, monkeypatch, capsys):
    no_real_data.mkdir()
    (no_real_data / "standin").symlink_to(standin_dir)

    def offline(*args, **kwargs):
        raise DataError("https://example.invalid/x.zip: download failed (offline)")

    monkeypatch.setattr(corpus_mod, "download_ravdess", offline)
    c = load_corpus(allow_download=True, verbose=False)
    assert c.synthetic
    assert "could not download" in capsys.readouterr().err


def test_corpus_env_var(monkeypatch, standin_dir, tmp_path):
    monkeypatch.setenv("SERLIB_DATA_DIR", str(standin_dir))
    assert load_corpus(verbose=False).root == standin_dir
    monkeypatch.setenv("SERLIB_DATA_DIR", str(tmp_path / "typo"))
    with pytest.raises(DataError, match="SERLIB_DATA_DIR"):
        load_corpus(verbose=False)


def test_corpus_explicit_missing_folder(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        load_corpus(tmp_path / "missing", verbose=False)


def test_corpus_real(ravdess_dir, capsys):
    c = load_corpus(ravdess_dir)
    assert c.source == "ravdess" and not c.synthetic
    assert c.banner() == f"RAVDESS — {ravdess_dir} — 1,200 clips, 20 actors (10 female, 10 male), 8 emotions"
    assert f"serlib: {c.banner()}" in capsys.readouterr().err.splitlines()     # logged at INFO


def test_corpus_prefers_shared_copy(monkeypatch, ravdess_dir):
    monkeypatch.delenv("SERLIB_DATA_DIR", raising=False)
    monkeypatch.setattr(corpus_mod, "shared_data_root", lambda: ravdess_dir.parent)
    c = load_corpus(verbose=False)
    assert c.root == ravdess_dir and c.source == "ravdess"


def test_corpus_subset_and_labels(standin_dir):
    c = load_corpus(standin_dir, verbose=False)
    sub = c.subset(actors=[2, 4], emotions=["angry", "sad"])
    assert len(sub) == 2 * 2 * 8 and set(sub.index["actor"]) == {2, 4}
    assert list(sub.index.index) == list(range(len(sub)))
    assert sub.synthetic and "subset" in sub.banner()
    assert len(c.subset(actors=3, emotions="neutral")) == 4
    assert len(c.subset(vocal_channel="speech")) == 240
    with pytest.raises(DataError):
        c.subset(vocal_channel="song")
    assert len(c) == 240                                    # the original is untouched
    labels = sub.labels()
    assert isinstance(labels, np.ndarray) and len(labels) == len(sub) and set(labels) == {"angry", "sad"}
    assert set(c.labels("gender")) == {"male", "female"}
    assert c.classes() == EMOTIONS and sub.classes() == ["sad", "angry"]
    with pytest.raises(ValueError):
        c.labels("colour")


def test_quick_subset_real(ravdess_dir):
    q = load_corpus(ravdess_dir, verbose=False).quick_subset()
    df = q.index
    assert len(df) == 128
    assert sorted(df["actor"].unique()) == sorted(QUICK_ACTORS) and {19, 20} <= set(df["actor"])
    assert df.drop_duplicates("actor")["gender"].value_counts().to_dict() == {"female": 4, "male": 4}
    assert (df["emotion"].value_counts() == 16).all() and df["emotion"].nunique() == 8
    assert set(df["repetition"]) == {1}
    assert "quick subset" in q.banner()


def test_quick_subset_standin(standin_dir):
    q = load_corpus(standin_dir, verbose=False).quick_subset()
    assert len(q) == 64 and sorted(q.index["actor"].unique()) == [1, 2, 3, 4]
    assert q.index["emotion"].nunique() == 8 and q.synthetic


def test_index_cached_in_memory(tmp_path, standin_dir, monkeypatch):
    root = tmp_path / "corpus"
    _copy_clips(standin_dir, root, 4)
    calls = []
    real_index = corpus_mod.index_ravdess
    monkeypatch.setattr(corpus_mod, "index_ravdess", lambda folder: calls.append(folder) or real_index(folder))
    a = load_corpus(root, verbose=False)
    b = load_corpus(root, verbose=False)
    assert len(calls) == 1 and len(a) == len(b) == 4
    a.index["emotion"] = "mangled"                          # a caller changing its copy ...
    assert set(load_corpus(root, verbose=False).index["emotion"]) == {"neutral"}   # ... leaves the cache
    extra = sorted(standin_dir.rglob("*.wav"))[-1]
    shutil.copy(extra, root / "Actor_01" / extra.name)      # the folder changed: re-indexed
    assert len(load_corpus(root, verbose=False)) == 5 and len(calls) == 2


def test_corpus_rejects_unknown_source(standin_dir):
    with pytest.raises(ValueError):
        Corpus(root=standin_dir, source="mystery", index=pd.DataFrame())
