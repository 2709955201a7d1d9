"""Open every slide deck in headless Chromium and check that it shows slides, offline.

For each ``*.slides.html`` in the folder the check asserts that reveal.js started
(``Reveal.isReady()``) with the expected number of slides, that every slide can be shown,
that every image on it loaded and every audio player decodes its audio, that MathJax
typeset the equations without an error, and that the page asked for nothing outside its
own folder (no CDN: the decks must work in a lecture room without a network).

Usage (after ``make slides``)::

    python tests/slides_check.py [_build/slides]

Needs Chromium and ChromeDriver, like ``tests/browser_check.py``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import browser_check  # noqa: E402

_DECK_STATE_JS = r"""
const done = arguments[arguments.length - 1];
const start = Date.now();
function ready() {
  return window.Reveal && Reveal.isReady() && window.MathJax && MathJax.isReady;
}
async function measure() {
  // visit every slide in turn: reveal.js hides far slides, and hidden media do not load
  const slides = Reveal.getSlides();
  const pause = ms => new Promise(res => setTimeout(res, ms));
  let shown = 0, titled = 0;
  const durations = [];
  for (const slide of slides) {
    const at = Reveal.getIndices(slide);
    Reveal.slide(at.h, at.v);
    await pause(50);
    if (Reveal.getCurrentSlide() === slide) shown += 1;
    if (slide.innerText.trim().length > 0) titled += 1;
    for (const a of slide.querySelectorAll('audio')) {
      durations.push(await new Promise(res => {
        const report = () => res(a.readyState >= 1 && isFinite(a.duration) ? a.duration : -1);
        if (a.readyState >= 1) { report(); return; }
        a.addEventListener('loadedmetadata', report); a.addEventListener('error', () => res(-1));
        a.preload = 'metadata'; a.load(); setTimeout(report, 10000);
      }));
    }
  }
  Reveal.slide(0);
  const imgs = Array.from(document.querySelectorAll('.reveal img'));
  done({
    ready: Reveal.isReady(),
    total: Reveal.getTotalSlides(),
    shown: shown,
    titled: titled,
    images: imgs.length,
    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length,
    audio: document.querySelectorAll('.reveal audio').length,
    audioDurations: durations,
    mathErrors: document.querySelectorAll('.MathJax_Error, merror').length,
    mathRendered: document.querySelectorAll('.MathJax, .MathJax_Display').length,
    rawMarkup: (document.body.innerText.match(/:::|\{glue|\{cite|\{admonition\}/g) || []).length,
    resources: performance.getEntriesByType('resource').map(e => e.name),
  });
}
(function wait() {
  if (ready()) { MathJax.Hub.Queue(measure); }
  else if (Date.now() - start > 30000) { done({ready: false, total: 0}); }
  else { setTimeout(wait, 200); }
})();
"""


def check_deck(web, deck: Path, expected_slides: int | None = None) -> tuple[list[str], dict]:
    """Problems found in one deck (empty: fine), and what was measured."""
    deck = Path(deck).resolve()
    web.get(deck.as_uri())
    state = web.execute_async_script(_DECK_STATE_JS)
    name = deck.name
    if not state.get("ready"):
        return [f"{name}: reveal.js did not start within 30 s (missing reveal.js or MathJax?)"], state
    problems = []
    if state["total"] < 3:
        problems.append(f"{name}: only {state['total']} slide(s)")
    if expected_slides is not None and state["total"] != expected_slides:
        problems.append(f"{name}: {state['total']} slides, the deck was written with {expected_slides}")
    if state["shown"] != state["total"] or state["titled"] != state["total"]:
        problems.append(f"{name}: {state['total'] - state['titled']} empty slide(s), "
                        f"{state['total'] - state['shown']} that could not be shown")
    if state["broken"]:
        problems.append(f"{name}: {state['broken']} of {state['images']} image(s) did not load")
    bad_audio = [d for d in state["audioDurations"] if not d or d <= 0]
    if bad_audio:
        problems.append(f"{name}: {len(bad_audio)} of {state['audio']} audio player(s) did not load")
    if state["mathErrors"]:
        problems.append(f"{name}: {state['mathErrors']} equation(s) failed to typeset")
    if state["rawMarkup"]:
        problems.append(f"{name}: {state['rawMarkup']} piece(s) of raw MyST markup shown")
    folder = deck.parent.as_uri()
    outside = sorted({r for r in state["resources"] if not (r.startswith(folder) or r.startswith(("data:", "blob:"))
                                                              or r == "about:blank")})
    if outside:
        problems.append(f"{name}: asked for resources outside its folder: {outside[:3]}")
    missing = [e["message"] for e in web.get_log("browser")
               if e.get("source") == "network" and "about:blank" not in e["message"]]
    if missing:
        problems.append(f"{name}: failed to load {missing[:3]}")
    return problems, state


def check_decks(folder, expected: dict | None = None, *, log=print) -> list[str]:
    """Check every deck in ``folder``; ``expected`` maps deck names to slide counts. Returns the problems."""
    decks = sorted(Path(folder).glob("*.slides.html"))
    if not decks:
        return [f"{folder}: no *.slides.html here; run `make slides` first"]
    web = browser_check.make_driver()
    problems = []
    try:
        web.get("about:blank")
        web.get_log("browser")
        for deck in decks:
            found, state = check_deck(web, deck, (expected or {}).get(deck.name))
            problems += found
            log(f"{deck.name}: {state.get('total', 0)} slides, {state.get('images', 0)} image(s), "
                f"{state.get('audio', 0)} audio, {state.get('mathRendered', 0)} equation(s) "
                f"{'OK' if not found else f'- {len(found)} problem(s)'}")
            time.sleep(0.1)
    finally:
        web.quit()
    return problems


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    folder = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / "_build" / "slides"
    problems = check_decks(folder)
    for line in problems:
        print(f"slides check: {line}", file=sys.stderr)
    print("slides check: " + ("all decks OK" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
