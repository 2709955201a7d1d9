"""benchmarks/recommended.py --epochs/--set: variants of the recommended model for tuning."""
import pytest

from serlib.models import build_model, get_model


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("recommended")


@pytest.fixture(autouse=True)
def scratch_registry(monkeypatch):
    """Variants registered by a test disappear after it (other tests list every model)."""
    from serlib.models import registry

    for name in ("_REGISTRY", "_ALIASES", "_PARAMS"):
        monkeypatch.setattr(registry, name, dict(getattr(registry, name)))


def test_settings_parse_to_numbers_and_tuples(bench):
    assert bench._parse_setting("dropout=0.4") == ("dropout", 0.4)
    assert bench._parse_setting("kernel=3") == ("kernel", 3)
    assert bench._parse_setting("channels=64,32") == ("channels", (64, 32))
    for bad in ("dropout", "=3", "dropout=lots"):
        with pytest.raises(SystemExit):
            bench._parse_setting(bad)


def test_a_variant_is_registered_with_its_settings_and_epochs(bench):
    base = get_model("recommended")
    entry = bench._variant(base, 7, dict(map(bench._parse_setting, ["channels=16,16", "dropout=0.5"])))
    assert entry.name != base.name and entry.epochs == 7 and not entry.recommended and entry.aliases == ()
    assert get_model("recommended") is base                      # the real entry is untouched
    model = build_model(entry.name)
    convs = [layer for layer in model.layers if layer.name.startswith("conv")]
    assert [layer.filters for layer in convs] == [16, 16]
    assert [layer.rate for layer in model.layers if layer.name.startswith("dropout")] == [0.5, 0.5]


def test_a_variant_can_change_the_networks_speed_copies(bench):
    base = get_model("recommended")
    with_copies = bench._variant(base, 80, {}, speed_copies=(0.9, 1.1))
    assert with_copies.speed_copies == (0.9, 1.1) and with_copies.epochs == 80
    assert with_copies.builder is base.builder and with_copies.functionals_fusion == base.functionals_fusion
    without = bench._variant(base, None, {}, speed_copies=())
    assert without.speed_copies == () and without.name != with_copies.name
    assert get_model("recommended").speed_copies == base.speed_copies   # the real entry is untouched


def test_unknown_settings_are_refused(bench):
    with pytest.raises(SystemExit, match="unknown setting"):
        bench._variant(get_model("recommended"), None, {"depth": 3})


def test_the_tuning_record_compares_each_row_with_a_row_it_holds():
    """Chapter 12's tuning table looks up each row's reference by name: a typo breaks the chapter."""
    import json
    from pathlib import Path

    record = json.loads((Path(__file__).parents[1] / "benchmarks/results/recommended_tuning.json").read_text())
    variants = record["variants"]
    names = {v["variant"] for v in variants}
    assert len(names) == len(variants)
    assert sum(bool(v.get("baseline")) for v in variants) == 1
    for v in variants:
        assert v.get("against") is None or v["against"] in names, v["variant"]
        assert len(v["folds"]) == len(v["uar"]) and all(0 <= u <= 1 for u in v["uar"])


def test_recipe_settings_make_a_variant_through_recipe_override(bench):
    from serlib.models import get_recipe

    base = get_model("recommended")
    entry = bench._variant(base, None, {}, recipe_settings=["learning_rate=0.001", "functionals_fusion.weight=0.6"])
    assert entry.builder is base.builder and get_recipe(entry.name).learning_rate == 0.001
    assert get_recipe(entry.name).functionals_fusion["weight"] == 0.6 and get_recipe(entry.name).epochs == 120
    assert get_recipe("recommended").learning_rate == 0.002                # the real recipe is untouched
    with pytest.raises(SystemExit, match="unknown recipe setting 'epoch'"):
        bench._variant(base, None, {}, recipe_settings=["epoch=3"])
