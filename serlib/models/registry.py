"""The model registry: one :class:`ModelEntry` per architecture of the five reports.

Each entry records what a model *is*: the features it eats (a
:class:`~serlib.features.FeatureSpec`), the input shape, the class names, the builder, the
report and source, the parameter count the report printed (if it printed one), and every
interpretation we had to make where the report was silent or inconsistent (``notes``).
How a model is *trained* (optimizer, learning rate, batch size, epochs, callbacks, ensemble,
fusion, augmentation) is its recipe, declared as data in :mod:`serlib.recipes`
(:func:`get_recipe`).

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
from ..recipes import (  # noqa: F401  (re-exported: they lived here before recipes existed)
    CALLBACK_KEYS,
    FIELDS as RECIPE_FIELDS,
    LR_SCHEDULES,
    OPTIMIZERS,
    REDUCE_LR_KEYS,
    Recipe,
    callbacks,
    declared,
    recipe_for,
    register_recipe,
)

FAMILIES = ("cnn1d", "cnn2d", "recurrent", "hybrid", "ours")
REPORTS = ("000", "001", "002", "003", "004", "serlib")
TASKS = ("emotion", "gender")
CORPORA = ("speech", "song", "speech+song")
GENDERS = ("female", "male")
#: The six emotions RAVDESS song has (and report 003 used for speech too).
SIX_EMOTIONS = tuple(EMOTIONS[:6])

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

Builder = Callable[[tuple, int], "object"]


def _from_recipe(setting: str):
    """A read-only ModelEntry attribute returning its recipe's ``setting`` (compatibility)."""
    def read(self):
        return getattr(self.recipe, setting)

    read.__doc__ = f"The ``{setting}`` of this model's recipe (read-only; :func:`get_recipe` is the source)."
    return property(read)


