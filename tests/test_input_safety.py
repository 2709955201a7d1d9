"""What users and attackers feed serlib (issue 25): an unwritable cache, a bad SERLIB_N_JOBS,
poisoned cache files, very long recordings and absurd sample rates, and concurrent
``serlib index --csv`` runs writing the same file."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from serlib import audio, cli, config, feature_cache
from serlib import features as F
from serlib.audio import MAX_ANALYSIS_SECONDS, audio_info, load_audio
from serlib.errors import AudioError, SerlibError
from serlib.features import FeatureSpec

SMALL = FeatureSpec(kind="mfcc", sr=16000, n_mfcc=13, n_fft=512, hop_length=160, n_frames=50)
REPO = Path(__file__).resolve().parent.parent


def _voice(sr: int, seconds: float, seed: int = 0, f0: float = 140.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.2 * np.sin(2 * np.pi * 0.7 * t))) / sr
    tone = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
    return (0.2 * tone + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture
def wav_files(tmp_path):
    """Twenty short, different 16 kHz clips (enough for a consolidated corpus array)."""
    folder = tmp_path / "wavs"
    folder.mkdir()
    paths = []
    for i in range(20):
        paths.append(folder / f"clip{i:02d}.wav")
        sf.write(paths[-1], _voice(16000, 0.6 + 0.03 * i, seed=i, f0=100 + 7 * i), 16000, subtype="PCM_16")
    return paths


@pytest.fixture
def counting(monkeypatch):
    """The clips features.extract_file computes (in-process runs: n_jobs=1)."""
    calls = []
    real = F.extract_file
    monkeypatch.setattr(F, "extract_file", lambda path, spec: calls.append(os.path.basename(path)) or real(path, spec))
    return calls


def _warnings(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("serlib: warning:")]


# ------------------------------------------------------------------ case 2: an unwritable cache
def test_a_cache_below_a_regular_file_warns_once_and_computes_in_memory(wav_files, tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SERLIB_CACHE_DIR", str(blocker / "cache"))   # mkdir fails, even for root
    X = feature_cache.extract_corpus(wav_files, SMALL, n_jobs=1, progress=False)
    again = feature_cache.extract_corpus(wav_files[:3], SMALL, n_jobs=1, progress=False)
    lines = _warnings(capsys.readouterr().err)
    assert len(lines) == 1, lines                                       # once, not per call or clip
    assert str(blocker / "cache") in lines[0] and "SERLIB_CACHE_DIR" in lines[0]
    assert "clip" not in lines[0]                                       # the cache is named, not a clip
    np.testing.assert_array_equal(X, feature_cache.extract_corpus(wav_files, SMALL, n_jobs=1, progress=False, cache=False))
    np.testing.assert_array_equal(again, X[:3])
    assert blocker.read_text() == "not a folder"


def test_a_read_only_cache_folder_is_named_and_left_alone(wav_files, cache_root, monkeypatch, capsys):
    """A folder the user may not write to (simulated: root ignores chmod)."""
    (cache_root / "features").mkdir(parents=True)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == cache_root / "features"
                        else real_access(p, mode, **kw))
    X = feature_cache.extract_corpus(wav_files[:4], SMALL, n_jobs=1, progress=False)
    assert X.shape == (4, 50, 13)
    (line,) = _warnings(capsys.readouterr().err)
    assert line.startswith(f"serlib: warning: {cache_root / 'features'}: ") and "clip" not in line
    assert list((cache_root / "features").iterdir()) == []              # nothing written there


def test_cache_subdir_answers_none_for_an_unwritable_root(tmp_path, monkeypatch, capsys):
    (tmp_path / "f").write_text("x")
    monkeypatch.setenv("SERLIB_CACHE_DIR", str(tmp_path / "f"))
    assert config.cache_dir() == tmp_path / "f"                          # never raises
    assert config.cache_subdir("augmented") is None
    assert config.cache_subdir("features") is None
    assert len(_warnings(capsys.readouterr().err)) == 1
    monkeypatch.setenv("SERLIB_CACHE_DIR", str(tmp_path / "ok"))
    assert config.cache_subdir("augmented") == tmp_path / "ok" / "augmented"


@pytest.mark.parametrize("value", ["abc", "0", "-2", "2.5", "four"])
def test_a_bad_n_jobs_is_one_line_naming_the_variable(value, monkeypatch, wav_files, cache_root):
    monkeypatch.setenv("SERLIB_N_JOBS", value)
    with pytest.raises(SerlibError) as info:
        config.n_jobs()
    message = str(info.value)
    assert message.startswith(f"SERLIB_N_JOBS={value!r}:") and "\n" not in message
    with pytest.raises(SerlibError, match="SERLIB_N_JOBS"):
        feature_cache.extract_corpus(wav_files[:2], SMALL, progress=False)


def test_a_good_n_jobs_is_used(monkeypatch):
    monkeypatch.setenv("SERLIB_N_JOBS", " 3 ")
    assert config.n_jobs() == 3 and feature_cache._resolve_jobs(None) == 3
    monkeypatch.setenv("SERLIB_N_JOBS", "")
    assert config.n_jobs() == max(1, os.cpu_count() or 1)


def test_cli_train_and_evaluate_with_an_unwritable_cache(standin_dir, tmp_path, monkeypatch, capsys):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("SERLIB_CACHE_DIR", str(tmp_path / "a-file" / "cache"))
    _RUNS.clear()
    run = _tiny_run(standin_dir, tmp_path)
    data = _RUNS["data"]
    assert len(_warnings(capsys.readouterr().err)) == 1                 # features and augmented copies: once
    config._WARNED.clear()
    assert cli.main(["evaluate", str(run), "--data", str(data), "--json"]) == 0
    captured = capsys.readouterr()
    (line,) = _warnings(captured.err)
    assert str(tmp_path / "a-file" / "cache") in line
    assert json.loads(captured.out)["n"] > 0
    monkeypatch.setenv("SERLIB_N_JOBS", "abc")
    assert cli.main(["evaluate", str(run), "--data", str(data)]) == 2
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert err.startswith("serlib evaluate: SERLIB_N_JOBS='abc':")


def test_the_standin_corpus_in_an_unwritable_cache_is_one_line_naming_it(tmp_path, monkeypatch):
    from serlib.datasets import corpus
    from serlib.errors import DataError

    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("SERLIB_CACHE_DIR", str(tmp_path / "a-file" / "cache"))
    monkeypatch.delenv("SERLIB_DATA_DIR", raising=False)
    monkeypatch.setattr(corpus, "shared_data_root", lambda: None)
    with pytest.raises(DataError) as info:
        corpus.load_corpus(verbose=False)
    assert str(info.value).startswith(f"{tmp_path / 'a-file' / 'cache'}: ") and "\n" not in str(info.value)


def test_predict_names_the_encoder_cache_once_not_each_audio_file(tmp_path, monkeypatch, standin_dir):
    """Case 9: a fused run whose encoder weights cannot be kept fails once, naming the cache."""
    from serlib import predict, voice_encoder

    run = predict._as_run(_tiny_run(standin_dir, tmp_path))
    run.fusion = {"stand-in": True}                                     # as a fused run has
    message = f"{tmp_path / 'cache' / 'voice_encoder'}: cannot keep the voice encoder's weights there"

    def unwritable(path=None):
        raise SerlibError(message)

    monkeypatch.setattr(voice_encoder, "load_encoder", unwritable)
    clips = sorted(standin_dir.rglob("*.wav"))[:2]
    with pytest.raises(SerlibError) as info:
        predict.predict_paths(run, clips)
    assert str(info.value) == message


_RUNS: dict = {}


def _tiny_run(standin_dir, tmp_path) -> Path:
    """A one-epoch das2019_model_b run on stand-in clips (trained once per session)."""
    if "run" not in _RUNS:
        data = tmp_path / "data"
        for clip in sorted(standin_dir.rglob("*.wav")):
            if clip.name.split("-")[4] == "01":
                (data / clip.parent.name).mkdir(parents=True, exist_ok=True)
                shutil.copy(clip, data / clip.parent.name / clip.name)
        run = tmp_path / "run"
        assert cli.main(["train", "das2019_model_b", "--data", str(data), "--out", str(run), "--epochs", "1",
                         "--augment", "--no-song"]) == 0
        _RUNS.update(run=run, data=data)
    return _RUNS["run"]


# ------------------------------------------------------------------ case 5: poisoned cache files
def _data_offset(path: Path) -> int:
    """Where the array data of an .npy file starts (after its header)."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        read(fh)
        return fh.tell()


