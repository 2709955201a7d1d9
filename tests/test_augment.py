"""Tests for serlib.augment: the four perturbations and leakage-proof training-set augmentation."""

import numpy as np
import pytest

from serlib.augment import (DEFAULT_RANGES, OPS, add_noise, augment_before_split, augment_training_set,
                            leaked_fraction, measure_snr, pitch_shift, random_augment, shift, speed_perturb,
                            time_shift, time_stretch)
from fake_index import ravdess_like_frame
from serlib.errors import SerlibError
from serlib.splits import Split, random_split, speaker_split

SR = 8000


def tone(freq=220.0, seconds=0.5, sr=SR, seed=0):
    """A voiced-like clip: a harmonic tone with an envelope and a little noise."""
    t = np.arange(int(seconds * sr)) / sr
    y = sum(np.sin(2 * np.pi * freq * k * t) / k for k in (1, 2, 3))
    y *= np.hanning(len(t))
    y += 0.001 * np.random.default_rng(seed).standard_normal(len(t))
    return (0.3 * y).astype(np.float32)


def peak_frequency(y, sr=SR):
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y)), n=1 << 16))
    return np.fft.rfftfreq(1 << 16, 1 / sr)[np.argmax(spectrum)]


def small_index(actors=(1, 2, 3, 4, 5, 6)):
    return ravdess_like_frame(actors, emotions=(1, 3, 4, 5, 6), intensities=(1,), repetitions=(1,),
                              suffix=".wav")


@pytest.fixture(scope="module")
def corpus():
    df = small_index()
    waves = [tone(110 + 5 * i, seconds=0.3 + 0.01 * (i % 5), seed=i) for i in range(len(df))]
    return df, waves, df["emotion"].to_numpy()


# --------------------------------------------------------------------------- perturbations
@pytest.mark.parametrize("snr", [0.0, 5.0, 10.0, 20.0, 30.0])
def test_add_noise_hits_target_snr(snr):
    y = tone()
    noisy = add_noise(y, snr, np.random.default_rng(1))
    noise = noisy.astype(np.float64) - y
    measured = 10 * np.log10(np.mean(y.astype(np.float64) ** 2) / np.mean(noise ** 2))
    assert abs(measured - snr) < 0.5
    assert measure_snr(y, noisy) == pytest.approx(measured)
    assert noisy.dtype == np.float32 and noisy.shape == y.shape
    assert abs(np.mean(noise)) < 0.05 * np.std(noise)  # zero-mean, white-ish
    assert abs(np.corrcoef(noise[:-1], noise[1:])[0, 1]) < 0.1


def test_add_noise_deterministic_and_leaves_input_alone():
    y = tone()
    before = y.copy()
    a = add_noise(y, 10, 7)
    b = add_noise(y, 10, np.random.default_rng(7))
    c = add_noise(y, 10, 8)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(y, before)
    silent = np.zeros(100, np.float32)
    assert np.array_equal(add_noise(silent, 10, 0), silent)
    with pytest.raises(SerlibError, match="mono"):
        add_noise(np.zeros((2, 100)), 10, 0)
    with pytest.raises(SerlibError, match="finite"):
        add_noise(y, float("nan"), 0)


def test_pitch_shift_moves_the_fundamental():
    y = tone(220.0, seconds=1.0)
    up = pitch_shift(y, SR, 2)
    down = pitch_shift(y, SR, -3)
    assert len(up) == len(down) == len(y)
    assert peak_frequency(up) == pytest.approx(220 * 2 ** (2 / 12), rel=0.02)
    assert peak_frequency(down) == pytest.approx(220 * 2 ** (-3 / 12), rel=0.02)
    assert np.array_equal(pitch_shift(y, SR, 0), y)


def test_speed_perturb_moves_length_and_pitch_together():
    y = tone(220.0, seconds=1.0)
    fast, slow = speed_perturb(y, SR, 1.1), speed_perturb(y, SR, 0.9)
    assert len(fast) == pytest.approx(len(y) / 1.1, abs=2) and len(slow) == pytest.approx(len(y) / 0.9, abs=2)
    assert peak_frequency(fast) == pytest.approx(220 * 1.1, rel=0.01)
    assert peak_frequency(slow) == pytest.approx(220 * 0.9, rel=0.01)
    same = speed_perturb(y, SR, 1.0)
    assert np.array_equal(same, y) and same is not y
    for bad in (0.3, 2.5, float("nan")):
        with pytest.raises(SerlibError, match="between 0.5 and 2"):
            speed_perturb(y, SR, bad)


