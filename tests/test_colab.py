"""The Colab path: one repository address in ``_config.yml``, install cells written from it.

The fast tests check that every chapter's first cell is the one ``serlib.book_cells``
writes from ``_config.yml`` and that changing the address there and re-running the
script updates all of them. The slow test plays Colab: a fresh virtual environment (the
test environment's libraries made visible through a ``.pth`` file, serlib itself left out)
installs serlib from a local git URL (a one-commit snapshot of this working tree) with
chapter 1's own install cell, then runs every
code cell of chapter 1 in IPython with ``google.colab`` faked, no data, quick mode and
the network switched off inside the kernel, and checks that nothing was downloaded.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import types
from pathlib import Path

import pytest

from serlib import book, book_build, book_cells

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = book_build.chapter_notebooks(ROOT)


def _code_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in cells if c["cell_type"] == "code"]


def _copy_book(folder: Path) -> None:
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, folder / name)
    shutil.copytree(ROOT / "book", folder / "book", ignore=shutil.ignore_patterns("_build", ".*"))
    (folder / "serlib").mkdir()
    shutil.copy(ROOT / "serlib" / "book.py", folder / "serlib" / "book.py")


def test_every_install_cell_is_written_from_the_config():
    url, branch = book_cells.repository(ROOT)
    wanted = book_cells.install_cell(url, branch)
    assert len(CHAPTERS) >= 12
    for path in CHAPTERS:
        assert _code_cells(path)[0] == wanted, f"{path.name}: run `python -m serlib.book_cells`"
    assert (book.REPO_URL, book.REPO_BRANCH) == (url, branch)
    assert f'git+{url}@{branch}"' in wanted and "%pip install" in wanted
    assert book_cells.stale_cells(ROOT) == []


def test_changing_the_address_and_syncing_rewrites_every_chapter(tmp_path):
    _copy_book(tmp_path)
    config = tmp_path / "_config.yml"
    config.write_text(config.read_text().replace(book.REPO_URL, "https://example.org/teacher/ser-course"))
    stale = book_cells.stale_cells(tmp_path)
    assert len(stale) == len(CHAPTERS) + 1 and stale[-1].name == "book.py"
    assert book_cells.main([str(tmp_path), "--check"]) == 1
    changed = book_cells.sync(tmp_path)
    assert sorted(changed) == sorted(stale)
    assert book_cells.stale_cells(tmp_path) == [] and book_cells.main([str(tmp_path), "--check"]) == 0
    for path in book_build.chapter_notebooks(tmp_path):
        first = _code_cells(path)[0]
        assert '"serlib[book] @ git+https://example.org/teacher/ser-course@main"' in first
        # the other code cells are untouched
        original = _code_cells(ROOT / "book" / path.name)
        assert _code_cells(path)[1:] == original[1:]
    assert 'REPO_URL = "https://example.org/teacher/ser-course"' in (tmp_path / "serlib" / "book.py").read_text()
    assert book_cells.sync(tmp_path) == []


def test_a_config_without_an_address_is_a_one_line_error(tmp_path, capsys):
    _copy_book(tmp_path)
    (tmp_path / "_config.yml").write_text("title: no repository here\n")
    assert book_cells.main([str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "_config.yml" in err and "repository.url" in err


@pytest.mark.parametrize("quick, downloads", [("1", False), ("0", True)])
def test_colab_downloads_the_corpus_in_full_mode_only(monkeypatch, standin_dir, quick, downloads):
    from serlib.datasets import corpus as corpus_module

    asked = []
    real_load = corpus_module.load_corpus

    def fake_load(path=None, *, allow_download=False, verbose=True):
        asked.append(allow_download)
        return real_load(standin_dir, verbose=False)

    monkeypatch.setattr(corpus_module, "load_corpus", fake_load)
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setenv("SERLIB_QUICK", quick)
    chapter = book.start_chapter("Chapter 0 · Test", show=False)
    assert asked == [downloads]
    assert ("quick mode downloads nothing" in " ".join(chapter.header().split())) == (quick == "1")
    monkeypatch.delitem(sys.modules, "google.colab")
    assert book.start_chapter("Chapter 0 · Test", show=False) and asked[-1] is False


# ---------------------------------------------------------------------------------------
# slow: a fresh environment installs serlib the way chapter 1's first cell does
# ---------------------------------------------------------------------------------------
PLAY = r'''
import json, socket, sys, types
from IPython.core.interactiveshell import InteractiveShell

cells = json.load(open(sys.argv[1]))
attempts = []

def no_network(*args, **kwargs):
    attempts.append(repr(args[:2]))
    raise OSError("network switched off by the Colab test")

sys.modules["google.colab"] = types.ModuleType("google.colab")   # what Colab's kernel has
shell = InteractiveShell.instance()
results = []
for i, source in enumerate(cells):
    if i == 1:            # after the install cell: the chapter itself must not touch the network
        socket.socket.connect = socket.getaddrinfo = socket.create_connection = no_network
    result = shell.run_cell(source)
    results.append(bool(result.success))
    if not result.success:
        break
import serlib
ns = shell.user_ns
print("PLAYED " + json.dumps({"ok": results, "serlib": serlib.__file__, "attempts": attempts,
                              "source": ns["corpus"].source if "corpus" in ns else None,
                              "header": ns["chapter"].header() if "chapter" in ns else ""}))
'''


def _shared_libraries(folder: Path) -> Path:
    """``folder`` with a link to every installed distribution of this environment except serlib and pip."""
    folder.mkdir()
    skip = ("serlib", "pip", "setuptools", "pkg_resources", "_distutils_hack", "__pycache__")
    seen = set()
    for site in dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]):
        for entry in Path(site).iterdir():
            stem = entry.name.split("-")[0]
            if (entry.suffix in (".pth", ".egg-link") or stem in skip or entry.name.startswith("__editable__")
                    or entry.name in seen):
                continue
            seen.add(entry.name)
            (folder / entry.name).symlink_to(entry)
    return folder


def _snapshot(folder: Path) -> tuple[Path, str]:
    """A git repository in ``folder`` holding this checkout's working tree as one commit: (folder, sha)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip(f"{ROOT} is not a git checkout")
    for name in filter(None, listed.stdout.split("\0")):
        source = ROOT / name
        if source.is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    git = ["git", "-C", str(folder), "-c", "user.name=colab test", "-c", "user.email=test@localhost"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "snapshot"]):
        subprocess.run(git + args, check=True, capture_output=True)
    sha = subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    return folder, sha


