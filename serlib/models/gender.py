"""Gender first, then emotion: the pipeline report 000 proposed.

Balata & Oliveira found a 2-D CNN that told female from male voices perfectly and
emotion models trained on one gender that beat the model trained on everyone, and
suggested chaining them: predict the gender, then ask that gender's emotion model.
:class:`GenderThenEmotion` does exactly that. Explained in the chapter "Gender and
gender-specific models".
"""
from __future__ import annotations

import numpy as np

from ..errors import SerlibError


def _probabilities(model, x) -> np.ndarray:
    """Class probabilities ``(n, k)`` from a Keras model or any object with ``predict``."""
    try:
        import keras

        if isinstance(model, keras.Model):
            return np.asarray(model.predict(x, verbose=0), dtype=np.float64)
    except ImportError:  # pragma: no cover - keras is a dependency
        pass
    return np.asarray(model.predict(x), dtype=np.float64)


class GenderThenEmotion:
    """A gender classifier routing each clip to a gender-specific emotion model.

    ``gender_model`` outputs probabilities over ``gender_labels`` (default female, male);
    ``emotion_models`` maps each gender label to a model whose outputs follow
    ``emotion_labels`` (both specialists must share one label order).

    Two ways to combine them (``mode``):

    - ``"route"`` (default, the report's pipeline): each clip goes to the specialist of its
      most probable gender only; that model's probabilities are the answer.
    - ``"mix"``: both specialists see every clip and their probabilities are averaged with
      the gender probabilities as weights, p(e|x) = Σ_g p(g|x) · p_g(e|x). A clip the gender
      model is unsure about then hears from both.

    The gender and emotion models may use different features: pass ``x_emotion`` when the
    emotion input differs from the gender input. Explained in the chapter "Gender and
    gender-specific models".
    """

    MODES = ("route", "mix")

    def __init__(self, gender_model, emotion_models: dict, *, emotion_labels,
                 gender_labels=("female", "male"), mode: str = "route"):
        self.gender_model = gender_model
        self.gender_labels = tuple(gender_labels)
        self.emotion_labels = tuple(emotion_labels)
        missing = [g for g in self.gender_labels if g not in emotion_models]
        if missing:
            raise SerlibError(f"GenderThenEmotion: no emotion model for gender {missing[0]!r}; "
                              f"pass one per gender label {list(self.gender_labels)}")
        self.emotion_models = {g: emotion_models[g] for g in self.gender_labels}
        self.mode = self._check_mode(mode)

    def _check_mode(self, mode):
        if mode not in self.MODES:
            raise SerlibError(f"GenderThenEmotion: unknown mode {mode!r}; use 'route' or 'mix'")
        return mode

    @classmethod
    def from_runs(cls, gender_run, female_run, male_run, *, mode: str = "route"):
        """Assemble the pipeline from three trained runs (:class:`~serlib.runs.Run` objects, as
        :func:`serlib.training.train` returns them or :func:`serlib.runs.load_run` reads a run
        folder).

        The gender run's labels must be the gender labels; the two emotion runs must share
        their labels. Explained in the chapter "Gender and gender-specific models".
        """
        for name, run in (("gender_run", gender_run), ("female_run", female_run), ("male_run", male_run)):
            if not (hasattr(run, "model") and hasattr(run, "labels")):
                raise SerlibError(f"GenderThenEmotion.from_runs: {name}={str(run)[:120]!r} is not a run; pass "
                                  "trained runs (serlib.runs.load_run(folder) reads a saved one)")
        gender, female, male = gender_run, female_run, male_run
        if sorted(gender.labels) != ["female", "male"]:
            raise SerlibError(f"{getattr(gender, 'dir', 'gender run')}: its labels are {list(gender.labels)}, "
                              "not female/male; pass a run of a gender model")
        if list(female.labels) != list(male.labels):
            raise SerlibError(f"{getattr(male, 'dir', 'male run')}: its emotion labels differ from the "
                              "female run's; train both specialists on the same emotions")
        return cls(gender.model, {"female": female.model, "male": male.model},
                   emotion_labels=female.labels, gender_labels=gender.labels, mode=mode)

    def predict_gender(self, x_gender) -> np.ndarray:
        """Gender probabilities ``(n, len(gender_labels))``. Explained in the chapter "Gender and gender-specific models"."""
        p = _probabilities(self.gender_model, x_gender)
        if p.ndim != 2 or p.shape[1] != len(self.gender_labels):
            raise SerlibError(f"GenderThenEmotion: the gender model returned shape {p.shape}, "
                              f"expected (n, {len(self.gender_labels)})")
        return p

    def _emotion(self, gender, x) -> np.ndarray:
        p = _probabilities(self.emotion_models[gender], x)
        if p.ndim != 2 or p.shape[1] != len(self.emotion_labels):
            raise SerlibError(f"GenderThenEmotion: the {gender} emotion model returned shape {p.shape}, "
                              f"expected (n, {len(self.emotion_labels)})")
        return p

    def predict_proba(self, x_gender, x_emotion=None, *, mode: str | None = None) -> np.ndarray:
        """Emotion probabilities ``(n, len(emotion_labels))`` for a batch of clips.

        Explained in the chapter "Gender and gender-specific models".
        """
        mode = self._check_mode(self.mode if mode is None else mode)
        x_emotion = x_gender if x_emotion is None else x_emotion
        p_gender = self.predict_gender(x_gender)
        n = p_gender.shape[0]
        if len(x_emotion) != n:
            raise SerlibError(f"GenderThenEmotion: {n} gender inputs but {len(x_emotion)} emotion inputs")
        out = np.zeros((n, len(self.emotion_labels)))
        if mode == "mix":
            for j, g in enumerate(self.gender_labels):
                out += p_gender[:, [j]] * self._emotion(g, x_emotion)
            return out
        route = p_gender.argmax(axis=1)
        for j, g in enumerate(self.gender_labels):
            rows = np.flatnonzero(route == j)
            if rows.size:
                out[rows] = self._emotion(g, x_emotion[rows])
        return out

    def predict(self, x_gender, x_emotion=None, *, mode: str | None = None) -> list[str]:
        """The most probable emotion label per clip. Explained in the chapter "Gender and gender-specific models"."""
        p = self.predict_proba(x_gender, x_emotion, mode=mode)
        return [self.emotion_labels[i] for i in p.argmax(axis=1)]
