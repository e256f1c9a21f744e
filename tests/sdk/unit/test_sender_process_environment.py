"""The environment a run's sender process starts with (`tally.run._sender_process.child_environment`): it imports
the Tally its parent imported, from wherever that came."""

from __future__ import annotations

import os

import pytest

from tally.run._sender_process import _package_roots, _site_dirs, child_environment


def test_a_folder_added_at_run_time_leads_the_child_s_pythonpath() -> None:
    env = child_environment(
        {"PATH": "/bin", "PYTHONPATH": "/theirs"}, ["/vendor", "/vendor", "/venv/site"], {"/venv/site"}
    )
    assert env["PYTHONPATH"] == os.pathsep.join(["/vendor", "/theirs"])
    assert env["PATH"] == "/bin"


def test_site_folders_are_left_out_so_they_never_come_before_the_standard_library() -> None:
    env = child_environment({"PATH": "/bin"}, ["/venv/site"], {"/venv/site"})
    assert "PYTHONPATH" not in env
    assert env == {"PATH": "/bin"}


def test_the_roots_are_where_this_process_imported_tally_from() -> None:
    import tally_api

    import tally

    roots = _package_roots()
    assert os.path.dirname(os.path.dirname(os.path.realpath(tally.__file__))) in roots
    assert os.path.dirname(os.path.dirname(os.path.realpath(tally_api.__file__))) in roots
    assert all(os.path.isabs(path) for path in _site_dirs())


def test_the_child_s_state_is_kept_when_the_disk_refuses_the_next(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk: the child keeps going (the parent reads the last state it published), instead of dying."""
    import errno
    from pathlib import Path

    from tally.run import _sender_child

    directory = Path(str(tmp_path))
    assert _sender_child._publish(directory, b'{"stored": 1}')

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_sender_child.os, "write", full)
    assert not _sender_child._publish(directory, b'{"stored": 2}')
    assert (directory / "sender.state").read_bytes() == b'{"stored": 1}'
