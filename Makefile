# serlib and its book. The README's quick start uses `make book` and `make test`.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
# Quick mode (fewer clips and epochs, every cell still runs) is the default for builds and tests;
# `make book SERLIB_QUICK=0` (or `make book-full`) reproduces the full results.
SERLIB_QUICK ?= 1
export SERLIB_QUICK
# `make install LOCKED=1` installs the last known good versions (constraints.txt) instead of
# today's newest releases within pyproject.toml's ranges.
LOCKED ?= 0
CONSTRAINTS := $(if $(filter 1,$(LOCKED)),-c constraints.txt,)

.PHONY: install book book-full book-student slides colab-cells test unit notebooks browser clean

install:
	$(PIP) install -q -r requirements.txt $(CONSTRAINTS)
	$(PYTHON) -m serlib download --encoder >/dev/null

book: install
	$(PYTHON) -m serlib.book_cells --check
	$(PYTHON) -m serlib.book_build

# The student edition: the same chapters with every solution taken out, in _build/student/html
# (reuses the executed chapters of the last `make book` when their code is unchanged).
book-student: install
	$(PYTHON) -m serlib.book_cells --check
	$(PYTHON) -m serlib.book_editions

# One reveal.js deck per chapter, _build/slides/NN_name.slides.html: figures, key equations, audio;
# reveal.js and MathJax are copied beside them, so the decks work without a network.
slides: install
	$(PYTHON) -m serlib.book_slides

# Rewrite every chapter's Colab install cell from _config.yml's repository.url (after changing it).
colab-cells:
	$(PYTHON) -m serlib.book_cells

book-full:
	$(MAKE) book SERLIB_QUICK=0

# The whole test suite: unit tests, nbval over every chapter, the HTML build, the browser check.
test: install
	$(PYTHON) -m pytest tests -m "not book" -q
	$(PYTHON) -m pytest tests -m book -q

unit:
	$(PYTHON) -m pytest tests -m "not book" -q

# The book checks one at a time (all three also run inside `make test`).
notebooks:
	$(PYTHON) -m pytest --nbval-lax -p no:cacheprovider $$($(PYTHON) tests/browser_check.py --list-notebooks)

browser:
	$(PYTHON) tests/browser_check.py

clean:
	rm -rf _build
