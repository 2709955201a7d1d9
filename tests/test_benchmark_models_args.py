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


def test_learning_rate_override_is_part_of_the_settings_only_when_given(bench):
    plain = bench.settings_of(bench.parse_args([]), "ravdess")
    assert "learning_rate" not in plain          # records at the report's rate keep their old keys
    override = bench.settings_of(bench.parse_args(["--learning-rate", "0.001"]), "ravdess")
    assert override["learning_rate"] == 0.001
    assert bench.record_key("m", "speaker", 0, plain) != bench.record_key("m", "speaker", 0, override)


@pytest.mark.parametrize("value", ["0", "-0.01"])
def test_learning_rate_must_be_positive(bench, capsys, value):
    with pytest.raises(SystemExit) as exc:
        bench.parse_args(["--learning-rate", value])
    assert exc.value.code == 2
    assert "--learning-rate must be positive" in capsys.readouterr().err


def test_song_models_get_the_song_corpus_or_a_clear_refusal(bench, tmp_path, ravdess_song_dir):
    from types import SimpleNamespace

    from serlib.errors import DataError

    corpus = bench.song_corpus_01_20(SimpleNamespace(synthetic=False, root=tmp_path), str(ravdess_song_dir))
    assert set(corpus.index["vocal_channel"]) == {"song"}
    assert corpus.index["actor"].astype(int).between(1, 20).all()
    assert bench.data_record(corpus)["path"] == str(corpus.root)
    with pytest.raises(DataError, match="no song folder found"):
        bench.song_corpus_01_20(SimpleNamespace(synthetic=False, root=tmp_path), str(tmp_path / "missing"))
