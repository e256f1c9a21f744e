"""`tally auth logout` (issue 19, Tilde): removes the credentials file `tally auth login` wrote, through the one
credentials writer (`tally_credentials`), says what it removed, and exits 0 with a message when nothing was there.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tally.cli import cli
from tally_credentials import remove_credentials, write_credentials
from tally_server import RunningServer

pytestmark = pytest.mark.integration


def test_logout_removes_what_login_wrote(live_server: RunningServer, tmp_path: Path) -> None:
    runner = CliRunner()
    path = tmp_path / "config" / "credentials.json"
    login = runner.invoke(
        cli, ["auth", "login", "--api-key", live_server.api_key, "--base-url", live_server.url]
    )
    assert login.exit_code == 0, login.output
    assert runner.invoke(cli, ["auth", "status"]).exit_code == 0

    result = runner.invoke(cli, ["auth", "logout"])
    assert result.exit_code == 0, result.output
    assert not path.exists()
    assert str(path) in result.output
    assert live_server.url in result.output
    assert "…" + live_server.api_key[-4:] in result.output  # which key, masked
    assert live_server.api_key not in result.output

    after = runner.invoke(cli, ["auth", "status"])
    assert after.exit_code == 3  # no credentials any more
    assert "does not exist" in after.output


def test_logout_with_nothing_there_says_so() -> None:
    result = CliRunner().invoke(cli, ["auth", "logout"])
    assert result.exit_code == 0, result.output
    assert "nothing to remove" in result.output
    assert "credentials.json" in result.output


def test_logout_says_when_the_environment_still_has_a_key(
    live_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_credentials(live_server.api_key, live_server.url)
    monkeypatch.setenv("TALLY_API_KEY", live_server.api_key)
    result = CliRunner().invoke(cli, ["auth", "logout"])
    assert result.exit_code == 0, result.output
    assert "TALLY_API_KEY" in result.output
    assert live_server.api_key not in result.output


def test_remove_credentials_is_the_writers_twin(tmp_path: Path) -> None:
    path = tmp_path / "somewhere" / "credentials.json"
    assert remove_credentials(path) is None
    write_credentials("tk_org_" + "x" * 32, "http://x.test", path)
    removed = remove_credentials(path)
    assert removed == {"api_key": "tk_org_" + "x" * 32, "base_url": "http://x.test"}
    assert not path.exists()
    assert path.parent.exists()  # the directory stays: other files of the user's may live there
