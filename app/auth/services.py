"""Account services: sign-in, second factor, passwords, and user administration.

Every function here owns its transaction: it changes what it must, records the audit event in
the same transaction, and commits once. Actors are passed in (``acting_user=``); nothing here
reads ``request`` or ``current_user``.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass, field
from enum import Enum

import pyotp
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from app.audit.codes import EventCode
from app.audit.services import record, record_and_commit
from app.auth.models import Office, RecoveryCode, User
from app.auth.passwords import (burn_equivalent_time, hash_password, needs_rehash, password_problems,
                                verify_password)
from app.auth.permissions import Role
from app.auth.sessions import end_all_sessions
from app.db_types import utcnow
from app.extensions import db

RECOVERY_CODE_COUNT = 10
USERNAME_PATTERN_HELP = "3-64 characters: lower-case letters, digits, dot, dash, underscore"


class ValidationFailed(Exception):
    """Input refused. ``errors`` maps field names to messages (every failure, not only the first)."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("validation failed: " + ", ".join(sorted(errors)))
        self.errors = errors


class LoginStatus(Enum):
    OK = "ok"
    SECOND_FACTOR_NEEDED = "second_factor_needed"
    ENROLMENT_NEEDED = "enrolment_needed"
    FAILED = "failed"


@dataclass
class LoginAttempt:
    status: LoginStatus
    user: User | None = None
    messages: list[str] = field(default_factory=list)


def _find_user(username: str) -> User | None:
    name = username.strip().lower()
    if _has_control_characters(name):
        # No account has one (usernames are checked at creation), and PostgreSQL refuses a NUL
        # in a query parameter outright: answer "unknown" without asking the database.
        return None
    return db.session.execute(select(User).where(User.username == name)).scalar_one_or_none()


# Embeddings, overrides and isolates: they make a name display as something it is not.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _has_control_characters(value: str) -> bool:
    """Control characters (NUL above all: PostgreSQL text cannot store it) or bidirectional
    overrides. Joiners (U+200C/U+200D) stay allowed: Persian and Indic names need them."""
    return any(unicodedata.category(c) == "Cc" or c in _BIDI_CONTROLS for c in value)


def _validate_name(value: str, *, limit: int, message: str) -> list[str]:
    if not (1 <= len(value) <= limit):
        return [message]
    if _has_control_characters(value):
        return [_("Remove the control characters (tabs, line breaks, direction overrides) from this name.")]
    return []


def check_password_step(username: str, password: str) -> LoginAttempt:
    """First step of signing in. Unknown user, wrong password and deactivated account all give
    FAILED with the same message and (through a dummy Argon2 verification) the same time. A
    correct password on a weaker-than-configured hash is rehashed. Failures are audited."""
    user = _find_user(username) if username else None
    if user is None:
        burn_equivalent_time(password)
        record_and_commit(EventCode.LOGIN_FAILED, outcome="failure", details={"reason": "unknown user"})
        return LoginAttempt(LoginStatus.FAILED)
    if not verify_password(user.password_hash, password) or not user.active:
        reason = "inactive account" if user.active is False else "wrong password"
        record_and_commit(EventCode.LOGIN_FAILED, actor=user, subject=("user", user.id),
                          outcome="failure", details={"reason": reason})
        return LoginAttempt(LoginStatus.FAILED)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        db.session.commit()
    if user.mfa_enabled:
        return LoginAttempt(LoginStatus.SECOND_FACTOR_NEEDED, user)
    if user.mfa_required:
        return LoginAttempt(LoginStatus.ENROLMENT_NEEDED, user)
    return LoginAttempt(LoginStatus.OK, user)


def record_login(user: User, *, method: str) -> None:
    """The user is signed in (password, plus second factor where used): audit and stamp it."""
    user.last_login_at = utcnow()
    record(EventCode.LOGIN_SUCCEEDED, actor=user, subject=("user", user.id), details={"method": method})
    db.session.commit()


def _totp(user: User) -> pyotp.TOTP:
    return pyotp.TOTP(user.totp_secret)


