"""Shared helpers for the decision tests (no tests here): register a case through intake, walk it
along the lifecycle through the decision services, read audit events and letter text."""

from __future__ import annotations

import io
import itertools
from datetime import UTC, date, datetime, timedelta

from pypdf import PdfReader
from sqlalchemy import select

from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.decisions import services
from app.decisions.models import Decision, DecisionLetter
from app.extensions import db
from app.intake.models import Case
from app.intake.services import register_claim

TODAY = date.today()


def days_ago(days: int) -> str:
    return (TODAY - timedelta(days=days)).isoformat()


def person(family: str, given: str, *, dob: str = "1990-03-05", sex: str = "F", nationality: str = "SYR",
           language: str | None = "ara", interpreter: bool = True, gender: str = "female",
           principal: bool = True, relationship: str | None = None, original_script_name: str | None = None) -> dict:
    identity = {"family_name": family, "given_names": given}
    if original_script_name:
        identity["original_script_name"] = original_script_name
    data = {"principal": principal, "identity": identity, "birth": {"date_of_birth": dob, "sex": sex},
            "nationality": {"nationalities": [nationality]},
            "language": {"preferred_language": language, "interpreter_needed": interpreter and bool(language),
                         "interpreter_gender": gender}}
    if relationship:
        data["relationship"] = relationship
    return data


def register(officer, *persons: dict) -> Case:
    """A case registered through intake (triage runs as part of registration)."""
    payload = {"made_on": days_ago(3), "registered_on": days_ago(2),
               "persons": list(persons) or [person("Haddad", "Rania")]}
    every_new = {position: "new" for position in range(len(payload["persons"]))}
    return register_claim(payload, acting_user=officer, duplicate_decisions=every_new).case


def staff_of(make_user):
    """(registration officer, caseworker, supervisor) of the default office."""
    return make_user("registration_officer"), make_user("caseworker"), make_user("supervisor")


def fresh(case_id: str) -> Case:
    db.session.expire_all()
    return db.session.get(Case, case_id)


def assign(case_id: str, user, *, track: str | None = "regular") -> Case:
    """Put the case in a track and assign it directly (the queues are another package's), then
    take the lifecycle step."""
    case = fresh(case_id)
    if track is not None:
        case.track = track
    case.assigned_to_id = user.id
    db.session.commit()
    return services.transition(case_id, "assigned", acting_user=user)


def later(hours: float = 0, days: int = 0) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(hours=hours, days=days)


_SLOTS = itertools.count()


DEFAULT = "default"


def interview(case_id: str, caseworker, *, start: datetime | None = None, minutes: int = 120,
              interpreter_name: str | None = DEFAULT, record: bool = True, **options):
    # Each default booking gets its own slot, so helpers never double-book the interpreter.
    starts = start or later(days=1, hours=3 * next(_SLOTS))
    if interpreter_name == DEFAULT:
        needs = fresh(case_id).principal.language or {}
        interpreter_name = "Samira Interpreter" if needs.get("interpreter_needed") else None
    booked = services.schedule_interview(case_id, acting_user=caseworker, person_id=None, starts_at=starts,
                                         duration_minutes=minutes, remote=options.pop("remote", False),
                                         place=options.pop("place", "Room 4"), interpreter_name=interpreter_name,
                                         **options)
    if record:
        services.record_interview(booked.id, acting_user=caseworker, attendance="attended",
                                  notes="The applicant described the events of March.",
                                  now=starts + timedelta(minutes=minutes))
    return booked


def draft_all(case_id: str, caseworker, *, outcome: str = "refugee_status", reasons: str | None = "Credible account.",
              legal_basis=("QR-REFUGEE",)) -> list[Decision]:
    case = fresh(case_id)
    return [services.save_draft(case_id, acting_user=caseworker, person_id=p.id, outcome=outcome,
                                legal_basis=list(legal_basis), reasons=reasons) for p in case.persons]


def approve_all(case_id: str, supervisor) -> None:
    for decision in db.session.scalars(select(Decision).where(Decision.case_id == case_id,
                                                              Decision.status == "submitted")).all():
        services.review_decision(decision.id, acting_user=supervisor, action="approve")


def to_under_review(case_id: str, caseworker, **draft_options) -> None:
    interview(case_id, caseworker)
    draft_all(case_id, caseworker, **draft_options)
    services.submit_for_review(case_id, acting_user=caseworker)


def to_issued(case_id: str, caseworker, supervisor, **draft_options) -> list[Decision]:
    to_under_review(case_id, caseworker, **draft_options)
    approve_all(case_id, supervisor)
    return services.issue_decisions(case_id, acting_user=caseworker)


def to_notified(case_id: str, caseworker, supervisor, *, served_on: date | None = None, **draft_options):
    issued = to_issued(case_id, caseworker, supervisor, **draft_options)
    services.record_service(case_id, acting_user=caseworker, served_on=served_on or TODAY, method="in_person")
    return issued


def events(code: EventCode, subject_id: str | None = None) -> list[AuditEvent]:
    db.session.rollback()
    query = select(AuditEvent).where(AuditEvent.code == code)
    if subject_id is not None:
        query = query.where(AuditEvent.subject_id == subject_id)
    return db.session.scalars(query.order_by(AuditEvent.id)).all()


def transitions(case_id: str) -> list[tuple[str, str]]:
    return [(e.details["from"], e.details["to"]) for e in events(EventCode.CASE_TRANSITION, case_id)]


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def letters_of(case_id: str) -> list[DecisionLetter]:
    return db.session.scalars(select(DecisionLetter).join(Decision, Decision.id == DecisionLetter.decision_id)
                              .where(Decision.case_id == case_id)).all()
