"""Import Keras without TensorFlow's native start-up lines on stderr.

TensorFlow's C++ layer prints lines such as "Could not find cuda drivers on your machine"
while it loads, whatever ``TF_CPP_MIN_LOG_LEVEL`` says. In a terminal they bury the
``serlib`` command's output; in a notebook they show up as red stderr under the first
cell that imports a model. :func:`import_keras` silences file descriptor 2 for the
duration of that one import and restores it, so Python warnings and exceptions raised
later still appear. Set ``TF_CPP_MIN_LOG_LEVEL=0`` to see everything.

Used by :mod:`serlib.models` and :mod:`serlib.cli`; explained in the chapter "Introduction"
(how to use the book).
"""
from __future__ import annotations

import os
import sys


def import_keras() -> None:
    """Import ``keras`` once with native stderr output discarded (no-op when already imported).

    An ``ImportError`` is left for the caller's own ``import keras`` to report. Explained
    in the chapter "Introduction".
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0" or "keras" in sys.modules:
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):   # no usable fd 2 (some embedded consoles)
        _plain_import()
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            try:
                _plain_import()
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _plain_import() -> None:
    try:
        import keras  # noqa: F401
    except ImportError:
        pass          # the caller's own import reports it
