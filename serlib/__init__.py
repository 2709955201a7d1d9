"""serlib: speech emotion recognition from raw audio, the companion package of the serlib book.

Modules by topic (each names the chapter that explains it):

- :mod:`serlib.audio` – loading, resampling, cropping, silence trimming
- :mod:`serlib.datasets` – RAVDESS index, download, synthetic stand-in corpus
- :mod:`serlib.features` – MFCCs and the other representations of the reports
- :mod:`serlib.mfcc_scratch` – MFCC from first principles, for teaching
- :mod:`serlib.augment`, :mod:`serlib.splits`, :mod:`serlib.metrics`
- :mod:`serlib.models` – every architecture of the five reports, plus ``recommended``
- :mod:`serlib.training`, :mod:`serlib.predict`, :mod:`serlib.cli`, :mod:`serlib.plots`
"""
import os as _os

# TensorFlow prints C++ start-up lines into every notebook unless told otherwise before import.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
