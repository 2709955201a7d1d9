"""Open every page of the built book in headless Chromium and check what a reader sees.

For each page listed in ``_toc.yml`` (so chapters added later are checked without
editing this file) the check asserts that

* the page loads and has a title;
* every image on it has loaded (``naturalWidth > 0``), and a chapter shows at least as
  many figures as its executed notebook produced (``_build/jupyter_execute``);
* a chapter shows at least as many audio players as its notebook produced, and each
  player's audio decodes (metadata loads, duration > 0);
* no error is rendered: no traceback or error output, no cell tagged
  ``raises-exception``, no stderr output holding a traceback, and no error output
  (``"ename"``) in the executed notebook.

Usage (after building the book)::

    python tests/browser_check.py [BOOK_ROOT] [--html _build/html] [--screenshots DIR]

Needs Chromium and ChromeDriver (Debian: ``apt-get install chromium chromium-driver``).
``tests/test_book.py`` runs the same check on a fresh build.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-first-run", "--window-size=1280,1600")
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


# ---------------------------------------------------------------------------------------
# what the book contains, from _toc.yml
# ---------------------------------------------------------------------------------------
def toc_files(root, toc=None) -> list[str]:
    """The ``file:`` entries of ``_toc.yml`` (root first), in reading order, without suffix.

    ``toc`` names another table of contents (default: ``ROOT/_toc.yml``).
    """
    import yaml

    root = Path(root)
    toc = yaml.safe_load(Path(toc or root / "_toc.yml").read_text(encoding="utf-8"))
    files: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            for key in ("root", "file"):
                if isinstance(node.get(key), str):
                    files.append(str(Path(node[key]).with_suffix("")) if Path(node[key]).suffix in
                                 (".md", ".ipynb") else node[key])
            for value in node.values():
                if isinstance(value, (list, dict)):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return list(dict.fromkeys(files))


def chapter_notebooks(root, toc=None) -> list[Path]:
    """The notebooks (``.ipynb``) that ``_toc.yml`` lists, in reading order."""
    root = Path(root)
    return [root / f"{name}.ipynb" for name in toc_files(root, toc) if (root / f"{name}.ipynb").is_file()]


def missing_toc_files(root, toc=None) -> list[str]:
    """``_toc.yml`` entries with neither a ``.ipynb`` nor a ``.md`` file behind them."""
    root = Path(root)
    return [name for name in toc_files(root, toc)
            if not any((root / f"{name}{suffix}").is_file() for suffix in (".ipynb", ".md"))]


def _tags(cell) -> set:
    return set(cell.get("metadata", {}).get("tags", []))


def expected_outputs(executed_notebook) -> dict:
    """Figures, audio players and error outputs an executed notebook holds.

    Outputs of cells tagged ``remove-output`` / ``remove-cell`` are not counted, since
    the HTML does not show them. ``errors`` lists ``ename: evalue`` of every error output.
    """
    nb = json.loads(Path(executed_notebook).read_text(encoding="utf-8"))
    images = audio = 0
    errors = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        hidden = bool(_tags(cell) & {"remove-output", "remove-cell"})
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                errors.append(f"{out.get('ename')}: {out.get('evalue')}")
                continue
            if hidden:
                continue
            data = out.get("data", {})
            if "image/png" in data or "image/svg+xml" in data or "image/jpeg" in data:
                images += 1
            html = data.get("text/html", "")
            html = "".join(html) if isinstance(html, list) else html
            audio += html.count("<audio")
    return {"images": images, "audio": audio, "errors": errors}


# ---------------------------------------------------------------------------------------
# the browser
# ---------------------------------------------------------------------------------------
def find_chromium() -> tuple[str | None, str | None]:
    """Paths of the Chromium binary and of ChromeDriver (``None`` where not found)."""
    browser = os.environ.get("CHROMIUM_BINARY") or next(
        (shutil.which(name) for name in CHROMIUM_CANDIDATES if shutil.which(name)), None)
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    return browser, driver


def make_driver():
    """A headless Chromium WebDriver with the flags CI needs (no sandbox, no network chatter)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    browser, driver = find_chromium()
    if not browser or not driver:
        raise RuntimeError("Chromium or ChromeDriver not found; install them (Debian: apt-get install chromium "
                           "chromium-driver) or set CHROMIUM_BINARY and CHROMEDRIVER")
    options = Options()
    options.binary_location = browser
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument("--autoplay-policy=no-user-gesture-required")
    web = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    web.set_page_load_timeout(60)
    web.set_script_timeout(60)
    return web


