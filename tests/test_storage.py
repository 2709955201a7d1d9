"""serlib.storage: atomic files and folders, leftovers of killed writers, checksums."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from serlib import storage


def test_atomic_write_replaces_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    assert storage.atomic_write(target, lambda fh: fh.write(b"new contents"), fsync=True) == target
    assert target.read_bytes() == b"new contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_a_failing_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def half_then_fail(fh):
        fh.write(b"half of the n")
        raise KeyboardInterrupt          # a user pressing Ctrl-C mid-write

    with pytest.raises(KeyboardInterrupt):
        storage.atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
    with pytest.raises(FileNotFoundError):                      # the folder is missing: nothing written
        storage.write_bytes(tmp_path / "missing" / "x.bin", b"x")


def test_temporary_names_are_hidden_unique_and_carry_the_process(tmp_path):
    names = {storage.temp_name(tmp_path / "a.json").name for _ in range(50)}
    assert len(names) == 50
    assert all(n.startswith(".a.json.") and n.endswith(".tmp") and f".{os.getpid()}." in n for n in names)


def test_write_json_takes_numpy_values_tuples_and_paths(tmp_path):
    target = tmp_path / "info.json"
    storage.write_json(target, {"n": np.int64(3), "x": np.float32(0.5), "ok": np.bool_(True),
                                "arr": np.arange(3), "speeds": (0.9, 1.1), "where": tmp_path, 7: None})
    assert json.loads(target.read_text()) == {"n": 3, "x": 0.5, "ok": True, "arr": [0, 1, 2],
                                              "speeds": [0.9, 1.1], "where": str(tmp_path), "7": None}
    storage.write_json(target, {"a": [1, 2]}, indent=None)
    assert target.read_text() == '{"a":[1,2]}\n'


def test_atomic_folder_appears_whole_or_not_at_all(tmp_path):
    dest = tmp_path / "run"
    with storage.atomic_folder(dest) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".run.") and tmp.name.endswith(".partial")
        (tmp / "a.txt").write_text("a")
        assert not dest.exists()                                # nothing under the real name yet
    assert (dest / "a.txt").read_text() == "a" and sorted(p.name for p in tmp_path.iterdir()) == ["run"]

    failed = tmp_path / "failed"
    with pytest.raises(RuntimeError, match="boom"):
        with storage.atomic_folder(failed) as tmp:
            (tmp / "a.txt").write_text("a")
            raise RuntimeError("boom")
    assert not failed.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_atomic_folder_fills_an_empty_folder_and_refuses_a_full_one_unless_told(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with storage.atomic_folder(empty, fsync=True) as tmp:
        (tmp / "x").write_text("1")
    assert (empty / "x").read_text() == "1"
    with pytest.raises(OSError):                                # someone else's folder is never overwritten
        with storage.atomic_folder(empty) as tmp:
            (tmp / "x").write_text("2")
    assert (empty / "x").read_text() == "1"
    with storage.atomic_folder(empty, replace=True) as tmp:      # ... unless the caller asks
        (tmp / "y").write_text("3")
    assert sorted(p.name for p in empty.iterdir()) == ["y"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # the old copy and the temporary are gone


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_remove_stale_takes_killed_writers_leftovers_and_nothing_else(tmp_path):
    host = storage.host_tag()
    killed = tmp_path / f".run.{host}-{_dead_pid()}-abc.partial"
    live = tmp_path / f".run.{host}-{os.getpid()}-def.partial"
    foreign = tmp_path / f".run.otherhost-{_dead_pid()}-ghi.partial"     # another machine: only age counts
    old_tmp = tmp_path / ".index.json.4242.deadbeef.tmp"
    new_tmp = tmp_path / ".index.json.4243.cafecafe.tmp"
    kept = tmp_path / f".keep.{host}-{_dead_pid()}-jkl.partial"
    for folder in (killed, live, foreign, kept):
        folder.mkdir()
        (folder / "model.keras").write_text("x")
    (kept / "my-notes.txt").write_text("not something serlib writes")
    old_tmp.write_text("x")
    new_tmp.write_text("x")
    long_ago = time.time() - 3600
    os.utime(old_tmp, (long_ago, long_ago))
    regular = tmp_path / "results.json"
    regular.write_text("{}")
    os.utime(regular, (long_ago, long_ago))

    removed = storage.remove_stale(tmp_path, max_age=600, keep=lambda p: (p / "my-notes.txt").exists())
    assert sorted(p.name for p in removed) == sorted([killed.name, old_tmp.name])
    assert live.exists() and foreign.exists() and kept.exists() and new_tmp.exists() and regular.exists()
    assert storage.remove_stale(tmp_path / "no-such-folder", max_age=0) == []     # never raises


def test_checksums(tmp_path):
    path = tmp_path / "f.bin"
    data = os.urandom(3 << 20)
    path.write_bytes(data)
    assert storage.file_sha256(path) == hashlib.sha256(data).hexdigest()
    assert storage.file_blake2b(path) == hashlib.blake2b(data, digest_size=16).hexdigest()
    assert storage.file_blake2b(path, 10) == hashlib.blake2b(data, digest_size=10).hexdigest()


def test_seal_and_unseal_refuse_any_change():
    blob = storage.seal(b"payload bytes")
    assert storage.unseal(blob) == b"payload bytes"
    assert storage.unseal(b"payload bytes") is None                      # no trailer
    assert storage.unseal(blob[:-1]) is None                             # truncated
    changed = bytearray(blob)
    changed[3] ^= 1
    assert storage.unseal(bytes(changed)) is None                        # one bit flipped
    assert storage.unseal(b"") is None
    assert storage.same_digest("ab", "ab") and not storage.same_digest(b"a", b"b")
