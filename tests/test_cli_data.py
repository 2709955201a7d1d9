"""`serlib index` and `serlib download`, run as a user runs them (a subprocess)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
CSV_COLUMNS = ["path", "actor", "gender", "emotion", "intensity", "statement", "repetition",
               "sample_rate", "channels", "duration"]


def serlib(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "serlib.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd or REPO, env=os.environ.copy(), timeout=120)


def _assert_clean_failure(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_index_real(ravdess_dir, tmp_path):
    out = tmp_path / "index.csv"
    result = serlib("index", ravdess_dir, "--csv", out)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert f"1200 clips in {ravdess_dir}" in text and "5 stereo" in text and "22050 Hz" in text
    assert "  neutral         80" in text and "  angry          160" in text
    assert "  female         600" in text and "  male           600" in text
    assert "  Actor_20        60" in text
    df = pd.read_csv(out)
    assert set(CSV_COLUMNS) <= set(df.columns) and list(df.columns[:7]) == CSV_COLUMNS[:7]
    assert len(df) == 1200 and df["actor"].nunique() == 20
    assert (df["sample_rate"] == 22050).all() and set(df["channels"]) == {1, 2}
    assert df["emotion"].value_counts()["neutral"] == 80
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.csv"]       # no temporary file left


def test_index_standin(standin_dir, tmp_path):
    out = tmp_path / "standin.csv"
    result = serlib("index", standin_dir, "--csv", out)
    assert result.returncode == 0, result.stderr
    assert "240 clips" in result.stdout and "16000 Hz" in result.stdout
    df = pd.read_csv(out)
    assert len(df) == 240 and set(CSV_COLUMNS) <= set(df.columns)


def test_index_missing_folder(tmp_path):
    missing = tmp_path / "no-such-folder"
    line = _assert_clean_failure(serlib("index", missing))
    assert str(missing) in line and line.startswith("serlib index:")


def test_index_csv_into_missing_folder(standin_dir, tmp_path):
    line = _assert_clean_failure(serlib("index", standin_dir, "--csv", tmp_path / "nope" / "x.csv"))
    assert str(tmp_path / "nope") in line


def test_index_folder_without_clips(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing here")
    line = _assert_clean_failure(serlib("index", tmp_path))
    assert "no readable RAVDESS clips" in line


def test_index_into_closed_pipe_is_quiet(standin_dir):
    """`serlib index X | head -1`: the reader leaves early; no traceback, no noise."""
    proc = subprocess.Popen([sys.executable, "-m", "serlib.cli", "index", str(standin_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=os.environ.copy())
    proc.stdout.close()                      # like `head` exiting before serlib writes
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 1)
    assert b"Traceback" not in err and b"BrokenPipe" not in err and err.strip() == b""


def test_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "serlib", "index", "--help"], capture_output=True, text=True,
                            cwd=REPO, timeout=60)
    assert result.returncode == 0 and "--csv" in result.stdout


def test_download_cli(tmp_path, zip_server, make_zip, tiny_wav, md5_of):
    data = make_zip({"Actor_03/03-01-02-01-01-01-03.wav": tiny_wav(1)})
    zip_server.routes["/cli.zip"] = data
    zip_server.routes["/fail.zip"] = 500
    dest = tmp_path / "ravdess"
    result = serlib("download", "--dest", dest, "--url", zip_server.url("/cli.zip"), "--md5", md5_of(data), "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(dest) and (dest / "Actor_03").is_dir()
    failed = tmp_path / "other"
    url = zip_server.url("/fail.zip")
    line = _assert_clean_failure(serlib("download", "--dest", failed, "--url", url, "--md5", "0" * 32, "--quiet"))
    assert url in line and "HTTP 500" in line and not failed.exists()
