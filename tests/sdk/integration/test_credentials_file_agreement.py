"""The local credentials file has two writers and one reader that must agree on where it is and what it holds.

`tally serve` writes it (`tally_server._credentials_file`), `tally auth login` writes it and `Tally("local")` reads
it (`tally._credentials`). The layering rules keep the two packages from importing each other, so each has its
own small module; this test is what keeps them from drifting apart.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs
import pytest

from tally import Tally
from tally._credentials import credentials_path as sdk_path
from tally._credentials import read_credentials_file, write_credentials_file
from tally_server._credentials_file import credentials_path as server_path
from tally_server._credentials_file import read_credentials, write_credentials

KEY = "tk_org_agreementagreementagreement12"


def test_both_sides_use_the_same_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLY_CONFIG_DIR", str(tmp_path))
    assert sdk_path() == server_path() == tmp_path / "credentials.json"
    monkeypatch.delenv("TALLY_CONFIG_DIR")
    expected = platformdirs.user_config_path("tally") / "credentials.json"
    assert sdk_path() == server_path() == expected


def test_what_the_server_writes_the_sdk_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLY_CONFIG_DIR", str(tmp_path))
    monkeypatch.delenv("TALLY_API_KEY", raising=False)
    monkeypatch.setenv("TALLY_BASE_URL", "http://ignored-by-local.test")
    path = write_credentials(KEY, "http://127.0.0.1:9999")
    assert read_credentials_file(path).state == "ok"
    with Tally("local") as client:
        assert (client.base_url, client.credential_source) == ("http://127.0.0.1:9999", f"file:{path}")


def test_what_the_sdk_writes_the_server_reads(tmp_path: Path) -> None:
    path = write_credentials_file(KEY, "http://127.0.0.1:9999", tmp_path / "credentials.json")
    assert read_credentials(path) == {"api_key": KEY, "base_url": "http://127.0.0.1:9999"}
