"""The Berlin Database of Emotional Speech (EmoDB): its file names, as a corpus adapter.

Burkhardt, Paeschke, Rolfes, Sendlmeier & Weiss (2005), "A database of German emotional
speech", Interspeech 2005: ten actors (five women, five men) speak ten everyday German
sentences in seven emotions; the 535 released utterances are those at least 80 % of 20
listeners recognised. A name such as ``03a01Fa.wav`` holds the speaker (``03``), the text
code (``a01``), the emotion letter (German initials: ``W`` Ärger = angry, ``L`` Langeweile
= boredom, ``E`` Ekel = disgust, ``A`` Angst = fearful, ``F`` Freude = happy, ``T`` Trauer
= sad, ``N`` neutral) and the version (``a``, ``b``, ... for several takes).

In serlib's index (:mod:`serlib.datasets.adapters`) an EmoDB clip gets ``actor`` = 100 +
speaker (speaker 03 is actor 103, never confused with RAVDESS actor 3 when both corpora
are used together), ``speaker`` "emodb03", ``gender`` from the corpus documentation,
``statement`` the text code, ``repetition`` the version (a = 1, b = 2, ...), and no
``intensity`` (EmoDB has one level per emotion). Boredom keeps its own name: RAVDESS has
no such class. Explained in the chapter "Does it travel? RAVDESS to EmoDB".
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .adapters import CorpusAdapter, index_folder, register_corpus

#: Emotion letter -> serlib's emotion name.
EMOTION_LETTERS = {"W": "angry", "L": "boredom", "E": "disgust", "A": "fearful", "F": "happy",
                   "T": "sad", "N": "neutral"}
#: EmoDB's seven emotions, in serlib's order (boredom last).
EMODB_EMOTIONS = ("neutral", "happy", "sad", "angry", "fearful", "disgust", "boredom")
#: Speaker -> gender, from the corpus documentation (Burkhardt et al. 2005).
SPEAKERS = {3: "male", 8: "female", 9: "female", 10: "male", 11: "male", 12: "male", 13: "female",
            14: "female", 15: "male", 16: "female"}
#: The ten sentence codes (five short "a", five longer "b").
TEXTS = ("a01", "a02", "a04", "a05", "a07", "b01", "b02", "b03", "b09", "b10")
#: Added to EmoDB's speaker numbers to make the index's ``actor`` (RAVDESS uses 1-24).
ACTOR_OFFSET = 100

_NAME = re.compile(r"^(\d{2})([ab]\d{2})([A-Z])([a-z])$")
_EXPECTED = ("expected an EmoDB name SSTTTEV like 03a01Fa.wav: speaker 03-16, text a01-b10, "
             "emotion letter W L E A F T N, version letter a-z")


def parse_name(name: str) -> dict:
    """Parse an EmoDB file name (with or without folder and suffix) into index fields.

    Raises ``ValueError`` naming the file and what an EmoDB name looks like. Explained in
    the chapter "The data".
    """
    stem = Path(name).name.split(".")[0]
    match = _NAME.match(stem)
    if match is None:
        raise ValueError(f"{name!r} is not an EmoDB name ({_EXPECTED})")
    speaker, text, letter, version = match.groups()
    if int(speaker) not in SPEAKERS:
        raise ValueError(f"{name!r} names speaker {speaker}, not one of EmoDB's ten "
                         f"({', '.join(f'{s:02d}' for s in SPEAKERS)})")
    if text not in TEXTS:
        raise ValueError(f"{name!r} names text {text}, not one of EmoDB's ten ({', '.join(TEXTS)})")
    if letter not in EMOTION_LETTERS:
        raise ValueError(f"{name!r} has emotion letter {letter!r}; EmoDB's are "
                         + ", ".join(f"{k} ({v})" for k, v in EMOTION_LETTERS.items()))
    number = int(speaker)
    return {
        "actor": ACTOR_OFFSET + number,
        "gender": SPEAKERS[number],
        "emotion": EMOTION_LETTERS[letter],
        "intensity": None,
        "statement": text,
        "repetition": ord(version) - ord("a") + 1,
        "vocal_channel": "speech",
        "modality": "audio-only",
    }


EMODB = register_corpus(CorpusAdapter(
    name="emodb", title="EmoDB", parse=parse_name, emotions=EMODB_EMOTIONS, example="03a01Fa.wav",
    hint="point to the folder of EmoDB's wav/ files or run `serlib download --corpus emodb`",
    folder="the folder that holds EmoDB's .wav/.flac files (03a01Fa.wav …)",
    actor_offset=ACTOR_OFFSET, speaker_word="speakers"))


def index_emodb(folder, *, warn=None, content_ids: bool = True) -> pd.DataFrame:
    """Index every EmoDB clip under ``folder``: :func:`~serlib.datasets.adapters.index_folder`
    with the EmoDB adapter (a file whose name is not an EmoDB name is skipped with a warning
    naming it and the expected scheme). Explained in the chapter "The data".
    """
    return index_folder(folder, EMODB, warn=warn, content_ids=content_ids)
