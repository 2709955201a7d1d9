"""Run folders: everything needed to reuse a trained model, in one folder.

A run folder holds::

    model.keras     the trained Keras model (best validation epoch)
    run.json        model name, report, feature spec, labels, normalisation
                    statistics, split (actors or protocol), seed, epochs run,
                    training seconds, serlib/keras versions, data source
    history.json    per-epoch loss/accuracy (training and validation) and learning rate
    metrics.json    test-split scores (accuracy, uar, f1_macro, n, labels, confusion)
    functionals.npz only for models with ``functionals_fusion``: the regression on clip
                    functionals fused with the network (:mod:`serlib.fusion`)

:func:`save_run` writes the files into a temporary sibling folder and renames it into
place, so an interrupted run never leaves a half-written run folder behind.
:func:`load_run` reads one back. Explained in the chapter "Beyond the reports".
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import SerlibError
from .features import FeatureSpec

RUN_FILES = ("model.keras", "run.json", "history.json", "metrics.json")
MODEL_FILE, INFO_FILE, HISTORY_FILE, METRICS_FILE = RUN_FILES


@dataclass
class Run:
    """A trained model with what it needs at prediction time. Explained in "Beyond the reports".

    ``dir`` is the run folder (``None`` for a run not saved), ``model`` the Keras model,
    ``history`` the per-epoch curves, ``metrics`` the test-split report, ``labels`` the
    class names in output order, ``spec`` the :class:`~serlib.features.FeatureSpec`,
    ``normalization`` the training-set ``{"mean", "std"}`` (or ``None``) and ``info`` the
    whole ``run.json`` record.
    """

    dir: Path | None
    model: object
    history: dict
    metrics: dict
    labels: list
    spec: FeatureSpec
    normalization: dict | None = None
    info: dict = field(default_factory=dict)
    #: The regression on clip functionals fused with the network (:mod:`serlib.fusion`), or None.
    fusion: dict | None = None
    #: The network's own class probabilities for the test clips, before any fusion (a run
    #: from :func:`serlib.training.fit_split` only; not saved in the run folder).
    network_test_proba: np.ndarray | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """The registered model name this run trained."""
        return self.info.get("model", "")

    def prepare(self, features: np.ndarray) -> np.ndarray:
        """Apply the run's training-set normalisation to a batch of features."""
        return apply_normalization(features, self.normalization)

    @property
    def functional_speeds(self) -> tuple:
        """The speeds at which :meth:`predict_proba` wants each clip's functionals described:
        ``(1.0,)``, or ``(1.0, 0.9, 1.1)`` for a regression that scores speed copies too
        (:func:`serlib.fusion.speeds`). Explained in the chapter "Beyond the reports"."""
        from .fusion import speeds

        return speeds(self.fusion)

    def predict_proba(self, features: np.ndarray, batch_size: int = 64, *, functionals=None) -> np.ndarray:
        """Class probabilities ``(n, n_labels)`` for a batch of extracted features.

        A run that fuses its network with a regression on clip functionals (``fusion``)
        also needs ``functionals``: :func:`serlib.functionals.functionals` of the same clips,
        with ``speeds=self.functional_speeds`` when the regression scores speed copies.
        """
        from .training import probabilities

        proba = probabilities(self.model, self.prepare(features), batch_size=batch_size)
        if self.fusion is None:
            return proba
        if functionals is None:
            raise SerlibError("this run fuses its network with a regression on clip functionals: pass "
                              "functionals=serlib.functionals.functionals(paths, speeds=run.functional_speeds) "
                              "of the same clips")
        from .fusion import fuse

        return fuse(self.fusion, proba, functionals)


# ----------------------------------------------------------------------------- normalisation
def normalization_stats(x: np.ndarray) -> dict:
    """Mean and standard deviation per feature (last axis) over clips and frames.

    Computed on the TRAINING clips only; the test clips are scaled with these numbers,
    never with their own. Explained in the chapter "Evaluating honestly".
    """
    x = np.asarray(x, dtype=np.float64)
    axes = tuple(range(x.ndim - 1)) if x.ndim > 1 else (0,)
    mean = x.mean(axis=axes)
    std = x.std(axis=axes)
    std = np.where(std < 1e-8, 1.0, std)
    return {"mean": np.atleast_1d(mean).tolist(), "std": np.atleast_1d(std).tolist()}


def apply_normalization(x: np.ndarray, stats: dict | None) -> np.ndarray:
    """Scale features with stored training-set statistics (identity when ``stats`` is None).

    Explained in the chapter "Evaluating honestly".
    """
    x = np.asarray(x, dtype=np.float32)
    if not stats:
        return x
    mean = np.asarray(stats["mean"], dtype=np.float32)
    std = np.asarray(stats["std"], dtype=np.float32)
    if x.ndim == 1 and mean.size > 1:  # a batch of scalars cannot use per-feature stats
        raise SerlibError("features and normalisation statistics do not match; retrain the run")
    return ((x - mean) / std).astype(np.float32)


