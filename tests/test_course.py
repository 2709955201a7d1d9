"""The course plan's numbers (serlib.course) and the plan itself (book/course.md)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from serlib import book_build, course

ROOT = Path(__file__).resolve().parent.parent


def _notebook(path: Path, cells: list[tuple[str, str]]) -> Path:
    nb = {"cells": [{"cell_type": kind, "metadata": {}, "source": text,
                     **({"outputs": [], "execution_count": None} if kind == "code" else {})} for kind, text in cells],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb))
    return path


def test_prose_words_leave_out_code_maths_markup_and_table_rules():
    text = ("# A title here\n\nFive words of plain prose.\n\n```python\nx = [1, 2, 3]\n```\n\n"
            ":::{admonition} Exercise 1.1: Two words\n:class: note\nInside counts.\n:::\n\n"
            "```{note}\nNote text.\n```\n\n$$ a + b = c $$ and $x$ {glue:text}`value` {cite}`key`\n\n"
            "| a | b |\n|---|:-:|\n| c | d |")
    # 3 + 5 + the admonition's title 4 + "Inside counts." 2 + "Note text." 2 + "and" + 2 roles + 4 table cells
    assert course.prose_words(text) == 3 + 5 + 4 + 2 + 2 + 1 + 2 + 4
    assert course.prose_words("") == 0


def test_chapter_stats_count_what_a_student_reads_and_runs(tmp_path):
    path = _notebook(tmp_path / "book" / "01_demo.ipynb", [
        ("markdown", "# Demo chapter\n\nOne two three four."),
        ("code", "import numpy as np\n\n# a comment\nx = np.ones(3)"),
        ("markdown", "## Exercises\n\n:::{admonition} Exercise 1.1: First one\n:class: note\nDo it.\n:::\n\n"
                     ":::{admonition} Solution\n:class: dropdown\nMany many words that a solution holds here.\n:::"),
        ("code", "# Solution to exercise 1.1\nprint(1)\nprint(2)"),
        ("markdown", ":::{admonition} Exercise 1.2: Second\n:class: note\nAgain.\n:::"),
    ])
    stats = course.chapter_stats(path)
    assert stats["title"] == "Demo chapter" and stats["chapter"] == "01_demo"
    assert stats["code_lines"] == 2
    assert stats["exercises"] == [("1.1", "First one"), ("1.2", "Second")]
    # title 2 + 4 + "Exercises" 1 + exercise titles 4 and 3 + "Do it." 2 + "Again." 1; nothing from the solution
    assert stats["words"] == 2 + 4 + 1 + 4 + 3 + 2 + 1


def test_the_lesson_table_adds_estimates_to_measurements(tmp_path):
    for stem, words in (("01_a", 400), ("02_b", 200)):
        _notebook(tmp_path / "book" / f"{stem}.ipynb", [
            ("markdown", "# T\n\n" + " ".join(["word"] * (words - 1))),
            ("markdown", f":::{{admonition}} Exercise {stem[1]}.1: X\n:::\n\n:::{{admonition}} Exercise {stem[1]}.2: Y\n:::"),
        ])
    timings = pd.DataFrame({"chapter": ["01_a", "02_b"], "minutes": [3.0, 4.5]})
    plan = course.lesson_table(tmp_path, [("both", ["01_a", "02_b"], ["1.2"]), ("second", ["02_b"])], timings)
    first, second = plan.iloc[0], plan.iloc[1]
    titles = 2 * 3     # "Exercise 1.1: X" and "Exercise 1.2: Y", three words each, per chapter
    assert first.words == 600 + 2 * titles and second.words == 200 + titles
    assert first.reading_min == pytest.approx(first.words / course.WORDS_PER_MINUTE)
    assert first.run_min == 7.5 and first.lab_min == 7.5 + course.MINUTES_PER_EXERCISE
    assert second.lab_min == 4.5 + 2 * course.MINUTES_PER_EXERCISE
    assert first.set == "1.2 Y" and first.exercises == "1.1, 1.2, 2.1, 2.2" and first.chapters == "1, 2"
    unmeasured = course.lesson_table(tmp_path, [("both", ["01_a", "02_b"])], timings.iloc[:1])
    assert unmeasured.iloc[0].run_min is None and unmeasured.iloc[0].lab_min is None
    with pytest.raises(ValueError, match="3.1"):
        course.lesson_table(tmp_path, [("both", ["01_a"], ["3.1"])])


def test_the_course_plan_covers_every_chapter_once_in_order():
    page = (ROOT / "book" / "course.md").read_text(encoding="utf-8")
    lessons = re.findall(r'^\s+\("[^"]+", \[([^\]]*)\]', page, re.MULTILINE)
    stems = [s for lesson in lessons for s in re.findall(r'"([^"]+)"', lesson)]
    assert len(lessons) == 8
    assert stems == [p.stem for p in book_build.chapter_notebooks(ROOT)]
    assert "book/course" in book_build.toc_files(ROOT) and "book/glossary" in book_build.toc_files(ROOT)
