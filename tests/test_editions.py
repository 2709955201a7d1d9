"""The two editions: the full book (solutions folded) and the student edition (none at all).

The fast tests run :func:`serlib.book_editions.student_notebook` on every chapter and on
small made-up notebooks. The slow one builds the student edition of a one-chapter book
(chapter 3, whose solutions include hidden code cells that glue numbers into the text)
and searches every page and downloadable source of the result for solution text.
"""
from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import pytest

from serlib import book_build, book_editions
from serlib.errors import SerlibError

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = book_build.chapter_notebooks(ROOT)
GLUE_ROLE = re.compile(r"\{glue(?::text|:md|:figure|:math)?\}`([A-Za-z_][A-Za-z0-9_]*)(?::[^`]*)?`")
GLUE_CALL = re.compile(r"""glue\(\s*["']([A-Za-z_][A-Za-z0-9_]*)["']""")
# serlib.full_results.show_full_results("NAME") glues full_NAME_uar and full_NAME_acc itself.
FULL_RESULTS_CALL = re.compile(r"""show_full_results\(\s*["']([A-Za-z_][A-Za-z0-9_]*)["']""")


def _nb(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _text(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _markdown(nb: dict) -> str:
    return "\n".join(_text(c) for c in nb["cells"] if c["cell_type"] == "markdown")


@pytest.mark.parametrize("notebook", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_the_student_chapter_keeps_every_exercise_and_no_solution(notebook):
    source = _nb(notebook)
    student = book_editions.student_notebook(source)
    exercises = re.findall(r"\{admonition\} Exercise \d+\.\d+", _markdown(source))
    assert exercises and re.findall(r"\{admonition\} Exercise \d+\.\d+", _markdown(student)) == exercises
    solutions = _markdown(source).count("{admonition} Solution")
    assert solutions >= len(exercises) - 1, f"{notebook.name}: an exercise without a solution in the full edition"
    assert "Solution" not in _markdown(student)
    assert not any(book_editions.is_solution_cell(c) for c in student["cells"])
    assert book_editions.solution_texts(student) == []
    assert book_editions.STUDENT_NOTE in _markdown(student)
    # every number the remaining text quotes is still glued by a remaining cell (else -W fails the build)
    used = set(GLUE_ROLE.findall(_markdown(student)))
    glued = {n for c in student["cells"] if c["cell_type"] == "code" for n in GLUE_CALL.findall(_text(c))}
    glued |= {f"full_{model}_{key}" for c in student["cells"] if c["cell_type"] == "code"
              for model in FULL_RESULTS_CALL.findall(_text(c)) for key in ("uar", "acc")}
    assert sorted(used - glued) == []
    # the other cells are kept whole and in order; the source is not modified
    kept = [c for c in source["cells"] if not book_editions.is_solution_cell(c) and c["cell_type"] == "code"]
    assert [c for c in student["cells"] if c["cell_type"] == "code"] == kept
    assert _nb(notebook) == source


def test_solution_blocks_are_cut_by_their_own_fence():
    text = ("Intro.\n\n:::{admonition} Exercise 1.1: Sum\n:::\n\n"
            "::::{admonition} Solution\n:class: dropdown\nUse `sum`.\n:::{note}\ninner\n:::\nStill solution.\n::::\n\n"
            "Between.\n\n```{admonition} Solution 2\n:class: dropdown\nBackticks.\n```\nAfter.")
    stripped, removed = book_editions.strip_solution_blocks(text)
    assert removed == 2
    assert stripped == "Intro.\n\n:::{admonition} Exercise 1.1: Sum\n:::\n\nBetween.\n\nAfter."
    assert book_editions.strip_solution_blocks("No solutions here.\n") == ("No solutions here.", 0)
    with pytest.raises(SerlibError, match="never closed"):
        book_editions.strip_solution_blocks(":::{admonition} Solution\n:class: dropdown\nforgot the fence\n")


def test_solution_code_cells_are_found_by_comment_or_tag():
    def code(source, tags=()):
        return {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": source, "outputs": []}

    assert book_editions.is_solution_cell(code("\n# Solution to exercise 3.1\nx = 1"))
    assert book_editions.is_solution_cell(code("x = 1", tags=["solution", "hide-cell"]))
    assert not book_editions.is_solution_cell(code("x = 1  # Solution to exercise 3.1", tags=["hide-cell"]))
    assert not book_editions.is_solution_cell({"cell_type": "markdown", "metadata": {}, "source": "# Solution"})


def test_executed_outputs_are_reused_only_for_the_same_code_and_mode():
    header = {"output_type": "stream", "name": "stdout",
              "text": "Chapter 3\n  mode     quick (SERLIB_QUICK=1): 480 of 1,200 clips\n"}
    source = {"cells": [{"cell_type": "code", "source": ["x = ", "1"], "outputs": [], "metadata": {}}]}
    executed = {"cells": [{"cell_type": "code", "source": "x = 1", "outputs": [header], "metadata": {}}]}
    assert book_editions.executed_mode(executed) == "quick"
    assert book_editions.reusable(source, executed, quick=True)
    assert not book_editions.reusable(source, executed, quick=False)
    changed = {"cells": [{"cell_type": "code", "source": "x = 2", "outputs": [], "metadata": {}}]}
    assert not book_editions.reusable(changed, executed, quick=True)
    failed = json.loads(json.dumps(executed))
    failed["cells"][0]["outputs"].append({"output_type": "error", "ename": "E", "evalue": "", "traceback": []})
    assert not book_editions.reusable(source, failed, quick=True)


def _plain_runs(line: str, words: int = 5) -> list[str]:
    """Stretches of at least ``words`` plain words in ``line`` (no markup), as a reader sees them."""
    pieces = re.split(r"[`$*{}\[\]|\\_<>#=()]", line)
    return [" ".join(p.split()) for p in pieces if len(p.split()) >= words]


@pytest.mark.book
@pytest.mark.slow
def test_the_student_edition_of_a_chapter_has_no_solution_text(tmp_path):
    for name in ("_config.yml",):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "book").mkdir()
    for name in ("references.md", "references.bib", "03_mfcc.ipynb"):
        shutil.copy(ROOT / "book" / name, tmp_path / "book" / name)
    (tmp_path / "book" / "intro.md").write_text("# A book with one chapter\n\nChapter 3 follows.\n")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n"
                                       "  - file: book/03_mfcc\n  - file: book/references\n")
    log_path = tmp_path / "build.log"
    with open(log_path, "w") as log:
        status = book_editions.build_student(tmp_path, quick=True, log=log)
    assert status == 0, log_path.read_text()[-5000:]
    site = tmp_path / "_build" / "student" / "html"
    page = site / "book" / "03_mfcc.html"
    assert page.is_file() and (site / "_sources" / "book" / "03_mfcc.ipynb").is_file()

    source = _nb(ROOT / "book" / "03_mfcc.ipynb")
    student = book_editions.student_notebook(source)
    student_text = " ".join((_markdown(student) + " " + " ".join(
        _text(c) for c in student["cells"] if c["cell_type"] == "code")).split())
    runs = {run for text in book_editions.solution_texts(source) for line in text.splitlines()
            for run in _plain_runs(line) if run not in student_text}
    assert len(runs) >= 5, "too few solution sentences to search for"
    for path in site.rglob("*"):
        if path.suffix not in (".html", ".ipynb", ".md", ".txt"):
            continue
        shown = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8"))).split())
        found = [run for run in runs if run in shown]
        assert found == [], f"{path.relative_to(site)} shows solution text: {found[:3]}"
        assert "# Solution to exercise" not in shown and "admonition} Solution" not in shown
    shown = html.unescape(re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8")))
    assert "Exercise 3.1: Shapes" in shown and book_editions.STUDENT_NOTE.strip("*") in shown
    # the exercises' glued numbers that remain in the text were rendered (no raw role left)
    assert "{glue" not in shown


def test_glued_values_a_build_set_aside_go_back_to_the_cells_that_glued_them(tmp_path):
    executed = {"cells": [
        {"cell_type": "code", "metadata": {}, "source": "import x", "outputs": []},
        {"cell_type": "code", "metadata": {}, "source": 'book.glue("uar", 0.5)', "outputs": []},
        {"cell_type": "code", "metadata": {}, "source": "# Solution to exercise 1.1\nbook.glue('answer', 42)",
         "outputs": []},
        {"cell_type": "markdown", "metadata": {}, "source": ":::{admonition} Solution\nIt is {glue:text}`answer`.\n:::"},
    ]}
    prefix = "application/papermill.record/"
    glue_file = tmp_path / "ch.glue.json"
    glue_file.write_text(json.dumps({name: {"output_type": "display_data", "metadata": {"scrapbook": {
        "name": name, "mime_prefix": prefix}}, "data": {"text/plain": value}}
        for name, value in (("uar", "0.5"), ("answer", "42"), ("made_in_a_loop", "'x'"))}))
    restored = book_editions.restore_glue(json.loads(json.dumps(executed)), glue_file)
    names = [[o["metadata"]["scrapbook"]["name"] for o in c.get("outputs", [])] for c in restored["cells"]]
    assert names[:3] == [["made_in_a_loop"], ["uar"], ["answer"]]
    assert restored["cells"][1]["outputs"][0]["data"] == {prefix + "text/plain": "0.5"}
    student = book_editions.student_notebook(restored)
    kept = [o["metadata"]["scrapbook"]["name"] for c in student["cells"] for o in c.get("outputs", [])]
    assert kept == ["made_in_a_loop", "uar"]
    assert book_editions.restore_glue(executed, tmp_path / "missing.glue.json") is executed
