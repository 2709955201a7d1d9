"""What every chapter of the book does at the top, in one place.

- :func:`start_chapter` prints the chapter header: where the data come from (the corpus
  banner, loud for the synthetic stand-in), quick or full mode, CPU or GPU, and the
  library versions; it returns the corpus the chapter works on.
- :func:`glue` stores a number or string for the prose (``{glue:text}`name```), so text
  never disagrees with results; outside a Jupyter Book build it is a quiet no-op.
- :func:`on_colab`, :data:`REPO_URL` and :data:`COLAB_INSTALL` document the one-line
  install that each chapter's first cell runs on Colab.
- :func:`listen` builds an audio player for a waveform.

Explained in the chapter "Introduction".
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from numbers import Integral, Real

from . import __version__
from .config import quick_mode

#: Where the book's source lives: ``repository.url`` of ``_config.yml``, copied here by
#: ``python -m serlib.book_cells`` (which also writes every chapter's install cell).
REPO_URL = "https://github.com/serlib/serlib-book"
#: The branch the Colab install line takes (``repository.branch``).
REPO_BRANCH = "main"
#: What the first cell of every chapter runs when it finds itself on Colab.
COLAB_INSTALL = f'pip install -q "serlib[book] @ git+{REPO_URL}@{REPO_BRANCH}"'


def on_colab() -> bool:
    """True inside a Google Colab kernel. Explained in the chapter "Introduction"."""
    return "google.colab" in sys.modules


def compute_device() -> str:
    """"GPU: <name>" or "CPU (n cores)", without importing a deep-learning framework.

    If TensorFlow is already imported its device list is used; otherwise ``nvidia-smi``
    is asked (when present). Explained in the chapter "Introduction".
    """
    cores = os.cpu_count() or 1
    names: list[str] = []
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        try:
            names = [d.name for d in tf.config.list_physical_devices("GPU")]
        except Exception:  # pragma: no cover - a broken CUDA set-up still lets the CPU run
            names = []
    elif shutil.which("nvidia-smi") and os.environ.get("CUDA_VISIBLE_DEVICES", "0") not in ("", "-1"):
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
            names = [line.split(":", 1)[1].split("(")[0].strip() for line in out.stdout.splitlines()
                     if line.startswith("GPU")]
        except (OSError, subprocess.SubprocessError):
            names = []
    if names:
        return f"GPU: {', '.join(names)} (+ {cores} CPU cores)"
    return f"CPU only ({cores} cores; no GPU found)"


def _versions() -> str:
    parts = [f"serlib {__version__}", f"Python {platform.python_version()}"]
    for name in ("numpy", "librosa", "sklearn", "keras"):
        module = sys.modules.get(name)
        if module is None and name in ("numpy", "librosa"):
            try:
                module = __import__(name)
            except ImportError:  # pragma: no cover
                module = None
        if module is not None:
            parts.append(f"{'scikit-learn' if name == 'sklearn' else name} {getattr(module, '__version__', '?')}")
    return " · ".join(parts)


@dataclass
class Chapter:
    """The set-up of one chapter: its title and the clips it works on.

    ``corpus`` is the :class:`~serlib.datasets.corpus.Corpus` the chapter uses: the quick
    subset in quick mode, everything found otherwise; ``data`` is its index (one row per
    clip, numbered from 0); ``full_corpus`` is everything that was found; ``quick`` says
    which mode is on. Explained in the chapter "Introduction".
    """

    title: str
    corpus: object
    full_corpus: object
    quick: bool
    lines: list = field(default_factory=list)

    @property
    def data(self):
        """The index of the clips the chapter uses (``corpus.index``)."""
        return self.corpus.index

    def header(self) -> str:
        """The header lines :func:`start_chapter` printed."""
        return "\n".join(self.lines)


def start_chapter(title: str, *, corpus=None, allow_download: bool | None = None, show: bool = True) -> Chapter:
    """Load the corpus and print the chapter header; return a :class:`Chapter`.

    The header says where the data come from (``Corpus.banner()``, loud for the
    synthetic stand-in), whether the chapter runs in quick mode (``SERLIB_QUICK=1``: the
    corpus's quick subset, few epochs) or in full mode, whether a GPU is visible, and the
    versions of the main libraries. ``corpus`` overrides the search of
    :func:`~serlib.datasets.corpus.load_corpus`. On Colab in full mode the official
    RAVDESS archive is downloaded when no copy is found; quick mode never downloads by
    itself (``allow_download`` defaults to ``on_colab() and not quick_mode()``), so a
    quick run with no data uses the synthetic stand-in and says how to fetch RAVDESS.
    Explained in the chapter "Introduction".
    """
    import matplotlib

    matplotlib.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "figure.figsize": (8, 3.2),
                                "axes.spines.top": False, "axes.spines.right": False})
    if corpus is None:
        from .datasets.corpus import load_corpus

        if allow_download is None:
            allow_download = on_colab() and not quick_mode()
        corpus = load_corpus(allow_download=allow_download, verbose=False)
    quick = quick_mode()
    if quick:
        used = corpus.quick_subset()
        mode = (f"quick (SERLIB_QUICK=1): {len(used.index):,} of {len(corpus.index):,} clips, "
                f"{used.index['actor'].nunique()} actors; numbers are rough, SERLIB_QUICK=0 gives the full results")
    else:
        used = corpus
        mode = f"full (SERLIB_QUICK=0): all {len(corpus.index):,} clips; SERLIB_QUICK=1 gives a fast rough run"
    data = corpus.banner()
    if on_colab() and quick and getattr(corpus, "source", "") == "synthetic":
        data += " (quick mode downloads nothing: run `!serlib download` for RAVDESS, then run this cell again)"
    lines = [title] + [_wrapped(label, text) for label, text in
                       (("data", data), ("mode", mode), ("compute", compute_device()),
                        ("versions", _versions()))]
    chapter = Chapter(title=title, corpus=used, full_corpus=corpus, quick=quick, lines=lines)
    if show:
        print(chapter.header())
    return chapter


def _wrapped(label: str, text: str, width: int = 88) -> str:
    """``"  label    text"`` wrapped at ``width`` with continuation lines indented."""
    import textwrap

    return textwrap.fill(text, width=width, initial_indent=f"  {label:<9}", subsequent_indent=" " * 11,
                         break_on_hyphens=False, break_long_words=False)


def _plain(value):
    """Python scalars from numpy scalars, so glued values render as ``0.5``, not ``np.float64(0.5)``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        return float(value)
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 1) == 0:
        return item()
    return value


