"""The lock a lab holds on its 127.x.y.0/24 block while it starts: exclusive, and its file is
gone once released (nothing piles up in the lock directory), without ever letting two holders
in at once."""

from __future__ import annotations

import fcntl

import pytest

from probes.lab import lab as lab_module
from probes.lab.lab import BlockBusy, LabStartError, _block_lock, _still_at, _sweep_lock_files
from probes.lab.spec import LabSpec


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


def test_a_fixed_block_is_checked_for_listeners_under_its_lock(tmp_path, monkeypatch):
    # Checked before taking the lock, a lab that another process finished starting in between
    # (and so released the lock) would go unseen, and two labs would share the block.
    monkeypatch.setattr(lab_module, "LOCK_DIR", tmp_path)
    held_when_checked = []

    def busy(spec):
        held_when_checked.append((tmp_path / "127-9-9.lock").exists())
        return ["127.9.9.53:53 (dns)"]

    monkeypatch.setattr(lab_module, "busy_endpoints", busy)
    lab = lab_module.Lab(LabSpec(block="127.9.9.0/24"))
    with pytest.raises(BlockBusy, match=r"already in use: 127\.9\.9\.53:53"), lab._claim_block():
        pass
    assert held_when_checked == [True]
    assert list(tmp_path.iterdir()) == []  # released


def test_a_fixed_block_another_lab_is_starting_in_is_busy(tmp_path, monkeypatch):
    monkeypatch.setattr(lab_module, "LOCK_DIR", tmp_path)
    monkeypatch.setattr(lab_module, "busy_endpoints", lambda spec: [])
    lab = lab_module.Lab(LabSpec(block="127.9.9.0/24"))
    with _block_lock("127.9.9.0/24") as held:  # another lab starting there
        assert held
        with pytest.raises(BlockBusy, match="another lab is starting there"), lab._claim_block():
            pass
    with lab._claim_block() as spec:  # free again
        assert spec.block == "127.9.9.0/24"
    assert issubclass(BlockBusy, LabStartError)  # what callers caught before stays caught
