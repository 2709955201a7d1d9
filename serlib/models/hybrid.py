"""CNN-LSTM hybrids: Kalokyris & Katsimpras's Conv1D+LSTM with one to four conv layers
(report 001), Ayadi & Lachiri's two-block Conv1D-LSTM for speech and song (report 003) and
Pankratz et al.'s CNN + BiLSTM with mean/max pooling (report 004).

Inputs are time-major feature matrices ``(n_frames, n_features)``; ``keras`` layers only.
Explained in the chapter "CNN-LSTM hybrids".
"""
from __future__ import annotations

import keras
from keras import layers

from .registry import REPORT_SPECS, SIX_EMOTIONS, register

# --------------------------------------------------------------------------- Kalokyris
_KALOKYRIS_FILTERS = (64, 64, 128, 128)
_KALOKYRIS_NOTES = (
    "Report 001 states: 1 to 4 one-dimensional conv layers feeding an LSTM (inspired by "
    "Etienne et al. 2018), dropout, trained on augmented data (noise, stretch, pitch), with "
    "checkpoints and a learning rate reduced on plateau; accuracies 57.37%, 59.94%, 61.22%, "
    "63.99% for 1-4 convs. Filters, kernels and LSTM size are not given.",
    "Our reading: conv block i = Conv1D(filters (64, 64, 128, 128)[i], kernel 3, 'same') -> "
    "BatchNormalization -> ReLU -> MaxPooling1D(2), in the spirit of Etienne et al.'s "
    "conv stack; then LSTM(128) (the size of the report's simple LSTM) -> Dropout(0.2) -> "
    "Dense softmax.",
    "Features not stated for this model: the report's 223 x 20 MFCC matrix read as 223 steps "
    "of 20 coefficients (convolution along time, the 20 MFCCs as channels).",
    "Optimizer and batch size not stated: Adam (learning rate 0.001), batch 32; 60 epochs as for "
    "the report's LSTM; checkpoint on validation loss; ReduceLROnPlateau on validation loss "
    "(factor 0.5, patience 5, our choices).",
    "The report gives no year (it cites 2022 work, so 2022 or later).",
)


def _kalokyris_cnn_lstm(n_conv: int):
    def build(input_shape, n_classes):
        inputs = keras.Input(shape=input_shape)
        x = layers.Reshape((-1, 1))(inputs) if len(input_shape) == 1 else inputs
        for i in range(n_conv):
            x = layers.Conv1D(_KALOKYRIS_FILTERS[i], 3, padding="same", name=f"conv{i + 1}")(x)
            x = layers.BatchNormalization(name=f"bn{i + 1}")(x)
            x = layers.Activation("relu", name=f"relu{i + 1}")(x)
            x = layers.MaxPooling1D(2, name=f"pool{i + 1}")(x)
        x = layers.LSTM(128, name="lstm")(x)
        x = layers.Dropout(0.2)(x)
        outputs = layers.Dense(n_classes, activation="softmax", name="output")(x)
        return keras.Model(inputs, outputs, name=f"kalokyris_cnn_lstm{n_conv}")

    build.__name__ = build.__qualname__ = f"build_kalokyris_cnn_lstm{n_conv}"
    build.__doc__ = (
        f"Kalokyris & Katsimpras's CNN+LSTM with {n_conv} Conv1D layer(s) (report 001).\n\n"
        f"    {n_conv} block(s) of Conv1D(kernel 3, 'same') -> BatchNorm -> ReLU -> MaxPool(2) with "
        f"filters {_KALOKYRIS_FILTERS[:n_conv]}, then LSTM(128) -> Dropout(0.2) -> Dense softmax.\n"
        "    Explained in the chapter \"CNN-LSTM hybrids\".\n")
    return build


_REPORTED = {1: "57.37%", 2: "59.94%", 3: "61.22%", 4: "63.99%"}
for _n in (1, 2, 3, 4):
    globals()[f"build_kalokyris_cnn_lstm{_n}"] = register(
        f"kalokyris_cnn_lstm{_n}", family="hybrid", report="001", source="Kalokyris & Katsimpras n.d.",
        features=REPORT_SPECS["001"], input_shape=(223, 20), input_text="223×20 MFCC sequence",
        notes=_KALOKYRIS_NOTES + (f"{_n} conv layer(s): report {_REPORTED[_n]}.",),
    )(_kalokyris_cnn_lstm(_n))


