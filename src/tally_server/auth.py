"""Who may call what: bearer tokens, key kinds and scopes.

Organisation keys reach every operation of their organisation except ingestion; ingestion keys reach only
`ingestMetrics` and `createAnnotation` of their own experiment (and `getAuthStatus`).
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import cookie_parser

from tally_server._spec import Operation
from tally_server.errors import ApiError
from tally_server.storage.repository import Principal, Repository

__all__ = [
    "INGESTION_OPERATIONS",
    "SESSION_COOKIE",
    "authenticate",
    "authenticate_request",
    "bearer_token",
    "check_experiment",
    "check_kind",
    "scopes",
    "session_token",
]

SESSION_COOKIE = "tally_session"
"""The dashboard session's cookie: the contract's `DashboardSession` security scheme."""
_SESSION_SCHEME = "DashboardSession"

INGESTION_OPERATIONS = frozenset({"ingestMetrics", "createAnnotation"})
_EITHER = frozenset({"getAuthStatus"})
_ORG_SCOPES = [
    "folders",
    "experiments",
    "metrics:read",
    "metric_catalog",
    "ingestion_keys",
    "annotations:read",
]
_INGESTION_SCOPES = ["metrics:write", "annotations:write"]


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def authenticate(repo: Repository, authorization: str | None) -> Principal:
    """The principal behind `Authorization: Bearer <token>`; 401 when missing, unknown or revoked."""
    token = bearer_token(authorization)
    principal = repo.authenticate(token) if token is not None and len(token) <= 512 else None
    if principal is None:
        raise ApiError(401, "unauthenticated", "Missing or unknown API key.")
    return principal


def session_token(cookie_header: str | None) -> str | None:
    """The dashboard session's token in a `Cookie` header, if any."""
    if not cookie_header:
        return None
    token = cookie_parser(cookie_header).get(SESSION_COOKIE)
    return token if token and len(token) <= 512 else None


def authenticate_request(repo: Repository, operation: Operation, headers: Mapping[str, str]) -> Principal:
    """The principal of a request: its bearer token or, where the contract allows `DashboardSession` (the read
    operations) and no `Authorization` was sent, the dashboard session in its cookie. 401 when neither works."""
    authorization = headers.get("authorization")
    if authorization is None and _SESSION_SCHEME in operation.security_schemes:
        token = session_token(headers.get("cookie"))
        if token is not None:
            principal = repo.sessions.authenticate(token)
            if principal is None:
                raise ApiError(
                    401,
                    "unauthenticated",
                    "The dashboard session has ended (logged out, expired, or its key was revoked): log in again.",
                )
            return principal
    return authenticate(repo, authorization)


def check_kind(principal: Principal, operation_id: str) -> None:
    """403 when the key's kind may not call this operation."""
    if operation_id in _EITHER:
        return
    if operation_id in INGESTION_OPERATIONS:
        if principal.kind != "ingestion":
            raise ApiError(
                403,
                "forbidden",
                "This operation needs an ingestion key of the experiment (see createIngestionKey).",
                {"required_key_kind": "ingestion"},
            )
    elif principal.kind != "org":
        raise ApiError(
            403,
            "forbidden",
            "Ingestion keys may only ingest metrics and create annotations; use an organisation key.",
            {"required_key_kind": "org"},
        )


def check_experiment(repo: Repository, principal: Principal, experiment_id: str) -> None:
    """An ingestion key works only on its own experiment: 403 for another one of the organisation, 404
    else."""
    if principal.experiment_id == experiment_id:
        return
    repo.experiment_ref(principal.org_pk, experiment_id)  # NotFoundError -> 404
    raise ApiError(
        403,
        "forbidden",
        "This ingestion key belongs to another experiment.",
        {"required_key_kind": "ingestion", "key_experiment_id": principal.experiment_id},
    )


def scopes(principal: Principal) -> list[str]:
    return list(_INGESTION_SCOPES if principal.kind == "ingestion" else _ORG_SCOPES)
