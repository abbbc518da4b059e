"""Property-based: random text in every field of every form never gives a server error and never
saves a half-valid object (SECURITY.md, input and output)."""

from __future__ import annotations

import pyotp
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.auth.models import Office, RecoveryCode, User
from app.auth.passwords import hash_password, verify_password
from app.extensions import db, limiter
from conftest import STRONG_PASSWORD, Browser

FUZZ = settings(max_examples=30, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
NASTY = st.sampled_from([
    "", " ", "\x00", "ab\x00cd", "Ana\x00Pereira", "\u202eevil", "\r\n", "\t", "'; DROP TABLE user_account; --",
    "<script>alert(1)</script>", "%00", "x" * 129, "é" * 70, "ß" * 16, "٣٤٥", "\ufeff", "🙂" * 5, "0", "-1",
    "999999999999999999999", "NaN", "null", "../../etc/passwd",
])
TEXT = st.one_of(st.text(max_size=40), st.text(min_size=60, max_size=260), NASTY)
VALID_PASSWORD = "velvet ocean drum parade lantern"


def count(model) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model))


def event_count(code: EventCode) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.code == code))


def send(browser: Browser, path: str, token: str, **fields):
    limiter.reset()  # the fuzzing is about input, not about throttling
    return browser.client.post(path, data={**fields, "csrf_token": token})


def test_login_form(app, make_user):
    """Random usernames and passwords: 400 or 401, never a sign-in, nothing written but the
    audit of the failure."""
    user = make_user("caseworker", username="fuzz.target")
    browser = Browser(app.test_client())
    token = browser.csrf()
    users = count(User)

    @FUZZ
    @given(username=st.one_of(TEXT, st.just(user.username)), password=TEXT)
    @example(username="fuzz\x00target", password="x")
    @example(username="fuzz.target", password="\x00")
    def check(username, password):
        response = send(browser, "/auth/login", token, username=username, password=password)
        assert response.status_code in (400, 401), (response.status_code, username)
        assert count(User) == users

    check()
    assert browser.get("/").status_code == 302


def test_second_factor_form(app, make_user):
    """Random codes on the second-factor page: 400 or 401 (a real code by chance: 302), and the
    stored second factor is unchanged."""
    user = make_user("supervisor", mfa=True)
    browser = Browser(app.test_client())
    browser.post("/auth/login", {"username": user.username, "password": STRONG_PASSWORD})
    token = browser.csrf()
    totp = pyotp.TOTP(user.totp_secret)

    @FUZZ
    @given(code=st.one_of(TEXT, st.text(alphabet="0123456789", min_size=6, max_size=6),
                          st.text(alphabet="0123456789abcdef-", min_size=10, max_size=20)))
    @example(code="\x00" * 10)
    def check(code):
        response = send(browser, "/auth/second-factor", token, code=code)
        if response.status_code == 302:  # pragma: no cover - a one in a million guess
            assert code.strip() == totp.now()
            return
        assert response.status_code in (400, 401), (response.status_code, code)
        assert count(RecoveryCode) == 0
        assert db.session.get(User, user.id).totp_last_step is None

    check()


def test_password_change_form(app, make_user):
    """Random current, new and confirmation: refused (400/422) with the hash unchanged, or, when the
    current password is right and the new one passes the policy, changed to exactly that."""
    user = make_user("caseworker")
    state = {}

    def sign_in_again():
        stored = db.session.get(User, user.id)
        stored.password_hash = hash_password(STRONG_PASSWORD)
        db.session.commit()
        state["browser"] = Browser(app.test_client())
        state["browser"].login(user)
        state["token"] = state["browser"].csrf("/auth/password")

    sign_in_again()

    @FUZZ
    @given(current=st.one_of(TEXT, st.just(STRONG_PASSWORD)), new=st.one_of(TEXT, st.just(VALID_PASSWORD)),
           same=st.booleans(), confirm=TEXT)
    @example(current=STRONG_PASSWORD, new="velvet\x00ocean drum parade", same=True, confirm="")
    def check(current, new, same, confirm):
        before = db.session.get(User, user.id).password_hash
        response = send(state["browser"], "/auth/password", state["token"], current_password=current,
                        new_password=new, confirm_password=new if same else confirm)
        db.session.rollback()
        after = db.session.get(User, user.id).password_hash
        if response.status_code == 302:
            assert current == STRONG_PASSWORD and verify_password(after, new)
            sign_in_again()
            return
        assert response.status_code in (400, 422), (response.status_code, current, new)
        assert after == before

    check()


