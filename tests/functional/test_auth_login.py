"""Signing in with a password: the answer never tells whether an account exists, throttling per
account and per address, rehashing on sign-in, and the audit of every attempt."""

from __future__ import annotations

import re

from argon2 import PasswordHasher, Type, extract_parameters
from sqlalchemy import select

from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.auth.models import Office, User
from app.auth.passwords import hash_password
from app.extensions import db
from conftest import CSRF_PATTERN, STRONG_PASSWORD, Browser

REQUEST_ID_PATTERN = re.compile(r"<code>[0-9a-f]{16}</code>")


def audit_events(code: EventCode) -> list[AuditEvent]:
    db.session.rollback()
    return db.session.scalars(select(AuditEvent).where(AuditEvent.code == code).order_by(AuditEvent.id)).all()


def comparable(body: str, *typed: str) -> str:
    """A page with what legitimately differs between two requests blanked out: the CSRF token,
    the request id, and the username the person typed (echoed back into the form)."""
    body = CSRF_PATTERN.sub('name="csrf_token" value="TOKEN"', body)
    body = REQUEST_ID_PATTERN.sub("<code>REQUEST-ID</code>", body)
    for value in typed:
        body = body.replace(f'value="{value}"', 'value="TYPED"')
    return body


def add_user(username: str, role: str = "caseworker") -> User:
    """An account on an application built with config overrides (make_user belongs to `app`)."""
    office = db.session.scalar(select(Office).where(Office.code == "HQ"))
    if office is None:
        office = Office(code="HQ", name="Headquarters")
        db.session.add(office)
        db.session.flush()
    user = User(username=username, full_name="Test User", role=role, office_id=office.id,
                password_hash=hash_password(STRONG_PASSWORD), active=True)
    db.session.add(user)
    db.session.commit()
    return user


def attempt(browser: Browser, username: str, password: str, address: str = "127.0.0.1"):
    token = browser.csrf()
    return browser.client.post("/auth/login", data={"username": username, "password": password, "csrf_token": token},
                               environ_base={"REMOTE_ADDR": address})


def test_caseworker_signs_in_and_sees_home(signed_in):
    """A caseworker with a correct password lands on their home page."""
    browser, _user = signed_in("caseworker")
    page = browser.get("/")
    assert page.status_code == 200
    assert "My work" in page.get_data(as_text=True)


def test_username_is_matched_case_and_space_insensitively(browser, make_user):
    """Usernames are stored lower-case; what people type is normalised the same way."""
    user = make_user("caseworker", username="amina.k")
    response = browser.post("/auth/login", {"username": "  Amina.K ", "password": STRONG_PASSWORD})
    assert response.status_code == 302
    assert browser.get("/").status_code == 200
    assert user.id


def test_wrong_password_is_refused_with_a_generic_message(browser, make_user):
    """A wrong password gives 401 and the generic message, and nobody is signed in."""
    user = make_user("caseworker")
    response = browser.post("/auth/login", {"username": user.username, "password": "wrong " + STRONG_PASSWORD})
    assert response.status_code == 401
    assert "The username or password is not correct." in response.get_data(as_text=True)
    assert browser.get("/").headers["Location"].startswith("/auth/login")


def test_unknown_and_known_usernames_get_the_same_answer(browser, make_user):
    """An unknown username, a known one with a wrong password and a deactivated account with its
    right password all get the same status and the same page."""
    known = make_user("caseworker", username="known.user")
    make_user("caseworker", username="gone.user", active=False)
    answers = [
        attempt(browser, "nobody.here", "wrong password, long enough"),
        attempt(browser, known.username, "wrong password, long enough"),
        attempt(browser, "gone.user", STRONG_PASSWORD),
    ]
    assert {a.status_code for a in answers} == {401}
    pages = {comparable(a.get_data(as_text=True), "nobody.here", "known.user", "gone.user") for a in answers}
    assert len(pages) == 1


def test_every_failed_attempt_is_audited(browser, make_user):
    """Failures are LOGIN_FAILED events: with the account as subject when it exists, without when
    it does not (the typed name is not stored)."""
    user = make_user("caseworker")
    attempt(browser, "nobody.here", "wrong password, long enough")
    attempt(browser, user.username, "wrong password, long enough")
    events = audit_events(EventCode.LOGIN_FAILED)
    assert [(e.subject_id, e.outcome, e.details["reason"]) for e in events] == [
        (None, "failure", "unknown user"), (str(user.id), "failure", "wrong password")]
    assert all("nobody" not in str(e.details) for e in events)


