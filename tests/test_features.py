"""serlib.features: shapes of every report's features, agreement with librosa, and the cache."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from serlib import feature_cache, feature_store
from serlib import features as F
from serlib.errors import AudioError, ConfigError, SerlibError
from serlib.features import REPORT_NOTES, REPORT_SPECS, FeatureSpec, feature_shape

#: The per-clip shapes the report specs are documented to give.
EXPECTED_SHAPES = {
    "000": (216,),
    "000-2d": (216, 12),
    "001": (223, 20),
    "002": (40,),
    "003": (256, 32),
    "004": (226, 162),
}


def _voice(sr: int, seconds: float, seed: int = 0, f0: float = 140.0) -> np.ndarray:
    """A crude voiced signal: a gliding harmonic tone with syllable-like bursts and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    pitch = f0 * (1 + 0.2 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / sr
    tone = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    y = 0.2 * tone * envelope + 0.01 * rng.standard_normal(len(t))
    return y.astype(np.float32)


def _write(path, y, sr):
    sf.write(str(path), y, sr, subtype="PCM_16")
    return path


@pytest.fixture
def wav_files(tmp_path):
    """Twenty short 16 kHz WAV clips (0.6-1.2 s), different from each other."""
    folder = tmp_path / "wavs"
    folder.mkdir()
    return [_write(folder / f"clip{i:02d}.wav", _voice(16000, 0.6 + 0.03 * i, seed=i, f0=100 + 7 * i), 16000)
            for i in range(20)]


@pytest.fixture
def counting(monkeypatch):
    """Counts calls of features.extract_file (in-process runs only; n_jobs=1)."""
    calls = []
    real = F.extract_file

    def wrapper(path, spec):
        calls.append(str(path))
        return real(path, spec)

    monkeypatch.setattr(F, "extract_file", wrapper)
    return calls


SMALL = FeatureSpec(kind="mfcc", sr=16000, n_mfcc=13, n_fft=512, hop_length=160, n_frames=50)

# ------------------------------------------------------------------------------ the spec


def test_spec_round_trip_key_and_shape():
    for name, spec in REPORT_SPECS.items():
        again = FeatureSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
        assert again == spec and again.key() == spec.key()
        assert spec.shape == feature_shape(spec) == EXPECTED_SHAPES[name]
        assert spec.fixed
        assert name in REPORT_NOTES and len(REPORT_NOTES[name]) > 40
    assert len({spec.key() for spec in REPORT_SPECS.values()}) == len(REPORT_SPECS)
    assert FeatureSpec(kind="logmel", n_mels=64).shape == (None, 64)
    assert FeatureSpec(kind="mfcc_deltas", n_mfcc=13, n_frames=10).shape == (10, 39)
    assert FeatureSpec(kind="mfcc_mean", n_mfcc=40).shape == (40,)
    assert FeatureSpec(kind="frames162").n_mfcc == 20          # the kind's own default
    assert FeatureSpec(kind="frames162", n_frames=5).shape == (5, 162)
    with pytest.raises(ValueError, match="frames162"):
        FeatureSpec(kind="frames162", n_mels=64)
    with pytest.raises(ValueError, match="unknown feature kind"):
        FeatureSpec(kind="spectrogram")
    with pytest.raises(ValueError, match="window"):
        FeatureSpec(window="kaiser")
    with pytest.raises(ValueError, match="n_mfcc"):
        FeatureSpec(n_mfcc=60, n_mels=40)
    with pytest.raises(ConfigError, match="000"):
        F.report_spec("005")
    assert F.report_spec("004") is REPORT_SPECS["004"]


def test_frames162_layout_sums_to_162():
    assert sum(n for _, n in F.FRAMES162_LAYOUT) == 162


# ------------------------------------------------------------------------------ shapes


@pytest.mark.parametrize("name", sorted(REPORT_SPECS))
def test_report_spec_shapes_on_a_synthetic_file(tmp_path, name):
    """A 3.6 s clip at 22,050 Hz (like the FLAC copy) through load + extract."""
    spec = REPORT_SPECS[name]
    path = _write(tmp_path / "voice.wav", _voice(22050, 3.6), 22050)
    X = F.extract_file(path, spec)
    assert X.shape == EXPECTED_SHAPES[name] and X.dtype == np.float32
    assert np.all(np.isfinite(X)) and np.ptp(X) > 0


def test_report_spec_shapes_on_real_files(ravdess_dir):
    paths = [ravdess_dir / "Actor_01" / "03-01-01-01-01-01-01.flac",
             ravdess_dir / "Actor_01" / "03-01-02-01-01-02-01.flac",    # stereo
             ravdess_dir / "Actor_20" / "03-01-05-02-02-02-20.flac"]
    for name, spec in REPORT_SPECS.items():
        X = feature_cache.extract_corpus(paths, spec, n_jobs=1, cache=False, progress=False)
        assert X.shape == (3, *EXPECTED_SHAPES[name]) and X.dtype == np.float32, name
        assert np.all(np.isfinite(X))
        assert not np.allclose(X[0], X[2])


def test_report_004_covers_the_longest_trimmed_clip(ravdess_dir):
    """226 frames of 20 ms hold every trimmed speech clip: the last frames of the longest are padding."""
    spec = REPORT_SPECS["004"]
    longest = ravdess_dir / "Actor_19" / "03-01-07-02-01-02-19.flac"   # 4.24 s after trimming
    y = F.load_for_spec(longest, spec)
    assert 4.0 < len(y) / spec.sr < 4.5
    assert 200 < spec.frames_for(len(y)) <= spec.n_frames
    X = F.extract(y, spec)
    assert np.all(X[spec.frames_for(len(y)):] == 0) and np.all(X[: spec.frames_for(len(y)) - 1, 0] != 0)


def test_free_length_and_fixed_frames():
    y = _voice(16000, 1.0)
    spec = FeatureSpec(kind="mfcc", sr=16000, n_mfcc=13, n_fft=512, hop_length=160)
    free = F.extract(y, spec)
    assert free.shape == (1 + len(y) // 160, 13) == (spec.frames_for(len(y)), 13)
    cropped = F.extract(y, spec.replace(n_frames=40))
    np.testing.assert_array_equal(cropped, free[:40])
    padded = F.extract(y, spec.replace(n_frames=150))
    np.testing.assert_array_equal(padded[: len(free)], free)
    assert np.all(padded[len(free):] == 0)                     # zero rows at the end, as the reports padded
    series = F.extract(y, spec.replace(kind="mfcc_band_mean", n_frames=150))
    np.testing.assert_allclose(series[: len(free)], free.mean(axis=1), rtol=1e-6)
    mean = F.extract(y, spec.replace(kind="mfcc_mean"))
    np.testing.assert_allclose(mean, free.mean(axis=0), rtol=1e-5, atol=1e-4)
    capped = F.extract(y, spec.replace(kind="mfcc_mean", n_frames=150))  # no padding into the mean
    np.testing.assert_allclose(capped, mean, rtol=1e-6)


# ------------------------------------------------------------------------------ numbers


def test_mfcc_and_logmel_match_librosa():
    y = _voice(22050, 2.0)
    for n_fft, hop, win, window in [(512, 256, None, "hann"), (2048, 512, None, "hann"),
                                    (1024, 220, 800, "hamming")]:
        spec = FeatureSpec(kind="mfcc", sr=22050, n_mfcc=20, n_fft=n_fft, hop_length=hop, win_length=win,
                           window=window)
        ours = F.extract(y, spec)
        ref = librosa.feature.mfcc(y=y, sr=22050, n_mfcc=20, n_fft=n_fft, hop_length=hop, win_length=win,
                                   window=window).T
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, atol=1e-5 * np.ptp(ref))
        ours = F.extract(y, spec.replace(kind="logmel", n_mels=64))
        ref = librosa.power_to_db(librosa.feature.melspectrogram(
            y=y, sr=22050, n_fft=n_fft, hop_length=hop, win_length=win, window=window, n_mels=64)).T
        np.testing.assert_allclose(ours, ref, atol=1e-5 * np.ptp(ref))


def test_mfcc_deltas_match_librosa():
    y = _voice(16000, 1.5)
    spec = FeatureSpec(kind="mfcc_deltas", sr=16000, n_mfcc=13)
    ours = F.extract(y, spec)
    m = librosa.feature.mfcc(y=y, sr=16000, n_mfcc=13, n_fft=512, hop_length=160)
    ref = np.vstack([m, librosa.feature.delta(m), librosa.feature.delta(m, order=2)]).T
    assert ours.shape == ref.shape == (151, 39)
    np.testing.assert_allclose(ours, ref, atol=1e-5 * np.ptp(ref))
    short = F.extract(y[:800], spec)                           # fewer frames than the delta window
    assert short.shape == (6, 39) and np.all(np.isfinite(short))


def test_frames162_matches_librosa_piece_by_piece():
    spec = REPORT_SPECS["004"].replace(n_frames=None, trim=False)
    y = _voice(16000, 2.0)
    ours = F.extract(y, spec)
    S = np.abs(librosa.stft(y, n_fft=512, hop_length=320, win_length=400, window="hamming")) ** 2
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=S, sr=16000, n_mels=128))
    parts = {
        "mfcc": librosa.feature.mfcc(S=mel_db, n_mfcc=20),
        "rms_db": 20 * np.log10(np.maximum(librosa.feature.rms(y=y, frame_length=400, hop_length=320), 1e-5)),
        "zcr": librosa.feature.zero_crossing_rate(y, frame_length=400, hop_length=320),
        "mel_db": mel_db,
        "chroma": librosa.feature.chroma_stft(S=S, sr=16000, tuning=0.0),
    }
    start = 0
    for name, width in F.FRAMES162_LAYOUT:
        ref = parts[name].T
        got = ours[:, start:start + width]
        assert got.shape == ref.shape, name
        np.testing.assert_allclose(got, ref, atol=1e-5 * max(1.0, np.ptp(ref)), err_msg=name)
        start += width
    assert start == 162 == ours.shape[1]


