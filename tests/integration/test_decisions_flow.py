"""The decision lifecycle end to end through the services: interview, drafts, four eyes, issue
with letters, service, appeal, remittal back to the queue, closing, and the procedural endings."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.audit.codes import EventCode
from app.decisions import services
from app.decisions.models import Appeal, Decision, Interview
from app.extensions import db
from test_decisions_support import (TODAY, assign, draft_all, events, fresh, interview, later, letters_of, person,
                                    register, to_issued, to_notified, transitions)


@pytest.fixture
def staff(make_user):
    return make_user("registration_officer"), make_user("caseworker"), make_user("supervisor")


def test_main_line_from_registration_to_notified(app, staff):
    """A case walks registered -> assigned -> interview_scheduled -> interviewed -> decision_drafted
    -> under_review -> decision_issued -> notified, each step audited once with from and to, and
    the version moving on at each write."""
    officer, caseworker, supervisor = staff
    case = register(officer)
    assert case.status == "registered"
    version = fresh(case.id).version
    assign(case.id, caseworker)
    to_notified(case.id, caseworker, supervisor)
    assert fresh(case.id).status == "notified"
    assert transitions(case.id) == [
        ("registered", "assigned"), ("assigned", "interview_scheduled"), ("interview_scheduled", "interviewed"),
        ("interviewed", "decision_drafted"), ("decision_drafted", "under_review"),
        ("under_review", "decision_issued"), ("decision_issued", "notified")]
    assert fresh(case.id).version > version + 7
    assert len(letters_of(case.id)) == 1
    assert [e.details["outcome"] for e in events(EventCode.DECISION_ISSUED, case.id)] == ["refugee_status"]


def test_family_needs_a_complete_draft_per_person(app, staff):
    """A two-person case cannot go to review with one draft; with both it can, and issuing makes
    one letter per person."""
    officer, caseworker, supervisor = staff
    case = register(officer, person("Haddad", "Rania"),
                    person("Haddad", "Omar", dob="2015-01-01", sex="M", principal=False, relationship="child"))
    assign(case.id, caseworker)
    interview(case.id, caseworker)
    first = fresh(case.id).persons[0]
    services.save_draft(case.id, acting_user=caseworker, person_id=first.id, outcome="refugee_status",
                        legal_basis=["QR-REFUGEE"], reasons=None)
    with pytest.raises(services.TransitionRefused) as refused:
        services.submit_for_review(case.id, acting_user=caseworker)
    assert refused.value.messages == [
        "Every person of the case needs a complete draft: an outcome, a legal basis, and written reasons for a "
        "negative decision."]
    second = fresh(case.id).persons[1]
    services.save_draft(case.id, acting_user=caseworker, person_id=second.id, outcome="refugee_status",
                        legal_basis=["QR-REFUGEE"], reasons=None)
    assert len(services.submit_for_review(case.id, acting_user=caseworker)) == 2
    for decision in db.session.query(Decision).filter_by(case_id=case.id):
        services.review_decision(decision.id, acting_user=supervisor, action="approve")
    issued = services.issue_decisions(case.id, acting_user=caseworker)
    assert len(issued) == 2
    assert len(letters_of(case.id)) == 2


def test_second_draft_for_the_same_person_is_refused(app, staff):
    """One first-instance draft per person: a second one is refused, the first is edited instead."""
    officer, caseworker, _supervisor = staff
    case = register(officer)
    assign(case.id, caseworker)
    interview(case.id, caseworker)
    [draft] = draft_all(case.id, caseworker)
    with pytest.raises(services.InvalidInput) as refused:
        draft_all(case.id, caseworker)
    assert refused.value.errors == {"__all__": ["This person already has a draft: edit it."]}
    edited = services.save_draft(case.id, acting_user=caseworker, person_id=draft.person_id, decision_id=draft.id,
                                 outcome="subsidiary_protection", legal_basis=["QR-SUBSIDIARY"],
                                 reasons="Serious harm.")
    assert (edited.id, edited.outcome, edited.reasons) == (draft.id, "subsidiary_protection", "Serious harm.")


def test_drafting_before_the_interview_is_refused(app, staff):
    """No draft while the case waits for its interview."""
    officer, caseworker, _supervisor = staff
    case = register(officer)
    assign(case.id, caseworker)
    with pytest.raises(services.InvalidInput) as refused:
        draft_all(case.id, caseworker)
    assert refused.value.errors == {"__all__": ["Decisions are drafted after the interview and before the review."]}
    assert db.session.query(Decision).count() == 0


def test_absent_applicant_does_not_make_the_case_interviewed(app, staff):
    """An interview recorded as missed goes back to be scheduled (assigned); another one can be
    scheduled."""
    officer, caseworker, _supervisor = staff
    case = register(officer)
    assign(case.id, caseworker)
    booked = interview(case.id, caseworker, record=False)
    services.record_interview(booked.id, acting_user=caseworker, attendance="absent_excused", notes=None,
                              now=booked.starts_at + timedelta(minutes=5))
    assert fresh(case.id).status == "assigned"
    interview(case.id, caseworker, start=later(days=3))
    assert fresh(case.id).status == "interviewed"


def test_taken_from_the_queue_while_triaged_catches_up_at_scheduling(app, staff):
    """A 'triaged' case given an assignee (the queues leave that status as it is) moves on to
    assigned and interview_scheduled when its interview is booked."""
    officer, caseworker, _supervisor = staff
    case = register(officer)
    services.mark_triaged(case.id, acting_user=caseworker)
    row = fresh(case.id)
    row.assigned_to_id = caseworker.id
    db.session.commit()
    interview(case.id, caseworker, record=False)
    assert transitions(case.id) == [("registered", "triaged"), ("triaged", "assigned"),
                                    ("assigned", "interview_scheduled")]


def test_close_after_the_appeal_period(app, staff):
    """A served decision without appeal is closed only once its appeal deadline has passed."""
    officer, caseworker, supervisor = staff
    case = register(officer)
    assign(case.id, caseworker)
    to_notified(case.id, caseworker, supervisor, served_on=TODAY)
    with pytest.raises(services.TransitionRefused) as refused:
        services.transition(case.id, "closed", acting_user=caseworker)
    assert refused.value.messages == ["The time limit for an appeal has not passed yet."]
    services.transition(case.id, "closed", acting_user=caseworker, now=later(days=40))
    assert fresh(case.id).status == "closed"


def test_remitted_appeal_sends_the_case_back_to_the_queue_for_a_new_round(app, staff):
    """Appeal lodged after service, remitted by the court: the case goes to appeal_decided and on
    to triaged, unassigned, in a new examination round with no interview and no draft; it can be
    examined and decided again."""
    officer, caseworker, supervisor = staff
    case = register(officer)
    assign(case.id, caseworker)
    [decision] = to_notified(case.id, caseworker, supervisor, outcome="rejected_unfounded",
                             legal_basis=("APR-39",), reasons="Inconsistent account.")
    appeal = services.lodge_appeal(decision.id, acting_user=caseworker, lodged_on=TODAY, court_reference="AC-1")
    assert fresh(case.id).status == "appeal_lodged"
    services.record_appeal_outcome(appeal.id, acting_user=caseworker, outcome="remitted", decided_on=TODAY)
    row = fresh(case.id)
    assert (row.status, row.assigned_to_id) == ("triaged", None)
    assert transitions(case.id)[-3:] == [("notified", "appeal_lodged"), ("appeal_lodged", "appeal_decided"),
                                         ("appeal_decided", "triaged")]
    assert services.working_round(row) == 2
    assign(case.id, caseworker, track=None)
    to_issued(case.id, caseworker, supervisor)
    rounds = sorted((d.round, d.status) for d in db.session.query(Decision).filter_by(case_id=case.id))
    assert rounds == [(1, "issued"), (2, "issued")]
    assert db.session.query(Interview).filter_by(case_id=case.id, round=2).count() == 1


def test_upheld_appeal_closes_the_case(app, staff):
    """An appeal upheld (or overturned) closes the case."""
    officer, caseworker, supervisor = staff
    case = register(officer)
    assign(case.id, caseworker)
    [decision] = to_notified(case.id, caseworker, supervisor, outcome="inadmissible", legal_basis=("APR-38",),
                             reasons="Protection granted in another Member State.")
    appeal = services.lodge_appeal(decision.id, acting_user=caseworker, lodged_on=TODAY)
    services.record_appeal_outcome(appeal.id, acting_user=caseworker, outcome="upheld", decided_on=TODAY)
    assert fresh(case.id).status == "closed"
    assert db.session.get(Appeal, appeal.id).outcome == "upheld"
    assert [e.details["outcome"] for e in events(EventCode.APPEAL_DECIDED, case.id)] == ["upheld"]


def test_appeal_outcome_recorded_once_and_dated_after_lodging(app, staff):
    """An appeal decided before it was lodged, or decided twice, is refused."""
    officer, caseworker, supervisor = staff
    case = register(officer)
    assign(case.id, caseworker)
    [decision] = to_notified(case.id, caseworker, supervisor)
    appeal = services.lodge_appeal(decision.id, acting_user=caseworker, lodged_on=TODAY)
    with pytest.raises(services.InvalidInput) as refused:
        services.record_appeal_outcome(appeal.id, acting_user=caseworker, outcome="upheld",
                                       decided_on=TODAY - timedelta(days=1))
    assert refused.value.errors == {"decided_on": ["An appeal is decided on or after the day it was lodged."]}
    services.record_appeal_outcome(appeal.id, acting_user=caseworker, outcome="overturned", decided_on=TODAY)
    with pytest.raises(services.InvalidInput) as refused:
        services.record_appeal_outcome(appeal.id, acting_user=caseworker, outcome="upheld", decided_on=TODAY)
    assert refused.value.errors == {"__all__": ["This appeal already has its outcome."]}


def test_transfer_after_an_issued_transfer_decision(app, staff):
    """A served transfer decision, its appeal period over, lets a supervisor record the transfer."""
    officer, caseworker, supervisor = staff
    case = register(officer)
    assign(case.id, caseworker, track="responsibility")
    to_notified(case.id, caseworker, supervisor, outcome="transfer_decision", legal_basis=("AMMR-TRANSFER",),
                reasons="Another Member State accepted to take charge.")
    services.transition(case.id, "transferred", acting_user=supervisor, now=later(days=20))
    assert fresh(case.id).status == "transferred"


def test_other_office_cannot_see_or_move_the_case(app, make_user, other_office):
    """A caseworker of another office gets CaseNotFound for the case, its decisions and letters,
    and the denial is audited."""
    officer, caseworker, supervisor = (make_user("registration_officer"), make_user("caseworker"),
                                       make_user("supervisor"))
    outsider = make_user("caseworker", office_id=other_office.id)
    case = register(officer)
    assign(case.id, caseworker)
    [decision] = to_issued(case.id, caseworker, supervisor)
    [letter] = letters_of(case.id)
    for attempt in (lambda: services.transition(case.id, "withdrawn", acting_user=outsider, reason="x"),
                    lambda: services.workspace(case.id, acting_user=outsider),
                    lambda: services.start_correction(decision.id, acting_user=outsider),
                    lambda: services.download_letter(letter.id, acting_user=outsider)):
        with pytest.raises(services.CaseNotFound):
            attempt()
    denied = events(EventCode.ACCESS_DENIED, case.id)
    assert len(denied) == 4 and {e.actor_id for e in denied} == {outsider.id}
