"""The four helpers every model chapter uses: describe, train, show, compare.

A :class:`ModelPage` belongs to one chapter (its corpus and a temporary folder for run
folders). Its methods only arrange serlib's own functions:

- :meth:`ModelPage.show_entry` prints what the registry records about a model (report,
  settings, every interpretation made where the report is silent);
- :meth:`ModelPage.fit` calls :func:`serlib.training.train` with a speaker-independent
  split and prints the test scores;
- :meth:`ModelPage.show_run` draws training curves and the test confusion matrix, and
  says so when training diverged (:func:`training_status`);
- :meth:`ModelPage.claims_vs_measured` lines up each report's claim, the page's run and
  the cross-validated numbers of ``benchmarks/models.py`` (:mod:`serlib.results`).

Explained in the chapter "1-D CNNs".
"""
from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path

import pandas as pd

from .models import get_model, get_recipe
from .results import benchmark_table, one_label_only


def _display(text: str) -> None:
    """Markdown in a notebook, plain text elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        print(text)
    else:
        display(Markdown(text))


def _not_finite(value) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def training_status(run) -> str:
    """How ``run``'s training went, as a phrase that follows "training".

    Either it "stayed finite" (with the first, last and highest training loss), or it
    "diverged in epoch N" (the first epoch whose training or validation loss is NaN or
    infinite), followed by what the test scores rest on: the weights of an earlier epoch
    that a checkpoint or early stopping kept, or the broken final weights, and whether the
    model gives every test clip the same label. Explained in the chapter "Recurrent models".
    """
    curves = [run.history.get(key, []) for key in ("loss", "val_loss")]
    losses = curves[0]
    epochs = max(len(curve) for curve in curves)
    first = min((i + 1 for curve in curves for i, v in enumerate(curve) if _not_finite(v)), default=None)
    if first is None:
        if not losses:
            return "recorded no loss"
        return (f"stayed finite (training loss {losses[0]:.2f} in the first epoch, {losses[-1]:.2f} "
                f"in the last, {max(losses):.3g} at its highest)")
    text = f"diverged in epoch {first} of {epochs} (its loss became NaN or infinite)"
    weights, best = str(run.info.get("weights") or ""), run.info.get("best_epoch")
    if weights.startswith("best epoch") and best and best < first:
        keeper = "a checkpoint" if "checkpoint" in weights else "early stopping"
        text += f", but {keeper} had kept the weights of epoch {best}, and those scored the test speakers"
    else:
        text += ", and the final weights that scored the test speakers are meaningless"
    if one_label_only(run.metrics.get("confusion")):
        text += "; the model gives every test clip the same label"
    return text


class ModelPage:
    """Helpers for a chapter that trains registry models on ``corpus``.

    Run folders go to a temporary folder that disappears with :meth:`cleanup` (or the
    Python process); pass ``out_dir=`` to :meth:`fit` to keep one. Explained in the
    chapter "1-D CNNs".
    """

    def __init__(self, corpus):
        self.corpus = corpus
        self._runs = tempfile.TemporaryDirectory(prefix="serlib-book-runs-")
        logging.getLogger("tensorflow").setLevel(logging.ERROR)   # no retracing warnings between results

    @property
    def run_root(self) -> Path:
        """The temporary folder that holds this page's run folders."""
        return Path(self._runs.name)

    def show_entry(self, name: str) -> None:
        """Print the registry entry of ``name``: report, input, its recipe and interpretations."""
        e, r = get_model(name), get_recipe(name)
        cb = r.callbacks
        stop = (f"early stopping (patience {cb['early_stopping_patience']})"
                if cb.get("early_stopping_patience") else "no early stopping")
        lines = [f"**{e.name}** · {e.source} (report {e.report}) · input {e.input_text} · "
                 f"{len(e.labels)} classes · {r.optimizer} (lr {r.learning_rate:g}), batch {r.batch_size}, "
                 f"{r.epochs} epochs, {stop}", ""]
        lines += [f"* {note}" for note in e.notes]
        _display("\n".join(lines))

    def fit(self, name: str, data=None, **kwargs):
        """Train ``name`` on the page's corpus (or ``data``) and print the test scores.

        Keyword arguments go to :func:`serlib.training.train` (e.g. ``test_actors``,
        ``augment``, ``epochs``). Returns the :class:`~serlib.training.Run`.
        """
        from .training import train

        kwargs.setdefault("out_dir", self.run_root / f"{name}-{len(list(self.run_root.iterdir()))}")
        kwargs.setdefault("verbose", 0)
        run = train(name, self.corpus if data is None else data, **kwargs)
        m, info = run.metrics, run.info
        if info["data"].get("synthetic"):
            print("SYNTHETIC STAND-IN CORPUS: these scores say nothing about RAVDESS.")
        print(f"{name}: {info['split']['description']}")
        print(f"  {info['epochs_run']} epoch(s) of {info['epochs_requested']} requested, "
              f"{info['seconds_per_epoch']:.1f} s/epoch; test accuracy {m['accuracy']:.1%}, "
              f"UAR {m['uar']:.1%} on {m['n']} clips (chance {1 / len(run.labels):.1%})")
        return run

    @staticmethod
    def show_run(run, title: str | None = None):
        """Show the training curves (loss, accuracy) and the test confusion matrix of ``run``, side by side."""
        import matplotlib.pyplot as plt

        from .plots import plot_confusion, plot_history

        fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), constrained_layout=True,
                                 gridspec_kw={"width_ratios": [1, 1, 1.15]})
        losses = [v for key in ("loss", "val_loss") for v in run.history.get(key, [])]
        finite_val = any(not _not_finite(v) for v in run.history.get("val_loss", []))
        plot_history(run.history, ax=axes[:2], mark_best=finite_val)
        if any(_not_finite(v) for v in losses):
            print(f"Training {training_status(run)}.")
        plot_confusion(run.metrics, ax=axes[2], title="test speakers (row %)")
        stand_in = " (SYNTHETIC STAND-IN DATA)" if run.info["data"].get("synthetic") else ""
        fig.suptitle((title or run.info["model"]) + stand_in)
        plt.show()   # shown once; nothing returned, so a cell ending in this call does not show it twice

    @staticmethod
    def claims_vs_measured(claims: dict, runs: dict, results=None) -> pd.DataFrame:
        """One row per model: the report's claim and protocol, this page's run, the benchmark's CV.

        ``claims`` maps a model name to ``(claim, protocol)`` text; ``runs`` maps names to
        the page's :class:`~serlib.training.Run` objects; ``results`` is the benchmark
        file (default :data:`serlib.results.MODELS_FILE`).
        """
        bench = benchmark_table(claims, results)
        rows = []
        for name, (claim, protocol) in claims.items():
            run = runs.get(name)
            tag = " (stand-in)" if run and run.info["data"].get("synthetic") else ""
            row = {"model": name, "report claims": claim, "report's protocol": protocol,
                   "this page: UAR": f"{run.metrics['uar']:.1%}{tag}" if run else "not run",
                   "this page: accuracy": f"{run.metrics['accuracy']:.1%}{tag}" if run else "not run"}
            for key, label in (("speaker", "benchmark: unseen speakers, UAR"),
                               ("random", "benchmark: report's random split, UAR")):
                hit = bench[(bench["model"] == name) & (bench["protocol"] == key)] if len(bench) else bench
                if len(hit):
                    r = hit.iloc[0]
                    std = 0.0 if pd.isna(r["uar_std"]) else r["uar_std"]
                    collapsed = int(r["one_label_folds"])
                    row[label] = (f"{r['uar']:.1%} ± {std:.1%} ({r['folds']} folds)"
                                  + (f"; one label for every clip in {collapsed} of them" if collapsed else "")
                                  + (" (stand-in)" if r["synthetic"] else ""))
                else:
                    row[label] = "not measured yet"
            rows.append(row)
        return pd.DataFrame(rows).set_index("model")

    def cleanup(self) -> None:
        """Delete the page's temporary run folders."""
        self._runs.cleanup()
