"""Every validation rule of REGISTRATION.md through the registration form: refused with 422, the
message next to the right field (or under its section's legend), a link to it in the error
summary, and nothing saved."""

from __future__ import annotations

import pytest

from test_intake_support import (TODAY, case_count, days_ago, errors_near, person_fields, registration_fields, single,
                                 summary_links, text_of)

TOMORROW = TODAY.replace(year=TODAY.year + 1).isoformat()


def with_dependant(**dependant_fields) -> dict:
    data = single()
    data.update(person_fields(1, family="Haddad", given="Sami", dob="2015-02-14", relationship="child"))
    data.update(dependant_fields)
    return data


def without(data: dict, *keys: str) -> dict:
    return {k: v for k, v in data.items() if k not in keys}


# (case, form data, field or section id where the message must appear, message, summary link target)
RULES = [
    ("registered before made", single(made=days_ago(2), registered=days_ago(5)),
     "registered_on", "The claim cannot be registered before it was made", "registered_on"),
    ("lodged before registered", single(made=days_ago(5), registered=days_ago(3), lodged_on=days_ago(4)),
     "lodged_on", "The claim cannot be lodged before it was registered", "lodged_on"),
    ("made in the future", single(made=TOMORROW, registered=TOMORROW),
     "made_on", "Date in the future", "made_on"),
    ("date of birth in the future", single(dob=TOMORROW),
     "persons-0-birth-date_of_birth", "Date in the future", "persons-0-birth-date_of_birth"),
    ("malformed date of birth", single(dob="12.04.1985"),
     "persons-0-birth-date_of_birth", "Enter a date as YYYY-MM-DD.", "persons-0-birth-date_of_birth"),
    ("unknown nationality code", {**single(), "persons-0-nationality-nationalities-0": "ZZZ"},
     "persons-0-nationality-nationalities-0", "Unknown country code", "persons-0-nationality-nationalities-0"),
    ("unknown country in a document", {**single(), "persons-0-documents-0-type": "passport",
                                       "persons-0-documents-0-issuing_country": "Syria"},
     "persons-0-documents-0-issuing_country", "Unknown country code", "persons-0-documents-0-issuing_country"),
    ("unknown language code", {**single(), "persons-0-language-languages-0": "klingon"},
     "persons-0-language-languages-0", "Unknown language code", "persons-0-language-languages-0"),
    ("unknown preferred language", {**single(), "persons-0-language-preferred_language": "xx"},
     "persons-0-language-preferred_language", "Unknown language code", "persons-0-language-preferred_language"),
    ("stateless without former residence",
     {**without(single(), "persons-0-nationality-nationalities-0"), "persons-0-nationality-stateless": "y"},
     "persons-0-nationality", "For a stateless person, give the country of former habitual residence",
     "persons-0-nationality-nationalities-0"),
    ("neither nationality nor stateless", without(single(), "persons-0-nationality-nationalities-0"),
     "persons-0-nationality", "Choose at least one nationality, or mark the person stateless",
     "persons-0-nationality-nationalities-0"),
    ("no principal applicant", {**without(with_dependant(), "persons-0-principal"), "persons-0-relationship": "spouse"},
     "persons", "Mark exactly one person as the principal applicant", "persons-0-principal"),
    ("two principal applicants", with_dependant(**{"persons-1-principal": "y"}),
     "persons", "Mark exactly one person as the principal applicant", "persons-0-principal"),
    ("unaccompanied minor 18 on the day the claim was made",
     single(dob="2008-06-01", made="2026-06-01", registered="2026-06-02",
            **{"persons-0-family-unaccompanied_minor": "y"}),
     "persons-0-family-unaccompanied_minor", "An unaccompanied minor must be under 18 on the day the claim was made",
     "persons-0-family-unaccompanied_minor"),
    ("dependant without relationship", without(with_dependant(), "persons-1-relationship"),
     "persons-1", "Give the dependant's relationship to the principal applicant", "persons-1-principal"),
    ("interpreter needed without language", {**single(), "persons-0-language-interpreter_needed": "y"},
     "persons-0-language", "An interpreter is needed: choose the preferred language",
     "persons-0-language-languages-0"),
    ("security flag without basis", {**single(), "persons-0-security-flag": "y"},
     "persons-0-security", "A security flag needs its basis", "persons-0-security-flag"),
    ("malformed email", {**single(), "persons-0-contact-email": "omar-at-example"},
     "persons-0-contact-email", "Enter a valid email address.", "persons-0-contact-email"),
    ("malformed phone", {**single(), "persons-0-contact-phone": "call me maybe"},
     "persons-0-contact-phone", "Enter a phone number: digits, spaces and + ( ) - . / only.",
     "persons-0-contact-phone"),
    ("no name at all", without(single(), "persons-0-identity-family_name", "persons-0-identity-given_names"),
     "persons-0-identity", "Enter a family name or given names", "persons-0-identity-family_name"),
    ("sex not chosen", without(single(), "persons-0-birth-sex"),
     "persons-0-birth-sex", "This field is required.", "persons-0-birth-sex"),
    ("document without type", {**single(), "persons-0-documents-0-number": "N123"},
     "persons-0-documents-0-type", "This field is required.", "persons-0-documents-0-type"),
    ("bogus coded value", {**single(), "persons-0-relationship": "boss"},
     "persons-0-relationship", "Choose one of the listed options.", "persons-0-relationship"),
]


