"""The credentials file has one writer, `tally_credentials.write_credentials`, for `tally auth login` and for
`tally serve` / `python -m tally_server` alike (issue 22: there were two, and only one fsynced).

Behaviour (against the real file system): private from the first byte, atomic, durable (the file and its
directory are fsynced), other keys kept; and the source holds no second writer. The processes that write it are
tested end to end in tests/sdk/integration/test_cli.py (`tally auth login`) and tests/server/test_cli.py
(`tally serve` started as a real process).
"""

from __future__ import annotations

import ast
import json
import os
import stat
from pathlib import Path

import platformdirs
import pytest

import tally_credentials
from tally import Tally
from tally._credentials import read_credentials_file
from tally_credentials import credentials_path, read_credentials, write_credentials

SRC = Path(__file__).resolve().parents[3] / "src"
KEY = "tk_org_onewriteronewriteronewriter12"


def test_where_the_file_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLY_CONFIG_DIR", str(tmp_path))
    assert credentials_path() == tmp_path / "credentials.json"
    monkeypatch.delenv("TALLY_CONFIG_DIR")
    assert credentials_path() == platformdirs.user_config_path("tally") / "credentials.json"


def test_written_private_and_read_by_the_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLY_CONFIG_DIR", str(tmp_path / "new" / "cfg"))
    monkeypatch.setenv("TALLY_BASE_URL", "http://ignored-by-local.test")
    path = write_credentials(KEY, "http://127.0.0.1:9999")
    assert path == tmp_path / "new" / "cfg" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert read_credentials(path) == {"api_key": KEY, "base_url": "http://127.0.0.1:9999"}
    assert read_credentials_file(path).state == "ok"
    with Tally("local") as client:
        assert (client.base_url, client.credential_source) == ("http://127.0.0.1:9999", f"file:{path}")


def test_an_update_keeps_other_keys_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = write_credentials(KEY, "http://127.0.0.1:1", tmp_path / "credentials.json")
    path.write_text(json.dumps({**json.loads(path.read_text()), "extra": 1}))
    write_credentials("tk_org_" + "b" * 32, "http://127.0.0.1:2", path)
    assert read_credentials(path) == {
        "api_key": "tk_org_" + "b" * 32,
        "base_url": "http://127.0.0.1:2",
        "extra": 1,
    }
    assert [p.name for p in tmp_path.iterdir()] == ["credentials.json"]


def test_the_file_and_its_directory_are_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What was fsynced, by inode: the new file's, then the directory's (after the rename)."""
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    path = write_credentials(KEY, "http://127.0.0.1:1", tmp_path / "credentials.json")
    assert synced == [path.stat().st_ino, tmp_path.stat().st_ino]


def test_a_failed_write_leaves_the_old_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_credentials(KEY, "http://127.0.0.1:1", tmp_path / "credentials.json")
    before = path.read_bytes()

    def no_room(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_room)
    with pytest.raises(OSError, match="No space left"):
        write_credentials("tk_org_" + "c" * 32, "http://127.0.0.1:3", path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["credentials.json"]


def test_one_writer_in_the_source() -> None:
    """No module but tally_credentials names the file or defines a writer for it, and both commands that write
    it (`tally auth login`, `tally serve`) import the one writer."""
    home = Path(tally_credentials.__file__)
    writers_imported: dict[str, str] = {}
    for path in sorted(SRC.rglob("*.py")):
        if path == home:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = str(path.relative_to(SRC))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value == tally_credentials.FILE_NAME:
                pytest.fail(f"{where} names {tally_credentials.FILE_NAME!r}: only tally_credentials may")
            if isinstance(node, ast.FunctionDef) and "credentials" in node.name and "write" in node.name:
                pytest.fail(f"{where} defines {node.name}: the credentials file has one writer")
            if isinstance(node, ast.ImportFrom) and any(a.name == "write_credentials" for a in node.names):
                writers_imported[where] = node.module or ""
    assert writers_imported == {
        "tally/cli/auth.py": "tally_credentials",
        "tally_server/cli.py": "tally_credentials",
    }
