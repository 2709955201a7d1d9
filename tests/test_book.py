"""The book: chapter conventions, nbval over every chapter, the HTML build, a browser check.

Chapters are discovered from ``_toc.yml`` (via ``tests/browser_check.py``), so chapters
added later are covered without editing this file. The slow tests are marked ``book``
and run in quick mode (``SERLIB_QUICK=1`` unless already set)::

    python -m pytest tests/test_book.py -m book        # nbval + HTML build + browser check
    python -m pytest tests/test_book.py -m "not book"  # the fast convention checks only

The same steps by hand: ``SERLIB_QUICK=1 python -m pytest --nbval-lax book/*.ipynb``,
``SERLIB_QUICK=1 python -m serlib.book_build`` and ``python tests/browser_check.py``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import browser_check  # noqa: E402

from serlib import book_build  # noqa: E402

CHAPTERS = browser_check.chapter_notebooks(ROOT)
GLUE_ROLE = re.compile(r"\{glue(?::text|:md)?\}`([A-Za-z_][A-Za-z0-9_]*)(?::[^`]*)?`")
GLUE_CALL = re.compile(r"""glue\(\s*["']([A-Za-z_][A-Za-z0-9_]*)["']""")
# serlib.full_results.show_full_results("NAME") glues full_NAME_uar and full_NAME_acc itself.
FULL_RESULTS_CALL = re.compile(r"""show_full_results\(\s*["']([A-Za-z_][A-Za-z0-9_]*)["']""")


def _quick_env() -> dict:
    env = dict(os.environ)
    env.setdefault("SERLIB_QUICK", "1")
    return env


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


# ---------------------------------------------------------------------------------------
# fast checks: the table of contents and the chapter conventions
# ---------------------------------------------------------------------------------------
def test_toc_lists_existing_chapters_in_reading_order():
    assert browser_check.missing_toc_files(ROOT) == []
    assert browser_check.toc_files(ROOT)[0] == "book/intro"
    numbers = [int(p.name[:2]) for p in CHAPTERS]
    assert numbers[:5] == [1, 2, 3, 4, 5]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


@pytest.mark.parametrize("notebook", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_is_stripped_and_follows_the_conventions(notebook):
    cells = _cells(notebook)
    code = [c for c in cells if c["cell_type"] == "code"]
    markdown = "\n".join(_source(c) for c in cells if c["cell_type"] == "markdown")
    # stored without outputs: the book build and nbval produce them
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), \
        f"{notebook.name}: clear the outputs before committing (Kernel > Restart & Clear Output)"
    # first code cell installs serlib on Colab only; the second prints the chapter header
    assert "google.colab" in _source(code[0]) and "pip install" in _source(code[0])
    assert "start_chapter(" in _source(code[1])
    assert "Learning objectives" in markdown
    assert "## Exercises" in markdown and ":class: dropdown" in markdown


@pytest.mark.parametrize("notebook", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_every_glued_name_in_the_prose_is_glued_by_a_cell(notebook):
    cells = _cells(notebook)
    used = {name for c in cells if c["cell_type"] == "markdown" for name in GLUE_ROLE.findall(_source(c))}
    glued = {name for c in cells if c["cell_type"] == "code" for name in GLUE_CALL.findall(_source(c))}
    glued |= {f"full_{model}_{key}" for c in cells if c["cell_type"] == "code"
              for model in FULL_RESULTS_CALL.findall(_source(c)) for key in ("uar", "acc")}
    assert sorted(used - glued) == [], f"{notebook.name}: prose pastes names no cell glues"


def test_find_execution_errors_flags_a_rendered_traceback(tmp_path):
    (tmp_path / "ok.html").write_text('<div class="output stream highlight-myst-ansi">fine</div>')
    assert book_build.find_execution_errors(tmp_path) == []
    (tmp_path / "bad.html").write_text('<div class="output traceback highlight-ipythontb">ZeroDivisionError</div>')
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "ch.err.log").write_text("Traceback ...")
    problems = book_build.find_execution_errors(tmp_path)
    assert len(problems) == 2 and any("bad.html" in p for p in problems) and any("ch.err.log" in p for p in problems)


def test_expected_outputs_counts_figures_audio_and_errors(tmp_path):
    nb = {"cells": [
        {"cell_type": "code", "metadata": {}, "outputs": [
            {"output_type": "display_data", "data": {"image/png": "iVBOR", "text/plain": "<Figure>"}},
            {"output_type": "display_data", "data": {"text/html": ['<audio controls="controls">', "</audio>"]}}]},
        {"cell_type": "code", "metadata": {"tags": ["remove-output"]}, "outputs": [
            {"output_type": "display_data", "data": {"image/png": "iVBOR"}}]},
        {"cell_type": "code", "metadata": {}, "outputs": [
            {"output_type": "error", "ename": "ValueError", "evalue": "boom", "traceback": []}]},
    ]}
    path = tmp_path / "executed.ipynb"
    path.write_text(json.dumps(nb))
    assert browser_check.expected_outputs(path) == {"images": 1, "audio": 1, "errors": ["ValueError: boom"]}


# ---------------------------------------------------------------------------------------
# slow: execute the chapters, build the HTML, look at it in a browser
# ---------------------------------------------------------------------------------------
@pytest.mark.book
@pytest.mark.slow
def test_every_chapter_runs_under_nbval():
    cmd = [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q",
           *[str(p.relative_to(ROOT)) for p in CHAPTERS]]
    result = subprocess.run(cmd, cwd=ROOT, env=_quick_env(), capture_output=True, text=True)
    assert result.returncode == 0, f"nbval failed:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """The book built once into a temporary folder, in quick mode: (status, html folder, log)."""
    out = tmp_path_factory.mktemp("book")
    log_path = out / "build.log"
    env_quick = os.environ.get("SERLIB_QUICK", "1") != "0"
    with open(log_path, "w") as log:
        status = book_build.build(ROOT, quick=env_quick, output=out, log=log)
    return status, out / "_build" / "html", log_path


@pytest.mark.book
@pytest.mark.slow
def test_html_build_succeeds_without_execution_errors(built_book):
    status, html, log_path = built_book
    assert status == 0, f"book build failed; log tail:\n{log_path.read_text()[-6000:]}"
    assert book_build.find_execution_errors(html) == []
    for name in browser_check.toc_files(ROOT):
        assert (html / f"{name}.html").is_file(), f"{name}.html missing from the build"


@pytest.mark.book
@pytest.mark.slow
def test_every_page_renders_in_a_browser(built_book):
    status, html, _ = built_book
    if status != 0:
        pytest.fail("the book did not build (see test_html_build_succeeds_without_execution_errors)")
    browser, driver = browser_check.find_chromium()
    if not browser or not driver:
        pytest.skip("Chromium/ChromeDriver not installed (apt-get install chromium chromium-driver)")
    problems = browser_check.check_book(ROOT, html, log=lambda line: None)
    assert problems == []


def _one_chapter_book(folder: Path, stem: str, code: str, timeout=None) -> None:
    """A book in ``folder`` with the real _config.yml (``timeout`` per cell if given) and one chapter.

    The chapter ``book/<stem>.ipynb`` has a title cell and one code cell holding ``code``.
    """
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    if timeout is not None:
        config["execute"]["timeout"] = timeout
    (folder / "_config.yml").write_text(yaml.safe_dump(config))
    (folder / "book").mkdir()
    shutil.copy(ROOT / "book" / "references.bib", folder / "book" / "references.bib")
    (folder / "book" / "intro.md").write_text(f"# A book with one chapter, {stem}\n\nSee the next page.\n")
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": f"# {stem.title()}\n\nOne code cell."},
                    {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": code}],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 4}
    (folder / "book" / f"{stem}.ipynb").write_text(json.dumps(nb))
    (folder / "_toc.yml").write_text(f"format: jb-book\nroot: book/intro\nchapters:\n  - file: book/{stem}\n")


@pytest.mark.book
@pytest.mark.slow
def test_an_execution_error_fails_the_build(tmp_path):
    """A chapter that raises must fail the build (allow_errors: false, -W), not render a traceback."""
    _one_chapter_book(tmp_path, "broken", "raise RuntimeError('deliberately broken cell')")
    with open(tmp_path / "build.log", "w") as log:
        status = book_build.build(tmp_path, quick=True, log=log)
    text = (tmp_path / "build.log").read_text()
    assert status != 0
    assert "deliberately broken cell" in text


def test_full_mode_config_lifts_only_the_cell_time_limit(tmp_path):
    import yaml

    path = book_build.full_mode_config(ROOT, tmp_path)
    original = yaml.safe_load((ROOT / "_config.yml").read_text())
    copy = yaml.safe_load(path.read_text())
    assert original["execute"]["timeout"] > 0 and copy["execute"]["timeout"] == -1
    copy["execute"]["timeout"] = original["execute"]["timeout"]
    assert copy == original


@pytest.mark.book
@pytest.mark.slow
def test_full_mode_build_has_no_cell_time_limit(tmp_path):
    """A cell slower than _config.yml's timeout fails a quick build and passes a full one."""
    _one_chapter_book(tmp_path, "slow", "import time\ntime.sleep(5)\nprint('done')", timeout=2)
    with open(tmp_path / "quick.log", "w") as log:
        assert book_build.build(tmp_path, quick=True, log=log) != 0
    shutil.rmtree(tmp_path / "_build")
    with open(tmp_path / "full.log", "w") as log:
        assert book_build.build(tmp_path, quick=False, log=log) == 0, (tmp_path / "full.log").read_text()[-2000:]
    assert "done" in (tmp_path / "_build" / "html" / "book" / "slow.html").read_text()


@pytest.mark.book
@pytest.mark.slow
def test_every_chapter_gives_a_slide_deck_that_shows_offline(built_book, tmp_path):
    """``make slides`` from the build's executed chapters; every deck opened in headless Chromium."""
    import slides_check

    from serlib import book_slides

    status, html, _ = built_book
    if status != 0:
        pytest.fail("the book did not build (see test_html_build_succeeds_without_execution_errors)")
    browser, driver = browser_check.find_chromium()
    if not browser or not driver:
        pytest.skip("Chromium/ChromeDriver not installed (apt-get install chromium chromium-driver)")
    with open(tmp_path / "slides.log", "w") as log:
        status = book_slides.build_slides(ROOT, output=tmp_path / "slides", executed_dir=html.parent / "jupyter_execute",
                                          quick=os.environ.get("SERLIB_QUICK", "1") != "0", log=log)
    assert status == 0, (tmp_path / "slides.log").read_text()[-3000:]
    assert "executed in" not in (tmp_path / "slides.log").read_text(), "the build's executed chapters were not reused"
    decks = sorted(p.name for p in (tmp_path / "slides").glob("*.slides.html"))
    assert decks == sorted(f"{p.stem}.slides.html" for p in CHAPTERS)
    assert slides_check.check_decks(tmp_path / "slides", log=lambda line: None) == []
