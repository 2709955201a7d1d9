"""serlib.runs treats a run folder as data: checksums, no unpickling, labels that fit the model,
version records, and no stale partial folders left by killed saves.

The runs here are built by hand (a one-layer Keras model, no training), so the file takes seconds.
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from serlib import cli
from serlib.errors import SerlibError
from serlib.features import FeatureSpec
from serlib.runs import (INFO_FILE, MODEL_FILE, Run, RunWarning, file_sha256, load_run,
                         remove_stale_partials, save_run)

LABELS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


def _model(n_out: int, lambda_layer: bool = False):
    import keras

    inputs = keras.Input((40,))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs) if lambda_layer else inputs
    return keras.Model(inputs, keras.layers.Dense(n_out, activation="softmax")(x))


def _run(n_out: int = 8, labels=LABELS, fusion=None, **kwargs) -> Run:
    info = {"model": "hand_made", "functionals_fusion": {"weight": 0.5} if fusion is not None else None}
    return Run(dir=None, model=_model(n_out, **kwargs), history={"loss": [1.0]}, metrics={}, labels=list(labels),
               spec=FeatureSpec(kind="mfcc_mean"), normalization=None, info=info, fusion=fusion)


def _fusion(n_classes: int) -> dict:
    from serlib.fusion import fit_linear

    rng = np.random.default_rng(0)
    y = np.arange(40) % n_classes
    return fit_linear(rng.standard_normal((40, 5)) + y[:, None], y, n_classes, C=1.0, weight=0.5)


def _edit_info(run_dir, **changes) -> None:
    path = run_dir / INFO_FILE
    info = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            info.pop(key, None)
        else:
            info[key] = value
    path.write_text(json.dumps(info))


def _rehash(run_dir, name: str) -> None:
    """What an attacker who also edits run.json does: the checksum matches the replaced file."""
    info = json.loads((run_dir / INFO_FILE).read_text())
    info["sha256"][name] = file_sha256(run_dir / name)
    (run_dir / INFO_FILE).write_text(json.dumps(info))


@pytest.fixture
def saved(tmp_path):
    return save_run(_run(), tmp_path / "run")


def _quiet_load(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RunWarning)   # a fresh run loads without a word
        return load_run(path)


# ----------------------------------------------------------------------------- checksums, versions
def test_run_json_records_versions_and_the_checksum_of_every_file(tmp_path):
    out = save_run(_run(fusion=_fusion(8)), tmp_path / "fused")
    info = json.loads((out / INFO_FILE).read_text())
    assert set(info["versions"]) >= {"serlib", "keras", "backend", "backend_version", "numpy", "python"}
    assert info["versions"]["numpy"] == np.__version__
    others = sorted(p.name for p in out.iterdir() if p.name != INFO_FILE)
    assert sorted(info["sha256"]) == others and "functionals.npz" in others and MODEL_FILE in others
    assert all(info["sha256"][name] == file_sha256(out / name) for name in others)
    run = _quiet_load(out)
    assert run.labels == LABELS and run.fusion is not None


@pytest.mark.parametrize("name", [MODEL_FILE, "history.json"])
def test_a_changed_file_is_refused_in_one_line_naming_it(saved, name):
    data = bytearray((saved / name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (saved / name).write_bytes(bytes(data))
    with pytest.raises(SerlibError) as caught:
        load_run(saved)
    message = str(caught.value)
    assert message.startswith(str(saved / name)) and "SHA-256" in message and "\n" not in message


def test_a_changed_regression_file_is_refused(tmp_path):
    out = save_run(_run(fusion=_fusion(8)), tmp_path / "fused")
    np.savez(out / "functionals.npz", **{k: np.asarray(v) for k, v in _fusion(8).items()}, extra=np.ones(3))
    with pytest.raises(SerlibError, match=r"functionals\.npz: its SHA-256 does not match"):
        load_run(out)


def test_a_missing_file_or_a_checksum_outside_the_folder_is_refused(saved, tmp_path):
    (saved / "metrics.json").unlink()
    with pytest.raises(SerlibError, match="metrics.json: missing, though run.json records its checksum; the run folder is damaged"):
        load_run(saved)
    other = save_run(_run(), tmp_path / "other")
    info = json.loads((other / INFO_FILE).read_text())
    _edit_info(other, sha256={**info["sha256"], "../run/model.keras": "0" * 64})
    with pytest.raises(SerlibError, match="not a file of the run folder"):
        load_run(other)


def test_a_run_without_checksums_still_loads(saved):
    _edit_info(saved, sha256=None)
    assert _quiet_load(saved).labels == LABELS


def test_another_serlib_or_keras_version_warns_once_in_one_line(saved):
    info = json.loads((saved / INFO_FILE).read_text())
    _edit_info(saved, versions={**info["versions"], "keras": "2.15.0"})
    with pytest.warns(RunWarning) as record:
        load_run(saved)
        load_run(saved)          # once per run folder
    assert len(record) == 1
    message = str(record[0].message)
    assert message.startswith(str(saved)) and "Keras 2.15.0" in message and "\n" not in message
    _edit_info(saved, versions={**info["versions"], "keras": info["versions"]["keras"] + ".post1",
                                "numpy": "1.0.0"})
    fresh = saved.parent / "same_minor"
    saved.rename(fresh)
    _quiet_load(fresh)           # same major.minor of serlib and Keras: silent


def test_a_run_without_a_version_record_loads_with_a_note(saved):
    _edit_info(saved, versions=None, serlib_version=None, keras_version=None)
    with pytest.warns(RunWarning, match="records no serlib/Keras versions"):
        run = load_run(saved)
    assert run.labels == LABELS


def test_cli_prints_the_version_warning_as_one_line(saved, tmp_path, capsys):
    import soundfile as sf

    info = json.loads((saved / INFO_FILE).read_text())
    _edit_info(saved, versions={**info["versions"], "serlib": "9.9.0"})
    wav = tmp_path / "tone.wav"
    t = np.arange(16000) / 16000
    sf.write(wav, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    assert cli.main(["predict", str(saved), str(wav)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"serlib predict: warning: {saved}") and "serlib 9.9.0" in err[0]


# ----------------------------------------------------------------------------- labels
def test_fewer_labels_than_outputs_is_a_one_line_error_naming_the_run(saved):
    _edit_info(saved, labels=LABELS[:7])
    with pytest.raises(SerlibError) as caught:
        load_run(saved)
    assert str(caught.value).startswith(f"{saved}: run.json lists 7 labels but the model outputs 8 classes")


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_cli_names_the_run_whose_labels_do_not_fit(saved, tmp_path, capsys, command):
    _edit_info(saved, labels=LABELS[:7])
    wav = tmp_path / "x.wav"
    wav.write_bytes(b"")
    argv = ["predict", str(saved), str(wav)] if command == "predict" else ["evaluate", str(saved), "--data",
                                                                           str(tmp_path)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(saved) in err and "7 labels" in err and "Traceback" not in err


def test_the_regression_must_score_as_many_classes_as_the_labels(tmp_path):
    out = save_run(_run(n_out=7, labels=LABELS[:7], fusion=_fusion(8)), tmp_path / "mixed")
    with pytest.raises(SerlibError, match=r"lists 7 labels but its functionals regression \(functionals.npz\) "
                                          r"has 8 classes"):
        load_run(out)


def test_labels_must_be_distinct_names(saved):
    _edit_info(saved, labels=["calm"] * 8)
    with pytest.raises(SerlibError, match="distinct names"):
        load_run(saved)


# ----------------------------------------------------------------------------- never unpickle
class _Touch:
    """Unpickling this creates a file: proof that something was unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def test_pickled_arrays_in_a_run_are_never_unpickled(tmp_path):
    out = save_run(_run(fusion=_fusion(8)), tmp_path / "fused")
    marker = tmp_path / "unpickled"
    params = {k: np.asarray(v) for k, v in _fusion(8).items()}
    params["coef"] = np.array([_Touch(marker)], dtype=object)
    np.savez(out / "functionals.npz", **params)
    _rehash(out, "functionals.npz")
    with pytest.raises(SerlibError) as caught:
        load_run(out)
    message = str(caught.value)
    assert message.startswith(str(out / "functionals.npz")) and "pickled" in message and "retrain" in message
    assert "allow_pickle" not in message and "unsafe" not in message and "\n" not in message
    assert not marker.exists()


