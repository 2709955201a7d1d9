"""Imported first by :mod:`serlib.models`: Keras loads once with TensorFlow's native start-up
lines discarded (:func:`serlib.quiet_keras.import_keras`), before any builder module imports it.
"""
from ..quiet_keras import import_keras

import_keras()
