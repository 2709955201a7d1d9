"""``python -m serlib`` runs the ``serlib`` command line (see :mod:`serlib.cli`)."""
import sys

from .cli import main

sys.exit(main())
