"""`tally auth login` and `tally auth status` against the live server."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from tally.cli import cli
from tally_server import RunningServer

pytestmark = pytest.mark.integration


def test_login_validates_then_writes_the_file(live_server: RunningServer, tmp_path: Path) -> None:
    runner = CliRunner()
    refused = runner.invoke(
        cli, ["auth", "login", "--api-key", "tk_org_wrong", "--base-url", live_server.url]
    )
    assert refused.exit_code != 0
    assert "not accepted" in refused.output
    path = tmp_path / "config" / "credentials.json"
    assert not path.exists()

    result = runner.invoke(
        cli, ["auth", "login", "--api-key", live_server.api_key, "--base-url", live_server.url]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(path.read_text()) == {"api_key": live_server.api_key, "base_url": live_server.url}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert live_server.api_key not in result.output

    status = runner.invoke(cli, ["auth", "status"])
    assert status.exit_code == 0, status.output
    assert f"file:{path}" in status.output
    assert live_server.url in status.output


def test_status_without_credentials_says_what_to_set() -> None:
    result = CliRunner().invoke(cli, ["auth", "status"])
    assert result.exit_code == 1
    assert "TALLY_API_KEY" in result.output


def test_serve_is_loaded_lazily() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    assert "reference server" in result.output