def test_silence_gives_finite_features(tmp_path):
    silence = np.zeros(22050, dtype=np.float32)
    kinds = {FeatureSpec(kind=k, sr=22050, n_frames=None if k == "mfcc_mean" else 60) for k in F.KINDS}
    for spec in list(kinds) + list(REPORT_SPECS.values()):
        X = F.extract(silence, spec)
        assert np.all(np.isfinite(X)), spec.kind
    path = _write(tmp_path / "silent.wav", silence, 22050)
    for spec in REPORT_SPECS.values():                        # through loading, trim included
        assert np.all(np.isfinite(F.extract_file(path, spec)))


def test_short_clips_are_padded_and_tiny_ones_rejected(tmp_path):
    # 60 ms is less than one 93 ms window (n_fft 2048 at 22,050 Hz): zero-padded, one frame or more.
    short = _write(tmp_path / "short.wav", _voice(22050, 0.06), 22050)
    for spec in REPORT_SPECS.values():
        X = F.extract_file(short, spec)
        assert X.shape == spec.shape and np.all(np.isfinite(X))
    free = F.extract_file(short, FeatureSpec(kind="mfcc", sr=22050, n_fft=2048, hop_length=512))
    assert free.shape == (3, 40)
    assert F.extract(np.ones(5, dtype=np.float32) * 0.1, FeatureSpec()).shape == (1, 40)
    # Below serlib.audio.MIN_DURATION (50 ms) there is nothing to analyse: a clear error.
    tiny = _write(tmp_path / "tiny.wav", _voice(22050, 0.01), 22050)
    with pytest.raises(AudioError, match="tiny.wav.*too short"):
        F.extract_file(tiny, REPORT_SPECS["003"])
    # An offset past the end with no duration to pad to leaves nothing either.
    with pytest.raises(AudioError, match="short.wav.*offset"):
        F.extract_file(short, FeatureSpec(offset=0.5))
    with pytest.raises(AudioError, match="no samples"):
        F.extract(np.zeros(0, dtype=np.float32), FeatureSpec())
    with pytest.raises(AudioError, match="NaN"):
        F.extract(np.array([0.0, np.nan] * 400, dtype=np.float32), FeatureSpec())
    with pytest.raises(AudioError, match="mono"):
        F.extract(np.zeros((2, 800), dtype=np.float32), FeatureSpec())