_PAGE_STATE_JS = r"""
const done = arguments[arguments.length - 1];
const main = document.querySelector('main') || document.body;
const waitImages = Promise.all(Array.from(document.images).map(img => img.complete ? null :
    new Promise(res => { img.addEventListener('load', res); img.addEventListener('error', res);
                         setTimeout(res, 10000); })));
waitImages.then(() => {
  const imgs = Array.from(main.querySelectorAll('img'));
  const outputImgs = Array.from(main.querySelectorAll('.cell_output img'));
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
  const audios = Array.from(main.querySelectorAll('audio'));
  const audioChecks = audios.map(a => new Promise(res => {
    const report = () => res(a.readyState >= 1 && isFinite(a.duration) ? a.duration : -1);
    if (a.readyState >= 1) { report(); return; }
    a.addEventListener('loadedmetadata', report);
    a.addEventListener('error', () => res(-1));
    a.preload = 'metadata';
    a.load();
    setTimeout(report, 15000);
  }));
  Promise.all(audioChecks).then(durations => {
    const stderrTraces = Array.from(main.querySelectorAll('.output.stderr, .output.stream'))
        .filter(e => e.innerText.includes('Traceback (most recent call last)')).length;
    done({
      title: document.title,
      images: imgs.length,
      outputImages: outputImgs.filter(i => i.naturalWidth > 0).length,
      broken: broken,
      audio: audios.length,
      audioDurations: durations,
      errorOutputs: main.querySelectorAll('.output.traceback, .output.error').length,
      raisesException: main.querySelectorAll('.tag_raises-exception').length,
      stderrTracebacks: stderrTraces,
      bodyText: main.innerText.length,
    });
  });
});
"""


def check_page(web, url: str, expected: dict | None = None) -> tuple[list[str], dict]:
    """Problems found on one page (empty list: fine), and what was measured there."""
    web.get(url)
    state = web.execute_async_script(_PAGE_STATE_JS)
    problems = []
    name = url.rsplit("/", 1)[-1]
    if not state["title"] or "404" in state["title"]:
        problems.append(f"{name}: no title or a 404 page ({state['title']!r})")
    if state["bodyText"] < 200:
        problems.append(f"{name}: the page is almost empty ({state['bodyText']} characters)")
    for src in state["broken"]:
        problems.append(f"{name}: image {src} did not load")
    if state["errorOutputs"]:
        problems.append(f"{name}: {state['errorOutputs']} error/traceback output(s) rendered")
    if state["raisesException"]:
        problems.append(f"{name}: {state['raisesException']} cell(s) tagged raises-exception")
    if state["stderrTracebacks"]:
        problems.append(f"{name}: {state['stderrTracebacks']} stream output(s) hold a traceback")
    bad_audio = [d for d in state["audioDurations"] if not d or d <= 0]
    if bad_audio:
        problems.append(f"{name}: {len(bad_audio)} of {state['audio']} audio player(s) did not load their audio")
    if expected is not None:
        if state["outputImages"] < expected["images"]:
            problems.append(f"{name}: shows {state['outputImages']} loaded figure(s), the notebook made "
                            f"{expected['images']}")
        if state["audio"] < expected["audio"]:
            problems.append(f"{name}: shows {state['audio']} audio player(s), the notebook made {expected['audio']}")
        for error in expected["errors"]:
            problems.append(f"{name}: the executed notebook holds an error output ({error})")
    return problems, state


def check_book(root, html_dir=None, *, toc=None, screenshots=None, log=print) -> list[str]:
    """Check every page of the built book; return the problems found (empty: all fine)."""
    root = Path(root).resolve()
    html_dir = Path(html_dir).resolve() if html_dir else root / "_build" / "html"
    executed_dir = html_dir.parent / "jupyter_execute"
    problems = [f"_toc.yml lists {name}, but there is no {name}.ipynb or .md"
                for name in missing_toc_files(root, toc)]
    pages = toc_files(root, toc)
    if not (html_dir / f"{pages[0]}.html").is_file():
        return problems + [f"{html_dir}: no built book here (missing {pages[0]}.html); build it first"]
    web = make_driver()
    try:
        for name in pages:
            page = html_dir / f"{name}.html"
            if not page.is_file():
                problems.append(f"{page}: page missing from the build")
                continue
            expected = None
            if (root / f"{name}.ipynb").is_file():
                executed = executed_dir / f"{name}.ipynb"
                if not executed.is_file():
                    problems.append(f"{executed}: no executed notebook (was the book built with execution on?)")
                else:
                    expected = expected_outputs(executed)
            found, state = check_page(web, page.as_uri(), expected)
            problems += found
            log(f"{name}: {state['outputImages']} figure(s), {state['audio']} audio player(s), "
                f"{'OK' if not found else f'{len(found)} problem(s)'}")
            if screenshots:
                Path(screenshots).mkdir(parents=True, exist_ok=True)
                web.save_screenshot(str(Path(screenshots) / f"{name.replace('/', '_')}.png"))
    finally:
        web.quit()
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=str(Path(__file__).resolve().parent.parent),
                        help="book root holding _toc.yml (default: this checkout)")
    parser.add_argument("--html", help="built HTML folder (default: ROOT/_build/html)")
    parser.add_argument("--toc", help="table of contents (default: ROOT/_toc.yml)")
    parser.add_argument("--screenshots", help="save a screenshot of every page into this folder")
    parser.add_argument("--list-notebooks", action="store_true",
                        help="only print the chapter notebooks _toc.yml lists (e.g. for nbval) and exit")
    args = parser.parse_args(argv)
    if args.list_notebooks:
        root = Path(args.root)
        print(" ".join(str(p.relative_to(root.resolve())) if p.is_absolute() else str(p)
                       for p in (q.resolve() for q in chapter_notebooks(root, args.toc))))
        return 0
    problems = check_book(args.root, args.html, toc=args.toc, screenshots=args.screenshots)
    for line in problems:
        print(f"browser check: {line}", file=sys.stderr)
    print("browser check: " + ("all pages OK" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