@dataclass(frozen=True)
class ModelEntry:
    """One registered architecture: what the model is, not how it is trained.

    Fields: ``name`` (lower-case id), ``family`` (cnn1d, cnn2d, recurrent, hybrid, ours),
    ``report`` ("000".."004" or "serlib"), ``source`` (first author and year as the report
    gives them), ``task`` ("emotion" or "gender": also the index column holding the target),
    ``features`` (:class:`FeatureSpec`), ``input_shape`` (the per-clip array shape the
    features produce: time-major, no channel axis; builders add what they need), ``labels``
    (class names, in output order), ``builder`` (``(input_shape, n_classes) -> keras.Model``,
    uncompiled), ``reference_params`` (the count the report printed, or ``None``), ``notes``
    (every interpretation we made), ``recommended``, ``data_filter`` (index column -> allowed
    value or values, e.g. ``{"intensity": "strong"}``, or a function ``DataFrame ->
    DataFrame``; applied by :func:`serlib.training.select_clips`), ``corpus`` ("speech",
    "song" or "speech+song": which RAVDESS part the report trained on), ``input_text`` (a
    short description for tables), ``aliases``.

    How it is trained is its recipe (:attr:`recipe`, :func:`get_recipe`, declared in
    :mod:`serlib.recipes`). The recipe's settings are also readable here (``entry.epochs``,
    ``entry.ensemble`` ...) for older code; they are read-only and always the recipe's.
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
    reference_params: int | None = None
    notes: tuple = ()
    recommended: bool = False
    data_filter: dict = field(default_factory=dict)
    corpus: str = "speech"
    aliases: tuple = ()

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

    @property
    def n_classes(self) -> int:
        """Number of output classes (``len(labels)``)."""
        return len(self.labels)

    @property
    def recipe(self) -> Recipe:
        """How this model is trained: its registered or declared :class:`~serlib.recipes.Recipe`
        (the defaults when none is declared). Explained in the chapter "The comparison"."""
        return recipe_for(self.name) or Recipe()

    optimizer = _from_recipe("optimizer")
    learning_rate = _from_recipe("learning_rate")
    batch_size = _from_recipe("batch_size")
    epochs = _from_recipe("epochs")
    callbacks = _from_recipe("callbacks")
    lr_schedule = _from_recipe("lr_schedule")
    normalize = _from_recipe("normalize")
    class_weight = _from_recipe("class_weight")
    train_with_song = _from_recipe("train_with_song")
    speed_copies = _from_recipe("speed_copies")
    functionals_fusion = _from_recipe("functionals_fusion")
    ensemble = _from_recipe("ensemble")


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


def register(name: str, *, recipe: Recipe | dict | None = None, **fields) -> Callable[[Builder], Builder]:
    """Decorator registering a builder under ``name``; returns the builder unchanged.

    ``fields`` are the other :class:`ModelEntry` fields (``family``, ``report``, ``source``,
    ``features``, ``input_shape``, ``input_text``, and optionally ``task``, ``labels``,
    ``reference_params``, ``notes``, ``recommended``, ``data_filter``, ``corpus``,
    ``aliases``). How it trains is the recipe declared for ``name`` in
    :mod:`serlib.recipes`; a model registered in code may give one here instead
    (``recipe=``, a :class:`~serlib.recipes.Recipe` or a dict of settings) or change single
    settings (``epochs=10``, ``ensemble=2`` ...: any recipe setting). Decorators stack, so
    one builder can be registered under several names (e.g. the gender variants).
    Explained in the chapter "The comparison".
    """
    _check_fields(name, fields)
    entry_fields, settings = _split_fields(fields)
    start = recipe if isinstance(recipe, Recipe) else declared().get(name) or Recipe()
    trained = _changed(name, _changed(name, start, recipe if isinstance(recipe, dict) else {}), settings)

    def decorate(builder: Builder) -> Builder:
        register_entry(ModelEntry(name=name, builder=builder, **entry_fields))
        if recipe is not None or settings:
            register_recipe(name, trained)
        return builder

    return decorate


def register_variant(base: str, name: str, **changes) -> ModelEntry:
    """Register a copy of entry ``base`` under ``name`` with some fields changed.

    Used for the same architecture trained on another task or subset (gender, one gender's
    emotions). Aliases are not copied. The variant trains by the recipe declared for
    ``name`` (:mod:`serlib.recipes`), else by ``base``'s; recipe settings among ``changes``
    (``epochs=7``, ``speed_copies=(0.9, 1.1)`` ...) change that recipe for the variant
    only (:meth:`~serlib.recipes.Recipe.override`). Explained in the chapter "Gender and
    gender-specific models".
    """
    _check_fields(name, changes)
    entry_changes, settings = _split_fields(changes)
    base_entry = get_model(base)
    trained = _changed(name, declared().get(name) or get_recipe(base_entry), settings)
    entry = dataclasses.replace(base_entry, name=name, aliases=(), **entry_changes)
    register_entry(entry)
    register_recipe(name, trained)
    return entry


def _changed(name, recipe: Recipe, settings: dict) -> Recipe:
    """``recipe`` with ``settings`` changed; a bad one is a ConfigError naming the model entry."""
    try:
        return recipe.override(**settings) if settings else recipe
    except ConfigError as error:
        raise ConfigError(f"model entry {name!r}: {str(error).removeprefix('recipe override: ')}") from None


def _split_fields(fields: dict) -> tuple[dict, dict]:
    """(ModelEntry fields, recipe settings) of keyword arguments already checked."""
    return ({k: v for k, v in fields.items() if k not in RECIPE_FIELDS},
            {k: v for k, v in fields.items() if k in RECIPE_FIELDS})


def _check_fields(name, fields: dict) -> None:
    """Refuse keyword arguments that are neither :class:`ModelEntry` fields nor recipe
    settings, in one line."""
    known = {f.name for f in dataclasses.fields(ModelEntry)} | set(RECIPE_FIELDS)
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ConfigError(f"model entry {name!r}: unknown field(s) {', '.join(unknown)}; "
                          f"choose from {', '.join(sorted(known))}")


def get_recipe(name, *assignments, **overrides) -> Recipe:
    """How model ``name`` (a name, an alias or a :class:`ModelEntry`) is trained, with changes.

    The recipe registered in code or declared in :mod:`serlib.recipes` (the defaults of
    :class:`~serlib.recipes.Recipe` when there is none), then ``assignments``
    (``"epochs=10"`` strings) and ``overrides`` (keyword arguments) applied with
    :meth:`~serlib.recipes.Recipe.override`. Unknown models, settings and bad values raise a
    one-line :class:`~serlib.errors.ConfigError`. Explained in the chapter "The comparison".
    """
    entry = get_model(name)
    recipe = recipe_for(entry.name) or Recipe()
    return recipe.override(*assignments, **overrides) if assignments or overrides else recipe


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


def make_optimizer(entry, total_steps: int | None = None, *, recipe: Recipe | None = None):
    """A fresh Keras optimizer for ``entry`` (a :class:`ModelEntry` or a name).

    Settings from ``recipe`` (default: the model's, :func:`get_recipe`). When the recipe has
    an ``lr_schedule`` and ``total_steps`` (epochs x batches per epoch) is given, the
    learning rate follows that schedule (see :data:`LR_SCHEDULES`); otherwise it stays at
    ``recipe.learning_rate``. Explained in the chapter "The comparison".
    """
    import keras

    recipe = get_recipe(entry) if recipe is None else recipe
    classes = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop,
               "sgd": keras.optimizers.SGD}
    learning_rate = recipe.learning_rate
    if recipe.lr_schedule == "cosine" and total_steps:
        total = max(2, int(total_steps))
        warmup = max(1, total // 10)
        learning_rate = keras.optimizers.schedules.CosineDecay(
            recipe.learning_rate / 10, decay_steps=total - warmup, alpha=0.01,
            warmup_target=recipe.learning_rate, warmup_steps=warmup)
    return classes[recipe.optimizer](learning_rate=learning_rate)


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


def build_model(name: str, input_shape=None, n_classes: int | None = None, *, total_steps: int | None = None,
                recipe: Recipe | None = None):
    """Build and compile the registered model ``name``.

    ``input_shape`` defaults to the entry's reference shape (the per-clip feature shape,
    no batch or channel axis), ``n_classes`` to ``len(entry.labels)``. Compiled with the
    recipe's optimizer and learning rate (``recipe``, default :func:`get_recipe`), sparse categorical cross-entropy (the reports'
    categorical cross-entropy, on integer labels) and accuracy. ``total_steps`` (the
    training steps fit will run) switches on the recipe's ``lr_schedule``, if it has one.
    Explained in the chapter "The comparison".
    """
    entry = get_model(name)
    model = _build_raw(entry, input_shape, n_classes)
    model.compile(optimizer=make_optimizer(entry, total_steps, recipe=recipe), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def count_params(name: str, input_shape=None, n_classes: int | None = None) -> int:
    """Parameter count (trainable and not) of ``name`` for an input shape (cached).

    A recipe with ``ensemble=n`` counts all n networks, as the trained model holds them.
    Explained in the chapter "The comparison".
    """
    entry = get_model(name)
    shape = _check_shape(entry.input_shape if input_shape is None else input_shape, entry.name)
    n = _n_classes(entry, n_classes)
    key = (entry.name, shape, n)
    if key not in _PARAMS:
        _PARAMS[key] = int(_build_raw(entry, shape, n).count_params()) * get_recipe(entry).ensemble
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
