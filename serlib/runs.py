"""Run folders: everything needed to reuse a trained model, in one folder.

A run folder holds::

    model.keras     the trained Keras model (best validation epoch)
    run.json        model name, report, feature spec and pipeline (every view of a clip the
                    model reads, :mod:`serlib.pipeline`), labels, normalisation
                    statistics, split (actors or protocol), seed, epochs run,
                    training seconds, serlib/keras versions, data source
    history.json    per-epoch loss/accuracy (training and validation) and learning rate
    metrics.json    test-split scores (accuracy, uar, f1_macro, n, labels, confusion);
                    null for a final model trained on every speaker (no test split)
    functionals.npz only for models with ``functionals_fusion``: the regression on clip
                    functionals fused with the network (:mod:`serlib.fusion`)

``run.json`` also records ``versions`` (serlib, Keras, its backend and the backend's
version, NumPy, Python) and ``sha256``, the SHA-256 of every other file of the folder.

:func:`save_run` writes the files into a temporary sibling folder ``.NAME.HOST-PID-XXXX.partial``
and renames it into place (:func:`serlib.storage.atomic_folder`; every file inside is written
atomically too), so an interrupted run never leaves a half-written run folder
behind; a partial folder whose process was killed (or older than :data:`STALE_SECONDS`) is
removed by the next :func:`save_run` or :func:`load_run` beside it.

:func:`load_run` reads a run back and treats the folder as data, never as code: it checks
each file against its recorded SHA-256 before parsing it, loads the Keras model with
``safe_mode=True`` (no Lambda layers or other Python code), reads arrays with
``allow_pickle=False``, checks that ``labels`` matches the model's (and the regression's)
number of classes, and warns once (:class:`RunWarning`) when the run was written by
another serlib or Keras major.minor version. Every problem is a one-line
:class:`~serlib.errors.SerlibError` naming the file. Explained in the chapter "Beyond the reports".
"""
from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import fusion
from .errors import SerlibError
from .features import FeatureSpec
from .pipeline import Pipeline
from .storage import atomic_folder, file_sha256, remove_stale, write_json  # noqa: F401  (file_sha256, write_json: part of this module's API)

RUN_FILES = ("model.keras", "run.json", "history.json", "metrics.json")
MODEL_FILE, INFO_FILE, HISTORY_FILE, METRICS_FILE = RUN_FILES
FUSION_FILE = "functionals.npz"   # serlib.fusion.FILE

#: The largest a run's JSON files (run.json, history, metrics) and its regression's arrays may
#: be, read or unpacked: far above what serlib writes, far below what could exhaust memory.
MAX_RECORD_BYTES = 64 * 2**20
#: A partial folder older than this (seconds since its last change) is stale whoever owns it.
STALE_SECONDS = 30 * 60


class RunWarning(UserWarning):
    """A run folder that loads but may not behave as when it was saved (another serlib or Keras
    version, or no record of the versions). One line naming the run; issued once per run folder."""


_WARNED: set = set()


