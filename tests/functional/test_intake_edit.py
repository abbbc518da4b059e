"""Editing a registration with optimistic locking: the form prefilled from the stored case, an
unchanged save changes nothing, and two editors of the same version get a conflict page for the
second, with both versions shown and nothing typed lost."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.extensions import db
from app.intake.models import Case
from test_intake_support import (errors_near, form_values, person_fields, post_form, registration_fields, text_of)


@pytest.fixture
def case(signed_in) -> Case:
    browser, _user = signed_in("registration_officer")
    principal = person_fields(0, family="Haddad", given="Omar", dob="1985-04-12", principal=True,
                              documents=[("passport", "N1234567", "SYR")])
    principal.update({"persons-0-identity-aliases": "Omar Hadad", "persons-0-language-languages-0": "ara",
                      "persons-0-language-preferred_language": "ara", "persons-0-language-interpreter_needed": "y",
                      "persons-0-claim-grounds": ["religion"], "persons-0-claim-statement": "First statement.",
                      "persons-0-history-return_decision-received_on": "2024-01-15",
                      "arrival-authorised_to_enter": "no", "arrival-fulfils_entry_conditions": "yes",
                      "arrival-transit_countries-0": "TUR", "arrival-transit_countries-1": "GRC",
                      "arrival-entry_date": "2026-05-30", "arrival-entry_place": "Chiasso",
                      # Every kind of sub-section, so the round trip through the edit form is covered.
                      "persons-0-biometrics-record_ref": "BIO-1",
                      "persons-0-biometrics-eurodac_hits-0-member_state": "GRC",
                      "persons-0-biometrics-eurodac_hits-0-category": "irregular_entry",
                      "persons-0-biometrics-eurodac_hits-0-hit_date": "2026-05-20",
                      "persons-0-history-previous_applications-0-member_state": "DEU",
                      "persons-0-history-previous_applications-0-decision": "rejected",
                      "persons-0-history-previous_applications-0-final": "y",
                      "persons-0-history-first_country_of_asylum-country": "TUR",
                      "persons-0-history-safe_third_country-country": "TUR",
                      "persons-0-history-safe_third_country-basis": "transit",
                      "persons-0-history-protection_granted_by": "ITA",
                      "persons-0-family-members_elsewhere-0-relationship": "sibling",
                      "persons-0-family-members_elsewhere-0-family_name": "Haddad",
                      "persons-0-family-members_elsewhere-0-member_state": "SWE",
                      "persons-0-special_needs-vulnerabilities": ["disability", "serious_illness"],
                      "persons-0-special_needs-special_procedural_guarantees_needed": "y",
                      "persons-0-special_needs-adequate_support-border_location": None,
                      "persons-0-documents-0-valid_until": "2030-01-31", "persons-0-documents-0-withheld": "y"})
    principal = {key: value for key, value in principal.items() if value is not None}
    child = person_fields(1, family="Haddad", given="Sami", dob="2015-02-14", relationship="child")
    response = browser.post("/cases/register", registration_fields(principal, child, made="2026-06-01",
                                                                   registered="2026-06-02"))
    assert response.status_code == 302, text_of(response)[:1000]
    return db.session.scalars(select(Case)).one()


def edit_values(browser, case: Case):
    page = text_of(browser.get(f"/cases/{case.id}/edit"))
    return form_values(page, f"/cases/{case.id}/edit"), page


def test_edit_form_is_prefilled_and_an_unchanged_save_changes_nothing(signed_in, case):
    """The edit form shows the stored values; posting it unchanged saves with no changed field."""
    browser, _user = signed_in("registration_officer")
    values, page = edit_values(browser, case)
    assert values["persons-0-identity-family_name"] == "Haddad"
    assert values["persons-1-relationship"] == "child" and values["persons-0-principal"] == "y"
    assert values["arrival-authorised_to_enter"] == "no" and values["arrival-transit_countries-1"] == "GRC"
    assert values.getlist("persons-0-claim-grounds") == ["religion"]
    assert values["persons-0-identity-aliases"] == "Omar Hadad"
    assert values["persons-0-history-return_decision-received_on"] == "2024-01-15"
    assert values["expected_version"] == str(case.version)
    stored = case.persons[0]
    assert stored.biometrics["eurodac_hits"] == [{"member_state": "GRC", "category": "irregular_entry",
                                                  "hit_date": "2026-05-20"}]
    assert stored.history["previous_applications"][0]["decision"] == "rejected"
    assert stored.history["safe_third_country"]["basis"] == "transit"
    assert stored.special_needs["adequate_support"] == {"border_location": False, "accelerated_procedure": True}
    assert stored.family["members_elsewhere"][0]["member_state"] == "SWE"
    response = post_form(browser, f"/cases/{case.id}/edit", values, action="save")
    assert response.status_code == 302, text_of(response)[:2000]
    updated = db.session.scalars(select(AuditEvent).where(AuditEvent.code == EventCode.CASE_UPDATED)).one()
    assert updated.details == {"changed": {}}


def test_edit_saves_a_change_and_audits_old_and_new(signed_in, case):
    """A changed statement is saved and the audit event carries the old and new values."""
    browser, _user = signed_in("registration_officer")
    values, _page = edit_values(browser, case)
    response = post_form(browser, f"/cases/{case.id}/edit", values, action="save",
                         **{"persons-0-claim-statement": "Second statement."})
    assert response.status_code == 302
    assert "Case " + case.reference + " saved." in text_of(browser.get(response.headers["Location"]))
    db.session.expire_all()
    assert db.session.get(Case, case.id).persons[0].claim["statement"] == "Second statement."
    updated = db.session.scalars(select(AuditEvent).where(AuditEvent.code == EventCode.CASE_UPDATED)).one()
    assert updated.details == {"changed": {"persons.0.claim.statement": {"old": "First statement.",
                                                                         "new": "Second statement."}}}


def test_invalid_edit_is_refused_next_to_the_field(signed_in, case):
    """An edit breaking a rule answers 422 with the message at the field; nothing changes."""
    browser, _user = signed_in("registration_officer")
    values, _page = edit_values(browser, case)
    response = post_form(browser, f"/cases/{case.id}/edit", values, action="save",
                         **{"persons-0-birth-date_of_birth": "2999-01-01"})
    assert response.status_code == 422
    assert "Date in the future" in errors_near(text_of(response), "persons-0-birth-date_of_birth")
    db.session.expire_all()
    assert db.session.get(Case, case.id).persons[0].birth["date_of_birth"] == "1985-04-12"


def test_second_editor_gets_a_conflict_page_and_can_reapply(signed_in, case):
    """Two officers open the same version; the first saves; the second gets 409 with both values
    side by side and its typed value still in the form; the database keeps the first's value;
    saving again from the conflict page applies the second's change on top."""
    first, _first_user = signed_in("registration_officer")
    second, _second_user = signed_in("registration_officer")
    first_values, _ = edit_values(first, case)
    second_values, _ = edit_values(second, case)
    assert first_values["expected_version"] == second_values["expected_version"]

    saved = post_form(first, f"/cases/{case.id}/edit", first_values, action="save",
                      **{"persons-0-identity-given_names": "Omar Khalil"})
    assert saved.status_code == 302
    response = post_form(second, f"/cases/{case.id}/edit", second_values, action="save",
                         **{"persons-0-identity-given_names": "Omer", "persons-0-contact-address": "Room 7"})
    page = text_of(response)
    assert response.status_code == 409
    assert "Someone else saved this case while you were editing it" in page
    table = re.search(r'<table class="conflict-table">.*?</table>', page, re.S).group(0)
    rows = {re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
            for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S)}
    assert ("Person 1 › Identity › Given names persons.0.identity.given_names Omar Khalil Omer") in rows
    assert ("Person 1 › Contact › Address persons.0.contact.address not given Room 7") in rows
    assert 'id="persons-0-identity-given_names" name="persons-0-identity-given_names" type="text" value="Omer"' in page
    db.session.expire_all()
    stored = db.session.get(Case, case.id)
    assert stored.persons[0].identity["given_names"] == "Omar Khalil" and stored.persons[0].contact["address"] is None

    again = form_values(page, f"/cases/{case.id}/edit")
    assert again["expected_version"] == str(stored.version)
    response = post_form(second, f"/cases/{case.id}/edit", again, action="save")
    assert response.status_code == 302
    db.session.expire_all()
    stored = db.session.get(Case, case.id)
    assert stored.persons[0].identity["given_names"] == "Omer" and stored.persons[0].contact["address"] == "Room 7"


