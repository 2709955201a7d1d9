"""serlib.architecture: layer tables, the registry check, and the block diagram."""
import keras
import matplotlib
import pytest
from keras import layers

from serlib.architecture import layer_table, plot_architecture, same_architecture
from serlib.errors import SerlibError
from serlib.models import build_model

matplotlib.use("Agg")


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title(loc="left") for ax in fig.axes]


def _kalokyris_cnn_lstm1_by_hand():
    """Kalokyris CNN+LSTM with one convolution, written as a chapter would (other layer names)."""
    inputs = keras.Input(shape=(223, 20))
    x = layers.Conv1D(64, 3, padding="same", name="my_conv")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.MaxPooling1D(2)(x)
    x = layers.LSTM(128)(x)
    x = layers.Dropout(0.2)(x)
    return keras.Model(inputs, layers.Dense(8, activation="softmax")(x))


def test_layer_table_one_row_per_layer_without_input():
    inputs = keras.Input(shape=(10,))
    model = keras.Model(inputs, layers.Dense(4, name="out")(layers.Reshape((10, 1))(inputs)[:, :, 0]))
    table = layer_table(model)
    assert list(table.columns) == ["layer", "type", "output shape", "params"]
    assert "InputLayer" not in set(table["type"])
    last = table.iloc[-1]
    assert (last["layer"], last["type"], last["output shape"], last["params"]) == ("out", "Dense", "(4,)", 44)
    assert table.iloc[0]["output shape"] == "(10, 1)"


def test_same_architecture_ignores_names_and_returns_the_table():
    model = _kalokyris_cnn_lstm1_by_hand()
    table = same_architecture(model, "kalokyris_cnn_lstm1")
    assert list(table["type"]) == ["Conv1D", "BatchNormalization", "Activation", "MaxPooling1D", "LSTM",
                                   "Dropout", "Dense"]
    assert table["params"].sum() == build_model("kalokyris_cnn_lstm1").count_params()
    assert table.iloc[0]["layer"] == "my_conv"


def test_same_architecture_names_the_first_differing_layer_in_one_line():
    with pytest.raises(SerlibError) as info:
        same_architecture(build_model("das2019_model_c"), "das2019_model_b")
    message = str(info.value)
    assert "\n" not in message
    assert "layer 2" in message and "das2019_model_b" in message
    assert "(38, 8)" in message and "(40, 8)" in message  # both shapes named


def test_same_architecture_reports_a_missing_layer():
    inputs = keras.Input(shape=(223, 20))
    x = layers.Conv1D(64, 3, padding="same")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.MaxPooling1D(2)(x)
    x = layers.LSTM(128)(x)
    short = keras.Model(inputs, layers.Dense(8, activation="softmax")(x))  # Dropout left out
    with pytest.raises(SerlibError, match=r"layer 6 .*Dense .*Dropout"):
        same_architecture(short, "kalokyris_cnn_lstm1")
    # the registry's shape and class count can be overridden
    with pytest.raises(SerlibError, match="layer 7"):
        same_architecture(_kalokyris_cnn_lstm1_by_hand(), "kalokyris_cnn_lstm1", n_classes=6)


def test_diagram_folds_bn_activation_and_dropout_and_shows_shapes():
    fig = plot_architecture("das2019_model_b")
    texts = _texts(fig)
    assert any(t.startswith("Input: 40 MFCC") for t in texts)
    assert "Conv1D 8, kernel 3 + ReLU" in texts
    assert "(38, 8)" in texts and "32" in texts  # shape and parameters beside the box
    assert not any(t.startswith("Activation") for t in texts)  # folded, not a box of its own
    assert any("4,456 parameters" in t for t in texts)
    short = fig.get_size_inches()[1]
    deep = plot_architecture("balata2021_cnn1d")
    assert deep.get_size_inches()[1] > short + 2  # a deeper model gets a taller figure
    assert "Conv1D 64, kernel 8 + BN + ReLU + Dropout 0.2" in _texts(deep)


def test_diagram_of_a_built_model_with_parallel_branches():
    inputs = keras.Input(shape=(20, 4))
    x = layers.Conv1D(6, 3, name="c")(inputs)
    merged = layers.Concatenate()([layers.GlobalAveragePooling1D()(x), layers.GlobalMaxPooling1D()(x)])
    model = keras.Model(inputs, layers.Dense(3, activation="softmax")(merged))
    fig = plot_architecture(model, title="two branches", input_text="toy")
    texts = _texts(fig)
    assert "two branches" in texts and "Input: toy" in texts
    assert "Global AveragePool1D" in texts and "Global MaxPool1D" in texts
    assert sum("→ (6,)" in t for t in texts) == 2  # side by side, each with its shape inside


def test_diagram_of_a_sequential_model():
    model = keras.Sequential([keras.Input((12,)), layers.Dense(5, activation="relu"), layers.Dropout(0.5),
                              layers.Dense(2, activation="softmax")])
    texts = _texts(plot_architecture(model))
    assert "Dense 5, ReLU + Dropout 0.5" in texts and "Dense 2, softmax" in texts


def test_an_unbuilt_model_is_refused_in_one_line():
    model = keras.Sequential([layers.Dense(5), layers.Dense(2)])  # no Input: no shapes yet
    with pytest.raises(SerlibError, match="not built yet") as info:
        layer_table(model)
    assert "\n" not in str(info.value)
