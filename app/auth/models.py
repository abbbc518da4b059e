"""Accounts: offices, users, recovery codes and server-side web sessions."""

from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.auth.permissions import Permission, Role, role_has
from app.crypto import EncryptedText
from app.db_types import UTCDateTime, utcnow
from app.extensions import db

ROLE_VALUES = tuple(r.value for r in Role)


class Office(db.Model):
    """A regional unit of the authority. Users and cases belong to one; access is scoped by it."""

    __tablename__ = "office"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<Office {self.code}>"


class User(UserMixin, db.Model):
    """A member of staff. Password hash is Argon2id; the TOTP secret is encrypted at rest."""

    __tablename__ = "user_account"
    __table_args__ = (
        CheckConstraint(f"role IN ({', '.join(repr(r) for r in ROLE_VALUES)})", name="role_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    locale: Mapped[str | None] = mapped_column(String(8))
    totp_secret = EncryptedText()
    totp_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last accepted TOTP time step: a code is accepted only for a later step (works once).
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    office: Mapped[Office] = relationship(lazy="joined")

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role}>"

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return bool(self.active)

    @property
    def mfa_enabled(self) -> bool:
        return self.totp_confirmed_at is not None

    @property
    def mfa_required(self) -> bool:
        from flask import current_app
        return self.role in current_app.config["MFA_REQUIRED_ROLES"]

    def can(self, permission: Permission) -> bool:
        return self.active and role_has(self.role, permission)


class RecoveryCode(db.Model):
    """One-time second-factor recovery code, stored as SHA-256 of a 50-bit random code (the codes
    are random, so a fast hash is enough: there is nothing to brute-force from a dictionary)."""

    __tablename__ = "recovery_code"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebSession(db.Model):
    """Server-side session. The cookie holds a random token; only its SHA-256 is stored here, so a
    database dump does not yield usable cookies. Deleting a row ends that session at once."""

    __tablename__ = "web_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
