"""A pretrained voice encoder: what a network trained on thousands of other speakers hears.

Every other feature in serlib is computed from first principles or learned from the
twenty RAVDESS actors alone. This module borrows ears trained elsewhere: the three-layer
LSTM (256 units each, on 40 mel bands) of Resemblyzer, a GE2E speaker encoder
(Wan et al. 2018, "Generalized end-to-end loss for speaker verification") that
Resemble AI publishes on PyPI with its weights under the Apache 2.0 licence. It was
trained to tell speakers apart, on audiobook and interview speech (LibriSpeech and
VoxCeleb, according to its authors); it has never heard RAVDESS and never seen an emotion
label. Its final embedding is built to ignore how a speaker sounds today, but its
hidden states on the way there still move with arousal, voice quality and rhythm, and
a linear classifier on their statistics recognises emotions of unseen speakers better
than on serlib's own clip statistics.

serlib reads the weights with numpy and runs the LSTM in numpy (:func:`lstm_layer`), so
it needs neither PyTorch nor the ``resemblyzer`` package: :func:`weights_path` fetches
the package's wheel once with pip (15.7 MB, no dependencies), keeps only the weights
file in serlib's cache, and checks its SHA-256. The check is repeated on every load,
wherever the file comes from, before a byte of it is parsed, and the parser accepts nothing
but numbers, strings, containers and tensors (:func:`read_checkpoint`): the weights are
data, never code. The input follows the encoder's own preparation: 16 kHz, quiet clips
raised to -30 dBFS, 40-band mel power spectra with a 25 ms window every 10 ms, cut into
1.6 s windows that start every 0.77 s.
:func:`encoder_features` returns the mean and standard deviation of each layer's hidden
state over the clip (1,536 numbers); :mod:`serlib.functionals` appends them to its
vector. Explained in the chapter "A second opinion".
"""
from __future__ import annotations

import functools
import hashlib
import io
import os
import pickle
import struct
import sys
from pathlib import Path

import numpy as np

from .config import cache_dir, env_path
from .errors import SerlibError
from .log import get_logger
from .storage import write_bytes

log = get_logger(__name__)

PACKAGE = "resemblyzer==0.1.4"
MEMBER = "resemblyzer/pretrained.pt"
SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
MAX_BYTES = 64 << 20    # the most read_checkpoint reads of any checkpoint (the genuine one: 17.1 MB)
SR = 16000
N_FFT = 400             # 25 ms
HOP = 160               # 10 ms
N_MELS = 40
WINDOW = 160            # frames per window: 1.6 s
STEP = 77               # frames between window starts (1.3 windows per second)
MIN_COVERAGE = 0.75     # a last window less full than this is dropped (unless it is the only one)
TARGET_DBFS = -30.0
N_LAYERS = 3
HIDDEN = 256
_HINT = (f"run `pip install --no-deps {PACKAGE}` (or set SERLIB_ENCODER_WEIGHTS to its "
         "resemblyzer/pretrained.pt) and try again")


def encoder_names() -> list[str]:
    """Names of :func:`encoder_features`' columns: ``enc{layer}_{mean|std}{unit}``.

    Explained in the chapter "A second opinion".
    """
    return [f"enc{layer}_{stat}{unit}" for layer in range(1, N_LAYERS + 1)
            for stat in ("mean", "std") for unit in range(HIDDEN)]


def _cached_path() -> Path:
    try:
        root = cache_dir()
    except OSError as error:            # a cache folder that cannot be created
        raise _unwritable(Path(error.filename or os.environ.get("SERLIB_CACHE_DIR") or "~/.cache/serlib"),
                          error) from None
    return root / "voice_encoder" / "pretrained.pt"


def _unwritable(folder: Path, error: OSError) -> SerlibError:
    return SerlibError(f"{folder}: cannot keep the voice encoder's weights there "
                       f"({error.strerror or error}); set SERLIB_CACHE_DIR to a folder you can write to, "
                       f"or SERLIB_ENCODER_WEIGHTS to a copy of {PACKAGE.replace('==', ' ')}'s pretrained.pt")


def _same(a: Path, b) -> bool:
    try:
        return b is not None and Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except (OSError, RuntimeError):
        return False


