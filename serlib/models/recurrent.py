"""Recurrent models: Balata & Oliveira's stacked LSTM (report 000), Kalokyris &
Katsimpras's simple LSTM (report 001) and Das's Model_A (report 002).

Inputs are time-major feature arrays without a channel axis; ``keras`` layers only.
Explained in the chapter "Recurrent models".
"""
from __future__ import annotations

import keras
from keras import layers

from .cnn1d import BALATA_EMOTIONS, BALATA_FILTER
from .registry import REPORT_SPECS, register


def _sequence_input(input_shape):
    """Input plus, for a 1-D vector, a Reshape into a sequence of one-feature steps."""
    inputs = keras.Input(shape=input_shape)
    x = layers.Reshape((-1, 1))(inputs) if len(input_shape) == 1 else inputs
    return inputs, x


@register("balata2021_lstm", family="recurrent", report="000", source="Balata & Oliveira 2021",
          features=REPORT_SPECS["000-2d"], input_shape=(216, 12),
          input_text="216×12 MFCC sequence", labels=BALATA_EMOTIONS, data_filter=BALATA_FILTER, notes=(
              "Report 000 states: two LSTM layers of 128 units, two Dense layers of 512, a softmax "
              "output (after Raza et al. 2019); RMSprop, batch size 16; dropout 0.2 'throughout "
              "this work'.",
              "Input: the 216 x 12 MFCC matrix read as 216 time steps of 12 coefficients (our "
              "reading: the report trained the LSTM after the 2-D CNN, on the 2-D features).",
              "Dropout(0.2) after each Dense(512) (placement not stated); ReLU on the Dense "
              "layers (not stated); the first LSTM returns sequences so the second can stack.",
              "Early stopping patience 20 over 150 epochs and RMSprop learning rate 0.001 carried "
              "over from the report's CNN protocol (not restated for the LSTM).",
              "Data: strong intensity only, 7 emotions (no neutral); report: 67.3% (random split).",
          ))
def build_balata_lstm(input_shape, n_classes):
    """Balata & Oliveira's stacked LSTM (report 000, annex figure A.7).

    LSTM(128, return_sequences) -> LSTM(128) -> Dense(512, ReLU) -> Dropout(0.2) ->
    Dense(512, ReLU) -> Dropout(0.2) -> Dense softmax. Explained in the chapter
    "Recurrent models".
    """
    inputs, x = _sequence_input(input_shape)
    x = layers.LSTM(128, return_sequences=True, name="lstm1")(x)
    x = layers.LSTM(128, name="lstm2")(x)
    x = layers.Dense(512, activation="relu", name="dense1")(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Dense(512, activation="relu", name="dense2")(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name="balata2021_lstm")


@register("kalokyris_lstm", family="recurrent", report="001", source="Kalokyris & Katsimpras n.d.",
          features=REPORT_SPECS["001"], input_shape=(223, 20), input_text="223×20 MFCC sequence", notes=(
              "Report 001 states: an LSTM with 128 output dimensions, ReLU activation, dropout "
              "20%, softmax; 60 epochs, 'saving the model parameters after an optimum learning loss "
              "metric was observed' (which loss is not said; the report describes no validation set); "
              "trained on augmented data (noise, time stretch, pitch shift); 44% accuracy.",
              "'Activation ReLU' read as the LSTM's own activation (LSTM(128, activation='relu')); "
              "Dropout(0.2) after the LSTM, then the softmax layer.",
              "The report then ran three more rounds of 60 epochs checkpointing on training "
              "accuracy, test loss and test accuracy (model selection on the test set); we keep "
              "one 60-epoch run checkpointed on the validation loss.",
              "Features not stated for the LSTM: the report's 223 x 20 MFCC matrix (20 MFCC, n_fft "
              "512, hop 256) read as 223 steps of 20 coefficients. Optimizer and batch size not "
              "stated: Adam (learning rate 0.001), batch 32. The report gives no year (it cites 2022 "
              "work).",
              "Inputs standardised per coefficient with training-set statistics (saved with the "
              "run): on raw MFCCs (c0 near -500) the ReLU LSTM's state grows without bound over "
              "223 steps and the loss turns NaN within two epochs. The report does not mention "
              "scaling, but it cannot have trained without some.",
          ))
def build_kalokyris_lstm(input_shape, n_classes):
    """Kalokyris & Katsimpras's simple LSTM (report 001).

    LSTM(128, activation ReLU) -> Dropout(0.2) -> Dense softmax. Explained in the chapter
    "Recurrent models".
    """
    inputs, x = _sequence_input(input_shape)
    x = layers.LSTM(128, activation="relu", name="lstm")(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name="kalokyris_lstm")


@register("das2019_model_a", family="recurrent", report="002", source="Das 2019",
          features=REPORT_SPECS["002"], input_shape=(40,),
          input_text="40 MFCC means as 40×1 sequence", corpus="speech+song", reference_params=77160, notes=(
              "Report 002 prints the summary: LSTM(128) 66,560 parameters -> Dense 64 -> Dropout -> "
              "Activation -> Dense 32 -> Dropout -> Activation -> Dense 8 -> Activation; 77,160 in "
              "all, reproduced exactly here.",
              "Input reverse-engineered: 4 x 128 x (128 + d + 1) = 66,560 gives d = 1 feature per "
              "step, so the LSTM runs over the 40 MFCC means as a sequence of 40 one-dimensional "
              "steps (input (40, 1)), not over time.",
              "Dropout 0.4 (stated); hidden activations ReLU and output softmax (the summary shows "
              "bare Activation layers); batch size 1 and 100 epochs (stated).",
              "Optimizer not stated: Adam, learning rate 0.001. Features: 40 MFCCs, 10 ms shift "
              "(stated), averaged over frames; 22,050 Hz and n_fft 512 are our choices.",
              "Data: speech plus song (and audio of the video files) split at random (stated).",
          ))
def build_das_model_a(input_shape, n_classes):
    """Das's Model_A (report 002, figure 1): an LSTM over the 40 MFCC means.

    LSTM(128) -> Dense(64) -> Dropout(0.4) -> ReLU -> Dense(32) -> Dropout(0.4) -> ReLU
    -> Dense -> softmax; 77,160 parameters for a (40,) input and 8 classes, as printed.
    Explained in the chapter "Recurrent models".
    """
    inputs, x = _sequence_input(input_shape)
    x = layers.LSTM(128, name="lstm")(x)
    x = layers.Dense(64, name="dense1")(x)
    x = layers.Dropout(0.4)(x)
    x = layers.Activation("relu")(x)
    x = layers.Dense(32, name="dense2")(x)
    x = layers.Dropout(0.4)(x)
    x = layers.Activation("relu")(x)
    x = layers.Dense(n_classes, name="output")(x)
    outputs = layers.Activation("softmax")(x)
    return keras.Model(inputs, outputs, name="das2019_model_a")