# --------------------------------------------------------------------------- Ayadi & Lachiri
_AYADI_NOTES = (
    "Report 003 gives no year; it cites 2020 work, so it is from 2020 or later.",
    "Stated: Conv1D with kernel 5 x 256 x 256 (kernel 5, 256 input channels, 256 filters) and "
    "bias 256; BatchNormalization (256); two LSTM layers with kernel and recurrent kernel "
    "256 x 1024 (LSTM(256)); dropout; Flatten; two Dense layers; then a second group Conv1D + "
    "two LSTMs with 'the same parameters' and dropout between layers; Flatten and the "
    "classification layers again; softmax; Adam with learning rate 0.01; 6 emotions.",
    "Input '[32, 256] frames': the kernel 5 x 256 x 256 says the first conv sees 256 channels. "
    "We read [32, 256] as librosa's (n_mfcc, n_frames) = 32 MFCCs x 256 frames fed without "
    "transposing, so the conv slides along the 32 coefficients with the 256 frames as "
    "channels. serlib's features are time-major (256, 32); the builder's Permute restores "
    "the report's orientation, so every printed kernel shape comes out. (The alternative, 32 "
    "time steps of 256 features, gives the same weights.) 256 frames of hop 512 at 22,050 Hz "
    "is 5.9 s, enough for every speech clip (<= 5 s, stated); long song clips are cropped.",
    "Second group: a Conv1D with 5 x 256 x 256 kernels needs a 256-channel sequence, so the "
    "second Dense layer has 256 x (steps / 4) units reshaped to (steps / 4, 256) = (8, 256); "
    "the first Dense has 256 units. Conv padding 'same', ReLU on conv and dense layers "
    "(not stated).",
    "Dropout rate 0.2 (the report: 'chosen depending on the performance'). Batch size and "
    "epochs not stated: 32 and 50.",
)


def _ayadi(input_shape, n_classes, *, between_lstms: bool, name: str, rate: float = 0.2):
    inputs = keras.Input(shape=input_shape)
    x = layers.Permute((2, 1), name="to_report_orientation")(inputs)
    steps = x.shape[1]
    # first group
    x = layers.Conv1D(256, 5, padding="same", activation="relu", name="conv1")(x)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.LSTM(256, return_sequences=True, name="lstm1")(x)
    if between_lstms:
        x = layers.Dropout(rate)(x)
    x = layers.LSTM(256, return_sequences=True, name="lstm2")(x)
    x = layers.Dropout(rate)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="relu", name="dense1")(x)
    inner = max(1, steps // 4)
    x = layers.Dense(256 * inner, activation="relu", name="dense2")(x)
    x = layers.Reshape((inner, 256))(x)
    # second group: the same layers again, dropout between each two
    x = layers.Conv1D(256, 5, padding="same", activation="relu", name="conv2")(x)
    x = layers.Dropout(rate)(x)
    x = layers.LSTM(256, return_sequences=True, name="lstm3")(x)
    if between_lstms:
        x = layers.Dropout(rate)(x)
    x = layers.LSTM(256, return_sequences=True, name="lstm4")(x)
    x = layers.Dropout(rate)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="relu", name="dense3")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name=name)


_AYADI_TRAINING = dict(
    family="hybrid", report="003", source="Ayadi & Lachiri n.d.", features=REPORT_SPECS["003"],
    input_shape=(256, 32), input_text="256×32 MFCC (fed as 32×256)", labels=SIX_EMOTIONS,
    data_filter={"emotion": list(SIX_EMOTIONS)},
)


@register("ayadi_conv1d_lstm_speech", corpus="speech", notes=_AYADI_NOTES + (
    "Speech variant: no dropout between the LSTM layers (stated); report: 53.32% validation "
    "accuracy on speech (6 emotions).",), **_AYADI_TRAINING)
def build_ayadi_speech(input_shape, n_classes):
    """Ayadi & Lachiri's Conv1D-LSTM for speech (report 003, figure 2 without the LSTM dropout).

    Permute to the report's (32, 256) orientation; Conv1D(256, 5) -> BatchNorm -> LSTM(256)
    -> LSTM(256) -> Dropout -> Flatten -> Dense(256) -> Dense(8·256) -> Reshape(8, 256);
    Conv1D(256, 5) -> Dropout -> LSTM(256) -> LSTM(256) -> Dropout -> Flatten -> Dense(256)
    -> Dense softmax. Explained in the chapter "CNN-LSTM hybrids".
    """
    return _ayadi(input_shape, n_classes, between_lstms=False, name="ayadi_conv1d_lstm_speech")


@register("ayadi_conv1d_lstm_song", corpus="song", notes=_AYADI_NOTES + (
    "Song variant: dropout between the LSTM layers as well (stated); trained on RAVDESS song "
    "(6 emotions); report: 73.33% validation accuracy.",), **_AYADI_TRAINING)
