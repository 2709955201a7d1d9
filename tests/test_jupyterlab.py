"""A chapter as a student runs it: JupyterLab on localhost, driven by headless Chromium.

The test starts JupyterLab (token and password off, listening on 127.0.0.1 only, on a
free port, with its configuration, runtime, settings and workspace folders in a temporary
folder) on a *copy* of one chapter, opens it, runs all cells through JupyterLab's own
"Run All" command, and checks what the student sees:

* every code cell ran and none produced an error output;
* the interactive widgets render (chapter 3's sliders);
* the Markdown cells are rendered by ``jupyterlab-myst`` (each holds a ``.myst`` element);
* an exercise shows as a box (a MyST admonition);
* its solution is folded (a closed ``<details>``, its text not displayed);
* no raw MyST markup is visible in the rendered Markdown: no ``:::`` and no ``{glue``.

``jupyterlab-myst`` draws a glued number as its key (it does not read myst-nb's glue), so
the last check proves the markup is parsed, not that the numbers appear.

Marked ``book`` and ``slow`` (about a minute on two cores): ``python -m pytest
tests/test_jupyterlab.py -m book``. Needs JupyterLab and jupyterlab-myst (the ``book``
extra), selenium, Chromium and ChromeDriver; skips otherwise.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import browser_check  # noqa: E402

CHAPTER = "03_mfcc"            # has widgets, exercises and folded solutions, and runs fast in quick mode
RUN_TIMEOUT_S = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(folder: Path) -> None:
    """JupyterLab user settings: every cell kept in the page (so all can be inspected), no news fetched."""
    for plugin, values in (("notebook-extension/tracker", {"windowingMode": "none"}),
                           ("apputils-extension/notification", {"fetchNews": "false", "checkForUpdates": False})):
        path = folder / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on a copy of the chapter: yields its base URL."""
    pytest.importorskip("jupyterlab")
    pytest.importorskip("jupyterlab_myst")
    pytest.importorskip("selenium")
    browser, driver = browser_check.find_chromium()
    if not browser or not driver:
        pytest.skip("Chromium or ChromeDriver not installed")
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copy(ROOT / "book" / f"{CHAPTER}.ipynb", notebooks)
    _write_settings(tmp_path / "settings")
    port = _free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               IPYTHONDIR=str(tmp_path / "ipython"))
    env.setdefault("SERLIB_QUICK", "1")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", "--IdentityProvider.token=", "--ServerApp.password=",
           f"--ServerApp.root_dir={notebooks}", f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
           f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}", "--LabApp.expose_app_in_browser=True",
           "--allow-root"]
    log = open(tmp_path / "jupyterlab.log", "w")
    server = subprocess.Popen(cmd, env=env, cwd=notebooks, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    log.flush()
                    pytest.fail(f"JupyterLab did not start:\n{(tmp_path / 'jupyterlab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


_STATE_JS = r"""
const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
if (!panel || !panel.content || !panel.content.model || !panel.sessionContext.session
    || !panel.sessionContext.session.kernel) { return null; }
const code = Array.from(panel.content.model.cells).filter(c => c.type === 'code');
return {status: panel.sessionContext.session.kernel.status,
        ran: code.filter(c => c.executionCount !== null).length, cells: code.length,
        errors: code.filter(c => c.outputs.toJSON().some(o => o.output_type === 'error'))
                    .map(c => c.outputs.toJSON().filter(o => o.output_type === 'error')
                    .map(o => o.ename + ': ' + o.evalue).join('; '))};
"""

_PAGE_JS = r"""
const notebook = document.querySelector('.jp-Notebook');
const visible = el => (el.checkVisibility ? el.checkVisibility({contentVisibilityAuto: true})
                                         : el.getClientRects().length > 0);
const boxes = Array.from(notebook.querySelectorAll('.myst-admonition'));
const title = el => (el.querySelector('.myst-admonition-header') || el).innerText.trim();
const exercises = boxes.filter(b => b.tagName !== 'DETAILS' && title(b).startsWith('Exercise') && visible(b));
const solutions = Array.from(notebook.querySelectorAll('details.myst-admonition'))
    .filter(d => title(d).startsWith('Solution'));
const rendered = Array.from(notebook.querySelectorAll('.jp-MarkdownCell.jp-mod-rendered')).filter(visible);
const text = rendered.map(r => r.innerText).join('\n');
return {
  sliders: Array.from(notebook.querySelectorAll('.jp-OutputArea .widget-slider')).filter(visible).length,
  sliderHandles: notebook.querySelectorAll('.jp-OutputArea .noUi-handle').length,
  exercises: exercises.map(title),
  solutions: solutions.length,
  solutionsOpen: solutions.filter(d => d.open).length,
  solutionBodiesShown: solutions.filter(d => {
      const body = d.querySelector('.myst-admonition-body');
      return body && visible(body); }).length,
  renderedCells: rendered.length,
  mystCells: rendered.filter(r => r.querySelector('.myst')).length,
  rawFence: text.split('\n').filter(l => l.includes(':::')).slice(0, 5),
  rawGlue: text.split('\n').filter(l => l.includes('{glue')).slice(0, 5),
};
"""


@pytest.mark.book
@pytest.mark.slow
def test_a_chapter_runs_and_reads_well_in_jupyterlab(lab):
    web = browser_check.make_driver()
    try:
        web.get(f"{lab}/lab/tree/{CHAPTER}.ipynb?reset")
        deadline = time.time() + 90
        while web.execute_script(_STATE_JS) is None:
            assert time.time() < deadline, "the notebook or its kernel did not open in JupyterLab"
            time.sleep(0.5)
        state = web.execute_script(_STATE_JS)
        while state["status"] != "idle":          # the kernel starting
            assert time.time() < deadline, f"the kernel did not become idle ({state['status']})"
            time.sleep(0.5)
            state = web.execute_script(_STATE_JS)
        web.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        deadline = time.time() + RUN_TIMEOUT_S
        while True:
            time.sleep(1)
            state = web.execute_script(_STATE_JS)
            if state["ran"] == state["cells"] and state["status"] == "idle":
                break
            assert time.time() < deadline, f"Run All did not finish in {RUN_TIMEOUT_S} s: {state}"
        assert state["errors"] == [], f"cells failed in JupyterLab: {state['errors']}"
        time.sleep(2)                              # widgets and Markdown finish rendering
        page = web.execute_script(_PAGE_JS)
    finally:
        web.quit()

    assert page["sliders"] >= 1 and page["sliderHandles"] >= page["sliders"], f"no widget rendered: {page}"
    assert page["exercises"], f"no exercise drawn as a box: {page}"
    assert page["solutions"] >= 1, f"no solution drawn as a folded box: {page}"
    assert page["solutionsOpen"] == 0 and page["solutionBodiesShown"] == 0, f"a solution is unfolded: {page}"
    assert page["renderedCells"] >= 10 and page["mystCells"] == page["renderedCells"], \
        f"the Markdown cells are not all rendered by jupyterlab-myst: {page}"
    assert page["rawFence"] == [], f"raw ':::' visible: {page['rawFence']}"
    assert page["rawGlue"] == [], f"raw '{{glue' visible: {page['rawGlue']}"
