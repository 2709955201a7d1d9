"""Write every chapter's first cell, the Colab install line, from ``_config.yml``.

The repository address lives in one place, ``repository.url`` (and ``repository.branch``)
of ``_config.yml``; the launch buttons read it there. Each chapter's first code cell
installs serlib from that address when it runs on Google Colab, so it is *written* from
the configuration by this module rather than typed twelve times::

    python -m serlib.book_cells           # rewrite the install cells (and serlib.book.REPO_URL)
    python -m serlib.book_cells --check   # exit 1, naming the stale notebooks, if any differ

Publishing the book therefore means changing one line of ``_config.yml`` and running the
first command (``make colab-cells``). ``make book`` runs the second before building.
Explained in the chapter "Introduction".
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from .errors import SerlibError

#: The install cell's text; ``{spec}`` is the pip requirement written from ``_config.yml``.
INSTALL_CELL = (
    "# On Google Colab, install serlib and the book's extras first; anywhere else this cell does nothing.\n"
    "# Written from _config.yml (repository.url) by `python -m serlib.book_cells`: edit the address there.\n"
    "import sys\n"
    "\n"
    "if \"google.colab\" in sys.modules:\n"
    "    %pip install -q \"{spec}\"")
_REPO_LINE = re.compile(r'^REPO_URL = "[^"]*"$', re.MULTILINE)
_BRANCH_LINE = re.compile(r'^REPO_BRANCH = "[^"]*"$', re.MULTILINE)


def repository(root) -> tuple[str, str]:
    """``(url, branch)`` from ``root/_config.yml``'s ``repository`` section (branch defaults to main)."""
    import yaml

    path = Path(root) / "_config.yml"
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise SerlibError(f"{path}: cannot read the book configuration ({error}); run this from the "
                          "serlib checkout") from None
    section = config.get("repository") or {}
    url = str(section.get("url") or "").strip().rstrip("/")
    if not url:
        raise SerlibError(f"{path}: no repository.url; set it to the book's public git address")
    return url, str(section.get("branch") or "main").strip()


def install_spec(url: str, branch: str | None = None) -> str:
    """The pip requirement that installs serlib with the book extras from ``url`` (at ``branch``)."""
    ref = f"@{branch}" if branch else ""
    return f"serlib[book] @ git+{url}{ref}"


def install_cell(url: str, branch: str | None = None) -> str:
    """The source of every chapter's first code cell for repository ``url``."""
    return INSTALL_CELL.format(spec=install_spec(url, branch))


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _first_code_cell(nb: dict, path: Path) -> dict:
    cell = next((c for c in nb.get("cells", []) if c.get("cell_type") == "code"), None)
    if cell is None or "google.colab" not in _source(cell):
        raise SerlibError(f"{path}: the first code cell is not the Colab install cell; put one first "
                          "(any text holding 'google.colab') and run this again")
    return cell


def _write_notebook(path: Path, nb: dict) -> None:
    """Write ``nb`` as the chapters are stored (one-space JSON, UTF-8, final newline), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def _module_update(root: Path, url: str, branch: str) -> tuple[Path, str, str]:
    """``(path, text, wanted text)`` of ``root/serlib/book.py`` with its address constants set."""
    module = root / "serlib" / "book.py"
    text = module.read_text(encoding="utf-8") if module.is_file() else ""
    wanted = _BRANCH_LINE.sub(f'REPO_BRANCH = "{branch}"', _REPO_LINE.sub(f'REPO_URL = "{url}"', text))
    return module, text, wanted


def stale_cells(root) -> list[Path]:
    """The chapters (and ``serlib/book.py``) whose address differs from the one in ``_config.yml``."""
    from .book_build import chapter_notebooks

    root = Path(root)
    url, branch = repository(root)
    wanted = install_cell(url, branch)
    stale = []
    for path in chapter_notebooks(root):
        nb = json.loads(path.read_text(encoding="utf-8"))
        if _source(_first_code_cell(nb, path)) != wanted:
            stale.append(path)
    module, text, new = _module_update(root, url, branch)
    if new != text:
        stale.append(module)
    return stale


def sync(root) -> list[Path]:
    """Rewrite the stale install cells and ``root/serlib/book.py``'s address; return the files changed."""
    root = Path(root)
    url, branch = repository(root)
    wanted = install_cell(url, branch)
    changed = []
    for path in stale_cells(root):
        if path.suffix != ".ipynb":
            continue
        nb = json.loads(path.read_text(encoding="utf-8"))
        cell = _first_code_cell(nb, path)
        cell["source"] = wanted.splitlines(keepends=True) if isinstance(cell.get("source"), list) else wanted
        _write_notebook(path, nb)
        changed.append(path)
    module, text, new = _module_update(root, url, branch)
    if new != text:
        module.write_text(new, encoding="utf-8")
        changed.append(module)
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serlib.book_cells", description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", help="book root (default: the checkout holding _toc.yml)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a cell is stale")
    args = parser.parse_args(argv)
    from .book_build import repo_root

    root = Path(args.root) if args.root else repo_root()
    try:
        if args.check:
            stale = stale_cells(root)
            for path in stale:
                print(f"{path}: the repository address differs from _config.yml's; run "
                      "`python -m serlib.book_cells` (make colab-cells)", file=sys.stderr)
            return 1 if stale else 0
        for path in sync(root):
            print(f"rewrote {path}")
    except SerlibError as error:
        print(f"serlib.book_cells: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
