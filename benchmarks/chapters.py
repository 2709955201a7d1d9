"""Run the book's chapters one by one and record how long each takes, in quick or full mode.

Quick mode (``SERLIB_QUICK=1``) is what CI runs; full mode trains every report's model
with its own settings on the whole corpus and can take hours per chapter on a CPU. This
script executes each chapter's notebook in a fresh kernel (no time limit per cell), the
way ``make book-full`` does, and records per chapter: the mode, the wall-clock seconds,
whether every cell ran (or the first error, on one line), the data line of the chapter's
header, the machine (cores, GPU) and the serlib commit. A lecturer can then plan a lab
session; the README and chapter 1 quote the measured figures.

Usage::

    python benchmarks/chapters.py --mode full 06 08           # chapters by number
    python benchmarks/chapters.py --mode quick                # every chapter of _toc.yml
    python benchmarks/chapters.py --mode full 06 --keep /tmp/executed   # keep the executed notebooks

It is resumable: a chapter already recorded in the same mode, with every cell run, is
skipped unless ``--again``. Each finished chapter is written to the results file at once
(``benchmarks/results/chapters.json``, ``--results``). Other CPU work running at the same
time makes the seconds meaningless: run one chapter at a time on an idle machine.
Explained in the chapter "Introduction".
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))
from browser_check import chapter_notebooks  # noqa: E402  (the chapters of _toc.yml, in reading order)

RESULTS = HERE / "results" / "chapters.json"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    return out.stdout.strip() or None


def _gpu() -> bool:
    """Whether TensorFlow sees a GPU (in a child process: importing TensorFlow here is slow)."""
    code = "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        return out.stdout.strip().splitlines()[-1] != "0"
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return False


def _header_line(nb, key: str) -> str | None:
    """The ``key`` line (e.g. ``data``) of the chapter header that ``book.start_chapter`` prints."""
    for cell in nb.cells[:6]:
        for out in cell.get("outputs", []):
            lines = str(out.get("text", "")).splitlines()
            for i, line in enumerate(lines):
                if line.strip().startswith(key + " "):
                    indent = len(line) - len(line.lstrip()) + len(key)
                    words = line.split()[1:]
                    for more in lines[i + 1:]:          # the header wraps long values onto indented lines
                        if len(more) - len(more.lstrip()) <= indent:
                            break
                        words += more.split()
                    return " ".join(words)
    return None


def select(notebooks: list[Path], wanted: list[str]) -> list[Path]:
    """The notebooks whose file name starts with one of ``wanted`` (``"6"`` or ``"06"``); all if empty."""
    if not wanted:
        return list(notebooks)
    keys = [w.zfill(2) if w.isdigit() else w for w in wanted]
    chosen = [nb for nb in notebooks if any(nb.name.startswith(k) for k in keys)]
    unknown = [w for w, k in zip(wanted, keys) if not any(nb.name.startswith(k) for nb in notebooks)]
    if unknown:
        sys.exit(f"no chapter notebook starts with {', '.join(unknown)}; "
                 f"choose from {', '.join(nb.stem for nb in notebooks)}")
    return chosen


def run_chapter(path: Path, mode: str, keep: Path | None = None) -> dict:
    """Execute one notebook in a fresh kernel with ``SERLIB_QUICK`` set for ``mode``; one record."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    env = {**os.environ, "SERLIB_QUICK": "1" if mode == "quick" else "0"}
    client = NotebookClient(nb, timeout=None, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    error = None
    start = time.perf_counter()
    try:
        client.execute(env=env)
    except CellExecutionError as exc:
        lines = [ln for ln in ANSI.sub("", str(exc)).splitlines() if ln.strip()]
        error = lines[-1][:300] if lines else type(exc).__name__
    except Exception as exc:  # a kernel that died or failed to start
        error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    seconds = time.perf_counter() - start
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, keep / path.name)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    ran = sum(1 for c in cells if c.get("execution_count") is not None)
    return {"chapter": path.stem, "mode": mode, "ok": error is None, "error": error,
            "seconds": round(seconds, 1), "code_cells": len(cells), "cells_run": ran,
            "data": _header_line(nb, "data"), "compute": _header_line(nb, "compute")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", help="chapter numbers or notebook names (default: all)")
    parser.add_argument("--mode", choices=("quick", "full"), default="full")
    parser.add_argument("--again", action="store_true", help="run chapters already recorded in this mode again")
    parser.add_argument("--keep", help="folder for the executed notebooks (outputs included)")
    parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args(argv)

    from serlib.runs import write_json

    notebooks = select(chapter_notebooks(REPO), args.chapters)
    results = Path(args.results)
    payload = {"schema": 1, "description": "wall-clock seconds per book chapter, executed by benchmarks/chapters.py",
               "records": []}
    if results.is_file():
        import json

        payload = json.loads(results.read_text())
    done = {(r["chapter"], r["mode"]) for r in payload["records"] if r["ok"]}
    machine = {"cores": os.cpu_count(), "gpu": _gpu()}
    for path in notebooks:
        if (path.stem, args.mode) in done and not args.again:
            print(f"{path.stem}: already recorded in {args.mode} mode (--again to rerun)")
            continue
        print(f"{path.stem}: running in {args.mode} mode ...", flush=True)
        record = run_chapter(path, args.mode, Path(args.keep) if args.keep else None)
        record.update(machine=machine, commit=_commit(), created=time.strftime("%Y-%m-%dT%H:%M:%S"))
        payload["records"] = [r for r in payload["records"]
                              if (r["chapter"], r["mode"]) != (path.stem, args.mode)] + [record]
        results.parent.mkdir(parents=True, exist_ok=True)
        write_json(results, payload)
        status = "every cell ran" if record["ok"] else f"FAILED: {record['error']}"
        print(f"{path.stem}: {record['seconds'] / 60:.1f} min, {status}", flush=True)
    failed = [r["chapter"] for r in payload["records"] if r["mode"] == args.mode and not r["ok"]
              and r["chapter"] in {p.stem for p in notebooks}]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