# ------------------------------------------------------------------------------ corpus + cache


def test_corpus_matches_per_file_and_accepts_an_index(wav_files, cache_root):
    X = feature_cache.extract_corpus(wav_files, SMALL, n_jobs=1, progress=False)
    assert X.shape == (20, 50, 13) and X.dtype == np.float32
    for row, path in zip(X, wav_files[:3]):
        np.testing.assert_array_equal(row, F.extract_file(path, SMALL))
    import pandas as pd

    again = feature_cache.extract_corpus(pd.DataFrame({"path": [str(p) for p in wav_files]}), SMALL, progress=False)
    np.testing.assert_array_equal(again, X)
    empty = feature_cache.extract_corpus([], SMALL, progress=False)
    assert empty.shape == (0, 50, 13)


def test_second_run_is_served_from_the_cache(wav_files, cache_root, counting):
    X = feature_cache.extract_corpus(wav_files, SMALL, n_jobs=1, progress=False)
    assert len(counting) == 20
    folder = cache_root / "features" / SMALL.key()
    assert len(list(folder.glob("corpus-*.npy"))) == 1
    assert len([p for p in folder.glob("*.npy") if not p.name.startswith("corpus-")]) == 20
    assert json.loads((folder / "meta.json").read_text())["spec"] == SMALL.to_dict()

    assert feature_cache.LAST_RUN["computed"] == 20 and feature_cache.LAST_RUN["workers"] == 0
    counting.clear()
    np.testing.assert_array_equal(feature_cache.extract_corpus(wav_files, SMALL, n_jobs=1, progress=False), X)
    assert counting == []                                      # the consolidated array
    assert feature_cache.LAST_RUN["consolidated"] and feature_cache.LAST_RUN["from_cache"] == 20
    for corpus in folder.glob("corpus-*.npy"):
        corpus.unlink()
    np.testing.assert_array_equal(feature_cache.extract_corpus(wav_files, SMALL, n_jobs=1, progress=False), X)
    assert counting == []                                      # the per-clip entries
    reordered = feature_cache.extract_corpus(wav_files[::-1][:5], SMALL, n_jobs=1, progress=False)
    np.testing.assert_array_equal(reordered, X[::-1][:5])
    assert counting == []


