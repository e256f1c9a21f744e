"""`tally auth login` and `tally auth status`."""

from __future__ import annotations

import click

from tally._credentials import DEFAULT_BASE_URL
from tally._errors import TallyError
from tally._redact import redact
from tally.cli import _exit
from tally.cli._app import settings
from tally.cli._failures import CliFailure
from tally.cli._output import Output, json_option
from tally_credentials import write_credentials

__all__ = ["auth"]


@click.group()
def auth() -> None:
    """Log in and check credentials."""


@auth.command("login")
@click.option("--api-key", prompt=True, hide_input=True, help="An organisation API key (tk_org_...).")
@click.option("--base-url", default=DEFAULT_BASE_URL, show_default=True, help="The server's URL.")
def login(api_key: str, base_url: str) -> None:
    """Check an API key against the server, then save it to the credentials file (mode 0600).

    \b
    Examples:
      tally auth login --api-key tk_org_... --base-url https://tally.example.com
      tally auth login                     # prompts for the key, without echo
    """
    from tally import Tally

    try:
        with Tally(api_key=api_key, base_url=base_url, max_retries=1) as client:
            status = client.auth.status()
    except TallyError as error:
        raise CliFailure(f"the key was not accepted, nothing saved: {error}", _exit.CONFIG) from None
    path = write_credentials(api_key, base_url.rstrip("/"))
    click.echo(
        f"Logged in to {base_url} as organisation {status.organization_name} ({status.key_kind} key "
        f"{redact(api_key)}); saved to {path}"
    )


@auth.command("status")
@json_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show which credentials the SDK resolves and what the server says about them.

    \b
    Examples:
      tally auth status
      tally auth status --json | jq -r .credential_source
    """
    out = Output(as_json)
    with settings(ctx).client() as client:
        result = client.auth.status()
        base_url = client.base_url
    if as_json:
        out.document({**result.to_dict(), "base_url": base_url})
        return
    out.fields(
        [
            ("server", base_url),
            ("source", result.credential_source),
            ("organisation", f"{result.organization_name} ({result.organization_id})"),
            ("key", f"{result.key_id} ({result.key_kind})"),
            ("scopes", result.scopes),
        ]
    )
