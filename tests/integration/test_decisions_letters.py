"""Decision letters: generated at issue in the applicant's preferred language (English, French,
Spanish, Arabic right-to-left; English otherwise), with the name, the outcome, the reasons, the
appeal deadline and the suspensive effect; stored encrypted; every download audited."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from app.audit.codes import EventCode
from app.decisions import letters, services
from app.extensions import db
from test_decisions_support import staff_of, TODAY, assign, events, letters_of, pdf_text, person, register, to_issued


def flat(value: str) -> str:
    return " ".join(value.split())


def issue_for(app, make_user, language, *, outcome="rejected_unfounded", track="accelerated", **person_options):
    officer, caseworker, supervisor = staff_of(make_user)
    case = register(officer, person("Haddad", "Rania", language=language, interpreter=bool(language),
                                    **person_options))
    assign(case.id, caseworker, track=track)
    to_issued(case.id, caseworker, supervisor, outcome=outcome, legal_basis=("APR-39", "APR-42"),
              reasons="The account of the arrest was inconsistent.")
    [letter] = letters_of(case.id)
    return case, letter, caseworker


def test_english_letter_has_name_outcome_reasons_and_deadline(app, make_user):
    """An English letter names the applicant, says the outcome and reasons, gives the 10-day deadline
    of an accelerated-procedure decision counted from the day of issue, and that removal is not
    suspended automatically."""
    case, letter, _user = issue_for(app, make_user, "eng")
    body = flat(pdf_text(letter.pdf))
    deadline = date.fromordinal(TODAY.toordinal() + 10)
    assert letter.language == "eng"
    assert "Name: Rania Haddad" in body
    assert f"Case reference: {case.reference}" in body
    assert "Application rejected as unfounded" in body
    assert "The account of the arrest was inconsistent." in body
    assert "within 10 days of the day it is served on you" in body
    assert f"Appeal deadline: {deadline.isoformat()}" in body
    assert "does not by itself suspend your removal" in body
    assert "Legal basis: APR-39, APR-42" in body


def test_arabic_letter_is_right_to_left_with_name_outcome_and_deadline(app, make_user):
    """An Arabic letter (preferred language ara) is laid out right to left and carries the name,
    the outcome in Arabic and the appeal deadline."""
    _case, letter, _user = issue_for(app, make_user, "ara", original_script_name="رانيا حداد")
    body = pdf_text(letter.pdf)
    deadline = date.fromordinal(TODAY.toordinal() + 10)
    assert letter.language == "ara"
    assert "Rania Haddad" in body
    assert "رانيا حداد" in body
    assert "رفض الطلب لعدم استناده إلى أساس" in body
    assert deadline.isoformat() in body
    assert "حقك في الطعن" in body


def test_arabic_template_is_rtl():
    """The Arabic template declares lang=ar and dir=rtl; the others are left to right."""
    content = letters.LetterContent(
        name="Rania Haddad", original_script_name=None, reference="HQ-2026-X", office_name="HQ",
        issued_on=date(2026, 7, 1), outcome="refugee_status", legal_basis=("QR-REFUGEE",), reasons=None,
        appeal_days=None, appeal_months=1, service_date=date(2026, 7, 1), appeal_deadline=date(2026, 8, 1),
        suspensive="not_applicable")
    assert '<html lang="ar" dir="rtl">' in letters.render_html("ara", content)
    for language, lang in (("eng", "en"), ("fra", "fr"), ("spa", "es")):
        assert f'<html lang="{lang}" dir="ltr">' in letters.render_html(language, content)


@pytest.mark.parametrize(("language", "outcome_text", "deadline_text"), [
    ("fra", "Statut de réfugié accordé", "Date limite de recours"),
    ("spa", "Se concede el estatuto de refugiado", "Plazo para recurrir"),
])
def test_french_and_spanish_letters(app, make_user, language, outcome_text, deadline_text):
    """French and Spanish letters carry the outcome and deadline in their language (one month in
    the regular procedure)."""
    _case, letter, _user = issue_for(app, make_user, language, outcome="refugee_status", track="regular")
    body = flat(pdf_text(letter.pdf))
    assert letter.language == language
    assert outcome_text in body
    assert "Rania Haddad" in body
    deadline = services.settings.add_months(TODAY, 1)
    assert f"{deadline_text} : {deadline.isoformat()}" in body or f"{deadline_text}: {deadline.isoformat()}" in body


@pytest.mark.parametrize("preferred", ["tir", None])
def test_unsupported_language_falls_back_to_english(app, make_user, preferred):
    """Tigrinya (no letter template yet) or no preferred language: the letter is in English."""
    _case, letter, _user = issue_for(app, make_user, preferred)
    assert letter.language == "eng"
    assert "Decision on your application for international protection" in flat(pdf_text(letter.pdf))


def test_letter_is_encrypted_at_rest_and_escapes_reasons(app, make_user):
    """The stored letter is ciphertext (no PDF header, no name), with a checksum of the PDF;
    markup in the reasons is printed as text."""
    officer, caseworker, supervisor = staff_of(make_user)
    case = register(officer, person("Haddad", "Rania", language="eng", interpreter=False))
    assign(case.id, caseworker)
    to_issued(case.id, caseworker, supervisor, outcome="rejected_unfounded", legal_basis=("APR-39",),
              reasons="<b>bold</b> & <script>x</script>")
    [letter] = letters_of(case.id)
    raw = bytes(db.session.execute(text("SELECT pdf FROM decision_letter")).scalar_one())
    assert not raw.startswith(b"%PDF") and b"Haddad" not in raw
    assert letter.pdf.startswith(b"%PDF")
    assert letter.size_bytes == len(letter.pdf)
    assert "<b>bold</b> & <script>x</script>" in flat(pdf_text(letter.pdf))


def test_download_is_audited_each_time(app, make_user):
    """Each download returns the PDF and records DOCUMENT_PRINTED with the letter as subject."""
    case, letter, caseworker = issue_for(app, make_user, "eng")
    first = services.download_letter(letter.id, acting_user=caseworker)
    services.download_letter(letter.id, acting_user=caseworker)
    assert first.pdf == letter.pdf
    assert first.filename.startswith(f"decision-{case.reference}-eng-")
    printed = events(EventCode.DOCUMENT_PRINTED, letter.id)
    assert len(printed) == 2
    assert printed[0].details["case_id"] == case.id and printed[0].actor_id == caseworker.id
