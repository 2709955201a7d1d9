"""2-D convolutional networks on MFCC matrices: Balata & Oliveira's 2-D CNN (report 000)
and Kalokyris & Katsimpras's four 2-D CNNs (report 001).

Inputs are time-major MFCC matrices without a channel axis (``(216, 12)``, ``(223, 20)``);
each builder reshapes them into one-channel images. ``keras`` layers only. Explained in the
chapter "2-D CNNs".
"""
from __future__ import annotations

import keras
from keras import layers

from .cnn1d import BALATA_EMOTIONS, BALATA_FILTER
from .registry import GENDERS, REPORT_SPECS, register, register_variant

_BALATA = "Balata & Oliveira 2021"
_KALOKYRIS = "Kalokyris & Katsimpras n.d."


def _image_input(input_shape):
    """Input plus a Reshape adding the single channel a Conv2D needs."""
    inputs = keras.Input(shape=input_shape)
    x = layers.Reshape((*input_shape, 1))(inputs) if len(input_shape) == 2 else inputs
    return inputs, x


_BALATA2D_NOTES = (
    "Report 000 states only that the tuned 1-D CNN was turned into a 2-D CNN with half the "
    "filters (128-128-64-64-64-64-32-32) on the 2-D MFCC matrix (216 timesteps x 12 bands); "
    "the figure with its layer sizes (annex A.6) is not in the text.",
    "Kernel (8, 3): 8 along time as in the 1-D model, 3 across the 12 MFCC bands; pools (8, "
    "2) after conv 2 and conv 6, so 216 x 12 -> 27 x 6 -> 3 x 3 (x 32 filters = 288 features); "
    "padding 'same'.",
    "'Similar parameter tuning' to the improved 1-D model: BatchNormalization before every "
    "ReLU, Dropout(0.2) after each pool and before Flatten, early stopping patience 20 over "
    "150 epochs, RMSprop (learning rate 0.001, Keras' default: none stated), batch size 16.",
    "Features: the 216 x 12 MFCC matrix the 1-D series is averaged from "
    "(serlib.features.REPORT_SPECS['000-2d']). Data: strong intensity only, 7 emotions "
    "(no neutral).",
)


@register("balata2021_cnn2d", family="cnn2d", report="000", source=_BALATA,
          features=REPORT_SPECS["000-2d"], input_shape=(216, 12), input_text="216×12 MFCC",
          labels=BALATA_EMOTIONS, data_filter=BALATA_FILTER,
          notes=_BALATA2D_NOTES + ("Emotion on all actors: the report's 76.2% (random split).",))
def build_balata_cnn2d(input_shape, n_classes):
    """Balata & Oliveira's 2-D CNN (report 000, annex figure A.6).

    Eight Conv2D layers with half the 1-D widths (128, 128, 64 ×4, 32, 32), kernel (8, 3),
    BatchNormalization + ReLU, MaxPooling2D((8, 2)) after the second and sixth conv,
    Dropout(0.2), Flatten, Dense softmax. Explained in the chapter "2-D CNNs".
    """
    inputs, x = _image_input(input_shape)
    for i, width in enumerate((128, 128, 64, 64, 64, 64, 32, 32)):
        x = layers.Conv2D(width, (8, 3), padding="same", name=f"conv{i + 1}")(x)
        x = layers.BatchNormalization(name=f"bn{i + 1}")(x)
        x = layers.Activation("relu", name=f"relu{i + 1}")(x)
        if i in (1, 5):
            x = layers.MaxPooling2D((8, 2), name=f"pool{1 if i == 1 else 2}")(x)
            x = layers.Dropout(0.2)(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name="balata2021_cnn2d")


register_variant("balata2021_cnn2d", "balata2021_cnn2d_gender", task="gender", labels=GENDERS,
                 notes=_BALATA2D_NOTES + ("Gender task: the report's 100% (random split, the same "
                                          "actors on both sides).",))
for _g, _acc in zip(GENDERS, ("94%", "88%")):
    register_variant("balata2021_cnn2d", f"balata2021_cnn2d_{_g}", data_filter={**BALATA_FILTER, "gender": _g},
                     notes=_BALATA2D_NOTES + (
                         f"Gender-specific emotion model trained on {_g} actors only (report: {_acc}); "
                         "the report suggests a gender model followed by the two specialists "
                         "(serlib.models.GenderThenEmotion).",))


