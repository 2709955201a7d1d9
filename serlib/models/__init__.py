"""Every architecture of the five reports, plus serlib's own, behind one registry.

    >>> from serlib.models import list_models, build_model, get_model
    >>> model = build_model("das2019_model_b")          # compiled, ready for fit()
    >>> get_model("das2019_model_b").reference_params  # what the report printed
    4456

Family modules: :mod:`~serlib.models.cnn1d` ("1-D CNNs"), :mod:`~serlib.models.cnn2d`
("2-D CNNs"), :mod:`~serlib.models.recurrent` ("Recurrent models"),
:mod:`~serlib.models.hybrid` ("CNN-LSTM hybrids"), :mod:`~serlib.models.gender` ("Gender and
gender-specific models") and ``recommended`` (serlib's own model, alias ``recommended``,
"Beyond the reports"). How each model is trained is its recipe (:func:`get_recipe`,
declared in :mod:`serlib.recipes`). The registry is explained in the chapter "The comparison".
"""
from importlib.util import find_spec as _find_spec

from . import _keras_first  # noqa: F401  (first: Keras loads without native start-up lines in notebooks)
from .registry import (
    FAMILIES,
    ModelEntry,
    Recipe,
    aliases,
    build_model,
    callbacks,
    count_params,
    describe_models,
    get_model,
    get_recipe,
    list_models,
    make_optimizer,
    register,
    register_entry,
    register_variant,
)
from . import cnn1d, cnn2d, recurrent, hybrid  # noqa: F401  (registration order = book order)
from .gender import GenderThenEmotion

# serlib's own model registers itself (and the alias "recommended") when its module exists;
# any error inside that module still surfaces.
if _find_spec(f"{__name__}.recommended") is not None:
    from . import recommended  # noqa: F401

__all__ = [
    "FAMILIES", "ModelEntry", "Recipe", "GenderThenEmotion", "aliases", "build_model",
    "callbacks", "count_params", "describe_models", "get_model", "get_recipe", "list_models", "make_optimizer",
    "register", "register_entry", "register_variant",
]
