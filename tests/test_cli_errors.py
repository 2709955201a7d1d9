"""One error type reaches the command line: bad settings are one-line ConfigErrors, anything
else is reported in one line as a bug in serlib (SERLIB_DEBUG=1 adds the traceback), and
--quiet keeps warnings but drops progress messages. Also the import direction the layers
promise (features never imports feature_cache, the registry never imports fusion)."""
from __future__ import annotations

import ast
import logging
import shutil
from pathlib import Path

import pytest

from serlib import cli, fusion
from serlib.errors import ConfigError, SerlibError
from serlib.features import FeatureSpec, report_spec

SERLIB = Path(__file__).resolve().parent.parent / "serlib"


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


# ------------------------------------------------------------------ bad settings: ConfigError
@pytest.mark.parametrize("changes, named", [
    ({"sr": "16k"}, "FeatureSpec.sr"),
    ({"n_fft": 0}, "FeatureSpec.n_fft"),
    ({"hop_length": 2.5}, "FeatureSpec.hop_length"),
    ({"n_frames": -3}, "FeatureSpec.n_frames"),
    ({"duration": float("nan")}, "FeatureSpec.duration"),
    ({"top_db": None}, "FeatureSpec.top_db"),
    ({"trim": "yes"}, "FeatureSpec.trim"),
    ({"kind": ["mfcc"]}, "unknown feature kind"),
    ({"window": "kaiser"}, "unknown window"),
])
def test_a_bad_feature_setting_is_one_config_error_line(changes, named):
    with pytest.raises(ConfigError) as info:
        FeatureSpec(**changes)
    assert named in _one_line(str(info.value))
    assert isinstance(info.value, SerlibError) and isinstance(info.value, ValueError)


def test_specs_refuse_unknown_settings_and_non_dicts_and_accept_whole_floats():
    with pytest.raises(ConfigError, match="no setting n_mel"):
        FeatureSpec().replace(n_mel=64)
    with pytest.raises(ConfigError, match="dict of settings"):
        FeatureSpec.from_dict(["mfcc", 16000])
    with pytest.raises(ConfigError, match="no feature spec for report '005'"):
        report_spec("005")
    assert FeatureSpec(sr=16000.0).sr == 16000.0           # a whole float passes, as int() let it before


def test_bad_builder_overrides_are_config_errors():
    from serlib.models import recommended as rec

    with pytest.raises(ConfigError, match="unknown settings"):
        rec.check_overrides({"dropuot": 0.2})
    for key, value in [("dropout", 1.5), ("channels", 64), ("channels", (64, "wide")), ("kernel", 0),
                       ("warp", True), ("time_masks", 1.5)]:
        with pytest.raises(ConfigError, match=f"setting {key}="):
            rec.check_overrides({key: value})
    assert rec.check_overrides({"channels": [64, 64], "dropout": 0, "shift": 0}) == {
        "channels": (64, 64), "dropout": 0, "shift": 0}


def test_registry_and_fusion_settings_are_config_errors():
    from serlib.models import build_model, get_model, register_variant

    with pytest.raises(ConfigError, match="unknown model 'no_such_model'"):
        get_model("no_such_model")
    with pytest.raises(ConfigError, match="unknown field"):
        register_variant("recommended", "x_variant", epoch=3)
    with pytest.raises(ConfigError, match="n_classes must be a whole number"):
        build_model("recommended", n_classes="eight")
    with pytest.raises(ConfigError, match="functionals_fusion weight='heavy'"):
        fusion.check_settings({"weight": "heavy"})
    with pytest.raises(ConfigError, match="speed_copies"):
        fusion.check_settings({"speed_copies": [1.0]})
    with pytest.raises(ConfigError, match="model entry 'x_fused': functionals_fusion"):
        register_variant("recommended", "x_fused", functionals_fusion={"C": -1})
    assert get_model("recommended").functionals_fusion["pooling"] == "geometric"


