"""The student edition: the same book with every solution taken out.

The solutions stay in the source notebooks and in the full edition (``make book``, where
they are folded). ``make book-student`` (``python -m serlib.book_editions``) builds
``_build/student/html`` from the same sources with them removed:

* a Markdown solution is a fenced block opened by ``:::{admonition} Solution`` (any
  number of colons or backticks); the whole block is cut out of its cell;
* a code solution is a code cell whose first line starts with ``# Solution`` or that
  carries the tag ``solution``; the cell and its outputs are dropped.

Solutions are cut *after* execution, so every chapter runs exactly as in the full
edition (a later cell may use a solution's variables) and a glued number the remaining
text still quotes cannot go missing unnoticed: the build runs with ``--warningiserror``.
The executed notebooks come from the last ``make book`` (``_build/jupyter_execute``) when
their code is unchanged and they ran in the same mode (quick or full); otherwise the
chapter is executed afresh. The edition is then built from a temporary copy in which
only the text-based pages (the course plan) are executed. Explained in the chapter "Introduction".
"""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .book_build import build, chapter_notebooks, command_line, quick_choice, repo_root
from .errors import SerlibError

#: The opening line of a Markdown solution block.
SOLUTION_OPEN = re.compile(r"^(?P<fence>:{3,}|`{3,})\{admonition\}\s+Solution\b")
#: The tag that marks a code cell as a solution (besides a first line ``# Solution ...``).
SOLUTION_TAG = "solution"
#: What the student edition says under each chapter's "Exercises" heading.
STUDENT_NOTE = "*Student edition: the solutions are left out here; they are in the full edition.*"
_MODE = re.compile(r"mode\s+(quick|full) \(SERLIB_QUICK=")


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def strip_solution_blocks(text: str) -> tuple[str, int]:
    """``text`` without its solution blocks, and how many were removed.

    A block runs from a line matching :data:`SOLUTION_OPEN` to the first line made only
    of the same fence character, at least as long as the opening fence (MyST's rule).
    An unclosed block is an error: cutting to the end of the cell would hide text.
    """
    lines = text.splitlines(keepends=True)
    kept, removed, i = [], 0, 0
    while i < len(lines):
        match = SOLUTION_OPEN.match(lines[i])
        if not match:
            kept.append(lines[i])
            i += 1
            continue
        fence = match.group("fence")
        close = re.compile(rf"^{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = next((j for j in range(i + 1, len(lines)) if close.match(lines[j])), None)
        if end is None:
            raise SerlibError(f"a solution block opened by {lines[i].strip()!r} is never closed; "
                              f"close it with a line of {fence}")
        removed += 1
        i = end + 1
    return re.sub(r"\n{3,}", "\n\n", "".join(kept)).strip("\n"), removed


def is_solution_cell(cell: dict) -> bool:
    """True for a code cell holding a solution (first line ``# Solution ...`` or tag ``solution``)."""
    if cell.get("cell_type") != "code":
        return False
    if SOLUTION_TAG in cell.get("metadata", {}).get("tags", []):
        return True
    first = next((line.strip() for line in _source(cell).splitlines() if line.strip()), "")
    return first.startswith("# Solution")


def student_notebook(nb: dict) -> dict:
    """A copy of notebook ``nb`` (executed or not) with every solution removed.

    Solution code cells go; solution blocks are cut out of Markdown cells (a cell left
    empty goes too); a short note follows each ``## Exercises`` heading.
    """
    nb = copy.deepcopy(nb)
    cells = []
    for cell in nb.get("cells", []):
        if is_solution_cell(cell):
            continue
        if cell.get("cell_type") == "markdown":
            text, removed = strip_solution_blocks(_source(cell))
            text = re.sub(r"^## Exercises[ \t]*$", f"## Exercises\n\n{STUDENT_NOTE}", text, flags=re.MULTILINE)
            if not text.strip():
                continue
            if text != _source(cell):
                cell["source"] = text
        cells.append(cell)
    nb["cells"] = cells
    return nb


def solution_texts(nb: dict) -> list[str]:
    """The solutions of ``nb`` as text (block bodies and code cells), for checking an edition."""
    found = []
    for cell in nb.get("cells", []):
        if is_solution_cell(cell):
            found.append(_source(cell))
        elif cell.get("cell_type") == "markdown":
            text = _source(cell)
            stripped, removed = strip_solution_blocks(text)
            if removed:
                for line in text.splitlines():
                    if line.strip() and line not in stripped:
                        found.append(line)
    return found


# ---------------------------------------------------------------------------------------
# executed notebooks
# ---------------------------------------------------------------------------------------
def executed_mode(nb: dict) -> str | None:
    """``"quick"`` or ``"full"``: the mode the chapter header of an executed notebook printed."""
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            match = _MODE.search("".join(text) if isinstance(text, list) else text)
            if match:
                return match.group(1)
    return None


def _code(nb: dict) -> list[str]:
    return [_source(c) for c in nb.get("cells", []) if c.get("cell_type") == "code"]


def restore_glue(nb: dict, glue_file: Path) -> dict:
    """``nb`` with the glued values myst-nb moved into ``glue_file`` put back as cell outputs.

    A build writes each executed chapter without its glue outputs and keeps them beside it
    (``NAME.glue.json``). Each value goes back to the first code cell that names it in
    quotes (so a solution's values leave with the solution), else to the first code cell.
    """
    if not glue_file.is_file():
        return nb
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    if not code:
        return nb
    for name, output in json.loads(glue_file.read_text(encoding="utf-8")).items():
        meta = (output.get("metadata") or {}).get("scrapbook") or {"name": name, "mime_prefix": ""}
        prefix = meta.get("mime_prefix", "")
        restored = {"output_type": "display_data", "metadata": {"scrapbook": meta},
                    "data": {k if k.startswith(prefix) else prefix + k: v for k, v in output.get("data", {}).items()}}
        home = next((c for c in code if f'"{name}"' in _source(c) or f"'{name}'" in _source(c)), code[0])
        home.setdefault("outputs", []).append(restored)
    return nb


def reusable(source: dict, executed: dict, quick: bool) -> bool:
    """True when ``executed`` ran the same code as ``source`` in the same mode, with no error output."""
    if _code(source) != _code(executed):
        return False
    if any(o.get("output_type") == "error" for c in executed.get("cells", []) for o in c.get("outputs", [])):
        return False
    mode = executed_mode(executed)
    return mode is None or mode == ("quick" if quick else "full")


def execute(path: Path, *, timeout: int, quick: bool) -> dict:
    """Run notebook ``path`` top to bottom in a fresh kernel (cwd: its folder); return it executed."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(str(path), as_version=4)
    old = os.environ.get("SERLIB_QUICK")
    os.environ["SERLIB_QUICK"] = "1" if quick else "0"
    try:
        NotebookClient(nb, timeout=None if timeout < 0 else timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    except CellExecutionError as error:
        raise SerlibError(f"{path}: a cell failed while executing it for the student edition: "
                          f"{str(error).strip().splitlines()[-1]}") from None
    finally:
        if old is None:
            os.environ.pop("SERLIB_QUICK", None)
        else:
            os.environ["SERLIB_QUICK"] = old
    return json.loads(nbformat.writes(nb))


def executed_notebooks(root: Path, *, quick: bool, fresh: bool = False, executed_dir=None,
                       log=print) -> dict[Path, dict]:
    """Every chapter of ``root``'s table of contents, executed: reused from the last build or run now.

    ``executed_dir`` is where the last build left its executed notebooks (default
    ``ROOT/_build/jupyter_execute``, where ``make book`` writes them).
    """
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")) or {}
    timeout = int((config.get("execute") or {}).get("timeout", 1800))
    done = {}
    for path in chapter_notebooks(root):
        source = json.loads(path.read_text(encoding="utf-8"))
        previous = Path(executed_dir or root / "_build" / "jupyter_execute") / path.relative_to(root)
        if not fresh and previous.is_file():
            executed = restore_glue(json.loads(previous.read_text(encoding="utf-8")),
                                    previous.with_name(previous.stem + ".glue.json"))
            if reusable(source, executed, quick):
                log(f"{path.relative_to(root)}: reusing the outputs of the last build ({previous})")
                done[path] = executed
                continue
        start = time.perf_counter()
        done[path] = execute(path, timeout=-1 if not quick else timeout, quick=quick)
        log(f"{path.relative_to(root)}: executed in {time.perf_counter() - start:.0f} s")
    return done


# ---------------------------------------------------------------------------------------
# the build
# ---------------------------------------------------------------------------------------
def _copy_sources(root: Path, folder: Path) -> None:
    """The book's sources (configuration, table of contents, ``book/``) copied into ``folder``."""
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")) or {}
    # the chapters arrive executed; text-based notebooks (the course page) still run
    config.setdefault("execute", {})["exclude_patterns"] = ["*.ipynb"]
    config["title"] = f"{config.get('title', 'The book')} (student edition)"
    (folder / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    shutil.copy(root / "_toc.yml", folder / "_toc.yml")
    shutil.copytree(root / "book", folder / "book",
                    ignore=shutil.ignore_patterns("_build", ".*", "*.ipynb"))


def build_student(root=None, *, quick: bool | None = None, fresh: bool = False, log=None) -> int:
    """Build ``ROOT/_build/student/html``; returns a process exit status (0: built, no solution left)."""
    root = Path(root) if root else repo_root()
    if quick is None:
        quick = os.environ.get("SERLIB_QUICK", "0") not in ("", "0", "false", "no")
    say = (lambda line: print(line, file=log, flush=True)) if log else (lambda line: print(line, flush=True))
    target = root / "_build" / "student" / "html"
    with tempfile.TemporaryDirectory(prefix="serlib-student-") as scratch:
        folder = Path(scratch)
        _copy_sources(root, folder)
        try:
            executed = executed_notebooks(root, quick=quick, fresh=fresh, log=say)
        except SerlibError as error:
            say(f"student edition: {error}")
            return 1
        leftovers = []
        for path, nb in executed.items():
            student = student_notebook(nb)
            leftovers += [f"{path.name}: {text[:60]!r}" for text in solution_texts(student)]
            out = folder / path.relative_to(root)
            out.write_text(json.dumps(student, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        if leftovers:
            say("student edition: solutions left after stripping: " + "; ".join(leftovers))
            return 1
        status = build(folder, quick=quick, log=log)
        if status != 0:
            return status
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(folder / "_build" / "html", target)
    say(f"student edition built: open {target / 'index.html'}")
    return 0


def main(argv=None) -> int:
    args = command_line("serlib.book_editions", __doc__.splitlines()[0], fresh=True).parse_args(argv)
    return build_student(args.root, quick=quick_choice(args), fresh=args.fresh)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
