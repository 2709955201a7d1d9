"""Recipes (serlib.recipes): how each model trains, declared as data, overridable, saved with the run."""
from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import pytest

from serlib import recipes
from serlib.errors import ConfigError, SerlibError
from serlib.models import ModelEntry, get_model, get_recipe, list_models, register_variant
from serlib.recipes import Recipe, load_recipes

REPO = Path(__file__).resolve().parent.parent
#: Every model's training settings as ModelEntry held them before recipes existed (taken from
#: the registry at commit a968f83, before anything moved).
BEFORE = json.loads((REPO / "tests" / "fixtures" / "recipes_before.json").read_text())
MODEL = "das2019_model_b"


@pytest.fixture
def scratch_registry(monkeypatch):
    """Variants and recipes registered by a test disappear after it (other tests list every model)."""
    from serlib.models import registry

    for name in ("_REGISTRY", "_ALIASES", "_PARAMS"):
        monkeypatch.setattr(registry, name, dict(getattr(registry, name)))
    monkeypatch.setattr(recipes, "_REGISTERED", dict(recipes._REGISTERED))


# ---------------------------------------------------------------------------------- the declared recipes
def test_every_model_trains_exactly_as_before_the_recipes():
    names = list_models()
    assert len(names) >= 29 and set(names) == set(BEFORE)
    for name in names:
        recipe = get_recipe(name).to_dict()
        assert recipe.pop("augment") is False, name
        assert recipe.pop("level_db") is None, name       # added later: no model scales the level yet
        assert recipe == BEFORE[name], name
    assert get_recipe("recommended") == get_recipe("serlib_logmel_cnn_attn")   # aliases resolve


def test_every_model_has_a_declared_recipe_and_every_recipe_a_model():
    declared = recipes.declared()
    assert set(declared) == set(list_models())
    for path in sorted(recipes.DATA_DIR.glob("*.json")):
        data = json.loads(path.read_text())
        assert data["about"] and set(data) <= {"about", "defaults", "recipes"}, path.name


def test_the_entry_holds_what_a_model_is_and_reads_training_settings_from_its_recipe():
    fields = {f.name for f in dataclasses.fields(ModelEntry)}
    assert not fields & set(recipes.FIELDS)
    entry = get_model("kalokyris_lstm")
    assert entry.recipe is get_recipe("kalokyris_lstm")
    assert (entry.epochs, entry.normalize, entry.callbacks["checkpoint"]) == (60, True, True)
    with pytest.raises(TypeError):
        dataclasses.replace(entry, epochs=3)            # training settings are no entry fields any more
    with pytest.raises(AttributeError):
        entry.epochs = 3


def test_registry_and_recipes_import_no_training_or_fusion_code():
    def imports(module):
        tree = ast.parse((REPO / module).read_text())
        found = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        return found | {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}

    for module in ("serlib/models/registry.py", "serlib/recipes/__init__.py"):
        assert not {m for m in imports(module) if "training" in m or m.endswith("fusion") or "runs" in m}, module
    assert not {m for m in imports("serlib/recipes/__init__.py") if "models" in m}   # recipes sit below models


def test_the_recipe_files_are_installed_with_the_package():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "*.json" in config["package-data"]["serlib.recipes"]
    assert any(pattern.rstrip("*") in "serlib.recipes" for pattern in config["packages"]["find"]["include"])


# ---------------------------------------------------------------------------------- the Recipe
def test_a_recipe_round_trips_through_json():
    for name, recipe in recipes.declared().items():
        data = json.loads(json.dumps(recipe.to_dict()))
        assert Recipe.from_dict(data) == recipe, name
    assert Recipe.from_dict({}) == Recipe()