def test_warm_run_does_not_reread_unchanged_files(wav_files, cache_root, monkeypatch):
    X = feature_cache.extract_corpus(wav_files, SMALL, n_jobs=1, progress=False)
    hashed = []
    real = feature_cache.content_hash
    monkeypatch.setattr(feature_store, "content_hash", lambda p: hashed.append(p) or real(p))
    np.testing.assert_array_equal(feature_cache.extract_corpus(wav_files, SMALL, n_jobs=1, progress=False), X)
    assert hashed == []                                        # size + mtime matched the index
    os.utime(wav_files[3], ns=(time.time_ns(), time.time_ns() + 10**9))
    np.testing.assert_array_equal(feature_cache.extract_corpus(wav_files, SMALL, n_jobs=1, progress=False), X)
    assert [os.path.basename(p) for p in hashed] == ["clip03.wav"]


def test_cache_is_keyed_by_content_not_name(wav_files, cache_root, counting, tmp_path):
    X = feature_cache.extract_corpus(wav_files[:4], SMALL, n_jobs=1, progress=False)
    counting.clear()
    copy = tmp_path / "renamed.wav"
    shutil.copy(wav_files[0], copy)
    np.testing.assert_array_equal(feature_cache.extract_corpus([copy], SMALL, n_jobs=1, progress=False)[0], X[0])
    assert counting == []
    _write(wav_files[1], _voice(16000, 0.8, seed=99, f0=230), 16000)   # same name, new content
    Y = feature_cache.extract_corpus(wav_files[:4], SMALL, n_jobs=1, progress=False)
    assert [os.path.basename(p) for p in counting] == ["clip01.wav"]
    assert not np.allclose(Y[1], X[1])
    np.testing.assert_array_equal(Y[[0, 2, 3]], X[[0, 2, 3]])