def test_time_stretch_changes_length_not_pitch():
    y = tone(220.0, seconds=1.0)
    slow = time_stretch(y, 0.8)
    fast = time_stretch(y, 1.25)
    assert len(slow) == pytest.approx(len(y) / 0.8, rel=0.02)
    assert len(fast) == pytest.approx(len(y) / 1.25, rel=0.02)
    assert peak_frequency(slow) == pytest.approx(220, rel=0.02)
    kept = time_stretch(y, 0.8, keep_length=True)
    assert len(kept) == len(y) and np.array_equal(kept, slow[: len(y)])
    padded = time_stretch(y, 1.25, keep_length=True)
    assert len(padded) == len(y) and not padded[len(fast):].any()
    with pytest.raises(SerlibError, match="positive"):
        time_stretch(y, 0)


def test_shift_pad_and_roll():
    y = np.arange(1, 11, dtype=np.float32)
    assert shift(y, 3).tolist() == [0, 0, 0, 1, 2, 3, 4, 5, 6, 7]
    assert shift(y, -2).tolist() == [3, 4, 5, 6, 7, 8, 9, 10, 0, 0]
    assert shift(y, 3, mode="roll").tolist() == [8, 9, 10, 1, 2, 3, 4, 5, 6, 7]
    assert not shift(y, 50).any()
    with pytest.raises(SerlibError, match="'pad' or 'roll'"):
        shift(y, 1, mode="wrap")


def test_time_shift_bounded_and_seeded():
    y = np.zeros(1000, np.float32)
    y[500] = 1.0
    offsets = {int(np.argmax(time_shift(y, 1000, 0.1, seed))) - 500 for seed in range(40)}
    assert max(abs(o) for o in offsets) <= 100 and len(offsets) > 10
    assert np.array_equal(time_shift(y, 1000, 0.1, 3), time_shift(y, 1000, 0.1, 3))
    assert np.array_equal(time_shift(y, 1000, 0.0, 3), y)


def test_random_augment_uses_each_op_and_keeps_length():
    y = tone(seconds=0.3)
    seen = {}
    for seed in range(40):
        out, info = random_augment(y, SR, seed, return_info=True)
        assert len(out) == len(y) and out.dtype == np.float32
        seen.setdefault(info["op"], info)
    assert set(seen) == set(OPS)
    lo, hi = DEFAULT_RANGES["noise"]
    assert lo <= seen["noise"]["snr_db"] <= hi
    assert DEFAULT_RANGES["pitch"][0] <= abs(seen["pitch"]["n_steps"]) <= DEFAULT_RANGES["pitch"][1]
    only_noise = {random_augment(y, SR, s, ops="noise", return_info=True)[1]["op"] for s in range(5)}
    assert only_noise == {"noise"}
    snr = random_augment(y, SR, 0, ops=["noise"], ranges={"noise": (3.0, 3.0)}, return_info=True)
    assert measure_snr(y, snr[0]) == pytest.approx(3.0, abs=0.5)
    assert np.array_equal(random_augment(y, SR, 11), random_augment(y, SR, 11))
    with pytest.raises(SerlibError, match="choose one or more"):
        random_augment(y, SR, 0, ops=["reverb"])


# --------------------------------------------------------------------------- training-set augmentation
class RecordingList(list):
    """A list that remembers which positions were read."""

    def __init__(self, items):
        super().__init__(items)
        self.read = set()

    def __getitem__(self, i):
        self.read.add(int(i))
        return super().__getitem__(i)


def test_augment_training_set_touches_only_training_clips(corpus):
    df, waves, labels = corpus
    split = speaker_split(df, test_actors=[5, 6], n_val_actors=1, seed=0)
    recorded = RecordingList(waves)
    out, out_labels, sources = augment_training_set(recorded, labels, split, sr=SR, copies=2, seed=0)
    train = set(split.train.tolist())
    assert recorded.read <= train  # validation and test clips were never even read
    assert set(sources.tolist()) == train
    assert not set(sources.tolist()) & (set(split.val.tolist()) | set(split.test.tolist()))
    assert len(out) == len(out_labels) == len(sources) == 3 * len(split.train)
    assert np.array_equal(out_labels, labels[sources])
    assert list(sources[: len(split.train)]) == list(split.train)  # originals first, in order
    for i, p in enumerate(sources):
        assert len(out[i]) == len(waves[p])
        if i < len(split.train):
            assert np.array_equal(out[i], waves[p])
    copies = out[len(split.train):]
    assert sum(not np.array_equal(c, waves[p]) for c, p in zip(copies, sources[len(split.train):])) > 0.9 * len(copies)
    assert set(df.iloc[sources]["actor"]) == set(split.actors()["train"])


