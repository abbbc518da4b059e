"""Demo accounts for development: one per role in two offices, so a newcomer can try every
journey and see office scoping. Refused outside development by the CLI that calls it."""

from __future__ import annotations

import secrets

import pyotp
from sqlalchemy import select
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from app.auth import services
from app.auth.models import Office, User
from app.auth.passwords import hash_password, password_problems
from app.auth.permissions import Role
from app.db_types import utcnow
from app.extensions import db

DEMO_OFFICES = (("HQ", "Headquarters"), ("NORTH", "Northern regional office"))
DEMO_ACCOUNTS = (
    ("registrar", "Rania Haddad", Role.REGISTRATION_OFFICER, "HQ"),
    ("caseworker", "Camille Martin", Role.CASEWORKER, "HQ"),
    ("supervisor", "Sipho Dlamini", Role.SUPERVISOR, "HQ"),
    ("auditor", "Astrid Nilsen", Role.AUDITOR, "HQ"),
    ("admin", "Ana Pereira", Role.ADMIN, "HQ"),
    ("registrar.north", "Nikolai Petrov", Role.REGISTRATION_OFFICER, "NORTH"),
    ("caseworker.north", "Nadia Rahman", Role.CASEWORKER, "NORTH"),
)


def demo_passphrase(username: str = "") -> str:
    """Five random common words: easy to type, about 60 bits. Drawn again in the rare case the
    policy refuses the draw (a word containing the username, a guessable combination)."""
    words = FREQUENCY_LISTS["english_wikipedia"][500:8000]
    while True:
        candidate = "-".join(secrets.choice(words) for _ in range(5))
        if not password_problems(candidate, username=username):
            return candidate


def create_demo_users() -> list[str]:
    """Create (or refresh) demo offices and accounts; returns the lines to print. Existing demo
    accounts get a new password each time, so the printed one always works."""
    offices = {}
    for code, name in DEMO_OFFICES:
        office = db.session.scalar(select(Office).where(Office.code == code))
        offices[code] = office or services.create_office(code=code, name=name, acting_user=None)
    lines = ["Demo sign-ins (development only):"]
    for username, full_name, role, office_code in DEMO_ACCOUNTS:
        password = demo_passphrase(username)
        user = db.session.scalar(select(User).where(User.username == username))
        if user is None:
            user = services.create_user(username=username, full_name=full_name, role=role,
                                        office_id=offices[office_code].id, password=password,
                                        acting_user=None)
        else:
            user.password_hash = hash_password(password)
            user.active = True
            db.session.commit()
        line = f"  {role.value:<21} {username:<17} {password}"
        if user.mfa_required:
            if not user.mfa_enabled:
                user.totp_secret = pyotp.random_base32()
                user.totp_confirmed_at = utcnow()
                db.session.commit()
            line += f"   second factor: `flask demo totp {username}` (secret {user.totp_secret})"
        lines.append(line)
    return lines


def current_demo_code(username: str) -> str:
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None or username not in {a[0] for a in DEMO_ACCOUNTS} or not user.totp_secret:
        return "no demo account with a second factor by that name"
    return pyotp.TOTP(user.totp_secret).now()
