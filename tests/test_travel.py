"""Transductive adaptation (serlib.cross_corpus, serlib evaluate --adapt) and benchmarks/travel.py's
channel-normalised functionals."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serlib import fusion
from serlib.cross_corpus import adapt_groups, adapted_proba
from serlib.errors import SerlibError

ROOT = Path(__file__).resolve().parents[1]


class _FlatModel:
    """A stand-in network: the same probabilities for every clip."""

    def __init__(self, n_classes):
        self.n_classes = n_classes

    def predict(self, X, batch_size=64, verbose=0):
        return np.full((len(X), self.n_classes), 1.0 / self.n_classes)


class _Run:
    def __init__(self, params, n_classes, normalization=None):
        self.model, self.fusion, self.normalization = _FlatModel(n_classes), params, normalization

    def prepare(self, x):
        return np.asarray(x, dtype=np.float32)


def _regression(rng, d=6, n=120):
    """A regression whose classes differ in the first two statistics."""
    y = np.repeat(np.arange(3), n // 3)
    centres = np.zeros((3, d))
    centres[:, 0], centres[:, 1] = [-2, 0, 2], [1, -1, 0]
    F = centres[y] + rng.normal(scale=0.5, size=(n, d))
    params = fusion.fit_linear(F, y, 3, C=1.0, weight=0.5, uniform_prior=True, pooling="geometric")
    return params, F, y


def test_adapt_groups_corpus_and_speaker():
    df = pd.DataFrame({"speaker": ["emodb03", "emodb08", "emodb03", "emodb10"], "actor": [103, 108, 103, 110]})
    assert adapt_groups(df, "corpus").tolist() == [0, 0, 0, 0]
    groups = adapt_groups(df, "speaker")
    assert groups[0] == groups[2] and len(set(groups.tolist())) == 3
    with pytest.raises(SerlibError, match="choose one of corpus, speaker"):
        adapt_groups(df, "clip")


def test_corpus_adaptation_undoes_a_channel_offset():
    rng = np.random.default_rng(0)
    params, F, y = _regression(rng)
    run = _Run(params, 3)
    X = np.zeros((len(F), 4, 2), dtype=np.float32)
    test = F + rng.normal(scale=0.2, size=F.shape)
    shifted = test + np.array([3.0, -2.5, 1.0, 0.0, 0.0, 4.0])   # another studio: every clip moved alike
    plain = fusion.fuse(params, run.model.predict(X), shifted)
    adapted = adapted_proba(run, X, shifted, np.zeros(len(F), dtype=int))
    same = adapted_proba(run, X, test, np.zeros(len(F), dtype=int))
    np.testing.assert_allclose(adapted, same, atol=1e-9)           # the offset no longer matters
    assert np.mean(adapted.argmax(1) == y) > 0.9 > np.mean(plain.argmax(1) == y) + 0.2


def test_speaker_adaptation_undoes_per_speaker_offsets_and_pools_speed_copies():
    rng = np.random.default_rng(1)
    params, F, y = _regression(rng)
    params = {**params, "speed_copies": np.array([0.9, 1.1]), "score_speed_copies": True}
    run = _Run(params, 3)
    speakers = np.arange(len(F)) % 2
    F3 = np.stack([F, F + 0.1, F - 0.1], axis=1)                   # (clips, speeds, values)
    offsets = np.where(speakers[:, None, None] == 0, 2.0, -3.0)
    X = np.zeros((len(F), 4, 2), dtype=np.float32)
    a = adapted_proba(run, X, F3 + offsets, speakers)
    b = adapted_proba(run, X, F3, speakers)
    np.testing.assert_allclose(a, b, atol=1e-9)
    assert a.shape == (len(F), 3) and np.allclose(a.sum(axis=1), 1.0)


def test_adaptation_replaces_a_runs_input_normalisation():
    rng = np.random.default_rng(2)

    class _Mean:
        def predict(self, X, batch_size=64, verbose=0):
            m = np.asarray(X).mean(axis=(1, 2))
            p = 1 / (1 + np.exp(-m))
            return np.stack([1 - p, p], axis=1)

    run = _Run(None, 2, normalization={"mean": [0.0, 0.0], "std": [1.0, 1.0]})
    run.model = _Mean()
    X = rng.normal(size=(10, 5, 2)).astype(np.float32) + 7.0         # far from the training mean 0
    adapted = adapted_proba(run, X, None, np.zeros(10, dtype=int))
    assert np.all(adapted[:, 1] < 0.9)                               # re-centred on the target's mean
    assert np.all(run.model.predict(run.prepare(X))[:, 1] > 0.99)      # as trained: everything looks class 1


def _travel():
    spec = importlib.util.spec_from_file_location("travel", ROOT / "benchmarks" / "travel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_channel_normalised_functionals_ignore_a_level_offset():
    from serlib.functionals import functional_blocks, functional_names

    travel = _travel()
    names = functional_names()
    rng = np.random.default_rng(3)
    F = rng.normal(size=(4, 3, len(names)))
    moved = F.copy()
    for row in ("log_rms", "mfcc3", "logmel10"):                     # a louder or filtered recording
        for stat in ("mean", *travel.LOCATION):
            moved[..., names.index(f"{row}_{stat}")] += 5.0
    cmn = travel.column_transform(cmn=True)
    np.testing.assert_allclose(cmn(moved), cmn(F))
    assert not np.allclose(travel.column_transform()(moved), travel.column_transform()(F))
    dropped = travel.column_transform(drop_blocks=("voice encoder",))(F)
    width = functional_blocks()["voice encoder"]
    assert dropped.shape[-1] == len(names) - (width.stop - width.start)


# ---------------------------------------------------------------------------- serlib evaluate --adapt
LETTER = {"angry": "W", "boredom": "L", "disgust": "E", "fearful": "A", "happy": "F", "sad": "T", "neutral": "N"}


@pytest.fixture(scope="module")
def trained(standin_dir, tmp_path_factory):
    """A tiny run (training-set input normalisation) trained on the RAVDESS-shaped stand-in."""
    from serlib.training import train

    out = tmp_path_factory.mktemp("travel-train") / "run"
    return train("das2019_model_b", standin_dir, out_dir=out, seed=0, epochs=2, batch_size=16, quick=True,
                 verbose=0, recipe=["normalize=true"])


@pytest.fixture(scope="module")
def emodb_like(standin_dir, tmp_path_factory):
    """Stand-in clips named as EmoDB clips of speakers 03 and 08 (boredom from calm)."""
    import shutil

    from serlib.datasets.ravdess import parse_name

    root = tmp_path_factory.mktemp("travel-emodb") / "emodb"
    root.mkdir()
    by_emotion = {}
    for path in sorted(standin_dir.rglob("*.wav")):
        by_emotion.setdefault(parse_name(path.name)["emotion"], []).append(path)
    for emotion, letter in LETTER.items():
        sources = by_emotion["calm" if emotion == "boredom" else emotion]
        for i, (speaker, text) in enumerate([("03", "a01"), ("03", "a02"), ("08", "a01"), ("08", "b01")]):
            shutil.copy(sources[i], root / f"{speaker}{text}{letter}a.wav")
    return root


def test_cli_evaluate_adapt_is_labelled_transductive(trained, emodb_like, capsys):
    import json

    from serlib import cli
    from serlib.evaluation import evaluate_run

    assert trained.normalization is not None            # the part --adapt re-estimates for this run
    plain = evaluate_run(trained.dir, emodb_like, predictions=True)
    assert "adapt" not in plain
    assert cli.main(["evaluate", str(trained.dir), "--data", str(emodb_like), "--json", "--adapt", "speaker"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["adapt"]["transductive"] is True and out["adapt"]["groups"] == 2 and out["n"] == 24
    adapted = evaluate_run(trained.dir, emodb_like, predictions=True, adapt="corpus")
    assert adapted["adapt"]["groups"] == 1
    probs = lambda m: np.array([list(p["probabilities"].values()) for p in m["predictions"]])  # noqa: E731
    assert not np.allclose(probs(plain), probs(adapted))  # the statistics did change
    assert cli.main(["evaluate", str(trained.dir), "--data", str(emodb_like), "--adapt", "corpus"]) == 0
    assert "transductive (--adapt corpus)" in capsys.readouterr().out
    with pytest.raises(SystemExit):                        # argparse: one usage line, status 2
        cli.main(["evaluate", str(trained.dir), "--data", str(emodb_like), "--adapt", "clip"])
    assert "invalid choice: 'clip'" in capsys.readouterr().err


def test_cli_evaluate_level_db_makes_a_quieter_copy_score_alike(trained, emodb_like, tmp_path, capsys):
    """--level-db takes the recording level out: a corpus copied 20 dB quieter gets the same answers."""
    import json

    import soundfile as sf

    from serlib import cli
    from serlib.evaluation import evaluate_run

    quieter = tmp_path / "emodb"
    quieter.mkdir()
    for path in emodb_like.glob("*.wav"):
        y, sr = sf.read(path, dtype="float32")
        sf.write(quieter / path.name, 0.1 * y, sr, subtype="FLOAT")     # no 16-bit rounding of the quiet parts
    probs = lambda m: np.array([list(p["probabilities"].values()) for p in m["predictions"]])  # noqa: E731
    plain = [evaluate_run(trained.dir, folder, predictions=True) for folder in (emodb_like, quieter)]
    assert not np.allclose(probs(plain[0]), probs(plain[1]), atol=1e-3)      # MFCC c0 follows the level
    levelled = [evaluate_run(trained.dir, folder, predictions=True, level_db=-30) for folder in (emodb_like, quieter)]
    np.testing.assert_allclose(probs(levelled[0]), probs(levelled[1]), atol=2e-3)
    assert cli.main(["evaluate", str(trained.dir), "--data", str(quieter), "--json", "--level-db", "-30"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["level_db"]["level_db"] == -30.0 and out["level_db"]["transductive"] is False
    assert "without it" in out["level_db"]["what"]
    assert cli.main(["evaluate", str(trained.dir), "--data", str(quieter), "--level-db", "5"]) != 0
    assert "level" in capsys.readouterr().err


def test_travel_network_input_layers():
    """benchmarks/travel.py's band normalisation cancels a fixed filter; its floor bounds each band's depth."""
    travel = _travel()
    rng = np.random.default_rng(4)
    x = rng.uniform(-80, 0, size=(2, 50, 8)).astype(np.float32)
    x[:, 40:] = -100.0                                               # padding, as the extractor pads
    filtered = x.copy()
    filtered[:, :40] += np.linspace(-6, 6, 8, dtype=np.float32)      # another microphone
    _, BandNorm = travel._band_norm_layer()
    a, b = np.asarray(BandNorm()(x)), np.asarray(BandNorm()(filtered))
    np.testing.assert_allclose(a[:, :40], b[:, :40], atol=1e-4)
    assert all(a[c, 40:].max() < a[c, :40].min() for c in range(2))
    _, BandFloor = travel._floor_layer()
    y = np.asarray(BandFloor(depth=20.0)(x))
    depth = y[:, :40].max(axis=1) - y[:, :40].min(axis=1)
    assert depth.max() <= 20.1 and depth.min() > 15.0             # no band deeper than the floor
    assert np.all(y[:, :40] >= x[:, :40] - 1e-4)                    # noise only adds power
    for clip in range(2):
        assert y[clip, 40:].max() < y[clip, :40].min()               # padding still recognisable


def test_travel_level_matching_moves_a_clip_to_the_reference(tmp_path):
    """benchmarks/travel_level.py: a gain moves the loud level by its dB; copies land on the reference."""
    import soundfile as sf

    sys.path.insert(0, str(ROOT / "benchmarks"))       # travel_level imports travel
    spec = importlib.util.spec_from_file_location("travel_level", ROOT / "benchmarks" / "travel_level.py")
    level = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(level)
    rng = np.random.default_rng(5)
    y = (0.05 * rng.normal(size=16000) * np.hanning(16000)).astype(np.float32)
    from serlib.level import loud_level

    assert abs(loud_level(10 * y, level.SR) - loud_level(y, level.SR) - 20.0) < 1e-3
    path = tmp_path / "src" / "03a01Fa.wav"
    path.parent.mkdir()
    sf.write(path, y, level.SR)
    index = pd.DataFrame({"path": [str(path)]})
    level.write_copies(index, [loud_level(y, level.SR)], tmp_path / "out", -30.0)
    copy, sr = sf.read(tmp_path / "out" / "src" / "03a01Fa.flac", dtype="float32")
    assert sr == level.SR and abs(loud_level(copy, level.SR) - -30.0) < 0.1
