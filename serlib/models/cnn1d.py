"""1-D convolutional networks: Balata & Oliveira's series CNNs (report 000) and Das's
Model_B, Model_C and Model_D (report 002).

All builders take ``(input_shape, n_classes)`` and return an uncompiled ``keras.Model``
made of ``keras`` layers only. Inputs are the per-clip feature arrays without a channel
axis (``(216,)`` for the MFCC-mean series, ``(40,)`` for the MFCC means); each builder adds
the channel axis itself. Explained in the chapter "1-D CNNs".
"""
from __future__ import annotations

import keras
from keras import layers

from .registry import GENDERS, REPORT_SPECS, register, register_variant

_BALATA = "Balata & Oliveira 2021"
_DAS = "Das 2019"

#: Report 000's emotion subset: strong intensity only, so no neutral (7 emotions, 672 clips).
BALATA_EMOTIONS = ("calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
BALATA_FILTER = {"intensity": "strong"}

_BALATA_WIDTHS = (256, 256, 128, 128, 128, 128, 64, 64)
_BALATA_NOTES = (
    "Report 000 states: 216 timesteps of the mean of 12 MFCC bands; 8 Conv1D layers 256-256-128-"
    "128-128-128-64-64, kernel 8, ReLU; two MaxPooling1D of size 8 'between hidden layers with "
    "different numbers of neurons'; Flatten; Dense softmax; RMSprop; batch size 16.",
    "Pool placement: after conv 2 (256 -> 128) and after conv 6 (128 -> 64), the two places "
    "where the width changes.",
    "Padding 'same' (Keras default is 'valid'): with 'valid' the length 216 shrinks below zero "
    "before the last conv (216-7-7=202 -> pool 25 -> 4 after two more convs -> fails), so the "
    "report's stack only runs with 'same'; 216 -> 27 -> 3 time steps, 3 x 64 = 192 features "
    "into the Dense layer.",
    "Features (serlib.features.REPORT_SPECS['000']): the report gives neither rate nor hop; "
    "2.5 s after a 0.5 s offset at 22,050 Hz with hop 256 and n_fft 1024 yields exactly 216 "
    "frames, the resolution of the 44.1 kHz / hop 512 Kaggle recipe it follows.",
    "Learning rate: the report relies on RMSprop's adaptivity and gives none; Keras' default "
    "0.001 is used.",
    "Data: strong-intensity clips only, 7 emotions (no neutral), 96 per emotion; the report "
    "split 70/15/15 at random (serlib evaluates by actor instead).",
)


def _series_input(input_shape):
    """Input plus a Reshape adding the channel axis a Conv1D needs."""
    inputs = keras.Input(shape=input_shape)
    x = layers.Reshape((-1, 1))(inputs) if len(input_shape) == 1 else inputs
    return inputs, x


@register("balata2021_cnn1d_baseline", family="cnn1d", report="000", source=_BALATA,
          features=REPORT_SPECS["000"], input_shape=(216,),
          input_text="216×1 MFCC-mean series", labels=BALATA_EMOTIONS, data_filter=BALATA_FILTER,
          notes=_BALATA_NOTES + ("Baseline: no batch normalisation, no dropout, no early stopping; "
                                 "150 epochs (the epoch budget the report gives for its models).",))
def build_balata_cnn1d_baseline(input_shape, n_classes):
    """Balata & Oliveira's baseline 1-D CNN (report 000, annex figure A.4).

    Eight Conv1D layers (256, 256, 128 ×4, 64, 64 filters, kernel 8, ReLU, padding
    'same'), MaxPooling1D(8) after the second and the sixth conv (where the width changes),
    Flatten, Dense softmax. Explained in the chapter "1-D CNNs".
    """
    inputs, x = _series_input(input_shape)
    for i, width in enumerate(_BALATA_WIDTHS):
        x = layers.Conv1D(width, 8, padding="same", activation="relu", name=f"conv{i + 1}")(x)
        if i in (1, 5):
            x = layers.MaxPooling1D(8, name=f"pool{1 if i == 1 else 2}")(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name="balata2021_cnn1d_baseline")


@register("balata2021_cnn1d", family="cnn1d", report="000", source=_BALATA,
          features=REPORT_SPECS["000"], input_shape=(216,),
          input_text="216×1 MFCC-mean series", labels=BALATA_EMOTIONS, data_filter=BALATA_FILTER,
          notes=_BALATA_NOTES + (
              "Improved model: the report adds batch normalisation and dropout 0.2 without saying "
              "where; we put BatchNormalization between every conv and its ReLU, and Dropout(0.2) "
              "after each pooling layer and before Flatten.",
              "Early stopping with patience 20 on the validation loss over at most 150 epochs "
              "(stated); the report does not say whether the best weights were restored.",
          ))
def build_balata_cnn1d(input_shape, n_classes):
    """Balata & Oliveira's improved 1-D CNN (report 000, annex figure A.5).

    The baseline's eight Conv1D layers with BatchNormalization between each conv and its
    ReLU, and Dropout(0.2) after each MaxPooling1D(8) and after the last conv. Explained
    in the chapter "1-D CNNs".
    """
    inputs, x = _series_input(input_shape)
    for i, width in enumerate(_BALATA_WIDTHS):
        x = layers.Conv1D(width, 8, padding="same", name=f"conv{i + 1}")(x)
        x = layers.BatchNormalization(name=f"bn{i + 1}")(x)
        x = layers.Activation("relu", name=f"relu{i + 1}")(x)
        if i in (1, 5):
            x = layers.MaxPooling1D(8, name=f"pool{1 if i == 1 else 2}")(x)
            x = layers.Dropout(0.2)(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name="balata2021_cnn1d")


# Report 000 trained the 1-D CNNs on gender too, and on each gender's clips separately.
register_variant("balata2021_cnn1d_baseline", "balata2021_cnn1d_baseline_gender", task="gender",
                 labels=GENDERS, notes=_BALATA_NOTES + (
                     "Gender task with the baseline: the report's first experiment (about 88%, "
                     "on the same 672 strong-intensity clips).",))
register_variant("balata2021_cnn1d", "balata2021_cnn1d_gender", task="gender", labels=GENDERS,
                 notes=_BALATA_NOTES + (
                     "Gender task (report: 91%, 93% with early stopping); same architecture with a "
                     "2-way softmax, trained on the same 672 strong-intensity clips.",))
for _g in GENDERS:
    register_variant("balata2021_cnn1d", f"balata2021_cnn1d_{_g}", data_filter={**BALATA_FILTER, "gender": _g},
                     notes=_BALATA_NOTES + (
                         f"Gender-specific emotion model: trained only on {_g} actors' clips "
                         "(report: 44% female, 60% male).",))


# --------------------------------------------------------------------------- Das 2019
_DAS_NOTES = (
    "Report 002 prints Keras summaries; the input (40, 1) (40 MFCC means, one channel) and the "
    "kernel sizes are reverse-engineered from the printed output shapes and parameter counts, "
    "which this implementation reproduces exactly.",
    "Features: 40 MFCCs per frame with a 10 ms shift (stated), averaged over the clip (implied "
    "by the (40, 1) input); sample rate 22,050 Hz (librosa's default) and a 512-point FFT "
    "(about 23 ms) are our choices.",
    "Activations: the summaries show bare Activation layers; ReLU for hidden layers and "
    "softmax for the output are assumed.",
    "Optimizer: not stated; Adam with learning rate 0.001 is our choice. Batch size 1 and "
    "100 epochs are stated.",
    "Data: the report's headline results add RAVDESS song (and audio extracted from the "
    "videos: 4,904 files in all) to speech, split at random; its speech-only baseline is "
    "Model_C.",
)


# What Models B-D share: input, corpus and the training settings of report 002.
_DAS_TRAINING = dict(family="cnn1d", report="002", source=_DAS, features=REPORT_SPECS["002"],
                     input_shape=(40,), input_text="40 MFCC means", corpus="speech+song")


@register("das2019_model_b", **_DAS_TRAINING, reference_params=4456, notes=_DAS_NOTES + (
              "Model_B: Conv1D(8, 3) -> Conv1D(16, 3) -> MaxPool(2) -> Conv1D(32, 3) -> "
              "Conv1D(16, 3) -> MaxPool(2) -> Flatten(112) -> Dense(8), all 'valid' (40->38->36->"
              "18->16->14->7); no dropout (stated).",))
def build_das_model_b(input_shape, n_classes):
    """Das's Model_B (report 002, figure 2): four small 'valid' Conv1D layers, kernel 3.

    Conv1D 8 -> 16 -> MaxPool(2) -> 32 -> 16 -> MaxPool(2) -> Flatten -> Dense; ReLU
    activations, no dropout; 4,456 parameters for a (40,) input and 8 classes, as printed.
    Explained in the chapter "1-D CNNs".
    """
    inputs, x = _series_input(input_shape)
    x = layers.Conv1D(8, 3, name="conv1")(x)
    x = layers.Activation("relu")(x)
    x = layers.Conv1D(16, 3, name="conv2")(x)
    x = layers.Activation("relu")(x)
    x = layers.MaxPooling1D(2)(x)
    x = layers.Conv1D(32, 3, name="conv3")(x)
    x = layers.Activation("relu")(x)
    x = layers.Conv1D(16, 3, name="conv4")(x)
    x = layers.Activation("relu")(x)
    x = layers.MaxPooling1D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(n_classes, name="output")(x)
    outputs = layers.Activation("softmax")(x)
    return keras.Model(inputs, outputs, name="das2019_model_b")


@register("das2019_model_c", **_DAS_TRAINING, reference_params=6520, notes=_DAS_NOTES + (
              "Model_C: Conv1D(8, 5, 'same') -> Conv1D(16, 5, 'same') -> Dropout -> MaxPool(8) -> "
              "Conv1D(32, 5, 'same') -> Dropout -> Conv1D(16, 5, 'same') -> Flatten(80) -> Dense(8); "
              "40 -> 40 -> 5 -> 5 steps.",
              "Dropout '0.1-0.2' (stated as a range): 0.1 for the first dropout layer, 0.2 for the "
              "second.",))
def build_das_model_c(input_shape, n_classes):
    """Das's Model_C (report 002, figure 3; also its speech-only baseline).

    Four 'same' Conv1D layers with kernel 5 (8, 16, 32, 16 filters), one MaxPooling1D(8),
    dropout 0.1 and 0.2; 6,520 parameters for a (40,) input and 8 classes, as printed.
    Explained in the chapter "1-D CNNs".
    """
    inputs, x = _series_input(input_shape)
    x = layers.Conv1D(8, 5, padding="same", name="conv1")(x)
    x = layers.Activation("relu")(x)
    x = layers.Conv1D(16, 5, padding="same", name="conv2")(x)
    x = layers.Activation("relu")(x)
    x = layers.Dropout(0.1)(x)
    x = layers.MaxPooling1D(8)(x)
    x = layers.Conv1D(32, 5, padding="same", name="conv3")(x)
    x = layers.Activation("relu")(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Conv1D(16, 5, padding="same", name="conv4")(x)
    x = layers.Activation("relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(n_classes, name="output")(x)
    outputs = layers.Activation("softmax")(x)
    return keras.Model(inputs, outputs, name="das2019_model_c")


@register("das2019_model_d", **_DAS_TRAINING, reference_params=87944, notes=_DAS_NOTES + (
              "Model_D: Conv1D(128, 5, 'same') -> Dropout(0.1) -> MaxPool(8) -> Conv1D(128, 5, "
              "'same') -> Dropout(0.1) -> Flatten(640) -> Dense(8); dropout 0.1 (stated).",))
def build_das_model_d(input_shape, n_classes):
    """Das's Model_D (report 002, figure 4): two wide 'same' Conv1D layers (128 filters).

    Conv1D(128, 5) -> Dropout(0.1) -> MaxPooling1D(8) -> Conv1D(128, 5) -> Dropout(0.1)
    -> Flatten -> Dense; 87,944 parameters for a (40,) input and 8 classes, as printed.
    Explained in the chapter "1-D CNNs".
    """
    inputs, x = _series_input(input_shape)
    x = layers.Conv1D(128, 5, padding="same", name="conv1")(x)
    x = layers.Activation("relu")(x)
    x = layers.Dropout(0.1)(x)
    x = layers.MaxPooling1D(8)(x)
    x = layers.Conv1D(128, 5, padding="same", name="conv2")(x)
    x = layers.Activation("relu")(x)
    x = layers.Dropout(0.1)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(n_classes, name="output")(x)
    outputs = layers.Activation("softmax")(x)
    return keras.Model(inputs, outputs, name="das2019_model_d")
