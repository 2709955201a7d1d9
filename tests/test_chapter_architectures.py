"""The Keras code that chapters 8-10 show agrees with serlib's registry, model by model.

Each chapter writes its models out in plain ``keras`` layers and calls
``same_architecture(model, name)`` right after building them (nbval runs that in the book
build). This test runs the same cells without the book, data or a kernel: every cell that
defines a builder or calls ``same_architecture`` is executed in order, and the names it
checks are recorded. It fails when a chapter's code and the registry drift apart, and when
a model of the chapter is no longer checked at all.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parent.parent / "book"

CHAPTERS = {
    "08_recurrent.ipynb": {"balata2021_lstm", "kalokyris_lstm", "das2019_model_a"},
    "09_hybrids.ipynb": {f"kalokyris_cnn_lstm{k}" for k in (1, 2, 3, 4)}
    | {"ayadi_conv1d_lstm_speech", "ayadi_conv1d_lstm_song",
       "pankratz2024_cnn_bilstm", "pankratz2024_cnn_bilstm_nodropout"},
    "10_gender.ipynb": {"balata2021_cnn1d_baseline_gender", "balata2021_cnn1d_gender", "balata2021_cnn2d_gender",
                        "balata2021_cnn1d_female", "balata2021_cnn1d_male",
                        "balata2021_cnn2d_female", "balata2021_cnn2d_male"},
}


def _architecture_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    sources = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
               for c in cells if c["cell_type"] == "code"]
    return [s for s in sources
            if "same_architecture(" in s and "import" not in s
            or ("keras.Model(" in s and "\ndef " in "\n" + s)]


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_chapter_code_builds_the_registry_models(chapter):
    import keras
    import numpy as np
    import pandas as pd
    from keras import layers

    from serlib.architecture import same_architecture
    from serlib.models import get_model

    checked = []

    def recording(model, name, **kwargs):
        table = same_architecture(model, name, **kwargs)    # raises SerlibError on any difference
        checked.append(name)
        assert len(table) > 0
        return table

    cells = _architecture_cells(BOOK / chapter)
    assert cells, f"{chapter}: no cell builds a model in plain Keras"
    namespace = {"keras": keras, "layers": layers, "np": np, "pd": pd, "get_model": get_model,
                 "same_architecture": recording, "print": lambda *a, **k: None}
    for source in cells:
        exec(compile(source, f"{chapter} cell", "exec"), namespace)    # the book's own code, not user data
    assert set(checked) == CHAPTERS[chapter]
    keras.backend.clear_session()


def test_a_drifted_layer_is_named_in_one_line():
    import keras
    from keras import layers

    from serlib.architecture import same_architecture
    from serlib.errors import SerlibError

    inputs = keras.Input(shape=(223, 20))
    x = layers.LSTM(64, activation="relu")(inputs)        # the registry's kalokyris_lstm has 128 units
    x = layers.Dropout(0.2)(x)
    model = keras.Model(inputs, layers.Dense(8, activation="softmax")(x))
    with pytest.raises(SerlibError) as error:
        same_architecture(model, "kalokyris_lstm")
    assert "\n" not in str(error.value) and "layer 1" in str(error.value)