# ----------------------------------------------------------------------------- folders
def is_run_dir(path) -> bool:
    """True when ``path`` is a folder holding a run (``run.json`` and ``model.keras``).

    Explained in the chapter "Beyond the reports".
    """
    path = Path(path)
    return (path / INFO_FILE).is_file() and (path / MODEL_FILE).is_file()


def check_out_dir(out_dir) -> Path:
    """Refuse an output folder that exists and is not empty (nothing is ever overwritten).

    Returns the folder as a Path. Explained in the chapter "Beyond the reports".
    """
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise SerlibError(f"{out}: exists and is a file; choose a new folder name for the run")
    if out.is_dir() and any(out.iterdir()):
        raise SerlibError(f"{out}: folder exists and is not empty; choose a new --out folder "
                          "or delete this one first")
    if not out.parent.exists():
        raise SerlibError(f"{out.parent}: no such folder to create the run in; create it first")
    return out


def _to_jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _to_jsonable(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path, obj) -> None:
    """Write JSON atomically (temporary file, then rename); NumPy values become plain numbers.

    Explained in the chapter "Beyond the reports".
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(_to_jsonable(obj), fh, indent=1)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_run(run: Run, out_dir) -> Path:
    """Write ``run`` into the new folder ``out_dir`` atomically; returns the folder.

    Explained in the chapter "Beyond the reports".
    """
    out = check_out_dir(out_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        run.model.save(tmp / MODEL_FILE)
        info = dict(run.info)
        info["labels"] = list(run.labels)
        info["feature_spec"] = run.spec.to_dict()
        info["normalization"] = run.normalization
        write_json(tmp / INFO_FILE, info)
        write_json(tmp / HISTORY_FILE, run.history)
        write_json(tmp / METRICS_FILE, run.metrics)
        if run.fusion is not None:
            from . import fusion

            fusion.save(run.fusion, tmp / fusion.FILE)
        if out.is_dir():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    run.dir = out
    run.info = info
    return out


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise SerlibError(f"{path}: cannot read the run's {what} ({error}); the run folder is damaged, "
                          "retrain it") from None


def load_run(run_dir, *, compile: bool = False) -> Run:
    """Load a run folder written by :func:`serlib.training.train`.

    Raises :class:`~serlib.errors.SerlibError` (one line) when the folder is missing or is
    not a run. Explained in the chapter "Beyond the reports".
    """
    path = Path(run_dir).expanduser()
    if not path.exists():
        raise SerlibError(f"{path}: no such run folder; pass the --out folder of `serlib train`")
    if not path.is_dir():
        raise SerlibError(f"{path}: is a file, not a run folder; pass the --out folder of `serlib train`")
    if not is_run_dir(path):
        missing = [name for name in (INFO_FILE, MODEL_FILE) if not (path / name).is_file()]
        raise SerlibError(f"{path}: not a serlib run folder (missing {', '.join(missing)}); "
                          "pass the --out folder of `serlib train`")
    info = _read_json(path / INFO_FILE, "description")
    if not isinstance(info, dict) or "labels" not in info or "feature_spec" not in info:
        raise SerlibError(f"{path / INFO_FILE}: not a serlib run description (no labels/feature_spec); "
                          "pass the --out folder of `serlib train`")
    try:
        spec = FeatureSpec.from_dict(info["feature_spec"])
    except (TypeError, ValueError) as error:
        raise SerlibError(f"{path / INFO_FILE}: unusable feature spec ({error}); retrain the run") from None
    model = _load_keras_model(path / MODEL_FILE, compile=compile)
    history = _read_json(path / HISTORY_FILE, "history") or {}
    metrics = _read_json(path / METRICS_FILE, "metrics") or {}
    fused = None
    if info.get("functionals_fusion"):
        from . import fusion

        if not (path / fusion.FILE).is_file():
            raise SerlibError(f"{path}: the run fuses its network with a regression on clip functionals but "
                              f"{fusion.FILE} is missing; the run folder is damaged, retrain it")
        fused = fusion.load(path / fusion.FILE)
    return Run(dir=path, model=model, history=history, metrics=metrics, labels=list(info["labels"]),
               spec=spec, normalization=info.get("normalization"), info=info, fusion=fused)


def _load_keras_model(path: Path, *, compile: bool):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    try:  # registering serlib's custom layers (if any) before deserialising
        import serlib.models  # noqa: F401
    except ImportError:
        pass
    try:
        return keras.models.load_model(path, compile=compile)
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SerlibError(f"{path}: cannot load the model ({reason[:200]}); retrain the run "
                          "with this serlib version") from None