def _overwrite_data(path: Path, rows) -> None:
    """Replace the array data of ``path`` in place, header and trailer untouched."""
    start = _data_offset(path)
    blob = bytearray(path.read_bytes())
    fresh = np.ascontiguousarray(rows, dtype=np.float32).tobytes()
    blob[start:start + len(fresh)] = fresh
    path.write_bytes(bytes(blob))


def test_an_overwritten_entry_is_dropped_with_one_line_and_recomputed(wav_files, cache_root, counting, capsys):
    X = feature_cache.extract_corpus(wav_files, SMALL, n_jobs=1, progress=False)
    folder = cache_root / "features" / SMALL.key()
    for corpus in folder.glob("corpus-*.npy"):
        corpus.unlink()
    entry = folder / f"{feature_cache.content_hash(wav_files[7])}.npy"
    _overwrite_data(entry, X[2])                                        # another clip's features
    assert np.array_equal(np.load(entry), X[2])                         # a valid-looking array
    counting.clear()
    capsys.readouterr()
    Y = feature_cache.extract_corpus(wav_files, SMALL, n_jobs=1, progress=False)
    np.testing.assert_array_equal(Y, X)                                  # never used
    assert counting == ["clip07.wav"]                                    # recomputed
    (line,) = _warnings(capsys.readouterr().err)
    assert str(entry) in line and "checksum" in line
    assert feature_cache.load_array(entry, SMALL.shape) is not None      # rewritten whole


