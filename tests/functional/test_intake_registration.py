"""Registering a claim through the registration form: a family, flags and deadlines, the form's
shape (labels, no inline script or style), adding and removing entries, and drafts."""

from __future__ import annotations

import re
from datetime import date, timedelta

from sqlalchemy import func, select

from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.extensions import db
from app.intake.models import Case, RegistrationDraft
from test_intake_support import (case_count, days_ago, form_values, person_fields, post_form, registration_fields,
                                 single, text_of)


def family_fields() -> dict:
    principal = person_fields(0, family="Haddad", given="Omar", dob="1985-04-12", principal=True,
                              documents=[("passport", "N1234567", "SYR")])
    principal.update({
        "persons-0-identity-aliases": "Omar Hadad\nOmer Haddad",
        "persons-0-identity-original_script_name": "عمر حداد",
        "persons-0-birth-place_of_birth": "Aleppo",
        "persons-0-language-languages-0": "ara", "persons-0-language-languages-1": "kmr",
        "persons-0-language-preferred_language": "ara", "persons-0-language-interpreter_needed": "y",
        "persons-0-contact-address": "Reception centre Nord, room 12",
        "persons-0-contact-phone": "+41 79 123 45 67", "persons-0-contact-email": "omar@example.org",
        "persons-0-claim-grounds": ["political_opinion", "religion"],
        "persons-0-claim-statement": "Arrested twice for attending protests.",
        "persons-0-documents-1-type": "national_id", "persons-0-documents-1-number": "SY-99-1234",
        "persons-0-documents-1-issuing_country": "SYR", "persons-0-documents-1-authenticity": "genuine",
    })
    spouse = person_fields(1, family="Haddad", given="Leila", dob="1988-09-30", sex="F", relationship="spouse",
                           documents=[("national_id", "SY-88-4321", "SYR")])
    child = person_fields(2, family="Haddad", given="Sami", dob="2015-02-14", relationship="child",
                          documents=[("birth_certificate", "BC-2015-777", "SYR")])
    child["persons-2-special_needs-vulnerabilities"] = ["minor"]
    return registration_fields(principal, spouse, child, made=days_ago(4), registered=days_ago(3),
                               made_place="Basel office")


def test_family_registered_through_the_form(signed_in):
    """A principal applicant and two dependants with documents become one case of three people
    whose decrypted sections are exactly what was typed, with a CASE_REGISTERED event."""
    browser, user = signed_in("registration_officer")
    before = case_count()
    response = browser.post("/cases/register", family_fields(), token_from="/cases/register")
    assert response.status_code == 302, text_of(response)[:2000]
    assert case_count() == before + 1
    case = db.session.scalars(select(Case)).one()
    assert response.headers["Location"].endswith(f"/cases/{case.id}")
    assert case.office_id == user.office_id and case.made_place == "Basel office"
    people = sorted(case.persons, key=lambda p: p.position)
    assert [p.is_principal for p in people] == [True, False, False]
    principal, spouse, child = people
    assert principal.identity == {"family_name": "Haddad", "given_names": "Omar",
                                  "aliases": ["Omar Hadad", "Omer Haddad"], "original_script_name": "عمر حداد"}
    assert principal.birth == {"date_of_birth": "1985-04-12", "precision": "day", "estimated": False,
                               "place_of_birth": "Aleppo", "sex": "M"}
    assert principal.nationalities == ["SYR"] and principal.stateless is False
    assert principal.language == {"languages": ["ara", "kmr"], "preferred_language": "ara",
                                  "interpreter_needed": True, "interpreter_gender": "any"}
    assert principal.contact == {"address": "Reception centre Nord, room 12", "reception_centre": None,
                                 "phone": "+41 79 123 45 67", "email": "omar@example.org"}
    assert principal.documents == [
        {"type": "passport", "number": "N1234567", "issuing_country": "SYR", "valid_until": None,
         "authenticity": "not_assessed", "withheld": False},
        {"type": "national_id", "number": "SY-99-1234", "issuing_country": "SYR", "valid_until": None,
         "authenticity": "genuine", "withheld": False}]
    assert principal.claim == {"grounds": ["political_opinion", "religion"],
                               "statement": "Arrested twice for attending protests."}
    assert principal.security == {"flag": False, "basis": None}
    assert spouse.identity["given_names"] == "Leila" and spouse.birth["sex"] == "F"
    assert spouse.relationship_to_principal == {"relationship": "spouse"}
    assert [d["number"] for d in spouse.documents] == ["SY-88-4321"]
    assert child.relationship_to_principal == {"relationship": "child"}
    assert child.special_needs["vulnerabilities"] == ["minor"]
    assert child.documents[0]["type"] == "birth_certificate" and child.minor_at_application is True
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.code == EventCode.CASE_REGISTERED)).all()
    assert [(e.subject_type, e.subject_id, e.actor_id) for e in events] == [("case", case.id, user.id)]