# --------------------------------------------------------------------------- Kalokyris
_KALOKYRIS_NOTES = (
    "Report 001 gives no date; it cites a 2022 paper, so it is from 2022 or later.",
    "Features (stated): 20 MFCC, n_fft 512, hop 256, 3.1 s after a 0.5 s offset, zero-padded to "
    "223 x 20. At 22,050 Hz (librosa's default, assumed) 3.1 s is 268 frames, not 223 (223 "
    "frames are about 2.6 s); we keep the stated 223 x 20 shape, i.e. crop at 223 frames.",
    "Printed parameter counts cannot be reproduced from the listed layers for a one-channel "
    "input of any size: with the listed convs and Dense(64) -> Dense(8) the flattened width "
    "would have to be a fraction (1,936.5; 9,104.5; 3,728.5; 911.6 features for models a-d). "
    "We implement the listed layers; reference_params keeps the printed number and "
    "describe_models shows both.",
    "Padding 'valid' and pool 2 x 2 (Keras defaults; stride 1 stated); ReLU (stated); softmax "
    "output. Optimizer not stated: Adam, learning rate 0.001. Batch size and epochs not "
    "stated: 32 and 50. ReduceLROnPlateau on the training loss ('the learning rate reduces "
    "when the loss of our model is not improving'): factor 0.5, patience 3, our choices.",
    "Data: speech, 8 emotions, random 75/25 train/test split, no augmentation for the 2-D CNNs.",
)
_KALOKYRIS_TRAINING = dict(
    family="cnn2d", report="001", source=_KALOKYRIS, features=REPORT_SPECS["001"],
    input_shape=(223, 20), input_text="223×20 MFCC",
)


def _kalokyris_cnn(input_shape, n_classes, widths, padding, name):
    inputs, x = _image_input(input_shape)
    for i, width in enumerate(widths):
        x = layers.Conv2D(width, (3, 3), strides=(1, 1), padding=padding, activation="relu",
                          name=f"conv{i + 1}")(x)
        x = layers.MaxPooling2D((2, 2), name=f"pool{i + 1}")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu", name="dense")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name=name)


@register("kalokyris_cnn2d_a", reference_params=134088, notes=_KALOKYRIS_NOTES + (
    "Model a: Conv 3x3/32 -> pool -> Conv 3x3/32 -> pool -> Dense 64 -> Dense 8 (report: "
    "134,088 parameters, 54.57%).",), **_KALOKYRIS_TRAINING)
def build_kalokyris_cnn2d_a(input_shape, n_classes):
    """Kalokyris & Katsimpras's first 2-D CNN (report 001): two 3×3/32 conv + 2×2 pool blocks.

    Flatten -> Dense(64, ReLU) -> Dense softmax. Explained in the chapter "2-D CNNs".
    """
    return _kalokyris_cnn(input_shape, n_classes, (32, 32), "valid", "kalokyris_cnn2d_a")


@register("kalokyris_cnn2d_b", reference_params=583592, notes=_KALOKYRIS_NOTES + (
    "Model b: one Conv 3x3/32 -> pool block -> Dense 64 -> Dense 8 (report: 583,592 "
    "parameters, 57.61%).",), **_KALOKYRIS_TRAINING)
def build_kalokyris_cnn2d_b(input_shape, n_classes):
    """Kalokyris & Katsimpras's second 2-D CNN (report 001): one 3×3/32 conv + 2×2 pool.

    Flatten -> Dense(64, ReLU) -> Dense softmax. Explained in the chapter "2-D CNNs".
    """
    return _kalokyris_cnn(input_shape, n_classes, (32,), "valid", "kalokyris_cnn2d_b")


@register("kalokyris_cnn2d_c", reference_params=258024, notes=_KALOKYRIS_NOTES + (
    "Model c: Conv 3x3/32 -> pool -> Conv 3x3/64 -> pool -> Dense 64 -> Dense 8 (report: "
    "258,024 parameters, 62.88%).",), **_KALOKYRIS_TRAINING)
def build_kalokyris_cnn2d_c(input_shape, n_classes):
    """Kalokyris & Katsimpras's third 2-D CNN (report 001): 3×3 convs of 32 then 64 filters.

    Each conv is followed by a 2×2 max pool; Flatten -> Dense(64, ReLU) -> Dense softmax.
    Explained in the chapter "2-D CNNs".
    """
    return _kalokyris_cnn(input_shape, n_classes, (32, 64), "valid", "kalokyris_cnn2d_c")


@register("kalokyris_cnn2d_d", reference_params=150600, notes=_KALOKYRIS_NOTES + (
    "Model d: Conv 3x3/32 -> pool -> three (Conv 3x3/64 -> pool) -> Dense 64 -> Dense 8 "
    "(report: 150,600 parameters, 64.265%, the best 2-D CNN).",
    "Padding 'same' for this model only: with 'valid' the 20 MFCC bands shrink 18 -> 9 -> 7 "
    "-> 3 -> 1 -> 0, and the fourth block cannot run; with 'same' 223 x 20 -> 111 x 10 -> "
    "55 x 5 -> 27 x 2 -> 13 x 1.",), **_KALOKYRIS_TRAINING)
def build_kalokyris_cnn2d_d(input_shape, n_classes):
    """Kalokyris & Katsimpras's deepest 2-D CNN (report 001): four 3×3 conv + 2×2 pool blocks.

    32, 64, 64, 64 filters with 'same' padding (needed for four poolings of 20 bands),
    Flatten -> Dense(64, ReLU) -> Dense softmax. Explained in the chapter "2-D CNNs".
    """
    return _kalokyris_cnn(input_shape, n_classes, (32, 64, 64, 64), "same", "kalokyris_cnn2d_d")
