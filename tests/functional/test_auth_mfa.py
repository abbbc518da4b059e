"""Second factor (TOTP): required for supervisors and administrators, enrolment forced when
missing, codes that work once, recovery codes stored hashed and usable once."""

from __future__ import annotations

import hashlib
import re

import pyotp
import pytest
from sqlalchemy import select

from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.auth.models import RecoveryCode, User
from app.db_types import utcnow
from app.extensions import db
from conftest import STRONG_PASSWORD, Browser

SECRET_PATTERN = re.compile(r'<code class="secret">([A-Z2-7]+)</code>')
RECOVERY_PATTERN = re.compile(r"<li><code>([0-9a-f]{5}-[0-9a-f]{5})</code></li>")


def audit_codes(user: User) -> list[int]:
    db.session.rollback()
    return db.session.scalars(select(AuditEvent.code).where(AuditEvent.subject_type == "user",
                                                              AuditEvent.subject_id == str(user.id))
                              .order_by(AuditEvent.id)).all()


def password_step(browser: Browser, user: User):
    return browser.post("/auth/login", {"username": user.username, "password": STRONG_PASSWORD})


def is_signed_in(browser: Browser) -> bool:
    return browser.get("/").status_code == 200


def sign_out(browser: Browser) -> None:
    assert browser.post("/auth/logout", token_from="/").status_code == 302


def enrol(browser: Browser) -> tuple[str, list[str]]:
    """Complete enrolment from the enrolment page; returns the secret and the recovery codes."""
    page = browser.get("/auth/enrol").get_data(as_text=True)
    secret = SECRET_PATTERN.search(page).group(1)
    response = browser.post("/auth/enrol", {"code": pyotp.TOTP(secret).now()})
    assert (response.status_code, response.headers["Location"]) == (302, "/auth/recovery-codes")
    codes = RECOVERY_PATTERN.findall(browser.get("/auth/recovery-codes").get_data(as_text=True))
    return secret, codes


@pytest.mark.parametrize("role", ["supervisor", "admin"])
def test_password_alone_does_not_sign_in_roles_that_need_a_second_factor(browser, make_user, role):
    """An enrolled supervisor or administrator is sent to the second-factor page after the
    password, and is not signed in until the code is given."""
    user = make_user(role, mfa=True)
    response = password_step(browser, user)
    assert (response.status_code, response.headers["Location"]) == (302, "/auth/second-factor")
    assert not is_signed_in(browser)
    response = browser.post("/auth/second-factor", {"code": pyotp.TOTP(user.totp_secret).now()})
    assert (response.status_code, response.headers["Location"]) == (302, "/")
    assert is_signed_in(browser)
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.code == EventCode.LOGIN_SUCCEEDED)).one()
    assert (event.actor_id, event.details["method"]) == (user.id, "password+totp")


def test_wrong_code_is_refused_and_audited(browser, make_user):
    """A wrong code gives 401 with the message next to the field, keeps the user out, and is an
    MFA_FAILED event."""
    user = make_user("supervisor", mfa=True)
    password_step(browser, user)
    wrong = f"{(int(pyotp.TOTP(user.totp_secret).now()) + 1) % 1_000_000:06d}"
    response = browser.post("/auth/second-factor", {"code": wrong})
    assert response.status_code == 401
    assert "This code is not valid." in response.get_data(as_text=True)
    assert not is_signed_in(browser)
    assert audit_codes(user) == [EventCode.MFA_FAILED]


def test_a_totp_code_works_once(app, make_user):
    """The code that signed someone in is refused when replayed, even within its 30 seconds,
    and so is the code of the step before it."""
    user = make_user("supervisor", mfa=True)
    totp = pyotp.TOTP(user.totp_secret)
    now = utcnow()
    code, previous = totp.at(now), totp.at(now, counter_offset=-1)
    first = Browser(app.test_client())
    password_step(first, user)
    assert first.post("/auth/second-factor", {"code": code}).status_code == 302
    sign_out(first)
    replay = Browser(app.test_client())
    password_step(replay, user)
    assert replay.post("/auth/second-factor", {"code": code}).status_code == 401
    assert replay.post("/auth/second-factor", {"code": previous}).status_code == 401
    assert not is_signed_in(replay)
    assert audit_codes(user).count(EventCode.MFA_FAILED) == 2


def test_second_factor_page_needs_a_pending_sign_in(browser):
    """Without a password step first, the second-factor page sends the visitor to sign in."""
    response = browser.get("/auth/second-factor")
    assert response.headers["Location"] == "/auth/login"


