"""Four eyes and the integrity of decisions: the drafter never approves their own decision,
another supervisor can, a return carries comments; a negative decision is never issued without
reasons; an issued decision is never edited, a correction is a new, linked decision."""

from __future__ import annotations

import pytest

from app.audit.codes import EventCode
from app.decisions import services
from app.decisions.models import Decision, DecisionReview, IssuedDecisionModified
from app.extensions import db
from test_decisions_support import (approve_all, assign, draft_all, events, fresh, interview, letters_of, pdf_text,
                                    person, register, staff_of, to_issued, to_under_review)


@pytest.fixture
def case_under_review(app, make_user):
    """A one-person case drafted by a caseworker and submitted for review."""
    officer, caseworker = make_user("registration_officer"), make_user("caseworker")
    case = register(officer)
    assign(case.id, caseworker)
    to_under_review(case.id, caseworker)
    return case, caseworker


def submitted(case_id) -> Decision:
    return db.session.query(Decision).filter_by(case_id=case_id).one()


def test_caseworker_cannot_review(case_under_review):
    """Reviewing needs the supervisor's permission."""
    case, caseworker = case_under_review
    with pytest.raises(services.DecisionForbidden):
        services.review_decision(submitted(case.id).id, acting_user=caseworker, action="approve")
    assert submitted(case.id).status == "submitted"


def test_drafter_cannot_approve_own_decision_but_another_supervisor_can(app, make_user):
    """A supervisor who drafted a decision is refused (and the attempt audited as denied);
    another supervisor approves it and it can be issued."""
    officer, caseworker = make_user("registration_officer"), make_user("caseworker")
    drafter, other = make_user("supervisor"), make_user("supervisor")
    case = register(officer)
    assign(case.id, caseworker)
    interview(case.id, caseworker)
    draft_all(case.id, drafter)
    services.submit_for_review(case.id, acting_user=drafter)
    decision = submitted(case.id)
    with pytest.raises(services.InvalidInput) as refused:
        services.review_decision(decision.id, acting_user=drafter, action="approve")
    assert refused.value.errors == {"__all__": [
        "You drafted or edited this decision: another supervisor must review it."]}
    assert submitted(case.id).status == "submitted"
    [denied] = events(EventCode.DECISION_APPROVED, case.id)
    assert (denied.actor_id, denied.outcome) == (drafter.id, "denied")
    services.review_decision(decision.id, acting_user=other, action="approve")
    approved = submitted(case.id)
    assert (approved.status, approved.approved_by_id) == ("approved", other.id)
    assert [e.outcome for e in events(EventCode.DECISION_APPROVED, case.id)] == ["denied", "success"]
    [issued] = services.issue_decisions(case.id, acting_user=caseworker)
    assert issued.status == "issued"


def test_an_editor_counts_as_drafter(app, make_user):
    """A supervisor who edited a caseworker's draft cannot approve it either."""
    officer, caseworker, editor, other = (make_user("registration_officer"), make_user("caseworker"),
                                          make_user("supervisor"), make_user("supervisor"))
    case = register(officer)
    assign(case.id, caseworker)
    interview(case.id, caseworker)
    [draft] = draft_all(case.id, caseworker)
    services.save_draft(case.id, acting_user=editor, person_id=draft.person_id, decision_id=draft.id,
                        outcome="refugee_status", legal_basis=["QR-REFUGEE"], reasons="Edited reasons.")
    services.submit_for_review(case.id, acting_user=caseworker)
    with pytest.raises(services.InvalidInput):
        services.review_decision(draft.id, acting_user=editor, action="approve")
    services.review_decision(draft.id, acting_user=other, action="approve")
    assert submitted(case.id).approved_by_id == other.id


def test_return_with_comments(case_under_review, make_user):
    """A return needs comments; with them the decision goes back to the drafter, the case back to
    decision_drafted, and the comments are stored encrypted and readable in the workspace."""
    case, caseworker = case_under_review
    supervisor = make_user("supervisor")
    decision = submitted(case.id)
    with pytest.raises(services.InvalidInput) as refused:
        services.review_decision(decision.id, acting_user=supervisor, action="return", comments="  ")
    assert refused.value.errors == {"comments": ["Say what must change: a draft is returned with comments."]}
    services.review_decision(decision.id, acting_user=supervisor, action="return",
                             comments="Assess the internal protection alternative.")
    assert (submitted(case.id).status, fresh(case.id).status) == ("returned", "decision_drafted")
    review = db.session.query(DecisionReview).one()
    assert review.comments == "Assess the internal protection alternative."
    assert b"internal protection" not in bytes(review._comments_ciphertext)
    ws = services.workspace(case.id, acting_user=caseworker)
    assert [comments for _review, comments in ws.decisions[0].reviews] == [
        "Assess the internal protection alternative."]
    # Edited and resubmitted, then approved by the supervisor who returned it.
    services.save_draft(case.id, acting_user=caseworker, person_id=decision.person_id, decision_id=decision.id,
                        outcome="refugee_status", legal_basis=["QR-REFUGEE", "QR-IPA"], reasons="No IPA available.")
    services.submit_for_review(case.id, acting_user=caseworker)
    services.review_decision(decision.id, acting_user=supervisor, action="approve")
    assert submitted(case.id).status == "approved"
    assert len(events(EventCode.DECISION_RETURNED, case.id)) == 1


def test_issue_needs_approval(case_under_review):
    """Submitted but not approved: issuing is refused with the four-eyes reason."""
    case, caseworker = case_under_review
    with pytest.raises(services.TransitionRefused) as refused:
        services.issue_decisions(case.id, acting_user=caseworker)
    assert refused.value.messages == [
        "Every decision must be approved by a supervisor other than the one who drafted it."]
    assert fresh(case.id).status == "under_review"
    assert letters_of(case.id) == []