@pytest.mark.book
@pytest.mark.slow
def test_colab_installs_from_git_and_runs_chapter_1_without_downloading(tmp_path):
    repo, sha = _snapshot(tmp_path / "repo")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "zz_test_libraries.pth").write_text(f"{_shared_libraries(tmp_path / 'libraries')}\n")

    # chapter 1's own install cell, with the published address swapped for this checkout
    url, branch = book_cells.repository(ROOT)
    cells = _code_cells(ROOT / "book" / "01_introduction.ipynb")
    local = f"file://localhost{repo}"
    assert cells[0] == book_cells.install_cell(url, branch)
    cells[0] = cells[0].replace(book_cells.install_spec(url, branch), book_cells.install_spec(local, sha))
    assert cells[0] == book_cells.install_cell(local, sha)
    (tmp_path / "cells.json").write_text(json.dumps(cells))
    (tmp_path / "play.py").write_text(PLAY)
    run_dir, cache = tmp_path / "colab", tmp_path / "cache"
    run_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SERLIB_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(SERLIB_QUICK="1", SERLIB_CACHE_DIR=str(cache), MPLBACKEND="Agg", PATH=f"{venv / 'bin'}:{env['PATH']}")
    played = subprocess.run([str(python), str(tmp_path / "play.py"), str(tmp_path / "cells.json")], cwd=run_dir,
                            env=env, capture_output=True, text=True, timeout=900)
    line = next((x for x in played.stdout.splitlines() if x.startswith("PLAYED ")), None)
    assert played.returncode == 0 and line, f"{played.stdout[-4000:]}\n{played.stderr[-4000:]}"
    report = json.loads(line[len("PLAYED "):])
    assert report["ok"] == [True] * len(cells), f"a cell failed:\n{played.stdout[-4000:]}\n{played.stderr[-3000:]}"
    assert Path(report["serlib"]).resolve().is_relative_to(venv.resolve()), "serlib was not installed by the cell"
    assert report["attempts"] == [], "a chapter cell tried to reach the network"
    assert "could not download" not in played.stdout + played.stderr
    assert report["source"] == "synthetic" and "quick mode downloads nothing" in " ".join(report["header"].split())
    assert not (cache / "ravdess").exists() and not list(cache.rglob("*.zip*"))