def test_an_unknown_model_reaches_the_command_line_as_one_line(standin_dir, tmp_path, capsys):
    status = cli.main(["train", "no_such_model", "--data", str(standin_dir), "--out", str(tmp_path / "run")])
    assert status == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("serlib train: unknown model 'no_such_model'") and "serlib models" in line
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ anything else: a bug, one line
def _broken(*_args):
    raise RuntimeError("boom\nsecond line of detail")


def test_an_unexpected_exception_is_one_line_saying_it_is_a_bug(monkeypatch, capsys):
    monkeypatch.delenv("SERLIB_DEBUG", raising=False)
    monkeypatch.setattr(cli, "_cmd_models", _broken)
    assert cli.main(["models"]) == cli.BUG_STATUS == 70
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("serlib models: RuntimeError: boom; this is a bug in serlib; please report it "
                           "with the command")
    assert "SERLIB_DEBUG=1" in line and "Traceback" not in line


def test_serlib_debug_shows_the_traceback(monkeypatch, capsys):
    monkeypatch.setenv("SERLIB_DEBUG", "1")
    monkeypatch.setattr(cli, "_cmd_models", _broken)
    assert cli.main(["models"]) == 70
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and "_broken" in err and "second line of detail" in err
    assert err.strip().splitlines()[-1].startswith("serlib models: RuntimeError: boom; this is a bug")


def test_serlib_errors_stay_one_line_with_exit_status_2(monkeypatch, capsys):
    def refuse(_args):
        raise ConfigError("setting x=3: give a number below 1")

    monkeypatch.delenv("SERLIB_DEBUG", raising=False)
    monkeypatch.setattr(cli, "_cmd_models", refuse)
    assert cli.main(["models"]) == 2
    assert _one_line(capsys.readouterr().err) == "serlib models: setting x=3: give a number below 1"


# ------------------------------------------------------------------ logging and --quiet
def test_quiet_keeps_warnings_and_drops_progress(standin_dir, tmp_path, capsys):
    folder = tmp_path / "clips"
    (folder / "Actor_01").mkdir(parents=True)
    for clip in sorted((standin_dir / "Actor_01").glob("*.wav"))[:3]:
        shutil.copy(clip, folder / "Actor_01" / clip.name)
    (folder / "Actor_01" / "03-01-02-01-01-01-01.wav").write_bytes(b"")      # skipped, with a warning
    logger = logging.getLogger("serlib")

    assert cli.main(["index", str(folder), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "3 clips in" in captured.out
    warnings = captured.err.strip().splitlines()
    assert len(warnings) == 2 and all(w.startswith("serlib: warning: ") for w in warnings)
    assert "03-01-02-01-01-01-01.wav" in warnings[0] and "skipped 1" in warnings[1]
    logger.info("progress message")
    assert capsys.readouterr().err == ""                                       # INFO is hidden

    assert cli.main(["index", str(folder)]) == 0
    capsys.readouterr()
    logger.info("progress message")
    assert capsys.readouterr().err == "serlib: progress message\n"              # and shown without -q


# ------------------------------------------------------------------ the import direction
def _imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside functions, as dotted names."""
    package = "serlib" + "".join("." + part for part in path.relative_to(SERLIB).parent.parts)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def test_features_never_imports_the_cache_and_the_registry_never_imports_fusion():
    assert not any("feature_cache" in m for m in _imported_modules(SERLIB / "features.py"))
    assert "serlib.features" in _imported_modules(SERLIB / "feature_cache.py")
    registry = _imported_modules(SERLIB / "models" / "registry.py")
    assert "serlib.recipes" in registry and "serlib.fusion" not in registry   # settings checked by recipes
    recipes = _imported_modules(SERLIB / "recipes" / "__init__.py")
    assert "serlib.fusion_settings" in recipes and "serlib.fusion" not in recipes
    assert not any(m.startswith("serlib") for m in _imported_modules(SERLIB / "storage.py"))   # the base layer
