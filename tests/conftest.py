"""Shared fixtures: the real RAVDESS copies (skipped when absent), the synthetic stand-in
corpus, a throw-away cache, a local HTTP server for download tests, and the benchmark
scripts loaded as modules."""
from __future__ import annotations

import hashlib
import http.server
import importlib.util
import io
import logging
import os
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def _data_folder(name: str) -> Path | None:
    """``name`` (ravdess, ravdess-original, ravdess-song) beside $SERLIB_DATA_DIR or in ../shared/data."""
    candidates = []
    env = os.environ.get("SERLIB_DATA_DIR")
    if env:
        env_path = Path(env).expanduser()
        candidates.append(env_path if name == "ravdess" else env_path.parent / name)
    candidates.append(SHARED_DATA / name)
    return next((c for c in candidates if c.is_dir()), None)


def _need(name: str) -> Path:
    folder = _data_folder(name)
    if folder is None:
        pytest.skip(f"real data folder {name}/ not found: set SERLIB_DATA_DIR or put it in {SHARED_DATA}")
    return folder


def pytest_collection_modifyitems(config, items):
    """Tests that use the real recordings get the ``realdata`` marker (``-m 'not realdata'``)."""
    real = {"ravdess_dir", "ravdess_original_dir", "ravdess_song_dir", "ravdess_index"}
    for item in items:
        if real & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.realdata)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Point SERLIB_CACHE_DIR at a fresh folder so no test reads or writes ~/.cache/serlib."""
    cache = tmp_path_factory.mktemp("serlib-cache")
    old = os.environ.get("SERLIB_CACHE_DIR")
    os.environ["SERLIB_CACHE_DIR"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("SERLIB_CACHE_DIR", None)
    else:
        os.environ["SERLIB_CACHE_DIR"] = old


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a message comes (capsys swaps it per test)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


@pytest.fixture(autouse=True)
def _serlib_messages_on_stderr():
    """serlib's log messages (INFO and up) on the test's stderr, formatted as the command line
    shows them (``serlib: warning: ...``), so capsys sees them; they still propagate to the
    root logger (caplog). The logger's state is restored after each test (``serlib`` commands
    run in-process change it)."""
    from serlib import log

    logger = logging.getLogger(log.ROOT)
    saved = logger.handlers[:], logger.level, logger.propagate
    handler = _CurrentStderr()
    handler.setFormatter(logging.Formatter(log.FORMAT))
    setattr(handler, log._DEFAULT, True)     # serlib.log.show() (the CLI) replaces it, as it would its own
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = True
    yield
    logger.handlers, level, logger.propagate = saved
    logger.setLevel(level)


@pytest.fixture
def cache_root(tmp_path, monkeypatch):
    """A fresh, empty SERLIB_CACHE_DIR for one test."""
    root = tmp_path / "cache"
    monkeypatch.setenv("SERLIB_CACHE_DIR", str(root))
    return root


@pytest.fixture(scope="session")
def ravdess_dir() -> Path:
    """The RAVDESS speech copy (actors 01-20, 1,200 clips); skips the test when absent."""
    return _need("ravdess")


@pytest.fixture(scope="session")
def ravdess_original_dir() -> Path:
    """Six untouched 48 kHz WAV originals from the official zip; skips when absent."""
    return _need("ravdess-original")


@pytest.fixture(scope="session")
def ravdess_song_dir() -> Path:
    """RAVDESS song (836 clips, 19 actors); skips when absent."""
    return _need("ravdess-song")


@pytest.fixture(scope="session")
def ravdess_index(ravdess_dir):
    """``index_ravdess(ravdess_dir)``, built once per session."""
    from serlib.datasets import index_ravdess

    return index_ravdess(ravdess_dir)


@pytest.fixture(scope="session")
def standin_dir(tmp_path_factory) -> Path:
    """The synthetic stand-in corpus (actors 1-4, 240 clips), generated once per session."""
    from serlib.datasets.standin import make_standin_corpus

    return make_standin_corpus(tmp_path_factory.mktemp("standin") / "corpus")


# ---------------------------------------------------------------------------- downloads
def _make_zip(files: dict[str, bytes]) -> bytes:
    """A zip archive (bytes) holding ``files`` (archive name → content)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _tiny_wav(seed: int, seconds: float = 0.2, sr: int = 16_000) -> bytes:
    """A short 16-bit WAV of quiet noise, as bytes."""
    import soundfile as sf

    buffer = io.BytesIO()
    y = 0.1 * np.random.default_rng(seed).standard_normal(int(seconds * sr))
    sf.write(buffer, y, sr, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_benchmark():
    """``load_benchmark(name)``: ``benchmarks/<name>.py`` imported as a module (the scripts are no package)."""
    return _load_benchmark


@pytest.fixture(scope="session")
def make_zip():
    """``make_zip({name: bytes}) -> bytes``: build a zip archive in memory."""
    return _make_zip


@pytest.fixture(scope="session")
def tiny_wav():
    """``tiny_wav(seed, seconds=0.2, sr=16000) -> bytes``: a short 16-bit WAV of noise."""
    return _tiny_wav


@pytest.fixture(scope="session")
def md5_of():
    """``md5_of(bytes) -> str``."""
    return lambda data: hashlib.md5(data).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.routes``: path → bytes, or (bytes, "truncate"), or an int HTTP status."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.server.requests.append(self.path)
        route = self.server.routes.get(self.path.split("?")[0])
        if route is None:
            self.send_error(404)
            return
        if isinstance(route, int):
            self.send_error(route)
            return
        data, mode = route if isinstance(route, tuple) else (route, "full")
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if mode == "truncate":
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data)

    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture(scope="module")
def zip_server():
    """A local HTTP server on 127.0.0.1 (random port) in a thread.

    Set ``server.routes[path] = bytes | (bytes, "truncate") | status``; ``server.url(path)``
    gives the address and ``server.requests`` records every path asked for.
    """
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.routes, server.requests = {}, []
    server.url = lambda path: f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
