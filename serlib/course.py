"""Numbers for the course plan: how much each chapter asks of a student.

:func:`chapter_stats` counts what a chapter gives to read (the words of its prose, without
solutions, code, equations or markup) and to run (lines of code, exercises);
:func:`lesson_table` groups chapters into lessons and adds the estimated reading time
(:data:`WORDS_PER_MINUTE`) and the *measured* time the chapters took to execute in full
mode, from ``benchmarks/results/chapters.json`` (:func:`serlib.results.chapter_timings`),
where recorded. Explained in the page "Teaching with this book".
"""
from __future__ import annotations

import json
import re
from pathlib import Path

#: Reading speed for technical prose; the same default as MyST's reading-time estimate.
WORDS_PER_MINUTE = 200
#: Estimated minutes a student spends on one exercise in the lab (an estimate, not a measurement).
MINUTES_PER_EXERCISE = 20

_ROLE = re.compile(r"\{[a-z:]+\}`[^`]*`")
_MATH = re.compile(r"\$\$.+?\$\$|\$[^$\n]+\$|\\begin\{(\w+\*?)\}.+?\\end\{\1\}", re.DOTALL)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’.,%-]*")
_EXERCISE = re.compile(r"\{admonition\} Exercise (\d+\.\d+):?\s*([^\n]*)")


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _directive_title(line: str) -> str:
    """The argument of a directive's opening line (```` ```{note} Title ````), or nothing."""
    match = re.match(r"^(?:`{3,}|:{3,})\{[\w:-]+\}\s*(.*)$", line)
    return match.group(1) if match else ""


def prose_words(markdown: str) -> int:
    """Words a reader reads in ``markdown``: code blocks, equations, roles, options and table rules left out."""
    kept, stack = [], []                       # stack of open ``` blocks: "code" or "directive"
    for line in markdown.splitlines():
        stripped = line.strip()
        if stack and stack[-1] == "code":
            if re.fullmatch(r"`{3,}", stripped):
                stack.pop()
            continue
        if stripped.startswith("```"):
            if re.fullmatch(r"`{3,}", stripped) and stack:
                stack.pop()
            else:
                stack.append("directive" if stripped.startswith("```{") else "code")
                kept.append(_directive_title(stripped))
            continue
        if stripped.startswith(":::"):
            kept.append(_directive_title(stripped))        # an admonition's title is read
            continue
        if re.match(r"^:[\w-]+:", stripped) or re.fullmatch(r"\|?[-:| ]+\|?", stripped):
            continue
        kept.append(line)
    text = _MATH.sub(" ", "\n".join(kept))
    text = _ROLE.sub(" x ", text)
    return len(_WORD.findall(text))


def chapter_stats(path) -> dict:
    """Words of prose, lines of code and the exercises of chapter notebook ``path`` (solutions left out)."""
    from .book_editions import STUDENT_NOTE, student_notebook

    nb = student_notebook(json.loads(Path(path).read_text(encoding="utf-8")))
    markdown = "\n\n".join(_source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    markdown = markdown.replace(STUDENT_NOTE, "")      # the same count for both editions
    code = [line for c in nb["cells"] if c["cell_type"] == "code" for line in _source(c).splitlines()
            if line.strip() and not line.strip().startswith("#")]
    exercises = [(number, title.strip()) for number, title in _EXERCISE.findall(markdown)]
    title = next((line[2:].strip() for line in markdown.splitlines() if line.startswith("# ")), Path(path).stem)
    return {"chapter": Path(path).stem, "title": title, "words": prose_words(markdown), "code_lines": len(code),
            "exercises": exercises}


def lesson_table(root, lessons, timings=None):
    """One row per lesson: chapters, words, estimated reading minutes, measured run minutes, exercises.

    ``lessons`` is a list of ``(title, [chapter stems], [exercises to set])`` (the third
    item optional: every exercise); ``timings`` a table like
    :func:`serlib.results.chapter_timings` (``chapter`` and ``minutes`` columns; a
    chapter missing there gives the lesson no run time). Lab minutes are the run time plus
    :data:`MINUTES_PER_EXERCISE` per exercise set.
    """
    import pandas as pd

    measured = {} if timings is None or not len(timings) else dict(zip(timings["chapter"], timings["minutes"]))
    rows = []
    for number, (title, stems, *chosen) in enumerate(lessons, 1):
        stats = [chapter_stats(Path(root) / "book" / f"{stem}.ipynb") for stem in stems]
        words = sum(s["words"] for s in stats)
        titles = dict(e for s in stats for e in s["exercises"])
        to_set = list(chosen[0]) if chosen else list(titles)
        unknown = [e for e in to_set if e not in titles]
        if unknown:
            raise ValueError(f"lesson {number} sets exercise(s) {', '.join(unknown)}, which its chapters do not have")
        run = [measured.get(stem) for stem in stems]
        run_minutes = sum(run) if all(m is not None for m in run) else None
        rows.append({"lesson": number, "title": title, "chapters": ", ".join(str(int(s[:2])) for s in stems),
                     "words": words, "reading_min": words / WORDS_PER_MINUTE,
                     "code_lines": sum(s["code_lines"] for s in stats), "run_min": run_minutes,
                     "exercises": ", ".join(titles), "n_exercises": len(titles),
                     "set": "; ".join(f"{e} {titles[e]}" for e in to_set),
                     "lab_min": None if run_minutes is None else run_minutes + MINUTES_PER_EXERCISE * len(to_set)})
    return pd.DataFrame(rows)