def test_an_overwritten_consolidated_array_is_not_used(wav_files, cache_root, counting, capsys):
    X = feature_cache.extract_corpus(wav_files, SMALL, n_jobs=1, progress=False)
    (corpus,) = (cache_root / "features" / SMALL.key()).glob("corpus-*.npy")
    _overwrite_data(corpus, X[::-1])                                    # labels no longer line up
    counting.clear()
    capsys.readouterr()
    np.testing.assert_array_equal(feature_cache.extract_corpus(wav_files, SMALL, n_jobs=1, progress=False), X)
    assert counting == []                                                # the per-clip entries serve
    (line,) = _warnings(capsys.readouterr().err)
    assert str(corpus) in line


def test_a_poisoned_content_index_is_ignored(wav_files, cache_root, capsys):
    X = feature_cache.extract_corpus(wav_files[:4], SMALL, n_jobs=1, progress=False)
    index = cache_root / "features" / feature_cache.INDEX_NAME
    stored = json.loads(index.read_text())
    a, b = (os.path.abspath(p) for p in wav_files[:2])
    stored["entries"][a][2] = stored["entries"][b][2]                  # clip 0 now "is" clip 1
    index.write_text(json.dumps(stored))
    capsys.readouterr()
    np.testing.assert_array_equal(feature_cache.extract_corpus(wav_files[:4], SMALL, n_jobs=1, progress=False), X)
    (line,) = _warnings(capsys.readouterr().err)
    assert str(index) in line


def test_plain_npy_files_huge_files_and_folders_in_the_cache_are_not_trusted(wav_files, cache_root, capsys):
    X = feature_cache.extract_corpus(wav_files[:3], SMALL, n_jobs=1, progress=False)
    folder = cache_root / "features" / SMALL.key()
    entries = [folder / f"{feature_cache.content_hash(p)}.npy" for p in wav_files[:3]]
    np.save(entries[0], X[1])                                           # no checksum trailer
    with open(entries[1], "wb") as fh:                                  # far larger than the array
        fh.truncate(64 << 20)
    entries[2].unlink()
    entries[2].mkdir()                                                  # cannot even be replaced
    capsys.readouterr()
    np.testing.assert_array_equal(feature_cache.extract_corpus(wav_files[:3], SMALL, n_jobs=1, progress=False), X)
    lines = _warnings(capsys.readouterr().err)
    assert any(str(entries[0]) in line and "checksum" in line for line in lines)
    assert any(str(entries[1]) in line and "larger" in line for line in lines)
    assert not any("clip" in line for line in lines)


def test_entries_of_the_unchecksummed_format_are_dropped(wav_files, cache_root, counting):
    feature_cache.extract_corpus(wav_files[:3], SMALL, n_jobs=1, progress=False)
    meta = cache_root / "features" / SMALL.key() / "meta.json"
    stored = json.loads(meta.read_text())
    del stored["format"]                                                # as the previous serlib wrote it
    meta.write_text(json.dumps(stored))
    counting.clear()
    feature_cache.extract_corpus(wav_files[:3], SMALL, n_jobs=1, progress=False)
    assert len(counting) == 3