def _remedy(path: Path) -> str:
    """What to do about a weights file at ``path`` that cannot be used, by where it came from."""
    genuine = f"the genuine pretrained.pt of {PACKAGE.replace('==', ' ')}"
    if _same(path, os.environ.get("SERLIB_ENCODER_WEIGHTS")):
        return (f"point SERLIB_ENCODER_WEIGHTS at {genuine}, or unset it and run "
                "`serlib download --encoder`")
    if _same(path, _installed_path()):
        return (f"reinstall resemblyzer (`pip install --force-reinstall --no-deps {PACKAGE}`), or "
                "uninstall it and run `serlib download --encoder`")
    try:
        cached = _same(path, _cached_path())
    except SerlibError:
        cached = False
    if cached:
        return ("delete it and run `serlib download --encoder` to fetch it again" if path.exists()
                else "run `serlib download --encoder` to fetch it")
    return f"use {genuine} (`serlib download --encoder` fetches it)"


def _installed_path() -> Path | None:
    import importlib.util

    try:
        spec = importlib.util.find_spec("resemblyzer")   # locates the package without importing it
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "pretrained.pt"
        if candidate.is_file():
            return candidate
    return None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_weights(dest: Path | None = None, *, quiet: bool = False) -> Path:
    """Download the encoder's weights from PyPI into serlib's cache and return their path.

    Runs ``pip download --no-deps resemblyzer==0.1.4`` into a temporary folder, takes the
    weights file out of the wheel, checks its SHA-256 and moves it into place in one step,
    so an interrupted fetch leaves nothing behind. Explained in the chapter "A second opinion".
    """
    import subprocess
    import tempfile
    import zipfile

    dest = Path(dest) if dest is not None else _cached_path()
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp_folder = tempfile.TemporaryDirectory(dir=dest.parent)
    except OSError as error:            # read-only, not a folder, disk full
        raise _unwritable(dest.parent, error) from None
    if not quiet:
        log.info("fetching the pretrained voice encoder (%s from PyPI, 15.7 MB, once) into %s", PACKAGE, dest.parent)
    with tmp_folder as tmp:
        try:
            done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary",
                                   ":all:", "--disable-pip-version-check", "-q", "-d", tmp, PACKAGE],
                                  capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise SerlibError(f"cannot fetch the pretrained voice encoder ({error}); {_HINT}") from None
        wheels = sorted(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            reason = (done.stderr.strip().splitlines() or ["pip found no wheel"])[-1]
            raise SerlibError(f"cannot fetch the pretrained voice encoder: {reason}; {_HINT}")
        try:
            with zipfile.ZipFile(wheels[0]) as wheel:
                data = wheel.read(MEMBER)
        except (zipfile.BadZipFile, KeyError) as error:
            raise SerlibError(f"{PACKAGE} from PyPI: the wheel pip fetched ({wheels[0].name}, not kept) has "
                              f"no usable {MEMBER} ({error}); {_HINT}") from None
        if _sha256(data) != SHA256:
            raise SerlibError(f"{PACKAGE} from PyPI: the {MEMBER} pip fetched does not have the expected "
                              f"SHA-256 (not kept); {_HINT}")
        try:
            write_bytes(dest, data)
        except OSError as error:
            raise _unwritable(dest.parent, error) from None
    return dest


def weights_path(fetch: bool = True) -> Path:
    """Where the encoder's weights are: ``$SERLIB_ENCODER_WEIGHTS``, an installed
    ``resemblyzer`` package, serlib's cache, or (``fetch``) a fresh download
    (:func:`fetch_weights`). Whichever it is, :func:`load_encoder` checks its SHA-256
    before reading it. Explained in the chapter "A second opinion".
    """
    path = env_path("SERLIB_ENCODER_WEIGHTS", folder=False, error=SerlibError,
                    hint="point it at resemblyzer's pretrained.pt or unset it")
    if path is not None:
        return path
    installed = _installed_path()
    if installed is not None:
        return installed
    path = _cached_path()
    if path.is_file():
        return path
    if not fetch:
        raise SerlibError(f"{_cached_path()}: the pretrained voice encoder is not there; {_HINT}")
    return fetch_weights()


class _Storage:
    """A storage type (torch.FloatStorage, …) named in the checkpoint."""

    def __init__(self, name: str):
        self.name = name


class _StorageRef:
    def __init__(self, key: str, dtype):
        self.key, self.dtype = key, dtype


class _Tensor:
    """A tensor's place in its storage; only the checkpoint's rebuild entry makes these."""

    def __init__(self, storage, offset, size, stride):
        if not isinstance(storage, _StorageRef):
            raise pickle.UnpicklingError("a tensor without a storage")
        self.storage = storage
        self.offset = int(offset)
        self.size = tuple(int(n) for n in size)
        self.stride = tuple(int(n) for n in stride)


_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
           "LongStorage": np.int64, "IntStorage": np.int32}