def test_success_flash_names_only_the_reference(signed_in):
    """After registering, the case page greets with the reference and no personal data."""
    browser, _user = signed_in("registration_officer")
    response = browser.post("/cases/register", family_fields(), follow_redirects=True)
    page = text_of(response)
    case = db.session.scalars(select(Case)).one()
    flash = re.search(r'<p class="flash flash-success">(.*?)</p>', page, re.S).group(1)
    assert f"Case {case.reference} registered." in flash
    assert "Haddad" not in flash and "1985" not in flash


def test_late_registration_is_allowed_and_flagged(signed_in):
    """Registered 10 days after the claim was made: saved, flagged late, with the delay shown."""
    browser, _user = signed_in("registration_officer")
    response = browser.post("/cases/register", single(made=days_ago(20), registered=days_ago(10)),
                            follow_redirects=True)
    assert response.status_code == 200
    case = db.session.scalars(select(Case)).one()
    assert case.late_registration is True and case.registration_delay_days == 10
    assert "Late registration: 10 days after the claim was made." in text_of(response)


def test_five_days_is_not_late(signed_in):
    """Exactly five days between made and registered is within the limit."""
    browser, _user = signed_in("registration_officer")
    browser.post("/cases/register", single(made=days_ago(8), registered=days_ago(3)))
    case = db.session.scalars(select(Case)).one()
    assert case.late_registration is False and case.registration_delay_days == 5


def working_days_after(start: date, count: int) -> date:
    day = start
    while count:
        day += timedelta(days=1)
        if day.isoweekday() <= 5:
            count -= 1
    return day


def test_unaccompanied_minor_without_representative_is_flagged_with_deadline(signed_in):
    """An unaccompanied minor without a representative is saved with the 15-working-day deadline
    (from the registration date), shown in the flash and on the case page."""
    expected = working_days_after(date(2026, 6, 1), 15)
    assert expected == date(2026, 6, 22)  # Monday 1 June + three working weeks
    browser, _user = signed_in("registration_officer")
    data = single(dob="2010-05-05", made="2026-06-01", registered="2026-06-01",
                  **{"persons-0-family-unaccompanied_minor": "y"})
    response = browser.post("/cases/register", data, follow_redirects=True)
    page = text_of(response)
    case = db.session.scalars(select(Case)).one()
    assert case.representative_due == expected
    assert "one must be appointed by 2026-06-22" in page
    assert page.count("2026-06-22") >= 2  # the flash and the flags on the case page


def test_representative_removes_the_flag(signed_in):
    """With a representative named, an unaccompanied minor carries no representative deadline."""
    browser, _user = signed_in("registration_officer")
    browser.post("/cases/register", single(dob="2010-05-05", made="2026-06-01", registered="2026-06-01", **{
        "persons-0-family-unaccompanied_minor": "y", "persons-0-family-representative_name": "Guardian Office"}))
    assert db.session.scalars(select(Case)).one().representative_due is None


