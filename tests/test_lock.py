"""The lock of last known good versions (constraints.txt, .ci/lock.py) stays usable."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytest.importorskip("tomllib", reason="the lock tool reads pyproject.toml with tomllib (Python 3.11+)")
pytest.importorskip("packaging")


def _lock_module():
    spec = importlib.util.spec_from_file_location("ci_lock", REPO / ".ci" / "lock.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_lock_pins_every_declared_dependency_within_its_range():
    lock = _lock_module()
    pins = lock.read_lock()
    assert lock.problems(lock.declared(), pins) == []
    assert {"tensorflow", "keras", "numpy", "pytest", "jupyter-book"} <= set(pins)


def test_the_check_fails_on_a_missing_or_out_of_range_pin(tmp_path):
    lock = _lock_module()
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["numpy>=1.24", "keras>=3.3,<4"]\n'
                         '[project.optional-dependencies]\ntest = ["pytest>=7"]\n')
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("# comment\nnumpy==1.20.0\nKeras==3.15.1\n")
    found = lock.problems(lock.declared(pyproject), lock.read_lock(constraints))
    assert len(found) == 2
    assert any(line.startswith("numpy: pinned at 1.20.0") for line in found)
    assert any(line.startswith("pytest: declared") for line in found)
    constraints.write_text("numpy>=1.0\n")
    with pytest.raises(SystemExit, match="not a 'name==version' line"):
        lock.read_lock(constraints)


def test_the_check_command_reports_success():
    done = subprocess.run([sys.executable, str(REPO / ".ci" / "lock.py"), "--check"],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "pins all" in done.stdout
