"""Each chapter's Markdown, as a plain CommonMark renderer (Colab, GitHub, nbviewer) shows it.

Colab renders a notebook's Markdown cells as plain Markdown, without MyST: what the book
and JupyterLab (with ``jupyterlab-myst``) draw as boxes, folded solutions and numbers
shows there as text. This test renders every Markdown cell with ``markdown-it-py`` in its
CommonMark preset (plus tables, which Colab draws) and fails on the markup that would
confuse such a reader. The rule, and why:

1. **Directives are colon-fenced admonitions with a title.** ``:::{admonition} Exercise
   3.1: ...`` still reads as a heading in plain text; a backtick fence (```` ```{note} ````)
   becomes a code block, so its prose shows as code; an untitled ``:::{admonition}`` shows
   nothing but markup. Named admonitions (``note``, ``tip``, ``important``, ``warning``)
   may omit the title: their name is a word. The only option allowed is ``:class:``
   (other options, such as ``:name:``, are noise in plain text).
2. **Fences stand alone.** The opening line with its option, and the closing ``:::``, are
   separated from the body by blank lines, so each renders as a short paragraph of its own
   and the body reads as ordinary text, instead of one run-on paragraph
   ``:::{admonition} Solution :class: dropdown The hidden cell ... :::``. The fences must
   balance.
3. **No MyST-only references.** Targets (``(name)=``) and the roles ``{ref}``,
   ``{numref}``, ``{eq}``, ``{doc}``, ``{term}``, ``{math}``, ``{download}`` render as
   noise and link nowhere; write "chapter 5" and ``$x$`` instead. Allowed roles:
   ``{cite}`` (the key names author and year) and ``{glue:text}``/``{glue}``.
4. **Code solutions run.** A solution shown as a Markdown code block is never executed by
   any build, so it can rot, and on Colab it cannot be run where it stands; code solutions
   belong in hidden code cells (``# Solution to exercise N.M``) that nbval executes.

Glued numbers (``{glue:text}`key```) are accepted: plain Markdown shows the key in code
font instead of the number. Every key is glued by a code cell of the same notebook
(tests/test_book.py), named for what it holds, so a Colab reader who runs the chapter can
see the value by printing it; pasting the values in needs an executed copy of the chapter,
as ``make slides`` makes. Solutions are not folded on Colab: they are labelled by their
title, "Solution", as the first word of their paragraph.

Chapters that do not follow the rule yet are listed in :data:`NOT_YET` with what fails;
they are expected to fail (``xfail``) until their authors rewrite them.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import browser_check  # noqa: E402

CHAPTERS = browser_check.chapter_notebooks(ROOT)

NAMED_ADMONITIONS = {"note", "tip", "important", "warning", "attention", "caution", "hint", "seealso"}
ALLOWED_ROLES = {"cite", "cite:t", "cite:p", "glue", "glue:text"}
ALLOWED_OPTIONS = {"class"}
_OPEN = re.compile(r"^(?P<fence>:{3,}|`{3,})\{(?P<name>[\w:-]+)\}[ \t]*(?P<title>.*)$")
_CLOSE = re.compile(r"^:{3,}\s*$")
_OPTION = re.compile(r"^:(?P<name>[\w-]+):")
_ROLE = re.compile(r"\{(?P<name>[a-z][\w:-]*)\}`")
_TARGET = re.compile(r"^\([\w:-]+\)=\s*$")

#: Chapters written before this rule, with what the rule finds there (their authors own them).
NOT_YET: dict = {}


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def markup_problems(markdown: str) -> list[str]:
    """What a plain CommonMark reader of ``markdown`` would trip over (rules 1-4 of this module)."""
    from markdown_it import MarkdownIt

    problems = []
    lines = markdown.splitlines()
    stack = []                  # open admonitions: (name, title, line number)
    in_code = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        opening = _OPEN.match(stripped)
        if in_code:
            in_code = not re.fullmatch(r"`{3,}", stripped)
            continue
        if opening and opening["fence"].startswith("`"):
            problems.append(f"line {i + 1}: backtick-fenced directive {stripped!r} shows as a code block")
            in_code = True
            continue
        if stripped.startswith("```"):
            if stack and stack[-1][1].startswith("Solution"):
                problems.append(f"line {i + 1}: a code block inside solution {stack[-1][1]!r}: no build runs it; "
                                "move it into a hidden code cell")
            in_code = True
            continue
        if opening:
            name, title = opening["name"], opening["title"].strip()
            if name != "admonition" and name not in NAMED_ADMONITIONS:
                problems.append(f"line {i + 1}: directive {{{name}}} has no plain-Markdown reading")
            elif name == "admonition" and not title:
                problems.append(f"line {i + 1}: an admonition without a title shows only markup")
            j = i + 1
            while j < len(lines) and _OPTION.match(lines[j].strip()):
                option = _OPTION.match(lines[j].strip())["name"]
                if option not in ALLOWED_OPTIONS:
                    problems.append(f"line {j + 1}: option :{option}: is noise in plain text")
                j += 1
            if j < len(lines) and lines[j].strip():
                problems.append(f"line {j + 1}: the body of {title or name!r} runs into its opening fence "
                                "(leave a blank line after the fence and its options)")
            stack.append((name, title, i + 1))
            continue
        if _CLOSE.match(stripped):
            if not stack:
                problems.append(f"line {i + 1}: a closing ':::' with nothing open")
                continue
            name, title, _ = stack.pop()
            if i > 0 and lines[i - 1].strip() and not _CLOSE.match(lines[i - 1].strip()):
                problems.append(f"line {i + 1}: the body of {title or name!r} runs into its closing ':::' "
                                "(leave a blank line before it)")
            continue
        if _TARGET.match(stripped):
            problems.append(f"line {i + 1}: target {stripped!r} shows as text and links nowhere")
    for name, title, at in stack:
        problems.append(f"line {at}: {title or name!r} is never closed")

    # what the renderer actually shows: roles as literal text, and fences merged into prose
    md = MarkdownIt("commonmark").enable("table")
    for token in md.parse(markdown):
        if token.type == "fence" and token.info.startswith("{"):
            continue                                    # reported above
        if token.type != "inline":
            continue
        for role in _ROLE.finditer(token.content):
            if role["name"] not in ALLOWED_ROLES:
                problems.append(f"role {{{role['name']}}} shows as literal text: {token.content[:60]!r}")
        if ":::" in token.content:
            for piece in token.content.split("\n"):
                if ":::" in piece and not (_OPEN.match(piece.strip()) or _CLOSE.match(piece.strip())):
                    problems.append(f"':::' inside running text: {piece.strip()[:70]!r}")
    return list(dict.fromkeys(problems))


def chapter_problems(notebook: Path) -> list[str]:
    """:func:`markup_problems` of every Markdown cell of ``notebook``, each prefixed with its cell."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    return [f"{notebook.name} cell {n} ({cell.get('id', '?')}): {p}"
            for n, cell in enumerate(cells) if cell["cell_type"] == "markdown"
            for p in markup_problems(_source(cell))]


