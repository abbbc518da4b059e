"""Cases and people as registered.

Sensitivity (shared/domain/REGISTRATION.md) decides the storage:
* S1 procedural data are plain columns, so queues and reports can filter and aggregate in SQL.
* S2 identifiers and S3 special-category data are encrypted, one ``EncryptedJSON`` per form
  section, so a page decrypts only the sections it shows, and S3 sections are never decrypted
  for roles that may not see them. Lookups go through blind indexes (``*_bidx``) and the
  duplicate-detection keys in ``person_match_key``.
* Two coarse statistical attributes are kept plain on purpose: ``stat_sex`` and
  ``stat_age_group`` (Eurostat's groups). The statistical returns need them in SQL; they identify
  nobody, unlike the date of birth, which stays encrypted.

Primary keys are random (uuid4 hex): they say nothing about identity or registration order, and
encrypted values are bound to them (associated data).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, JSON, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import false

from app.crypto import EncryptedJSON, new_row_id
from app.db_types import UTCDateTime, utcnow
from app.extensions import db

CASE_STATUSES = ("registered",)  # the lifecycle (issue Decisions) extends this list

S3_PERSON_SECTIONS = ("biometrics", "special_needs", "claim", "security")
S2_PERSON_SECTIONS = ("identity", "birth", "language", "contact", "documents", "history", "family")


class RandomIdRow:
    """Sets the random primary key first, before any encrypted attribute: ciphertexts are bound
    to the row id, so the id must never change after a value was encrypted."""

    def __init__(self, **kwargs):
        super().__init__(id=kwargs.pop("id", None) or new_row_id())
        for key, value in kwargs.items():
            setattr(self, key, value)


class Case(RandomIdRow, db.Model):
    __tablename__ = "asylum_case"
    __table_args__ = (
        db.Index("ix_asylum_case_office_status", "office_id", "status", "registered_on"),
        # The queues' indexes (partial, in the queues' order) are declared in app/triage/queues.py.
        db.Index("ix_asylum_case_assignee", "assigned_to_id", "status", "statutory_deadline"),
        db.Index("ix_asylum_case_deadline", "office_id", "statutory_deadline"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_row_id)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"))
    status: Mapped[str] = mapped_column(String(32), default="registered")
    made_on: Mapped[date] = mapped_column(Date)
    made_place: Mapped[str | None] = mapped_column(String(200))
    registered_on: Mapped[date] = mapped_column(Date)
    lodged_on: Mapped[date | None] = mapped_column(Date)
    good_cause_for_not_lodging: Mapped[bool] = mapped_column(Boolean, default=False)
    received_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    # Arrival facts used by queues and triage statistics (S1); dates and places are in `arrival`.
    location_context: Mapped[str] = mapped_column(String(32), default="inland")
    authorised_to_enter: Mapped[bool | None] = mapped_column(Boolean)
    fulfils_entry_conditions: Mapped[bool | None] = mapped_column(Boolean)
    presented_without_delay: Mapped[bool] = mapped_column(Boolean, default=True)
    principal_nationality: Mapped[str | None] = mapped_column(String(3), index=True)
    registration_delay_days: Mapped[int] = mapped_column(Integer, default=0)
    late_registration: Mapped[bool] = mapped_column(Boolean, default=False)
    # A subsequent application (a previous one was made): S1, for the Eurostat returns, which count
    # first-time and subsequent applicants apart. Set from the principal's application history.
    is_subsequent_application: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    special_needs_assessment_due: Mapped[date | None] = mapped_column(Date)
    representative_due: Mapped[date | None] = mapped_column(Date)
    arrival = EncryptedJSON()
    # Procedural assessment facts the rules read that registration does not collect (documents
    # judged false, statements inconsistent, ...): set by caseworkers, encrypted (may reveal S3).
    assessment = EncryptedJSON()
    # Triage outcome and queue position (S1; written by app/triage/services.py).
    track: Mapped[str | None] = mapped_column(String(40))
    track_overridden: Mapped[bool] = mapped_column(Boolean, default=False)
    statutory_deadline: Mapped[date | None] = mapped_column(Date)
    priority: Mapped[int] = mapped_column(Integer, default=0)  # higher first
    triaged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ruleset_label: Mapped[str | None] = mapped_column(String(100))
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    persons: Mapped[list[Person]] = relationship(back_populates="case", order_by="Person.position",
                                                 cascade="all, delete-orphan")

    __mapper_args__ = {"version_id_col": version}

    def __repr__(self) -> str:
        return f"<Case {self.reference}>"

    @property
    def principal(self) -> Person:
        return next(p for p in self.persons if p.is_principal)


class Person(RandomIdRow, db.Model):
    __tablename__ = "person"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_row_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("asylum_case.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    is_principal: Mapped[bool] = mapped_column(Boolean, default=False)
    # Nationality is S1: queues, triage statistics and the Eurostat returns need it in SQL.
    nationalities: Mapped[list] = mapped_column(JSON, default=list)
    stateless: Mapped[bool] = mapped_column(Boolean, default=False)
    former_habitual_residence: Mapped[str | None] = mapped_column(String(3))
    stat_sex: Mapped[str] = mapped_column(String(1))
    stat_age_group: Mapped[str] = mapped_column(String(8))
    minor_at_application: Mapped[bool] = mapped_column(Boolean, default=False)
    linked_person_id: Mapped[str | None] = mapped_column(String(32), index=True)  # confirmed duplicate of
    # S2 sections
    relationship_to_principal = EncryptedJSON()
    identity = EncryptedJSON()
    birth = EncryptedJSON()
    language = EncryptedJSON()
    contact = EncryptedJSON()
    documents = EncryptedJSON()
    history = EncryptedJSON()
    family = EncryptedJSON()
    # S3 sections
    biometrics = EncryptedJSON()
    special_needs = EncryptedJSON()
    claim = EncryptedJSON()
    security = EncryptedJSON()
    # Blind indexes (HMAC, truncated): exact lookups without decrypting the table.
    family_name_bidx: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True)
    given_names_bidx: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True)
    date_of_birth_bidx: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    case: Mapped[Case] = relationship(back_populates="persons")

    __mapper_args__ = {"version_id_col": version}

    def __repr__(self) -> str:
        return f"<Person {self.id}>"


class PersonMatchKey(db.Model):
    """Blind-indexed duplicate-detection keys (app/intake/matching.py makes them)."""

    __tablename__ = "person_match_key"
    # The duplicate check reads (key, person_id) for a registration's keys: from this index alone
    # (index-only on PostgreSQL, a covering index on SQLite), never the table (migration 0012).
    __table_args__ = (Index("ix_person_match_key_key_person", "key", "person_id"),)

    person_id: Mapped[str] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)


class DocumentNumberIndex(db.Model):
    """Blind index of identity document numbers (normalised), for search by document."""

    __tablename__ = "document_number_index"

    person_id: Mapped[str] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), primary_key=True)
    number_bidx: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True, index=True)


class RegistrationDraft(RandomIdRow, db.Model):
    """A registration saved before it is complete. The raw form data is kept encrypted as one
    JSON document; it becomes a case only through the full validation of a registration."""

    __tablename__ = "registration_draft"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_row_id)
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    payload = EncryptedJSON()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
