"""ruff over the package, the tests, the benchmarks and the chapters (settings in pyproject.toml).

The rules include B018, a useless expression: in a notebook, a table or value computed in
the middle of a cell and never shown.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytest.importorskip("ruff", reason="ruff comes with the test extra: pip install -e .[test]")


def test_ruff_finds_nothing():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "serlib", "tests", "benchmarks",
                           "book", ".ci"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_ruff_would_catch_a_table_computed_and_thrown_away(tmp_path):
    notebook = tmp_path / "chapter.ipynb"
    notebook.write_text('{"cells": [{"cell_type": "code", "execution_count": null, "id": "a", "metadata": {},'
                        ' "outputs": [], "source": ["table = {\\"a\\": 1}\\n", "table\\n", "x = 1\\n"]}],'
                        ' "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config",
                           str(REPO / "pyproject.toml"), str(notebook)], capture_output=True, text=True)
    assert done.returncode == 1 and "B018" in done.stdout