def test_override_parses_values_by_the_settings_type():
    base = get_recipe("recommended")
    r = base.override("epochs=10", "ensemble=1", "learning_rate=5e-4", "normalize=true",
                      "speed_copies=0.9,1.1", "lr_schedule=none", "class_weight=balanced",
                      'callbacks={"early_stopping_patience": 5}', "functionals_fusion.weight=0.6",
                      "augment=2")
    assert (r.epochs, r.ensemble, r.learning_rate, r.normalize) == (10, 1, 5e-4, True)
    assert r.speed_copies == (0.9, 1.1) and r.lr_schedule is None and r.class_weight == "balanced"
    assert r.callbacks["early_stopping_patience"] == 5 and r.callbacks["monitor"] == "val_loss"
    assert r.functionals_fusion["weight"] == 0.6 and r.functionals_fusion["C"] == 0.01   # one key changed
    assert r.augment == 2
    assert base.epochs == 120 and base.ensemble == 2                     # the original is untouched
    assert base.override("functionals_fusion=none").functionals_fusion is None
    assert base.override(["epochs=3"], batch_size=8) == base.override("epochs=3", "batch_size=8")
    assert r.changes_from(base)["epochs"] == 10 and "optimizer" not in r.changes_from(base)


@pytest.mark.parametrize("assignment, message", [
    ("epoch=3", "unknown recipe setting 'epoch' (did you mean 'epochs'?)"),
    ("epochs", "write KEY=VALUE"),
    ("epochs=ten", "give a whole number"),
    ("epochs=0", "epochs must be a whole number, 1 or more"),
    ("learning_rate=-1", "learning_rate must be a positive number"),
    ("normalize=maybe", "give true or false"),
    ("optimizer=adagrad", "optimizer must be one of adam, rmsprop, sgd"),
    ("speed_copies=1.0", "speed_copies must be a list of speed factors"),
    ("functionals_fusion={bad json", "give none or a JSON table"),
    ("functionals_fusion.alpha=1", "functionals_fusion must be a dict with keys"),
    ("epochs.x=1", "only callbacks and functionals_fusion have keys"),
    ('callbacks={"patience": 3}', "unknown callbacks keys"),
])
def test_bad_overrides_are_refused_in_one_line(assignment, message):
    with pytest.raises(ConfigError) as caught:
        get_recipe(MODEL, assignment)
    text = str(caught.value)
    assert message in text and "\n" not in text
    assert isinstance(caught.value, SerlibError)


def test_keyword_overrides_are_checked_too():
    with pytest.raises(ConfigError, match="unknown recipe setting 'epoch'"):
        get_recipe(MODEL, epoch=3)
    with pytest.raises(ConfigError, match="ensemble"):
        get_recipe(MODEL, ensemble=True)
    with pytest.raises(ConfigError, match="unknown model"):
        get_recipe("no_such_model")


# ---------------------------------------------------------------------------------- recipe files
def _write(folder: Path, name: str, data) -> None:
    (folder / name).write_text(data if isinstance(data, str) else json.dumps(data))


def test_recipe_files_extend_and_take_file_defaults(tmp_path):
    _write(tmp_path, "a.json", {"about": "x", "defaults": {"optimizer": "sgd", "epochs": 7},
                                "recipes": {"one": {}, "two": {"extends": "one", "batch_size": 4},
                                            "three": {"extends": "two", "epochs": 9}}})
    got = load_recipes(tmp_path)
    assert (got["one"].optimizer, got["one"].epochs) == ("sgd", 7)
    assert (got["two"].batch_size, got["two"].epochs) == (4, 7)
    assert (got["three"].batch_size, got["three"].epochs, got["three"].optimizer) == (4, 9, "sgd")


