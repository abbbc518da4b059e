"""The decision pages through the browser: the workspace shows status, next steps, interviews,
drafts, reviews and letters; forms answer bad input with 422 and messages next to fields, a
conflict with 409 and the user's input shown back; scope and permissions hold; letters download
as audited, uncached attachments; supervisors get a "Reviews" list."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.decisions.models import Decision, Interview
from app.extensions import db
from conftest import captured_statements
from integration.test_decisions_support import (approve_all, assign, events, fresh, interview, later, letters_of,
                                                person, register, to_under_review)

FUZZ = settings(max_examples=25, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def url(case) -> str:
    return f"/decisions/case/{case.id}"


def version_of(case) -> str:
    return str(fresh(case.id).version)


@pytest.fixture
def assigned_case(app, make_user, signed_in):
    """A case assigned to a signed-in caseworker: (browser, caseworker, case)."""
    browser, caseworker = signed_in("caseworker")
    case = register(make_user("registration_officer"), person("Haddad", "Rania"))
    assign(case.id, caseworker)
    return browser, caseworker, case


def test_workspace_shows_the_case_and_is_audited(assigned_case):
    """A caseworker of the office sees the status, the people, the interview form; the page is not
    cached and the read is audited."""
    browser, caseworker, case = assigned_case
    page = browser.get(url(case))
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'data-status="assigned"' in body
    assert "Rania Haddad" in body
    assert 'id="interview"' in body and 'name="interview-date"' in body
    assert page.headers["Cache-Control"] == "no-store"
    viewed = [e for e in events(EventCode.RECORD_VIEWED, case.id) if e.details.get("view") == "decision_workspace"]
    assert [e.actor_id for e in viewed] == [caseworker.id]


def test_other_office_and_missing_case_answer_404(app, make_user, signed_in, other_office):
    """Another office's case answers exactly like a missing one."""
    case = register(make_user("registration_officer"))
    browser, _outsider = signed_in("caseworker", office_id=other_office.id)
    assert browser.get(url(case)).status_code == 404
    assert browser.get("/decisions/case/" + "0" * 32).status_code == 404
    assert browser.get("/decisions/letters/" + "0" * 32).status_code == 404


@pytest.mark.parametrize("role", ["registration_officer", "auditor", "admin"])
def test_roles_without_casework_are_refused(app, make_user, signed_in, role):
    """Registration officers, auditors and administrators get 403 on the workspace and the review list."""
    case = register(make_user("registration_officer"))
    browser, _user = signed_in(role)
    assert browser.get(url(case)).status_code == 403
    assert browser.get("/decisions/reviews").status_code == 403


def test_schedule_and_record_interview_through_the_pages(assigned_case):
    """The interview form books the interview (status interview_scheduled); the record form needs
    the interview to have started."""
    browser, _caseworker, case = assigned_case
    when = later(days=3)
    response = browser.post(f"{url(case)}/interviews", {
        "interview-expected_version": version_of(case), "interview-person_id": fresh(case.id).principal.id,
        "interview-date": when.date().isoformat(), "interview-time": when.strftime("%H:%M"),
        "interview-duration_minutes": "90", "interview-place": "Room 2", "interview-interpreter_language": "ara",
        "interview-interpreter_gender": "female", "interview-interpreter_name": "Samira Interpreter",
    }, token_from=url(case))
    assert response.status_code == 302
    assert fresh(case.id).status == "interview_scheduled"
    booked = db.session.query(Interview).one()
    assert (booked.duration_minutes, booked.interpreter_name) == (90, "Samira Interpreter")
    response = browser.post(f"/decisions/interviews/{booked.id}/record", {
        f"record-{booked.id}-expected_version": version_of(case), f"record-{booked.id}-attendance": "attended",
        f"record-{booked.id}-notes": "Notes."}, token_from=url(case))
    assert response.status_code == 422
    assert "An interview is recorded once it has started." in response.get_data(as_text=True)


