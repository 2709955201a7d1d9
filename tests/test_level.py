"""serlib.level: the recording level taken out of a clip, in the pipeline, a recipe and serlib evaluate."""
from __future__ import annotations

import json

import numpy as np
import pytest

from serlib.errors import ConfigError, SerlibError
from serlib.features import FeatureSpec
from serlib.level import check_level, loud_level, match_level
from serlib.pipeline import Pipeline
from serlib.recipes import Recipe

SR = 16000


def _voice(seed=0, seconds=1.0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    envelope = np.where((t > 0.2) & (t < 0.8), 1.0, 0.01)          # a pause either side
    return (0.05 * envelope * (np.sin(2 * np.pi * 180 * t) + 0.3 * rng.normal(size=t.size))).astype(np.float32)


def test_loud_level_follows_a_gain_and_ignores_the_pauses():
    y = _voice()
    assert abs(loud_level(4 * y, SR) - loud_level(y, SR) - 20 * np.log10(4)) < 1e-3
    longer = np.concatenate([np.zeros(SR, np.float32), y])          # a second of silence added
    assert abs(loud_level(longer, SR) - loud_level(y, SR)) < 1.0


def test_match_level_puts_every_gain_at_the_same_level():
    y = _voice()
    for gain in (0.01, 0.3, 1.5):
        out = match_level(gain * y, SR, -30.0)
        assert abs(loud_level(out, SR) + 30.0) < 0.05
        np.testing.assert_allclose(out, match_level(y, SR, -30.0), atol=1e-5)
    silent = np.zeros(SR, np.float32)
    assert not match_level(silent, SR, -30.0).any()                 # nothing to scale, no NaN
    assert np.abs(match_level(y, SR, -3.0)).max() <= 1.0            # clipped, never beyond full scale


@pytest.mark.parametrize("bad", [5.0, -200, float("nan"), "loud", True])
def test_bad_levels_are_refused_in_one_line(bad):
    with pytest.raises(SerlibError, match="level"):
        check_level(bad)
    with pytest.raises(ConfigError, match="level_db"):
        Recipe(level_db=bad)


def test_recipe_level_db_setting():
    assert Recipe().level_db is None
    assert Recipe().override("level_db=-30").level_db == -30.0
    assert Recipe(level_db=-30).override("level_db=none").level_db is None
    with pytest.raises(ConfigError, match="augment"):
        Recipe(level_db=-30, augment=True)


def test_pipeline_with_a_level_describes_a_quiet_and_a_loud_take_alike():
    spec = FeatureSpec(kind="logmel", sr=SR, duration=1.0)
    plain = Pipeline(spec, functional_speeds=(1.0,))
    levelled = plain.replace(level_db=-30.0)
    assert [v.key() for _, v in levelled.views()] != [v.key() for _, v in plain.views()]   # cached apart
    assert all("level_db" in v.to_dict() for _, v in levelled.views())
    assert Pipeline.from_dict(json.loads(json.dumps(levelled.to_dict()))) == levelled
    quiet, loud = _voice(), 8 * _voice()
    a, b = levelled.describe_signal(quiet, SR), levelled.describe_signal(loud, SR)
    np.testing.assert_allclose(a.features[1.0], b.features[1.0], atol=1e-3)
    np.testing.assert_allclose(a.functionals[1.0], b.functionals[1.0], atol=1e-2, rtol=1e-3)
    c, d = plain.describe_signal(quiet, SR), plain.describe_signal(loud, SR)
    assert not np.allclose(c.functionals[1.0], d.functionals[1.0], atol=1e-2)   # without it, loudness shows
    with pytest.raises(SerlibError, match="level"):
        Pipeline(spec, level_db=0.0)


def test_a_table_filled_late_is_levelled_as_the_rest(standin_dir):
    """prepare_data describes every view through the levelled pipeline; a table asked for later is too."""
    from serlib.models import get_recipe
    from serlib.training import prepare_data, prepared_functionals, prepared_speed_features

    from serlib.datasets.corpus import load_corpus

    recipe = get_recipe("recommended").override("level_db=-30")
    few = load_corpus(standin_dir, verbose=False).index.head(6)          # six clips are enough here
    prep = prepare_data("recommended", few, verbose=0, recipe=recipe)
    assert prep.pipeline.level_db == -30.0
    rows = np.arange(min(6, len(prep.index)))
    full, slow = prep.functionals.copy(), prep.perturbed_functionals[0.9].copy()
    prep.functionals, prep.perturbed_functionals = None, {}
    np.testing.assert_allclose(prepared_functionals(prep, verbose=0)[rows], full[rows], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(prepared_functionals(prep, verbose=0, speed=0.9, rows=rows)[rows], slow[rows],
                               rtol=1e-4, atol=1e-4)
    features = prepared_speed_features(prep, 1.1, rows, verbose=0)[rows]
    again = prep.pipeline.replace(feature_speeds=(1.0, 1.1), functional_speeds=()).transform(
        prep.index["path"].iloc[rows], progress=False).features[1.1]
    np.testing.assert_allclose(features, again, rtol=1e-5, atol=1e-5)
