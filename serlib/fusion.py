"""Late fusion of a network with a linear model on utterance functionals.

A model entry with ``functionals_fusion={"weight": w, "C": c}`` is trained as usual; then
:func:`fit_linear` fits a standardised logistic regression (inverse L2 strength ``c``) on
the :mod:`serlib.functionals` vectors of the same training clips, and every prediction is
``w * network + (1 - w) * linear`` (:func:`fuse`).

With ``"pooling": "geometric"`` the two are pooled in the log domain instead,
``network ** w * linear ** (1 - w)`` renormalised (a weighted geometric mean, or product of
experts): a class gets a high fused probability only when neither model finds it unlikely,
and a model that is confidently wrong is not outvoted by a flat average. Measured in
``benchmarks/fusion.py``; the recommended model uses it.

With ``"uniform_prior": True`` the fused probabilities are then divided by each class's
share of the training clips and renormalised: they become the probabilities under equal
class priors. RAVDESS has half as many neutral clips as clips of each other emotion (there
is no strong neutral), so a model trained on it learns that neutral is rare; dividing by
the prior is the decision rule that maximises unweighted average recall, and a more
sensible assumption for a recording of unknown origin. It has no setting to tune.

With ``"speed_copies": (0.9, 1.1)`` the regression also learns from the functionals of
speed-perturbed copies of every training clip (:func:`serlib.augment.speed_perturb`:
pitch, formants and tempo moved together, as if other speakers had said them), so it
depends less on the voices of the training actors. ``benchmarks/fusion.py`` measures the gain.

With ``"score_speed_copies": True`` the regression also *scores* each clip at those speeds:
it describes the clip as it is and played at each factor, and averages its log
probabilities over the versions (:func:`speeds`, :func:`linear_log_proba` of an
``(n, versions, d)`` array). Each clip is still classified on its own, from nothing but
itself. ``benchmarks/results/recommended_tuning.json`` records what it adds.

The regression is stored beside the Keras model in the run folder (``functionals.npz``) as
plain arrays, so prediction needs NumPy only. Explained in the chapter "A second opinion".
"""
from __future__ import annotations

import numpy as np

from .errors import ConfigError, SerlibError
from .fusion_settings import KEYS, POOLINGS, check_settings  # noqa: F401  (the settings this module uses)
from .storage import atomic_write

FILE = "functionals.npz"


def fit_linear(F: np.ndarray, y: np.ndarray, n_classes: int, *, C: float, weight: float,
               uniform_prior: bool = False, pooling: str = "arithmetic", speed_copies=(),
               score_speed_copies: bool = False) -> dict:
    """Standardise ``F`` and fit a multinomial logistic regression; returns its arrays.

    Classes absent from ``y`` get probability 0. ``prior`` keeps each class's share of
    ``y`` for ``uniform_prior``; ``weight``, ``uniform_prior`` and ``pooling`` are kept for
    :func:`fuse`. ``speed_copies`` is only recorded: the caller stacks the copies' rows into
    ``F`` and ``y`` (as :func:`serlib.training.fit_split` does). ``score_speed_copies`` is
    recorded for :func:`speeds`. Explained in the chapter "A second opinion".
    """
    if pooling not in POOLINGS:
        raise ConfigError(f"pooling {pooling!r}: choose one of {', '.join(POOLINGS)}")
    from sklearn.linear_model import LogisticRegression

    F = np.asarray(F, dtype=np.float64)
    mean, scale = F.mean(axis=0), F.std(axis=0)
    scale = np.where(scale < 1e-8, 1.0, scale)
    model = LogisticRegression(C=C, max_iter=5000).fit((F - mean) / scale, np.asarray(y, dtype=int))
    coef = np.zeros((n_classes, F.shape[1]))
    intercept = np.full(n_classes, -np.inf)
    if len(model.classes_) == 2:  # sklearn keeps one row for two classes
        coef[model.classes_[1]], intercept[model.classes_[1]] = model.coef_[0], model.intercept_[0]
        coef[model.classes_[0]], intercept[model.classes_[0]] = 0.0, 0.0
    else:
        coef[model.classes_], intercept[model.classes_] = model.coef_, model.intercept_
    prior = np.bincount(np.asarray(y, dtype=int), minlength=n_classes) / max(len(y), 1)
    return {"mean": mean, "scale": scale, "coef": coef, "intercept": intercept,
            "weight": float(weight), "C": float(C), "prior": prior, "uniform_prior": bool(uniform_prior),
            "pooling": pooling, "speed_copies": np.asarray(speed_copies, dtype=np.float64),
            "score_speed_copies": bool(score_speed_copies and len(speed_copies))}


def speeds(params: dict | None) -> tuple:
    """The speeds at which a clip is described for the regression ``params``: ``(1.0,)``, or
    ``(1.0, *speed_copies)`` when it scores its speed copies too (``None``: no regression).

    :func:`serlib.functionals.functionals` and :func:`serlib.functionals.speed_functionals`
    take it as ``speeds=``. Explained in the chapter "A second opinion".
    """
    if params is None or not params.get("score_speed_copies"):
        return (1.0,)
    return (1.0, *(float(f) for f in params["speed_copies"]))


