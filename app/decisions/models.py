"""Interviews, decisions (one per person), reviews, letters, notifications and appeals.

Storage follows intake's sensitivity rule: procedural facts the queues and reports need (dates,
outcome, status, who did what) are plain columns; the interpreter's name is S2 and encrypted,
with a blind index so double bookings are found in SQL; interview notes, written reasons and
review comments are S3 and encrypted; letters are stored as encrypted PDF bytes.

An issued decision is never edited: a listener refuses any UPDATE of a row that was already
issued. A correction is a new decision pointing at the old one (``corrects_decision_id``);
notification and appeal live in their own rows so the issued decision stays untouched.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, LargeBinary, String, event, inspect
from sqlalchemy.orm import Mapped, mapped_column

from app.crypto import EncryptedBytes, EncryptedText, new_row_id
from app.db_types import UTCDateTime, utcnow
from app.extensions import db
from app.intake.models import RandomIdRow

# scheduled -> recorded (the applicant attended) | missed (did not appear) | cancelled (with a reason)
INTERVIEW_STATUSES = ("scheduled", "recorded", "missed", "cancelled")
CANCEL_REASONS = ("applicant_ill", "interpreter_unavailable", "caseworker_unavailable", "applicant_requested",
                  "other")
# Grounds for omitting the personal interview (APR 2024/1348 Art 13; APD 2013/32 Art 14(2)), and the
# decision on the file after a failure to appear without good reason.
OMISSION_GROUNDS = ("positive_decision", "unfit", "failed_to_appear", "other")
ATTENDANCE = ("attended", "absent_excused", "absent_unexcused")
INTERPRETER_GENDERS = ("any", "female", "male")
# draft -> submitted -> approved -> issued; submitted -> returned -> (edited) -> submitted
DECISION_STATUSES = ("draft", "submitted", "returned", "approved", "issued")
REVIEW_ACTIONS = ("approve", "return")
APPEAL_OUTCOMES = ("upheld", "overturned", "remitted")
SERVICE_METHODS = ("in_person", "post", "electronic", "representative")


class Interview(RandomIdRow, db.Model):
    """A personal interview of one person of a case. ``ends_at`` is stored (start + duration) so
    the overlap check is a plain indexed range query."""

    __tablename__ = "interview"
    __table_args__ = (
        db.Index("ix_interview_interviewer_time", "interviewer_id", "starts_at", "ends_at"),
        # Deleting a person (a dependant removed at intake) cascades here: without an index that
        # leads with person_id, each deleted person scanned the whole table (minutes at 1M cases).
        db.Index("ix_interview_person", "person_id"),
        db.Index("ix_interview_interpreter_time", "interpreter_bidx", "starts_at", "ends_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_row_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("asylum_case.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    interviewer_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    round: Mapped[int] = mapped_column(Integer, default=1)  # examination round (see services)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    remote: Mapped[bool] = mapped_column(Boolean, default=False)
    place: Mapped[str | None] = mapped_column(String(200))
    interpreter_language: Mapped[str | None] = mapped_column(String(3))  # ISO 639-3
    interpreter_gender: Mapped[str] = mapped_column(String(8), default="any")
    interpreter_name = EncryptedText()  # S2
    interpreter_bidx: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    attendance: Mapped[str | None] = mapped_column(String(24))
    notes = EncryptedText()  # S3: what the applicant said
    scheduled_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A cancelled interview is kept: why (CANCEL_REASONS; "other" with free text, which may say
    # something about the applicant's health: S3, encrypted), who and when.
    cancel_reason: Mapped[str | None] = mapped_column(String(32))
    cancel_details = EncryptedText()  # S3
    cancelled_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    def __repr__(self) -> str:
        return f"<Interview {self.id} {self.status}>"


class InterviewOmission(RandomIdRow, db.Model):
    """The personal interview omitted in one examination round of a case, on a legal ground
    (OMISSION_GROUNDS). At most one per case and round. The medical opinion's reference and the
    free text are S3 (health data): encrypted; the ground and the opinion's date are procedural."""

    __tablename__ = "interview_omission"
    __table_args__ = (db.UniqueConstraint("case_id", "round"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_row_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("asylum_case.id", ondelete="CASCADE"))
    round: Mapped[int] = mapped_column(Integer, default=1)
    ground: Mapped[str] = mapped_column(String(32))
    medical_opinion_on: Mapped[date | None] = mapped_column(Date)
    medical_opinion_reference = EncryptedText()  # S3
    details = EncryptedText()  # S3
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<InterviewOmission {self.id} {self.ground}>"


class Decision(RandomIdRow, db.Model):
    """The first-instance decision on one person's application, or a correction of an issued one."""

    __tablename__ = "decision"
    __table_args__ = (
        db.Index("ix_decision_case", "case_id", "person_id"),
        db.Index("ix_decision_person", "person_id"),  # the cascade from person, as for interview
        db.Index("ix_decision_review_queue", "status", "submitted_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_row_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("asylum_case.id", ondelete="CASCADE"))
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    # A copy of the case's office (which never changes): the reports find an office's decisions
    # of a period in one index, without reading a million cases (migration 0010).
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"))
    corrects_decision_id: Mapped[str | None] = mapped_column(ForeignKey("decision.id"), index=True)
    round: Mapped[int] = mapped_column(Integer, default=1)  # examination round: a remittal starts a new one
    status: Mapped[str] = mapped_column(String(16), default="draft")
    outcome: Mapped[str | None] = mapped_column(String(40))
    legal_basis: Mapped[list] = mapped_column(JSON, default=list)
    reasons = EncryptedText()  # S3
    drafted_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    last_edited_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Snapshot at issue: the appeal terms follow the track the decision was taken in.
    procedure_track: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    def __repr__(self) -> str:
        return f"<Decision {self.id} {self.status}>"


class IssuedDecisionModified(Exception):
    """An UPDATE of an issued decision was attempted: issued decisions are never edited."""


@event.listens_for(Decision, "before_update")
def _refuse_editing_issued(_mapper, _connection, target: Decision) -> None:
    state = inspect(target)
    if not any(attr.history.has_changes() for attr in state.attrs):
        return  # marked dirty without a net change: nothing will be written
    status = state.attrs.status.history
    was = status.deleted[0] if status.deleted else (status.unchanged[0] if status.unchanged else None)
    if was == "issued":
        raise IssuedDecisionModified("an issued decision is never edited: draft a correction instead")


class DecisionReview(RandomIdRow, db.Model):
    """A supervisor's review of a submitted decision: approve, or return with comments."""

    __tablename__ = "decision_review"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_row_id)
    decision_id: Mapped[str] = mapped_column(ForeignKey("decision.id", ondelete="CASCADE"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    action: Mapped[str] = mapped_column(String(16))
    comments = EncryptedText()  # may quote the reasons: S3
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DecisionLetter(RandomIdRow, db.Model):
    """The decision letter as issued: a PDF, encrypted at rest, in the applicant's language."""

    __tablename__ = "decision_letter"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_row_id)
    decision_id: Mapped[str] = mapped_column(ForeignKey("decision.id", ondelete="CASCADE"), index=True)
    language: Mapped[str] = mapped_column(String(3))  # ISO 639-3 of the letter
    pdf = EncryptedBytes()
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Notification(RandomIdRow, db.Model):
    """The date an issued decision was served: the appeal clock starts here."""

    __tablename__ = "decision_notification"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_row_id)
    decision_id: Mapped[str] = mapped_column(ForeignKey("decision.id", ondelete="CASCADE"), unique=True)
    served_on: Mapped[date] = mapped_column(Date)
    method: Mapped[str] = mapped_column(String(16))
    appeal_deadline: Mapped[date] = mapped_column(Date)
    suspensive_effect: Mapped[str] = mapped_column(String(16))
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Appeal(RandomIdRow, db.Model):
    """An appeal against an issued, served decision, and the appeal body's outcome."""

    __tablename__ = "appeal"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_row_id)
    decision_id: Mapped[str] = mapped_column(ForeignKey("decision.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("asylum_case.id", ondelete="CASCADE"), index=True)
    lodged_on: Mapped[date] = mapped_column(Date)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    days_late: Mapped[int] = mapped_column(Integer, default=0)
    court_reference: Mapped[str | None] = mapped_column(String(64))
    suspension_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome: Mapped[str | None] = mapped_column(String(16))
    decided_on: Mapped[date | None] = mapped_column(Date)
    lodged_recorded_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    decided_recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