def _hash_recovery_code(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").strip().lower().encode()).hexdigest()


def check_second_factor(user: User, code: str) -> bool:
    """Accept a current TOTP code (one step of clock drift either way) or an unused recovery
    code. A TOTP code is accepted once: its time step must be later than the last accepted one.
    Failures and recovery-code use are audited."""
    code = (code or "").strip().replace(" ", "")
    if code.isdigit() and len(code) == 6 and user.totp_secret:
        totp = _totp(user)
        now = utcnow()
        for drift in (0, -1, 1):
            step = totp.timecode(now) + drift
            if secrets.compare_digest(totp.generate_otp(step), code) and step > (user.totp_last_step or -1):
                user.totp_last_step = step
                db.session.commit()
                return True
    elif len(code) >= 10:
        recovery = db.session.execute(select(RecoveryCode).where(
            RecoveryCode.user_id == user.id, RecoveryCode.code_hash == _hash_recovery_code(code),
            RecoveryCode.used_at.is_(None))).scalar_one_or_none()
        if recovery is not None:
            recovery.used_at = utcnow()
            remaining = db.session.scalar(select(func.count()).where(
                RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)))
            record(EventCode.RECOVERY_CODE_USED, actor=user, subject=("user", user.id),
                   details={"remaining": remaining})
            db.session.commit()
            return True
    record_and_commit(EventCode.MFA_FAILED, actor=user, subject=("user", user.id), outcome="failure")
    return False


def start_totp_enrolment(user: User) -> None:
    """Give the user a new (unconfirmed) TOTP secret. The second factor stays off until
    ``confirm_totp_enrolment`` sees a valid code from it."""
    user.totp_secret = pyotp.random_base32()
    user.totp_confirmed_at = None
    user.totp_last_step = None
    db.session.commit()


def enrolment_key_fingerprint(user: User) -> str | None:
    """SHA-256 of the user's pending TOTP key. The enrolment page keeps it in the session that
    was shown the key, so only that session can confirm it; the key itself stays encrypted in
    the user row and never enters the session store."""
    return hashlib.sha256(user.totp_secret.encode()).hexdigest() if user.totp_secret else None


def provisioning_uri(user: User) -> str:
    """otpauth:// URI of the user's TOTP secret, for the enrolment QR code."""
    return _totp(user).provisioning_uri(name=user.username, issuer_name=current_app.config["TOTP_ISSUER"])


def confirm_totp_enrolment(user: User, code: str) -> list[str] | None:
    """Switch the second factor on when ``code`` matches the pending secret; returns fresh
    recovery codes (shown once, stored hashed), or None when the code is wrong."""
    if not user.totp_secret or not check_second_factor(user, code):
        return None
    user.totp_confirmed_at = utcnow()
    codes = _replace_recovery_codes(user)
    record(EventCode.MFA_ENROLLED, actor=user, subject=("user", user.id))
    db.session.commit()
    return codes


def _replace_recovery_codes(user: User) -> list[str]:
    db.session.execute(RecoveryCode.__table__.delete().where(RecoveryCode.user_id == user.id))
    codes = []
    for _i in range(RECOVERY_CODE_COUNT):
        raw = secrets.token_hex(5)  # 40 bits each, 10 hex characters
        codes.append(f"{raw[:5]}-{raw[5:]}")
        db.session.add(RecoveryCode(user_id=user.id, code_hash=_hash_recovery_code(raw)))
    return codes


def logout(user: User) -> None:
    """End every session of the user (SECURITY.md: logout ends all of that user's sessions)."""
    end_all_sessions(user.id)
    record(EventCode.LOGOUT, actor=user, subject=("user", user.id))
    db.session.commit()


