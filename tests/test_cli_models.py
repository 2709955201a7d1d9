"""`serlib models`: every registered architecture, its size, and the recommended one."""
from __future__ import annotations

import json

import pytest

from serlib import cli
from serlib.models import get_model, list_models


@pytest.fixture(scope="module")
def rows():
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert cli.main(["models", "--json"]) == 0
    return json.loads(buffer.getvalue())


def test_lists_every_registered_model_with_params(rows):
    assert [r["name"] for r in rows] == list_models()
    assert len(rows) >= 10  # five reports' architectures and their variants
    for r in rows:
        assert isinstance(r["params"], int) and r["params"] > 0, r
        assert r["source"] and r["input"]
        assert isinstance(r["recommended"], bool)


def test_reference_param_counts_that_the_reports_printed(rows):
    by_name = {r["name"]: r for r in rows}
    assert by_name["das2019_model_b"]["params"] == get_model("das2019_model_b").reference_params == 4456


def test_exactly_one_recommended(rows):
    if not any(get_model(name).recommended for name in list_models()):
        pytest.skip("serlib's own recommended model is not registered yet (serlib/models/recommended.py)")
    recommended = [r["name"] for r in rows if r["recommended"]]
    assert len(recommended) == 1
    assert get_model("recommended").name == recommended[0]


def test_text_table_names_every_model(capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    for name in list_models():
        assert name in out
    if any(get_model(name).recommended for name in list_models()):
        assert out.count("recommended") == 1
