"""The figures the chapters share: waveforms, spectrograms, confusion matrices,
training curves, model comparisons, class balance and prosodic contours.

Every function draws on the ``ax`` it is given, or on a new figure when ``ax`` is
``None``, and returns the Axes it drew on (a list of Axes for :func:`plot_history`); the
figure is ``ax.figure``. Nothing here calls ``plt.show()`` or needs a display, so the
functions work under the Agg backend, in notebooks and in tests. New figures are made
with ``matplotlib.pyplot`` so notebooks show them inline; code that draws many figures
should pass them to :func:`save_figure` (or ``plt.close``) when done.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import ConfigError, SerlibError
from .storage import atomic_write


def _new_axes(ax, ncols: int = 1, figsize=(7, 3)):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=figsize, squeeze=False, constrained_layout=True)
    return axes[0, 0] if ncols == 1 else list(axes[0])


def to_png(fig) -> bytes:
    """The figure (or the figure of an Axes) rendered as PNG bytes.

    Explained in the chapter "Introduction".
    """
    fig = getattr(fig, "figure", fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def save_figure(fig, path, *, dpi: int = 120, close: bool = True) -> Path:
    """Write a figure (or an Axes' figure) to ``path``, atomically, and close it.

    The image is written to a temporary file beside ``path`` and renamed, so an
    interrupted run never leaves half an image. The format follows the suffix.
    Explained in the chapter "Introduction".
    """
    fig = getattr(fig, "figure", fig)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = path.suffix.lstrip(".").lower() or "png"
    try:
        supported = fig.canvas.get_supported_filetypes()
        if fmt not in supported:
            raise ConfigError(f"{path}: matplotlib cannot write {fmt!r} images; "
                              f"use one of {', '.join(sorted(supported))}")
        atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, dpi=dpi))
    finally:
        if close:
            import matplotlib.pyplot as plt

            plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------
# signals
# ---------------------------------------------------------------------------------------
def plot_waveform(y, sr: int, ax=None, title: str | None = None, **kwargs):
    """Amplitude against time in seconds. Explained in the chapter "The data"."""
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1 or y.size == 0:
        raise SerlibError(f"plot_waveform: expected a non-empty mono waveform (1-D), got shape {y.shape}")
    ax = _new_axes(ax)
    t = np.arange(len(y)) / float(sr)
    ax.plot(t, y, linewidth=kwargs.pop("linewidth", 0.6), **kwargs)
    ax.set_xlim(0, len(y) / float(sr))
    ax.set_xlabel("Time (s)")
    ax.set_ylabel("Amplitude")
    if title:
        ax.set_title(title)
    return ax


SPECTROGRAM_KINDS = ("mel", "mfcc", "stft")


def plot_spectrogram(S, sr: int, hop_length: int = 512, kind: str = "mel", ax=None, title: str | None = None,
                     *, time_major: bool = False, n_fft: int = 2048, n_mels: int = 128, n_mfcc: int = 40,
                     colorbar: bool = True, cmap: str | None = None):
    """A spectrogram-like matrix, or a waveform turned into one, as an image.

    ``S`` is either a waveform (1-D: the ``kind`` is computed from it with librosa:
    ``"mel"`` log-mel power in dB, ``"mfcc"`` MFCCs, ``"stft"`` log-magnitude STFT in dB)
    or an already computed 2-D matrix. Matrices are taken as librosa lays them out
    (bins × frames) unless ``time_major=True``, which is how serlib's feature arrays are
    stored (frames × bins, see :mod:`serlib.features`). ``kind`` then only picks the axis
    labelling. Time is in seconds from ``hop_length`` and ``sr``. Explained in the
    chapter "MFCCs from first principles".
    """
    import librosa
    import librosa.display

    if kind not in SPECTROGRAM_KINDS:
        raise SerlibError(f"plot_spectrogram: kind={kind!r}; use one of {', '.join(SPECTROGRAM_KINDS)}")
    S = np.asarray(S, dtype=np.float32)
    if S.ndim == 1:
        if kind == "mel":
            M = librosa.feature.melspectrogram(y=S, sr=sr, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)
            M = librosa.power_to_db(M, ref=np.max)
        elif kind == "mfcc":
            M = librosa.feature.mfcc(y=S, sr=sr, n_mfcc=n_mfcc, n_fft=n_fft, hop_length=hop_length)
        else:
            M = librosa.amplitude_to_db(np.abs(librosa.stft(S, n_fft=n_fft, hop_length=hop_length)), ref=np.max)
    elif S.ndim == 2:
        M = S.T if time_major else S
    else:
        raise SerlibError(f"plot_spectrogram: expected a waveform (1-D) or a matrix (2-D), got shape {S.shape}")
    ax = _new_axes(ax)
    y_axis = {"mel": "mel", "mfcc": None, "stft": "linear"}[kind]
    if S.ndim == 2 and kind == "mel" and M.shape[0] != n_mels:
        y_axis = None  # a matrix we cannot place on the mel scale; label bins instead
    image = librosa.display.specshow(M, sr=sr, hop_length=hop_length, x_axis="time", y_axis=y_axis, ax=ax,
                                     cmap=cmap or ("coolwarm" if kind == "mfcc" else "magma"))
    ax.set_xlabel("Time (s)")
    if kind == "mfcc":
        ax.set_ylabel("MFCC coefficient")
    elif y_axis is None:
        ax.set_ylabel("Bin")
    else:
        ax.set_ylabel("Frequency (Hz)")
    if colorbar:
        label = "Coefficient value" if kind == "mfcc" else "dB"
        ax.figure.colorbar(image, ax=ax, label=label)
    if title:
        ax.set_title(title)
    return ax


# ---------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------
def plot_confusion(confusion, labels: Sequence[str] | None = None, normalize: bool = True, ax=None,
                   title: str | None = None, *, cmap: str = "Blues", annotate: bool = True, colorbar: bool = False):
    """A confusion matrix: true class by row, predicted class by column.

    ``confusion`` is a square matrix of counts, or a :func:`serlib.metrics.classification_report`
    dict (its ``labels`` are used when ``labels`` is None). ``normalize=True`` divides
    each row by its total, so the diagonal holds each class's recall and the cells read
    as percentages; rows without clips stay empty. Explained in the chapter
    "Evaluating honestly".
    """
    if isinstance(confusion, dict):
        if labels is None:
            labels = confusion.get("labels")
        confusion = confusion.get("confusion")
    counts = np.asarray(confusion, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise SerlibError(f"plot_confusion: expected a square matrix, got shape {counts.shape}")
    labels = [str(label) for label in (labels if labels is not None else range(len(counts)))]
    if len(labels) != len(counts):
        raise SerlibError(f"plot_confusion: {len(labels)} labels for a {len(counts)}×{len(counts)} matrix")
    if normalize:
        totals = counts.sum(axis=1, keepdims=True)
        values = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    else:
        values = counts
    ax = _new_axes(ax, figsize=(0.6 * len(labels) + 2.5, 0.6 * len(labels) + 1.8))
    image = ax.imshow(values, cmap=cmap, vmin=0, vmax=1 if normalize else max(values.max(), 1))
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    if annotate:
        top = values.max() if values.size else 0
        for i in range(len(labels)):
            for j in range(len(labels)):
                text = f"{100 * values[i, j]:.0f}" if normalize else f"{int(counts[i, j])}"
                colour = "white" if top and values[i, j] > 0.6 * top else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color=colour)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label="Share of row" if normalize else "Clips")
    if title:
        ax.set_title(title)
    return ax


_ACCURACY_ALIASES = ("accuracy", "acc", "categorical_accuracy", "sparse_categorical_accuracy")


def _history_dict(history) -> dict[str, list[float]]:
    if hasattr(history, "history") and isinstance(history.history, dict):
        history = history.history  # a keras History object
    if hasattr(history, "to_dict") and hasattr(history, "columns"):
        history = {c: history[c].tolist() for c in history.columns}  # a DataFrame (history.csv)
    if not isinstance(history, dict) or not history:
        raise SerlibError("plot_history: pass a Keras History, its .history dict, or a DataFrame of it")
    return {str(k): [float(v) for v in values] for k, values in history.items()}


def _metric_key(history: dict, metric: str) -> str | None:
    candidates = _ACCURACY_ALIASES if metric in _ACCURACY_ALIASES else (metric,)
    for name in candidates:
        if name in history:
            return name
    return None


def plot_history(history, ax=None, *, metrics: Sequence[str] = ("loss", "accuracy"), title: str | None = None,
                 mark_best: bool = True):
    """Training curves: one panel per metric, training and validation, by epoch.

    ``history`` is a Keras ``History``, its ``.history`` dict, or a DataFrame of it
    (``history.csv`` of a run folder). ``ax`` is None (a new figure with one panel per
    metric) or one Axes per metric. Accuracy is found under any of Keras' names for it.
    With ``mark_best`` a dotted line marks the epoch of lowest validation loss, the one
    early stopping keeps. Returns the list of Axes. Explained in the chapter "1-D CNNs".
    """
    hist = _history_dict(history)
    metrics = [m for m in metrics if _metric_key(hist, m) is not None]
    if not metrics:
        raise SerlibError(f"plot_history: the history holds none of the metrics asked for "
                          f"(it has {sorted(hist)})")
    if ax is None:
        axes = _new_axes(None, ncols=len(metrics), figsize=(4.5 * len(metrics), 3.2))
        axes = axes if isinstance(axes, list) else [axes]
    else:
        axes = list(ax) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
        if len(axes) != len(metrics):
            raise SerlibError(f"plot_history: {len(axes)} Axes given for {len(metrics)} metrics ({metrics})")
    best = None
    val_loss = np.asarray(hist.get("val_loss") or [], dtype=float)
    if mark_best and np.isfinite(val_loss).any():  # a diverged run (all NaN) has no best epoch
        best = int(np.nanargmin(val_loss)) + 1
    for axis, metric in zip(axes, metrics):
        key = _metric_key(hist, metric)
        train = hist[key]
        epochs = np.arange(1, len(train) + 1)
        axis.plot(epochs, train, label="train")
        axis.xaxis.get_major_locator().set_params(integer=True)
        if f"val_{key}" in hist:
            val = hist[f"val_{key}"]
            axis.plot(np.arange(1, len(val) + 1), val, label="validation")
        if best is not None:
            axis.axvline(best, color="grey", linestyle=":", linewidth=1, label=f"best epoch ({best})")
        axis.set_xlabel("Epoch")
        axis.set_ylabel("Accuracy" if metric in _ACCURACY_ALIASES else metric.replace("_", " ").capitalize())
        axis.legend(fontsize=8)
    if title:
        axes[0].figure.suptitle(title)
    return axes


def plot_comparison(df, metric: str = "uar", *, label: str = "model", group: str | None = None,
                    err: str | None = None, reported: str | None = None, chance: float | None = None,
                    percent: bool = True, ax=None, title: str | None = None):
    """Horizontal bars of a score per model, with error bars and the reports' own numbers.

    ``df`` has a ``label`` column (model names) and a ``metric`` column. With several
    rows per label (one per fold or seed) bars show their mean and error bars their
    sample standard deviation; with one row per label the ``err`` column (default
    ``{metric}_std`` when present) gives the error bars. ``group`` names a column to draw
    side by side within each label (e.g. ``"protocol"``: random split vs unseen
    speakers). ``reported`` names a column with the number a report printed (default
    ``"reported"`` when present; NaN where none); it is drawn as a black diamond.
    ``chance`` draws a dashed line at chance level. Scores in 0..1 are shown as
    percentages when ``percent``. Explained in the chapter "The comparison".
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        df = pd.DataFrame(df)
    for column in (label, metric):
        if column not in df.columns:
            raise SerlibError(f"plot_comparison: no column {column!r} (columns: {list(df.columns)})")
    if err is None and f"{metric}_std" in df.columns:
        err = f"{metric}_std"
    if reported is None and "reported" in df.columns:
        reported = "reported"
    scale = 100.0 if percent else 1.0
    keys = [label] + ([group] if group else [])
    grouped = df.groupby(keys, sort=False, dropna=False)
    table = grouped[metric].agg(["mean", "count"])
    table["std"] = grouped[metric].std(ddof=1).fillna(0.0)
    if err is not None:
        if err not in df.columns:
            raise SerlibError(f"plot_comparison: no error column {err!r}")
        single = table["count"] == 1
        table.loc[single, "std"] = grouped[err].first()[single].fillna(0.0)
    if reported is not None:
        if reported not in df.columns:
            raise SerlibError(f"plot_comparison: no reported-number column {reported!r}")
        table["reported"] = grouped[reported].first()
    names = list(dict.fromkeys(df[label].tolist()))
    groups = list(dict.fromkeys(df[group].tolist())) if group else [None]
    height = 0.8 / len(groups)
    ax = _new_axes(ax, figsize=(7, 0.5 * len(names) * max(1, len(groups) * 0.7) + 1.2))
    shown_reported = False
    for j, g in enumerate(groups):
        rows = [(i, name) for i, name in enumerate(names) if ((name, g) if group else name) in table.index]
        if not rows:
            continue
        ys = np.array([i for i, _ in rows]) - 0.4 + height * (j + 0.5)
        entries = [table.loc[(name, g) if group else name] for _, name in rows]
        means = np.array([e["mean"] for e in entries]) * scale
        stds = np.array([e["std"] for e in entries]) * scale
        ax.barh(ys, means, height=height * 0.9, xerr=stds, capsize=3, label=str(g) if group else None)
        if reported is not None:
            marks = [(y, e["reported"] * scale) for y, e in zip(ys, entries) if pd.notna(e["reported"])]
            if marks:
                ax.plot([m[1] for m in marks], [m[0] for m in marks], "D", color="black", markersize=5,
                        label=None if shown_reported else "reported")
                shown_reported = True
    if chance is not None:
        ax.axvline(chance * scale, color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_yticks(range(len(names)), [str(n) for n in names])
    if not ax.yaxis_inverted():      # axes sharing y with an already drawn comparison are inverted already
        ax.invert_yaxis()
    pretty = {"uar": "UAR", "accuracy": "Accuracy", "f1_macro": "Macro F1"}.get(metric, metric)
    ax.set_xlabel(f"{pretty} (%)" if percent else pretty)
    if percent:
        ax.set_xlim(0, 100)
    if group or reported is not None or chance is not None:
        ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title)
    return ax


def plot_class_balance(df, by: str = "emotion", hue: str | None = None, *, split=None, ax=None,
                       title: str | None = None):
    """Clips per class (``by``), optionally as side-by-side bars per ``hue`` value.

    Emotions are shown in RAVDESS order. With ``split`` (a :class:`~serlib.splits.Split`
    of ``df``) the bars are per part (train / val / test) instead, which shows whether
    each part keeps the class proportions. Explained in the chapter "The data".
    """
    import pandas as pd

    from .datasets.ravdess import EMOTIONS

    if not isinstance(df, pd.DataFrame) or by not in df.columns:
        raise SerlibError(f"plot_class_balance: pass the clip index with a {by!r} column")
    frame = df
    if split is not None:
        parts = np.full(len(df), "", dtype=object)
        for name, positions in split.parts().items():
            parts[positions] = name
        frame = df.assign(part=parts)
        frame = frame[frame["part"] != ""]
        hue = "part"
    if hue is not None and hue not in frame.columns:
        raise SerlibError(f"plot_class_balance: no column {hue!r} to colour by")
    classes = list(dict.fromkeys(frame[by].tolist()))
    if by == "emotion":
        classes = [e for e in EMOTIONS if e in classes] + [c for c in classes if c not in EMOTIONS]
    else:
        classes = sorted(classes, key=str)
    if hue is None:
        counts = frame[by].value_counts().reindex(classes, fill_value=0).to_frame("clips")
    else:
        counts = pd.crosstab(frame[by], frame[hue]).reindex(classes, fill_value=0)
        if hue == "part":
            counts = counts[[p for p in ("train", "val", "test") if p in counts.columns]]
    ax = _new_axes(ax, figsize=(max(5, 0.7 * len(classes) + 2), 3.2))
    width = 0.8 / counts.shape[1]
    x = np.arange(len(classes))
    for j, column in enumerate(counts.columns):
        bars = ax.bar(x - 0.4 + width * (j + 0.5), counts[column].to_numpy(), width=width * 0.95,
                      label=str(column) if hue is not None else None)
        ax.bar_label(bars, fontsize=7)
    ax.set_xticks(x, [str(c) for c in classes], rotation=30 if len(classes) > 4 else 0, ha="right"
                  if len(classes) > 4 else "center")
    ax.set_xlabel(by.replace("_", " ").capitalize())
    ax.set_ylabel("Clips")
    if hue is not None:
        ax.legend(title=hue, fontsize=8)
    if title:
        ax.set_title(title)
    return ax


#: How :func:`plot_contours` shows each contour row: label and scale from natural log.
_CONTOUR_ROWS = {"log_f0": ("Pitch relative to the clip's median (semitones)", 12 / np.log(2)),
                 "log_rms": ("Energy relative to the clip's peak (dB)", 20 / np.log(10)),
                 "loud_share": ("Share of loud frames", 1.0)}


def plot_contours(F, labels, *, rows: Sequence[str] = ("log_f0", "log_rms"), classes=None, ax=None,
                  title: str | None = None):
    """Mean prosodic contour of each class: one panel per contour row, one line per class.

    ``F`` holds :func:`serlib.functionals.functionals` vectors (or :func:`serlib.contour.contour`
    vectors) and ``labels`` the class of each row; the x axis is the stretch of the clip
    (:data:`serlib.contour.N_SEGMENTS` of them, start to end). Pitch is shown in semitones
    and energy in dB. Explained in the chapter "Beyond the reports".
    """
    from .contour import N_SEGMENTS, contour_names
    from .datasets.ravdess import EMOTIONS
    from .functionals import functional_names

    F = np.atleast_2d(np.asarray(F, dtype=np.float64))
    labels = np.asarray(labels).astype(str)
    names = {len(contour_names()): contour_names(), len(functional_names()): functional_names()}.get(F.shape[1])
    if names is None or len(labels) != len(F):
        raise SerlibError(f"plot_contours: pass functionals or contour vectors ({len(functional_names())} or "
                          f"{len(contour_names())} numbers per clip, not {F.shape[1]}) and one label per clip "
                          f"({len(F)} clips, {len(labels)} labels)")
    unknown = [r for r in rows if r not in _CONTOUR_ROWS]
    if unknown:
        raise SerlibError(f"plot_contours: unknown rows {unknown}; choose from {', '.join(_CONTOUR_ROWS)}")
    present = list(dict.fromkeys(labels.tolist()))
    if classes is None:
        classes = [e for e in EMOTIONS if e in present] + [c for c in present if c not in EMOTIONS]
    axes = _new_axes(ax, ncols=len(rows), figsize=(4.2 * len(rows), 3.2))
    axes = list(np.ravel(axes)) if isinstance(axes, (list, tuple, np.ndarray)) else [axes]
    if len(axes) != len(rows):
        raise SerlibError(f"plot_contours: {len(rows)} rows need {len(rows)} axes, got {len(axes)}; "
                          "pass ax=None or one axes per row")
    x = np.arange(1, N_SEGMENTS + 1)
    for axis, row in zip(axes, rows):
        label, scale = _CONTOUR_ROWS[row]
        columns = [names.index(f"contour{s}_{row}") for s in range(N_SEGMENTS)]
        for c in classes:
            chosen = labels == str(c)
            if chosen.any():
                axis.plot(x, scale * F[chosen][:, columns].mean(axis=0), marker="o", ms=3, label=str(c))
        axis.set_xticks(x)
        axis.set_xlabel("Stretch of the clip (start to end)")
        axis.set_ylabel(label)
    axes[-1].legend(fontsize=7, ncol=2)
    if title:
        axes[0].figure.suptitle(title)
    return axes if len(axes) > 1 else axes[0]


__all__ = ["plot_waveform", "plot_spectrogram", "plot_confusion", "plot_history", "plot_comparison",
           "plot_class_balance", "plot_contours", "save_figure", "to_png", "SPECTROGRAM_KINDS"]