@pytest.mark.parametrize("files, message", [
    ({"a.json": {"recipes": {"m": {"epoch": 3}}}}, "a.json: recipe 'm': unknown recipe setting 'epoch'"),
    ({"a.json": {"recipes": {"m": {"epochs": "many"}}}}, "a.json: recipe 'm': epochs must be a whole number"),
    ({"a.json": {"recipes": {"m": {"extends": "n"}}}}, "extends 'n', which no recipe file declares"),
    ({"a.json": {"recipes": {"m": {"extends": "n"}, "n": {"extends": "m"}}}}, "extends itself"),
    ({"a.json": {"recipes": {"m": {}}}, "b.json": {"recipes": {"m": {}}}}, "already declared in"),
    ({"a.json": "{not json"}, "a.json: cannot read this recipe file"),
    ({"a.json": {"m": {"epochs": 3}}}, "a recipe file holds"),
])
def test_bad_recipe_files_are_named_in_one_line(tmp_path, files, message):
    for name, data in files.items():
        _write(tmp_path, name, data)
    with pytest.raises(ConfigError) as caught:
        load_recipes(tmp_path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


# ---------------------------------------------------------------------------------- models registered in code
def test_a_variant_changes_its_own_recipe_only(scratch_registry):
    before = get_recipe("recommended")
    entry = register_variant("recommended", "test_variant_e7", epochs=7, speed_copies=[0.9])
    assert get_recipe(entry.name).epochs == 7 and get_recipe(entry.name).speed_copies == (0.9,)
    assert get_recipe(entry.name).functionals_fusion == before.functionals_fusion
    assert get_recipe("recommended") == before and get_model("recommended").epochs == 120
    gender = register_variant("balata2021_cnn1d", "balata2021_cnn1d_gender", task="gender",
                              labels=("female", "male"))
    assert gender.recipe == recipes.declared()["balata2021_cnn1d_gender"]


def test_register_takes_a_recipe_or_settings(scratch_registry):
    from serlib.models import register
    from serlib.models.registry import REPORT_SPECS

    def build(input_shape, n_classes):   # never built here
        raise AssertionError

    fields = dict(family="ours", report="serlib", source="test", features=REPORT_SPECS["002"],
                  input_shape=(40,), input_text="40 MFCC means")
    register("test_with_settings", epochs=3, optimizer="sgd", **fields)(build)
    register("test_with_recipe", recipe={"batch_size": 8}, **fields)(build)
    register("test_plain", **fields)(build)
    assert (get_recipe("test_with_settings").epochs, get_recipe("test_with_settings").optimizer) == (3, "sgd")
    assert get_recipe("test_with_recipe").batch_size == 8
    assert get_recipe("test_plain") == Recipe()
    with pytest.raises(ConfigError, match="unknown field"):
        register("test_bad", epoch=3, **fields)


# ---------------------------------------------------------------------------------- training reads the recipe
def test_the_cli_trains_by_the_recipe_with_set_and_saves_it(standin_dir, tmp_path, capsys):
    from serlib import cli

    out = tmp_path / "run"
    assert cli.main(["train", MODEL, "--data", str(standin_dir), "--out", str(out), "--quick",
                     "--set", "epochs=1", "--set", "batch_size=64", "--set", "learning_rate=0.002"]) == 0
    assert "recipe: learning_rate=0.002, batch_size=64, epochs=1 (--set)" in capsys.readouterr().out
    info = json.loads((out / "run.json").read_text())
    expected = get_recipe(MODEL, epochs=1, batch_size=64, learning_rate=0.002).to_dict()
    assert info["recipe"] == expected
    assert info["epochs_run"] == 1 and info["batch_size"] == 64
    assert Recipe.from_dict(info["recipe"]) == get_recipe(MODEL, "epochs=1", "batch_size=64", "learning_rate=2e-3")


def test_the_cli_refuses_a_bad_setting_in_one_line_before_any_work(standin_dir, tmp_path, capsys):
    from serlib import cli

    out = tmp_path / "run"
    status = cli.main(["train", MODEL, "--data", str(standin_dir), "--out", str(out), "--set", "epoch=3"])
    err = capsys.readouterr().err.strip()
    assert status != 0 and "unknown recipe setting 'epoch'" in err and len(err.splitlines()) == 1
    assert not out.exists()