def test_run_records_and_arrays_beyond_any_size_serlib_writes_are_refused_unread(tmp_path, monkeypatch):
    from serlib import runs

    out = save_run(_run(fusion=_fusion(8)), tmp_path / "fused")
    params = {k: np.asarray(v) for k, v in _fusion(8).items()}
    params["coef"] = np.zeros((8, 2000))                 # unpacks to 128 kB: a stand-in for a zip bomb
    np.savez_compressed(out / "functionals.npz", **params)
    _rehash(out, "functionals.npz")
    monkeypatch.setattr(runs, "MAX_RECORD_BYTES", 100_000)
    assert (out / "functionals.npz").stat().st_size < 100_000
    with pytest.raises(SerlibError, match="functionals.npz: .* more than a run file serlib writes can hold"):
        load_run(out)
    monkeypatch.setattr(runs, "MAX_RECORD_BYTES", 50)
    with pytest.raises(SerlibError, match="run.json: .* more than a run file serlib writes can hold"):
        load_run(out)


def test_a_model_holding_python_code_is_not_run(tmp_path):
    out = save_run(_run(lambda_layer=True), tmp_path / "lambda")
    with pytest.raises(SerlibError) as caught:
        load_run(out)
    message = str(caught.value)
    assert message.startswith(str(out / MODEL_FILE)) and "Python code" in message
    assert "safe_mode" not in message and "\n" not in message