def test_success_is_audited_with_the_method(signed_in):
    """A successful sign-in writes one LOGIN_SUCCEEDED event naming the user and the method."""
    _browser, user = signed_in("caseworker")
    events = audit_events(EventCode.LOGIN_SUCCEEDED)
    assert [(e.actor_id, e.actor_role, e.details["method"]) for e in events] == [(user.id, "caseworker", "password")]
    db.session.refresh(user)
    assert user.last_login_at is not None


def test_throttling_per_account_holds_across_addresses(app_factory):
    """After the per-account limit, that username gets 429 from any address; an unknown
    username is throttled the same way, with the same page."""
    app = app_factory(LOGIN_LIMIT_PER_ACCOUNT="3 per minute")
    with app.app_context():
        known = add_user("known.user")
        browser = Browser(app.test_client())
        statuses = {}
        for name in (known.username, "nobody.here"):
            statuses[name] = [attempt(browser, name, "wrong password, long enough", f"10.0.0.{i}").status_code
                              for i in range(3)]
            statuses[name].append(attempt(browser, name, STRONG_PASSWORD, "10.0.0.99"))
        assert statuses[known.username][:3] == statuses["nobody.here"][:3] == [401, 401, 401]
        throttled = [statuses[known.username][3], statuses["nobody.here"][3]]
        assert [t.status_code for t in throttled] == [429, 429]
        pages = {comparable(t.get_data(as_text=True)) for t in throttled}
        assert len(pages) == 1
        assert "Too many attempts" in pages.pop()
        # Even the right password is not checked while the account is throttled.
        assert browser.get("/").status_code == 302
        assert attempt(browser, "someone.else", "wrong password, long enough", "10.0.0.99").status_code == 401
        assert len(audit_events(EventCode.LOGIN_THROTTLED)) == 2


def test_throttling_per_address_holds_across_usernames(app_factory):
    """One address trying many usernames is stopped by the per-address limit; another address
    is not affected."""
    app = app_factory(LOGIN_LIMIT_PER_ADDRESS="3 per minute")
    with app.app_context():
        browser = Browser(app.test_client())
        statuses = [attempt(browser, f"user{i}", "wrong password, long enough", "192.0.2.7").status_code
                    for i in range(4)]
        assert statuses == [401, 401, 401, 429]
        assert attempt(browser, "user9", "wrong password, long enough", "192.0.2.8").status_code == 401


def test_weaker_hash_is_upgraded_at_sign_in(app, browser, make_user):
    """A user whose stored hash is weaker than configured (older parameters, or Argon2i) gets a
    hash with the configured parameters when signing in with the right password."""
    for old in (PasswordHasher(time_cost=1, memory_cost=256, parallelism=1),
                PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.I)):
        user = make_user("caseworker")
        user.password_hash = old.hash(STRONG_PASSWORD)
        db.session.commit()
        Browser(app.test_client()).login(user)
        db.session.refresh(user)
        params = extract_parameters(user.password_hash)
        assert (params.type, params.memory_cost, params.time_cost) == (
            Type.ID, app.config["ARGON2_MEMORY_COST"], app.config["ARGON2_TIME_COST"])


def test_wrong_password_does_not_rehash(browser, make_user):
    """Only a correct password can replace the stored hash."""
    user = make_user("caseworker")
    weak = PasswordHasher(time_cost=1, memory_cost=256, parallelism=1).hash(STRONG_PASSWORD)
    user.password_hash = weak
    db.session.commit()
    attempt(browser, user.username, "wrong password, long enough")
    assert db.session.get(User, user.id).password_hash == weak


def test_sign_in_returns_to_the_page_asked_for(browser, make_user):
    """A visitor sent to sign in from a page goes back to it afterwards (same site only)."""
    user = make_user("caseworker")
    assert browser.get("/auth/account").headers["Location"] == "/auth/login?next=/auth/account"
    response = browser.post("/auth/login?next=/auth/account",
                            {"username": user.username, "password": STRONG_PASSWORD}, token_from="/auth/login")
    assert response.headers["Location"] == "/auth/account"


def test_sign_in_never_redirects_to_another_site(app, make_user):
    """`next` pointing elsewhere (absolute, protocol-relative, backslash tricks) lands on home."""
    user = make_user("caseworker")
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example/", "/\t/evil.example"):
        browser = Browser(app.test_client())
        response = browser.post(f"/auth/login?next={target}",
                                {"username": user.username, "password": STRONG_PASSWORD}, token_from="/auth/login")
        assert response.headers["Location"] == "/", target
        browser.post("/auth/logout", token_from="/")


def test_signed_in_user_visiting_login_goes_home(signed_in):
    """The sign-in page sends a signed-in user to their home page."""
    browser, _user = signed_in("auditor")
    response = browser.get("/auth/login")
    assert (response.status_code, response.headers["Location"]) == (302, "/")