# ---------------------------------------------------------------------------------------
# the rule itself, on small examples (each must be able to fail)
# ---------------------------------------------------------------------------------------
GOOD = """Some prose with a number, {glue:text}`n_clips`, and a citation {cite}`balata2021`.

:::{admonition} Exercise 3.1: Count the frames
:class: note

How many frames?

:::

:::{admonition} Solution
:class: dropdown

The hidden cell above counts them.

:::
"""


def test_well_formed_markup_passes():
    assert markup_problems(GOOD) == []


@pytest.mark.parametrize("bad, expected", [
    (":::{admonition} Solution\n:class: dropdown\nThe answer.\n\n:::\n", "runs into its opening fence"),
    (":::{admonition} Solution\n:class: dropdown\n\nThe answer.\n:::\n", "runs into its closing"),
    ("```{note}\nRead this.\n```\n", "shows as a code block"),
    (":::{admonition}\n:class: note\n\nUntitled.\n\n:::\n", "without a title"),
    (":::{admonition} Exercise 1.1\n:name: ex-1\n\nText.\n\n:::\n", "option :name:"),
    (":::{admonition} Exercise 1.1\n\nText.\n", "never closed"),
    ("(my-target)=\n# Heading\n", "links nowhere"),
    ("See {numref}`fig-1` for details.\n", "role {numref}"),
    ("A formula {math}`x^2` inline.\n", "role {math}"),
    (":::{admonition} Solution\n:class: dropdown\n\n```python\nprint(1)\n```\n\n:::\n", "no build runs it"),
    ("Prose that mentions ::: in passing.\n", "inside running text"),
])
def test_each_kind_of_leftover_is_reported(bad, expected):
    problems = markup_problems(bad)
    assert any(expected in p for p in problems), problems


def test_a_code_block_outside_a_solution_is_fine():
    assert markup_problems("Run this in a terminal:\n\n```bash\nserlib predict RUN file.wav\n```\n") == []


# ---------------------------------------------------------------------------------------
# every chapter
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("notebook", [
    pytest.param(p, marks=pytest.mark.xfail(reason=f"written before the rule: {NOT_YET[p.stem]}", strict=False))
    if p.stem in NOT_YET else p for p in CHAPTERS], ids=[p.stem for p in CHAPTERS])
def test_chapter_reads_well_as_plain_markdown(notebook):
    problems = chapter_problems(notebook)
    assert problems == [], "\n".join(problems[:40])