def test_stale_version_never_overwrites(signed_in, case):
    """Posting an old expected_version is always a conflict, even from the same user."""
    browser, _user = signed_in("registration_officer")
    values, _page = edit_values(browser, case)
    assert post_form(browser, f"/cases/{case.id}/edit", values, action="save").status_code == 302
    response = post_form(browser, f"/cases/{case.id}/edit", values, action="save",
                         **{"persons-0-identity-family_name": "Changed"})
    assert response.status_code == 409
    db.session.expire_all()
    assert db.session.get(Case, case.id).persons[0].identity["family_name"] == "Haddad"


def test_malformed_version_is_a_bad_request(signed_in, case):
    """A missing or non-numeric expected_version is refused with 400."""
    browser, _user = signed_in("registration_officer")
    values, _page = edit_values(browser, case)
    assert post_form(browser, f"/cases/{case.id}/edit", values, action="save",
                     expected_version="latest").status_code == 400


def test_principal_cannot_be_removed_and_a_dependant_only_goes_when_saved(signed_in, case):
    """On the edit page the principal applicant (person 1) has no Remove button, and a forged
    press is ignored; a saved dependant has one, and pressing it only takes them off the form:
    the case keeps them until the edit is saved."""
    browser, _user = signed_in("registration_officer")
    values, page = edit_values(browser, case)
    assert 'name="remove" value="persons-0"' not in page and 'name="remove" value="persons-1"' in page
    page = text_of(post_form(browser, f"/cases/{case.id}/edit", values, remove="persons-0"))
    assert 'name="persons-1-identity-family_name"' in page  # refused: still two people
    page = text_of(post_form(browser, f"/cases/{case.id}/edit", values, remove="persons-1"))
    assert 'name="persons-1-identity-family_name"' not in page
    assert 'name="persons-0-identity-family_name" type="text" value="Haddad"' in page
    db.session.expire_all()
    assert len(db.session.get(Case, case.id).persons) == 2
