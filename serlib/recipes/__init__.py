"""Recipes: how a registered model is trained, declared as data and overridable.

A model's entry in :mod:`serlib.models` says what the model *is* (builder, features, labels,
report, notes); its :class:`Recipe` says how it is *trained*: optimiser, learning rate and
schedule, batch size, epochs, callbacks, normalisation, class weights, extra training data
(song clips, speed-perturbed copies, augmentation), an ensemble of networks and a fused
regression on clip statistics. Each report's recipes are a JSON file beside this module
(``000.json`` … ``004.json``, ``serlib.json``), one table per model holding only what
differs from the defaults (or from the recipe it ``extends``), the way SpeechBrain's
hparams files declare an experiment::

    "kalokyris_lstm": {"epochs": 60, "normalize": true,
                       "callbacks": {"checkpoint": true, "monitor": "val_loss"}}

Every setting can be changed for one run without editing a file:
``get_recipe("recommended", epochs=10)``, ``recipe.override("epochs=10", "ensemble=1")`` or
``serlib train recommended --set epochs=10 --set ensemble=1``; the run saves the recipe it
used in ``run.json`` (``info["recipe"]``). This module imports no model, training or fusion
code: :func:`serlib.models.get_recipe` resolves a model name (or alias) and asks it.
Explained in the chapter "The comparison".
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, SerlibError
from ..level import check_level
from ..fusion_settings import check_settings, speed_factors

OPTIMIZERS = ("adam", "rmsprop", "sgd")
#: Learning-rate schedules a recipe may ask for (``None``: constant ``learning_rate``).
#: "cosine": linear warm-up from lr/10 to lr over the first 10 % of the training steps,
#: then cosine decay to lr/100 (:func:`serlib.models.make_optimizer` needs the number of steps).
LR_SCHEDULES = (None, "cosine")
CALLBACK_KEYS = ("early_stopping_patience", "monitor", "reduce_lr", "checkpoint")
REDUCE_LR_KEYS = ("monitor", "factor", "patience", "min_lr")
AUGMENT_KEYS = ("copies", "ops", "ranges")
#: Where the report families' recipe files live (``<report>.json``).
DATA_DIR = Path(__file__).resolve().parent


def callbacks(early_stopping_patience: int | None = None, monitor: str = "val_loss",
              reduce_lr: dict | None = None, checkpoint: bool = False) -> dict:
    """The callbacks dict a :class:`Recipe` carries, with defaults filled in.

    ``early_stopping_patience``: epochs without improvement of ``monitor`` before stopping
    (``None``: never stop early). ``reduce_lr``: ``None`` or a dict with ``monitor``,
    ``factor``, ``patience``, ``min_lr`` for ``ReduceLROnPlateau``. ``checkpoint``: keep the
    weights of the best epoch by ``monitor``. Explained in the chapter "The comparison".
    """
    if reduce_lr is not None:
        if not isinstance(reduce_lr, dict):
            raise ConfigError(f"reduce_lr must be None or a dict with keys {', '.join(REDUCE_LR_KEYS)}")
        unknown = set(reduce_lr) - set(REDUCE_LR_KEYS)
        if unknown:
            raise ConfigError(f"reduce_lr has unknown keys {sorted(unknown)}; use {', '.join(REDUCE_LR_KEYS)}")
        reduce_lr = {"monitor": monitor, "factor": 0.5, "patience": 5, "min_lr": 1e-6, **reduce_lr}
    if early_stopping_patience is not None and (isinstance(early_stopping_patience, bool)
                                                or not isinstance(early_stopping_patience, int)
                                                or early_stopping_patience < 1):
        raise ConfigError(f"early_stopping_patience must be None or a whole number of epochs, "
                          f"not {early_stopping_patience!r}")
    if not isinstance(monitor, str) or not monitor:
        raise ConfigError(f"callbacks monitor must be a metric name such as val_loss, not {monitor!r}")
    return {"early_stopping_patience": early_stopping_patience, "monitor": monitor,
            "reduce_lr": reduce_lr, "checkpoint": bool(checkpoint)}


@dataclass(frozen=True)
class Recipe:
    """How a model is trained; every field has the default a report-less model gets.

    ``optimizer`` (adam, rmsprop, sgd), ``learning_rate`` (peak rate with a schedule),
    ``lr_schedule`` (see :data:`LR_SCHEDULES`), ``batch_size``, ``epochs`` (at most, with
    early stopping), ``callbacks`` (see :func:`callbacks`), ``normalize`` (standardise
    features with the training clips' mean and std, stored in the run), ``class_weight``
    (``"balanced"``: every class counts equally in the loss, as in UAR; ``None``),
    ``train_with_song`` (add the RAVDESS song clips of the training actors when a song
    folder is found, :mod:`serlib.song`), ``speed_copies`` (speed factors: the network also
    trains on copies of each training clip played that much faster,
    :func:`serlib.augment.speed_perturb`), ``functionals_fusion`` (``None`` or the settings of
    a logistic regression on clip statistics fused with the network,
    :func:`serlib.fusion_settings.check_settings`), ``ensemble`` (networks trained from seeds
    100 apart whose probabilities are averaged), ``augment`` (``False``, ``True``, a number
    of copies or ``{"copies", "ops", "ranges"}``: perturbed copies of the training clips,
    :func:`serlib.training.augment_settings`), ``level_db`` (``None``, or the level in dB re full
    scale every clip is scaled to before it is described, in training and prediction alike:
    :mod:`serlib.level`, chapter "Does it travel?"). Invalid values raise a one-line
    :class:`~serlib.errors.ConfigError`. Explained in the chapter "The comparison".
    """

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    batch_size: int = 32
    epochs: int = 50
    callbacks: dict = field(default_factory=callbacks)
    lr_schedule: str | None = None
    normalize: bool = False
    class_weight: str | None = None
    train_with_song: bool = False
    speed_copies: tuple = ()
    functionals_fusion: dict | None = None
    ensemble: int = 1
    augment: object = False
    level_db: float | None = None

    def __post_init__(self):
        def bad(what):
            raise ConfigError(f"recipe: {what}")

        def whole(name):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                bad(f"{name} must be a whole number, 1 or more, not {value!r}")

        if self.optimizer not in OPTIMIZERS:
            bad(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {self.optimizer!r}")
        rate = self.learning_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) or rate <= 0:
            bad(f"learning_rate must be a positive number, not {rate!r}")
        object.__setattr__(self, "learning_rate", float(rate))
        for name in ("batch_size", "epochs", "ensemble"):
            whole(name)
        if self.lr_schedule not in LR_SCHEDULES:
            bad(f"lr_schedule must be one of {', '.join(map(str, LR_SCHEDULES))}, not {self.lr_schedule!r}")
        if self.class_weight not in (None, "balanced"):
            bad(f'class_weight must be None or "balanced", not {self.class_weight!r}')
        for name in ("normalize", "train_with_song"):
            if not isinstance(getattr(self, name), bool):
                bad(f"{name} must be true or false, not {getattr(self, name)!r}")
        if not isinstance(self.callbacks, dict):
            bad(f"callbacks must be a dict with keys {', '.join(CALLBACK_KEYS)}")
        unknown = set(self.callbacks) - set(CALLBACK_KEYS)
        if unknown:
            bad(f"unknown callbacks keys {sorted(unknown)}; use {', '.join(CALLBACK_KEYS)}")
        try:
            object.__setattr__(self, "callbacks", callbacks(**self.callbacks))
            object.__setattr__(self, "speed_copies", speed_factors(self.speed_copies, "speed_copies"))
            object.__setattr__(self, "functionals_fusion", check_settings(self.functionals_fusion))
        except ConfigError as error:
            bad(str(error))
        object.__setattr__(self, "augment", _check_augment(self.augment))
        try:
            object.__setattr__(self, "level_db", check_level(self.level_db))
        except SerlibError as error:
            bad(str(error))
        if self.level_db is not None and (self.augment or self.train_with_song):
            bad("level_db cannot be combined with augment or train_with_song yet (their extra clips are "
                "described outside the pipeline that scales the level)")

    # ------------------------------------------------------------------ data
    def to_dict(self) -> dict:
        """Every setting, JSON-ready (tuples as lists); :meth:`from_dict` reads it back.

        Explained in the chapter "The comparison"."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "recipe") -> Recipe:
        """The recipe a dict describes (missing keys keep their defaults); unknown keys and bad
        values raise a one-line :class:`~serlib.errors.ConfigError` naming ``source``.

        Explained in the chapter "The comparison"."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: a recipe is a table of settings, not {type(data).__name__}")
        _check_keys(data, source)
        try:
            return cls(**data)
        except ConfigError as error:
            raise ConfigError(f"{source}: {str(error).removeprefix('recipe: ')}") from None
        except TypeError as error:   # pragma: no cover - keys are checked above
            raise ConfigError(f"{source}: {error}") from None

    # ------------------------------------------------------------------ changes
    def override(self, *assignments, **changes) -> Recipe:
        """A copy with some settings changed; ``self`` stays as it is.

        ``assignments``: strings ``"key=value"`` as typed on a command line (or lists of
        them), the value parsed by the setting's type: whole numbers, numbers, true/false,
        ``none``, comma-separated speed factors (``speed_copies=0.9,1.1``; empty for none),
        JSON for tables (``functionals_fusion={"weight": 0.6}``); ``callbacks.KEY=value``
        and ``functionals_fusion.KEY=value`` change one key of those tables. ``changes``:
        keyword arguments with Python values. Unknown keys and bad values raise a one-line
        :class:`~serlib.errors.ConfigError`. Explained in the chapter "The comparison".
        """
        parsed = {}
        for item in _flatten(assignments):
            key, value = _parse_assignment(item, self)
            parsed[key] = value
        _check_keys(changes, "recipe override")
        parsed.update(changes)
        if not parsed:
            return self
        try:
            return dataclasses.replace(self, **parsed)
        except ConfigError as error:
            raise ConfigError(f"recipe override: {str(error).removeprefix('recipe: ')}") from None

    def changes_from(self, other: Recipe) -> dict:
        """``{setting: value}`` where this recipe differs from ``other`` (JSON-ready)."""
        mine, theirs = self.to_dict(), other.to_dict()
        return {k: v for k, v in mine.items() if theirs.get(k) != v}


FIELDS = tuple(f.name for f in dataclasses.fields(Recipe))
_TABLES = ("callbacks", "functionals_fusion")


def _check_keys(data: dict, source: str) -> None:
    unknown = [k for k in data if k not in FIELDS]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), FIELDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{source}: unknown recipe setting {key!r}{hint}; choose from {', '.join(FIELDS)}")


def _check_augment(value):
    if value is None or value is False:
        return False
    if value is True:
        return True
    if isinstance(value, int) and value >= 0:
        return int(value) or False
    if isinstance(value, dict) and not set(value) - set(AUGMENT_KEYS):
        return json.loads(json.dumps(value))
    raise ConfigError(f"recipe: augment must be false, true, a number of copies or a table with keys "
                      f"{', '.join(AUGMENT_KEYS)}, not {value!r}")


def _flatten(items):
    for item in items:
        if isinstance(item, (list, tuple)):
            yield from _flatten(item)
        else:
            yield item


_TRUE, _FALSE, _NONE = ("true", "yes", "on", "1"), ("false", "no", "off", "0"), ("none", "null", "")


def _parse_assignment(item, recipe: Recipe) -> tuple[str, object]:
    """``"key=value"`` -> ``(key, value)`` typed for ``recipe``'s field ``key``."""
    if not isinstance(item, str):
        raise ConfigError(f"recipe override {item!r}: write KEY=VALUE, e.g. epochs=10")
    key, sep, text = item.partition("=")
    key, text = key.strip(), text.strip()
    if not sep or not key:
        raise ConfigError(f"recipe override {item!r}: write KEY=VALUE, e.g. epochs=10")
    top, dot, sub = key.partition(".")
    _check_keys({top: None}, f"recipe override {item!r}")
    if dot:
        if top not in _TABLES:
            raise ConfigError(f"recipe override {item!r}: only {' and '.join(_TABLES)} have keys (KEY.SUBKEY=...)")
        table = dict(getattr(recipe, top) or {})
        table[sub] = _json_or_text(text)
        return top, table
    try:
        return top, _parse_value(top, text)
    except (ValueError, json.JSONDecodeError):
        raise ConfigError(f"recipe override {item!r}: {_EXPECT[top]}") from None


_EXPECT = {
    "optimizer": f"give one of {', '.join(OPTIMIZERS)}", "learning_rate": "give a positive number",
    "batch_size": "give a whole number", "epochs": "give a whole number", "ensemble": "give a whole number",
    "callbacks": 'give a JSON table, e.g. {"early_stopping_patience": 10}',
    "lr_schedule": "give cosine or none", "normalize": "give true or false", "class_weight": "give balanced or none",
    "train_with_song": "give true or false", "speed_copies": "give speed factors separated by commas, e.g. 0.9,1.1",
    "functionals_fusion": 'give none or a JSON table, e.g. {"weight": 0.5, "C": 0.01}',
    "augment": "give true, false, a number of copies or a JSON table",
    "level_db": "give a level in dB re full scale, e.g. -30, or none",
}


def _parse_value(key: str, text: str):
    low = text.lower()
    if key in ("batch_size", "epochs", "ensemble"):
        return int(text)
    if key == "learning_rate":
        return float(text)
    if key == "level_db":
        return None if low in _NONE else float(text)
    if key in ("normalize", "train_with_song"):
        if low in _TRUE or low in _FALSE:
            return low in _TRUE
        raise ValueError(text)
    if key in ("optimizer",):
        return low
    if key in ("lr_schedule", "class_weight"):
        return None if low in _NONE else low
    if key == "speed_copies":
        text = text.strip("()[] ")
        return () if low in _NONE or not text else tuple(float(f) for f in text.split(",") if f.strip())
    if key == "functionals_fusion":
        return None if low in _NONE else json.loads(text)
    if key == "callbacks":
        value = json.loads(text)
        if not isinstance(value, dict):
            raise ValueError(text)
        return value
    if key == "augment":
        if low in _TRUE[:3] or low in _FALSE[:3] or low in _NONE:
            return low in _TRUE
        return int(text) if text.isdigit() else json.loads(text)
    raise ValueError(text)   # pragma: no cover - every field is handled above


def _json_or_text(text: str):
    if text.lower() in ("none", "null"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


# ---------------------------------------------------------------------------------- the declared recipes
_DECLARED: dict[str, Recipe] | None = None
_REGISTERED: dict[str, Recipe] = {}


def _read_file(path: Path) -> dict[str, dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: cannot read this recipe file ({error}); fix or reinstall serlib") from None
    if not isinstance(data, dict) or not isinstance(data.get("recipes"), dict):
        raise ConfigError(f"{path}: a recipe file holds {{\"about\": ..., \"defaults\": {{...}}, "
                          "\"recipes\": {model: {...}}}")
    defaults = data.get("defaults") or {}
    _check_keys(defaults, str(path))
    return {name: {"__file": str(path), "__defaults": defaults, **(values or {})}
            for name, values in data["recipes"].items()}


def load_recipes(folder=None) -> dict[str, Recipe]:
    """Every recipe declared in the JSON files of ``folder`` (default: serlib's own), by model name.

    A table may ``extend`` another model's recipe (its settings first, then the table's);
    otherwise it starts from the file's ``defaults``. Duplicate names, unknown settings and
    bad values raise a one-line :class:`~serlib.errors.ConfigError` naming the file and the
    model. Explained in the chapter "The comparison".
    """
    raw: dict[str, dict] = {}
    for path in sorted(Path(folder or DATA_DIR).glob("*.json")):
        for name, table in _read_file(path).items():
            if name in raw:
                raise ConfigError(f"{path}: recipe {name!r} is already declared in {raw[name]['__file']}")
            raw[name] = table
    resolved: dict[str, dict] = {}

    def resolve(name, chain=()):
        if name in resolved:
            return resolved[name]
        table = dict(raw[name])
        source = f"{table.pop('__file')}: recipe {name!r}"
        defaults = table.pop("__defaults")
        base = table.pop("extends", None)
        if base is not None:
            if base not in raw:
                raise ConfigError(f"{source} extends {base!r}, which no recipe file declares")
            if base in chain:
                raise ConfigError(f"{source} extends itself through {' -> '.join(chain)}")
            start = resolve(base, (*chain, name))
        else:
            start = dict(defaults)
        _check_keys(table, source)
        merged = {**start, **table}
        Recipe.from_dict(merged, source=source)     # checked here, with the file and model named
        resolved[name] = merged
        return merged

    return {name: Recipe.from_dict(resolve(name)) for name in raw}


def declared() -> dict[str, Recipe]:
    """The recipes of serlib's own files (read once), by model name. Explained in the chapter
    "The comparison"."""
    global _DECLARED
    if _DECLARED is None:
        _DECLARED = load_recipes()
    return dict(_DECLARED)


def register_recipe(name: str, recipe: Recipe) -> Recipe:
    """Give model ``name`` this recipe (for models registered in code, e.g. variants).

    It replaces a declared one for this session only. Explained in the chapter "The comparison".
    """
    if not isinstance(recipe, Recipe):
        raise ConfigError(f"recipe for {name!r} must be a serlib.recipes.Recipe, not {type(recipe).__name__}")
    _REGISTERED[str(name)] = recipe
    return recipe


def recipe_for(name: str) -> Recipe | None:
    """The recipe registered or declared for the model called ``name`` (no aliases), or None.

    Use :func:`serlib.models.get_recipe` for names, aliases and overrides. Explained in the
    chapter "The comparison".
    """
    if name in _REGISTERED:
        return _REGISTERED[name]
    return declared().get(name)


__all__ = ["Recipe", "callbacks", "load_recipes", "declared", "register_recipe", "recipe_for", "FIELDS",
           "OPTIMIZERS", "LR_SCHEDULES", "CALLBACK_KEYS", "REDUCE_LR_KEYS"]


def resolve(entry, recipe=None) -> Recipe:
    """The recipe a model trains by: ``recipe`` when it is a :class:`Recipe`; the entry's own
    (its ``recipe``, else :func:`recipe_for` its name) otherwise, changed by ``recipe`` when
    that is a dict of settings or ``"key=value"`` strings. Explained in the chapter "The comparison".
    """
    if isinstance(recipe, Recipe):
        return recipe
    own = getattr(entry, "recipe", None)
    own = own if isinstance(own, Recipe) else recipe_for(str(getattr(entry, "name", ""))) or Recipe()
    if recipe is None:
        return own
    if isinstance(recipe, dict):
        return own.override(**recipe)
    return own.override(recipe if not isinstance(recipe, str) else [recipe])
