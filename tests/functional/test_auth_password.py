"""Changing one's own password: the policy applies, the current password is checked, and the
change is audited."""

from __future__ import annotations

from sqlalchemy import select

from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.auth.models import User
from app.auth.passwords import verify_password
from app.extensions import db
from conftest import STRONG_PASSWORD, Browser

NEW_PASSWORD = "velvet ocean drum parade lantern"


def change(browser: Browser, current: str, new: str, confirm: str | None = None):
    return browser.post("/auth/password", {"current_password": current, "new_password": new,
                                           "confirm_password": new if confirm is None else confirm})


def test_password_change_takes_effect_and_is_audited(app, signed_in):
    """After a change the new password signs in, the old one does not, and a PASSWORD_CHANGED
    event names the user."""
    browser, user = signed_in("caseworker")
    response = change(browser, STRONG_PASSWORD, NEW_PASSWORD)
    assert (response.status_code, response.headers["Location"]) == (302, "/auth/login")
    db.session.rollback()
    stored = db.session.get(User, user.id).password_hash
    assert verify_password(stored, NEW_PASSWORD) and not verify_password(stored, STRONG_PASSWORD)
    assert Browser(app.test_client()).post(
        "/auth/login", {"username": user.username, "password": STRONG_PASSWORD}).status_code == 401
    Browser(app.test_client()).login(user, NEW_PASSWORD)
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.code == EventCode.PASSWORD_CHANGED)).one()
    assert (event.actor_id, event.subject_type, event.subject_id) == (user.id, "user", str(user.id))


def test_password_change_checks_the_current_password(signed_in):
    """A wrong current password is refused (422) with the message next to that field."""
    browser, user = signed_in("caseworker")
    before = user.password_hash
    response = change(browser, "not my password at all", NEW_PASSWORD)
    assert response.status_code == 422
    assert "The current password is not correct." in response.get_data(as_text=True)
    db.session.rollback()
    assert db.session.get(User, user.id).password_hash == before


def test_password_change_applies_the_policy(signed_in):
    """Too short, common, or containing the username: every reason is shown, nothing changes."""
    browser, user = signed_in("caseworker")
    before = user.password_hash
    for new, message in (("short one", "Use at least 15 characters."),
                         ("mailcreated5240", "This password is too common"),
                         (f"my {user.username} velvet ocean", "must not contain your username")):
        response = change(browser, STRONG_PASSWORD, new)
        assert response.status_code == 422, new
        assert message in response.get_data(as_text=True)
    db.session.rollback()
    assert db.session.get(User, user.id).password_hash == before
    assert db.session.scalars(select(AuditEvent).where(AuditEvent.code == EventCode.PASSWORD_CHANGED)).all() == []


def test_password_change_needs_the_same_password_twice(signed_in):
    """A confirmation that differs is refused by the form (400) and nothing changes."""
    browser, user = signed_in("caseworker")
    response = change(browser, STRONG_PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "x")
    assert response.status_code == 400
    assert "The two passwords differ." in response.get_data(as_text=True)
    db.session.rollback()
    assert verify_password(db.session.get(User, user.id).password_hash, STRONG_PASSWORD)
