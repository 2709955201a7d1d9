"""The protocols: train one model and save it, cross-validate it, or repeat the reports' random splits.

:func:`train` is the one harness of the chapter "Evaluating honestly" for every architecture
of the book:

1. index the data (a folder, a :class:`~serlib.datasets.corpus.Corpus` or an index
   DataFrame) and keep the clips the model is for (its ``data_filter`` and label set:
   six emotions for report 003, the gender task, one gender's clips ...);
2. split **by speaker** unless a :class:`~serlib.splits.Split` is passed: the test actors
   are the ones given, or by default the last two actors present (19 and 20 for RAVDESS
   01-20: one man, one woman; the last one when fewer than six actors are present);
   validation actors are the ones given or drawn (gender-balanced, from ``seed``) from
   the rest; everyone else trains;
3. extract the model's features (cached on disk by :func:`serlib.feature_cache.extract_corpus`);
4. optionally augment the *training* clips only (waveform-level, after the split);
5. compute normalisation statistics on the training clips only, when the model wants them;
6. build and fit the model with its report's settings (epochs, batch size, optimiser,
   early stopping on the validation speakers with the best weights restored, learning-rate
   reduction, checkpointing) unless overridden;
7. score the untouched test speakers with :func:`serlib.metrics.classification_report`;
8. save everything in a run folder (:mod:`serlib.runs`).

:func:`cross_validate` repeats steps 5-7 over actor-wise folds (features extracted once)
and :func:`random_split_protocol` does the same over the reports' random splits, whose
numbers are inflated by hearing every test speaker in training.
"""
from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from ..config import cache_dir, quick_mode
from ..errors import DataError, SerlibError
from ..log import get_logger, info
from ..metrics import summarize_folds
from ..recipes import Recipe
from ..runs import Run, check_out_dir, save_run
from ..splits import actor_kfold, final_split, random_split, speaker_split
from ..song import find_song_folder
from .data import prepare_data, song_data
from .fitting import fit_split, recipe_of

logger = get_logger(__name__)

#: The random split each report used (train, val, test), for :func:`random_split_protocol`.
#: Report 001 had no validation set (75/25, the test set was monitored); here 15 % of its
#: training share validates instead, so that nothing is tuned on the test clips.
#: Report 002 used 3923/490/491 clips (80/10/10); report 003 does not say (70/15/15 assumed).
REPORT_SPLITS = {
    "000": (0.70, 0.15, 0.15),
    "001": (0.6375, 0.1125, 0.25),
    "002": (0.80, 0.10, 0.10),
    "003": (0.70, 0.15, 0.15),
    "004": (0.60, 0.15, 0.25),
}
DEFAULT_RANDOM_FRACTIONS = (0.70, 0.15, 0.15)


# ---------------------------------------------------------------------------------- splits
def default_split(df: pd.DataFrame, *, test_actors=None, val_actors=None, seed: int = 0):
    """The default speaker-independent split of :func:`train`.

    Test actors: the ones given, else the last two actors present (19 and 20 for
    RAVDESS 01-20), or the last one when fewer than six actors are present. Validation
    actors: the ones given, else two (one when fewer than eight actors are present)
    drawn gender-balanced from the rest with ``seed``.

    ``test_actors=[]`` holds no speaker out for testing: the split for a final model trained
    on every speaker (:func:`serlib.splits.final_split`), where the validation actors (given,
    or drawn as above; none when there is only one actor) only steer early stopping and the
    learning rate. Explained in "Evaluating honestly".
    """
    if "actor" not in df.columns:
        raise DataError("the clip index has no 'actor' column; a speaker-independent split needs one")
    present = sorted({int(a) for a in df["actor"].unique()})
    if _no_actors(test_actors):
        n_val = 2 if len(present) >= 8 else 1 if len(present) >= 2 else 0
        return final_split(df, val_actors=val_actors, n_val_actors=n_val, seed=seed)
    if test_actors is None:
        if len(present) < 3:
            raise DataError(f"only {len(present)} actor(s) in the data ({present}); a speaker-independent "
                            "split needs at least 3 (train, validation, test) — use more actors or pass "
                            "split=serlib.splits.random_split(...)")
        n_test = 2 if len(present) >= 6 else 1
        test_actors = present[-n_test:]
    n_val = 2 if len(present) >= 8 else 1
    return speaker_split(df, test_actors=test_actors, val_actors=val_actors, n_val_actors=n_val, seed=seed)


def _no_actors(actors) -> bool:
    """True for an explicitly empty actor list (``[]``, ``()``, an empty array), not for None."""
    return actors is not None and not isinstance(actors, (str, int)) and hasattr(actors, "__len__") \
        and len(actors) == 0



