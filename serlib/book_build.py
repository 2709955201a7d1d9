"""Build the book's HTML, executing every chapter, and fail on any execution error.

``python -m serlib.book_build`` (what ``make book`` runs) calls::

    jupyter-book build <root> --all --warningiserror --keep-going

with ``SERLIB_QUICK`` as set in the environment (``--full`` sets it to 0, ``--quick``
to 1), then checks the result: a non-zero exit status from Jupyter Book, an execution
report in ``_build/html/reports/`` or a rendered traceback in any page makes the build
fail, so a broken chapter can never be published. In full mode the per-cell time limit
of ``_config.yml`` (``execute.timeout``, sized for quick mode) is lifted through a
temporary copy of the configuration (``--config``), because a report's model trained for
its full 150 epochs on a laptop CPU can take hours in one cell. Explained in the chapter
"Introduction".
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_JB = "import sys; from jupyter_book.cli.main import main; sys.exit(main())"
#: Signs of an execution error in a built page (a rendered traceback or error output).
ERROR_MARKERS = (re.compile(r'class="[^"]*\boutput\b[^"]*\b(?:error|traceback)\b'),
                 re.compile(r"Traceback \(most recent call last\)"))


def repo_root() -> Path:
    """The folder holding ``_config.yml`` and ``_toc.yml`` (the serlib checkout)."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (Path.cwd(), here):
        if (candidate / "_toc.yml").is_file() and (candidate / "_config.yml").is_file():
            return candidate
    return here


def toc_files(root) -> list[str]:
    """The ``file:`` entries of ``root/_toc.yml`` (the root page first), in reading order, without suffix."""
    import yaml

    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text(encoding="utf-8")) or {}
    found: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            found.extend(str(node[key]) for key in ("root", "file") if isinstance(node.get(key), str))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    names = [str(Path(name).with_suffix("")) if Path(name).suffix in (".ipynb", ".md") else name
             for name in found]
    return list(dict.fromkeys(names))


def chapter_notebooks(root) -> list[Path]:
    """The notebooks (``.ipynb``) that ``_toc.yml`` lists, in reading order."""
    root = Path(root)
    return [root / f"{name}.ipynb" for name in toc_files(root) if (root / f"{name}.ipynb").is_file()]


def find_execution_errors(html_dir: Path) -> list[str]:
    """One line per problem found in a built book: execution reports and rendered tracebacks."""
    html_dir = Path(html_dir)
    problems = []
    reports = html_dir / "reports"
    if reports.is_dir():
        for log in sorted(reports.glob("*.log")):
            problems.append(f"{log}: execution failed (see this log)")
    for page in sorted(html_dir.rglob("*.html")):
        if "_static" in page.parts or "reports" in page.parts:
            continue
        text = page.read_text(encoding="utf-8", errors="replace")
        for marker in ERROR_MARKERS:
            if marker.search(text):
                problems.append(f"{page}: shows an error output ({marker.pattern!r})")
                break
    return problems


def full_mode_config(root: Path, folder: Path) -> Path:
    """A copy of ``root/_config.yml`` in ``folder`` with no per-cell execution time limit."""
    import yaml

    config = yaml.safe_load((Path(root) / "_config.yml").read_text(encoding="utf-8")) or {}
    config.setdefault("execute", {})["timeout"] = -1
    path = Path(folder) / "_config.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def build(root=None, *, quick: bool | None = None, output: Path | None = None, log=None) -> int:
    """Run Jupyter Book on ``root`` and check the result; returns a process exit status."""
    root = Path(root) if root else repo_root()
    env = dict(os.environ)
    if quick is not None:
        env["SERLIB_QUICK"] = "1" if quick else "0"
    env.setdefault("SERLIB_QUICK", "0")
    cmd = [sys.executable, "-c", _JB, "build", str(root), "--all", "--warningiserror", "--keep-going"]
    if output:
        cmd += ["--path-output", str(output)]
    with tempfile.TemporaryDirectory(prefix="serlib-book-config-") as scratch:
        if env["SERLIB_QUICK"] == "0":
            cmd += ["--config", str(full_mode_config(root, Path(scratch)))]
        print(f"building the book in {root} (SERLIB_QUICK={env['SERLIB_QUICK']}): {' '.join(cmd[3:])}", flush=True)
        start = time.perf_counter()
        status = subprocess.call(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT if log else None)
        seconds = time.perf_counter() - start
    html_dir = (Path(output) if output else root) / "_build" / "html"
    problems = find_execution_errors(html_dir) if html_dir.is_dir() else [f"{html_dir}: no HTML was built"]
    for line in problems:
        print(f"book build: {line}", file=sys.stderr)
    if status != 0:
        print(f"book build: jupyter-book exited with status {status} (warnings and execution errors are "
              "errors; see the log above)", file=sys.stderr)
    ok = status == 0 and not problems
    print(f"book build {'succeeded' if ok else 'FAILED'} in {seconds:.0f} s; open {html_dir / 'index.html'}",
          flush=True)
    return 0 if ok else 1


def command_line(module: str, description: str, *, fresh: bool = False) -> argparse.ArgumentParser:
    """The options every book command shares (``python -m serlib.book_build``, ``book_editions``,
    ``book_slides``): the book root, ``--quick``/``--full`` and optionally ``--fresh``."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("root", nargs="?", help="book root (default: the checkout holding _toc.yml)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="SERLIB_QUICK=1: small data, few epochs")
    mode.add_argument("--full", action="store_true", help="SERLIB_QUICK=0: reproduce the full results")
    if fresh:
        parser.add_argument("--fresh", action="store_true", help="execute every chapter even if the last "
                            "build's outputs could be reused")
    return parser


def quick_choice(args) -> bool | None:
    """``--quick`` -> True, ``--full`` -> False, neither -> None (``SERLIB_QUICK`` decides)."""
    return True if args.quick else False if args.full else None


def main(argv=None) -> int:
    args = command_line("serlib.book_build", __doc__.splitlines()[0]).parse_args(argv)
    return build(args.root, quick=quick_choice(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