# ------------------------------------------------------------------ case 4: long recordings, odd rates
def test_a_long_recording_is_decoded_only_up_to_the_limit(tmp_path, capsys):
    path = tmp_path / "ten-minutes.wav"
    sf.write(path, _voice(8000, 600.0), 8000, subtype="PCM_16")         # 9.6 MB on disk
    tracemalloc.start()
    try:
        y = load_audio(path, sr=16000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(y) == int(MAX_ANALYSIS_SECONDS * 16000)
    assert peak < 12e6, peak            # decoding all of it: 19 MB, resampled 38 MB more
    np.testing.assert_array_equal(y[:16000], load_audio(path, sr=16000, max_seconds=None)[:16000])
    load_audio(path, sr=16000)
    (line,) = _warnings(capsys.readouterr().err)                        # once per file
    assert str(path) in line and "600.0 s" in line and f"first {MAX_ANALYSIS_SECONDS:g} s" in line
    assert len(load_audio(path, duration=40.0, pad=False)) == 40 * 16000   # a longer crop asked for


def test_blockwise_mixdown_equals_the_whole_file(tmp_path, monkeypatch):
    path = tmp_path / "three-channels.flac"
    data = np.stack([_voice(16000, 2.0, seed=s) for s in range(3)], axis=1)
    sf.write(path, data, 16000, subtype="PCM_24")
    monkeypatch.setattr(audio, "_BLOCK_SAMPLES", 3000)
    whole, _ = sf.read(path, dtype="float32", always_2d=True)
    np.testing.assert_array_equal(load_audio(path, sr=None), whole.mean(axis=1))


@pytest.mark.parametrize("rate", [1, 50, 3999, 10_000_000])
def test_absurd_sample_rates_are_refused_in_one_line(tmp_path, rate):
    path = tmp_path / f"rate{rate}.wav"
    sf.write(path, (np.random.default_rng(0).standard_normal(6000) * 3000).astype(np.int16), rate,
             subtype="PCM_16")                                           # 12 KB
    for reader in (load_audio, audio_info):
        with pytest.raises(AudioError) as info:
            reader(path)
        message = str(info.value)
        assert message.startswith(f"{path}: ") and "sample rate" in message and "\n" not in message


def test_the_rate_limits_themselves_are_accepted(tmp_path):
    for rate in (audio.MIN_SAMPLE_RATE, audio.MAX_SAMPLE_RATE):
        path = tmp_path / f"ok{rate}.wav"
        sf.write(path, _voice(rate, 0.2), rate, subtype="PCM_16")
        assert len(load_audio(path, sr=16000)) == pytest.approx(3200, abs=2)


def test_functionals_describe_only_the_first_stretch(tmp_path, capsys):
    from serlib.functionals import functionals, many_functionals

    y = _voice(16000, MAX_ANALYSIS_SECONDS + 8.0, seed=3)
    long_path, cut_path = tmp_path / "long.wav", tmp_path / "cut.wav"
    sf.write(long_path, y, 16000, subtype="FLOAT")
    sf.write(cut_path, y[: int(MAX_ANALYSIS_SECONDS * 16000)], 16000, subtype="FLOAT")
    rows = functionals([long_path, cut_path], progress=False)
    np.testing.assert_allclose(rows[0], rows[1], rtol=1e-5, atol=1e-6)
    (line,) = _warnings(capsys.readouterr().err)
    assert str(long_path) in line
    np.testing.assert_allclose(many_functionals([y], 16000)[0], rows[1], rtol=1e-5, atol=1e-6)   # arrays too


# ------------------------------------------------------------------ case 6: concurrent index --csv
@pytest.fixture
def small_corpus(standin_dir, tmp_path):
    folder = tmp_path / "corpus"
    for clip in sorted(standin_dir.rglob("*.wav"))[:8]:
        (folder / clip.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, folder / clip.parent.name / clip.name)
    return folder


def _check_csv(out: Path) -> None:
    df = pd.read_csv(out)
    assert len(df) == 8 and df["path"].notna().all()
    assert [p.name for p in out.parent.iterdir()] == [out.name]         # no temporary files left


def test_concurrent_index_csv_threads_never_collide(small_corpus, tmp_path, capsys):
    out = tmp_path / "out" / "index.csv"
    out.parent.mkdir()
    statuses = []

    def run():
        statuses.append(cli.main(["index", str(small_corpus), "--csv", str(out)]))

    for _ in range(3):
        threads = [threading.Thread(target=run) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert statuses == [0] * 24, capsys.readouterr().err
    _check_csv(out)


def test_concurrent_index_csv_processes_never_collide(small_corpus, tmp_path):
    out = tmp_path / "out" / "index.csv"
    out.parent.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-m", "serlib", "index", str(small_corpus), "--csv", str(out)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(6)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors
    _check_csv(out)
