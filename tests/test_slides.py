"""Slide decks (``make slides``): which cells become slides, MyST rewritten, decks that run offline.

The fast tests run :func:`serlib.book_slides.deck_cells` and :func:`myst_to_markdown` on
small made-up executed notebooks. The slow one writes the deck of chapter 3 (executed in
a one-chapter book) and opens it in headless Chromium with ``tests/slides_check.py``;
``tests/test_book.py`` does the same for every chapter of the full quick build.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from serlib import book_slides
from serlib.errors import SerlibError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import browser_check  # noqa: E402
import slides_check  # noqa: E402

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="


def _md(text, **meta):
    return {"cell_type": "markdown", "metadata": meta, "source": text}


def _code(source, outputs=(), tags=(), **meta):
    return {"cell_type": "code", "metadata": {"tags": list(tags), **meta}, "source": source,
            "execution_count": 1, "outputs": list(outputs)}


def _figure(label="fig"):
    return {"output_type": "display_data", "metadata": {}, "data": {"image/png": PNG, "text/plain": f"<{label}>"}}


def _glued(name, value):
    return {"output_type": "display_data", "metadata": {"scrapbook": {"name": name, "mime_prefix":
            "application/papermill.record/"}}, "data": {"application/papermill.record/text/plain": repr(value)}}


def _stream(text):
    return {"output_type": "stream", "name": "stdout", "text": text}


CHAPTER = {"cells": [
    _md("# Chapter 9 · Test\n\nA long introduction that no slide shows.\n\n:::{admonition} Learning objectives\n"
        ":class: tip\nAfter this chapter you can\n\n* plot a figure.\n:::"),
    _code("from serlib import book", [_stream("Chapter 9 header\n")]),
    _md("## Figures\n\nSome prose {cite}`balata2021` that stays in the book."),
    _code("plot()", [_stream("printed text\n"), _figure("first")]),
    _code("table()", [{"output_type": "execute_result", "execution_count": 1, "metadata": {},
                       "data": {"text/html": "<table><tr><td>1</td></tr></table>", "text/plain": "t"}}]),
    _code("audio()", [{"output_type": "display_data", "metadata": {},
                       "data": {"text/html": "<audio controls><source src='data:audio/wav;base64,AA=='></audio>"}}]),
    _md("## Equations\n\nThe UAR is\n\n$$\n\\mathrm{UAR} = \\frac{1}{K}\\sum_k R_k\n$$ (uar)\n\nand"
        " measured {glue:text}`uar:.2f` here."),
    _code("book.glue('uar', 0.6789)", [_glued("uar", 0.6789)]),
    _code("hidden()", [_figure("hidden by tag")], tags=["remove-output"]),
    _code("skipped()", [_figure("skipped by slide type")], slideshow={"slide_type": "skip"}),
    _md("(a-label)=\n## Key point\n\nA lecturer tagged this paragraph: see {cite:t}`balata2021`.",
        slideshow={"slide_type": "slide"}),
    _md("## Summary\n\n| a | b |\n|---|---|\n| 1 | 2 |"),
    _md("## Exercises\n\n:::{admonition} Exercise 9.1: Plot\n:class: note\nPlot it.\n:::"),
    _code("# Solution to exercise 9.1\nplot()", [_figure("solution figure")], tags=["hide-cell"]),
    _md(":::{admonition} Solution\n:class: dropdown\nThe solution text.\n:::"),
], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
REFS = {"balata2021": ("Balata & Oliveira", "2021")}


def _texts(deck):
    return ["".join(c["source"]) if c["cell_type"] == "markdown" else
            " ".join(o["data"].get("text/plain", "audio") for o in c["outputs"]) for c in deck]


def test_the_deck_holds_title_figures_audio_equations_summary_and_exercises():
    deck = book_slides.deck_cells(CHAPTER, refs=REFS)
    texts = _texts(deck)
    slides = [c for c in deck if c["metadata"]["slideshow"]["slide_type"] == "slide"]
    assert texts[0].startswith("# Chapter 9 · Test") and "plot a figure" in texts[0]
    assert "long introduction" not in texts[0] and ":::" not in texts[0]
    assert texts[1:5] == ["## Figures", "<first>", "## Figures", "audio"]
    equation = next(t for t in texts if "\\mathrm{UAR}" in t)
    assert equation.startswith("## Equations") and "(uar)" not in equation and "measured" not in equation
    tagged = next(t for t in texts if "Key point" in t)
    assert "Balata & Oliveira (2021)" in tagged and "a-label" not in tagged and "{cite" not in tagged
    assert any(t.startswith("## Summary") and "| 1 | 2 |" in t for t in texts)
    assert texts[-1] == "## Exercises\n\n* Exercise 9.1: Plot"
    joined = "\n".join(texts)
    for absent in ("printed text", "<table>", "hidden by tag", "skipped by slide type", "solution figure",
                   "The solution text", "Chapter 9 header", "stays in the book"):
        assert absent not in joined, absent
    # the figure and audio outputs stay as they were; every slide opens with a title
    assert [o["data"]["image/png"] for c in deck if c["cell_type"] == "code" for o in c["outputs"]
            if "image/png" in o["data"]] == [PNG]
    assert len(slides) == 7 and all("".join(c["source"]).startswith("#") for c in slides)


def test_myst_markup_becomes_plain_markdown():
    glue = {"acc": "0.51234", "name": "'Actor 03'", "n": "1200"}
    text = ("(running)=\n## Running\n\nAccuracy {glue:text}`acc:.1%` for {glue:text}`name`"
            " on {glue:text}`n:,d` clips {cite}`balata2021,unknown2000`; see [](running) and"
            " [the data](data-chapter) or [a site](https://example.org), {ref}`the text <lbl>`, {math}`x^2`.\n\n"
            "::::{important}\nRead this.\n:::{note}\nInner.\n:::\n::::\n\n```{tableofcontents}\n```\n"
            "```python\nx = 1\n```")
    out = book_slides.myst_to_markdown(text, glue, REFS)
    assert "(running)=" not in out and "## Running" in out
    assert "Accuracy 51.2% for Actor 03 on 1,200 clips (Balata & Oliveira 2021; unknown2000)" in out
    assert "see running and the data or [a site](https://example.org), the text, $x^2$." in out
    assert "**Important**\n\nRead this.\n\n**Note**\n\nInner." in out
    assert "tableofcontents" not in out and "```python\nx = 1\n```" in out
    with pytest.raises(SerlibError, match="missing"):
        book_slides.myst_to_markdown("{glue:text}`missing`", {}, {})


def test_the_bibliography_gives_authors_and_years():
    refs = book_slides.bibliography(ROOT / "book" / "references.bib")
    assert refs["balata2021"] == ("Balata & Oliveira", "2021")
    assert refs["livingstone2018ravdess"] == ("Livingstone & Russo", "2018")
    assert all(who and year for who, year in refs.values())


def test_assets_come_from_installed_packages(tmp_path, monkeypatch):
    book_slides.copy_assets(tmp_path)
    assert (tmp_path / "reveal.js" / "dist" / "reveal.js").is_file()
    assert (tmp_path / "reveal.js" / "plugin" / "notes" / "notes.js").is_file()
    assert (tmp_path / "mathjax" / "MathJax.js").is_file()
    monkeypatch.setenv("SERLIB_REVEAL_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(SerlibError, match="reveal.js"):
        book_slides.copy_assets(tmp_path / "other")


@pytest.mark.book
@pytest.mark.slow
def test_a_chapter_deck_shows_its_slides_offline_in_a_browser(tmp_path):
    browser, driver = browser_check.find_chromium()
    if not browser or not driver:
        pytest.skip("Chromium/ChromeDriver not installed (apt-get install chromium chromium-driver)")
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    (tmp_path / "book").mkdir()
    for name in ("intro.md", "references.bib", "03_mfcc.ipynb"):
        shutil.copy(ROOT / "book" / name, tmp_path / "book" / name)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/03_mfcc\n")
    lines = []
    assert book_slides.build_slides(tmp_path, quick=True, log=_Log(lines)) == 0, "\n".join(lines)
    deck = tmp_path / "_build" / "slides" / "03_mfcc.slides.html"
    written = int(next(line for line in lines if "03_mfcc.slides.html" in line).rsplit(":", 1)[1].split()[0])
    problems = slides_check.check_decks(deck.parent, {deck.name: written}, log=lines.append)
    assert problems == [], "\n".join(lines)
    assert written >= 10


class _Log:
    """A file-like log that keeps its lines."""

    def __init__(self, lines):
        self.lines = lines

    def write(self, text):
        self.lines += [line for line in text.splitlines() if line.strip()]

    def flush(self):
        pass