_MAGIC = 0x1950A86A20F9469CFC6C         # PyTorch's legacy checkpoint
_PROTOCOL = 1001


def _tensor(storage, offset, size, stride, *_):
    return _Tensor(storage, offset, size, stride)


class _Plain(pickle.Unpickler):
    """Reads a pickle of numbers, strings, tuples, lists and dicts only: every class or
    function it names is refused, so nothing in it can run."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refusing a storage reference outside the tensors' record")


class _Reader(_Plain):
    """Reads the record of tensors: plain data plus storages, tensors and OrderedDict."""

    def __init__(self, file):
        super().__init__(file)
        self.dtypes: dict[str, type] = {}

    def find_class(self, module, name):
        if module == "torch" and name in _DTYPES:
            return _Storage(name)
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _tensor
        if module == "collections" and name == "OrderedDict":
            import collections

            return collections.OrderedDict
        return super().find_class(module, name)

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) < 5:
            raise pickle.UnpicklingError(f"unexpected storage reference {type(pid).__name__}")
        kind, storage, key, _location, _size = pid[:5]
        if kind != "storage" or not isinstance(storage, _Storage) or not isinstance(key, str):
            raise pickle.UnpicklingError(f"unexpected record {kind!r}")
        dtype = _DTYPES[storage.name]
        if self.dtypes.setdefault(key, dtype) is not dtype:
            raise pickle.UnpicklingError(f"storage {key!r} has two types")
        return _StorageRef(key, dtype)


def _read_bounded(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as error:
        raise SerlibError(f"{path}: cannot read the voice encoder's weights ({error.strerror or error}); "
                          f"{_remedy(path)}") from None
    if len(data) > MAX_BYTES:
        raise SerlibError(f"{path}: larger than {MAX_BYTES:,} bytes, far more than the voice encoder's "
                          f"weights (17,090,379 bytes), so it was not read; {_remedy(path)}")
    return data


def _view(tensor: _Tensor, flat: np.ndarray) -> np.ndarray:
    """The tensor's values, refusing any place that lies outside its storage."""
    size, stride, offset = tensor.size, tensor.stride, tensor.offset
    if len(size) != len(stride) or offset < 0 or min(size + stride, default=0) < 0:
        raise ValueError(f"a tensor of size {size}, stride {stride}, offset {offset}")
    if 0 in size:
        return np.zeros(size, flat.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= len(flat) or int(np.prod(size, dtype=np.int64)) > len(flat):
        raise ValueError(f"a tensor reaches past its storage of {len(flat)} values")
    return np.lib.stride_tricks.as_strided(flat[offset:], shape=size,
                                           strides=[s * flat.itemsize for s in stride]).copy()


def read_checkpoint(path, expected_sha256: str | None = SHA256) -> dict:
    """The tensors of a legacy (pre-zip) PyTorch checkpoint as numpy arrays, without PyTorch.

    The file is data, never code. Its bytes are read once (at most 64 MB) and, unless
    ``expected_sha256`` is None, their SHA-256 must be ``expected_sha256`` (the genuine
    Resemblyzer weights by default) before anything is parsed. Every one of its pickle
    records (magic number, protocol, system information, tensors, storage keys) is then
    read by an unpickler that accepts only numbers, strings, containers and tensors, so
    even an unchecked file cannot run code; a tensor that reaches outside its storage is
    refused too. Any problem is a one-line :class:`~serlib.errors.SerlibError` naming the
    file and what to do. Explained in the chapter "A second opinion".
    """
    path = Path(path)
    data = _read_bounded(path)
    if expected_sha256 is not None:
        got = _sha256(data)
        if got != expected_sha256.lower():
            raise SerlibError(f"{path}: not the voice encoder's weights serlib expects (SHA-256 {got[:12]}…, "
                              f"expected {expected_sha256.lower()[:12]}…), so it was not read: it may be "
                              f"damaged or tampered with; {_remedy(path)}")
    f = io.BytesIO(data)
    try:
        magic, protocol, info = (_Plain(f).load() for _ in range(3))
        if magic != _MAGIC or protocol != _PROTOCOL:
            raise ValueError("not a legacy PyTorch checkpoint")
        if not isinstance(info, dict) or info.get("little_endian") is not True:
            raise ValueError("not written on a little-endian machine")
        reader = _Reader(f)
        obj = reader.load()
        keys = _Plain(f).load()
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ValueError("the list of storages is not a list of names")
        storages = {}
        for key in keys:
            (count,) = struct.unpack("<q", f.read(8))
            dtype = np.dtype(reader.dtypes.get(key, np.float32))
            raw = f.read(count * dtype.itemsize) if count >= 0 else b""
            if count < 0 or len(raw) != count * dtype.itemsize:
                raise EOFError("the file ends inside a tensor")
            storages[key] = np.frombuffer(raw, dtype=dtype)

        def convert(o):
            if isinstance(o, dict):
                return type(o)((k, convert(v)) for k, v in o.items())
            if isinstance(o, (list, tuple)):
                return type(o)(convert(v) for v in o)
            if isinstance(o, _Tensor):
                return _view(o, storages[o.storage.key])
            if isinstance(o, (_Storage, _StorageRef)) or callable(o):
                raise ValueError(f"a stray {type(o).__name__}")
            return o
        return convert(obj)
    except (EOFError, pickle.UnpicklingError, struct.error, ValueError, KeyError, IndexError,
            TypeError, AttributeError, RecursionError, MemoryError) as error:
        raise SerlibError(f"{path}: not a readable voice-encoder checkpoint ({error}); "
                          f"{_remedy(path)}") from None


@functools.lru_cache(maxsize=2)
def _layers(path: str) -> tuple:
    checkpoint = read_checkpoint(path, SHA256)      # the genuine weights only, checked on every load
    state = checkpoint.get("model_state") if isinstance(checkpoint, dict) else None
    layers = []
    try:
        for k in range(N_LAYERS):
            w_in = np.ascontiguousarray(state[f"lstm.weight_ih_l{k}"].T, dtype=np.float32)
            w_rec = np.ascontiguousarray(state[f"lstm.weight_hh_l{k}"].T, dtype=np.float32)
            bias = (state[f"lstm.bias_ih_l{k}"] + state[f"lstm.bias_hh_l{k}"]).astype(np.float32)
            if w_rec.shape != (HIDDEN, 4 * HIDDEN) or w_in.shape[1] != 4 * HIDDEN:
                raise KeyError(f"layer {k} has shape {w_rec.shape}")
            layers.append((w_in, w_rec, bias))
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as error:
        raise SerlibError(f"{path}: not the three-layer voice encoder serlib expects ({error}); "
                          f"{_remedy(Path(path))}") from None
    return tuple(layers)


def load_encoder(path=None) -> tuple:
    """The encoder's three LSTM layers as ``(input weights, recurrent weights, bias)`` arrays,
    read once (:func:`weights_path` when ``path`` is None). Only the genuine file is read:
    one whose SHA-256 is not :data:`SHA256` is refused with a one-line
    :class:`~serlib.errors.SerlibError` before anything in it is parsed (see
    :func:`read_checkpoint`). Explained in the chapter "A second opinion".
    """
    return _layers(str(path if path is not None else weights_path()))


def lstm_layer(x: np.ndarray, w_in: np.ndarray, w_rec: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Run one LSTM layer over ``x`` (batch, time, features); returns every hidden state.

    The four gates come in PyTorch's (and Keras') order: input, forget, candidate, output;
    ``w_in`` is (features, 4 units), ``w_rec`` (units, 4 units). Explained in the chapter
    "A second opinion".
    """
    units = w_rec.shape[0]
    batch, steps, _ = x.shape
    # the input's share of every gate for every step at once, time-major so each step is contiguous
    drive = np.ascontiguousarray(x.astype(np.float32).transpose(1, 0, 2)) @ w_in + bias
    h = np.zeros((batch, units), np.float32)
    c = np.zeros((batch, units), np.float32)
    out = np.empty((steps, batch, units), np.float32)
    gates = np.empty((batch, 4 * units), np.float32)
    for t in range(steps):
        np.matmul(h, w_rec, out=gates)
        gates += drive[t]
        candidate = np.tanh(gates[:, 2 * units:3 * units])
        np.multiply(gates, 0.5, out=gates)
        np.tanh(gates, out=gates)                       # sigmoid(z) = (1 + tanh(z / 2)) / 2
        gates += 1.0
        gates *= 0.5
        c *= gates[:, units:2 * units]                  # forget
        c += gates[:, :units] * candidate               # input
        np.multiply(gates[:, 3 * units:], np.tanh(c), out=h)   # output
        out[t] = h
    return out.transpose(1, 0, 2)


def encoder_windows(y: np.ndarray, sr: int = SR) -> tuple[np.ndarray, np.ndarray]:
    """The encoder's input for signal ``y``: ``(windows, 160, 40)`` mel power spectra and a
    ``(windows, 160)`` mask of the frames that hold the clip (not padding).

    Explained in the chapter "A second opinion".
    """
    import librosa

    y = np.asarray(y, dtype=np.float32)
    if sr != SR:
        y = librosa.resample(y, orig_sr=int(sr), target_sr=SR)
    power = float(np.mean(y.astype(np.float64) ** 2)) if len(y) else 0.0
    gain_db = TARGET_DBFS - 10 * np.log10(max(power, 1e-20))
    if power > 0 and gain_db > 0:                                  # raise quiet clips, never lower loud ones
        y = y * np.float32(10 ** (gain_db / 20))
    mel = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=N_FFT, hop_length=HOP,
                                         n_mels=N_MELS).T.astype(np.float32)
    n = len(mel)
    starts = list(range(0, max(1, n - WINDOW + STEP + 1), STEP))
    if len(starts) > 1 and (n - starts[-1]) < MIN_COVERAGE * WINDOW:
        starts.pop()
    windows = np.zeros((len(starts), WINDOW, N_MELS), np.float32)
    mask = np.zeros((len(starts), WINDOW), bool)
    for k, s in enumerate(starts):
        part = mel[s:s + WINDOW]
        windows[k, :len(part)] = part
        mask[k, :len(part)] = True
    return windows, mask


def encoder_states(y: np.ndarray, sr: int = SR, layers=None) -> tuple[list[np.ndarray], np.ndarray]:
    """The hidden states of every encoder layer for ``y``: a list of three
    ``(windows, 160, 256)`` arrays, and the mask of :func:`encoder_windows`.

    Explained in the chapter "A second opinion".
    """
    windows, mask = encoder_windows(y, sr)
    states, x = [], windows
    for w_in, w_rec, bias in (layers if layers is not None else load_encoder()):
        x = lstm_layer(x, w_in, w_rec, bias)
        states.append(x)
    return states, mask


def encoder_features_many(signals, sr: int = SR, layers=None, batch: int = 256) -> np.ndarray:
    """:func:`encoder_features` of every signal in ``signals``, as ``(n, 1536)``.

    The windows of all clips go through the LSTM together, ``batch`` at a time, which is
    many times faster than one clip after another. Explained in the chapter "A second opinion".
    """
    layers = layers if layers is not None else load_encoder()
    prepared = [encoder_windows(y, sr) for y in signals]
    if not prepared:
        return np.zeros((0, 2 * len(layers) * layers[0][1].shape[0]), np.float32)
    windows = np.concatenate([w for w, _ in prepared])
    mask = np.concatenate([m for _, m in prepared])
    owner = np.repeat(np.arange(len(prepared)), [len(w) for w, _ in prepared])
    units = layers[0][1].shape[0]
    sums = np.zeros((len(layers), len(prepared), units))
    squares = np.zeros_like(sums)
    counts = np.bincount(owner, weights=mask.sum(axis=1), minlength=len(prepared))[:, None]
    for start in range(0, len(windows), batch):
        x, keep = windows[start:start + batch], mask[start:start + batch]
        who = owner[start:start + batch]
        for k, (w_in, w_rec, bias) in enumerate(layers):
            x = lstm_layer(x, w_in, w_rec, bias)
            frames = x * keep[..., None]
            np.add.at(sums[k], who, frames.sum(axis=1, dtype=np.float64))
            np.add.at(squares[k], who, np.einsum("wtu,wtu->wu", frames, frames, dtype=np.float64))
    mean = sums / counts
    std = np.sqrt(np.maximum(squares / counts - mean ** 2, 0.0))
    return np.concatenate([part for k in range(len(layers)) for part in (mean[k], std[k])],
                          axis=1).astype(np.float32)


def encoder_features(y: np.ndarray, sr: int = SR, layers=None) -> np.ndarray:
    """Mean and standard deviation of each encoder layer's hidden state over the clip's
    frames (all windows, padding excluded): 1,536 numbers named by :func:`encoder_names`.

    Explained in the chapter "A second opinion".
    """
    return encoder_features_many([y], sr, layers)[0]