@pytest.mark.parametrize("outcome", ["rejected_unfounded", "rejected_manifestly_unfounded", "inadmissible",
                                     "implicit_withdrawal", "transfer_decision"])
def test_negative_decision_without_reasons_is_refused(app, make_user, outcome):
    """A negative draft without written reasons cannot go to review (nor be issued)."""
    officer, caseworker = make_user("registration_officer"), make_user("caseworker")
    case = register(officer)
    assign(case.id, caseworker)
    interview(case.id, caseworker)
    draft_all(case.id, caseworker, outcome=outcome, reasons=None, legal_basis=("APR-39",))
    with pytest.raises(services.TransitionRefused) as refused:
        services.submit_for_review(case.id, acting_user=caseworker)
    assert "A negative decision cannot be issued without written reasons." in refused.value.messages
    assert fresh(case.id).status == "decision_drafted"


def test_negative_decision_without_reasons_cannot_be_issued_even_if_approved(app, make_user):
    """Reasons removed behind the review's back (directly in the database): issue still refuses."""
    officer, caseworker, supervisor = staff_of(make_user)
    case = register(officer)
    assign(case.id, caseworker)
    to_under_review(case.id, caseworker, outcome="rejected_unfounded", reasons="Reasons.", legal_basis=("APR-39",))
    approve_all(case.id, supervisor)
    decision = submitted(case.id)
    decision.reasons = None
    db.session.commit()
    with pytest.raises(services.TransitionRefused) as refused:
        services.issue_decisions(case.id, acting_user=caseworker)
    assert "A negative decision cannot be issued without written reasons." in refused.value.messages


def test_positive_decision_needs_no_reasons(app, make_user):
    """A grant of refugee status may be issued without written reasons."""
    officer, caseworker, supervisor = staff_of(make_user)
    case = register(officer)
    assign(case.id, caseworker)
    [issued] = to_issued(case.id, caseworker, supervisor, reasons=None)
    assert (issued.status, issued.reasons) == ("issued", None)


def test_unknown_outcome_and_legal_basis_are_refused(app, make_user):
    """Outcome and legal basis come from the settings lists; every failure is reported."""
    officer, caseworker = make_user("registration_officer"), make_user("caseworker")
    case = register(officer)
    assign(case.id, caseworker)
    interview(case.id, caseworker)
    with pytest.raises(services.InvalidInput) as refused:
        services.save_draft(case.id, acting_user=caseworker, person_id=fresh(case.id).principal.id,
                            outcome="deported", legal_basis=["XYZ-1"], reasons="x" * 50_001)
    assert refused.value.errors == {"outcome": ["Choose the outcome."], "legal_basis": ["Unknown legal basis code."],
                                    "reasons": ["At most 50000 characters."]}


def test_issued_decision_is_never_edited_and_a_correction_is_linked(app, make_user):
    """Saving over an issued decision is refused by the service and by the model; a correction is
    a new draft linked to it, reviewed by another supervisor, issued with its own letter that
    says what it corrects, leaving the original untouched."""
    officer, caseworker, supervisor = staff_of(make_user)
    case = register(officer, person("Haddad", "Rania", language="eng", interpreter=False))
    assign(case.id, caseworker)
    [original] = to_issued(case.id, caseworker, supervisor, reasons="Original reasons.")
    with pytest.raises(services.InvalidInput) as refused:
        services.save_draft(case.id, acting_user=caseworker, person_id=original.person_id, decision_id=original.id,
                            outcome="rejected_unfounded", legal_basis=["APR-39"], reasons="Changed.")
    assert refused.value.errors == {"__all__": [
        "This decision is with a reviewer, approved or issued: it cannot be edited."]}
    row = db.session.get(Decision, original.id)
    row.outcome = "rejected_unfounded"
    with pytest.raises(IssuedDecisionModified):
        db.session.flush()
    db.session.rollback()

    correction = services.start_correction(original.id, acting_user=caseworker)
    assert (correction.corrects_decision_id, correction.status, correction.reasons) == (
        original.id, "draft", "Original reasons.")
    # Both carry the case's office, which the reports filter on (migration 0010).
    assert original.office_id == correction.office_id == fresh(case.id).office_id is not None
    with pytest.raises(services.InvalidInput):
        services.start_correction(original.id, acting_user=caseworker)
    services.save_draft(case.id, acting_user=caseworker, person_id=correction.person_id, decision_id=correction.id,
                        outcome="refugee_status", legal_basis=["QR-REFUGEE"], reasons="Corrected reasons.")
    services.submit_for_review(case.id, acting_user=caseworker, decision_id=correction.id)
    services.review_decision(correction.id, acting_user=supervisor, action="approve")
    [issued] = services.issue_decisions(case.id, acting_user=caseworker)
    assert (issued.id, issued.status) == (correction.id, "issued")
    db.session.expire_all()
    kept = db.session.get(Decision, original.id)
    assert (kept.status, kept.reasons, kept.version) == ("issued", "Original reasons.", original.version)
    assert fresh(case.id).status == "decision_issued"
    letters = {letter.decision_id: letter for letter in letters_of(case.id)}
    assert set(letters) == {original.id, correction.id}
    text = " ".join(pdf_text(letters[correction.id].pdf).split())
    assert "This decision corrects and replaces the decision issued on" in text
    assert "Corrected reasons." in text
    assert "Corrected reasons." not in " ".join(pdf_text(letters[original.id].pdf).split())
    assert len(events(EventCode.DECISION_CORRECTION_STARTED, case.id)) == 1
