"""Server-side, revocable sessions: every session of a user ends on logout, password change, role
change and deactivation; old cookies are worthless; idle and absolute timeouts; the token changes
at sign-in; cookie flags."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app import create_app
from app.auth.models import User, WebSession
from app.db_types import utcnow
from app.extensions import db
from config import ProductionConfig
from conftest import STRONG_PASSWORD, Browser

COOKIE = "nansen_session"
NEW_PASSWORD = "velvet ocean drum parade lantern"


def cookie(browser: Browser) -> str | None:
    found = browser.client.get_cookie(COOKIE)
    return found.value if found else None


def is_signed_in(browser: Browser) -> bool:
    response = browser.get("/auth/account")
    if response.status_code == 200:
        return True
    assert response.headers["Location"].startswith("/auth/login")
    return False


def sessions_of(user: User) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(WebSession).where(WebSession.user_id == user.id))


@pytest.fixture
def two_clients(app, make_user):
    """The same caseworker signed in twice (two browsers), plus a signed-in administrator."""
    user = make_user("caseworker")
    first, second = Browser(app.test_client()), Browser(app.test_client())
    first.login(user)
    second.login(user)
    assert is_signed_in(first) and is_signed_in(second)
    assert sessions_of(user) == 2
    return first, second, user


def test_logout_ends_every_session_of_the_user(two_clients):
    """Signing out in one browser signs the user out in the other too."""
    first, second, user = two_clients
    response = first.post("/auth/logout", token_from="/")
    assert response.headers["Location"] == "/auth/login"
    assert "You are signed out." in first.get("/auth/login").get_data(as_text=True)
    assert not is_signed_in(second)
    assert not is_signed_in(first)
    assert sessions_of(user) == 0


def test_password_change_ends_every_session(two_clients):
    """Changing the password in one browser ends the session in both."""
    first, second, user = two_clients
    response = first.post("/auth/password", {"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD,
                                             "confirm_password": NEW_PASSWORD})
    assert response.status_code == 302
    assert "Every session was signed out" in first.get("/auth/login").get_data(as_text=True)
    assert not is_signed_in(second)
    assert not is_signed_in(first)
    assert sessions_of(user) == 0


@pytest.mark.parametrize("action, data", [
    ("deactivate", None),
    ("role", {"role": "auditor"}),
    ("office", {"role": "caseworker"}),
])
def test_administrator_changes_end_every_session(app, two_clients, signed_in, other_office, action, data):
    """Deactivation, a new role or a new office ends all of the user's sessions at once."""
    first, second, user = two_clients
    admin, _admin_user = signed_in("admin")
    if action == "deactivate":
        response = admin.post(f"/admin/users/{user.id}/deactivate", token_from=f"/admin/users/{user.id}")
    else:
        office_id = other_office.id if action == "office" else user.office_id
        response = admin.post(f"/admin/users/{user.id}", {**data, "office_id": office_id})
    assert response.status_code == 302
    assert not is_signed_in(first)
    assert not is_signed_in(second)
    assert sessions_of(user) == 0
    assert is_signed_in(admin)


def test_an_old_cookie_is_worthless_after_logout(app, signed_in):
    """A cookie copied before logout, replayed from another client, is anonymous."""
    browser, _user = signed_in("caseworker")
    copied = cookie(browser)
    browser.post("/auth/logout", token_from="/")
    thief = app.test_client()
    thief.set_cookie(COOKIE, copied)
    response = thief.get("/auth/account")
    assert (response.status_code, response.headers["Location"]) == (302, "/auth/login?next=/auth/account")


def test_the_cookie_carries_only_a_random_token(app, signed_in):
    """The cookie holds no session data; the database holds only the token's SHA-256, so a
    stored row id used as a cookie is worthless."""
    browser, user = signed_in("caseworker")
    token = cookie(browser)
    assert len(token) >= 43 and "." not in token  # no signed payload, unlike a Flask cookie session
    row_ids = db.session.scalars(select(WebSession.id).where(WebSession.user_id == user.id)).all()
    assert row_ids == [hashlib.sha256(token.encode()).hexdigest()]
    forger = app.test_client()
    forger.set_cookie(COOKIE, row_ids[0])
    assert forger.get("/").status_code == 302


def test_token_is_replaced_at_sign_in(app, make_user):
    """The token a visitor had before signing in (perhaps planted by an attacker) is replaced at
    sign-in and stops working: no session fixation."""
    user = make_user("caseworker")
    browser = Browser(app.test_client())
    browser.get("/auth/login")
    before = cookie(browser)
    assert before
    browser.login(user)
    after = cookie(browser)
    assert after and after != before
    planted = app.test_client()
    planted.set_cookie(COOKIE, before)
    assert planted.get("/").status_code == 302
    assert db.session.get(WebSession, hashlib.sha256(before.encode()).hexdigest()) is None


