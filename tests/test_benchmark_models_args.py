"""benchmarks/models.py command line: which protocols a run covers."""
import pytest


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("models")


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
