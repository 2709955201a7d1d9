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
            assert set(r) == {"path", "status", "error"} and r["status"] == "error"
            assert "\n" not in r["error"] and r["error"]
            continue
        assert set(r) == {"path", "status", "label", "probabilities"}, (name, r)
        assert r["status"] == "ok"
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


# ----------------------------------------------------------------------------- no speech, truncated files
@pytest.fixture(scope="module")
def odd_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("odd")
    sr = 16_000
    t = np.arange(3 * sr) / sr
    voice = _voice(3.0, sr, 7)
    files = {"silence": folder / "digital_silence.wav", "cancel": folder / "phase_cancelled.wav",
             "dither": folder / "near_silent.wav", "hum": folder / "hum_and_dc.wav",
             "quiet": folder / "quiet_voice.wav", "click": folder / "one_click.wav"}
    sf.write(files["silence"], np.zeros(3 * sr, dtype=np.int16), sr, subtype="PCM_16")
    sf.write(files["cancel"], np.stack([voice, -voice], axis=1), sr, subtype="FLOAT")
    noise = np.random.default_rng(0).standard_normal(3 * sr)
    sf.write(files["dither"], 10 ** (-90 / 20) * noise, sr, subtype="FLOAT")              # -90 dBFS hiss
    sf.write(files["hum"], 0.2 + 0.5 * np.sin(2 * np.pi * 50 * t), sr, subtype="FLOAT")   # mains hum, DC offset
    sf.write(files["quiet"], voice * (10 ** (-50 / 20) / np.abs(voice).max()), sr, subtype="FLOAT")   # peak -50 dBFS
    click = np.zeros(3 * sr)
    click[sr] = 0.9
    sf.write(files["click"], click, sr, subtype="FLOAT")
    return files


def test_silence_and_non_speech_get_no_emotion(run_dir, odd_files):
    results = {name: r for name, r in zip(odd_files, predict_paths(run_dir, list(odd_files.values())))}
    for name in ("silence", "cancel", "dither", "hum", "click"):
        r = results[name]
        assert r["status"] == "no speech found" and r["label"] is None and r["probabilities"] is None, (name, r)
        assert r["reason"] and "\n" not in r["reason"]
    assert results["silence"]["reason"].startswith("digital silence")
    assert results["cancel"]["reason"].startswith("digital silence")
    assert results["dither"]["reason"].startswith("near-silent")
    assert results["hum"]["reason"].startswith("no sound in the speech band")
    assert results["quiet"]["status"] == "ok" and results["quiet"]["label"] in load_run(run_dir).labels


def test_predict_waveform_reports_silence_and_cancelled_channels(run_dir):
    run = load_run(run_dir)
    voice = _voice(2.0, 16_000, 8)
    for y in (np.zeros(32_000, dtype=np.float32), np.stack([voice, -voice]), np.zeros(32_000, dtype=np.int16)):
        r = predict_waveform(run, y, 16_000)
        assert r == {"status": "no speech found", "label": None, "probabilities": None, "reason": r["reason"]}
    assert predict_waveform(run, voice, 16_000)["status"] == "ok"


def test_no_speech_in_the_cli_text_and_json(run_dir, odd_files, audio_files, capsys):
    paths = [str(odd_files["silence"]), str(audio_files["flac"])]
    assert cli.main(["predict", str(run_dir), *paths, "--json"]) == 0
    captured = capsys.readouterr()
    silent, spoken = json.loads(captured.out)
    assert silent["label"] is None and silent["status"] == "no speech found" and silent["probabilities"] is None
    assert spoken["status"] == "ok" and spoken["label"]
    assert captured.err == ""
    assert cli.main(["predict", str(run_dir), paths[0]]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{paths[0]}: no speech found  (digital silence")


def _truncate(path, keep: float):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def test_a_truncated_wav_is_predicted_with_a_warning_naming_it(run_dir, tmp_path, capsys):
    wav = tmp_path / "cut short.wav"
    sf.write(wav, _voice(3.0, 16_000, 9), 16_000, subtype="PCM_16")
    _truncate(wav, 0.5)
    assert sf.info(str(wav)).frames < 3 * 16_000          # libsndfile reads what is there, silently
    (r,) = predict_paths(run_dir, [wav])
    assert r["status"] == "ok" and r["warning"].startswith("truncated: its header declares 3.00 s")
    assert cli.main(["predict", str(run_dir), str(wav)]) == 0
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert err == [f"{wav}: warning: {r['warning']}"] and r["label"] in captured.out
    whole = tmp_path / "whole.wav"
    sf.write(whole, _voice(3.0, 16_000, 9), 16_000, subtype="PCM_16")
    assert "warning" not in predict_paths(run_dir, [whole])[0]
    long = tmp_path / "long.wav"    # decoded only up to serlib.audio.MAX_ANALYSIS_SECONDS, on purpose
    sf.write(long, np.tile(_voice(1.0, 8_000, 9), 31), 8_000, subtype="PCM_16")
    assert "warning" not in predict_paths(run_dir, [long])[0]


def test_other_truncated_formats_warn_or_fail_in_one_line(run_dir, tmp_path):
    y = _voice(3.0, 16_000, 10)
    aiff, mp3, flac = tmp_path / "cut.aiff", tmp_path / "cut.mp3", tmp_path / "cut.flac"
    sf.write(aiff, y, 16_000, format="AIFF", subtype="PCM_16")
    sf.write(mp3, y, 16_000, format="MP3")
    sf.write(flac, y, 16_000)
    for path in (aiff, mp3, flac):
        _truncate(path, 0.6)
    r_aiff, r_mp3, r_flac = predict_paths(run_dir, [aiff, mp3, flac])
    assert r_aiff["status"] == "ok" and r_aiff["warning"].startswith("truncated")
    assert r_mp3["status"] == "ok" and "may be truncated" in r_mp3["warning"]
    assert r_flac["status"] == "error" and "\n" not in r_flac["error"]


def test_predict_level_db_gives_a_loud_and_a_quiet_take_the_same_answer(run_dir, tmp_path, capsys):
    y = _voice(3.0, 16_000, 4)
    for name, gain in (("loud.wav", 3.0), ("quiet.wav", 0.05)):
        sf.write(tmp_path / name, gain * y, 16_000, subtype="FLOAT")
    paths = [str(tmp_path / "loud.wav"), str(tmp_path / "quiet.wav")]
    plain = [r["probabilities"] for r in predict_paths(run_dir, paths)]
    assert not np.allclose(list(plain[0].values()), list(plain[1].values()), atol=1e-3)   # c0 hears the gain
    levelled = [r["probabilities"] for r in predict_paths(run_dir, paths, level_db=-30)]
    np.testing.assert_allclose(list(levelled[0].values()), list(levelled[1].values()), atol=2e-3)
    assert cli.main(["predict", str(run_dir), *paths, "--json", "--level-db", "-30"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in out] == [max(p, key=p.get) for p in levelled]
    assert cli.main(["predict", str(run_dir), *paths, "--level-db", "0"]) != 0
    assert "level" in capsys.readouterr().err