def glue(name: str, value, fmt: str | None = None) -> None:
    """Store ``value`` under ``name`` for the prose (``{glue:text}`name```).

    With ``fmt`` (a format spec such as ``".1f"`` or ``",d"``) the formatted string is
    stored; otherwise the plain value, which the text can format itself with
    ``{glue:text}`name:.1f```. Numpy scalars are converted to Python numbers first.
    Outside a Jupyter kernel with myst-nb installed (a plain script, a bare Colab) nothing
    is stored. Returns nothing, so a glue call at the end of a cell adds no output.
    Explained in the chapter "Introduction".
    """
    value = _plain(value)
    stored = format(value, fmt) if fmt else value
    try:
        from myst_nb import glue as _myst_glue
    except ImportError:  # e.g. on Colab without the book extras
        return None
    try:
        _myst_glue(name, stored, display=False)
    except Exception:  # no IPython kernel (a script): nothing to store into
        pass
    return None


def listen(y, sr: int, *, normalize: bool = True):
    """An HTML5 audio player for a mono waveform (``IPython.display.Audio``).

    Players play in Jupyter, Colab and the HTML book alike. ``normalize`` scales to full
    range, as a listener would turn up a quiet clip; pass ``False`` to hear real levels
    (e.g. when comparing a clip with its noisy copy). Explained in the chapter "The data".
    """
    import numpy as np
    from IPython.display import Audio

    y = np.asarray(y, dtype=np.float32)
    if not normalize:
        y = np.clip(y, -1.0, 1.0)
    return Audio(data=y, rate=int(sr), normalize=normalize)


__all__ = ["REPO_URL", "REPO_BRANCH", "COLAB_INSTALL", "Chapter", "start_chapter", "glue", "listen", "on_colab",
           "compute_device"]