def test_bad_interview_input_is_422_next_to_the_fields(assigned_case):
    """Missing date, a past time and no place: 422, each message beside its field, nothing booked."""
    browser, _caseworker, case = assigned_case
    response = browser.post(f"{url(case)}/interviews", {
        "interview-expected_version": version_of(case), "interview-person_id": fresh(case.id).principal.id,
        "interview-date": "", "interview-time": "10:00", "interview-duration_minutes": "90",
    }, token_from=url(case))
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(r'id="interview-date-error"><li>Give the date.</li>', body)
    past = later(days=-1)
    response = browser.post(f"{url(case)}/interviews", {
        "interview-expected_version": version_of(case), "interview-person_id": fresh(case.id).principal.id,
        "interview-date": past.date().isoformat(), "interview-time": "10:00", "interview-duration_minutes": "90",
        "interview-interpreter_language": "ara",
    }, token_from=url(case))
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(r'id="interview-date-error"><li>The interview must be in the future.</li>', body)
    assert re.search(r'id="interview-place-error"><li>Give the place, or choose a remote interview.</li>', body)
    assert db.session.query(Interview).count() == 0


def test_double_booking_is_refused_on_the_page(app, make_user, signed_in):
    """Booking the same interpreter over an existing interview shows the refusal next to the name."""
    browser, caseworker = signed_in("caseworker")
    officer = make_user("registration_officer")
    first, second = register(officer), register(officer, person("Okafor", "Chidi", nationality="NGA"))
    assign(first.id, caseworker)
    assign(second.id, caseworker)
    when = later(days=4)
    interview(first.id, make_user("caseworker"), start=when, record=False, interpreter_name="Samira Interpreter")
    response = browser.post(f"{url(second)}/interviews", {
        "interview-expected_version": version_of(second), "interview-person_id": fresh(second.id).principal.id,
        "interview-date": when.date().isoformat(), "interview-time": when.strftime("%H:%M"),
        "interview-duration_minutes": "60", "interview-remote": "y", "interview-interpreter_language": "ara",
        "interview-interpreter_name": "Samira Interpreter",
    }, token_from=url(second))
    assert response.status_code == 422
    assert re.search(r'id="interview-interpreter_name-error"><li>This interpreter is already booked at that time.',
                     response.get_data(as_text=True))


def draft_fields(prefix: str, version: str, *, outcome="rejected_unfounded", reasons="", basis=("APR-39",)) -> dict:
    return {f"{prefix}-expected_version": version, f"{prefix}-outcome": outcome,
            f"{prefix}-legal_basis": list(basis), f"{prefix}-reasons": reasons}


def test_negative_draft_without_reasons_cannot_be_submitted(assigned_case):
    """Saved through the page, a negative draft without reasons is refused at submission with the
    reason shown; with reasons it goes to review."""
    browser, caseworker, case = assigned_case
    interview(case.id, caseworker)
    principal = fresh(case.id).principal
    response = browser.post(f"{url(case)}/person/{principal.id}/draft",
                            draft_fields(f"new-{principal.id}", version_of(case)), token_from=url(case))
    assert response.status_code == 302
    response = browser.post(f"{url(case)}/to/under_review", {"to-under_review-expected_version": version_of(case)},
                            token_from=url(case))
    assert response.status_code == 422
    assert "A negative decision cannot be issued without written reasons." in response.get_data(as_text=True)
    decision = db.session.query(Decision).one()
    response = browser.post(f"/decisions/decision/{decision.id}/edit",
                            draft_fields(f"edit-{decision.id}", version_of(case), reasons="Not credible."),
                            token_from=url(case))
    assert response.status_code == 302
    response = browser.post(f"{url(case)}/to/under_review", {"to-under_review-expected_version": version_of(case)},
                            token_from=url(case))
    assert response.status_code == 302
    assert fresh(case.id).status == "under_review"


