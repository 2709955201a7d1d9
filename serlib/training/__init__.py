"""Training any registered model the honest way: data, fitting, augmentation, protocols.

One function, :func:`train`, runs the whole protocol of the chapter "Evaluating honestly"
for every architecture of the book (steps in :mod:`serlib.training.protocols`);
:func:`cross_validate` and :func:`random_split_protocol` repeat its fitting step over
actor-wise folds or over the reports' random splits. The package, layer by layer:

- :mod:`serlib.training.data`: which clips a model is for, their labels and features
  (:func:`prepare_data`, :class:`PreparedData`, :func:`select_clips`, :func:`song_data`);
- :mod:`serlib.training.augmentation`: augmented copies of the training clips only, cached;
- :mod:`serlib.training.fitting`: one model on one split (:func:`fit_split`), seeding,
  callbacks, ensembles, fusion;
- :mod:`serlib.training.protocols`: :func:`train`, :func:`cross_validate`,
  :func:`random_split_protocol`, :func:`default_split`.

Scoring a saved run on new data is :func:`serlib.evaluation.evaluate_run`; loading one is
:func:`serlib.runs.load_run` (also importable from here).
"""
from ..runs import Run, load_run, probabilities
from .augmentation import DEFAULT_AUGMENT, augment_settings, augmented_features
from .data import (
    PreparedData,
    prepare_data,
    prepared_functionals,
    prepared_speed_features,
    regression_rows,
    select_clips,
    song_data,
    speed_copy_rows,
)
from .fitting import (
    ENSEMBLE_SEED_STEP,
    QUICK_EPOCHS,
    QUICK_STEPS,
    average_networks,
    balanced_class_weights,
    fit_split,
    recipe_of,
    seed_everything,
)
from .protocols import (
    DEFAULT_RANDOM_FRACTIONS,
    REPORT_SPLITS,
    cross_validate,
    default_split,
    kfold_val_actors,
    random_split_protocol,
    report_fractions,
    train,
)

__all__ = ["train", "load_run", "cross_validate", "random_split_protocol", "prepare_data", "fit_split",
           "default_split", "Run", "PreparedData", "REPORT_SPLITS", "DEFAULT_RANDOM_FRACTIONS", "select_clips", "song_data",
           "prepared_functionals", "prepared_speed_features", "speed_copy_rows", "regression_rows",
           "augment_settings", "augmented_features", "DEFAULT_AUGMENT", "seed_everything", "probabilities",
           "average_networks", "balanced_class_weights", "ENSEMBLE_SEED_STEP", "QUICK_EPOCHS", "QUICK_STEPS",
           "kfold_val_actors", "report_fractions", "recipe_of"]