def build_ayadi_song(input_shape, n_classes):
    """Ayadi & Lachiri's Conv1D-LSTM for song (report 003, figure 2 in full).

    As the speech variant, plus Dropout between the two LSTMs of each group. Explained in
    the chapter "CNN-LSTM hybrids".
    """
    return _ayadi(input_shape, n_classes, between_lstms=True, name="ayadi_conv1d_lstm_song")


# --------------------------------------------------------------------------- Pankratz et al.
_PANKRATZ_NOTES = (
    "Report 004 states: input 162 x K (MFCC, RMS, ZCR, mel spectrogram, chroma per 20 ms frame at "
    "16 kHz, after WebRTC voice-activity trimming), Conv1D 162 -> 60 channels kernel 5 stride 1, "
    "max pool 5, Conv1D 60 -> 40 kernel 3, bidirectional LSTM 'input 40, output 80', "
    "concatenation of the mean and the max over time (160), BatchNorm, Dense 60 -> Dense 50 -> "
    "Dense 8 with ReLU (and dropout 0.25) between them; 80 epochs, batch size 256.",
    "BiLSTM read as 40 units per direction (80 per step, 160 after mean+max, as stated). "
    "ReLU after each conv (not stated); 'valid' convolutions (PyTorch's default padding 0).",
    "Optimizer not stated: Adam, learning rate 0.001.",
    "Sequence length: the report pads each batch to its longest clip; serlib's features "
    "(serlib.features.REPORT_SPECS['004']: 20 ms hop, 25 ms Hamming window, energy trimming in "
    "place of WebRTC VAD) pad or crop every clip to 226 frames (4.5 s) so clips stack. The "
    "model itself accepts any length (input (None, 162)).",
    "Data: speech, 8 emotions, random 60/15/25 split, training set augmented by pitch shift up and "
    "down and Gaussian noise.",
)


def _pankratz(input_shape, n_classes, *, dropout: float, name: str, activation: str = "relu", pool: int = 5):
    """Report 004's network; ``activation`` ("relu" or "leaky_relu") and ``pool`` are the two
    choices the report says it compared (ReLU beat LeakyReLU; pool 5 was best), varied by
    ``benchmarks/experiments.py``."""
    inputs = keras.Input(shape=input_shape)
    x = layers.Conv1D(60, 5, activation=activation, name="conv1")(inputs)
    x = layers.MaxPooling1D(pool, name="pool")(x)
    x = layers.Conv1D(40, 3, activation=activation, name="conv2")(x)
    x = layers.Bidirectional(layers.LSTM(40, return_sequences=True), name="bilstm")(x)
    x = layers.Concatenate(name="mean_max")([layers.GlobalAveragePooling1D(name="mean")(x),
                                             layers.GlobalMaxPooling1D(name="max")(x)])
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.Dense(60, activation=activation, name="dense1")(x)
    if dropout:
        x = layers.Dropout(dropout)(x)
    x = layers.Dense(50, activation=activation, name="dense2")(x)
    if dropout:
        x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name=name)


_PANKRATZ_TRAINING = dict(
    family="hybrid", report="004", source="Pankratz et al. 2024", features=REPORT_SPECS["004"],
    input_shape=(226, 162), input_text="226×162 frame features",
)


@register("pankratz2024_cnn_bilstm", notes=_PANKRATZ_NOTES + (
    "With Dropout(0.25) after each hidden Dense layer (stated); report: 58% test accuracy.",),
    **_PANKRATZ_TRAINING)
def build_pankratz(input_shape, n_classes):
    """Pankratz et al.'s CNN + BiLSTM (report 004, figure 1).

    Conv1D(60, 5) -> MaxPool(5) -> Conv1D(40, 3) -> BiLSTM(40 per direction) ->
    concat(mean, max over time) -> BatchNorm -> Dense(60) -> Dropout(0.25) -> Dense(50) ->
    Dropout(0.25) -> Dense softmax. Explained in the chapter "CNN-LSTM hybrids".
    """
    return _pankratz(input_shape, n_classes, dropout=0.25, name="pankratz2024_cnn_bilstm")


@register("pankratz2024_cnn_bilstm_nodropout", notes=_PANKRATZ_NOTES + (
    "The report's control: the identical model without the dropout layers; report: 57% test "
    "accuracy.",), **_PANKRATZ_TRAINING)
def build_pankratz_nodropout(input_shape, n_classes):
    """Pankratz et al.'s CNN + BiLSTM without dropout (report 004's control model).

    Identical to :func:`build_pankratz` minus the two Dropout layers. Explained in the
    chapter "CNN-LSTM hybrids".
    """
    return _pankratz(input_shape, n_classes, dropout=0.0, name="pankratz2024_cnn_bilstm_nodropout")
