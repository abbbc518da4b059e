"""Interviews: booked in the future for an assigned case, with the interpreter the person needs;
never two at overlapping times for the same interviewer or interpreter; recorded once started,
with encrypted notes and the interpreter's name encrypted."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from app.audit.codes import EventCode
from app.decisions import services
from app.decisions.models import Interview
from app.extensions import db
from test_decisions_support import assign, events, fresh, interview, later, person, register


@pytest.fixture
def two_cases(app, make_user):
    officer, caseworker = make_user("registration_officer"), make_user("caseworker")
    first = register(officer, person("Haddad", "Rania"))
    second = register(officer, person("Tesfay", "Abeba", nationality="ERI", language="tir", gender="any"))
    assign(first.id, caseworker)
    assign(second.id, caseworker)
    return first, second, caseworker


def book(case_id, user, start, minutes=120, interpreter="Samira Interpreter", **options):
    return interview(case_id, user, start=start, minutes=minutes, interpreter_name=interpreter, record=False,
                     **options)


def test_interviewer_cannot_be_booked_twice(two_cases):
    """An overlapping interview for the same caseworker is refused; one starting when the other
    ends is fine."""
    first, second, caseworker = two_cases
    start = later(days=2)
    book(first.id, caseworker, start, interpreter=None)
    with pytest.raises(services.InvalidInput) as refused:
        book(second.id, caseworker, start + timedelta(minutes=119), interpreter=None, interpreter_language="tir")
    assert refused.value.errors == {"starts_at": ["The interviewer already has an interview at that time."]}
    assert fresh(second.id).status == "assigned"
    book(second.id, caseworker, start + timedelta(minutes=120), interpreter=None, interpreter_language="tir")
    assert db.session.query(Interview).count() == 2


def test_interpreter_cannot_be_booked_twice(two_cases, make_user):
    """The same interpreter (matched on the normalised name through a blind index, never in clear)
    cannot be booked by two caseworkers at overlapping times."""
    first, second, caseworker = two_cases
    colleague = make_user("caseworker")
    start = later(days=2)
    book(first.id, caseworker, start, interpreter="Samira Interpreter")
    with pytest.raises(services.InvalidInput) as refused:
        book(second.id, colleague, start - timedelta(minutes=30), interpreter="  samira  INTERPRETER ",
             interpreter_language="ara")
    assert refused.value.errors == {"interpreter_name": ["This interpreter is already booked at that time."]}
    book(second.id, colleague, start - timedelta(minutes=30), interpreter="Yonas Interpreter",
         interpreter_language="tir")
    raw = db.session.execute(text("SELECT interpreter_name FROM interview")).scalars().all()
    assert all(b"Interpreter" not in bytes(value) for value in raw)


def test_cancelled_interviews_do_not_block(two_cases):
    """A cancelled interview frees its slot."""
    first, second, caseworker = two_cases
    start = later(days=2)
    booked = book(first.id, caseworker, start, interpreter=None)
    row = db.session.get(Interview, booked.id)
    row.status = "cancelled"
    db.session.commit()
    book(second.id, caseworker, start, interpreter=None, interpreter_language="tir")


def test_booking_validation_reports_every_problem(two_cases):
    """Past time, bad duration, no place, a wrong language code: all reported, nothing booked."""
    first, _second, caseworker = two_cases
    with pytest.raises(services.InvalidInput) as refused:
        services.schedule_interview(first.id, acting_user=caseworker, person_id=None, starts_at=later(hours=-1),
                                    duration_minutes=5, remote=False, place="", interpreter_language="arabic")
    assert refused.value.errors == {
        "starts_at": ["The interview must be in the future."],
        "duration_minutes": ["Between 15 and 480 minutes."],
        "place": ["Give the place, or choose a remote interview."],
        "interpreter_language": ["Use an ISO 639-3 language code (e.g. ara, fas, tir)."],
    }
    with pytest.raises(services.InvalidInput) as refused:
        services.schedule_interview(first.id, acting_user=caseworker, person_id=None,
                                    starts_at=datetime(2030, 1, 1, 9, 0), duration_minutes=60, remote=True, place=None)
    assert refused.value.errors == {"starts_at": ["Give the date and time (UTC)."]}
    assert db.session.query(Interview).count() == 0


def test_interpreter_defaults_to_the_persons_needs(two_cases):
    """Language and gender preference come from the person's language section when not given."""
    first, _second, caseworker = two_cases
    booked = book(first.id, caseworker, later(days=2), interpreter="Samira Interpreter", remote=True, place=None)
    assert (booked.interpreter_language, booked.interpreter_gender, booked.remote) == ("ara", "female", True)
    [event] = events(EventCode.INTERVIEW_SCHEDULED, first.id)
    assert event.details["interpreter_booked"] is True
    assert "Samira" not in str(event.details)


def test_recording(two_cases):
    """Not before it starts; attended needs notes; notes encrypted; recorded only once; audited
    without the notes; the case becomes interviewed."""
    first, _second, caseworker = two_cases
    start = later(days=2)
    booked = book(first.id, caseworker, start)
    with pytest.raises(services.InvalidInput) as refused:
        services.record_interview(booked.id, acting_user=caseworker, attendance="attended", notes="x")
    assert refused.value.errors == {"__all__": ["An interview is recorded once it has started."]}
    with pytest.raises(services.InvalidInput) as refused:
        services.record_interview(booked.id, acting_user=caseworker, attendance="attended", notes=" ",
                                  now=start + timedelta(hours=1))
    assert refused.value.errors == {"notes": ["Write the interview notes."]}
    services.record_interview(booked.id, acting_user=caseworker, attendance="attended",
                              notes="Detained twice in 2024.", now=start + timedelta(hours=1))
    row = db.session.get(Interview, booked.id)
    assert (row.status, row.attendance, row.notes) == ("recorded", "attended", "Detained twice in 2024.")
    assert b"Detained" not in bytes(row._notes_ciphertext)
    assert fresh(first.id).status == "interviewed"
    [event] = events(EventCode.INTERVIEW_RECORDED, first.id)
    assert event.details == {"interview_id": booked.id, "attendance": "attended", "notes_written": True}
    with pytest.raises(services.InvalidInput):
        services.record_interview(booked.id, acting_user=caseworker, attendance="attended", notes="again",
                                  now=start + timedelta(hours=2))


def test_registration_officer_cannot_schedule(two_cases, make_user):
    """Scheduling needs a decision permission."""
    first, _second, _caseworker = two_cases
    with pytest.raises(services.DecisionForbidden):
        book(first.id, make_user("registration_officer"), later(days=2))
