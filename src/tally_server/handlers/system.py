"""getHealth, getAuthStatus and createLoginLink."""

from __future__ import annotations

from tally_server._call import Call, Handler, Reply
from tally_server._util import now
from tally_server.auth import scopes
from tally_server.version import VERSION

__all__ = ["HANDLERS"]


def get_health(call: Call) -> Reply:
    """`ok`, or a 503 when the database cannot serve (its file deleted or replaced, for one)."""
    call.repo.check_available()
    return Reply(200, {"status": "ok", "version": VERSION, "time": now()[1]})


def get_auth_status(call: Call) -> Reply:
    principal = call.principal
    assert principal is not None
    return Reply(
        200,
        {
            "organization_id": principal.org_id,
            "organization_name": principal.org_name,
            "key_id": principal.key_id,
            "key_kind": principal.kind,
            "scopes": scopes(principal),
            "experiment_id": principal.experiment_id,
        },
    )


def create_login_link(call: Call) -> Reply:
    """A one-time link into the dashboard (tally_server.dashboard spends it). Only organisation keys get here
    (`auth.check_kind`); the answer holds a secret, so it is never cached."""
    principal = call.principal
    assert principal is not None
    token, expires_at = call.repo.sessions.create_login_link(principal)
    body = {"path": f"/login?token={token}", "expires_at": expires_at}
    return Reply(201, body, {"Cache-Control": "no-store"})


HANDLERS: dict[str, Handler] = {
    "getHealth": get_health,
    "getAuthStatus": get_auth_status,
    "createLoginLink": create_login_link,
}