def test_special_needs_assessment_due_thirty_days_after_made(signed_in):
    """The special-needs assessment is due 30 days after the claim was made."""
    browser, _user = signed_in("registration_officer")
    response = browser.post("/cases/register", single(made="2026-06-01", registered="2026-06-02", **{
        "persons-0-special_needs-vulnerabilities": ["pregnant", "serious_illness"]}), follow_redirects=True)
    case = db.session.scalars(select(Case)).one()
    assert case.special_needs_assessment_due == date(2026, 7, 1)
    assert "Special-needs assessment due by 2026-07-01." in text_of(response)


def test_every_control_has_a_label_and_no_inline_code(signed_in):
    """Each input, select and textarea of the form has a label; no inline script or style (CSP)."""
    browser, _user = signed_in("registration_officer")
    page = text_of(browser.get("/cases/register"))
    controls = re.findall(r'<(?:input|select|textarea)\b[^>]*\bid="([^"]+)"[^>]*>', page)
    hidden = set(re.findall(r'<input\b[^>]*\bid="([^"]+)"[^>]*type="hidden"', page))
    labelled = set(re.findall(r'<label for="([^"]+)"', page))
    visible = [c for c in controls if c not in hidden and c != "language-select"]
    assert len(visible) > 100
    assert [c for c in visible if c not in labelled] == []
    assert "<script" not in page and "style=" not in page and "<style" not in page
    # Sections are fieldsets with legends, in the order of REGISTRATION.md.
    legends = re.findall(r'<fieldset class="section"[^>]*>\s*<legend>([^<]+)</legend>', page)
    assert legends == ["The claim", "Arrival", "Identity", "Birth", "Nationality", "Language", "Contact",
                       "Identity and travel documents", "Previous applications and other countries", "Family",
                       "Biometrics and Eurodac", "Special needs", "Claim", "Security"]
    # Countries and languages are selects of names.
    assert "<option value=SYR>Syrian Arab Republic<" in page
    assert "<option value=prs>Dari<" in page


def test_reference_lists_follow_the_users_language(signed_in):
    """A French-speaking officer sees country names in French."""
    browser, user = signed_in("registration_officer")
    user.locale = "fr"
    db.session.commit()
    page = text_of(browser.get("/cases/register"))
    assert "<option value=DEU>Allemagne<" in page


def test_add_a_dependant_and_a_document_without_javascript(signed_in):
    """"Add a dependant" and "Add a document" re-render the form with one more entry, keeping what
    was typed and saving nothing; "Remove" takes an entry out again."""
    browser, _user = signed_in("registration_officer")
    values = form_values(text_of(browser.get("/cases/register")), "/cases/register")
    response = post_form(browser, "/cases/register", values, **{"persons-0-identity-family_name": "Haddad",
                                                                 "add": "persons"})
    page = text_of(response)
    assert response.status_code == 200 and case_count() == 0
    assert 'name="persons-1-identity-family_name"' in page and 'value="Haddad"' in page
    assert "Person 2: dependant" in page
    assert re.search(r'<input autocomplete="off" autofocus dir="auto" id="persons-1-identity-family_name"', page)
    values = form_values(page, "/cases/register")
    page = text_of(post_form(browser, "/cases/register", values, add="persons-1-documents"))
    assert 'name="persons-1-documents-1-number"' in page and 'name="persons-0-documents-1-number"' not in page
    values = form_values(page, "/cases/register")
    page = text_of(post_form(browser, "/cases/register", values, remove="persons-1"))
    assert 'name="persons-1-identity-family_name"' not in page and 'value="Haddad"' in page
    assert case_count() == 0


def test_registration_officer_sees_intake_navigation(signed_in):
    """The navigation offers Register a claim, My drafts and Search to a registration officer."""
    browser, _user = signed_in("registration_officer")
    page = text_of(browser.get("/"))
    for href, label in (("/cases/register", "Register a claim"), ("/cases/drafts", "My drafts"),
                        ("/cases/search", "Search")):
        assert f'<a href="{href}">{label}</a>' in page


def test_caseworker_cannot_register(signed_in):
    """Registering needs case.register: a caseworker gets 403 and no navigation entry."""
    browser, _user = signed_in("caseworker")
    assert browser.get("/cases/register").status_code == 403
    assert browser.post("/cases/register", single(), token_from="/").status_code == 403
    assert 'href="/cases/register"' not in text_of(browser.get("/"))
    assert case_count() == 0


