"""Cancelling an interview and omitting the personal interview through the browser: the forms are
on the workspace, they work, refusals come back as messages next to the form (never a 500), and
an unfit applicant's case says that further information must be allowed."""

# ruff: noqa: F811 (the assigned_case fixture of test_decision_pages, imported, is a parameter here)
from __future__ import annotations

from datetime import date, timedelta


from app.audit.codes import EventCode
from app.decisions.models import Interview
from app.extensions import db
from functional.test_decision_pages import assigned_case, url, version_of  # noqa: F401
from integration.test_decisions_support import assign, events, fresh, interview, register


def cancel(browser, case, slot, **fields):
    key = f"cancel-{slot.id}"
    data = {f"{key}-expected_version": version_of(case), **{f"{key}-{k}": v for k, v in fields.items()}}
    return browser.post(f"/decisions/interviews/{slot.id}/cancel", data, token_from=url(case))


def omit(browser, case, **fields):
    data = {"omission-expected_version": version_of(case), **{f"omission-{k}": v for k, v in fields.items()}}
    return browser.post(f"{url(case)}/omission", data, token_from=url(case))


def test_a_scheduled_interview_offers_cancel_and_cancelling_works(assigned_case):
    """The workspace shows the cancel form; posting it cancels the interview, the case is back to
    assigned, the cancelled interview is listed with its reason, and a new one can be scheduled."""
    browser, caseworker, case = assigned_case
    slot = interview(case.id, caseworker, record=False)
    body = browser.get(url(case)).get_data(as_text=True)
    assert f'id="cancel-{slot.id}"' in body and f'name="cancel-{slot.id}-reason"' in body
    assert 'id="omission"' not in body  # an interview is scheduled: cancel it first
    response = cancel(browser, case, slot, reason="interpreter_unavailable")
    assert response.status_code == 302
    page = browser.get(url(case)).get_data(as_text=True)
    assert 'data-status="assigned"' in page
    assert 'data-interview-status="cancelled"' in page
    assert "The interpreter is not available" in page
    assert 'id="interview"' in page  # schedule again
    assert db.session.get(Interview, slot.id).status == "cancelled"
    assert len(events(EventCode.INTERVIEW_CANCELLED, case.id)) == 1


def test_cancel_refusals_are_messages_not_errors(assigned_case, make_user, signed_in):
    """Other without text, an interview already cancelled, a caseworker not assigned, a missing
    CSRF token: 422 with the message or 400, never a 500, nothing changed."""
    browser, caseworker, case = assigned_case
    slot = interview(case.id, caseworker, record=False)
    response = cancel(browser, case, slot, reason="other", details="")
    assert response.status_code == 422
    assert "Say why the interview is cancelled." in response.get_data(as_text=True)
    response = cancel(browser, case, slot, reason="nonsense")
    assert response.status_code == 422
    colleague_browser, _colleague = signed_in("caseworker")
    response = cancel(colleague_browser, case, slot, reason="applicant_ill")
    assert response.status_code == 422
    assert "Only the caseworker assigned to the case or a supervisor may cancel its interviews." in \
        response.get_data(as_text=True)
    response = browser.client.post(f"/decisions/interviews/{slot.id}/cancel", data={
        f"cancel-{slot.id}-expected_version": version_of(case), f"cancel-{slot.id}-reason": "applicant_ill"})
    assert response.status_code == 400
    assert db.session.get(Interview, slot.id).status == "scheduled"
    assert cancel(browser, case, slot, reason="applicant_ill").status_code == 302
    response = cancel(browser, case, slot, reason="applicant_ill")
    assert response.status_code == 422
    assert "Only a scheduled interview can be cancelled." in response.get_data(as_text=True)


def test_cancel_of_unknown_interview_is_404_and_stale_version_is_409(assigned_case):
    """A missing interview answers 404; a stale version answers 409 with the conflict message."""
    browser, caseworker, case = assigned_case
    slot = interview(case.id, caseworker, record=False)
    assert browser.post("/decisions/interviews/nope/cancel", {"x": "1"}, token_from=url(case)).status_code == 404
    key = f"cancel-{slot.id}"
    response = browser.post(f"/decisions/interviews/{slot.id}/cancel", {
        f"{key}-expected_version": str(fresh(case.id).version - 1), f"{key}-reason": "applicant_ill"},
        token_from=url(case))
    assert response.status_code == 409
    assert db.session.get(Interview, slot.id).status == "scheduled"


