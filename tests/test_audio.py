"""Loading audio: the 48 kHz originals, the FLAC copy, and every kind of broken file."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serlib.audio import MIN_DURATION, audio_info, fix_length, load_audio, resample, trim_silence
from serlib.errors import AudioError

# ------------------------------------------------------------------------------ real files


def test_original_48k_wavs_load(ravdess_original_dir):
    originals = sorted(ravdess_original_dir.rglob("*.wav"))
    assert len(originals) == 6
    stereo = 0
    for path in originals:
        info = sf.info(path)
        assert info.samplerate == 48000
        stereo += info.channels == 2
        y = load_audio(path)                                   # default: mono at 16 kHz
        assert y.dtype == np.float32 and y.ndim == 1
        assert abs(len(y) - info.frames / 3) <= 1
        assert np.all(np.isfinite(y)) and 0.001 < np.abs(y).max() <= 1.0
        native = load_audio(path, sr=None)
        assert len(native) == info.frames
        raw, _ = sf.read(path, dtype="float32", always_2d=True)
        np.testing.assert_allclose(native, raw.mean(axis=1), atol=1e-6)
        assert audio_info(path) == {"sample_rate": 48000, "channels": info.channels,
                                    "duration": info.frames / 48000}
    assert stereo == 2


def test_original_and_flac_copy_agree(ravdess_original_dir, ravdess_dir):
    """The 22,050 Hz FLAC copy is the same recording as the 48 kHz original."""
    name = "03-01-05-02-02-01-01"
    a = load_audio(ravdess_original_dir / "Actor_01" / f"{name}.wav")
    b = load_audio(ravdess_dir / "Actor_01" / f"{name}.flac")
    assert abs(len(a) - len(b)) <= 2
    n = min(len(a), len(b))
    assert np.corrcoef(a[:n], b[:n])[0, 1] > 0.99


def test_stereo_flac_is_mixed_down(ravdess_dir):
    path = ravdess_dir / "Actor_20" / "03-01-03-01-02-01-20.flac"
    assert sf.info(path).channels == 2
    y = load_audio(path, sr=None)
    raw, sr = sf.read(path, dtype="float32")
    assert sr == 22050 and y.ndim == 1
    np.testing.assert_allclose(y, raw.mean(axis=1), atol=1e-6)


def test_crop_pad_offset(ravdess_dir):
    path = ravdess_dir / "Actor_01" / "03-01-01-01-01-01-01.flac"
    full = load_audio(path)
    assert len(load_audio(path, duration=3.0)) == 48000
    padded = load_audio(path, duration=10.0)
    assert len(padded) == 160000 and np.all(padded[len(full):] == 0)
    assert len(load_audio(path, duration=10.0, pad=False)) == len(full)
    np.testing.assert_array_equal(load_audio(path, offset=0.5, duration=1.0), full[8000:24000])
    trimmed = load_audio(path, trim=True)
    assert 0.8 * 16000 < len(trimmed) < len(full) - 0.5 * 16000   # ~1.4 s of speech in 3.3 s


# ------------------------------------------------------------------------------ broken files


def _one_line_naming(error: AudioError, path: Path) -> str:
    text = str(error)
    assert "\n" not in text and str(path) in text
    return text


@pytest.mark.parametrize("kind, complaint", [
    ("empty", "empty"),
    ("random", "not readable as audio"),
    ("text", "not readable as audio"),
    ("header_only", "no audio samples"),
    ("missing", "no such file"),
    ("folder", "folder"),
])
def test_broken_files_raise_one_line(tmp_path, kind, complaint):
    path = tmp_path / "03-01-05-01-01-01-01.wav"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif kind == "text":
        path.write_text("RIFF? no: just a text file that happens to be called .wav\n" * 20)
    elif kind == "header_only":
        sf.write(path, np.zeros(0, dtype=np.float32), 16000, subtype="PCM_16")
    elif kind == "folder":
        path.mkdir()
    for reader in (load_audio, audio_info):
        with pytest.raises(AudioError) as info:
            reader(path)
        assert complaint in _one_line_naming(info.value, path)
        assert info.value.path == str(path)


def test_shorter_than_one_window(tmp_path):
    path = tmp_path / "click.wav"
    sf.write(path, 0.1 * np.ones(160, dtype=np.float32), 16000)          # 10 ms
    with pytest.raises(AudioError, match="too short") as info:
        load_audio(path)
    _one_line_naming(info.value, path)
    assert audio_info(path)["duration"] == pytest.approx(0.01)             # info still works
    sf.write(path, np.zeros(int(MIN_DURATION * 16000), dtype=np.float32), 16000)
    assert len(load_audio(path)) == int(MIN_DURATION * 16000)               # the limit itself is fine


def test_nan_samples(tmp_path):
    path = tmp_path / "nan.wav"
    y = np.zeros(16000, dtype=np.float32)
    y[100] = np.nan
    sf.write(path, y, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        load_audio(path)


def test_digital_silence_loads_and_gives_finite_mfcc(tmp_path):
    import librosa

    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(32000, dtype=np.int16), 16000, subtype="PCM_16")
    y = load_audio(path)
    assert len(y) == 32000 and not y.any()
    assert len(trim_silence(y, 16000)) == len(y)           # all-silent input comes back whole
    assert len(load_audio(path, trim=True)) == 32000
    mfcc = librosa.feature.mfcc(y=y, sr=16000, n_mfcc=13)
    assert np.all(np.isfinite(mfcc))


def test_other_rates_and_formats(tmp_path):
    t = np.arange(44100) / 44100
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for suffix, subtype in ((".flac", "PCM_24"), (".wav", "PCM_U8"), (".ogg", "VORBIS")):
        path = tmp_path / f"tone{suffix}"
        sf.write(path, tone, 44100, subtype=subtype)
        y = load_audio(path)
        assert abs(len(y) - 16000) <= 1
        spectrum = np.abs(np.fft.rfft(y))
        assert abs(np.argmax(spectrum) * 16000 / len(y) - 440) < 3


def test_unreadable_other_container(tmp_path):
    path = tmp_path / "voice.m4a"
    path.write_bytes(os.urandom(2048))
    with pytest.raises(AudioError) as info:
        load_audio(path)
    _one_line_naming(info.value, path)


# ------------------------------------------------------------------------------ helpers


def test_fix_length_and_resample():
    y = np.arange(10, dtype=np.float32)
    assert fix_length(y, 4).tolist() == [0, 1, 2, 3]
    assert fix_length(y, 12).tolist()[-3:] == [9, 0, 0]
    assert resample(y, 16000, 16000) is y
    t = np.arange(48000) / 48000
    down = resample(np.sin(2 * np.pi * 100 * t).astype(np.float32), 48000, 16000)
    assert len(down) == 16000 and down.dtype == np.float32


def test_trim_silence_removes_edges():
    sr = 16000
    y = np.zeros(3 * sr, dtype=np.float32)
    y[sr:2 * sr] = 0.3 * np.sin(2 * np.pi * 200 * np.arange(sr) / sr)
    trimmed = trim_silence(y, sr)
    assert abs(len(trimmed) - sr) <= int(0.02 * sr) * 2


def test_garbage_mp3_says_no_audio_not_missing_file(tmp_path):
    path = tmp_path / "song.mp3"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    with pytest.raises(AudioError) as info:
        load_audio(path)
    message = str(info.value)
    assert "song.mp3" in message and "\n" not in message
    assert "does not exist" not in message and "no audio stream" in message
