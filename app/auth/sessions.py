"""Server-side, revocable sessions.

Flask's default session is a signed cookie: it cannot be revoked, and a copied cookie works until
it expires. Here the cookie carries only a random 256-bit token; the session data lives in the
``web_session`` table under the token's SHA-256. Logging out, changing a password or role, or
deactivating an account deletes the rows, so a replayed cookie finds nothing and is anonymous.

Written by hand because Flask-Session keys its rows by session id only: it cannot end "every
session of user 42", which SECURITY.md requires.

Timeouts: idle (``SESSION_IDLE_TIMEOUT``, 15 minutes) measured from ``last_seen_at``, absolute
(``SESSION_ABSOLUTE_TIMEOUT``, 10 hours) from ``created_at``. ``last_seen_at`` is written at most
every ``SESSION_TOUCH_INTERVAL`` so a page view does not always cost a write.

Reading the row at the start of a request uses a read-only connection of its own. Saving at
the end goes through ``db.session``: by then the view has finished and every service has
committed what it meant to, so the request's leftover transaction is rolled back first and the
session row written in a short transaction of its own. (A second connection would deadlock on
SQLite, where the request's transaction may still hold the write lock.)
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
import secrets
from datetime import datetime

from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SessionInterface, SessionMixin
from sqlalchemy import delete, select, update
from werkzeug.datastructures import CallbackDict

from app.auth.models import WebSession
from app.db_types import utcnow
from app.extensions import db

_serializer = TaggedJSONSerializer()
_table = WebSession.__table__


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ServerSession(CallbackDict, SessionMixin):
    """Session data plus what the store needs: the token, the row's timestamps, and whether the
    token must be replaced (after login, against session fixation)."""

    def __init__(self, initial=None, token: str | None = None, created_at: datetime | None = None,
                 last_seen_at: datetime | None = None):
        def on_update(_self):
            _self.modified = True

        super().__init__(initial, on_update)
        self.token = token
        self.created_at = created_at
        self.last_seen_at = last_seen_at
        self.modified = False
        self.regenerate_requested = False

    def regenerate(self) -> None:
        """Issue a new token at the end of this request (and drop the old row)."""
        self.regenerate_requested = True
        self.modified = True


class ServerSideSessionInterface(SessionInterface):
    """Flask session interface backed by the ``web_session`` table."""

    def open_session(self, app, request) -> ServerSession:
        token = request.cookies.get(self.get_cookie_name(app))
        if not token or len(token) > 128:
            return ServerSession()
        with db.engine.connect().execution_options(read_only=True) as conn:
            row = conn.execute(select(_table).where(_table.c.id == _hash(token))).first()
        if row is None:
            return ServerSession()
        now = utcnow()
        if (now - row.last_seen_at > app.config["SESSION_IDLE_TIMEOUT"]
                or now - row.created_at > app.config["SESSION_ABSOLUTE_TIMEOUT"]):
            self._delete(token)
            return ServerSession()
        return ServerSession(_serializer.loads(row.data), token=token, created_at=row.created_at,
                             last_seen_at=row.last_seen_at)

    def save_session(self, app, session: ServerSession, response) -> None:
        name = self.get_cookie_name(app)
        cookie_options = dict(domain=self.get_cookie_domain(app), path=self.get_cookie_path(app),
                              secure=self.get_cookie_secure(app), httponly=self.get_cookie_httponly(app),
                              samesite=self.get_cookie_samesite(app))
        if not session:
            if session.token:
                self._delete(session.token)
                response.delete_cookie(name, **cookie_options)
            return
        now = utcnow()
        if session.token and session.regenerate_requested:
            self._delete(session.token)
            session.token = None
        if session.token is None:
            session.token = secrets.token_urlsafe(32)
            session.created_at = now
            self._insert(session, now)
        elif session.modified:
            self._write(session, now)
        elif now - session.last_seen_at >= app.config["SESSION_TOUCH_INTERVAL"]:
            with _own_transaction() as conn:
                conn.execute(update(_table).where(_table.c.id == _hash(session.token))
                             .values(last_seen_at=now))
        else:
            return
        response.set_cookie(name, session.token, **cookie_options)

    @staticmethod
    def _user_id(session: ServerSession) -> int | None:
        value = session.get("_user_id")
        return int(value) if value is not None else None

    def _insert(self, session: ServerSession, now: datetime) -> None:
        with _own_transaction() as conn:
            conn.execute(_table.insert().values(
                id=_hash(session.token), user_id=self._user_id(session),
                data=_serializer.dumps(dict(session)), created_at=now, last_seen_at=now))

    def _write(self, session: ServerSession, now: datetime) -> None:
        with _own_transaction() as conn:
            result = conn.execute(update(_table).where(_table.c.id == _hash(session.token)).values(
                user_id=self._user_id(session), data=_serializer.dumps(dict(session)), last_seen_at=now))
        if result.rowcount == 0:
            # The row was revoked while this request ran: never resurrect it.
            session.clear()

    @staticmethod
    def _delete(token: str) -> None:
        with _own_transaction() as conn:
            conn.execute(delete(_table).where(_table.c.id == _hash(token)))


@contextmanager
def _own_transaction():
    """Roll back whatever the request left open, then run the session write and commit it."""
    db.session.rollback()
    try:
        yield db.session
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise


def end_all_sessions(user_id: int) -> None:
    """Revoke every session of a user (logout everywhere, password or role change, deactivation).

    Runs inside the caller's transaction (``db.session``) so the revocation commits together with
    the change that caused it.
    """
    db.session.execute(delete(WebSession).where(WebSession.user_id == user_id))


def purge_expired_sessions(app) -> int:
    """Delete sessions past their idle or absolute timeout; returns how many were removed."""
    now = utcnow()
    with _own_transaction() as conn:
        result = conn.execute(delete(_table).where(
            (_table.c.last_seen_at < now - app.config["SESSION_IDLE_TIMEOUT"])
            | (_table.c.created_at < now - app.config["SESSION_ABSOLUTE_TIMEOUT"])))
    return result.rowcount