def test_omitting_for_an_unfit_applicant_shows_the_right_to_submit_information(assigned_case):
    """The omission form is on an assigned case; recording 'unfit' with the medical opinion moves
    the case to interviewed, offers drafting, and says further information must be allowed."""
    browser, _caseworker, case = assigned_case
    body = browser.get(url(case)).get_data(as_text=True)
    assert 'id="omission"' in body and 'name="omission-ground"' in body
    response = omit(browser, case, ground="unfit", medical_opinion_on=(date.today() - timedelta(days=1)).isoformat(),
                    medical_opinion_reference="MED-77")
    assert response.status_code == 302
    page = browser.get(url(case)).get_data(as_text=True)
    assert 'data-status="interviewed"' in page
    assert 'data-omission-ground="unfit"' in page and 'data-further-information="true"' in page
    assert "MED-77" in page
    assert f'id="new-{fresh(case.id).principal.id}"' in page
    assert 'id="omission"' not in page
    assert len(events(EventCode.INTERVIEW_OMITTED, case.id)) == 1


def test_omission_refusals_are_messages(assigned_case, signed_in):
    """Unfit without the opinion, a bad date, another caseworker, a second omission: 422 with the
    messages, never a 500."""
    browser, caseworker, case = assigned_case
    response = omit(browser, case, ground="unfit")
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Give the date of the medical opinion." in body and "Give the reference of the medical opinion." in body
    response = omit(browser, case, ground="unfit", medical_opinion_on="not-a-date", medical_opinion_reference="M")
    assert response.status_code == 422
    other_browser, _other = signed_in("caseworker")
    response = omit(other_browser, case, ground="positive_decision")
    assert response.status_code == 422
    assert "Only the caseworker assigned to the case or a supervisor may record the omission" in \
        response.get_data(as_text=True)
    assert fresh(case.id).status == "assigned"
    assert omit(browser, case, ground="positive_decision").status_code == 302
    response = omit(browser, case, ground="positive_decision")
    assert response.status_code == 422
    assert "The omission of the interview is already recorded." in response.get_data(as_text=True)


def test_a_registration_officer_cannot_reach_the_new_forms(app, make_user, signed_in):
    """The routes are declared with the permission decorator: an officer gets 403."""
    officer_browser, officer = signed_in("registration_officer")
    case = register(officer)
    caseworker = make_user("caseworker")
    assign(case.id, caseworker)
    slot = interview(case.id, caseworker, record=False)
    token_page = "/"
    assert officer_browser.post(f"/decisions/interviews/{slot.id}/cancel", {"x": "1"},
                                token_from=token_page).status_code == 403
    assert officer_browser.post(f"/decisions/case/{case.id}/omission", {"x": "1"},
                                token_from=token_page).status_code == 403


def test_reschedule_form_books_the_new_time_and_refuses_a_past_one(assigned_case):
    """The reschedule form: a past date answers 422 with the message next to the date; a future
    one cancels the old interview and books the new one."""
    browser, caseworker, case = assigned_case
    slot = interview(case.id, caseworker, record=False)
    key = f"reschedule-{slot.id}"
    assert f'id="{key}"' in browser.get(url(case)).get_data(as_text=True)

    def post(when):
        return browser.post(f"/decisions/interviews/{slot.id}/reschedule", {
            f"{key}-expected_version": version_of(case), f"{key}-reason": "applicant_ill",
            f"{key}-date": when.date().isoformat(), f"{key}-time": when.strftime("%H:%M")}, token_from=url(case))

    response = post(slot.starts_at - timedelta(days=30))
    assert response.status_code == 422
    assert "The interview must be in the future." in response.get_data(as_text=True)
    assert db.session.get(Interview, slot.id).status == "scheduled"
    assert post(slot.starts_at + timedelta(days=3)).status_code == 302
    db.session.expire_all()
    assert db.session.get(Interview, slot.id).status == "cancelled"
    assert db.session.query(Interview).filter_by(case_id=case.id, status="scheduled").count() == 1