@pytest.mark.parametrize("role", ["supervisor", "admin"])
def test_enrolment_is_forced_when_not_enrolled(browser, make_user, role):
    """A supervisor or administrator without a second factor gets the enrolment page (QR code and
    key) after the password, and is not signed in before confirming a code."""
    user = make_user(role, mfa=False)
    response = password_step(browser, user)
    assert (response.status_code, response.headers["Location"]) == (302, "/auth/enrol")
    assert not is_signed_in(browser)
    page = browser.get("/auth/enrol").get_data(as_text=True)
    assert '<img src="data:image/svg+xml' in page
    assert "Your role requires a second factor." in page
    secret = SECRET_PATTERN.search(page).group(1)
    db.session.rollback()
    assert db.session.get(User, user.id).totp_secret == secret
    assert db.session.get(User, user.id).mfa_enabled is False
    assert not is_signed_in(browser)


def test_enrolment_confirms_a_code_and_gives_hashed_recovery_codes(browser, make_user):
    """Confirming a code from the new key turns the factor on, signs the user in and shows ten
    recovery codes once; the database holds only their SHA-256."""
    user = make_user("supervisor", mfa=False)
    password_step(browser, user)
    page = browser.get("/auth/enrol").get_data(as_text=True)
    secret = SECRET_PATTERN.search(page).group(1)
    assert browser.post("/auth/enrol", {"code": "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"}
                        ).status_code == 400
    response = browser.post("/auth/enrol", {"code": pyotp.TOTP(secret).now()})
    assert response.headers["Location"] == "/auth/recovery-codes"
    codes = RECOVERY_PATTERN.findall(browser.get("/auth/recovery-codes").get_data(as_text=True))
    assert len(set(codes)) == 10
    assert browser.get("/auth/recovery-codes").headers["Location"] == "/auth/account"  # shown once
    assert is_signed_in(browser)
    db.session.rollback()
    stored = db.session.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id)).all()
    assert sorted(stored) == sorted(hashlib.sha256(c.replace("-", "").encode()).hexdigest() for c in codes)
    assert not set(stored) & {c.replace("-", "") for c in codes}
    assert db.session.get(User, user.id).mfa_enabled is True
    assert EventCode.MFA_ENROLLED in audit_codes(user)


def test_a_recovery_code_works_once(app, make_user):
    """A recovery code replaces the TOTP code for one sign-in; used again it is refused."""
    user = make_user("admin", mfa=False)
    browser = Browser(app.test_client())
    password_step(browser, user)
    _secret, codes = enrol(browser)
    sign_out(browser)
    password_step(browser, user)
    assert browser.post("/auth/second-factor", {"code": codes[3].upper()}).headers["Location"] == "/"
    assert is_signed_in(browser)
    sign_out(browser)
    password_step(browser, user)
    assert browser.post("/auth/second-factor", {"code": codes[3]}).status_code == 401
    assert not is_signed_in(browser)
    assert browser.post("/auth/second-factor", {"code": codes[4]}).status_code == 302
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.code == EventCode.RECOVERY_CODE_USED)
                               .order_by(AuditEvent.id)).all()
    assert [e.details["remaining"] for e in event] == [9, 8]


def test_an_enrolment_key_is_never_shown_to_a_later_sign_in(app, make_user):
    """A key shown on an enrolment page that was never confirmed is replaced for the next
    sign-in: whoever saw it first (someone who had the password) cannot predict the codes."""
    user = make_user("supervisor", mfa=False)
    first = Browser(app.test_client())
    password_step(first, user)
    seen_first = SECRET_PATTERN.search(first.get("/auth/enrol").get_data(as_text=True)).group(1)
    second = Browser(app.test_client())
    password_step(second, user)
    seen_second = SECRET_PATTERN.search(second.get("/auth/enrol").get_data(as_text=True)).group(1)
    assert seen_second != seen_first
    assert second.post("/auth/enrol", {"code": pyotp.TOTP(seen_first).now()}).status_code == 400
    assert second.post("/auth/enrol", {"code": pyotp.TOTP(seen_second).now()}).status_code == 302


def test_second_factor_is_optional_for_other_roles_but_then_required(app, make_user):
    """A caseworker signs in with the password alone, may turn a second factor on from the account
    page, and from then on must give a code too."""
    user = make_user("caseworker")
    browser = Browser(app.test_client())
    browser.login(user)
    assert "Set up a second factor" in browser.get("/auth/account").get_data(as_text=True)
    secret, codes = enrol(browser)
    assert len(codes) == 10
    sign_out(browser)
    assert password_step(browser, user).headers["Location"] == "/auth/second-factor"
    assert not is_signed_in(browser)
    browser.post("/auth/second-factor", {"code": pyotp.TOTP(secret).at(utcnow(), counter_offset=1)})
    assert is_signed_in(browser)


def test_reloading_the_enrolment_page_keeps_its_key(browser, make_user):
    """Within one sign-in the key stays the same on reload, so a key already scanned still works."""
    user = make_user("supervisor", mfa=False)
    password_step(browser, user)
    first = SECRET_PATTERN.search(browser.get("/auth/enrol").get_data(as_text=True)).group(1)
    again = SECRET_PATTERN.search(browser.get("/auth/enrol").get_data(as_text=True)).group(1)
    assert again == first
    assert browser.post("/auth/enrol", {"code": pyotp.TOTP(first).now()}).status_code == 302
