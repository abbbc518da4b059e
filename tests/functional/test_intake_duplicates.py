"""The duplicate check before saving: candidates shown with their reasons, nothing saved until
the officer decides for each person, then "new" or "link" recorded and audited."""

from __future__ import annotations

import re

from sqlalchemy import select

from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.extensions import db
from app.intake.models import Case, Person
from test_intake_support import case_count, errors_near, form_values, post_form, single, summary_links, text_of


def register(browser, family: str, given: str, **extra):
    return browser.post("/cases/register", single(family=family, given=given, dob="1990-03-05", **extra))


def events(code: EventCode) -> list[AuditEvent]:
    return db.session.scalars(select(AuditEvent).where(AuditEvent.code == code)).all()


def test_possible_duplicate_shown_then_confirmed_new_then_linked(signed_in):
    """A second spelling of a registered person shows the candidate and saves nothing; confirming
    "new" saves with DUPLICATE_CONFIRMED_NEW; a third registration linked to the first sets
    linked_person_id and records DUPLICATE_LINKED."""
    browser, _user = signed_in("registration_officer")
    assert register(browser, "Al-Hassan", "Mohammed").status_code == 302
    first_case = db.session.scalars(select(Case)).one()
    first = first_case.persons[0]

    response = register(browser, "Al Hasan", "Muhammad")
    page = text_of(response)
    assert response.status_code == 409
    assert case_count() == 1
    assert "Possible duplicates: nothing is saved yet" in page
    block = re.search(r'<fieldset class="duplicate-choice.*?</fieldset>', page, re.S).group(0)
    assert first_case.reference in block and "HQ" in block
    assert "Al-Hassan, Mohammed" in block and "1990-03-05" in block and "Syrian Arab Republic" in block
    # Reasons in words (the matcher reads the two spellings as the same transliterated name).
    assert re.search(r"<td>(same name|similar name \(another spelling\)); same date of birth; same nationality</td>",
                     block)
    assert re.search(r"<td>\d+ %</td>", block)
    assert f'name="duplicate-0" value="{first.id}"' in block and 'name="duplicate-0" value="new"' in block
    assert f"This is the same person: link to {first_case.reference}" in block

    # The form is all there again: answering the question is enough.
    values = form_values(page, "/cases/register")
    assert values["persons-0-identity-family_name"] == "Al Hasan" and values["duplicate_step"] == "1"
    response = post_form(browser, "/cases/register", values, **{"duplicate-0": "new", "action": "register"})
    assert response.status_code == 302, text_of(response)[:1000]
    assert case_count() == 2
    second = db.session.scalars(select(Person).where(Person.case_id != first_case.id)).one()
    assert second.linked_person_id is None
    confirmed = events(EventCode.DUPLICATE_CONFIRMED_NEW)
    assert [(e.subject_id, e.details) for e in confirmed] == [
        (second.case_id, {"person_position": 0, "linked_person_id": None})]

    response = register(browser, "Alhassan", "Mohamed")
    assert response.status_code == 409
    page = text_of(response)
    assert f'name="duplicate-0" value="{first.id}"' in page
    values = form_values(page, "/cases/register")
    response = post_form(browser, "/cases/register", values, **{"duplicate-0": first.id, "action": "register"})
    assert response.status_code == 302
    assert case_count() == 3
    third = db.session.scalars(select(Person).where(Person.case_id.not_in([first_case.id, second.case_id]))).one()
    assert third.linked_person_id == first.id
    linked = events(EventCode.DUPLICATE_LINKED)
    assert [(e.subject_id, e.details["linked_person_id"]) for e in linked] == [(third.case_id, first.id)]


def test_a_decision_is_required_for_each_person(signed_in):
    """Answering the duplicate step without a choice asks again, with the message at the choice."""
    browser, _user = signed_in("registration_officer")
    register(browser, "Al-Hassan", "Mohammed")
    values = form_values(text_of(register(browser, "Al Hasan", "Muhammad")), "/cases/register")
    response = post_form(browser, "/cases/register", values, action="register")
    page = text_of(response)
    assert response.status_code == 409 and case_count() == 1
    assert "Choose whether this is a person already registered or a new person." in errors_near(page, "duplicate-0")
    assert summary_links(page) == ["duplicate-0-0"]


def test_only_a_candidate_can_be_linked(signed_in, make_user, other_office):
    """A link to a person id that was not among the candidates is refused, nothing saved."""
    browser, _user = signed_in("registration_officer")
    register(browser, "Al-Hassan", "Mohammed")
    register(browser, "Haddad", "Omar")  # not a candidate for the next registration
    unrelated = db.session.scalars(select(Person)).all()
    unrelated_id = next(p.id for p in unrelated if p.identity["family_name"] == "Haddad")
    values = form_values(text_of(register(browser, "Al Hasan", "Muhammad")), "/cases/register")
    response = post_form(browser, "/cases/register", values, **{"duplicate-0": unrelated_id, "action": "register"})
    assert response.status_code == 422
    assert "not one of the candidates" in errors_near(text_of(response), "persons-0")
    assert case_count() == 2


def test_candidates_from_another_office_are_shown(signed_in, other_office):
    """Duplicate detection spans offices: a person registered elsewhere is a candidate too."""
    north, _north_user = signed_in("registration_officer", office_id=other_office.id)
    register(north, "Al-Hassan", "Mohammed")
    browser, _user = signed_in("registration_officer")
    response = register(browser, "Al Hasan", "Muhammad")
    assert response.status_code == 409
    assert "<td>NORTH</td>" in text_of(response)


def test_dependant_and_principal_each_decided(signed_in):
    """With candidates for two people, each gets its own question; deciding one is not enough,
    and the choice already made stays selected."""
    browser, _user = signed_in("registration_officer")
    data = single(family="Al-Hassan", given="Mohammed", dob="1990-03-05")
    data.update({"persons-1-identity-family_name": "Al-Hassan", "persons-1-identity-given_names": "Fatima",
                 "persons-1-birth-date_of_birth": "1992-07-21", "persons-1-birth-sex": "F",
                 "persons-1-nationality-nationalities-0": "SYR", "persons-1-relationship": "spouse"})
    assert browser.post("/cases/register", data).status_code == 302
    data["persons-0-identity-family_name"] = data["persons-1-identity-family_name"] = "Al Hasan"
    page = text_of(browser.post("/cases/register", data))
    assert 'name="duplicate-0"' in page and 'name="duplicate-1"' in page
    values = form_values(page, "/cases/register")
    response = post_form(browser, "/cases/register", values, **{"duplicate-0": "new", "action": "register"})
    page = text_of(response)
    assert response.status_code == 409 and case_count() == 1
    assert 'name="duplicate-0" value="new" required checked' in page
    assert "Choose whether" in errors_near(page, "duplicate-1")
    values = form_values(page, "/cases/register")
    response = post_form(browser, "/cases/register", values, **{"duplicate-1": "new", "action": "register"})
    assert response.status_code == 302 and case_count() == 2
    assert len(events(EventCode.DUPLICATE_CONFIRMED_NEW)) == 2
