"""The model registry: one :class:`ModelEntry` per architecture of the five reports.

Each entry records what a reader needs to rebuild and retrain a model the way its report
did: the features it ate (a :class:`~serlib.features.FeatureSpec`), the input shape, the
class names, the optimizer, learning rate, batch size, epochs and callbacks, the parameter
count the report printed (if it printed one), and every interpretation we had to make
where the report was silent or inconsistent (``notes``).

Family modules register their builders with the :func:`register` decorator::

    @register("my_model", family="cnn1d", report="serlib", source="serlib", ...)
    def build_my_model(input_shape, n_classes):
        ...  # keras layers only; return an uncompiled keras.Model

:func:`build_model` turns a name into a compiled model (sparse categorical cross-entropy
on integer labels, accuracy). Explained in the chapter "The comparison"; each family's
chapter ("1-D CNNs", "2-D CNNs", "Recurrent models", "CNN-LSTM hybrids") explains its
builders.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Callable

from ..datasets.ravdess import EMOTIONS
from ..errors import ConfigError
from ..features import REPORT_SPECS, FeatureSpec  # noqa: F401  (REPORT_SPECS: the reports' features)
from ..fusion_settings import check_settings, speed_factors

FAMILIES = ("cnn1d", "cnn2d", "recurrent", "hybrid", "ours")
REPORTS = ("000", "001", "002", "003", "004", "serlib")
TASKS = ("emotion", "gender")
CORPORA = ("speech", "song", "speech+song")
OPTIMIZERS = ("adam", "rmsprop", "sgd")
#: Learning-rate schedules an entry may ask for (``None``: constant ``learning_rate``).
#: "cosine": linear warm-up from lr/10 to lr over the first 10 % of the training steps,
#: then cosine decay to lr/100 (:func:`make_optimizer` needs the number of steps).
LR_SCHEDULES = (None, "cosine")
GENDERS = ("female", "male")
#: The six emotions RAVDESS song has (and report 003 used for speech too).
SIX_EMOTIONS = tuple(EMOTIONS[:6])
CALLBACK_KEYS = ("early_stopping_patience", "monitor", "reduce_lr", "checkpoint")
REDUCE_LR_KEYS = ("monitor", "factor", "patience", "min_lr")

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

Builder = Callable[[tuple, int], "object"]


def callbacks(early_stopping_patience: int | None = None, monitor: str = "val_loss",
              reduce_lr: dict | None = None, checkpoint: bool = False) -> dict:
    """The callbacks dict a :class:`ModelEntry` carries, with defaults filled in.

    ``early_stopping_patience``: epochs without improvement of ``monitor`` before stopping
    (``None``: never stop early). ``reduce_lr``: ``None`` or a dict with ``monitor``,
    ``factor``, ``patience``, ``min_lr`` for ``ReduceLROnPlateau``. ``checkpoint``: keep the
    weights of the best epoch by ``monitor``. Explained in the chapter "The comparison".
    """
    if reduce_lr is not None:
        unknown = set(reduce_lr) - set(REDUCE_LR_KEYS)
        if unknown:
            raise ConfigError(f"reduce_lr has unknown keys {sorted(unknown)}; use {', '.join(REDUCE_LR_KEYS)}")
        reduce_lr = {"monitor": monitor, "factor": 0.5, "patience": 5, "min_lr": 1e-6, **reduce_lr}
    return {"early_stopping_patience": early_stopping_patience, "monitor": monitor,
            "reduce_lr": reduce_lr, "checkpoint": bool(checkpoint)}


@dataclass(frozen=True)
class ModelEntry:
    """One registered architecture and how its report trained it.

    Fields: ``name`` (lower-case id), ``family`` (cnn1d, cnn2d, recurrent, hybrid, ours),
    ``report`` ("000".."004" or "serlib"), ``source`` (first author and year as the report
    gives them), ``task`` ("emotion" or "gender": also the index column holding the target),
    ``features`` (:class:`FeatureSpec`), ``input_shape`` (the per-clip array shape the
    features produce: time-major, no channel axis; builders add what they need), ``labels``
    (class names, in output order), ``builder`` (``(input_shape, n_classes) -> keras.Model``,
    uncompiled), ``optimizer``/``learning_rate``/``batch_size``/``epochs``, ``callbacks``
    (see :func:`callbacks`), ``reference_params`` (the count the report printed, or
    ``None``), ``notes`` (every interpretation we made), ``recommended``, ``data_filter``
    (index column -> allowed value or values, e.g. ``{"intensity": "strong"}``, or a function
    ``DataFrame -> DataFrame``; applied by :func:`serlib.training.select_clips`), ``corpus``
    ("speech", "song" or "speech+song": which RAVDESS part the report trained on),
    ``input_text`` (a short description for tables), ``aliases``, and the training options
    described at each field below (``normalize``, ``lr_schedule``, ``class_weight``,
    ``train_with_song``, ``speed_copies``, ``functionals_fusion``, ``ensemble``).
    Explained in the chapter "The comparison".
    """

    name: str
    family: str
    report: str
    source: str
    features: FeatureSpec
    input_shape: tuple
    builder: Builder
    input_text: str
    task: str = "emotion"
    labels: tuple = tuple(EMOTIONS)
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    batch_size: int = 32
    epochs: int = 50
    callbacks: dict = field(default_factory=callbacks)
    reference_params: int | None = None
    notes: tuple = ()
    recommended: bool = False
    data_filter: dict = field(default_factory=dict)
    corpus: str = "speech"
    aliases: tuple = ()
    #: Standardise features with mean/std of the TRAINING clips (serlib.training stores them in run.json).
    normalize: bool = False
    #: Learning-rate schedule over the whole training run (see :data:`LR_SCHEDULES`).
    lr_schedule: str | None = None
    #: ``"balanced"``: weight each training clip by n / (classes x clips of its class), so
    #: every emotion counts equally in the loss, as it does in UAR; ``None``: plain loss.
    class_weight: str | None = None
    #: Also train on the RAVDESS song clips of the training actors when a song folder is
    #: found (:mod:`serlib.song`); validation, test and prediction stay speech.
    train_with_song: bool = False
    #: Speed factors (e.g. ``(0.9, 1.1)``): also train the network on copies of every training
    #: clip played that many times faster (:func:`serlib.augment.speed_perturb`: pitch,
    #: formants and tempo together); validation, test and prediction use the clips as they are.
    speed_copies: tuple = ()
    #: ``{"weight": w, "C": c}``: after training, fit a logistic regression on the
    #: :mod:`serlib.functionals` of the training clips and predict ``w * network +
    #: (1 - w) * regression`` (:mod:`serlib.fusion`); ``None``: the network alone.
    functionals_fusion: dict | None = None
    #: Train this many networks on the same clips, network k from the run's seed + 100 k
    #: (:data:`serlib.training.ENSEMBLE_SEED_STEP`), and predict the average of their
    #: probabilities (one Keras model holding them all, :func:`serlib.training.average_networks`).
    ensemble: int = 1

    def __post_init__(self):
        def bad(what):
            raise ConfigError(f"model entry {self.name!r}: {what}")

        if not isinstance(self.name, str) or not _NAME.match(self.name):
            bad("names are lower-case letters, digits and underscores, starting with a letter")
        if self.family not in FAMILIES:
            bad(f"family must be one of {', '.join(FAMILIES)}")
        if self.report not in REPORTS:
            bad(f"report must be one of {', '.join(REPORTS)}")
        if self.task not in TASKS:
            bad(f"task must be one of {', '.join(TASKS)}")
        if self.corpus not in CORPORA:
            bad(f"corpus must be one of {', '.join(CORPORA)}")
        if self.lr_schedule not in LR_SCHEDULES:
            bad(f"lr_schedule must be one of {', '.join(map(str, LR_SCHEDULES))}")
        if isinstance(self.ensemble, bool) or not isinstance(self.ensemble, int) or self.ensemble < 1:
            bad("ensemble must be a whole number of networks, 1 or more")
        try:
            copies = speed_factors(self.speed_copies, "speed_copies")
        except ConfigError:
            bad("speed_copies must be a list of speed factors between 0.5 and 2 other than 1")
        object.__setattr__(self, "speed_copies", copies)
        if self.class_weight not in (None, "balanced"):
            bad('class_weight must be None or "balanced"')
        if self.optimizer not in OPTIMIZERS:
            bad(f"optimizer must be one of {', '.join(OPTIMIZERS)}")
        if not isinstance(self.features, FeatureSpec):
            bad("features must be a serlib.features.FeatureSpec")
        if not callable(self.builder):
            bad("builder must be callable as builder(input_shape, n_classes)")
        labels = tuple(self.labels) if isinstance(self.labels, (list, tuple)) else ()
        if len(labels) < 2 or len(set(labels)) != len(labels) or not all(isinstance(x, str) for x in labels):
            bad("labels must be at least two distinct class names")
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "input_shape", _check_shape(self.input_shape, self.name))
        object.__setattr__(self, "notes", tuple([self.notes] if isinstance(self.notes, str) else self.notes))
        object.__setattr__(self, "aliases", tuple(self.aliases))
        if not callable(self.data_filter):
            object.__setattr__(self, "data_filter", dict(self.data_filter or {}))
        if not isinstance(self.callbacks, dict):
            bad(f"callbacks must be a dict with keys {', '.join(CALLBACK_KEYS)}")
        unknown = set(self.callbacks) - set(CALLBACK_KEYS)
        if unknown:
            bad(f"unknown callbacks keys {sorted(unknown)}; use {', '.join(CALLBACK_KEYS)}")
        object.__setattr__(self, "callbacks", callbacks(**self.callbacks))
        try:
            object.__setattr__(self, "functionals_fusion", check_settings(self.functionals_fusion))
        except ConfigError as error:
            bad(str(error))

    @property
    def n_classes(self) -> int:
        """Number of output classes (``len(labels)``)."""
        return len(self.labels)


_REGISTRY: dict[str, ModelEntry] = {}
_ALIASES: dict[str, str] = {}
_PARAMS: dict[tuple, int] = {}


def _check_shape(shape, name) -> tuple:
    try:
        shape = tuple(None if d is None else int(d) for d in shape)
    except (TypeError, ValueError):
        raise ConfigError(f"model {name!r}: input_shape {shape!r} must be a tuple of ints (or None)") from None
    if not shape or any(d is not None and d < 1 for d in shape):
        raise ConfigError(f"model {name!r}: input_shape {shape!r} must be non-empty with positive sizes")
    return shape


def register_entry(entry: ModelEntry) -> ModelEntry:
    """Add a ready-made :class:`ModelEntry` (and its aliases) to the registry.

    Registering a name twice is an error unless it is the same builder again (a module
    reload). Explained in the chapter "The comparison".
    """
    old = _REGISTRY.get(entry.name)
    if old is not None and _builder_id(old.builder) != _builder_id(entry.builder):
        raise ConfigError(f"model name {entry.name!r} is already registered by {_builder_id(old.builder)}")
    for alias in entry.aliases:
        if not _NAME.match(alias):
            raise ConfigError(f"alias {alias!r} of {entry.name!r}: use lower-case letters, digits, underscores")
        if alias in _REGISTRY:
            raise ConfigError(f"alias {alias!r} of {entry.name!r} clashes with a registered model name")
        holder = _ALIASES.get(alias)
        if holder is not None and holder != entry.name:
            raise ConfigError(f"alias {alias!r} already points at {holder!r}")
    if entry.name in _ALIASES:
        raise ConfigError(f"model name {entry.name!r} clashes with an alias of {_ALIASES[entry.name]!r}")
    _REGISTRY[entry.name] = entry
    for alias in entry.aliases:
        _ALIASES[alias] = entry.name
    for key in [k for k in _PARAMS if k[0] == entry.name]:
        del _PARAMS[key]
    return entry


def register(name: str, **fields) -> Callable[[Builder], Builder]:
    """Decorator registering a builder under ``name``; returns the builder unchanged.

    ``fields`` are the other :class:`ModelEntry` fields (``family``, ``report``, ``source``,
    ``features``, ``input_shape``, ``input_text``, and optionally ``task``, ``labels``,
    ``optimizer``, ``learning_rate``, ``batch_size``, ``epochs``, ``callbacks`` (a dict of
    :func:`callbacks` keyword arguments), ``reference_params``, ``notes``, ``recommended``,
    ``data_filter``, ``corpus``, ``aliases``). Decorators stack, so one builder can be
    registered under several names (e.g. the gender variants). Explained in the chapter
    "The comparison".
    """
    _check_fields(name, fields)

    def decorate(builder: Builder) -> Builder:
        register_entry(ModelEntry(name=name, builder=builder, **fields))
        return builder

    return decorate


def register_variant(base: str, name: str, **changes) -> ModelEntry:
    """Register a copy of entry ``base`` under ``name`` with some fields changed.

    Used for the same architecture trained on another task or subset (gender, one gender's
    emotions). Aliases are not copied. Explained in the chapter "Gender and gender-specific
    models".
    """
    _check_fields(name, changes)
    entry = dataclasses.replace(get_model(base), name=name, aliases=(), **changes)
    return register_entry(entry)


def _check_fields(name, fields: dict) -> None:
    """Refuse keyword arguments that are not :class:`ModelEntry` fields, in one line."""
    known = {f.name for f in dataclasses.fields(ModelEntry)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ConfigError(f"model entry {name!r}: unknown field(s) {', '.join(unknown)}; "
                          f"choose from {', '.join(sorted(known))}")


def _builder_id(builder) -> str:
    return f"{getattr(builder, '__module__', '?')}.{getattr(builder, '__qualname__', repr(builder))}"


def get_model(name: str) -> ModelEntry:
    """The :class:`ModelEntry` registered as ``name`` (or under alias ``name``).

    Raises :class:`~serlib.errors.ConfigError` (a :class:`~serlib.errors.SerlibError`)
    listing the known names otherwise.
    Explained in the chapter "The comparison".
    """
    if isinstance(name, ModelEntry):
        return name
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    try:
        return _REGISTRY[key]
    except KeyError:
        known = ", ".join(list(_REGISTRY) + sorted(_ALIASES))
        raise ConfigError(f"unknown model {name!r}; choose one of: {known} (or run `serlib models`)") from None


def list_models(*, family: str | None = None, report: str | None = None, task: str | None = None) -> list[str]:
    """Registered model names (no aliases) in registration order, optionally filtered.

    Explained in the chapter "The comparison".
    """
    return [n for n, e in _REGISTRY.items()
            if (family is None or e.family == family) and (report is None or e.report == report)
            and (task is None or e.task == task)]


def aliases() -> dict[str, str]:
    """Alias -> model name (e.g. ``recommended``). Explained in the chapter "The comparison"."""
    return dict(_ALIASES)


def make_optimizer(entry, total_steps: int | None = None):
    """A fresh Keras optimizer for ``entry`` (a :class:`ModelEntry` or a name).

    When the entry has an ``lr_schedule`` and ``total_steps`` (epochs x batches per
    epoch) is given, the learning rate follows that schedule (see :data:`LR_SCHEDULES`);
    otherwise it stays at ``entry.learning_rate``. Explained in the chapter "The comparison".
    """
    import keras

    entry = get_model(entry)
    classes = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop,
               "sgd": keras.optimizers.SGD}
    learning_rate = entry.learning_rate
    if entry.lr_schedule == "cosine" and total_steps:
        total = max(2, int(total_steps))
        warmup = max(1, total // 10)
        learning_rate = keras.optimizers.schedules.CosineDecay(
            entry.learning_rate / 10, decay_steps=total - warmup, alpha=0.01,
            warmup_target=entry.learning_rate, warmup_steps=warmup)
    return classes[entry.optimizer](learning_rate=learning_rate)


def _n_classes(entry: ModelEntry, n_classes) -> int:
    if n_classes is None:
        return entry.n_classes
    try:
        return int(n_classes)
    except (TypeError, ValueError):
        raise ConfigError(f"model {entry.name!r}: n_classes must be a whole number, got {n_classes!r}") from None


def _build_raw(entry: ModelEntry, input_shape, n_classes):
    shape = _check_shape(entry.input_shape if input_shape is None else input_shape, entry.name)
    n = _n_classes(entry, n_classes)
    if n < 2:
        raise ConfigError(f"model {entry.name!r}: n_classes must be at least 2, got {n}")
    model = entry.builder(shape, n)
    width = model.output_shape[-1]
    if width != n:
        raise ConfigError(f"model {entry.name!r}: builder returned {width} outputs for {n} classes")
    return model


def build_model(name: str, input_shape=None, n_classes: int | None = None, *, total_steps: int | None = None):
    """Build and compile the registered model ``name``.

    ``input_shape`` defaults to the entry's reference shape (the per-clip feature shape,
    no batch or channel axis), ``n_classes`` to ``len(entry.labels)``. Compiled with the
    entry's optimizer and learning rate, sparse categorical cross-entropy (the reports'
    categorical cross-entropy, on integer labels) and accuracy. ``total_steps`` (the
    training steps fit will run) switches on the entry's ``lr_schedule``, if it has one.
    Explained in the chapter "The comparison".
    """
    entry = get_model(name)
    model = _build_raw(entry, input_shape, n_classes)
    model.compile(optimizer=make_optimizer(entry, total_steps), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def count_params(name: str, input_shape=None, n_classes: int | None = None) -> int:
    """Parameter count (trainable and not) of ``name`` for an input shape (cached).

    An entry with ``ensemble=n`` counts all n networks, as the trained model holds them.
    Explained in the chapter "The comparison".
    """
    entry = get_model(name)
    shape = _check_shape(entry.input_shape if input_shape is None else input_shape, entry.name)
    n = _n_classes(entry, n_classes)
    key = (entry.name, shape, n)
    if key not in _PARAMS:
        _PARAMS[key] = int(_build_raw(entry, shape, n).count_params()) * entry.ensemble
    return _PARAMS[key]


def describe_models() -> list[dict]:
    """One row per registered model, JSON-ready, for tables and ``serlib models``.

    Keys: ``name``, ``source``, ``input``, ``params`` (built for its reference input and
    classes), ``reference_params`` (what the report printed, or ``None``), ``recommended``,
    ``family``, ``report``, ``task``, ``n_classes``, ``aliases``. Explained in the chapter
    "The comparison".
    """
    rows = []
    for name, e in _REGISTRY.items():
        rows.append({
            "name": name, "source": e.source, "input": e.input_text, "params": count_params(name),
            "reference_params": e.reference_params, "recommended": bool(e.recommended),
            "family": e.family, "report": e.report, "task": e.task, "n_classes": e.n_classes,
            "aliases": list(e.aliases),
        })
    return rows
