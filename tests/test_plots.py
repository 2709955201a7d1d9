"""Tests for serlib.plots: every figure renders headless and is labelled as documented."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from serlib import plots  # noqa: E402
from fake_index import ravdess_like_frame  # noqa: E402
from serlib.datasets.ravdess import EMOTIONS  # noqa: E402
from serlib.errors import ConfigError, SerlibError  # noqa: E402
from serlib.metrics import classification_report  # noqa: E402
from serlib.splits import random_split  # noqa: E402

SR = 8000
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def clip():
    t = np.arange(int(0.5 * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * 200 * t) * np.hanning(len(t))).astype(np.float32)


def index_frame(actors=(1, 2, 3, 4)):
    return ravdess_like_frame(actors, repetitions=(1,), suffix=".wav")


def test_waveform(clip):
    ax = plots.plot_waveform(clip, SR, title="A tone")
    assert ax.get_xlabel() == "Time (s)" and ax.get_ylabel() == "Amplitude"
    assert ax.get_title() == "A tone"
    assert ax.get_xlim() == pytest.approx((0, 0.5))
    assert len(ax.lines) == 1 and len(ax.lines[0].get_xdata()) == len(clip)
    assert plots.to_png(ax).startswith(PNG)
    with pytest.raises(SerlibError, match="mono"):
        plots.plot_waveform(np.zeros((2, 10)), SR)


@pytest.mark.parametrize("kind, ylabel", [("mel", "Frequency (Hz)"), ("mfcc", "MFCC coefficient"),
                                          ("stft", "Frequency (Hz)")])
def test_spectrogram_from_waveform(clip, kind, ylabel):
    ax = plots.plot_spectrogram(clip, SR, hop_length=128, kind=kind, n_fft=512, n_mels=40, title=kind)
    assert ax.get_xlabel() == "Time (s)" and ax.get_ylabel() == ylabel
    assert len(ax.figure.axes) == 2  # the image and its colour bar
    image = ax.collections[0].get_array()
    frames = 1 + len(clip) // 128
    rows = {"mel": 40, "mfcc": 40, "stft": 257}[kind]
    assert image.size == rows * frames
    assert plots.to_png(ax.figure).startswith(PNG)


def test_spectrogram_from_time_major_matrix():
    features = np.random.default_rng(0).normal(size=(100, 13)).astype(np.float32)  # frames × coefficients
    fig, ax = plt.subplots()
    out = plots.plot_spectrogram(features, 16000, hop_length=160, kind="mfcc", ax=ax, time_major=True,
                                 colorbar=False)
    assert out is ax and len(fig.axes) == 1
    assert ax.get_xlim()[1] == pytest.approx(100 * 160 / 16000, rel=0.02)
    with pytest.raises(SerlibError, match="kind="):
        plots.plot_spectrogram(features, 16000, kind="cqt")


def test_confusion_normalised_and_counts():
    labels = ["neutral", "happy", "sad"]
    report = classification_report(["neutral", "happy", "happy", "sad"], ["neutral", "happy", "sad", "sad"], labels)
    ax = plots.plot_confusion(report, title="Test")
    assert [t.get_text() for t in ax.get_xticklabels()] == labels
    assert [t.get_text() for t in ax.get_yticklabels()] == labels
    assert ax.get_xlabel() == "Predicted" and ax.get_ylabel() == "True"
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 9 and texts[:3] == ["100", "0", "0"] and texts[3:6] == ["0", "50", "50"]
    values = ax.images[0].get_array()
    assert values[1, 1] == pytest.approx(0.5)
    assert plots.to_png(ax).startswith(PNG)
    ax2 = plots.plot_confusion(report["confusion"], labels, normalize=False, colorbar=True)
    assert [t.get_text() for t in ax2.texts][3:6] == ["0", "1", "1"]
    assert len(ax2.figure.axes) == 2
    with pytest.raises(SerlibError, match="square"):
        plots.plot_confusion([[1, 2, 3]], ["a"])
    with pytest.raises(SerlibError, match="2 labels"):
        plots.plot_confusion(np.eye(3), ["a", "b"])


def test_history_panels_and_best_epoch():
    history = {"loss": [2.0, 1.5, 1.0, 0.8], "val_loss": [2.1, 1.7, 1.6, 1.9],
               "categorical_accuracy": [0.2, 0.4, 0.6, 0.7], "val_categorical_accuracy": [0.2, 0.3, 0.4, 0.35]}
    axes = plots.plot_history(history, title="run")
    assert len(axes) == 2
    assert [a.get_ylabel() for a in axes] == ["Loss", "Accuracy"]
    assert all(a.get_xlabel() == "Epoch" for a in axes)
    labels = [line.get_label() for line in axes[0].lines]
    assert labels == ["train", "validation", "best epoch (3)"]
    assert list(axes[1].lines[0].get_ydata()) == history["categorical_accuracy"]
    assert plots.to_png(axes[0]).startswith(PNG)
    # a DataFrame (history.csv) and given axes
    fig, ax = plt.subplots()
    out = plots.plot_history(pd.DataFrame(history), ax=ax, metrics=["loss"])
    assert out == [ax]
    with pytest.raises(SerlibError, match="none of the metrics"):
        plots.plot_history({"lr": [0.1]})
    with pytest.raises(SerlibError, match="2 metrics"):
        plots.plot_history(history, ax=ax)


def test_comparison_folds_errorbars_reported_and_groups():
    rows = []
    for model, base in (("cnn1d", 0.40), ("cnn2d", 0.50)):
        for fold in range(4):
            rows.append({"model": model, "uar": base + 0.02 * fold, "reported": {"cnn1d": 0.55}.get(model)})
    df = pd.DataFrame(rows)
    ax = plots.plot_comparison(df, metric="uar", chance=1 / 8, title="UAR")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cnn1d", "cnn2d"]
    assert ax.get_xlabel() == "UAR (%)"
    widths = [p.get_width() for p in ax.patches]
    assert widths == pytest.approx([43.0, 53.0])
    err = [c for c in ax.containers if hasattr(c, "errorbar") and c.errorbar is not None][0].errorbar
    segments = err.lines[2][0].get_segments()
    half = (segments[0][1][0] - segments[0][0][0]) / 2
    assert half == pytest.approx(100 * np.std([0.40, 0.42, 0.44, 0.46], ddof=1))
    reported = [line for line in ax.lines if line.get_label() == "reported"]
    assert len(reported) == 1 and list(reported[0].get_xdata()) == pytest.approx([55.0])
    assert plots.to_png(ax).startswith(PNG)
    # one row per model and protocol, with a std column, grouped bars
    summary = pd.DataFrame({"model": ["a", "a", "b", "b"], "protocol": ["random", "speakers"] * 2,
                            "accuracy": [0.9, 0.6, 0.8, 0.5], "accuracy_std": [0.01, 0.05, 0.02, 0.04]})
    ax = plots.plot_comparison(summary, metric="accuracy", group="protocol", percent=False)
    assert len(ax.patches) == 4
    assert ax.get_xlabel() == "Accuracy"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["random", "speakers"]
    with pytest.raises(SerlibError, match="no column"):
        plots.plot_comparison(summary, metric="uar")


def test_class_balance_overall_and_by_split():
    df = index_frame()
    ax = plots.plot_class_balance(df, by="emotion")
    assert [t.get_text() for t in ax.get_xticklabels()] == EMOTIONS
    heights = [p.get_height() for p in ax.patches]
    assert heights == [8, 16, 16, 16, 16, 16, 16, 16]
    assert ax.get_ylabel() == "Clips" and ax.get_xlabel() == "Emotion"
    ax = plots.plot_class_balance(df, by="emotion", hue="gender")
    assert len(ax.patches) == 16
    split = random_split(df, (0.6, 0.15, 0.25), seed=0)
    ax = plots.plot_class_balance(df, split=split)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "val", "test"]
    assert sum(p.get_height() for p in ax.patches) == len(df)
    assert plots.to_png(ax).startswith(PNG)
    with pytest.raises(SerlibError, match="'accent'"):
        plots.plot_class_balance(df, by="accent")


def test_save_figure_atomic(tmp_path, clip):
    ax = plots.plot_waveform(clip, SR)
    path = plots.save_figure(ax, tmp_path / "sub" / "wave.png")
    assert path.read_bytes().startswith(PNG)
    assert [p.name for p in path.parent.iterdir()] == ["wave.png"]  # no temporary left behind
    assert not plt.fignum_exists(ax.figure.number)
    svg = plots.save_figure(plots.plot_waveform(clip, SR), tmp_path / "sub" / "wave.svg")
    assert b"<svg" in svg.read_bytes()[:400]                          # the format follows the suffix
    with pytest.raises(ConfigError, match="cannot write 'xyz' images"):
        plots.save_figure(plots.plot_waveform(clip, SR), tmp_path / "sub" / "wave.xyz")
    assert sorted(p.name for p in path.parent.iterdir()) == ["wave.png", "wave.svg"]


def test_comparisons_on_shared_y_axes_both_read_top_down():
    import matplotlib.pyplot as plt

    df = {"model": ["a", "b", "c"], "uar": [0.3, 0.5, 0.7]}
    fig, axes = plt.subplots(1, 2, sharey=True)
    plots.plot_comparison(df, ax=axes[0])
    plots.plot_comparison(df, ax=axes[1])
    for ax in axes:    # first model at the top: y axis inverted exactly once
        assert ax.yaxis_inverted()
    plt.close(fig)
