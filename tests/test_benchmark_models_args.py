"""benchmarks/models.py command line: which protocols and folds a run covers."""
import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "models.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_models", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("text, expected", [
    (None, ["speaker", "random"]),
    ("both", ["speaker", "random"]),
    ("random", ["random"]),
    ("speaker, random", ["speaker", "random"]),
])
def test_protocols_parse(bench, text, expected):
    argv = [] if text is None else ["--protocols", text]
    assert bench.parse_args(argv).protocols == expected


def test_unknown_protocol_is_a_usage_error(bench, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.parse_args(["--protocols", "leave-one-out"])
    assert exc.value.code == 2
    assert "leave-one-out" in capsys.readouterr().err