def test_killed_mid_write_leaves_nothing_that_is_trusted(wav_files, cache_root, counting):
    X = feature_cache.extract_corpus(wav_files, SMALL, n_jobs=1, progress=False)
    folder = cache_root / "features" / SMALL.key()
    for corpus in folder.glob("corpus-*.npy"):
        corpus.unlink()
    digest = feature_cache.content_hash(wav_files[5])
    entry = folder / f"{digest}.npy"
    blob = entry.read_bytes()
    entry.write_bytes(blob[: len(blob) // 2])                  # a truncated entry (power cut, old writer)
    fresh_tmp = folder / f".{digest}.npy.4242.deadbeef.tmp"    # what a killed writer leaves behind
    fresh_tmp.write_bytes(blob[:100])
    stale_tmp = folder / ".0123.npy.4242.cafecafe.tmp"
    stale_tmp.write_bytes(b"junk")
    old = time.time() - 2 * feature_cache.STALE_TMP_S
    os.utime(stale_tmp, (old, old))
    counting.clear()
    Y = feature_cache.extract_corpus(wav_files, SMALL, n_jobs=1, progress=False)
    np.testing.assert_array_equal(Y, X)
    assert [os.path.basename(p) for p in counting] == ["clip05.wav"]   # only the broken one recomputed
    np.testing.assert_array_equal(np.load(entry), X[5])        # and rewritten whole
    assert not stale_tmp.exists()                              # old leftovers are swept
    assert fresh_tmp.exists()                                  # a recent one may be a live writer's


def test_corrupt_consolidated_array_falls_back_to_entries(wav_files, cache_root, counting):
    X = feature_cache.extract_corpus(wav_files, SMALL, n_jobs=1, progress=False)
    (corpus,) = (cache_root / "features" / SMALL.key()).glob("corpus-*.npy")
    corpus.write_bytes(corpus.read_bytes()[:200])
    counting.clear()
    np.testing.assert_array_equal(feature_cache.extract_corpus(wav_files, SMALL, n_jobs=1, progress=False), X)
    assert counting == []
    np.testing.assert_array_equal(np.load(corpus), X)          # rewritten


def test_entries_of_another_algorithm_version_are_dropped(wav_files, cache_root, counting, monkeypatch):
    feature_cache.extract_corpus(wav_files[:3], SMALL, n_jobs=1, progress=False)
    monkeypatch.setattr(F, "ALGORITHM_VERSION", F.ALGORITHM_VERSION + 1)
    counting.clear()
    feature_cache.extract_corpus(wav_files[:3], SMALL, n_jobs=1, progress=False)
    assert len(counting) == 3


def test_unreadable_and_missing_files(wav_files, cache_root, tmp_path, capsys):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF this is not really a wave file" * 10)
    paths = [wav_files[0], broken, wav_files[1]]
    with pytest.raises(AudioError, match="broken.wav"):
        feature_cache.extract_corpus(paths, SMALL, n_jobs=1, progress=False)
    with pytest.raises(AudioError, match="missing.wav.*no such file"):
        feature_cache.extract_corpus([wav_files[0], tmp_path / "missing.wav"], SMALL, n_jobs=1, progress=False)
    capsys.readouterr()
    X, kept = feature_cache.extract_corpus(paths + [tmp_path / "missing.wav"], SMALL, n_jobs=1, progress=False,
                                           errors="skip", return_kept=True)
    assert X.shape == (2, 50, 13) and kept.tolist() == [0, 2]
    messages = capsys.readouterr().err.strip().splitlines()       # one logged warning line per file skipped
    assert len(messages) == 2 and all(m.startswith("serlib: warning: extract_corpus skipped") for m in messages)
    assert "broken.wav" in messages[0] and "missing.wav" in messages[1]
    np.testing.assert_array_equal(X[1], F.extract_file(wav_files[1], SMALL))
    with pytest.raises(AudioError, match="broken.wav"):        # a failure is never cached as a success
        feature_cache.extract_corpus([broken], SMALL, n_jobs=1, progress=False, cache=False)
    with pytest.raises(ConfigError, match="errors"):
        feature_cache.extract_corpus(paths, SMALL, errors="ignore")


def test_automatic_worker_count_follows_idle_cores(monkeypatch):
    monkeypatch.delenv("SERLIB_N_JOBS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    for load, workers in [(0.1, 4), (1.0, 4), (2.2, 3), (3.4, 2), (9.0, 1)]:
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, load, load))
        assert feature_cache._resolve_jobs(None) == workers, load
    monkeypatch.setenv("SERLIB_N_JOBS", "3")                     # an explicit setting wins
    assert feature_cache._resolve_jobs(None) == 3
    assert feature_cache._resolve_jobs(2) == 2 and feature_cache._resolve_jobs(-1) == 4


def test_unfixed_spec_cannot_be_stacked(wav_files):
    with pytest.raises(SerlibError, match="n_frames"):
        feature_cache.extract_corpus(wav_files, SMALL.replace(n_frames=None), progress=False)


@pytest.mark.slow
def test_parallel_equals_serial_and_shares_the_work(wav_files, cache_root, monkeypatch):
    monkeypatch.setattr(feature_cache, "PARALLEL_MIN_CLIPS", 1)
    spec = REPORT_SPECS["004"]
    serial = feature_cache.extract_corpus(wav_files, spec, n_jobs=1, cache=False, progress=False)
    try:
        assert feature_cache.start_workers(2) == 2
        calls = []
        real = F.extract_file
        monkeypatch.setattr(F, "extract_file", lambda path, s: calls.append(path) or real(path, s))
        parallel = feature_cache.extract_corpus(wav_files, spec, n_jobs=2, cache=True, progress=False)
    finally:
        feature_cache.stop_workers()
    np.testing.assert_array_equal(parallel, serial)
    assert 0 < len(calls) < 20          # this process took chunks from the end, the workers the rest
    folder = cache_root / "features" / spec.key()
    assert len([p for p in folder.glob("*.npy") if not p.name.startswith("corpus-")]) == 20


def test_standin_corpus_through_the_cache(standin_dir, cache_root, counting):
    paths = sorted(standin_dir.rglob("*.wav"))[:24]
    spec = REPORT_SPECS["004"]
    X = feature_cache.extract_corpus(paths, spec, n_jobs=1, progress=False)
    assert X.shape == (24, 226, 162) and np.all(np.isfinite(X))
    counting.clear()
    np.testing.assert_array_equal(feature_cache.extract_corpus(paths, spec, n_jobs=1, progress=False), X)
    assert counting == []
    assert feature_cache.clear_cache(spec) > 24
    assert not (cache_root / "features" / spec.key()).exists()


def test_byte_identical_files_are_computed_once(wav_files, cache_root, counting, tmp_path):
    """Like RAVDESS's Actor_07 pair: two names, one recording, one extraction."""
    twin = tmp_path / "twin.wav"
    shutil.copy(wav_files[2], twin)
    X = feature_cache.extract_corpus([wav_files[2], wav_files[3], twin], SMALL, n_jobs=1, progress=False)
    assert len(counting) == 2
    np.testing.assert_array_equal(X[0], X[2])


@pytest.mark.parametrize("key", ["001", "004"])
def test_features_of_a_loaded_recording_equal_those_of_its_file(ravdess_original_dir, key):
    """serlib predict decodes a file once for a fused model: the features must not change."""
    from serlib.audio import load_audio

    spec = REPORT_SPECS[key]
    path = next(Path(ravdess_original_dir).rglob("*.wav"))           # 48 kHz stereo original
    whole = load_audio(path, spec.sr)
    np.testing.assert_array_equal(F.extract_recording(whole, spec, path), F.extract_file(path, spec))
