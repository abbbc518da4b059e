"""register_claim triages the new case with triage's NewCaseTriage and appends CASE_TRIAGED in
the same INSERT as the registration's events: the outcome must stay exactly what triage_case
gives, and the events one gap-free chain in the same order."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.audit.verify import verify_audit_trail
from app.extensions import db
from app.intake import services
from app.intake.models import Case
from app.triage.models import TriageRecord
from app.triage.services import triage_case
from tests.conftest import captured_statements
from tests.integration.test_import_batch import claim, officer  # noqa: F401 - the fixture


@pytest.mark.parametrize("shape", [{}, {"border": True}, {"family_members": True, "document": None}])
def test_registration_triage_is_what_triage_case_gives(app, officer, shape):  # noqa: F811
    """The record and case fields written at registration equal those triage_case writes for
    the same stored case."""
    case_id = services.register_claim(claim(**shape), acting_user=officer).case.id
    db.session.expire_all()
    first = db.session.scalars(select(TriageRecord).where(TriageRecord.case_id == case_id)).one()
    case = db.session.get(Case, case_id)
    registered = (case.track, case.statutory_deadline, case.priority, case.ruleset_label, case.track_overridden)
    again = triage_case(case, acting_user=officer, trigger="registration")
    db.session.commit()
    fields = ("ruleset_label", "track", "deadline", "deadline_description", "trigger", "grounds", "facts",
              "created_by_id")
    assert {f: getattr(again, f) for f in fields} == {f: getattr(first, f) for f in fields}
    assert (case.track, case.statutory_deadline, case.priority, case.ruleset_label,
            case.track_overridden) == registered
    assert case.triaged_at is not None and case.track is not None


def test_registration_events_in_one_insert_and_in_order(app, officer):  # noqa: F811
    """CASE_REGISTERED, the duplicate decision, then CASE_TRIAGED naming the stored record: one
    INSERT of events and one move of the chain head for the whole registration."""
    services.register_claim(claim(), acting_user=officer)
    with captured_statements() as seen:
        result = services.register_claim(claim(), acting_user=officer, duplicate_decisions={0: "new"})
    writes = [s.split("(")[0].split(" SET")[0].strip() for s in seen if s.lstrip().upper().startswith(("INSERT",
                                                                                                        "UPDATE"))]
    assert writes.count("INSERT INTO audit_event") == 1
    assert writes.count("UPDATE audit_chain_head") == 1
    codes = db.session.scalars(select(AuditEvent.code).where(AuditEvent.subject_id == result.case.id)
                               .order_by(AuditEvent.id)).all()
    assert codes == [EventCode.CASE_REGISTERED, EventCode.DUPLICATE_CONFIRMED_NEW,
                                        EventCode.CASE_TRIAGED]
    triaged = db.session.scalars(select(AuditEvent).where(AuditEvent.subject_id == result.case.id,
                                                          AuditEvent.code == EventCode.CASE_TRIAGED)).one()
    record = db.session.scalars(select(TriageRecord).where(TriageRecord.case_id == result.case.id)).one()
    assert triaged.details["record"] == record.id and triaged.details["track"] == record.track
    assert verify_audit_trail().ok
