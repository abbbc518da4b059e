"""Drafting's CPU diet (workload W5) keeps every guarantee: after a draft the session keeps only
the acting user and the new decision loaded (everything else it held is expired as after any
commit), the audit event is one Core INSERT in the same transaction (nothing of it left pending
in the session), and a failure after ``record`` leaves neither the draft nor its event."""

from __future__ import annotations

import pytest
from sqlalchemy import func, inspect, select

from app.audit.codes import EventCode
from app.audit.models import AuditChainHead, AuditEvent
from app.audit.services import record
from app.audit.verify import verify_audit_trail
from app.decisions import services
from app.decisions.models import Decision
from app.extensions import db
from app.intake.models import Case
from tests.conftest import captured_statements
from test_decisions_speed_drafting import draft, interviewed_case


def test_a_second_draft_in_the_same_session_does_not_reload_the_acting_user(app, make_user):
    """Two drafts one after the other in one session (an import, a CLI, the benchmark): the
    second issues no read of the user's account; the returned decision is readable without a
    query and holds what was written."""
    case, worker = interviewed_case(make_user, people=2)
    first_person, second_person = (p.id for p in case.persons)
    draft(case.id, worker, first_person)
    with captured_statements() as seen:
        saved = draft(case.id, worker, second_person, reasons="Written reasons.")
    assert not any("FROM user_account" in s for s in seen), seen
    with captured_statements() as seen:
        assert (saved.person_id, saved.status, saved.outcome, saved.legal_basis) == (
            second_person, "draft", "refugee_status", ["QR-REFUGEE"])
        assert saved.reasons == "Written reasons."
    assert seen == []
    db.session.expire_all()
    stored = db.session.get(Decision, saved.id)
    assert (stored.person_id, stored.reasons, stored.version) == (second_person, "Written reasons.", saved.version)


def test_a_new_draft_is_one_insert_and_the_returned_entity_holds_the_stored_row(app, make_user):
    """The new draft is written with one INSERT before the commit (nothing left for the flush),
    the returned decision is a persistent entity of the session, every column of it equals the
    stored row, and the reasons are stored encrypted (bound to the row: they decrypt on a fresh
    load)."""
    case, worker = interviewed_case(make_user, people=2)
    first_person, second_person = (p.id for p in case.persons)
    draft(case.id, worker, first_person)
    with captured_statements() as seen:
        saved = draft(case.id, worker, second_person, outcome="rejected_unfounded", reasons="Not credible.")
    assert sum(s.lstrip().upper().startswith("INSERT INTO DECISION") for s in seen) == 1
    assert inspect(saved).persistent and saved in db.session
    stored = db.session.execute(select(Decision.__table__).where(Decision.__table__.c.id == saved.id)).mappings().one()
    for prop in Decision.__mapper__.column_attrs:
        assert getattr(saved, prop.key) == stored[prop.columns[0].key], prop.key
    assert stored["reasons"] is not None and b"Not credible." not in bytes(stored["reasons"])
    db.session.expire_all()
    assert db.session.get(Decision, saved.id).reasons == "Not credible."


def test_what_else_the_session_held_is_expired_after_a_draft(app, make_user):
    """Only the acting user and the written decision stay loaded: a case the caller loaded
    before is expired like after any commit, so it shows the version the draft moved it to."""
    case, worker = interviewed_case(make_user, people=2)
    first_person, second_person = (p.id for p in case.persons)
    draft(case.id, worker, first_person)
    loaded = db.session.get(Case, case.id)
    version_before = loaded.version
    saved = draft(case.id, worker, second_person)
    assert inspect(loaded).expired
    assert not inspect(worker).expired and not inspect(saved).expired
    assert loaded.version == version_before + 1


def test_record_inserts_its_event_at_once_and_leaves_nothing_pending(app, make_user):
    """``record`` writes its row with one INSERT in the caller's transaction, adds no object
    to the session, returns the sequence number, and a rollback takes the row away with the
    rest of the transaction."""
    user = make_user("caseworker")
    head = db.session.get(AuditChainHead, 1).seq
    db.session.commit()
    with captured_statements() as seen:
        seq = record(EventCode.CASE_UPDATED, actor=user, subject=("case", "x"), details={"n": 1})
    assert seq == head + 1
    assert sum(s.lstrip().upper().startswith("INSERT INTO AUDIT_EVENT") for s in seen) == 1
    assert not any(isinstance(obj, AuditEvent) for obj in db.session.new)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.id > head)) == 0
    assert db.session.get(AuditChainHead, 1).seq == head
    assert record(EventCode.CASE_UPDATED, actor=user, subject=("case", "y"), details={"n": 2}) == head + 1
    db.session.commit()
    event = db.session.get(AuditEvent, head + 1)
    assert (event.subject_id, event.details, event.actor_role) == ("y", {"n": 2}, "caseworker")
    assert verify_audit_trail().ok


def test_a_failure_after_the_event_leaves_neither_draft_nor_event(app, make_user, monkeypatch):
    """The version bump fails after the event was inserted: the draft, its event and the head
    move are all rolled back, and the chain verifies."""
    case, worker = interviewed_case(make_user, people=2)
    first_person, second_person = (p.id for p in case.persons)
    draft(case.id, worker, first_person)
    head = db.session.get(AuditChainHead, 1).seq
    db.session.commit()

    def failing_bump(*_args, **_kwargs):
        raise RuntimeError("injected failure after the audit event")

    monkeypatch.setattr(services, "_bump_version", failing_bump)
    with pytest.raises(RuntimeError, match="injected"):
        draft(case.id, worker, second_person)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Decision).where(Decision.case_id == case.id)) == 1
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.id > head)) == 0
    assert db.session.get(AuditChainHead, 1).seq == head
    assert verify_audit_trail().ok
