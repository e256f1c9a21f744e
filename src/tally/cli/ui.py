"""`tally ui`: open the dashboard in a browser, logged in, starting the local server first when it is not running.

The browser gets a one-time login link (`client.auth.login_link()`, as Jupyter's token links): it works once,
within a minute, and holds a random token, never the API key. When the server to open is a local one
(a loopback URL, `http://127.0.0.1:8787` by default) and nothing answers there,
`tally ui` starts it as `tally serve` would (same data directory, same credentials file) and keeps it running
in the foreground until Ctrl-C, which stops it.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import time
import webbrowser
from urllib.parse import urlsplit

import click
import httpx

from tally._credentials import BASE_URL_ENV, DEFAULT_BASE_URL, read_credentials_file
from tally.cli import _exit
from tally.cli._app import Settings, settings
from tally.cli._failures import CliFailure
from tally_credentials import credentials_path

__all__ = ["ui"]

_START_SECONDS = 30.0


@click.command("ui")
@click.option("--no-browser", is_flag=True, help="Print the login link instead of opening a browser.")
@click.pass_context
def ui(ctx: click.Context, no_browser: bool) -> None:
    """Open the dashboard in the browser, logged in.

    The browser gets a one-time link (it works once, within a minute, and is never the API key). A local
    server that is not running is started first, and runs until Ctrl-C.

    \b
    Examples:
      tally ui                                  # the local server, started if need be
      tally ui --no-browser                     # print the link (over SSH, say)
      tally --base-url https://tally.example.com ui
    """
    options = settings(ctx)
    base_url = _base_url(options)
    if not _is_local(base_url) or _answers(base_url):
        _open(options, no_browser)
        return
    server = _start_local(base_url)
    try:
        _open(options, no_browser)
        click.echo("The server runs until Ctrl-C.")
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(15)


def _open(options: Settings, no_browser: bool) -> None:
    with options.client() as client:
        link = client.auth.login_link()
        url = link.url(client.base_url)
    if no_browser:
        click.echo(f"Open this link (it works once, within a minute): {url}")
        return
    click.echo(f"Opening the dashboard of {url.split('/login', 1)[0]} in your browser.")
    if not webbrowser.open(url):
        click.echo(f"No browser found; open this link (it works once, within a minute): {url}")


def _base_url(options: Settings) -> str:
    """The server `tally ui` would open, resolved as the SDK resolves it (a key is not needed for this)."""
    if options.base_url:
        return options.base_url
    from_env = os.environ.get(BASE_URL_ENV)
    if from_env:
        return from_env
    return read_credentials_file(credentials_path()).base_url or DEFAULT_BASE_URL


def _answers(base_url: str) -> bool:
    """Whether a server answers at `base_url` now (one quick health check, no retries)."""
    try:
        return httpx.get(base_url.rstrip("/") + "/v1/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _is_local(base_url: str) -> bool:
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if parts.scheme != "http" or parts.path not in ("", "/"):
        return False
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _start_local(base_url: str) -> subprocess.Popen[bytes]:
    """`tally serve` on the base URL's host and port, in a child process whose output is this terminal's."""
    import importlib.util

    if importlib.util.find_spec("tally_server") is None:
        raise CliFailure(
            f"nothing answers at {base_url}, and the local server is not installed: "
            "pip install 'tally-metrics[server]', or run `tally --base-url URL ui` for a running server",
            _exit.CONFIG,
        )
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    click.echo(f"Nothing answers at {base_url}: starting the local server (tally serve).")
    command = [sys.executable, "-m", "tally_server", "--host", host, "--port", str(port)]
    process = subprocess.Popen(command)
    deadline = time.monotonic() + _START_SECONDS
    while not _answers(base_url):
        if process.poll() is not None:
            raise CliFailure(f"the local server stopped (exit code {process.returncode})", _exit.UNREACHABLE)
        if time.monotonic() > deadline:
            process.terminate()
            raise CliFailure(
                f"the local server did not answer within {_START_SECONDS:.0f} s", _exit.UNREACHABLE
            )
        time.sleep(0.1)
    return process
