"""download_ravdess against a local HTTP server: success, reuse, and every way to fail cleanly."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import serlib.datasets.corpus as corpus_mod
import serlib.datasets.download as download_mod
from serlib.datasets import completed_download, download_ravdess, index_ravdess, load_corpus
from serlib.datasets.download import DOWNLOAD_MARKER, RAVDESS_MD5, RAVDESS_URL
from serlib.errors import DataError

NAMES = ["Actor_01/03-01-01-01-01-01-01.wav", "Actor_01/03-01-05-02-01-01-01.wav",
         "Actor_02/03-01-04-01-02-02-02.wav", "Actor_02/03-01-08-02-01-02-02.wav"]


@pytest.fixture(scope="module")
def archive(make_zip, tiny_wav):
    """A small RAVDESS-shaped zip: two actors, four clips, plus a README at the top."""
    files = {name: tiny_wav(i) for i, name in enumerate(NAMES)}
    files["README.txt"] = b"not audio; ignored"
    return make_zip(files)


def _leftovers(parent: Path, keep: str | None = None) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name != keep)


def _assert_nothing_complete(parent: Path, dest: Path):
    assert not dest.exists()
    assert completed_download(dest) is None
    assert _leftovers(parent) == [], "temporary files or folders were left behind"


def test_constants():
    assert RAVDESS_URL.startswith("https://zenodo.org/records/1188976/files/Audio_Speech_Actors_01-24.zip")
    assert len(RAVDESS_MD5) == 32 and int(RAVDESS_MD5, 16)


def test_good_download_then_reuse_without_network(tmp_path, zip_server, archive, md5_of):
    zip_server.routes["/good.zip"] = archive
    dest = tmp_path / "ravdess"
    before = len(zip_server.requests)
    got = download_ravdess(dest, url=zip_server.url("/good.zip?download=1"), md5=md5_of(archive), progress=False)
    assert got == dest and completed_download(dest) == dest
    assert len(zip_server.requests) == before + 1
    assert sorted(p.name for p in dest.iterdir()) == [DOWNLOAD_MARKER, "Actor_01", "Actor_02"]
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*.wav")) == sorted(NAMES)
    marker = json.loads((dest / DOWNLOAD_MARKER).read_text())
    assert marker["complete"] is True and marker["files"] == 4 and marker["md5"] == md5_of(archive)
    assert len(index_ravdess(dest)) == 4
    assert _leftovers(tmp_path, keep="ravdess") == []          # archive and .part removed
    # Second call: nothing fetched (the URL is even unreachable now).
    again = download_ravdess(dest, url="http://127.0.0.1:9/nothing-here.zip", progress=False)
    assert again == dest and len(zip_server.requests) == before + 1


def test_keep_archive_is_reused(tmp_path, zip_server, archive, md5_of):
    zip_server.routes["/keep.zip"] = archive
    dest = tmp_path / "ravdess"
    download_ravdess(dest, url=zip_server.url("/keep.zip"), md5=md5_of(archive), progress=False, keep_archive=True)
    assert _leftovers(tmp_path, keep="ravdess") == [".ravdess.zip"]
    import shutil

    shutil.rmtree(dest)
    before = len(zip_server.requests)
    download_ravdess(dest, url=zip_server.url("/keep.zip"), md5=md5_of(archive), progress=False)
    assert len(zip_server.requests) == before and completed_download(dest)   # unpacked from the verified archive


def test_nested_layout(tmp_path, zip_server, make_zip, tiny_wav, md5_of):
    data = make_zip({f"Audio_Speech_Actors_01-24/{name}": tiny_wav(i) for i, name in enumerate(NAMES)}
                    | {"__MACOSX/Audio_Speech_Actors_01-24/Actor_01/._03-01-01-01-01-01-01.wav": b"\x00"})
    zip_server.routes["/nested.zip"] = data
    dest = tmp_path / "ravdess"
    download_ravdess(dest, url=zip_server.url("/nested.zip"), md5=md5_of(data), progress=False)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*.wav")) == sorted(NAMES)
    assert not (dest / "__MACOSX").exists()


def test_truncated_response(tmp_path, zip_server, archive, md5_of):
    zip_server.routes["/short.zip"] = (archive, "truncate")
    dest = tmp_path / "ravdess"
    url = zip_server.url("/short.zip")
    for md5 in (md5_of(archive), None):            # caught by the length check even without a checksum
        with pytest.raises(DataError, match="broke off") as info:
            download_ravdess(dest, url=url, md5=md5, progress=False)
        assert url in str(info.value) and "SERLIB_DATA_DIR" in str(info.value) and "\n" not in str(info.value)
        _assert_nothing_complete(tmp_path, dest)


def test_wrong_checksum(tmp_path, zip_server, archive):
    zip_server.routes["/good.zip"] = archive
    dest = tmp_path / "ravdess"
    url = zip_server.url("/good.zip")
    with pytest.raises(DataError, match="checksum mismatch") as info:
        download_ravdess(dest, url=url, md5="0" * 32, progress=False)
    assert url in str(info.value) and "\n" not in str(info.value)
    _assert_nothing_complete(tmp_path, dest)


def test_http_500(tmp_path, zip_server):
    zip_server.routes["/broken.zip"] = 500
    dest = tmp_path / "ravdess"
    url = zip_server.url("/broken.zip")
    with pytest.raises(DataError, match="HTTP 500") as info:
        download_ravdess(dest, url=url, progress=False)
    assert url in str(info.value) and "download" in str(info.value) and "\n" not in str(info.value)
    _assert_nothing_complete(tmp_path, dest)


def test_no_server(tmp_path):
    dest = tmp_path / "ravdess"
    with pytest.raises(DataError, match="download failed"):
        download_ravdess(dest, url="http://127.0.0.1:9/none.zip", progress=False, timeout=5)
    _assert_nothing_complete(tmp_path, dest)


def _names_the_url_not_a_deleted_file(message: str, url: str, parent: Path):
    """A fresh download is deleted after a failure: the message names the URL and never asks
    to delete a file (nor names a .part file) that is no longer there."""
    assert message.startswith(url) and "delete it" not in message and ".part" not in message
    assert str(parent) not in message and "\n" not in message and "SERLIB_DATA_DIR" in message


def test_not_a_zip(tmp_path, zip_server):
    zip_server.routes["/page.zip"] = b"<html>Please log in</html>" * 50
    dest = tmp_path / "ravdess"
    url = zip_server.url("/page.zip")
    with pytest.raises(DataError, match="not a valid zip") as info:
        download_ravdess(dest, url=url, md5=None, progress=False)
    _assert_nothing_complete(tmp_path, dest)
    _names_the_url_not_a_deleted_file(str(info.value), url, tmp_path)


def test_a_kept_archive_that_is_not_a_zip_is_named_by_its_path_and_stays(tmp_path, zip_server):
    zip_server.routes["/page.zip"] = b"<html>Please log in</html>" * 50
    dest = tmp_path / "ravdess"
    with pytest.raises(DataError, match="not a valid zip") as info:
        download_ravdess(dest, url=zip_server.url("/page.zip"), md5=None, progress=False, keep_archive=True)
    kept = tmp_path / ".ravdess.zip"
    assert kept.is_file() and str(info.value).startswith(f"{kept}: ")      # the file it asks to delete exists
    assert "delete it and try again" in str(info.value) and "\n" not in str(info.value)
    assert not dest.exists() and completed_download(dest) is None


def test_zip_without_actor_folders(tmp_path, zip_server, make_zip, tiny_wav):
    zip_server.routes["/flat.zip"] = make_zip({"03-01-01-01-01-01-01.wav": tiny_wav(0)})
    dest = tmp_path / "ravdess"
    url = zip_server.url("/flat.zip")
    with pytest.raises(DataError, match="no Actor_XX") as info:
        download_ravdess(dest, url=url, md5=None, progress=False)
    _assert_nothing_complete(tmp_path, dest)
    _names_the_url_not_a_deleted_file(str(info.value), url, tmp_path)


@pytest.mark.parametrize("evil", ["../escaped.wav", "Actor_01/../../escaped.wav", "/tmp/escaped-serlib.wav"])
def test_path_traversal_refused(tmp_path, zip_server, make_zip, tiny_wav, evil):
    zip_server.routes["/evil.zip"] = make_zip({NAMES[0]: tiny_wav(0), evil: b"gotcha"})
    parent = tmp_path / "inner"
    parent.mkdir()
    dest = parent / "ravdess"
    url = zip_server.url("/evil.zip")
    with pytest.raises(DataError, match="outside") as info:
        download_ravdess(dest, url=url, md5=None, progress=False)
    _assert_nothing_complete(parent, dest)
    _names_the_url_not_a_deleted_file(str(info.value), url, parent)
    assert not (tmp_path / "escaped.wav").exists() and not Path("/tmp/escaped-serlib.wav").exists()


def test_interrupted_unpack_leaves_nothing(tmp_path, zip_server, archive, md5_of, monkeypatch):
    zip_server.routes["/good.zip"] = archive
    real_unpack = download_mod._unpack

    def unpack_then_die(zip_path, tmp, url):
        real_unpack(zip_path, tmp, url)
        raise KeyboardInterrupt

    monkeypatch.setattr(download_mod, "_unpack", unpack_then_die)
    dest = tmp_path / "ravdess"
    with pytest.raises(KeyboardInterrupt):
        download_ravdess(dest, url=zip_server.url("/good.zip"), md5=md5_of(archive), progress=False)
    _assert_nothing_complete(tmp_path, dest)


def test_refuses_foreign_destination(tmp_path):
    dest = tmp_path / "ravdess"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not a finished serlib download"):
        download_ravdess(dest, url="http://127.0.0.1:9/x.zip", progress=False)
    assert (dest / "notes.txt").read_text() == "mine"


def test_empty_destination_is_filled(tmp_path, zip_server, archive, md5_of):
    zip_server.routes["/good.zip"] = archive
    dest = tmp_path / "ravdess"
    dest.mkdir()
    download_ravdess(dest, url=zip_server.url("/good.zip"), md5=md5_of(archive), progress=False)
    assert completed_download(dest) == dest


def test_default_destination_and_load_corpus(tmp_path, zip_server, archive, md5_of, monkeypatch, capsys):
    """SERLIB_CACHE_DIR moves the download; load_corpus then finds it before the stand-in."""
    zip_server.routes["/good.zip"] = archive
    monkeypatch.setenv("SERLIB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SERLIB_DATA_DIR", raising=False)
    monkeypatch.setattr(corpus_mod, "shared_data_root", lambda: None)
    got = download_ravdess(url=zip_server.url("/good.zip"), md5=md5_of(archive), progress=True)
    assert got == tmp_path / "cache" / "ravdess"
    assert "good.zip" in capsys.readouterr().err                    # the progress bar
    c = load_corpus(verbose=False)
    assert c.source == "download" and c.root == got and len(c) == 4 and not c.synthetic
    assert c.banner().startswith("RAVDESS (downloaded)")
    assert load_corpus(got, verbose=False).source == "download"


def test_allow_download_uses_network_when_it_works(tmp_path, zip_server, archive, md5_of, monkeypatch):
    zip_server.routes["/good.zip"] = archive
    monkeypatch.setenv("SERLIB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SERLIB_DATA_DIR", raising=False)
    monkeypatch.setattr(corpus_mod, "shared_data_root", lambda: None)
    url, md5 = zip_server.url("/good.zip"), md5_of(archive)
    monkeypatch.setattr(corpus_mod, "download_ravdess",
                        lambda: download_ravdess(url=url, md5=md5, progress=False))
    c = load_corpus(allow_download=True, verbose=False)
    assert c.source == "download" and len(c) == 4