def change_password(user: User, *, current_password: str, new_password: str) -> None:
    """Change one's own password; all of the user's sessions end. ValidationFailed on a wrong
    current password or a new password the policy refuses."""
    errors: dict[str, list[str]] = {}
    if not verify_password(user.password_hash, current_password):
        errors["current_password"] = [_("The current password is not correct.")]
    problems = password_problems(new_password, username=user.username)
    if problems:
        errors["new_password"] = problems
    if errors:
        raise ValidationFailed(errors)
    user.password_hash = hash_password(new_password)
    user.password_changed_at = utcnow()
    end_all_sessions(user.id)
    record(EventCode.PASSWORD_CHANGED, actor=user, subject=("user", user.id))
    db.session.commit()


def set_locale(user: User, locale: str) -> None:
    """Remember the user's language."""
    if locale not in current_app.config["LANGUAGES"]:
        raise ValidationFailed({"locale": [_("Unknown language.")]})
    user.locale = locale
    db.session.commit()


# -- administration -----------------------------------------------------------------------------

def _validate_username(username: str) -> list[str]:
    if not (3 <= len(username) <= 64) or not all(c.isascii() and (c.isalnum() or c in "._-") for c in username) \
            or username != username.lower():
        return [_("Use 3 to 64 characters: lower-case letters, digits, dot, dash or underscore.")]
    if _find_user(username) is not None:
        return [_("This username is already taken.")]
    return []


def _validate_role(role: str) -> list[str]:
    return [] if role in {r.value for r in Role} else [_("Choose one of the listed roles.")]


def _validate_office(office_id) -> list[str]:
    return [] if office_id and db.session.get(Office, office_id) else [_("Choose an office.")]


def _add_user(*, username: str, full_name: str, role: str, office_id: int, password: str,
              acting_user: User | None) -> User:
    """Check every field (all failures reported together), then add the user and its audit event
    to the current transaction. No commit."""
    username = (username or "").strip()
    full_name = (full_name or "").strip()
    errors = {
        "username": _validate_username(username),
        "full_name": _validate_name(full_name, limit=200,
                                    message=_("Enter the person's full name (up to 200 characters).")),
        "role": _validate_role(role),
        "office_id": _validate_office(office_id),
        "password": password_problems(password or "", username=username),
    }
    errors = {k: v for k, v in errors.items() if v}
    if errors:
        raise ValidationFailed(errors)
    user = User(username=username, full_name=full_name, role=role, office_id=office_id,
                password_hash=hash_password(password), active=True)
    db.session.add(user)
    db.session.flush()
    record(EventCode.USER_CREATED, actor=acting_user, subject=("user", user.id),
           details={"role": role, "office_id": office_id, "via": "cli" if acting_user is None else "web"})
    return user


def create_user(*, username: str, full_name: str, role: str, office_id: int, password: str,
                acting_user: User | None) -> User:
    """Create an account. Every field is checked and every failure reported together
    (ValidationFailed); nothing is saved unless all pass. ``acting_user`` None means the CLI."""
    user = _add_user(username=username, full_name=full_name, role=role, office_id=office_id,
                     password=password, acting_user=acting_user)
    db.session.commit()
    return user


def create_user_with_office(*, office_code: str, office_name: str, username: str, full_name: str, role: str,
                            password: str, acting_user: User | None) -> User:
    """Create an office and its first account in one transaction (the first administrator, from
    the CLI): when either is refused, neither is saved."""
    try:
        office = _add_office(code=office_code, name=office_name, acting_user=acting_user)
        user = _add_user(username=username, full_name=full_name, role=role, office_id=office.id,
                         password=password, acting_user=acting_user)
    except ValidationFailed:
        db.session.rollback()
        raise
    db.session.commit()
    return user


