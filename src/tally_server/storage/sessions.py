"""The dashboard's sessions and one-time login links, over the repository's connections.

A session belongs to an organisation key: it is found by the hash of its cookie's token and answers as that key
(a `Principal` of kind `org`) until it expires, is ended by a logout, or the key is revoked or expires: the key is
read at every request, so revoking it ends its sessions at once, on every server process of one database.
A login link (`createLoginLink`) is spent by one UPDATE that only an unused, unexpired row matches, so of two
openings, even on two processes, exactly one wins. Only hashes of tokens are stored.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection

from tally_server._util import format_us, hash_token, now
from tally_server.storage.repository import Principal
from tally_server.storage.schema import api_keys, dashboard_sessions, login_links, organizations

if TYPE_CHECKING:
    from tally_server.storage.store import Connections

__all__ = ["LOGIN_LINK_SECONDS", "SESSION_SECONDS", "DashboardSessions", "new_token"]

SESSION_SECONDS = 7 * 24 * 3600
"""How long a dashboard session lasts (the cookie's Max-Age), whatever happens in between."""
LOGIN_LINK_SECONDS = 60
"""How long an unused login link works."""

_s, _l, _k, _o = dashboard_sessions.c, login_links.c, api_keys.c, organizations.c
_SESSION_PRINCIPAL = (
    select(_k.id, _k.kind, _k.revoked_at, _k.expires_us, _o.pk, _o.id, _o.name, _s.expires_us)
    .select_from(dashboard_sessions.join(api_keys, _k.pk == _s.key).join(organizations, _o.pk == _k.org))
    .where(_s.token_hash == bindparam("hash"))
)
_KEY_STATE = select(_k.kind, _k.revoked_at, _k.expires_us).where(_k.pk == bindparam("key_pk"))


def new_token(prefix: str) -> str:
    """A fresh random token (256 bits, URL-safe) with a prefix that says what it is."""
    return prefix + secrets.token_urlsafe(32)


def _usable(kind: str, revoked_at: str | None, expires_us: int | None, now_us: int) -> bool:
    """Whether a key may hold a dashboard session now: an organisation key, neither revoked nor expired."""
    return kind == "org" and revoked_at is None and (expires_us is None or expires_us > now_us)


class DashboardSessions:
    """Sessions and login links. Every method is one short transaction."""

    def __init__(self, db: Connections) -> None:
        self.db = db

    def create_login_link(self, principal: Principal) -> tuple[str, str]:
        """A new link's token (shown once) and its expiry as RFC 3339. Expired links are swept first."""
        token = new_token("tl_")
        now_us, _ = now()
        expires_us = now_us + LOGIN_LINK_SECONDS * 1_000_000
        with self.db.write() as conn:
            conn.execute(delete(login_links).where(_l.expires_us < now_us))
            key_pk = conn.execute(select(_k.pk).where(_k.id == principal.key_id)).scalar_one()
            conn.execute(
                insert(login_links).values(token_hash=hash_token(token), key=key_pk, expires_us=expires_us)
            )
        return token, format_us(expires_us)

    def redeem_login_link(self, token: str) -> str | None:
        """Spend a link and start a session of its key: the session's token, or None when the link is unknown,
        expired or already used, or its key was revoked since."""
        now_us, _ = now()
        with self.db.write() as conn:
            spent = conn.execute(
                update(login_links)
                .values(used_us=now_us)
                .where(_l.token_hash == hash_token(token), _l.used_us.is_(None), _l.expires_us >= now_us)
                .returning(_l.key)
            ).first()
            if spent is None:
                return None
            return self._open(conn, int(spent[0]), now_us)

    def open_session(self, principal: Principal) -> str | None:
        """Start a session of an organisation key that just authenticated: the session's token (None when the
        key may not hold one)."""
        now_us, _ = now()
        with self.db.write() as conn:
            key_pk = conn.execute(select(_k.pk).where(_k.id == principal.key_id)).scalar_one()
            return self._open(conn, key_pk, now_us)

    @staticmethod
    def _open(conn: Connection, key_pk: int, now_us: int) -> str | None:
        kind, revoked_at, expires_us = conn.execute(_KEY_STATE, {"key_pk": key_pk}).one()
        if not _usable(kind, revoked_at, expires_us, now_us):
            return None
        token = new_token("ts_")
        conn.execute(delete(dashboard_sessions).where(_s.expires_us < now_us))
        conn.execute(
            insert(dashboard_sessions).values(
                token_hash=hash_token(token),
                key=key_pk,
                created_at=format_us(now_us),
                expires_us=now_us + SESSION_SECONDS * 1_000_000,
            )
        )
        return token

    def authenticate(self, token: str) -> Principal | None:
        """The organisation key behind a session's token; None when the session is unknown or over, or its key
        was revoked or has expired."""
        now_us, _ = now()
        with self.db.read() as conn:
            row = conn.execute(_SESSION_PRINCIPAL, {"hash": hash_token(token)}).first()
        if row is None or row[7] <= now_us or not _usable(row[1], row[2], row[3], now_us):
            return None
        return Principal(key_id=row[0], kind="org", org_pk=row[4], org_id=row[5], org_name=row[6])

    def end(self, token: str) -> None:
        """Log out: the session stops working at once."""
        with self.db.write() as conn:
            conn.execute(delete(dashboard_sessions).where(_s.token_hash == hash_token(token)))
