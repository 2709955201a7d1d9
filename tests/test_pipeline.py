"""serlib.pipeline: every view of a clip from one decode, cached, and the same in prediction."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from serlib import audio
from serlib.errors import SerlibError
from serlib.feature_cache import extract_corpus
from serlib.features import FeatureSpec, extract_file
from serlib.functionals import SR, functional_names, functionals
from serlib.pipeline import Pipeline, StatsView

SPEC = FeatureSpec(kind="logmel", n_mels=32, n_frames=120, duration=1.2, trim=True)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipeline-clips")
    rng = np.random.default_rng(3)
    paths = []
    for k in range(5):
        t = np.arange(int(1.0 * 22050)) / 22050
        y = 0.3 * np.sin(2 * np.pi * (120 + 30 * k) * t * (1 + 0.1 * t)) + 0.01 * rng.standard_normal(len(t))
        y[:2000] = 0.0                                   # a quiet start for the trimmers
        path = folder / f"clip{k}.flac"
        sf.write(path, y.astype(np.float32), 22050)
        paths.append(str(path))
    return paths


@pytest.fixture
def fresh_cache(monkeypatch, tmp_path):
    """An empty feature cache, with the encoder's weights kept where they are (not fetched again)."""
    from serlib.voice_encoder import weights_path

    monkeypatch.setenv("SERLIB_ENCODER_WEIGHTS", str(weights_path()))
    monkeypatch.setenv("SERLIB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _counting_reads(monkeypatch):
    reads = []
    original = audio._read
    monkeypatch.setattr(audio, "_read", lambda path, *a, **k: reads.append(str(path)) or original(path, *a, **k))
    return reads


def test_each_clip_is_decoded_once_for_every_view_then_never_again(clips, monkeypatch, fresh_cache):
    pipeline = Pipeline(SPEC, feature_speeds=(1.0, 0.9), functional_speeds=(1.0, 0.9, 1.1))
    reads = _counting_reads(monkeypatch)
    cold = pipeline.transform(clips, progress=False)
    assert sorted(reads) == sorted(clips) and cold.decoded == len(clips)
    reads.clear()
    warm = pipeline.transform(clips, progress=False)
    assert reads == [] and warm.decoded == 0
    for speed in (1.0, 0.9):
        np.testing.assert_array_equal(warm.features[speed], cold.features[speed])
    for speed in (1.0, 0.9, 1.1):
        assert cold.functionals[speed].shape == (len(clips), len(functional_names()))
        np.testing.assert_array_equal(warm.functionals[speed], cold.functionals[speed])
    assert warm.functionals_at((1.0, 0.9, 1.1)).shape == (len(clips), 3, len(functional_names()))


def test_the_views_equal_what_each_stage_computes_on_its_own(clips, monkeypatch, fresh_cache):
    views = Pipeline(SPEC, feature_speeds=(1.0, 1.1), functional_speeds=(1.0, 0.9)).transform(clips, progress=False)
    np.testing.assert_array_equal(views.features[1.0], extract_corpus(clips, SPEC, cache=False, progress=False))
    np.testing.assert_allclose(views.features[1.1], np.stack([extract_file(p, SPEC, speed=1.1) for p in clips]),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(views.functionals[1.0], functionals(clips, progress=False), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(views.functionals[0.9], functionals(clips, progress=False, speed=0.9),
                               rtol=1e-4, atol=1e-4)


def test_one_signal_is_described_like_a_file(clips):
    pipeline = Pipeline(SPEC, functional_speeds=(1.0, 1.1))
    from_file = pipeline.transform(clips[:1], cache=False, progress=False)
    from_signal = pipeline.describe_signal(audio.load_audio(clips[0], SR), SR, clips[0])
    np.testing.assert_array_equal(from_signal.features[1.0], from_file.features[1.0])
    np.testing.assert_allclose(from_signal.functionals_at((1.0, 1.1)), from_file.functionals_at((1.0, 1.1)),
                               rtol=1e-5, atol=1e-5)


def test_a_damaged_cached_view_is_recomputed_not_used(clips, monkeypatch, fresh_cache):
    pipeline = Pipeline(SPEC, functional_speeds=(1.0,))
    first = pipeline.transform(clips[:2], progress=False)
    entries = sorted(fresh_cache.rglob(f"{StatsView(1.0).key()}/*.npy"))
    assert entries
    for entry in entries:                      # overwrite the data, keep the size
        raw = bytearray(entry.read_bytes())
        raw[200:260] = bytes(60)
        entry.write_bytes(bytes(raw))
    again = pipeline.transform(clips[:2], progress=False)
    assert again.decoded == 2
    np.testing.assert_array_equal(again.functionals[1.0], first.functionals[1.0])


def test_the_pipeline_round_trips_through_json_and_refuses_other_statistics():
    pipeline = Pipeline(SPEC, feature_speeds=(0.9,), functional_speeds=(1.0, 1.1))
    assert pipeline.feature_speeds == (1.0, 0.9)
    data = pipeline.to_dict()
    assert Pipeline.from_dict(data) == pipeline
    data["functionals"][0]["encoder_sha256"] = "0" * 64
    with pytest.raises(SerlibError, match="computed by another serlib"):
        Pipeline.from_dict(data, source="RUN/run.json")
    with pytest.raises(SerlibError, match="pipeline cannot be read"):
        Pipeline.from_dict({"features": {"kind": "nonsense"}}, source="RUN/run.json")
    with pytest.raises(SerlibError, match="between 0.5 and 2"):
        Pipeline(SPEC, functional_speeds=(3.0,))


def test_the_recommended_model_reads_features_and_three_speeds_of_statistics():
    from serlib.models import get_model

    entry = get_model("recommended")
    pipeline = Pipeline.for_model(entry)
    assert pipeline.features == entry.features and pipeline.decode_rate == SR
    assert pipeline.functional_speeds == (1.0, 0.9, 1.1)
    report = Pipeline.for_model(get_model(next(n for n in ("kalokyris_cnn2d_a",))))
    assert report.functional_speeds == () and report.feature_speeds == (1.0,)


def test_training_the_recommended_model_decodes_each_clip_once_and_a_second_run_none(
        standin_dir, monkeypatch, fresh_cache, tmp_path):
    """serlib train recommended: network features and clip statistics at three speeds from one
    decode per clip; the same training again finds every view in the cache."""
    from serlib.datasets import index_ravdess
    from serlib.training import prepare_data, train

    n_clips = len(index_ravdess(standin_dir))
    reads = _counting_reads(monkeypatch)
    first = train("recommended", standin_dir, out_dir=tmp_path / "first", seed=0, epochs=1, batch_size=16,
                  quick=True, verbose=0)
    assert len(reads) == len(set(reads)) == n_clips
    assert first.info["pipeline"]["functional_speeds"] == [1.0, 0.9, 1.1]
    reads.clear()
    again = prepare_data("recommended", standin_dir, verbose=0)     # what a second `serlib train` starts with
    assert reads == []
    assert again.functionals.shape == (n_clips, first.info["functionals_fusion"]["n_functionals"])
    fresh = again.pipeline.transform(again.index["path"][:3], cache=False, progress=False)
    np.testing.assert_array_equal(again.X[:3], fresh.features[1.0])
    np.testing.assert_allclose(again.perturbed_functionals[0.9][:3], fresh.functionals[0.9], rtol=1e-5, atol=1e-5)