def linear_log_proba(params: dict, F: np.ndarray) -> np.ndarray:
    """Log class probabilities of the stored regression for functionals ``F`` ``(n, d)``.

    ``F`` of shape ``(n, versions, d)`` (a clip described at several :func:`speeds`) gets
    the average of each version's log probabilities, renormalised. Classes absent from
    training get ``-inf``. Explained in the chapter "A second opinion".
    """
    F = np.asarray(F, dtype=np.float64)
    if F.ndim == 3:
        # every version has -inf for the same absent classes, so the mean is never NaN
        mean = np.mean([linear_log_proba(params, F[:, k]) for k in range(F.shape[1])], axis=0)
        top = mean.max(axis=1, keepdims=True)
        return mean - top - np.log(np.exp(mean - top).sum(axis=1, keepdims=True))
    F = np.atleast_2d(F)
    if F.shape[1] != len(params["mean"]):
        raise SerlibError(f"functionals have {F.shape[1]} values per clip, the run's regression expects "
                          f"{len(params['mean'])}; retrain the run with this serlib version")
    logits = ((F - params["mean"]) / params["scale"]) @ params["coef"].T + params["intercept"]
    logits -= logits.max(axis=1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def linear_proba(params: dict, F: np.ndarray) -> np.ndarray:
    """Class probabilities of the stored regression for functionals ``F`` ``(n, d)``.

    Explained in the chapter "A second opinion".
    """
    return np.exp(linear_log_proba(params, F))


def fuse(params: dict, network: np.ndarray, F: np.ndarray) -> np.ndarray:
    """The fused class probabilities of the network's ``network`` and the regression's.

    ``weight * network + (1 - weight) * linear`` by default; with ``pooling="geometric"``
    :func:`geometric_pool` of the two. With ``uniform_prior`` they are then divided by the
    training prior and renormalised (a class absent from training keeps probability 0).
    Explained in the chapter "A second opinion".
    """
    wanted = len(speeds(params))
    shape = np.shape(F)
    if wanted > 1 and (len(shape) != 3 or shape[1] != wanted):
        raise SerlibError(f"this regression scores each clip at speeds {', '.join(f'{v:g}' for v in speeds(params))}: "
                          f"pass functionals of shape (clips, {wanted}, values), e.g. "
                          "serlib.functionals.functionals(paths, speeds=run.functional_speeds)")
    w = float(params["weight"])
    network = np.asarray(network, dtype=np.float64)
    if params.get("pooling", "arithmetic") == "geometric":
        p = geometric_pool(network, linear_log_proba(params, F), w)
    else:
        p = w * network + (1 - w) * linear_proba(params, F)
    if params.get("uniform_prior"):
        p = uniform_prior(p, params["prior"])
    return p.astype(np.float32)


def geometric_pool(network: np.ndarray, linear_log: np.ndarray, weight: float) -> np.ndarray:
    """``network ** weight * exp(linear_log) ** (1 - weight)``, renormalised per row.

    ``linear_log`` holds log probabilities (``-inf`` for impossible classes). The network's
    probabilities are floored at 1e-30 so that one that underflowed to 0 in float32 does
    not veto its class. Explained in the chapter "A second opinion".
    """
    w = float(weight)
    log_p = w * np.log(np.maximum(np.asarray(network, dtype=np.float64), 1e-30)) + (1 - w) * linear_log
    log_p -= log_p.max(axis=1, keepdims=True)
    p = np.exp(log_p)
    return p / p.sum(axis=1, keepdims=True)


def uniform_prior(proba: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Class probabilities ``proba`` re-weighted from the training ``prior`` to equal priors.

    Each column is divided by its class's share of the training clips and each row is
    renormalised; classes with prior 0 get 0. Explained in the chapter "Beyond the reports".
    """
    prior = np.asarray(prior, dtype=np.float64)
    p = np.where(prior > 0, np.asarray(proba, dtype=np.float64) / np.where(prior > 0, prior, 1.0), 0.0)
    total = p.sum(axis=1, keepdims=True)
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / p.shape[1])


def save(params: dict, path) -> None:
    """Write the regression's arrays to ``path`` (``.npz``), atomically (:mod:`serlib.storage`).

    Explained in the chapter "A second opinion".
    """
    arrays = {k: np.asarray(v) for k, v in params.items()}
    atomic_write(path, lambda fh: np.savez(fh, **arrays))


def load(path) -> dict:
    """Read what :func:`save` wrote. Explained in the chapter "A second opinion"."""
    try:
        with np.load(path, allow_pickle=False) as data:   # never unpickled (serlib.runs.check_arrays)
            params = {k: data[k] for k in data.files}
    except (OSError, ValueError) as error:
        raise SerlibError(f"{path}: cannot read the run's functionals regression ({error}); "
                          "the run folder is damaged, retrain it") from None
    missing = {"mean", "scale", "coef", "intercept", "weight"} - set(params)
    if missing:
        raise SerlibError(f"{path}: lacks {', '.join(sorted(missing))}; the run folder is damaged, retrain it")
    params["weight"] = float(params["weight"])
    params["uniform_prior"] = bool(params.get("uniform_prior", False))   # runs saved before it existed: off
    params["pooling"] = str(params.get("pooling", "arithmetic"))          # likewise
    params["speed_copies"] = np.asarray(params.get("speed_copies", ()), dtype=np.float64)   # likewise: none
    params["score_speed_copies"] = bool(params.get("score_speed_copies", False))             # likewise: off
    if params["pooling"] not in POOLINGS:
        raise SerlibError(f"{path}: unknown pooling {params['pooling']!r}; the run folder is damaged, retrain it")
    if params["uniform_prior"] and "prior" not in params:
        raise SerlibError(f"{path}: uses uniform_prior but lacks the training prior; the run folder is damaged, "
                          "retrain it")
    return params