def test_conflict_shows_the_users_input_back(app, make_user, signed_in):
    """Two caseworkers open the same draft; the first saves; the second gets 409, a clear message,
    and their own text still in the form; the first one's text is what is stored."""
    first_browser, first = signed_in("caseworker")
    second_browser, _second = signed_in("caseworker")
    case = register(make_user("registration_officer"))
    assign(case.id, first)
    interview(case.id, first)
    principal = fresh(case.id).principal
    first_browser.post(f"{url(case)}/person/{principal.id}/draft",
                       draft_fields(f"new-{principal.id}", version_of(case), reasons="v1"), token_from=url(case))
    decision = db.session.query(Decision).one()
    seen = version_of(case)
    first_browser.post(f"/decisions/decision/{decision.id}/edit",
                       draft_fields(f"edit-{decision.id}", seen, reasons="First caseworker's reasons."),
                       token_from=url(case))
    response = second_browser.post(f"/decisions/decision/{decision.id}/edit",
                                   draft_fields(f"edit-{decision.id}", seen, reasons="Second caseworker's long text."),
                                   token_from=url(case))
    body = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "Someone else changed this case while you were working on it." in body
    assert "Second caseworker&#39;s long text." in body
    assert f'name="edit-{decision.id}-expected_version" type="hidden" value="{version_of(case)}"' in body
    db.session.expire_all()
    assert db.session.get(Decision, decision.id).reasons == "First caseworker's reasons."


def test_reviews_list_and_review_through_the_pages(app, make_user, signed_in):
    """The supervisor finds the draft in "Reviews" (and the nav), approves it from the workspace;
    the caseworker issues and downloads the letter as an audited, uncached attachment."""
    caseworker_browser, caseworker = signed_in("caseworker")
    supervisor_browser, supervisor = signed_in("supervisor")
    case = register(make_user("registration_officer"), person("Haddad", "Rania", language="eng", interpreter=False))
    assign(case.id, caseworker)
    to_under_review(case.id, caseworker)
    home = supervisor_browser.get("/").get_data(as_text=True)
    assert 'href="/decisions/reviews"' in home
    listing = supervisor_browser.get("/decisions/reviews").get_data(as_text=True)
    assert case.reference in listing
    decision = db.session.query(Decision).one()
    response = supervisor_browser.post(f"/decisions/decision/{decision.id}/review", {
        f"review-{decision.id}-expected_version": version_of(case), f"review-{decision.id}-action": "approve"},
        token_from=url(case))
    assert response.status_code == 302
    assert db.session.get(Decision, decision.id).status == "approved"
    assert case.reference not in supervisor_browser.get("/decisions/reviews").get_data(as_text=True)
    response = caseworker_browser.post(f"{url(case)}/issue", {"issue-expected_version": version_of(case)},
                                       token_from=url(case))
    assert response.status_code == 302
    [letter] = letters_of(case.id)
    page = caseworker_browser.get(url(case)).get_data(as_text=True)
    assert f'href="/decisions/letters/{letter.id}"' in page
    download = caseworker_browser.get(f"/decisions/letters/{letter.id}")
    assert download.status_code == 200
    assert download.mimetype == "application/pdf"
    assert download.headers["Content-Disposition"].startswith("attachment; filename=\"decision-")
    assert download.headers["Cache-Control"] == "no-store"
    assert download.data.startswith(b"%PDF")
    [printed] = events(EventCode.DOCUMENT_PRINTED, letter.id)
    assert printed.actor_id == caseworker.id


def test_drafting_supervisor_sees_no_review_form_and_is_refused(app, make_user, signed_in):
    """A supervisor who drafted sees a note instead of the review form; posting anyway is 422."""
    browser, supervisor = signed_in("supervisor")
    caseworker = make_user("caseworker")
    case = register(make_user("registration_officer"))
    assign(case.id, caseworker)
    interview(case.id, caseworker)
    from integration.test_decisions_support import draft_all
    from app.decisions import services

    draft_all(case.id, supervisor)
    services.submit_for_review(case.id, acting_user=caseworker)
    decision = db.session.query(Decision).one()
    page = browser.get(url(case)).get_data(as_text=True)
    assert f'id="review-{decision.id}"' not in page
    assert "another supervisor must review it" in page
    assert "You drafted or edited it" in browser.get("/decisions/reviews").get_data(as_text=True)
    response = browser.post(f"/decisions/decision/{decision.id}/review", {
        f"review-{decision.id}-expected_version": version_of(case), f"review-{decision.id}-action": "approve"},
        token_from=url(case))
    assert response.status_code == 422
    assert db.session.get(Decision, decision.id).status == "submitted"