def test_admin_user_create_form(app, signed_in, office):
    """Random account fields: refused with no account and no audit event, or created with exactly
    the (trimmed) values given."""
    browser, _admin = signed_in("admin")
    token = browser.csrf("/admin/users/new")
    roles = st.sampled_from(["registration_officer", "caseworker", "supervisor", "auditor", "admin"])

    @FUZZ
    @given(username=st.one_of(TEXT, st.from_regex(r"[a-z0-9._-]{3,20}", fullmatch=True)),
           full_name=TEXT, role=st.one_of(roles, TEXT), office_id=st.one_of(st.just(str(office.id)), TEXT),
           password=st.one_of(st.just(VALID_PASSWORD), TEXT))
    @example(username="nul.name", full_name="Ana\x00Pereira", role="caseworker", office_id=str(office.id),
             password=VALID_PASSWORD)
    @example(username="bidi.name", full_name="\u202eevil", role="caseworker", office_id=str(office.id),
             password=VALID_PASSWORD)
    @example(username="tab.name", full_name="Ana\tPereira", role="caseworker", office_id=str(office.id),
             password=VALID_PASSWORD)
    def check(username, full_name, role, office_id, password):
        users, created = count(User), event_count(EventCode.USER_CREATED)
        response = send(browser, "/admin/users/new", token, username=username, full_name=full_name, role=role,
                        office_id=office_id, password=password)
        if response.status_code == 302:
            db.session.rollback()
            user = db.session.scalar(select(User).where(User.username == username.strip()))
            assert (user.full_name, user.role, user.office_id) == (full_name.strip(), role, office.id)
            assert (count(User), event_count(EventCode.USER_CREATED)) == (users + 1, created + 1)
            return
        assert response.status_code in (400, 422), (response.status_code, username, full_name)
        assert (count(User), event_count(EventCode.USER_CREATED)) == (users, created)

    check()


def test_admin_user_detail_form(app, signed_in, make_user, office, other_office):
    """Random role and office for an existing user: refused with the user unchanged, or saved as
    given."""
    browser, _admin = signed_in("admin")
    target = make_user("caseworker")
    token = browser.csrf(f"/admin/users/{target.id}")
    roles = st.sampled_from(["caseworker", "auditor"])
    offices = st.sampled_from([str(office.id), str(other_office.id)])

    @FUZZ
    @given(role=st.one_of(roles, TEXT), office_id=st.one_of(offices, TEXT))
    def check(role, office_id):
        before = db.session.get(User, target.id)
        before = (before.role, before.office_id)
        response = send(browser, f"/admin/users/{target.id}", token, role=role, office_id=office_id)
        db.session.rollback()
        stored = db.session.get(User, target.id)
        if response.status_code == 302:
            assert (stored.role, stored.office_id) == (role, int(office_id))
            return
        assert response.status_code in (400, 422), (response.status_code, role, office_id)
        assert (stored.role, stored.office_id) == before

    check()


def test_office_create_form(app, signed_in):
    """Random office code and name: refused with no office, or created with the normalised code."""
    browser, _admin = signed_in("admin")
    token = browser.csrf("/admin/offices")

    @FUZZ
    @given(code=st.one_of(TEXT, st.from_regex(r"[A-Za-z0-9-]{1,16}", fullmatch=True)), name=TEXT)
    @example(code="NUL", name="Office\x00Name")
    @example(code="ß" * 9, name="Eszett office")
    @example(code="٣٤٥", name="Arabic digits")
    def check(code, name):
        offices = count(Office)
        response = send(browser, "/admin/offices", token, code=code, name=name)
        if response.status_code == 302:
            db.session.rollback()
            office = db.session.scalar(select(Office).where(Office.code == code.strip().upper()))
            assert office is not None and office.name == name.strip()
            assert count(Office) == offices + 1
            return
        assert response.status_code in (400, 422), (response.status_code, code, name)
        assert count(Office) == offices

    check()


def test_language_form(app, signed_in):
    """Random language and `next`: always a redirect to this site; the saved language is one of
    those offered."""
    browser, user = signed_in("caseworker")
    token = browser.csrf("/auth/account")
    languages = app.config["LANGUAGES"]

    @FUZZ
    @given(locale=st.one_of(st.sampled_from(list(languages)), TEXT),
           next_path=st.one_of(TEXT, st.just("/auth/account"), st.text(max_size=20).map(lambda t: "/" + t)))
    @example(locale="ar", next_path="/\\evil.example")
    @example(locale="ar", next_path="/\x00")
    def check(locale, next_path):
        response = send(browser, "/auth/language", token, locale=locale, next=next_path)
        assert response.status_code == 302
        location = response.headers["Location"]
        assert location.startswith("/") and not location.startswith("//") and "\\" not in location
        db.session.rollback()
        assert db.session.get(User, user.id).locale in (None, *languages)

    check()


def test_enrolment_form(app, signed_in):
    """Random codes on the enrolment page: 400 with the second factor still off (a right code by
    chance turns it on)."""
    browser, user = signed_in("caseworker")
    token = browser.csrf("/auth/enrol")

    @FUZZ
    @given(code=st.one_of(TEXT, st.text(alphabet="0123456789", min_size=6, max_size=6)))
    @example(code="\x00" * 6)
    def check(code):
        response = send(browser, "/auth/enrol", token, code=code)
        db.session.rollback()
        if response.status_code == 302:  # pragma: no cover - a one in a million guess
            assert db.session.get(User, user.id).mfa_enabled
            return
        assert response.status_code == 400, (response.status_code, code)
        assert db.session.get(User, user.id).mfa_enabled is False
        assert count(RecoveryCode) == 0

    check()
