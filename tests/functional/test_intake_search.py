"""Search: by reference, document number, names and date of birth, within the user's office only,
by POST so that no search term ever appears in a URL; audited without the values."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.extensions import db
from app.intake.models import Case
from test_intake_support import errors_near, person_fields, registration_fields, single, text_of


@pytest.fixture
def cases(signed_in, other_office):
    """Two cases in the searching officer's office, one look-alike in another office."""
    browser, user = signed_in("registration_officer")
    family = registration_fields(
        person_fields(0, family="Haddad", given="Omar", dob="1985-04-12", principal=True,
                      documents=[("passport", "N 123-4567", "SYR")]),
        person_fields(1, family="Haddad", given="Sami", dob="2015-02-14", relationship="child"))
    assert browser.post("/cases/register", family).status_code == 302
    assert browser.post("/cases/register", single(family="Nasser", given="Huda", dob="1979-11-02",
                                                  **{"persons-0-birth-sex": "F"})).status_code == 302
    north, _north_user = signed_in("registration_officer", office_id=other_office.id)
    # The look-alike would be held back as a possible duplicate: the officer says it is new.
    assert north.post("/cases/register", {**single(family="Haddad", given="Omar", dob="1985-04-12", **{
        "persons-0-documents-0-type": "passport", "persons-0-documents-0-number": "N1234567"}),
        "duplicate-0": "new"}).status_code == 302
    mine = {c.persons[0].identity["family_name"]: c for c in
            db.session.scalars(select(Case).where(Case.office_id == user.office_id))}
    other = db.session.scalars(select(Case).where(Case.office_id == other_office.id)).one()
    return browser, user, mine, other


def result_rows(page: str) -> list[str]:
    table = re.search(r"<tbody>(.*?)</tbody>", page.split('id="results-title"', 1)[-1], re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
            for row in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)] if table else []


def search(browser, **terms):
    return browser.post("/cases/search", terms)


def test_search_by_reference(cases):
    """The reference (any case) finds every person of that case, with links to the case page."""
    browser, _user, mine, _other = cases
    case = mine["Haddad"]
    response = search(browser, reference=case.reference.lower())
    page = text_of(response)
    assert response.status_code == 200
    rows = result_rows(page)
    assert rows == [f"{case.reference} Haddad, Omar 1985-04-12 Principal applicant",
                    f"{case.reference} Haddad, Sami 2015-02-14 Dependant"]
    assert f'href="/cases/{case.id}?from=search"' in page


def test_search_by_document_number(cases):
    """A document number matches however it is spaced or punctuated, in this office only."""
    browser, _user, mine, other = cases
    page = text_of(search(browser, document_number="n1234567"))
    assert result_rows(page) == [f"{mine['Haddad'].reference} Haddad, Omar 1985-04-12 Principal applicant"]
    assert other.reference not in page


def test_search_by_family_name_and_date_of_birth_ignores_case_and_accents(cases):
    """ "HADDÁD" and the date of birth find Omar Haddad, and not the look-alike of another office."""
    browser, _user, mine, other = cases
    page = text_of(search(browser, family_name="  HADDÁD ", date_of_birth="1985-04-12"))
    assert result_rows(page) == [f"{mine['Haddad'].reference} Haddad, Omar 1985-04-12 Principal applicant"]
    assert other.reference not in page
    assert result_rows(text_of(search(browser, family_name="haddad", given_names="sami"))) == [
        f"{mine['Haddad'].reference} Haddad, Sami 2015-02-14 Dependant"]


def test_another_offices_case_never_appears(cases):
    """Searching the other office's reference or its exact data finds nothing."""
    browser, _user, _mine, other = cases
    page = text_of(search(browser, reference=other.reference))
    assert "0 people found" in page and result_rows(page) == []


def test_search_is_audited_without_the_values(cases):
    """SEARCH_PERFORMED records which criteria were used and the number of hits, never the values."""
    browser, user, _mine, _other = cases
    search(browser, family_name="Nasser", date_of_birth="1979-11-02")
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.code == EventCode.SEARCH_PERFORMED)).one()
    assert event.actor_id == user.id
    assert event.details == {"criteria": ["date_of_birth", "family_name"], "hits": 1}
    assert "Nasser" not in json.dumps(event.details) and "1979" not in json.dumps(event.details)


def test_opening_a_result_is_audited_as_search_result_opened(cases):
    """Following a result link records SEARCH_RESULT_OPENED (not a plain view) for that case."""
    browser, user, mine, _other = cases
    case = mine["Nasser"]
    page = text_of(search(browser, family_name="Nasser"))
    link = re.search(r'href="(/cases/[0-9a-f]{32}\?from=search)"', page).group(1)
    assert browser.get(link).status_code == 200
    opened = db.session.scalars(select(AuditEvent).where(AuditEvent.code == EventCode.SEARCH_RESULT_OPENED)).all()
    assert [(e.subject_id, e.actor_id) for e in opened] == [(case.id, user.id)]


def test_search_terms_never_in_urls(cases):
    """The form posts to a fixed address; results link by random ids only; GET terms are ignored."""
    browser, _user, _mine, _other = cases
    form_page = text_of(browser.get("/cases/search"))
    assert '<form method="post" action="/cases/search"' in form_page
    page = text_of(search(browser, family_name="Haddad"))
    hrefs = re.findall(r'href="([^"]+)"', page)
    assert hrefs and not [h for h in hrefs if "addad" in h or "1985" in h]
    ignored = text_of(browser.get("/cases/search?family_name=Haddad"))
    assert 'id="results-title"' not in ignored


def test_malformed_date_is_a_400_with_the_message_at_the_field(cases):
    """A malformed date of birth answers 400 with the message next to the field; nothing audited."""
    browser, _user, _mine, _other = cases
    response = search(browser, date_of_birth="12/04/1985")
    assert response.status_code == 400
    assert "Enter a date as YYYY-MM-DD." in errors_near(text_of(response), "date_of_birth")
    assert db.session.scalars(select(AuditEvent).where(AuditEvent.code == EventCode.SEARCH_PERFORMED)).all() == []


def test_empty_search_is_refused(cases):
    """At least one criterion is needed (blank spaces do not count)."""
    browser, _user, _mine, _other = cases
    response = search(browser, family_name="   ")
    assert response.status_code == 400
    assert "Enter at least one search criterion." in text_of(response)


def test_too_long_term_is_refused_at_the_field(cases):
    """An over-long term is a 400 with the message next to its field."""
    browser, _user, _mine, _other = cases
    response = search(browser, reference="X" * 41)
    assert response.status_code == 400
    assert errors_near(text_of(response), "reference")


def test_search_needs_the_permission(signed_in):
    """An auditor may not search (403)."""
    browser, _user = signed_in("auditor")
    assert browser.get("/cases/search").status_code == 403
