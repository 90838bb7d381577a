"""The lock a lab holds on its 127.x.y.0/24 block while it starts: exclusive, and its file is
gone once released (nothing piles up in the lock directory), without ever letting two holders
in at once."""

from __future__ import annotations

import fcntl

from probes.lab import lab as lab_module
from probes.lab.lab import _block_lock, _still_at, _sweep_lock_files


def test_the_lock_is_exclusive_and_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(lab_module, "LOCK_DIR", tmp_path)
    with _block_lock("127.9.9.0/24") as first:
        assert first
        assert [p.name for p in tmp_path.iterdir()] == ["127-9-9.lock"]
        with _block_lock("127.9.9.0/24") as second:
            assert not second  # held
        with _block_lock("127.9.8.0/24") as other:
            assert other  # another block
    assert list(tmp_path.iterdir()) == []
    with _block_lock("127.9.9.0/24") as again:
        assert again  # free again


def test_a_lock_taken_on_a_removed_file_is_not_the_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(lab_module, "LOCK_DIR", tmp_path)
    path = tmp_path / "127-9-9.lock"
    path.touch()
    with open(path, "a") as late:  # a racer opened the file before the holder removed it
        with _block_lock("127.9.9.0/24") as held:
            assert held
            assert _still_at(late, path)
        assert not path.exists()
        fcntl.flock(late, fcntl.LOCK_EX | fcntl.LOCK_NB)  # it gets a lock on the removed file
        assert not _still_at(late, path)  # which _block_lock does not take for the lock
        with _block_lock("127.9.9.0/24") as fresh:
            assert fresh and path.exists()  # the real one is a new file at the path
            assert not _still_at(late, path)


def test_lock_files_nobody_holds_are_swept(tmp_path, monkeypatch):
    monkeypatch.setattr(lab_module, "LOCK_DIR", tmp_path)
    for n in range(3):
        (tmp_path / f"127-9-{n}.lock").touch()  # left by older versions
    with _block_lock("127.9.1.0/24") as held:
        assert held
        _sweep_lock_files()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["127-9-1.lock"]  # held: kept
    assert list(tmp_path.iterdir()) == []