# ---------------------------------------------------------------------------------- protocols
def train(model_name: str, data, *, out_dir=None, split=None, val_actors=None, test_actors=None, epochs=None,
          batch_size=None, seed: int = 0, augment=None, quick: bool | None = None, verbose=1,
          song=None, recipe=None) -> Run:
    """Train ``model_name`` on ``data`` speaker-independently, score it, save a run folder.

    ``data``: a RAVDESS folder, a :class:`~serlib.datasets.corpus.Corpus`, or an index
    DataFrame. ``split``: a :class:`~serlib.splits.Split` over the *filtered* index
    (the model's clips); by default :func:`default_split` with ``test_actors`` /
    ``val_actors``. ``recipe``: how to train (a :class:`~serlib.recipes.Recipe`, or changes
    to the model's own as a dict or ``"key=value"`` strings; default the model's own,
    :func:`serlib.models.get_recipe`); it is saved in ``run.json``. ``epochs``/``batch_size``
    override the recipe's values. ``augment`` (default: the recipe's) adds perturbed copies
    of the training clips only. ``quick`` (default: the
    ``SERLIB_QUICK`` setting) trains for at most two short epochs, for smoke tests.
    ``verbose``: 0 silent, 1 Keras progress bars, 2 one line per epoch. ``song``: RAVDESS
    song clips of the training actors as extra training data: a folder, ``False`` for none,
    or ``None`` for the recipe's ``train_with_song`` (see :func:`song_data`).

    ``test_actors=[]`` trains a final model on every speaker (``serlib train MODEL
    --all-speakers``): nothing is held out for testing, so the run has no test scores
    (``run.metrics`` is None, ``metrics.json`` holds ``null``, ``run.info["split"]["note"]``
    says so); validation actors (``val_actors``, else one or two drawn from everyone, see
    :func:`default_split`) still steer early stopping and the learning rate and are not
    trained on. Pass ``val_actors=[]`` as well to train on every clip, the callbacks then
    watching the training curve.

    ``out_dir`` must not exist or be empty (nothing is overwritten); default
    ``$SERLIB_CACHE_DIR/runs/<model>-<date>-<time>``. Returns the saved
    :class:`~serlib.runs.Run`. Explained in the chapter "Evaluating honestly".
    """
    quick = quick_mode() if quick is None else bool(quick)
    if out_dir is not None:
        check_out_dir(out_dir)  # refuse early, before any expensive work
    prep = prepare_data(model_name, data, verbose=verbose, recipe=recipe)
    recipe = recipe_of(prep, recipe)
    if split is None:
        split = default_split(prep.index, test_actors=test_actors, val_actors=val_actors, seed=seed)
    elif test_actors is not None or val_actors is not None:
        raise SerlibError("pass either split= or test_actors/val_actors, not both")
    info(logger, verbose, split.description)
    song_prep = _song(model_name, song, prep, recipe, verbose)
    run = fit_split(prep, split, recipe=recipe, epochs=epochs, batch_size=batch_size, seed=seed, augment=augment,
                    quick=quick, verbose=verbose, song=song_prep)
    if run.info["song"]:
        info(logger, verbose, f"also trained on {run.info['song']['n_clips']} song clips of the training actors "
                              f"from {run.info['song']['path']}")
    if out_dir is None:
        root = cache_dir() / "runs"
        root.mkdir(parents=True, exist_ok=True)
        out_dir = root / f"{model_name}-{time.strftime('%Y%m%d-%H%M%S')}-s{seed}"
        while Path(out_dir).exists():
            out_dir = Path(str(out_dir) + "x")
    save_run(run, out_dir)
    m = run.metrics
    if m is None:
        info(logger, verbose, f"{split.protocol}: no test speakers, so no test scores; run saved in {run.dir}")
    else:
        info(logger, verbose, f"test ({split.protocol}): accuracy {m['accuracy']:.3f}, UAR {m['uar']:.3f}, "
                              f"macro-F1 {m['f1_macro']:.3f} on {m['n']} clips; run saved in {run.dir}")
    return run


def cross_validate(model_name: str, data, *, k: int = 5, seed: int = 0, epochs=None, batch_size=None,
                   augment=None, quick: bool | None = None, folds=None, on_fold=None,
                   verbose=0, song=None, recipe=None) -> dict:
    """Actor-wise k-fold cross-validation (:func:`serlib.splits.actor_kfold`).

    Features are extracted once; each fold trains a fresh model (seed ``seed + fold``)
    and scores its test actors. ``folds`` restricts to some fold numbers (0-based);
    ``on_fold(report)`` is called after each fold (the benchmark saves there). Returns
    ``{"model", "protocol", "folds": [report, ...], "summary": summarize_folds(...)}``,
    each report holding the metrics plus fold, actors, epochs run and seconds. ``song`` and
    ``recipe`` as in :func:`train` (each fold adds the song clips of its own training actors only).
    Explained in the chapters "Evaluating honestly" and "The comparison".
    """
    quick = quick_mode() if quick is None else bool(quick)
    prep = prepare_data(model_name, data, verbose=verbose, recipe=recipe)
    recipe = recipe_of(prep, recipe)
    splits = actor_kfold(prep.index, k=k, seed=seed, n_val_actors=kfold_val_actors(prep.index, k))
    return _run_protocol(prep, splits, f"speaker-independent actor {k}-fold", folds=folds, on_fold=on_fold,
                         seed=seed, epochs=epochs, batch_size=batch_size, augment=augment, quick=quick,
                         verbose=verbose, song=_song(model_name, song, prep, recipe, verbose), recipe=recipe)


