"""The case page: every section for the roles allowed, S3 sections only with their permission,
codes shown as names, flags and deadlines, the case history; other offices' cases are 404."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.auth.permissions import ROLE_PERMISSIONS, Permission, Role
from app.extensions import db
from app.intake.models import Case
from conftest import captured_statements
from test_intake_support import single, text_of

STATEMENT = "Detained for three weeks after the demonstration."
BASIS = "Named in a wanted-persons notice."


@pytest.fixture
def case(signed_in) -> Case:
    browser, _user = signed_in("registration_officer")
    data = single(made="2026-06-01", registered="2026-06-12", dob="2009-02-03", **{
        "persons-0-language-languages-0": "prs", "persons-0-language-preferred_language": "prs",
        "persons-0-family-unaccompanied_minor": "y",
        "persons-0-nationality-nationalities-0": "AFG",
        "persons-0-documents-0-type": "passport", "persons-0-documents-0-number": "P998877",
        "persons-0-documents-0-issuing_country": "AFG",
        "persons-0-claim-grounds": ["religion"], "persons-0-claim-statement": STATEMENT,
        "persons-0-security-flag": "y", "persons-0-security-basis": BASIS,
        "persons-0-special_needs-vulnerabilities": ["unaccompanied_minor", "torture_rape_serious_violence"],
    })
    response = browser.post("/cases/register", data)
    assert response.status_code == 302, text_of(response)[:1000]
    return db.session.scalars(select(Case)).one()


def events(code: EventCode) -> list[AuditEvent]:
    return db.session.scalars(select(AuditEvent).where(AuditEvent.code == code)).all()


def test_caseworker_sees_every_section_with_names_for_codes(signed_in, case):
    """A caseworker of the office sees identity, documents and the S3 sections (claim, security,
    special needs), with countries and languages by name; the view is audited as RECORD_VIEWED."""
    browser, user = signed_in("caseworker")
    response = browser.get(f"/cases/{case.id}")
    page = text_of(response)
    assert response.status_code == 200
    assert f"Case {case.reference}" in page and "Haddad" in page and "P998877" in page
    assert "Afghanistan" in page and "Dari" in page
    assert ">AFG<" not in page and ">prs<" not in page
    assert STATEMENT in page and BASIS in page
    assert "Torture, rape or other serious violence" in page and "Religion" in page
    assert "restricted to roles that need them" not in page
    viewed = events(EventCode.RECORD_VIEWED)
    assert [(e.subject_id, e.actor_id, e.details) for e in viewed] == [
        (case.id, user.id, {"special_category_shown": True})]


def test_flags_and_deadlines_shown(signed_in, case):
    """Late registration, the representative deadline and the special-needs assessment date."""
    browser, _user = signed_in("caseworker")
    page = text_of(browser.get(f"/cases/{case.id}"))
    flags = re.search(r'<section class="flags".*?</section>', page, re.S).group(0)
    assert "Late registration: registered 11 days after the claim was made" in flags
    assert "one must be appointed by 2026-07-03" in flags  # 12 June + 15 working days
    assert "Special-needs assessment due by 2026-07-01." in flags
    assert "Overdue." in flags


def test_case_history_lists_events_without_details(signed_in, case):
    """The history shows time, role and event name of the case's audit events, never the details."""
    browser, _user = signed_in("caseworker")
    browser.get(f"/cases/{case.id}")
    page = text_of(browser.get(f"/cases/{case.id}"))
    history = re.search(r'<section aria-labelledby="history-title">.*?</section>', page, re.S).group(0)
    rows = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
            for row in re.findall(r"<tr><td>(.*?)</tr>", history, re.S)]
    labels = [row.split(" ", 2)[-1] for row in rows]
    assert labels[0] == "Registration officer Claim registered" and labels[-1] == "Caseworker Case opened"
    subject_events = db.session.scalars(select(AuditEvent).where(AuditEvent.subject_id == case.id)).all()
    assert len(rows) == len(subject_events) - 1  # all but the view that rendered this page
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", rows[0])
    assert case.reference not in history and "special_category_shown" not in history


def test_s3_sections_hidden_without_the_permission(signed_in, case, monkeypatch):
    """A role with case.view but without the special-category permission sees a note instead of
    the S3 sections, and the audit records that they were not shown."""
    monkeypatch.setitem(ROLE_PERMISSIONS, Role.CASEWORKER,
                        ROLE_PERMISSIONS[Role.CASEWORKER] - {Permission.CASE_VIEW_SPECIAL_CATEGORY})
    browser, _user = signed_in("caseworker")
    page = text_of(browser.get(f"/cases/{case.id}"))
    assert "Haddad" in page and "P998877" in page
    assert STATEMENT not in page and BASIS not in page and "Torture" not in page
    assert "restricted to roles that need them" in page
    assert "Edit the registration" not in page
    assert events(EventCode.RECORD_VIEWED)[-1].details == {"special_category_shown": False}
    assert browser.get(f"/cases/{case.id}/edit").status_code == 403


@pytest.mark.parametrize("role", ["auditor", "admin"])
def test_auditor_and_admin_get_403(signed_in, case, role):
    """Roles without case.view are refused (403) and nothing of the case is shown."""
    browser, _user = signed_in(role)
    response = browser.get(f"/cases/{case.id}")
    assert response.status_code == 403
    assert "Haddad" not in text_of(response)
    assert events(EventCode.RECORD_VIEWED) == []


def test_other_office_gets_404_and_the_denial_is_audited(signed_in, case, other_office):
    """A registration officer of another office gets the 404 page, like a missing case, and an
    ACCESS_DENIED event names the case; a missing or malformed id is a plain 404."""
    browser, user = signed_in("registration_officer", office_id=other_office.id)
    response = browser.get(f"/cases/{case.id}")
    assert response.status_code == 404
    assert "Haddad" not in text_of(response) and case.reference not in text_of(response)
    denied = events(EventCode.ACCESS_DENIED)
    assert [(e.subject_id, e.actor_id, e.outcome) for e in denied] == [(case.id, user.id, "denied")]
    assert browser.get(f"/cases/{case.id}/edit").status_code == 404
    assert browser.get("/cases/" + "0" * 32).status_code == 404
    assert browser.get("/cases/%00").status_code == 404
    assert events(EventCode.RECORD_VIEWED) == []


def test_edit_link_for_those_who_may_edit(signed_in, case):
    """The case page links to the edit page for a role with case.edit."""
    browser, _user = signed_in("registration_officer")
    assert f'href="/cases/{case.id}/edit"' in text_of(browser.get(f"/cases/{case.id}"))


def test_case_history_is_read_in_one_query(signed_in, case):
    """The case page reads its eleven-event history in one query: the service commits the
    RECORD_VIEWED event before the page renders, and event entities it had loaded would each be
    reloaded with a query of their own."""
    browser, _user = signed_in("caseworker")
    page = f"/cases/{case.id}"  # read once: the fixture's entity reloads after each commit
    for _ in range(11):
        browser.get(page)
    with captured_statements() as seen:
        assert browser.get(page).status_code == 200
    history_reads = [s for s in seen if "FROM audit_event" in s]
    assert len(history_reads) == 1
