"""Slide decks from the chapters: ``make slides`` writes ``_build/slides/NN_name.slides.html``.

Each deck is a reveal.js presentation made with nbconvert's slides exporter from the
*executed* chapter (the last ``make book``'s outputs when its code is unchanged, else the
chapter is run; see :mod:`serlib.book_editions`), with the solutions taken out. A deck
holds what a lecture shows, not every paragraph:

* a title slide with the chapter's learning objectives;
* every figure and every audio player (the cell's code is hidden, its printed text dropped);
* every display equation, under the heading of its section;
* the chapter's summary table and the list of its exercises.

A cell's *Slide Type* (JupyterLab: property inspector; ``metadata.slideshow.slide_type``)
overrides the choice: ``skip`` leaves an automatically chosen cell out, any other type
puts a cell in. MyST markup that a plain Markdown renderer would show raw is rewritten:
glued numbers are pasted from the run, citations become "Author (year)", admonitions
become bold titles. The decks work offline: reveal.js (from the ``sphinx-revealjs``
package) and MathJax (from ``jupyter-server-mathjax``) are copied beside them, and nothing
is loaded from the network. Explained in the chapter "Introduction".
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from .book_build import chapter_notebooks, command_line, quick_choice, repo_root
from .errors import SerlibError

#: MathJax configuration file the decks load (shipped with jupyter-server-mathjax).
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"
_IMAGE_TYPES = ("image/png", "image/svg+xml", "image/jpeg")
_HIDDEN_OUTPUT_TAGS = {"remove-output", "remove-cell"}
_ROLE = re.compile(r"\{(?P<role>[a-z][a-z:]*)\}`(?P<body>[^`]*)`")
_FENCE_OPEN = re.compile(r"^(?P<fence>:{3,}|`{3,})\{(?P<name>[a-z][\w-]*)\}[ \t]*(?P<arg>.*)$")
_DISPLAY_MATH = re.compile(r"\$\$.+?\$\$(?:[ \t]*\([\w-]+\))?|\\begin\{(\w+\*?)\}.+?\\end\{\1\}", re.DOTALL)

TEMPLATE = r"""{%- extends 'reveal/index.html.j2' -%}
{#- serlib's offline deck: no jQuery, RequireJS, Mermaid or widget scripts from a CDN. -#}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}
{{ super() }}
<script type="text/x-mathjax-config">
MathJax.Hub.Config({"HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null}});
</script>
{%- endblock html_head_js_mathjax -%}
{%- block footer_js -%}
<style>
.reveal .jp-OutputArea-output img { max-height: 520px; width: auto; max-width: 100%; }
.reveal .jp-RenderedHTMLCommon table { font-size: 0.7em; }
.reveal section { text-align: left; }
.reveal h1, .reveal h2 { text-align: left; }
</style>
<script src="{{ resources.reveal.url_prefix }}/dist/reveal.js"></script>
<script src="{{ resources.reveal.url_prefix }}/plugin/notes/notes.js"></script>
<script>
Reveal.initialize({
  controls: true, progress: true, history: true, center: false,
  transition: "{{ resources.reveal.transition | default('slide', true) }}",
  slideNumber: "c/t", plugins: [RevealNotes],
  width: {{ resources.reveal.width | default('960', true) }},
  height: {{ resources.reveal.height | default('700', true) }}
});
Reveal.on("slidechanged", function (event) {
  if (window.MathJax && window.MathJax.Hub) { MathJax.Hub.Queue(["Typeset", MathJax.Hub, event.currentSlide]); }
});
</script>
{%- endblock footer_js -%}
"""


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else (value or "")


# ---------------------------------------------------------------------------------------
# MyST to plain Markdown
# ---------------------------------------------------------------------------------------
def glue_values(nb: dict) -> dict[str, str]:
    """``{name: text/plain}`` of every value glued by an executed notebook's cells."""
    values = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            meta = (output.get("metadata") or {}).get("scrapbook")
            if not meta:
                continue
            data = output.get("data", {})
            plain = data.get(f"{meta.get('mime_prefix', '')}text/plain", data.get("text/plain"))
            if plain is not None:
                values[meta["name"]] = _text(plain)
    return values


def _format_glued(plain: str, spec: str) -> str:
    """A glued value as ``{glue:text}`` shows it (myst-nb's rule: literal value, then the format spec)."""
    try:
        value = ast.literal_eval(plain)
    except (SyntaxError, ValueError):
        value = plain
    if not spec:
        return str(value)
    kind = spec[-1]
    if kind in "bcdoxX":
        value = int(value)
    elif kind in "eEfFgGn%":
        value = float(value)
    elif kind == "s":
        value = str(value)
    return format(value, spec)


def bibliography(path) -> dict[str, tuple[str, str]]:
    """``{key: (authors, year)}`` from a BibTeX file: "Balata & Oliveira", "2021"."""
    text = Path(path).read_text(encoding="utf-8") if path and Path(path).is_file() else ""
    found = {}
    for match in re.finditer(r"@\w+\{([^,\s]+),(.*?)\n\}", text, re.DOTALL):
        key, body = match.groups()
        author = re.search(r"author\s*=\s*\{(.*?)\},?\s*\n", body, re.DOTALL)
        year = re.search(r"year\s*=\s*\{?([^},\n]*)", body)
        names = [n.strip() for n in re.split(r"\s+and\s+", re.sub(r"\\['`^\"~]", "", (author.group(1) if author else key)).replace("{", "")
                                                 .replace("}", ""))]
        surnames = [n.split(",")[0].strip() if "," in n else n.split()[-1] for n in names if n]
        who = (surnames[0] if len(surnames) == 1 else " & ".join(surnames) if len(surnames) == 2
               else f"{surnames[0]} et al.")
        found[key] = (who, year.group(1).strip() if year else "n.d.")
    return found


def _role(role: str, body: str, glue: dict, refs: dict) -> str:
    if role.startswith("glue"):
        name, _, spec = body.partition(":")
        if name not in glue:
            raise SerlibError(f"the text quotes the glued value {name!r}, which no cell glued")
        return _format_glued(glue[name], spec)
    if role.startswith("cite"):
        keys = [k.strip() for k in body.split(",") if k.strip()]
        cited = [refs.get(k, (k, "")) for k in keys]
        if role == "cite:t":
            return "; ".join(f"{who} ({year})" for who, year in cited)
        return "(" + "; ".join(f"{who} {year}".strip() for who, year in cited) + ")"
    if role == "math":
        return f"${body}$"
    label = re.match(r"(.*?)\s*<[^>]*>$", body)
    return label.group(1) if label else body


def myst_to_markdown(text: str, glue: dict | None = None, refs: dict | None = None) -> str:
    """``text`` with its MyST markup rewritten as plain Markdown (what nbconvert and Colab render).

    Roles: glued values pasted (``glue``: :func:`glue_values`), citations as "(Author year)"
    (``refs``: :func:`bibliography`), cross-references as their text. Directives: admonitions
    and notes as a bold title and their body, their options dropped; a table of contents
    dropped. Target lines ``(label)=`` and equation labels go.
    """
    glue, refs = glue or {}, refs or {}
    lines = text.splitlines()
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        match = _FENCE_OPEN.match(line)
        if not match:
            if not re.match(r"^\([\w-]+\)=\s*$", line):
                out.append(line)
            i += 1
            continue
        fence, name, arg = match.group("fence"), match.group("name"), match.group("arg").strip()
        close = re.compile(rf"^{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = next((j for j in range(i + 1, len(lines)) if close.match(lines[j])), len(lines))
        body = lines[i + 1:end]
        while body and re.match(r"^:[\w-]+:", body[0]):
            body = body[1:]
        inner = myst_to_markdown("\n".join(body), glue, refs)
        if name in ("tableofcontents", "bibliography"):
            pass
        elif name in ("code-cell", "code-block", "code"):
            out += [f"```{arg}", inner, "```"]
        elif name in ("math",):
            out += ["$$", inner, "$$"]
        else:
            title = arg or name.capitalize()
            out += ["", f"**{title}**", "", inner, ""]
        i = end + 1
    result = "\n".join(out)
    result = _ROLE.sub(lambda m: _role(m.group("role"), m.group("body"), glue, refs), result)
    result = re.sub(r"\[\]\(([\w-]+)\)", r"\1", result)                   # [](label)
    result = re.sub(r"\[([^\]]+)\]\(([\w-]+)\)", r"\1", result)            # [text](label), not URLs
    result = re.sub(r"(\$\$)[ \t]*\([\w-]+\)", r"\1", result)              # $$ ... $$ (label)
    return result


# ---------------------------------------------------------------------------------------
# which cells become slides
# ---------------------------------------------------------------------------------------
def _slide_type(cell: dict) -> str | None:
    return (cell.get("metadata", {}).get("slideshow") or {}).get("slide_type")


def _md(text: str, slide_type: str = "slide") -> dict:
    return {"cell_type": "markdown", "metadata": {"slideshow": {"slide_type": slide_type}}, "source": text}


def _shown_outputs(cell: dict, everything: bool = False) -> list[dict]:
    """The outputs of a code cell that a slide shows: figures, audio players and Markdown labels."""
    if set(cell.get("metadata", {}).get("tags", [])) & _HIDDEN_OUTPUT_TAGS:
        return []
    kept = []
    for output in cell.get("outputs", []):
        if output.get("output_type") not in ("display_data", "execute_result"):
            continue
        data = output.get("data", {})
        if (output.get("metadata") or {}).get("scrapbook"):
            continue
        html = _text(data.get("text/html"))
        if any(k in data for k in _IMAGE_TYPES) or "<audio" in html or "text/markdown" in data or (
                everything and ("text/html" in data or "text/plain" in data)):
            kept.append(output)
    return kept


def _has_media(outputs: list[dict]) -> bool:
    return any(any(k in o.get("data", {}) for k in _IMAGE_TYPES) or "<audio" in _text(o.get("data", {})
               .get("text/html")) for o in outputs)


def deck_cells(nb: dict, *, refs: dict | None = None) -> list[dict]:
    """The cells of the slide deck for executed notebook ``nb`` (solutions already removed)."""
    from .book_editions import student_notebook

    glue = glue_values(nb)
    nb = student_notebook(nb)
    cells = nb.get("cells", [])
    deck: list[dict] = []
    section, in_exercises, exercises = "", False, []

    def convert(text):
        return myst_to_markdown(text, glue, refs)

    for index, cell in enumerate(cells):
        chosen = _slide_type(cell)
        source = _source(cell)
        if cell.get("cell_type") == "markdown":
            if index == 0:
                title = next((line for line in source.splitlines() if line.startswith("# ")), "# Chapter")
                section = title[2:].strip()
                objectives = re.search(r"^(:{3,})\{admonition\} Learning objectives.*?^\1\s*$", source,
                                       re.MULTILINE | re.DOTALL)
                deck.append(_md(title + "\n\n" + (convert(objectives.group(0)) if objectives else "")))
            elif chosen and chosen != "skip":
                deck.append(_md(convert(source), chosen))
            # the cell in stretches that each start at a "## " heading
            for chunk in re.split(r"(?m)^(?=## )", source):
                heading = re.match(r"## (.+)", chunk)
                if heading:
                    section = heading.group(1).strip()
                    in_exercises = in_exercises or section == "Exercises"
                if in_exercises:
                    exercises += re.findall(r"\{admonition\} (Exercise [^\n]+)", chunk)
                    continue
                if index == 0 or chosen:
                    continue
                maths = [m.group(0) for m in _DISPLAY_MATH.finditer(chunk)]
                if maths:
                    deck.append(_md(f"## {section}\n\n" + "\n\n".join(convert(m) for m in maths)))
                if heading and section == "Summary":
                    deck.append(_md(convert(chunk)))
            continue
        if cell.get("cell_type") != "code" or chosen == "skip":
            continue
        outputs = _shown_outputs(cell, everything=bool(chosen))
        if outputs and (chosen or _has_media(outputs)):
            deck.append(_md(f"## {section}", chosen if chosen in ("slide", "subslide") else "slide"))
            deck.append({"cell_type": "code", "metadata": {"slideshow": {"slide_type": "-"}}, "source": "",
                         "execution_count": None, "outputs": outputs})
    if exercises:
        deck.append(_md("## Exercises\n\n" + "\n".join(f"* {e}" for e in exercises)))
    return deck


# ---------------------------------------------------------------------------------------
# the build
# ---------------------------------------------------------------------------------------
def _package_folder(module: str, *parts: str) -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)
    return folder if folder.is_dir() else None


def copy_assets(folder: Path) -> None:
    """reveal.js (``reveal.js/``) and MathJax (``mathjax/``) into ``folder``, from installed packages.

    ``$SERLIB_REVEAL_DIR`` may name an unpacked reveal.js 4 or 5 (holding ``dist/reveal.js``)
    to use instead of the copy inside ``sphinx-revealjs``.
    """
    reveal = Path(os.environ["SERLIB_REVEAL_DIR"]) if os.environ.get("SERLIB_REVEAL_DIR") else \
        _package_folder("sphinx_revealjs", "_static", "revealjs")
    if reveal is None or not (reveal / "dist" / "reveal.js").is_file():
        raise SerlibError("no local reveal.js found: install the book extras (pip install -e '.[book]', which "
                          "brings sphinx-revealjs) or set SERLIB_REVEAL_DIR to an unpacked reveal.js")
    mathjax = _package_folder("jupyter_server_mathjax", "static")
    if mathjax is None or not (mathjax / "MathJax.js").is_file():
        raise SerlibError("no local MathJax found: install the book extras (pip install -e '.[book]', which "
                          "brings jupyter-server-mathjax)")
    for name, source in (("reveal.js/dist", reveal / "dist"), ("reveal.js/plugin/notes", reveal / "plugin" / "notes"),
                         ("mathjax", mathjax)):
        target = folder / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.map", "*.esm.js"))


def _exporter(template_root: Path):
    from nbconvert import SlidesExporter
    from traitlets.config import Config

    (template_root / "serlib_reveal").mkdir(parents=True, exist_ok=True)
    (template_root / "serlib_reveal" / "index.html.j2").write_text(TEMPLATE, encoding="utf-8")
    (template_root / "serlib_reveal" / "conf.json").write_text(
        json.dumps({"base_template": "reveal", "mimetypes": {"text/html": True}}), encoding="utf-8")
    config = Config()
    config.SlidesExporter.extra_template_basedirs = [str(template_root)]
    config.SlidesExporter.template_name = "serlib_reveal"
    config.SlidesExporter.reveal_url_prefix = "reveal.js"
    config.SlidesExporter.reveal_theme = "white"
    config.SlidesExporter.mathjax_url = f"mathjax/MathJax.js?config={MATHJAX_CONFIG}"
    config.SlidesExporter.exclude_input = True
    config.SlidesExporter.exclude_input_prompt = True
    config.SlidesExporter.exclude_output_prompt = True
    return SlidesExporter(config=config)


def write_deck(nb: dict, path: Path, *, exporter, refs: dict | None = None) -> int:
    """Write the deck of executed notebook ``nb`` to ``path``; return its number of slides."""
    import nbformat

    deck = deck_cells(nb, refs=refs)
    title = next((line[2:].strip() for line in _source(deck[0]).splitlines() if line.startswith("# ")), path.stem)
    for number, cell in enumerate(deck):
        cell["id"] = f"slide-cell-{number}"
    notebook = nbformat.reads(json.dumps({"cells": deck, "metadata": {**nb.get("metadata", {}), "title": title},
                                          "nbformat": 4, "nbformat_minor": 5}), as_version=4)
    body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": path.name.split(".")[0]}})
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(path)
    return sum(1 for c in deck if _slide_type(c) in ("slide", "subslide"))


def build_slides(root=None, *, output=None, quick: bool | None = None, fresh: bool = False,
                 executed_dir=None, log=None) -> int:
    """Write one deck per chapter into ``output`` (default ``ROOT/_build/slides``); an exit status."""
    from .book_editions import executed_notebooks

    root = Path(root) if root else repo_root()
    output = Path(output) if output else root / "_build" / "slides"
    if quick is None:
        quick = os.environ.get("SERLIB_QUICK", "0") not in ("", "0", "false", "no")
    say = (lambda line: print(line, file=log, flush=True)) if log else (lambda line: print(line, flush=True))
    try:
        output.mkdir(parents=True, exist_ok=True)
        copy_assets(output)
        executed = executed_notebooks(root, quick=quick, fresh=fresh, executed_dir=executed_dir, log=say)
        refs = bibliography(root / "book" / "references.bib")
        with tempfile.TemporaryDirectory(prefix="serlib-slides-") as scratch:
            exporter = _exporter(Path(scratch))
            for path in chapter_notebooks(root):
                deck = output / f"{path.stem}.slides.html"
                slides = write_deck(executed[path], deck, exporter=exporter, refs=refs)
                say(f"{deck.relative_to(output.parent) if output.parent in deck.parents else deck}: {slides} slides")
    except SerlibError as error:
        say(f"slides: {error}")
        return 1
    say(f"slides written to {output} (open any .slides.html; works offline)")
    return 0


def main(argv=None) -> int:
    parser = command_line("serlib.book_slides", __doc__.splitlines()[0], fresh=True)
    parser.add_argument("--output", help="folder for the decks (default: ROOT/_build/slides)")
    args = parser.parse_args(argv)
    return build_slides(args.root, output=args.output, quick=quick_choice(args), fresh=args.fresh)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
