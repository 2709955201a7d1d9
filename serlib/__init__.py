"""serlib: speech emotion recognition from raw audio, the companion package of the serlib book.

Modules by topic, in layers (each imports only from the layers above it; each names the
chapter that explains it):

- base: :mod:`serlib.errors`, :mod:`serlib.config`, :mod:`serlib.log` (logging),
  :mod:`serlib.storage` (atomic writes, checksums)
- data and signals: :mod:`serlib.datasets` (RAVDESS index, download, stand-in corpus),
  :mod:`serlib.audio`, :mod:`serlib.augment`, :mod:`serlib.splits`, :mod:`serlib.metrics`
- features: :mod:`serlib.features` (the reports' representations), :mod:`serlib.mfcc_scratch`
  (for teaching), :mod:`serlib.feature_store` and :mod:`serlib.feature_cache` (the cache and
  corpus-wide extraction), :mod:`serlib.functionals`, :mod:`serlib.voice_quality`,
  :mod:`serlib.contour`, :mod:`serlib.voice_encoder`, and :mod:`serlib.pipeline` (every view
  of a clip from one decode)
- models: :mod:`serlib.models` (what each architecture is), :mod:`serlib.recipes` (how it
  trains, as data), :mod:`serlib.fusion`, :mod:`serlib.runs` (saved runs)
- :mod:`serlib.training` (data, fitting, augmentation, protocols), then :mod:`serlib.evaluation`
- clients: :mod:`serlib.cli`, :mod:`serlib.predict`, :mod:`serlib.plots`, :mod:`serlib.results`,
  :mod:`serlib.full_results` and :mod:`serlib.architecture` (full-run results, diagrams),
  :mod:`serlib.book` and the book tools (``book_build``, ``book_cells``, ``book_editions``,
  ``book_slides``, ``course``, ``model_pages``)
"""
import os as _os

# TensorFlow prints C++ start-up lines into every notebook unless told otherwise before import.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
