"""Interviews cancelled, missed, or omitted on a legal ground, through the services: who may do
each, when, what the case status becomes, what is kept and audited, that a cancelled interview
frees its slot, and that a decision is drafted without an interview only once an omission is
recorded."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from app.audit.codes import EventCode
from app.decisions import services
from app.decisions.models import Decision, Interview, InterviewOmission
from app.extensions import db
from test_decisions_support import (assign, draft_all, events, fresh, interview, later, person, register,
                                    staff_of, transitions)


@pytest.fixture
def staff(make_user):
    return staff_of(make_user)


@pytest.fixture
def booked(app, staff):
    """(case, its scheduled interview, caseworker assigned, supervisor)."""
    officer, caseworker, supervisor = staff
    case = register(officer)
    assign(case.id, caseworker)
    return case, interview(case.id, caseworker, record=False), caseworker, supervisor


def count(model, **filters) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model).filter_by(**filters))


# -- cancelling ----------------------------------------------------------------------------------

def test_cancelling_keeps_the_interview_and_returns_the_case_to_assigned(booked):
    """The cancelled interview stays with its reason (free text encrypted), who and when; the
    case goes back to assigned; the cancellation and the step are audited, without the text."""
    case, slot, caseworker, _supervisor = booked
    assert fresh(case.id).status == "interview_scheduled"
    version = fresh(case.id).version
    services.cancel_interview(slot.id, acting_user=caseworker, reason="other", details="Hospitalised until May.",
                              expected_version=version)
    db.session.expire_all()
    row = db.session.get(Interview, slot.id)
    assert (row.status, row.cancel_reason, row.cancel_details, row.cancelled_by_id) == (
        "cancelled", "other", "Hospitalised until May.", caseworker.id)
    assert row.cancelled_at is not None
    assert row._cancel_details_ciphertext != b"Hospitalised until May."
    assert fresh(case.id).status == "assigned"
    assert fresh(case.id).version > version
    assert transitions(case.id)[-1] == ("interview_scheduled", "assigned")
    [event] = events(EventCode.INTERVIEW_CANCELLED, case.id)
    assert event.actor_id == caseworker.id
    assert event.details["interview_id"] == slot.id
    assert (event.details["reason"], event.details["details_written"]) == ("other", True)
    assert "Hospitalised" not in str(event.details)


def test_a_new_interview_can_be_scheduled_after_cancelling(booked):
    """Rescheduling is cancel, then schedule: the case moves on to interview_scheduled again and
    the new interview can be held."""
    case, slot, caseworker, _supervisor = booked
    services.cancel_interview(slot.id, acting_user=caseworker, reason="interpreter_unavailable")
    interview(case.id, caseworker, start=later(days=5))
    assert fresh(case.id).status == "interviewed"
    assert count(Interview, case_id=case.id) == 2


def test_a_cancelled_interview_frees_the_slot_for_double_booking(booked):
    """The interviewer and the interpreter of a cancelled interview can be booked at the very
    same time again; before the cancellation the same booking is refused."""
    case, slot, caseworker, _supervisor = booked
    with pytest.raises(services.InvalidInput) as refused:
        interview(case.id, caseworker, start=slot.starts_at, record=False)
    assert set(refused.value.errors) == {"starts_at", "interpreter_name"}
    services.cancel_interview(slot.id, acting_user=caseworker, reason="applicant_requested")
    again = interview(case.id, caseworker, start=slot.starts_at, record=False)
    assert (again.starts_at, again.status) == (slot.starts_at, "scheduled")
    assert fresh(case.id).status == "interview_scheduled"


def test_cancelling_one_of_two_scheduled_interviews_keeps_the_case_scheduled(app, staff):
    """With another interview still scheduled (a family), the case stays interview_scheduled."""
    officer, caseworker, _supervisor = staff
    case = register(officer, person("Haddad", "Rania"),
                    person("Haddad", "Omar", dob="2015-01-01", sex="M", principal=False, relationship="child"))
    assign(case.id, caseworker)
    first = interview(case.id, caseworker, record=False)
    child = fresh(case.id).persons[1]
    services.schedule_interview(case.id, acting_user=caseworker, person_id=child.id, starts_at=later(days=9),
                                duration_minutes=60, remote=True, place=None, interpreter_language="ara")
    services.cancel_interview(first.id, acting_user=caseworker, reason="applicant_ill")
    assert fresh(case.id).status == "interview_scheduled"


def test_a_supervisor_may_cancel_another_caseworker_may_not(booked, make_user):
    """The assigned caseworker or a supervisor of the office; a caseworker of the office who is
    not assigned is refused with a message, nothing changes, nothing is audited."""
    case, slot, _caseworker, supervisor = booked
    colleague = make_user("caseworker")
    with pytest.raises(services.InvalidInput) as refused:
        services.cancel_interview(slot.id, acting_user=colleague, reason="applicant_ill")
    assert refused.value.errors == {"__all__": [
        "Only the caseworker assigned to the case or a supervisor may cancel its interviews."]}
    assert db.session.get(Interview, slot.id).status == "scheduled"
    assert events(EventCode.INTERVIEW_CANCELLED, case.id) == []
    services.cancel_interview(slot.id, acting_user=supervisor, reason="caseworker_unavailable")
    assert db.session.get(Interview, slot.id).cancelled_by_id == supervisor.id


def test_a_registration_officer_may_not_cancel(booked, staff):
    """A role that does not work on decisions is refused outright."""
    _case, slot, _caseworker, _supervisor = booked
    with pytest.raises(services.DecisionForbidden):
        services.cancel_interview(slot.id, acting_user=staff[0], reason="applicant_ill")


def test_cancelling_needs_a_listed_reason_and_text_for_other(booked):
    """Every failing field is reported; nothing is saved."""
    case, slot, caseworker, _supervisor = booked
    with pytest.raises(services.InvalidInput) as refused:
        services.cancel_interview(slot.id, acting_user=caseworker, reason="bored")
    assert refused.value.errors == {"reason": ["Choose one of the listed options."]}
    with pytest.raises(services.InvalidInput) as refused:
        services.cancel_interview(slot.id, acting_user=caseworker, reason="other", details="   ")
    assert refused.value.errors == {"details": ["Say why the interview is cancelled."]}
    with pytest.raises(services.InvalidInput) as refused:
        services.cancel_interview(slot.id, acting_user=caseworker, reason="other", details="x" * 2001)
    assert refused.value.errors == {"details": ["At most 2000 characters."]}
    assert db.session.get(Interview, slot.id).status == "scheduled"
    assert fresh(case.id).status == "interview_scheduled"


def test_a_held_or_missed_or_cancelled_interview_cannot_be_cancelled(booked):
    """Only while scheduled: once recorded (held), missed, or cancelled, it is refused."""
    case, slot, caseworker, _supervisor = booked
    services.cancel_interview(slot.id, acting_user=caseworker, reason="applicant_ill")
    with pytest.raises(services.InvalidInput) as refused:
        services.cancel_interview(slot.id, acting_user=caseworker, reason="applicant_ill")
    assert refused.value.errors == {"__all__": ["Only a scheduled interview can be cancelled."]}
    held = interview(case.id, caseworker, start=later(days=4))
    with pytest.raises(services.InvalidInput):
        services.cancel_interview(held.id, acting_user=caseworker, reason="applicant_ill")
    assert db.session.get(Interview, held.id).status == "recorded"
    assert len(events(EventCode.INTERVIEW_CANCELLED, case.id)) == 1


def test_cancelling_with_a_stale_version_is_a_conflict(booked):
    """The version the user saw is checked: a stale one writes nothing."""
    case, slot, caseworker, _supervisor = booked
    stale = fresh(case.id).version - 1
    with pytest.raises(services.DecisionConflict):
        services.cancel_interview(slot.id, acting_user=caseworker, reason="applicant_ill", expected_version=stale)
    assert db.session.get(Interview, slot.id).status == "scheduled"


# -- the applicant did not appear ----------------------------------------------------------------

def test_a_no_show_is_missed_and_the_case_goes_back_to_be_scheduled(booked):
    """Recorded as absent: the interview is missed (kept, with the attendance), the case goes
    back to assigned, INTERVIEW_MISSED is audited (not INTERVIEW_RECORDED)."""
    case, slot, caseworker, _supervisor = booked
    services.record_interview(slot.id, acting_user=caseworker, attendance="absent_unexcused", notes=None,
                              now=slot.starts_at + timedelta(minutes=20))
    row = db.session.get(Interview, slot.id)
    assert (row.status, row.attendance) == ("missed", "absent_unexcused")
    assert fresh(case.id).status == "assigned"
    [event] = events(EventCode.INTERVIEW_MISSED, case.id)
    assert event.details["attendance"] == "absent_unexcused"
    assert events(EventCode.INTERVIEW_RECORDED, case.id) == []
    with pytest.raises(services.InvalidInput):
        services.cancel_interview(slot.id, acting_user=caseworker, reason="applicant_ill")


# -- omitting the interview ----------------------------------------------------------------------

def test_omission_on_positive_evidence_lets_a_decision_be_drafted(app, staff):
    """assigned -> interviewed with the omission recorded (audited, one commit); then drafting
    works and takes interviewed -> decision_drafted."""
    officer, caseworker, _supervisor = staff
    case = register(officer)
    assign(case.id, caseworker)
    omission = services.record_interview_omission(case.id, acting_user=caseworker, ground="positive_decision")
    assert (omission.ground, omission.round, omission.recorded_by_id) == ("positive_decision", 1, caseworker.id)
    assert fresh(case.id).status == "interviewed"
    [event] = events(EventCode.INTERVIEW_OMITTED, case.id)
    assert (event.details["ground"], event.details["round"]) == ("positive_decision", 1)
    draft_all(case.id, caseworker)
    assert fresh(case.id).status == "decision_drafted"
    assert transitions(case.id)[-2:] == [("assigned", "interviewed"), ("interviewed", "decision_drafted")]


def test_omission_for_an_unfit_applicant_needs_the_medical_opinion(app, staff):
    """Unfit: the opinion's date (not in the future) and reference are required; they are kept,
    the reference encrypted, and the audit says only that one was written."""
    officer, caseworker, _supervisor = staff
    case = register(officer)
    assign(case.id, caseworker)
    with pytest.raises(services.InvalidInput) as refused:
        services.record_interview_omission(case.id, acting_user=caseworker, ground="unfit")
    assert refused.value.errors == {"medical_opinion_on": ["Give the date of the medical opinion."],
                                    "medical_opinion_reference": ["Give the reference of the medical opinion."]}
    with pytest.raises(services.InvalidInput) as refused:
        services.record_interview_omission(case.id, acting_user=caseworker, ground="unfit",
                                           medical_opinion_on=date.today() + timedelta(days=2),
                                           medical_opinion_reference="MED-1")
    assert refused.value.errors == {"medical_opinion_on": ["The date cannot be in the future."]}
    assert fresh(case.id).status == "assigned" and count(InterviewOmission) == 0
    services.record_interview_omission(case.id, acting_user=caseworker, ground="unfit",
                                       medical_opinion_on=date.today() - timedelta(days=3),
                                       medical_opinion_reference="MED-2026-0042")
    db.session.expire_all()
    row = db.session.scalar(select(InterviewOmission).where(InterviewOmission.case_id == case.id))
    assert (row.medical_opinion_on, row.medical_opinion_reference) == (date.today() - timedelta(days=3),
                                                                       "MED-2026-0042")
    assert b"MED-2026-0042" not in row._medical_opinion_reference_ciphertext
    [event] = events(EventCode.INTERVIEW_OMITTED, case.id)
    assert event.details["reference_written"] is True and "MED-2026" not in str(event.details)


def test_omission_on_another_ground_needs_the_text_and_a_medical_opinion_only_when_unfit(app, staff):
    """Other ground: the text is required. A medical opinion given with another ground is refused."""
    officer, caseworker, _supervisor = staff
    case = register(officer)
    assign(case.id, caseworker)
    with pytest.raises(services.InvalidInput) as refused:
        services.record_interview_omission(case.id, acting_user=caseworker, ground="other",
                                           medical_opinion_reference="MED-1")
    assert refused.value.errors == {
        "medical_opinion_on": ["A medical opinion is given only when the applicant is unfit to be interviewed."],
        "details": ["Give the ground under national law."]}
    with pytest.raises(services.InvalidInput) as refused:
        services.record_interview_omission(case.id, acting_user=caseworker, ground="whim")
    assert refused.value.errors == {"ground": ["Choose one of the listed options."]}
    services.record_interview_omission(case.id, acting_user=caseworker, ground="other",
                                       details="Section 24(3) of the national Act.")
    assert fresh(case.id).status == "interviewed"


def test_failure_to_appear_needs_a_missed_interview_without_good_reason(booked):
    """Deciding on the file after a no-show: refused until an interview is recorded as missed
    without good reason (an excused absence is not enough), then accepted."""
    case, slot, caseworker, _supervisor = booked
    services.record_interview(slot.id, acting_user=caseworker, attendance="absent_excused", notes=None,
                              now=slot.starts_at + timedelta(minutes=5))
    with pytest.raises(services.InvalidInput) as refused:
        services.record_interview_omission(case.id, acting_user=caseworker, ground="failed_to_appear")
    assert refused.value.errors == {"ground": [
        "Record first the interview the applicant did not attend without good reason."]}
    second = interview(case.id, caseworker, start=later(days=6), record=False)
    services.record_interview(second.id, acting_user=caseworker, attendance="absent_unexcused", notes=None,
                              now=second.starts_at + timedelta(minutes=5))
    services.record_interview_omission(case.id, acting_user=caseworker, ground="failed_to_appear")
    assert fresh(case.id).status == "interviewed"


def test_omission_is_refused_while_an_interview_is_scheduled_or_after_one_was_held(booked):
    """Cancel a scheduled interview first; once an interview was held, never."""
    case, slot, caseworker, _supervisor = booked
    with pytest.raises(services.InvalidInput) as refused:
        services.record_interview_omission(case.id, acting_user=caseworker, ground="positive_decision")
    assert refused.value.errors == {"__all__": [
        "An interview is scheduled: cancel it before recording the omission of the interview."]}
    services.record_interview(slot.id, acting_user=caseworker, attendance="attended", notes="Notes.",
                              now=slot.starts_at + timedelta(minutes=5))
    with pytest.raises(services.InvalidInput) as refused:
        services.record_interview_omission(case.id, acting_user=caseworker, ground="positive_decision")
    assert refused.value.errors == {"__all__": [
        "An interview has been held: the omission of the interview can no longer be recorded."]}
    assert count(InterviewOmission) == 0
    assert events(EventCode.INTERVIEW_OMITTED, case.id) == []


def test_omission_only_by_the_assigned_caseworker_or_a_supervisor_once_per_round(app, staff, make_user):
    """Another caseworker is refused; a second omission in the round is refused; before the case
    is assigned it is refused too."""
    officer, caseworker, supervisor = staff
    unassigned = register(officer)
    with pytest.raises(services.InvalidInput) as refused:
        services.record_interview_omission(unassigned.id, acting_user=supervisor, ground="positive_decision")
    assert refused.value.errors == {"__all__": [
        "The omission of the interview is recorded once the case is assigned and before a decision is drafted."]}
    case = register(officer)
    assign(case.id, caseworker)
    with pytest.raises(services.InvalidInput) as refused:
        services.record_interview_omission(case.id, acting_user=make_user("caseworker"), ground="positive_decision")
    assert refused.value.errors == {"__all__": [
        "Only the caseworker assigned to the case or a supervisor may record the omission of the interview."]}
    services.record_interview_omission(case.id, acting_user=supervisor, ground="positive_decision")
    with pytest.raises(services.InvalidInput) as refused:
        services.record_interview_omission(case.id, acting_user=caseworker, ground="positive_decision")
    assert "The omission of the interview is already recorded." in refused.value.errors["__all__"]
    assert count(InterviewOmission, case_id=case.id) == 1


# -- drafting needs an interview held or an omission ---------------------------------------------

def test_drafting_without_interview_or_omission_is_refused_and_nothing_is_saved(app, staff):
    """A case put in 'interviewed' without an attended interview or an omission (e.g. by hand)
    cannot get a draft: refused with the reason, no decision row, status unchanged."""
    officer, caseworker, _supervisor = staff
    case = register(officer)
    assign(case.id, caseworker)
    row = fresh(case.id)
    row.status = "interviewed"
    db.session.commit()
    with pytest.raises(services.TransitionRefused) as refused:
        draft_all(case.id, caseworker)
    assert refused.value.messages == [
        "A decision is drafted after an interview the applicant attended, or once the omission of the "
        "interview is recorded."]
    assert count(Decision, case_id=case.id) == 0
    assert fresh(case.id).status == "interviewed"


def test_drafting_while_assigned_is_refused_until_the_omission(app, staff):
    """No interview and no omission: drafting is refused; after the omission it is accepted."""
    officer, caseworker, _supervisor = staff
    case = register(officer)
    assign(case.id, caseworker)
    with pytest.raises(services.InvalidInput):
        draft_all(case.id, caseworker)
    services.record_interview_omission(case.id, acting_user=caseworker, ground="positive_decision")
    assert [d.status for d in draft_all(case.id, caseworker)] == ["draft"]


# -- rescheduling in one step --------------------------------------------------------------------

def test_rescheduling_cancels_and_books_in_one_transaction(booked):
    """The old interview is cancelled (naming its replacement), a new one is booked for the same
    person, interviewer and interpreter at the new time, the case stays interview_scheduled."""
    case, slot, caseworker, _supervisor = booked
    new_start = slot.starts_at + timedelta(days=2)
    new = services.reschedule_interview(slot.id, acting_user=caseworker, reason="interpreter_unavailable",
                                        starts_at=new_start)
    db.session.expire_all()
    old = db.session.get(Interview, slot.id)
    new = db.session.get(Interview, new.id)
    assert (old.status, old.cancel_reason) == ("cancelled", "interpreter_unavailable")
    assert (new.status, new.starts_at, new.person_id, new.interviewer_id, new.interpreter_name) == (
        "scheduled", new_start, old.person_id, old.interviewer_id, old.interpreter_name)
    assert fresh(case.id).status == "interview_scheduled"
    [cancelled] = events(EventCode.INTERVIEW_CANCELLED, case.id)
    assert cancelled.details["rescheduled_as"] == new.id
    assert len(events(EventCode.INTERVIEW_SCHEDULED, case.id)) == 2
    assert ("interview_scheduled", "assigned") not in transitions(case.id)


def test_rescheduling_to_an_overlapping_time_of_itself_is_allowed(booked):
    """The interview being replaced does not block its own new time (an hour later, overlapping)."""
    _case, slot, caseworker, _supervisor = booked
    new = services.reschedule_interview(slot.id, acting_user=caseworker, reason="applicant_requested",
                                        starts_at=slot.starts_at + timedelta(hours=1))
    assert new.status == "scheduled"


def test_a_refused_reschedule_saves_nothing(booked):
    """A new time in the past or a missing reason: refused with every message, the old interview
    still scheduled, no new one, nothing audited."""
    case, slot, caseworker, _supervisor = booked
    with pytest.raises(services.InvalidInput) as refused:
        services.reschedule_interview(slot.id, acting_user=caseworker, reason="applicant_ill",
                                      starts_at=later(days=-1))
    assert refused.value.errors == {"starts_at": ["The interview must be in the future."]}
    with pytest.raises(services.InvalidInput) as refused:
        services.reschedule_interview(slot.id, acting_user=caseworker, reason=None, starts_at=later(days=8))
    assert refused.value.errors == {"reason": ["Choose one of the listed options."]}
    assert db.session.get(Interview, slot.id).status == "scheduled"
    assert count(Interview, case_id=case.id) == 1
    assert events(EventCode.INTERVIEW_CANCELLED, case.id) == []