@dataclass
class Run:
    """A trained model with what it needs at prediction time. Explained in "Beyond the reports".

    ``dir`` is the run folder (``None`` for a run not saved), ``model`` the Keras model,
    ``history`` the per-epoch curves, ``metrics`` the test-split report (None for a final
    model trained on every speaker, which has no test split), ``labels`` the
    class names in output order, ``spec`` the :class:`~serlib.features.FeatureSpec`,
    ``normalization`` the training-set ``{"mean", "std"}`` (or ``None``) and ``info`` the
    whole ``run.json`` record.
    """

    dir: Path | None
    model: object
    history: dict
    metrics: dict | None
    labels: list
    spec: FeatureSpec
    normalization: dict | None = None
    info: dict = field(default_factory=dict)
    #: The regression on clip functionals fused with the network (:mod:`serlib.fusion`), or None.
    fusion: dict | None = None
    #: The network's own class probabilities for the test clips, before any fusion (a run
    #: from :func:`serlib.training.fit_split` only; not saved in the run folder).
    network_test_proba: np.ndarray | None = field(default=None, repr=False)
    #: The class probabilities ``metrics`` scored for the test clips (fused where the run fuses);
    #: a run from :func:`serlib.training.fit_split` only, not saved in the run folder.
    test_proba: np.ndarray | None = field(default=None, repr=False)

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
        return fusion.speeds(self.fusion)

    @property
    def pipeline(self) -> Pipeline:
        """How this run turns a clip into what it reads (:class:`~serlib.pipeline.Pipeline`):
        the one ``run.json`` stores, or for an older run its feature spec and the speeds of its
        fusion regression. ``serlib predict`` and ``serlib evaluate`` describe clips with it.
        Explained in the chapter "Beyond the reports"."""
        stored = self.info.get("pipeline")
        if isinstance(stored, dict):
            return Pipeline.from_dict(stored, source=str(self.dir / INFO_FILE) if self.dir else "run.json")
        return Pipeline(self.spec, functional_speeds=self.functional_speeds if self.fusion is not None else ())

    @property
    def prediction_pipeline(self) -> Pipeline:
        """The views this run reads to predict: the network's features, and for a fused run the
        clip statistics at :attr:`functional_speeds` (training-only views left out)."""
        return self.pipeline.replace(feature_speeds=(1.0,),
                                     functional_speeds=self.functional_speeds if self.fusion is not None else ())

    def inputs(self, views) -> tuple:
        """``(features, functionals)`` for :meth:`predict_proba` from the views
        :meth:`Pipeline.transform` (or ``describe_signal``) gave: the network's features and, for a
        fused run, the statistics at :attr:`functional_speeds` (None otherwise)."""
        F = views.functionals_at(self.functional_speeds) if self.fusion is not None else None
        return views.features[1.0], F

    def predict_proba(self, features: np.ndarray, batch_size: int = 64, *, functionals=None) -> np.ndarray:
        """Class probabilities ``(n, n_labels)`` for a batch of extracted features.

        A run that fuses its network with a regression on clip functionals (``fusion``)
        also needs ``functionals``: :func:`serlib.functionals.functionals` of the same clips,
        with ``speeds=self.functional_speeds`` when the regression scores speed copies.
        """
        proba = probabilities(self.model, self.prepare(features), batch_size=batch_size)
        if self.fusion is None:
            return proba
        if functionals is None:
            raise SerlibError("this run fuses its network with a regression on clip functionals: pass "
                              "functionals=serlib.functionals.functionals(paths, speeds=run.functional_speeds) "
                              "of the same clips")
        return fusion.fuse(self.fusion, proba, functionals)