@pytest.mark.parametrize(("data", "target", "message", "link"), [rule[1:] for rule in RULES],
                         ids=[rule[0] for rule in RULES])
def test_rule_refused_next_to_its_field(signed_in, data, target, message, link):
    """The rule's message appears next to its field and in the summary; 422 and nothing saved."""
    browser, _user = signed_in("registration_officer")
    before = case_count()
    response = browser.post("/cases/register", data)
    page = text_of(response)
    assert response.status_code == 422, page[:500]
    assert message in errors_near(page, target)
    assert link in summary_links(page)
    assert case_count() == before


def test_every_failure_is_reported_at_once(signed_in):
    """Several broken rules are all reported in one answer, each at its own field."""
    browser, _user = signed_in("registration_officer")
    data = {**single(made=days_ago(2), registered=days_ago(5), dob=TOMORROW),
            "persons-0-contact-email": "nope", "persons-0-security-flag": "y"}
    page = text_of(browser.post("/cases/register", data))
    assert "cannot be registered before it was made" in errors_near(page, "registered_on")
    assert "Date in the future" in errors_near(page, "persons-0-birth-date_of_birth")
    assert "Enter a valid email address." in errors_near(page, "persons-0-contact-email")
    assert "A security flag needs its basis" in errors_near(page, "persons-0-security")
    assert summary_links(page)[:2] == ["registered_on", "persons-0-birth-date_of_birth"]  # page order
    assert case_count() == 0


def test_field_with_error_is_marked_invalid_and_described(signed_in):
    """A field in error carries aria-invalid and points at its message with aria-describedby."""
    browser, _user = signed_in("registration_officer")
    page = text_of(browser.post("/cases/register", single(dob=TOMORROW)))
    assert ('aria-describedby="persons-0-birth-date_of_birth-hint persons-0-birth-date_of_birth-error" '
            'aria-invalid="true" id="persons-0-birth-date_of_birth"') in page
    assert 'value="Haddad"' in page  # what was typed is kept


def test_unaccompanied_minor_over_18_allowed_when_age_disputed(signed_in):
    """The same 18-year-old "minor" is accepted when the age is marked as disputed."""
    browser, _user = signed_in("registration_officer")
    data = single(dob="2008-06-01", made="2026-06-01", registered="2026-06-02",
                  **{"persons-0-family-unaccompanied_minor": "y", "persons-0-family-age_disputed": "y"})
    response = browser.post("/cases/register", data)
    assert response.status_code == 302, text_of(response)[:500]
    assert case_count() == 1


def test_seventeen_year_old_unaccompanied_minor_allowed(signed_in):
    """A minor who turns 18 the day after the claim was made is still a minor."""
    browser, _user = signed_in("registration_officer")
    data = single(dob="2008-06-02", made="2026-06-01", registered="2026-06-02",
                  **{"persons-0-family-unaccompanied_minor": "y"})
    assert browser.post("/cases/register", data).status_code == 302


def test_stateless_with_former_residence_allowed(signed_in):
    """A stateless person with a former habitual residence is accepted."""
    browser, _user = signed_in("registration_officer")
    data = {**without(single(), "persons-0-nationality-nationalities-0"), "persons-0-nationality-stateless": "y",
            "persons-0-nationality-former_habitual_residence": "KWT"}
    assert browser.post("/cases/register", data).status_code == 302


def test_estimated_date_of_birth_with_precision_allowed(signed_in):
    """An estimated date of birth known to the year only is accepted and stored with its precision."""
    from sqlalchemy import select

    from app.extensions import db
    from app.intake.models import Person

    browser, _user = signed_in("registration_officer")
    data = single(dob="1990-01-01", **{"persons-0-birth-precision": "year", "persons-0-birth-estimated": "y"})
    assert browser.post("/cases/register", data).status_code == 302
    person = db.session.scalars(select(Person)).one()
    assert person.birth["precision"] == "year" and person.birth["estimated"] is True


def test_registration_without_csrf_token_is_refused(signed_in):
    """A post without the CSRF token is refused (400) and saves nothing."""
    browser, _user = signed_in("registration_officer")
    response = browser.client.post("/cases/register", data=registration_fields(
        person_fields(0, family="Haddad", given="Omar", dob="1985-04-12", principal=True)))
    assert response.status_code == 400
    assert case_count() == 0
