"""benchmarks/chapters.py: chapters executed one by one, with their time and outcome recorded."""
import json
from pathlib import Path

import nbformat
import pytest


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("chapters")


def _notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_chapters_are_chosen_by_number_or_name(bench):
    notebooks = [Path("book/01_introduction.ipynb"), Path("book/06_cnn1d.ipynb"), Path("book/10_gender.ipynb")]
    assert bench.select(notebooks, []) == notebooks
    assert bench.select(notebooks, ["6", "10"]) == [notebooks[1], notebooks[2]]
    assert bench.select(notebooks, ["06_cnn1d"]) == [notebooks[1]]
    with pytest.raises(SystemExit, match="no chapter notebook starts with 07"):
        bench.select(notebooks, ["07"])


def test_a_chapter_runs_in_the_mode_asked_and_its_header_is_recorded(bench, tmp_path):
    path = _notebook(tmp_path / "03_demo.ipynb",
                     "print('Chapter 3 · Demo\\n  data     RAVDESS somewhere, 20 actors (10 female, 10\\n           male)\\n'\n"
                     "      '  compute  CPU only')",
                     "import os\nassert os.environ['SERLIB_QUICK'] == '0', os.environ['SERLIB_QUICK']")
    record = bench.run_chapter(path, "full", keep=tmp_path / "kept")
    assert record["ok"] and record["error"] is None
    assert (record["code_cells"], record["cells_run"]) == (2, 2)
    assert record["data"] == "RAVDESS somewhere, 20 actors (10 female, 10 male)" and record["compute"] == "CPU only"
    assert record["seconds"] > 0
    kept = nbformat.read(tmp_path / "kept" / "03_demo.ipynb", as_version=4)
    assert "RAVDESS somewhere" in kept.cells[0].outputs[0]["text"]

    quick = bench.run_chapter(path, "quick")       # the second cell asserts full mode
    assert not quick["ok"] and "AssertionError: 1" in quick["error"] and quick["cells_run"] == 2


def test_results_are_resumable_and_a_failure_sets_the_exit_status(bench, tmp_path, monkeypatch):
    good = _notebook(tmp_path / "01_good.ipynb", "x = 1")
    bad = _notebook(tmp_path / "02_bad.ipynb", "raise ValueError('broken on purpose')")
    monkeypatch.setattr(bench, "chapter_notebooks", lambda root: [good, bad])
    monkeypatch.setattr(bench, "_gpu", lambda: False)
    results = tmp_path / "chapters.json"
    assert bench.main(["--mode", "quick", "--results", str(results)]) == 1
    records = json.loads(results.read_text())["records"]
    assert [(r["chapter"], r["ok"]) for r in records] == [("01_good", True), ("02_bad", False)]
    assert "ValueError: broken on purpose" in records[1]["error"]
    first = records[0]["created"], records[0]["seconds"]

    assert bench.main(["--mode", "quick", "--results", str(results), "01"]) == 0   # skipped: already recorded
    records = json.loads(results.read_text())["records"]
    assert (records[0]["created"], records[0]["seconds"]) == first and len(records) == 2