def random_split_protocol(model_name: str, data, *, repeats: int = 1, fractions=None, seed: int = 0,
                          epochs=None, batch_size=None, augment=None, quick: bool | None = None,
                          folds=None, on_fold=None, verbose=0, recipe=None) -> dict:
    """The report's own protocol: clips shuffled regardless of speaker (inflated numbers).

    ``fractions`` default to the model's report (:data:`REPORT_SPLITS`). ``repeats`` random splits (seeds ``seed``,
    ``seed + 1``, ...) give a mean ± std comparable to :func:`cross_validate`. Same
    return value as :func:`cross_validate`; ``recipe`` as in :func:`train`. Explained in the
    chapter "Evaluating honestly".
    """
    quick = quick_mode() if quick is None else bool(quick)
    prep = prepare_data(model_name, data, verbose=verbose, recipe=recipe)
    fractions = fractions or report_fractions(prep.entry)
    splits = [random_split(prep.index, fractions=fractions, stratify=prep.task, seed=seed + i)
              for i in range(int(repeats))]
    name = splits[0].protocol
    return _run_protocol(prep, splits, name, folds=folds, on_fold=on_fold, seed=seed, epochs=epochs,
                         batch_size=batch_size, augment=augment, quick=quick, verbose=verbose,
                         recipe=recipe_of(prep, recipe))


def kfold_val_actors(df: pd.DataFrame, k: int) -> int:
    """Validation actors per fold: two, or fewer when the actors are too few (stand-in corpus).

    Explained in the chapter "Evaluating honestly".
    """
    n = int(df["actor"].nunique())
    largest_fold = -(-n // int(k))
    return max(0, min(2, n - largest_fold - 1))


def report_fractions(entry) -> tuple:
    """The (train, val, test) fractions of the random split the model's report used.

    See :data:`REPORT_SPLITS`. Explained in the chapter "Evaluating honestly".
    """
    report = str(getattr(entry, "report", "") or "")[:3]
    if report in REPORT_SPLITS:
        return REPORT_SPLITS[report]
    name = str(getattr(entry, "name", ""))
    for key, value in REPORT_SPLITS.items():
        if key in name:
            return value
    return DEFAULT_RANDOM_FRACTIONS


def _song(model_name, song, prep, recipe: Recipe, verbose):
    """The prepared song clips to train with: ``song`` as given, else the recipe's choice."""
    if song is None:
        if not recipe.train_with_song or prep.data.get("synthetic"):
            return None
        song = find_song_folder(prep.data.get("path"))
        if song is None:
            info(logger, verbose, f"{model_name}: no RAVDESS song folder found (set SERLIB_SONG_DIR to add one); "
                                  "training on speech only")
            return None
    return song_data(model_name, song, speech=prep, verbose=verbose)


def _run_protocol(prep, splits, name, *, folds, on_fold, seed, epochs, batch_size, augment, quick, verbose,
                  song=None, recipe=None):
    wanted = set(range(len(splits))) if folds is None else {int(f) for f in folds}
    reports = []
    for i, split in enumerate(splits):
        if i not in wanted:
            continue
        info(logger, verbose, f"{prep.model_name}: {split.description}")
        run = fit_split(prep, split, recipe=recipe, epochs=epochs, batch_size=batch_size, seed=seed + i,
                        augment=augment, quick=quick, verbose=2 if int(verbose) >= 2 else 0, song=song)
        report = dict(run.metrics)
        report.update(fold=i, n_folds=len(splits), protocol=split.protocol, seed=seed + i,
                      actors=run.info["split"]["actors"], epochs_run=run.info["epochs_run"],
                      best_epoch=run.info["best_epoch"], params=run.info["params"],
                      training_seconds=run.info["training_seconds"],
                      seconds_per_epoch=run.info["seconds_per_epoch"],
                      n_train=run.info["n_train"], n_val=run.info["n_val"], song=run.info["song"])
        reports.append(report)
        info(logger, verbose, f"  fold {i + 1}/{len(splits)}: accuracy {report['accuracy']:.3f}  UAR {report['uar']:.3f}")
        if on_fold is not None:
            on_fold(report)
        _free(run)
    summary = summarize_folds(reports) if reports else None
    return {"model": prep.model_name, "protocol": name, "folds": reports, "summary": summary,
            "data": prep.data}


def _free(run) -> None:
    import keras

    run.model = None
    keras.backend.clear_session()