# ----------------------------------------------------------------------------- stale partial folders
def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _fake_partial(folder, name: str, files=("model.keras", "run.json.abc123.tmp"), age: float = 0.0):
    partial = folder / name
    partial.mkdir()
    for file in files:
        (partial / file).write_bytes(b"half written")
    if age:
        stamp = time.time() - age
        for p in [*partial.iterdir(), partial]:
            os.utime(p, (stamp, stamp))
    return partial


def test_a_killed_save_leaves_nothing_after_the_next_save(tmp_path):
    from serlib.storage import host_tag

    host = host_tag()
    killed = _fake_partial(tmp_path, f".run1.{host}-{_dead_pid()}-k3x9_q2a.partial")
    old = _fake_partial(tmp_path, ".run2.ab12cd34.partial", age=3 * 3600)           # older serlib's name
    alive = _fake_partial(tmp_path, f".run3.{host}-{os.getpid()}-abcdefgh.partial")   # a save in progress
    recent = _fake_partial(tmp_path, ".run4.zz99yy88.partial")                       # owner unknown, fresh
    foreign = _fake_partial(tmp_path, ".photos.partial", files=("holiday.jpg",), age=3 * 3600)
    save_run(_run(), tmp_path / "new_run")
    assert not killed.exists() and not old.exists()
    assert alive.exists() and recent.exists() and foreign.exists()
    assert sorted(p.name for p in (tmp_path / "new_run").iterdir()) == sorted(
        ["model.keras", "run.json", "history.json", "metrics.json"])


def test_loading_a_run_also_clears_stale_partials_beside_it(saved):
    from serlib.storage import host_tag

    killed = _fake_partial(saved.parent, f".run.{host_tag()}-{_dead_pid()}-abc.partial")
    assert remove_stale_partials(saved.parent) == [killed]
    again = _fake_partial(saved.parent, f".run.{host_tag()}-{_dead_pid()}-def.partial")
    _quiet_load(saved)
    assert not again.exists()


def test_save_names_its_partial_folder_after_its_process(tmp_path, monkeypatch):
    import re

    from serlib.storage import host_tag

    seen = []
    run = _run()
    original = run.model.save
    monkeypatch.setattr(run.model, "save", lambda path: seen.append(pathlib.Path(path).parent) or original(path))
    save_run(run, tmp_path / "named")
    match = re.search(r"\.(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)-[A-Za-z0-9_]*\.partial$", seen[0].name)
    assert match and int(match["pid"]) == os.getpid() and match["host"] == host_tag()
    assert seen[0].name.startswith(".named.") and not seen[0].exists()


_KILLED_SAVE = """
import os, signal, sys
from serlib import runs
from tests.test_run_safety import _run

real = runs.write_json
def write_then_die(path, obj):
    real(path, obj)
    os.kill(os.getpid(), signal.SIGKILL)      # as the out-of-memory killer or `kill -9` would
runs.write_json = write_then_die
runs.save_run(_run(), sys.argv[1])
"""


def test_a_save_killed_with_sigkill_is_cleaned_up_by_the_next_one(tmp_path):
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo), "TF_CPP_MIN_LOG_LEVEL": "3"}
    child = subprocess.run([sys.executable, "-c", _KILLED_SAVE, str(tmp_path / "victim")], env=env, cwd=repo,
                           capture_output=True, timeout=300)
    assert child.returncode == -9, child.stderr.decode()[-500:]
    left = [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    assert len(left) == 1 and left[0].name.startswith(".victim.") and (left[0] / MODEL_FILE).is_file()
    assert not (tmp_path / "victim").exists()
    save_run(_run(), tmp_path / "next")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["next"]