def probabilities(model, X: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Class probabilities ``(n, n_classes)`` of a Keras model, also for one-unit sigmoid outputs
    (whose one column ``p`` becomes ``1 - p, p``). Explained in the chapter "Beyond the reports".
    """
    if len(X) == 0:
        return np.zeros((0, _output_classes(model) or 2), dtype=np.float64)
    p = np.asarray(model.predict(X, batch_size=batch_size, verbose=0), dtype=np.float64)
    if p.ndim == 2 and p.shape[1] == 1:
        p = np.concatenate([1.0 - p, p], axis=1)
    return p


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


def save_run(run: Run, out_dir) -> Path:
    """Write ``run`` into the new folder ``out_dir`` atomically; returns the folder.

    ``run.json`` gets the ``versions`` that wrote it and the ``sha256`` of every other file.
    Stale partial folders of killed saves beside ``out_dir`` are removed first
    (:func:`remove_stale_partials`). Explained in the chapter "Beyond the reports".
    """
    out = check_out_dir(out_dir)
    remove_stale_partials(out.parent)
    with atomic_folder(out) as tmp:     # .NAME.HOST-PID-TOKEN.partial, renamed to NAME when complete
        run.model.save(tmp / MODEL_FILE)
        write_json(tmp / HISTORY_FILE, run.history)
        write_json(tmp / METRICS_FILE, run.metrics)
        if run.fusion is not None:
            fusion.save(run.fusion, tmp / FUSION_FILE)
        info = dict(run.info)
        info["labels"] = list(run.labels)
        info["feature_spec"] = run.spec.to_dict()
        info["pipeline"] = run.pipeline.to_dict()
        info["normalization"] = run.normalization
        info["versions"] = versions()
        info["sha256"] = {p.name: file_sha256(p) for p in sorted(tmp.iterdir()) if p.name != INFO_FILE}
        write_json(tmp / INFO_FILE, info)
    run.dir = out
    run.info = info
    return out


def versions() -> dict:
    """The versions a run saved now records: serlib, Keras, its backend (and the backend's
    version), NumPy and Python. Explained in the chapter "Beyond the reports"."""
    import platform
    import sys

    import keras

    from . import __version__

    backend = keras.backend.backend()
    module = sys.modules.get({"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend, backend))
    return {"serlib": __version__, "keras": keras.__version__, "backend": backend,
            "backend_version": getattr(module, "__version__", None), "numpy": np.__version__,
            "python": platform.python_version()}


# ----------------------------------------------------------------------------- stale partials
def _is_partial_run(folder: Path) -> bool:
    """Only what :func:`save_run` writes: run files and :func:`write_json`'s ``*.tmp`` files."""
    allowed = set(RUN_FILES) | {FUSION_FILE}
    try:
        return all(p.is_file() and not p.is_symlink() and (p.name in allowed or p.name.endswith(".tmp"))
                   for p in folder.iterdir())
    except OSError:
        return False


def remove_stale_partials(folder, *, max_age: float = STALE_SECONDS) -> list:
    """Remove the hidden ``.NAME.*.partial`` folders of saves that were killed (SIGKILL, power
    loss) in ``folder``: those whose process on this machine is gone, or unchanged for
    ``max_age`` seconds (:func:`serlib.storage.remove_stale`). A folder holding anything
    :func:`save_run` does not write is kept. Returns the folders removed; never raises.
    Explained in the chapter "Beyond the reports".
    """
    return remove_stale(folder, max_age=max_age, pattern=".*.partial",
                        keep=lambda path: not path.is_dir() or not _is_partial_run(path))


def _too_large(path: Path, size: int) -> SerlibError:
    return SerlibError(f"{path}: {size:,} bytes, more than a run file serlib writes can hold "
                       f"({MAX_RECORD_BYTES:,}); the run folder is damaged or not serlib's, retrain it")


def _read_json(path: Path, what: str):
    try:
        size = path.stat().st_size
        if size > MAX_RECORD_BYTES:
            raise _too_large(path, size)
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise SerlibError(f"{path}: cannot read the run's {what} ({error}); the run folder is damaged, "
                          "retrain it") from None


def load_run(run_dir, *, compile: bool = False) -> Run:
    """Load a run folder written by :func:`save_run` (:func:`serlib.training.train` saves one).

    Raises :class:`~serlib.errors.SerlibError` (one line naming the file) when the folder is
    missing or is not a run, when a file does not match the SHA-256 that ``run.json``
    records, when an array file holds pickled objects or the model holds Python code, or
    when ``labels`` does not match the model's number of classes. Warns once
    (:class:`RunWarning`) for a run written by another serlib or Keras major.minor version.
    Explained in the chapter "Beyond the reports".
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
    remove_stale_partials(path.parent)
    info = _read_json(path / INFO_FILE, "description")
    if not isinstance(info, dict) or "labels" not in info or "feature_spec" not in info:
        raise SerlibError(f"{path / INFO_FILE}: not a serlib run description (no labels/feature_spec); "
                          "pass the --out folder of `serlib train`")
    labels = info["labels"]
    if (not isinstance(labels, list) or not labels or not all(isinstance(label, str) for label in labels)
            or len(set(labels)) != len(labels)):
        raise SerlibError(f"{path / INFO_FILE}: labels must be a list of distinct names, not {str(labels)[:80]}; "
                          "the run folder is damaged, retrain it")
    verify_checksums(path, info)
    check_versions(path, info)
    try:
        spec = FeatureSpec.from_dict(info["feature_spec"])
    except (TypeError, ValueError) as error:
        raise SerlibError(f"{path / INFO_FILE}: unusable feature spec ({error}); retrain the run") from None
    model = _load_keras_model(path / MODEL_FILE, compile=compile)
    history = _read_json(path / HISTORY_FILE, "history") or {}
    metrics = _read_json(path / METRICS_FILE, "metrics")
    if metrics is None and not (path / METRICS_FILE).is_file():
        metrics = {}           # a run saved without scores; None (the file says null) is a final model
    fused = None
    if info.get("functionals_fusion"):
        if not (path / FUSION_FILE).is_file():
            raise SerlibError(f"{path}: the run fuses its network with a regression on clip functionals but "
                              f"{FUSION_FILE} is missing; the run folder is damaged, retrain it")
        check_arrays(path / FUSION_FILE)
        fused = fusion.load(path / FUSION_FILE)
    _check_classes(path, labels, model, fused)
    run = Run(dir=path, model=model, history=history, metrics=metrics, labels=list(labels),
              spec=spec, normalization=info.get("normalization"), info=info, fusion=fused)
    pipeline = run.pipeline          # refuses clip statistics computed by another serlib, in one line
    if pipeline.features != spec:
        raise SerlibError(f"{path / INFO_FILE}: its pipeline and its feature spec disagree; the run folder is "
                          "damaged, retrain it")
    return run


def verify_checksums(path, info: dict) -> bool:
    """Check every file ``info["sha256"]`` lists against its SHA-256; False for a run saved
    before checksums were recorded. A missing or changed file is a one-line
    :class:`~serlib.errors.SerlibError` naming it. Explained in the chapter "Beyond the reports".
    """
    path = Path(path)
    sums = info.get("sha256")
    if sums is None:
        return False
    if not isinstance(sums, dict) or MODEL_FILE not in sums:
        raise SerlibError(f"{path / INFO_FILE}: its sha256 record is not a file -> checksum table with "
                          f"{MODEL_FILE}; the run folder is damaged, retrain it")
    for name, digest in sums.items():
        if name in ("", ".", "..", INFO_FILE) or Path(name).name != name or "\\" in name:
            raise SerlibError(f"{path / INFO_FILE}: lists a checksum for {name[:80]!r}, which is not a file of "
                              "the run folder; the run folder is damaged, retrain it")
        target = path / name
        if not target.is_file():
            raise SerlibError(f"{target}: missing, though run.json records its checksum; the run folder is "
                              "damaged, restore the file or retrain the run")
        if file_sha256(target) != str(digest).lower():
            raise SerlibError(f"{target}: its SHA-256 does not match the one run.json records (changed or "
                              "damaged since the run was saved); restore the file or retrain the run")
    return True


def _major_minor(version) -> tuple | None:
    match = re.match(r"\s*(\d+)\.(\d+)", str(version or ""))
    return (int(match[1]), int(match[2])) if match else None


def check_versions(path, info: dict) -> str | None:
    """Warn once per run folder (:class:`RunWarning`, one line naming it) when the serlib or
    Keras major.minor version that saved the run differs from this one, or when the run
    records no versions at all (it still loads). Returns the message, or None.
    Explained in the chapter "Beyond the reports".
    """
    record = info.get("versions") if isinstance(info.get("versions"), dict) else {}
    saved = {"serlib": record.get("serlib") or info.get("serlib_version"),
             "keras": record.get("keras") or info.get("keras_version")}
    if not any(saved.values()):
        message = (f"{path}: the run records no serlib/Keras versions (saved by an older serlib); "
                   "it is loaded as is, retrain it if its predictions look wrong")
    else:
        current = versions()
        if all(_major_minor(saved[k]) == _major_minor(current[k]) for k in saved):
            return None
        message = (f"{path}: saved by serlib {saved['serlib'] or '?'} with Keras {saved['keras'] or '?'}, this "
                   f"is serlib {current['serlib']} with Keras {current['keras']}; it may load or predict "
                   "differently, retrain it with this version if results look wrong")
    key = str(Path(path).resolve())
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(message, RunWarning, stacklevel=3)
    return message


def check_arrays(path) -> None:
    """Read every array of an ``.npz``/``.npy`` file with ``allow_pickle=False``; a file that
    holds pickled Python objects (or is not a NumPy file) is a one-line
    :class:`~serlib.errors.SerlibError` naming it, never unpickled. Explained in the chapter
    "Beyond the reports".
    """
    import zipfile

    try:
        if zipfile.is_zipfile(path):        # an .npz: bound what its members unpack to, before reading any
            with zipfile.ZipFile(path) as archive:
                unpacked = sum(member.file_size for member in archive.infolist())
            if unpacked > MAX_RECORD_BYTES:
                raise _too_large(path, unpacked)
        elif Path(path).stat().st_size > MAX_RECORD_BYTES:
            raise _too_large(path, Path(path).stat().st_size)
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                for key in loaded.files:
                    loaded[key]
    except ValueError as error:
        if "pickle" in str(error).lower():
            raise SerlibError(f"{path}: holds pickled Python objects (or is not a NumPy file), which serlib never "
                              "loads since they can run code; delete it and retrain the run") from None
        raise SerlibError(f"{path}: cannot read its arrays ({_first_line(error)}); the run folder is damaged, "
                          "retrain it") from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise SerlibError(f"{path}: cannot read its arrays ({_first_line(error)}); the run folder is damaged, "
                          "retrain it") from None


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]


def _output_classes(model) -> int | None:
    """Classes the model scores: its last output size (a one-unit sigmoid scores two)."""
    try:
        shape = model.output_shape
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(shape, list):
        shape = shape[0]
    size = shape[-1] if shape else None
    if size is None:
        return None
    return 2 if int(size) == 1 else int(size)


def _check_classes(path: Path, labels: list, model, fused: dict | None) -> None:
    n_model = _output_classes(model)
    if n_model is not None and n_model != len(labels):
        raise SerlibError(f"{path}: run.json lists {len(labels)} labels but the model outputs {n_model} classes; "
                          "the run folder is damaged or mixes two runs, retrain it")
    if fused is not None:
        sizes = {np.shape(fused["coef"])[0], np.size(fused["intercept"])}
        if "prior" in fused:
            sizes.add(np.size(fused["prior"]))
        if sizes != {len(labels)}:
            raise SerlibError(f"{path}: run.json lists {len(labels)} labels but its functionals regression "
                              f"({FUSION_FILE}) has {', '.join(map(str, sorted(sizes)))} classes; the run folder "
                              "is damaged or mixes two runs, retrain it")


def _load_keras_model(path: Path, *, compile: bool):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from . import models  # noqa: F401  (lazy, it imports Keras: registers serlib's custom layers before loading)
    try:
        return keras.models.load_model(path, compile=compile, safe_mode=True)   # never runs code from the file
    except Exception as error:
        reason = _first_line(error) if str(error).strip() else type(error).__name__
        if "safe_mode" in reason or "unsafe" in reason.lower() or "lambda" in reason.lower():
            raise SerlibError(f"{path}: the model holds Python code (e.g. a Lambda layer), which serlib never runs; "
                              "delete the run and retrain it with serlib") from None
        raise SerlibError(f"{path}: cannot load the model ({reason}); retrain the run "
                          "with this serlib version") from None