def change_assignment(user: User, *, role: str, office_id: int, acting_user: User | None) -> None:
    """Give a user another role and/or office in one transaction: both are checked first, so a
    refused office never leaves a changed role behind. Any change ends the user's sessions so the
    new rights and scope apply at once. Nobody changes their own role."""
    errors = {}
    if role_errors := _validate_role(role):
        errors["role"] = role_errors
    elif acting_user is not None and user.id == acting_user.id and role != user.role:
        errors["role"] = [_("You cannot change your own role.")]
    if office_errors := _validate_office(office_id):
        errors["office_id"] = office_errors
    if errors:
        raise ValidationFailed(errors)
    old_role, old_office = user.role, user.office_id
    if (old_role, old_office) == (role, office_id):
        return
    user.role, user.office_id = role, office_id
    end_all_sessions(user.id)
    if old_role != role:
        record(EventCode.USER_ROLE_CHANGED, actor=acting_user, subject=("user", user.id),
               details={"role": {"old": old_role, "new": role}})
    if old_office != office_id:
        record(EventCode.USER_OFFICE_CHANGED, actor=acting_user, subject=("user", user.id),
               details={"office_id": {"old": old_office, "new": office_id}})
    db.session.commit()


def change_role(user: User, *, role: str, acting_user: User | None) -> None:
    """Give a user another role (office unchanged); see ``change_assignment``."""
    change_assignment(user, role=role, office_id=user.office_id, acting_user=acting_user)


def change_office(user: User, *, office_id: int, acting_user: User | None) -> None:
    """Move a user to another office (role unchanged); see ``change_assignment``."""
    change_assignment(user, role=user.role, office_id=office_id, acting_user=acting_user)


def set_active(user: User, *, active: bool, acting_user: User | None) -> None:
    """Deactivate (sessions end at once) or reactivate an account. Nobody deactivates themself."""
    if acting_user is not None and user.id == acting_user.id and not active:
        raise ValidationFailed({"active": [_("You cannot deactivate your own account.")]})
    if user.active == active:
        return
    user.active = active
    if not active:
        end_all_sessions(user.id)
    record(EventCode.USER_REACTIVATED if active else EventCode.USER_DEACTIVATED,
           actor=acting_user, subject=("user", user.id))
    db.session.commit()


def reset_second_factor(user: User, *, acting_user: User | None) -> None:
    """Remove a user's second factor (lost phone); they enrol again at next sign-in."""
    user.totp_secret = None
    user.totp_confirmed_at = None
    user.totp_last_step = None
    db.session.execute(RecoveryCode.__table__.delete().where(RecoveryCode.user_id == user.id))
    end_all_sessions(user.id)
    record(EventCode.MFA_RESET, actor=acting_user, subject=("user", user.id))
    db.session.commit()


def _add_office(*, code: str, name: str, acting_user: User | None) -> Office:
    """Check the code and name, then add the office and its audit event to the current
    transaction. No commit."""
    code = (code or "").strip().upper()
    name = (name or "").strip()
    errors = {}
    if not (1 <= len(code) <= 16) or not code.replace("-", "").isalnum():
        errors["code"] = [_("Use 1 to 16 letters, digits or dashes.")]
    elif db.session.execute(select(Office).where(Office.code == code)).scalar_one_or_none():
        errors["code"] = [_("This office code exists already.")]
    if name_errors := _validate_name(name, limit=200, message=_("Enter the office name (up to 200 characters).")):
        errors["name"] = name_errors
    if errors:
        raise ValidationFailed(errors)
    office = Office(code=code, name=name)
    db.session.add(office)
    db.session.flush()
    record(EventCode.SETTINGS_CHANGED, actor=acting_user, subject=("office", office.id),
           details={"created": {"code": code}})
    return office


def create_office(*, code: str, name: str, acting_user: User | None) -> Office:
    """Create an office (regional unit). ValidationFailed names every refused field."""
    office = _add_office(code=code, name=name, acting_user=acting_user)
    db.session.commit()
    return office


def record_access_denied(*, acting_user: User | None, endpoint: str | None, reason: str) -> None:
    """Audit a refused request (its own transaction: nothing else was changed)."""
    db.session.rollback()
    record_and_commit(EventCode.ACCESS_DENIED, actor=acting_user, outcome="denied",
                      details={"endpoint": endpoint, "reason": reason})


def record_throttled() -> None:
    """Audit a login refused by the rate limiter (the username is not stored: it may be a typo
    of a password)."""
    record_and_commit(EventCode.LOGIN_THROTTLED, outcome="denied")