# -- drafts ----------------------------------------------------------------------------------------------------

def draft_count() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(RegistrationDraft))


def test_draft_saved_resumed_and_completed(signed_in):
    """A half-filled form (even with a malformed date) is saved as a draft, listed in My drafts,
    resumed with what was typed, and deleted when the registration completes."""
    browser, user = signed_in("registration_officer")
    partial = {"persons-0-identity-family_name": "Haddad", "persons-0-principal": "y",
               "persons-0-birth-date_of_birth": "12/04/1985", "action": "save_draft"}
    response = browser.post("/cases/register", partial)
    assert response.status_code == 302
    draft = db.session.scalars(select(RegistrationDraft)).one()
    assert response.headers["Location"].endswith(f"/cases/register?draft={draft.id}")
    assert case_count() == 0 and draft.created_by_id == user.id
    listing = text_of(browser.get("/cases/drafts"))
    assert "Haddad" in listing and f"/cases/register?draft={draft.id}" in listing
    resumed = text_of(browser.get(f"/cases/register?draft={draft.id}"))
    assert 'value="Haddad"' in resumed and 'value="12/04/1985"' in resumed
    assert f'name="draft_id" type="hidden" value="{draft.id}"' in resumed
    values = form_values(resumed, "/cases/register")
    # Saving the draft again updates the same draft.
    post_form(browser, "/cases/register", values, action="save_draft",
              **{"persons-0-identity-given_names": "Omar"})
    assert draft_count() == 1
    values = form_values(text_of(browser.get(f"/cases/register?draft={draft.id}")), "/cases/register")
    assert values["persons-0-identity-given_names"] == "Omar"
    response = post_form(browser, "/cases/register", values, action="register", made_on=days_ago(2),
                         registered_on=days_ago(1), **{"persons-0-birth-date_of_birth": "1985-04-12",
                                                       "persons-0-birth-sex": "M",
                                                       "persons-0-nationality-nationalities-0": "SYR"})
    assert response.status_code == 302, text_of(response)[:3000]
    assert case_count() == 1 and draft_count() == 0
    assert "You have no drafts." in text_of(browser.get("/cases/drafts"))


def test_invalid_registration_keeps_the_draft(signed_in):
    """A refused registration from a draft leaves the draft in place."""
    browser, _user = signed_in("registration_officer")
    browser.post("/cases/register", {"persons-0-identity-family_name": "Haddad", "action": "save_draft"})
    draft = db.session.scalars(select(RegistrationDraft)).one()
    values = form_values(text_of(browser.get(f"/cases/register?draft={draft.id}")), "/cases/register")
    assert post_form(browser, "/cases/register", values, action="register").status_code == 422
    assert draft_count() == 1 and case_count() == 0


def test_draft_of_another_user_is_not_found(signed_in):
    """Another officer (same office) can neither open nor list someone else's draft."""
    owner, _user = signed_in("registration_officer")
    owner.post("/cases/register", {"persons-0-identity-family_name": "Haddad", "action": "save_draft"})
    draft = db.session.scalars(select(RegistrationDraft)).one()
    other, _other_user = signed_in("registration_officer")
    assert other.get(f"/cases/register?draft={draft.id}").status_code == 404
    assert other.get("/cases/register?draft=not-an-id").status_code == 404
    assert "Haddad" not in text_of(other.get("/cases/drafts"))
    # Registering with the other user's draft id neither completes nor deletes that draft.
    response = other.post("/cases/register", {**single(), "draft_id": draft.id})
    assert response.status_code == 302 and draft_count() == 1


def test_oversized_draft_is_refused(signed_in):
    """A draft larger than the limit is refused with a message (413) and nothing is stored."""
    browser, _user = signed_in("registration_officer")
    response = browser.post("/cases/register", {"persons-0-claim-statement": "x" * 600_000, "action": "save_draft"})
    assert response.status_code == 413
    assert "This draft is too large to be saved." in text_of(response)
    assert draft_count() == 0