def test_token_is_replaced_at_the_password_step_too(app, make_user):
    """For a role that needs a second factor, the token changes as soon as the password is right:
    a planted session can neither see the enrolment key nor finish the sign-in."""
    user = make_user("supervisor", mfa=False)
    browser = Browser(app.test_client())
    browser.get("/auth/login")
    planted = cookie(browser)
    browser.post("/auth/login", {"username": user.username, "password": STRONG_PASSWORD})
    assert cookie(browser) != planted
    attacker = app.test_client()
    attacker.set_cookie(COOKIE, planted)
    assert attacker.get("/auth/enrol").headers["Location"] == "/auth/login"
    assert browser.get("/auth/enrol").status_code == 200


def age_sessions(user: User, **changes) -> None:
    db.session.execute(update(WebSession).where(WebSession.user_id == user.id).values(**changes))
    db.session.commit()


def test_idle_timeout_is_fifteen_minutes(app, signed_in):
    """A session unused for 14 minutes still works; one unused for 16 minutes has ended."""
    assert app.config["SESSION_IDLE_TIMEOUT"] == timedelta(minutes=15)
    browser, user = signed_in("caseworker")
    age_sessions(user, last_seen_at=utcnow() - timedelta(minutes=14))
    assert is_signed_in(browser)
    age_sessions(user, last_seen_at=utcnow() - timedelta(minutes=16))
    assert not is_signed_in(browser)
    assert sessions_of(user) == 0


def test_using_a_session_keeps_it_alive(app, signed_in):
    """A request refreshes last_seen_at (at most once a minute), so an active user stays in."""
    browser, user = signed_in("caseworker")
    age_sessions(user, last_seen_at=utcnow() - timedelta(minutes=10))
    assert is_signed_in(browser)
    db.session.rollback()
    seen = db.session.scalar(select(WebSession.last_seen_at).where(WebSession.user_id == user.id))
    assert utcnow() - seen < timedelta(minutes=1)


def test_absolute_timeout_is_ten_hours(app, signed_in):
    """A session created more than 10 hours ago ends even if it was used a moment ago."""
    assert app.config["SESSION_ABSOLUTE_TIMEOUT"] == timedelta(hours=10)
    browser, user = signed_in("caseworker")
    age_sessions(user, created_at=utcnow() - timedelta(hours=9, minutes=59), last_seen_at=utcnow())
    assert is_signed_in(browser)
    age_sessions(user, created_at=utcnow() - timedelta(hours=10, minutes=1), last_seen_at=utcnow())
    assert not is_signed_in(browser)


def test_purge_removes_expired_sessions(app, make_user):
    """The housekeeping purge deletes sessions past either timeout and keeps live ones."""
    from app.auth.sessions import purge_expired_sessions

    users = [make_user("caseworker") for _ in range(3)]
    for user in users:
        Browser(app.test_client()).login(user)
    age_sessions(users[0], last_seen_at=utcnow() - timedelta(minutes=20))
    age_sessions(users[1], created_at=utcnow() - timedelta(hours=11))
    assert purge_expired_sessions(app) == 2
    assert [sessions_of(u) for u in users] == [0, 0, 1]


def test_cookie_flags_in_testing(signed_in):
    """The session cookie is HttpOnly and SameSite=Lax (Secure is off only for plain-HTTP tests)."""
    browser, _user = signed_in("caseworker")
    found = browser.client.get_cookie(COOKIE)
    assert found.http_only is True
    assert found.same_site == "Lax"


def test_cookie_flags_in_production(app, database_url, tmp_path, monkeypatch):
    """Under the production configuration the session cookie is Secure, HttpOnly and SameSite."""
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    monkeypatch.setenv("SECRET_KEY", "Zk3q9-vT0pX_8mWcR2yLbN5sHdJ7eGu4aQiKoV1fE6")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("NANSEN_KEK", app.config["NANSEN_KEK"])
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "memory://")
    monkeypatch.setenv("AUDIT_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    db.session.rollback()
    production = create_app(ProductionConfig)
    try:
        response = production.test_client().get("/auth/login", base_url="https://nansen.example")
        assert response.status_code == 200
        set_cookie = response.headers["Set-Cookie"]
        assert set_cookie.startswith(f"{COOKIE}=")
        flags = {part.strip().split("=")[0].lower(): part.strip() for part in set_cookie.split(";")[1:]}
        assert {"secure", "httponly", "samesite"} <= set(flags)
        assert flags["samesite"] == "SameSite=Lax"
    finally:
        with production.app_context():
            db.session.remove()
            db.engine.dispose()