def test_augment_training_set_deterministic_and_seeded(corpus):
    df, waves, labels = corpus
    split = random_split(df, (0.6, 0.2, 0.2), seed=0)
    a = augment_training_set(waves, labels, split, sr=SR, copies=1, seed=4, include_originals=False)
    b = augment_training_set(waves, labels, split, sr=SR, copies=1, seed=4, include_originals=False)
    c = augment_training_set(waves, labels, split, sr=SR, copies=1, seed=5, include_originals=False)
    assert len(a[0]) == len(split.train)
    assert all(np.array_equal(x, y) for x, y in zip(a[0], b[0]))
    assert not all(np.array_equal(x, y) for x, y in zip(a[0], c[0]))
    assert np.array_equal(a[2], split.train)


def test_augment_training_set_with_array_input(corpus):
    df, _, labels = corpus
    block = np.stack([tone(100 + i, seconds=0.3, seed=i) for i in range(len(df))])
    split = random_split(df, (0.7, 0.3), seed=1)
    before = block.copy()
    out, out_labels, sources = augment_training_set(block, labels, split, sr=SR, copies=1, ops=("noise", "shift"))
    assert isinstance(out, np.ndarray) and out.shape == (2 * len(split.train), block.shape[1])
    assert np.array_equal(block, before)
    assert set(sources.tolist()) == set(split.train.tolist())


def test_augment_training_set_refuses_anything_but_a_split(corpus):
    df, waves, labels = corpus
    with pytest.raises(SerlibError, match="must be a serlib.splits.Split"):
        augment_training_set(waves, labels, np.arange(len(waves)), sr=SR)
    split = random_split(df, seed=0)
    with pytest.raises(SerlibError, match="made for an index of 60 clips"):
        augment_training_set(waves[:30], labels[:30], split, sr=SR)
    with pytest.raises(SerlibError, match="pair up"):
        augment_training_set(waves, labels[:10], split, sr=SR)
    with pytest.raises(SerlibError, match="copies"):
        augment_training_set(waves, labels, split, sr=SR, copies=-1)
    empty = Split(train=[], val=[], test=[0], protocol="x", n_rows=len(waves))
    with pytest.raises(SerlibError, match="training part is empty"):
        augment_training_set(waves, labels, empty, sr=SR)


def test_augment_before_split_leaks_and_the_right_way_does_not(corpus):
    df, waves, labels = corpus
    out, out_labels, sources, leaky = augment_before_split(waves, labels, sr=SR, copies=2, seed=0)
    assert len(out) == len(out_labels) == len(sources) == 3 * len(waves)
    assert leaky.sizes()["test"] == pytest.approx(0.25 * len(sources), abs=3)
    share = leaked_fraction(sources, leaky)
    assert share > 0.8  # nearly every test clip has a sibling in training
    assert f"{share:.0%}" in leaky.description and "WRONG WAY" in leaky.description
    assert "leaky" in leaky.protocol
    # the right way: split the originals, then augment the training part only
    split = random_split(df, (0.75, 0.25), seed=0)
    _, _, right_sources = augment_training_set(waves, labels, split, sr=SR, copies=2, seed=0)
    assert not set(right_sources.tolist()) & set(split.test.tolist())


def test_leaked_fraction_by_hand():
    sources = np.array([0, 1, 2, 0, 1, 2])
    split = Split(train=[0, 1, 5], val=[], test=[2, 3, 4], protocol="x")
    # test holds sources 2, 0, 1; training holds sources 0, 1, 2 -> all leak
    assert leaked_fraction(sources, split) == 1.0
    split = Split(train=[0, 3], val=[1], test=[2, 5], protocol="x")
    assert leaked_fraction(sources, split) == 0.0
    assert leaked_fraction(sources, split, "val") == 0.0
    with pytest.raises(SerlibError, match="does not index"):
        leaked_fraction(sources[:2], split)
