"""The settings of late fusion (``functionals_fusion``), checked without the fusion maths.

A model entry that fuses its network with a regression on clip functionals carries a
small dict of settings; :func:`check_settings` validates it and fills in the defaults.
It lives below both :mod:`serlib.models.registry` (which checks an entry's settings when
it is registered) and :mod:`serlib.fusion` (which uses them), so the registry does not
depend on the fusion code. Explained in the chapter "A second opinion".
"""
from __future__ import annotations

import math

from .errors import ConfigError

KEYS = ("weight", "C", "uniform_prior", "pooling", "speed_copies", "score_speed_copies")
POOLINGS = ("arithmetic", "geometric")


def speed_factors(values, what: str) -> tuple:
    """``values`` as a tuple of speed factors (floats between 0.5 and 2, none equal to 1).

    Raises :class:`~serlib.errors.ConfigError` naming ``what`` otherwise. Explained in the
    chapter "A second opinion".
    """
    try:
        copies = tuple(float(f) for f in (values or ()))
    except (TypeError, ValueError):
        copies = None
    if copies is None or any(not 0.5 <= f <= 2.0 or f == 1.0 for f in copies):
        raise ConfigError(f"{what} must be a list of speed factors between 0.5 and 2 other than 1, "
                          f"not {values!r}")
    return copies


def check_settings(settings) -> dict | None:
    """Validate an entry's ``functionals_fusion`` dict (``None``: no fusion); returns it complete.

    Keys (all optional): ``weight`` in [0, 1), the network's share (default 0.5); ``C`` > 0,
    the regression's inverse L2 strength (0.01); ``uniform_prior`` (False); ``pooling``
    (``arithmetic`` or ``geometric``); ``speed_copies`` (speed factors, ``()``);
    ``score_speed_copies`` (False; True needs ``speed_copies``). Anything else raises
    :class:`~serlib.errors.ConfigError` in one line. Explained in the chapter "A second opinion".
    """
    if settings is None:
        return None
    if not isinstance(settings, dict) or set(settings) - set(KEYS):
        raise ConfigError(f"functionals_fusion must be a dict with keys {', '.join(KEYS)}, not {settings!r}")

    def number(key, default):
        value = settings.get(key, default)
        try:
            ok = not isinstance(value, bool) and math.isfinite(float(value))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(f"functionals_fusion {key}={value!r}: give a number")
        return float(value)

    weight, C = number("weight", 0.5), number("C", 0.01)
    uniform = settings.get("uniform_prior", False)
    pooling = settings.get("pooling", "arithmetic")
    copies = speed_factors(settings.get("speed_copies", ()), "functionals_fusion speed_copies")
    score = settings.get("score_speed_copies", False)
    if (not 0.0 <= weight < 1.0 or C <= 0 or not isinstance(uniform, bool) or pooling not in POOLINGS
            or not isinstance(score, bool) or (score and not copies)):
        raise ConfigError(f"functionals_fusion {settings!r}: weight in [0, 1) (the network's share), C > 0, "
                          f"uniform_prior True or False, pooling one of {', '.join(POOLINGS)}, speed_copies "
                          "a list of speed factors between 0.5 and 2 other than 1, score_speed_copies True "
                          "(only with speed_copies) or False")
    return {"weight": weight, "C": C, "uniform_prior": uniform, "pooling": pooling, "speed_copies": copies,
            "score_speed_copies": score}
