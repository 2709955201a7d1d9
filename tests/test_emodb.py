"""EmoDB as a second corpus: its names, the index, detection, the download, and scoring a
RAVDESS-shaped run on it over the emotions both corpora share."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import serlib.datasets.download as download_mod
from serlib import cli
from serlib.datasets import (COLUMNS, EMOTIONS, completed_download, detect_corpus, download_emodb, get_corpus,
                             index_emodb, index_folder, label_from_name, load_corpus, parse_any)
from serlib.datasets.download import DOWNLOAD_MARKER, EMODB_URL
from serlib.datasets.emodb import EMODB_EMOTIONS, SPEAKERS, parse_name
from serlib.errors import ConfigError, DataError, SerlibError

EMODB = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "emodb"
MODEL = "das2019_model_b"     # 4,456 parameters on 40 MFCC means: the fastest model
LETTER = {"angry": "W", "boredom": "L", "disgust": "E", "fearful": "A", "happy": "F", "sad": "T", "neutral": "N"}


# ---------------------------------------------------------------------------- names
@pytest.mark.parametrize("name, fields", [
    ("03a01Fa.wav", dict(actor=103, gender="male", emotion="happy", statement="a01", repetition=1)),
    ("16b10Wb.flac", dict(actor=116, gender="female", emotion="angry", statement="b10", repetition=2)),
    ("wav/08a02Ld", dict(actor=108, gender="female", emotion="boredom", statement="a02", repetition=4)),
])
def test_parse_name(name, fields):
    row = parse_name(name)
    assert {k: row[k] for k in fields} == fields
    assert row["intensity"] is None and row["vocal_channel"] == "speech"


def test_every_letter_maps_to_serlibs_names():
    got = {letter: parse_name(f"03a01{letter}a.wav")["emotion"] for letter in "WLEAFTN"}
    assert got == {"W": "angry", "L": "boredom", "E": "disgust", "A": "fearful", "F": "happy", "T": "sad",
                   "N": "neutral"}
    assert set(EMODB_EMOTIONS) - set(EMOTIONS) == {"boredom"}


def test_speakers_match_the_data_readme():
    women = sorted(s for s, g in SPEAKERS.items() if g == "female")
    men = sorted(s for s, g in SPEAKERS.items() if g == "male")
    assert women == [8, 9, 13, 14, 16] and men == [3, 10, 11, 12, 15]


@pytest.mark.parametrize("name, says", [
    ("recording.wav", "is not an EmoDB name (expected an EmoDB name SSTTTEV like 03a01Fa.wav"),
    ("03a01Fa1.wav", "is not an EmoDB name"),
    ("03-01-05-02-01-02-12.wav", "is not an EmoDB name"),
    ("04a01Fa.wav", "names speaker 04, not one of EmoDB's ten"),
    ("03a03Fa.wav", "names text a03, not one of EmoDB's ten"),
    ("03a01Xa.wav", "has emotion letter 'X'"),
])
def test_bad_names_say_what_is_expected(name, says):
    with pytest.raises(ValueError) as error:
        parse_name(name)
    assert says in str(error.value) and name in str(error.value) and "\n" not in str(error.value)


def test_names_of_both_corpora_are_told_apart():
    adapter, row = parse_any("Actor_01/03-01-05-02-01-02-12.wav")
    assert adapter.name == "ravdess" and row["actor"] == 12
    adapter, row = parse_any("x/12a05Ta.flac")
    assert adapter.name == "emodb" and row["actor"] == 112
    assert parse_any("hello.wav") is None
    assert label_from_name("12a05Ta.flac") == {"corpus": "emodb", "speaker": "emodb12", "emotion": "sad"}
    assert label_from_name("03-01-05-02-01-02-12.wav")["speaker"] == "ravdess12"
    with pytest.raises(ConfigError, match="unknown corpus 'tess'"):
        get_corpus("tess")


# ---------------------------------------------------------------------------- index
def _tone(seed: int, seconds: float = 0.6, sr: int = 16_000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.2 * np.sin(2 * np.pi * (120 + 20 * seed) * t)).astype(np.float32)


def _emodb_folder(root: Path, names) -> Path:
    import soundfile as sf

    root.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        sf.write(root / name, _tone(i), 16_000, subtype="PCM_16")
    return root


NAMES = ["03a01Fa.wav", "03a01Wa.wav", "03a02Lb.wav", "08a01Na.wav", "08b01Tc.wav", "08b02Ea.wav", "16a04Ad.wav"]


def test_index_emodb_folder(tmp_path):
    folder = _emodb_folder(tmp_path / "emodb", NAMES + ["notes.wav"])
    lines = []
    df = index_folder(folder, warn=lines.append)                 # detected from the names
    assert list(df.columns) == COLUMNS and len(df) == len(NAMES)
    assert set(df["corpus"]) == {"emodb"} and sorted(df["speaker"].unique()) == ["emodb03", "emodb08", "emodb16"]
    assert sorted(df["actor"].unique()) == [103, 108, 116] and df["intensity"].isna().all()
    assert df.set_index("speaker")["gender"].to_dict() == {"emodb03": "male", "emodb08": "female",
                                                           "emodb16": "female"}
    assert dict(df["emotion"].value_counts()) == {e: 1 for e in ("happy", "angry", "boredom", "neutral", "sad",
                                                                 "disgust", "fearful")}
    assert len(lines) == 2 and f"skipping {folder / 'notes.wav'}: 'notes.wav' is not an EmoDB name" in lines[0]
    assert index_emodb(folder, warn=lines.append)["path"].tolist() == df["path"].tolist()


def test_detection_explicit_corpus_and_errors(tmp_path, standin_dir):
    folder = _emodb_folder(tmp_path / "emodb", NAMES)
    assert detect_corpus(folder).name == "emodb" and detect_corpus(standin_dir).name == "ravdess"
    with pytest.raises(DataError, match="no readable RAVDESS clips") as error:
        index_folder(folder, "ravdess", warn=lambda line: None)
    assert "EmoDB" not in str(error.value)                       # asked for RAVDESS: says what RAVDESS needs
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"or EmoDB clips named like 03a01Fa.wav"):
        index_folder(empty)
    with pytest.raises(DataError, match="no such folder; pass the folder that holds EmoDB's"):
        index_folder(tmp_path / "missing", "emodb")


def test_load_corpus_banner_classes_and_quick_subset(tmp_path):
    folder = _emodb_folder(tmp_path / "emodb", NAMES + ["03a01Fb.wav"])
    corpus = load_corpus(folder, verbose=False)
    assert corpus.kind == "emodb" and corpus.source == "emodb" and not corpus.synthetic
    assert corpus.banner() == f"EmoDB — {folder} — 8 clips, 3 speakers (2 female, 1 male), 7 emotions"
    assert corpus.classes() == ["neutral", "happy", "sad", "angry", "fearful", "disgust", "boredom"]
    quick = corpus.quick_subset()
    assert len(quick) == 7 and "03a01Fb.wav" not in " ".join(quick.paths)   # one take per text and emotion
    with pytest.raises(ConfigError, match="unknown corpus"):
        load_corpus(folder, corpus="savee")


def test_mixed_use_keeps_speakers_apart(tmp_path, standin_dir):
    emodb = load_corpus(_emodb_folder(tmp_path / "emodb", NAMES), verbose=False).index
    ravdess = load_corpus(standin_dir, verbose=False).index
    both = pd.concat([ravdess, emodb], ignore_index=True)
    assert both["actor"].nunique() == ravdess["actor"].nunique() + emodb["actor"].nunique()
    assert both.groupby("actor")["corpus"].nunique().max() == 1


def test_cli_index(tmp_path, capsys):
    folder = _emodb_folder(tmp_path / "emodb", NAMES)
    out = tmp_path / "index.csv"
    assert cli.main(["index", str(folder), "--csv", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"7 EmoDB clips in {folder}" in text and "by speaker:" in text and "emodb08 (108)" in text
    assert "  boredom          1" in text
    df = pd.read_csv(out)
    assert list(df.columns) == COLUMNS and set(df["corpus"]) == {"emodb"}
    assert cli.main(["index", str(folder), "--corpus", "ravdess", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == len(NAMES) + 2 and "no readable RAVDESS clips" in err[-1]    # a line per file, then why
    assert all("is not a RAVDESS name" in line for line in err[:len(NAMES)])
    assert cli.main(["index", str(folder), "--corpus", "tess"]) == 2
    assert "unknown corpus 'tess'" in capsys.readouterr().err


# ---------------------------------------------------------------------------- download
def _archive(make_zip, tiny_wav, names) -> bytes:
    files = {f"wav/{name}": tiny_wav(i) for i, name in enumerate(names)}
    files.update({"lablaut/03a01Fa.lab": b"labels", "erkennung.txt": b"listener results",
                  "__MACOSX/wav/._03a01Fa.wav": b"\x00"})
    return make_zip(files)


def test_download_with_md5(tmp_path, zip_server, make_zip, tiny_wav, md5_of):
    data = _archive(make_zip, tiny_wav, NAMES[:3])
    zip_server.routes["/download.zip"] = data
    dest = tmp_path / "emodb"
    got = download_emodb(dest, url=zip_server.url("/download.zip"), md5=md5_of(data), progress=False)
    assert got == dest and completed_download(dest) == dest
    assert sorted(p.name for p in dest.iterdir()) == sorted([DOWNLOAD_MARKER, *NAMES[:3]])   # flat, wav only
    marker = json.loads((dest / DOWNLOAD_MARKER).read_text())
    assert marker["corpus"] == "emodb" and marker["archive_md5"] == md5_of(data) and marker["files"] == 3
    assert load_corpus(dest, verbose=False).kind == "emodb"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emodb"]       # no temporary file left
    with pytest.raises(DataError, match="checksum mismatch"):
        download_emodb(tmp_path / "other", url=zip_server.url("/download.zip"), md5="0" * 32, progress=False)
    assert not (tmp_path / "other").exists()


def test_download_without_md5_checks_the_clip_names(tmp_path, zip_server, make_zip, tiny_wav, md5_of, monkeypatch):
    data = _archive(make_zip, tiny_wav, NAMES)
    zip_server.routes["/download.zip"] = data
    url = zip_server.url("/download.zip")
    with pytest.raises(DataError) as error:      # not the 535 names of the release: refused, nothing kept
        download_emodb(tmp_path / "emodb", url=url, progress=False)
    assert "holds 7 EmoDB clips, not the 535 of the official release" in str(error.value)
    assert "--md5" in str(error.value) and sorted(tmp_path.iterdir()) == []
    stems = "\n".join(sorted(n.split(".")[0] for n in NAMES)).encode()
    monkeypatch.setattr(download_mod, "EMODB_CLIPS", len(NAMES))
    monkeypatch.setattr(download_mod, "EMODB_NAMES_SHA256", hashlib.sha256(stems).hexdigest())
    dest = download_emodb(tmp_path / "emodb", url=url, progress=False)
    assert len(list(dest.glob("*.wav"))) == len(NAMES)
    assert json.loads((dest / DOWNLOAD_MARKER).read_text())["archive_md5"] == md5_of(data)
    assert EMODB_URL == "http://emodb.bilderbar.info/download/download.zip"


def test_download_refuses_an_archive_without_emodb_clips(tmp_path, zip_server, make_zip, tiny_wav, md5_of):
    data = make_zip({"Actor_01/03-01-01-01-01-01-01.wav": tiny_wav(0)})
    zip_server.routes["/ravdess.zip"] = data
    with pytest.raises(DataError, match="holds no EmoDB clips .* it is not the EmoDB archive"):
        download_emodb(tmp_path / "emodb", url=zip_server.url("/ravdess.zip"), md5=md5_of(data), progress=False)
    assert sorted(tmp_path.iterdir()) == []


def test_cli_download_emodb(tmp_path, zip_server, make_zip, tiny_wav, md5_of, capsys):
    data = _archive(make_zip, tiny_wav, NAMES[:2])
    zip_server.routes["/cli.zip"] = data
    dest = tmp_path / "emodb"
    argv = ["download", "--corpus", "emodb", "--dest", str(dest), "--url", zip_server.url("/cli.zip"), "-q"]
    assert cli.main([*argv, "--md5", md5_of(data)]) == 0
    assert capsys.readouterr().out.strip() == str(dest) and len(list(dest.glob("*.wav"))) == 2
    assert cli.main([*argv[:4], str(tmp_path / "x"), *argv[5:]]) == 2      # no --md5: names checked, refused
    err = capsys.readouterr().err.strip().splitlines()
    assert "publish no checksum" in err[0] and len(err) == 2 and "not the 535" in err[1]


# ---------------------------------------------------------------------------- cross-corpus scoring
@pytest.fixture(scope="module")
def trained(standin_dir, tmp_path_factory):
    """A tiny run trained on the RAVDESS-shaped stand-in (eight emotions)."""
    from serlib.training import train

    out = tmp_path_factory.mktemp("emodb-train") / "run"
    return train(MODEL, standin_dir, out_dir=out, seed=0, epochs=2, batch_size=16, quick=True, verbose=0)


@pytest.fixture(scope="module")
def emodb_like(standin_dir, tmp_path_factory):
    """Stand-in clips renamed as EmoDB clips: two speakers, two texts, seven emotions (boredom from calm)."""
    from serlib.datasets.ravdess import parse_name as ravdess_name

    root = tmp_path_factory.mktemp("emodb-like") / "emodb"
    root.mkdir()
    by_emotion = {}
    for path in sorted(standin_dir.rglob("*.wav")):
        by_emotion.setdefault(ravdess_name(path.name)["emotion"], []).append(path)
    for emotion, letter in LETTER.items():
        sources = by_emotion["calm" if emotion == "boredom" else emotion]
        for i, (speaker, text) in enumerate([("03", "a01"), ("03", "a02"), ("08", "a01"), ("08", "b01")]):
            shutil.copy(sources[i], root / f"{speaker}{text}{letter}a.wav")
    return root


def test_evaluate_on_another_corpus_scores_the_shared_emotions(trained, emodb_like):
    from serlib.evaluation import evaluate_run

    m = evaluate_run(trained.dir, emodb_like, predictions=True)
    shared = ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
    assert m["labels"] == shared and m["n"] == 24 and m["dropped"] == 4 and m["dropped_labels"] == ["boredom"]
    assert np.asarray(m["confusion"]).shape == (6, 6) and np.asarray(m["confusion"]).sum() == 24
    cross = m["cross_corpus"]
    assert cross["train_corpus"] == "ravdess" and cross["target_corpus"] == "emodb"
    assert cross["shared_labels"] == shared and cross["left_out_labels"] == ["boredom"]
    assert cross["left_out_clips"] == 4 and cross["run_labels_absent_from_target"] == ["calm", "surprised"]
    u = cross["unrestricted"]
    assert u["columns"] == list(trained.labels) and np.asarray(u["confusion"]).shape == (6, 8)
    assert set(u["predicted_absent"]) == {"calm", "surprised"}
    # the rule, recomputed from the per-clip probabilities
    preds = m["predictions"]
    assert len(preds) == 24 and all(p["true"] in shared for p in preds)
    restricted = [max(shared, key=lambda label: p["probabilities"][label]) for p in preds]
    anything = [max(p["probabilities"], key=p["probabilities"].get) for p in preds]
    assert [p["predicted"] for p in preds] == restricted and [p["predicted_any_label"] for p in preds] == anything
    assert m["accuracy"] == pytest.approx(np.mean([r == p["true"] for r, p in zip(restricted, preds)]))
    assert u["accuracy"] == pytest.approx(np.mean([a == p["true"] for a, p in zip(anything, preds)]))
    assert sum(u["predicted_absent"].values()) == sum(a in ("calm", "surprised") for a in anything)
    recalls = [np.mean([r == e for r, p in zip(restricted, preds) if p["true"] == e]) for e in shared]
    assert m["uar"] == pytest.approx(np.mean(recalls))


def test_evaluate_on_the_runs_own_corpus_is_unchanged(trained, standin_dir):
    from serlib.evaluation import evaluate_run

    m = evaluate_run(trained.dir, standin_dir)
    assert "cross_corpus" not in m and len(m["labels"]) == 8 and m["data"]["corpus"] == "ravdess"


def test_cli_evaluate_and_predict_on_emodb_names(trained, emodb_like, capsys):
    assert cli.main(["evaluate", str(trained.dir), "--data", str(emodb_like), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 24 and out["cross_corpus"]["unrestricted"]["columns"][1] == "calm"
    assert cli.main(["evaluate", str(trained.dir), "--data", str(emodb_like)]) == 0
    text = capsys.readouterr().out
    assert "cross-corpus: run trained on RAVDESS, scored on EmoDB over the 6 labels both share" in text
    assert "left out: boredom (4 clips)" in text and "unrestricted (arg-max over all 8 labels)" in text
    assert "n=24" in text
    clip = emodb_like / "03a01Fa.wav"
    assert cli.main(["predict", str(trained.dir), str(clip), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)[0]
    assert result["from_name"] == {"corpus": "emodb", "speaker": "emodb03", "emotion": "happy"}
    assert cli.main(["predict", str(trained.dir), str(clip)]) == 0
    assert "[name: happy, emodb03]" in capsys.readouterr().out


def test_a_filter_on_a_column_the_target_lacks_is_skipped():
    from serlib.evaluation import _skip_foreign_filter

    class Entry:
        data_filter = {"intensity": "strong", "gender": "female"}

    df = pd.DataFrame({"intensity": [None, None], "gender": ["female", "male"]})
    entry = Entry()
    assert _skip_foreign_filter(entry, df) == ["intensity"] and entry.data_filter == {"gender": "female"}


def test_cli_evaluate_bad_input_is_one_line(trained, tmp_path, capsys):
    assert cli.main(["evaluate", str(trained.dir), "--data", str(tmp_path / "none"), "--corpus", "emodb"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such data folder" in err[0]
    folder = _emodb_folder(tmp_path / "emodb", ["03a01La.wav"])          # boredom only: nothing shared
    assert cli.main(["evaluate", str(trained.dir), "--data", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "none of its 1 clips has a label this run knows" in err[-1]
    with pytest.raises(SerlibError, match="unknown corpus"):
        cli._corpus_name("crema")


# ---------------------------------------------------------------------------- the real EmoDB
@pytest.fixture(scope="module")
def emodb_dir() -> Path:
    if not EMODB.is_dir():
        pytest.skip(f"real EmoDB copy not found at {EMODB}")
    return EMODB


@pytest.mark.realdata
def test_real_emodb_index(emodb_dir):
    corpus = load_corpus(emodb_dir, verbose=False)
    df = corpus.index
    assert corpus.kind == "emodb" and len(df) == 535 and df["actor"].nunique() == 10
    assert df["emotion"].value_counts().to_dict() == {"angry": 127, "boredom": 81, "neutral": 79, "happy": 71,
                                                      "fearful": 69, "sad": 62, "disgust": 46}
    assert int(df["emotion"].isin(EMOTIONS).sum()) == 454
    genders = df.drop_duplicates("actor").set_index("actor")["gender"].to_dict()
    assert genders == {100 + s: g for s, g in SPEAKERS.items()}
    assert not (set(df["actor"]) & set(range(1, 25)))          # never a RAVDESS actor number
    names = sorted(Path(p).name.split(".")[0] for p in df["path"])
    assert hashlib.sha256("\n".join(names).encode()).hexdigest() == download_mod.EMODB_NAMES_SHA256


@pytest.mark.realdata
@pytest.mark.slow
def test_real_emodb_cross_corpus_n(trained, emodb_dir):
    from serlib.evaluation import evaluate_run

    m = evaluate_run(trained.dir, emodb_dir)
    assert m["n"] == 454 and m["dropped"] == 81 and m["cross_corpus"]["left_out_labels"] == ["boredom"]
    assert len(m["labels"]) == 6 and 0.0 <= m["uar"] <= 1.0


# ---------------------------------------------------------------------------- the benchmark script
def test_cross_corpus_benchmark_scores_resumes_and_skips(trained, emodb_like, tmp_path, load_benchmark, capsys):
    bench = load_benchmark("cross_corpus")
    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copytree(trained.dir, runs / f"{MODEL}-speaker-fold0")
    (runs / "other_model-speaker-fold0").mkdir()                      # still training: no run.json yet
    out = tmp_path / "cross.json"
    argv = ["--runs", str(runs), "--data", str(emodb_like), "--out", str(out)]
    assert bench.main(argv) == 0
    text = capsys.readouterr().out
    assert "other_model: no finished run" in text and "1 run(s) scored" in text
    data = json.loads(out.read_text())
    assert data["data"]["shared_clips"] == 24 and data["data"]["left_out"] == {"boredom": 4}
    record = data["records"][MODEL]
    assert record["cross"]["n"] == 24 and len(record["cross"]["labels"]) == 6
    assert record["uar_drop"] == pytest.approx(record["within"]["uar"] - record["cross"]["uar"])
    preds = record["predictions"]
    assert len(preds["clips"]) == 24 and all("/" not in clip and clip.endswith(".wav") for clip in preds["clips"])
    assert np.asarray(preds["proba"]).shape == (24, 8)
    assert bench.main(argv) == 0                                        # resumed: nothing scored again
    assert "scored already" in capsys.readouterr().out
    assert json.loads(out.read_text())["records"][MODEL]["created"] == record["created"]
