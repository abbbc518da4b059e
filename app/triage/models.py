"""Triage state: the active ruleset, settings and reference data, each case's triage history,
the supervisor's override, and the case's place in the queues.

The track, deadline, priority and assignment live on ``asylum_case`` (plain S1 columns, indexed
for the queues). The grounds and the facts a triage used can reveal special-category data (a
security ground, a vulnerability), so they are kept encrypted in ``triage_record``.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.crypto import EncryptedJSON, EncryptedText, new_row_id
from app.db_types import UTCDateTime, utcnow
from app.extensions import db
from app.intake.models import RandomIdRow


class RulesetVersion(db.Model):
    """A ruleset document as activated (or tried). Exactly one row is active at a time."""

    __tablename__ = "triage_ruleset"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ruleset_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(32))
    document: Mapped[str] = mapped_column(Text)  # the YAML/JSON source, exactly as activated
    checksum: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    activated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (db.UniqueConstraint("ruleset_id", "version"),)


class TriageSetting(db.Model):
    """One context setting of TRIAGE.md ("Context"), edited by administrators."""

    __tablename__ = "triage_setting"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[object] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))


class RecognitionRate(db.Model):
    """EU-wide first-instance recognition rate of a nationality (refugee + subsidiary protection
    over all decisions; never national humanitarian status), with its source and date."""

    __tablename__ = "recognition_rate"

    nationality: Mapped[str] = mapped_column(String(3), primary_key=True)
    rate_pct: Mapped[float] = mapped_column(Numeric(5, 2))
    source: Mapped[str] = mapped_column(String(200))
    as_of: Mapped[date] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))


class SafeCountry(db.Model):
    """A designated safe country of origin (EU list or national list), with source and date."""

    __tablename__ = "safe_country"

    country: Mapped[str] = mapped_column(String(3), primary_key=True)
    designation: Mapped[str] = mapped_column(String(16))  # EU_list / national_list
    source: Mapped[str] = mapped_column(String(200))
    as_of: Mapped[date] = mapped_column(Date)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))


class TriageRecord(RandomIdRow, db.Model):
    """One triage of a case: the outcome, every ground, the ruleset, the deadline, the facts."""

    __tablename__ = "triage_record"
    __table_args__ = (db.Index("ix_triage_record_case", "case_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_row_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("asylum_case.id", ondelete="CASCADE"))
    ruleset_label: Mapped[str] = mapped_column(String(100))
    track: Mapped[str] = mapped_column(String(40))
    deadline: Mapped[date | None] = mapped_column(Date)
    deadline_description: Mapped[str | None] = mapped_column(String(200))
    trigger: Mapped[str] = mapped_column(String(32))  # registration / facts_changed / manual / ruleset
    grounds = EncryptedJSON()
    facts = EncryptedJSON()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))


class TrackOverride(RandomIdRow, db.Model):
    """A supervisor's decision to put a case in another track than the rules chose. Active until
    withdrawn; kept across re-triage."""

    __tablename__ = "track_override"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_row_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("asylum_case.id", ondelete="CASCADE"), index=True)
    track: Mapped[str] = mapped_column(String(40))
    reason = EncryptedText()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
