"""serlib.predict and `serlib predict`: any readable audio in, labels and probabilities out."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from serlib import cli
from serlib.features import extract_file
from serlib.predict import expand_paths, predict_paths, predict_waveform, prepare_waveform
from serlib.runs import load_run
from serlib.training import train

MODEL = "das2019_model_b"


@pytest.fixture(scope="module")
def run_dir(standin_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("predict") / "run"
    train(MODEL, standin_dir, out_dir=out, epochs=2, batch_size=16, quick=True, verbose=0)
    return out


def _voice(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    """A vowel-like harmonic tone with a little noise, in [-1, 1]."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = 140 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, 8))
    y = 0.3 * y / np.max(np.abs(y))
    return (y + 0.01 * np.random.default_rng(seed).standard_normal(len(y))).astype(np.float32)


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recordings")
    files = {}
    stereo = np.stack([_voice(3.0, 44_100, 1), _voice(3.0, 44_100, 2)], axis=1)
    files["stereo"] = folder / "stereo_44k.wav"
    sf.write(files["stereo"], stereo, 44_100)
    files["flac"] = folder / "take 2.flac"
    sf.write(files["flac"], _voice(2.5, 16_000, 3), 16_000)
    files["ogg"] = folder / "phone.ogg"
    sf.write(files["ogg"], _voice(2.0, 48_000, 4), 48_000, format="OGG", subtype="VORBIS")
    files["not_ravdess"] = folder / "my-own-recording.WAV"
    sf.write(files["not_ravdess"], _voice(1.5, 8_000, 5), 8_000)
    files["long"] = folder / "ten_seconds.wav"
    sf.write(files["long"], _voice(10.0, 22_050, 6), 22_050)
    files["broken"] = folder / "broken.wav"
    files["broken"].write_bytes(b"RIFF\x00\x00\x00\x00WAVEthis is not audio at all")
    return files


def test_predicts_every_readable_file_and_reports_the_broken_one(run_dir, audio_files):
    paths = [str(p) for p in audio_files.values()]
    results = predict_paths(run_dir, paths)
    assert [r["path"] for r in results] == paths  # input order kept
    run = load_run(run_dir)
    for name, r in zip(audio_files, results):
        if name == "broken":
            assert set(r) == {"path", "error"}
            assert "\n" not in r["error"] and r["error"]
            continue
        assert set(r) == {"path", "label", "probabilities"}, (name, r)
        assert r["label"] in run.labels
        assert list(r["probabilities"]) == run.labels
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert r["label"] == max(r["probabilities"], key=r["probabilities"].get)


def test_folders_are_searched_recursively(run_dir, audio_files, tmp_path):
    folder = audio_files["flac"].parent
    items = expand_paths([folder])
    suffixes = sorted({p.rsplit(".", 1)[1].lower() for p, _ in items})
    assert suffixes == ["flac", "ogg", "wav"]
    assert len(items) == len(audio_files)
    empty = tmp_path / "nothing_here"
    empty.mkdir()
    (empty / "notes.txt").write_text("no audio")
    results = predict_paths(run_dir, [empty, tmp_path / "missing.wav"])
    assert all("error" in r for r in results) and len(results) == 2


def test_prediction_matches_the_training_pipeline(run_dir, standin_dir):
    run = load_run(run_dir)
    clips = sorted(p for p in standin_dir.rglob("*") if p.suffix in (".wav", ".flac"))[:3]
    results = predict_paths(run, clips)
    X = np.stack([extract_file(p, run.spec) for p in clips])
    expected = run.predict_proba(X)
    for r, p in zip(results, expected):
        np.testing.assert_allclose(list(r["probabilities"].values()), p, rtol=1e-5, atol=1e-6)


def test_predict_waveform_agrees_with_the_file(run_dir, audio_files):
    run = load_run(run_dir)
    y, sr = sf.read(audio_files["stereo"], dtype="float32")  # (n, 2) at 44.1 kHz
    from_wave = predict_waveform(run, y, sr)
    from_file = predict_paths(run, [audio_files["stereo"]])[0]
    assert from_wave["label"] == from_file["label"]
    np.testing.assert_allclose(list(from_wave["probabilities"].values()),
                               list(from_file["probabilities"].values()), rtol=1e-4, atol=1e-5)
    channels_first = predict_waveform(run, y.T.copy(), sr)
    assert channels_first["probabilities"] == pytest.approx(from_wave["probabilities"])


def test_a_waveform_with_nothing_left_after_the_offset_becomes_a_short_silence():
    from types import SimpleNamespace

    from serlib.audio import MIN_DURATION

    spec = SimpleNamespace(sr=16000, trim=False, top_db=30, offset=0.5, duration=None)
    y = prepare_waveform(np.ones(8000, dtype=np.float32), 16000, spec)   # 0.5 s, all of it skipped
    assert y.dtype == np.float32 and len(y) == int(16000 * MIN_DURATION) and not y.any()


def test_cli_predict_json_and_exit_status(run_dir, audio_files, capsys):
    paths = [str(audio_files["flac"]), str(audio_files["broken"]), str(audio_files["ogg"])]
    status = cli.main(["predict", str(run_dir), *paths, "--json"])
    captured = capsys.readouterr()
    assert status != 0
    results = json.loads(captured.out)
    assert [r["path"] for r in results] == paths
    assert "label" in results[0] and "label" in results[2] and "error" in results[1]
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(paths[1]) and "Traceback" not in captured.err
    assert cli.main(["predict", str(run_dir), paths[0], paths[2]]) == 0
    text = capsys.readouterr().out
    assert paths[0] in text and paths[2] in text