def test_withdrawal_needs_a_reason_on_the_page(assigned_case):
    """The withdrawal button with an empty reason is refused (422); with one the case is withdrawn."""
    browser, _caseworker, case = assigned_case
    path = f"{url(case)}/to/withdrawn"
    response = browser.post(path, {"to-withdrawn-expected_version": version_of(case), "to-withdrawn-reason": ""},
                            token_from=url(case))
    assert response.status_code == 422
    assert "Give the reason." in response.get_data(as_text=True)
    response = browser.post(path, {"to-withdrawn-expected_version": version_of(case),
                                   "to-withdrawn-reason": "Withdrawn in writing on arrival of the family."},
                            token_from=url(case))
    assert response.status_code == 302
    assert fresh(case.id).status == "withdrawn"


def test_post_without_csrf_token_is_refused(assigned_case):
    """A state change without the CSRF token is 400 and changes nothing."""
    browser, _caseworker, case = assigned_case
    response = browser.client.post(f"{url(case)}/to/withdrawn", data={
        "to-withdrawn-expected_version": version_of(case), "to-withdrawn-reason": "x"})
    assert response.status_code == 400
    assert fresh(case.id).status == "assigned"


def test_random_draft_input_never_breaks_the_page(assigned_case):
    """Random outcomes, codes, reasons and versions: 302, 409 or 422, never a server error, and a
    stored draft always has a known outcome."""
    browser, caseworker, case = assigned_case
    interview(case.id, caseworker)
    principal = fresh(case.id).principal
    token = browser.csrf(url(case))
    prefix = f"new-{principal.id}"
    text = st.one_of(st.text(max_size=30), st.sampled_from(["", "\x00", "refugee_status", "APR-39", "9" * 30, "-1"]))

    @FUZZ
    @given(outcome=text, basis=st.lists(text, max_size=3), reasons=st.text(max_size=200), version=text)
    def check(outcome, basis, reasons, version):
        response = browser.client.post(f"{url(case)}/person/{principal.id}/draft", data={
            "csrf_token": token, f"{prefix}-expected_version": version, f"{prefix}-outcome": outcome,
            f"{prefix}-legal_basis": basis, f"{prefix}-reasons": reasons})
        assert response.status_code in (302, 409, 422), response.status_code
        db.session.rollback()
        outcomes = db.session.scalars(select(Decision.outcome)).all()
        assert set(outcomes) <= {"refugee_status"}

    check()
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.code == int(EventCode.DECISION_DRAFTED))) <= 1


def test_late_appeal_is_flagged_on_the_page(app, make_user, signed_in):
    """An appeal lodged after the deadline is shown flagged late on the workspace."""
    from app.decisions import services

    browser, caseworker = signed_in("caseworker")
    supervisor = make_user("supervisor")
    case = register(make_user("registration_officer"))
    assign(case.id, caseworker, track="accelerated")
    to_under_review(case.id, caseworker, outcome="rejected_unfounded", legal_basis=("APR-39",), reasons="Reasons.")
    approve_all(case.id, supervisor)
    [decision] = services.issue_decisions(case.id, acting_user=caseworker, now=later(days=-20))
    served = later(days=-20).date()
    services.record_service(case.id, acting_user=caseworker, served_on=served, method="in_person")
    response = browser.post(f"/decisions/decision/{decision.id}/appeal", {
        f"appeal-{decision.id}-expected_version": version_of(case),
        f"appeal-{decision.id}-lodged_on": (served + timedelta(days=12)).isoformat()}, token_from=url(case))
    assert response.status_code == 302
    assert 'data-late="true"' in browser.get(url(case)).get_data(as_text=True)


def test_workspace_renders_without_reloading_what_it_read(assigned_case):
    """The workspace commits its RECORD_VIEWED event before the page renders: the interviews and
    decisions it read are rendered as read, not reloaded one query each."""
    browser, caseworker, case = assigned_case
    for _ in range(3):
        interview(case.id, caseworker)
    page = url(case)
    browser.get(page)
    with captured_statements() as seen:
        assert browser.get(page).status_code == 200
    reloads = [s for s in seen if re.search(r"WHERE (interview|decision|person)\.id = ", s)]
    assert reloads == []
