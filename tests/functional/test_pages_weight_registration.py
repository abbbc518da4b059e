"""The registration page's weight and the blank form rendered once: the page stays under a byte
budget, its long lists are short HTML that browsers (and the benches' parsers) read as before, the
cached blank form follows the language and the day, and it never carries a session's CSRF token."""

from __future__ import annotations

import re
from datetime import date

from app.extensions import db
from app.intake import forms, views
from conftest import CSRF_PATTERN
from test_intake_support import form_values, text_of

FIELDS_START = "<h2>Case and arrival</h2>"


def fields_part(page: str) -> str:
    """The registration fields, from the first section to the "Add a dependant" button."""
    start = page.index(FIELDS_START)
    return page[start:page.index('<div class="form-actions">', start)]


def fixed_day(day: date) -> type[date]:
    """A ``date`` whose today() is ``day`` (for the view module's ``date``)."""
    return type("FixedDay", (date,), {"today": classmethod(lambda cls: day)})


def test_registration_page_stays_under_its_byte_budget(signed_in):
    """Thirteen country and four language lists: 156 kB, not the 205 kB of full option markup."""
    browser, _user = signed_in("registration_officer")
    page = browser.get("/cases/register").get_data()
    assert len(page) < 165_000
    text = page.decode()
    assert text.count("<option value=SYR>Syrian Arab Republic<") == 13
    assert text.count("<option value=ara>Arabic<") == 4
    assert "</option><option value=SYR" not in text


def test_short_option_markup_submits_the_same_values(signed_in):
    """Options without end tags or quotes are read as before: the selected code, or the blank first
    option when none is selected."""
    browser, _user = signed_in("registration_officer")
    values = form_values(text_of(browser.get("/cases/register")), "/cases/register")
    assert values["persons-0-nationality-nationalities-0"] == ""
    assert values["persons-0-language-preferred_language"] == ""
    assert values["registered_on"] == date.today().isoformat()


def test_the_selected_country_is_marked_once(app):
    with app.test_request_context():
        form = forms.RegistrationForm(meta={"csrf": False}, formdata=None)
        field = form.persons[0].form.nationality.nationalities[0]
        field.data = "SYR"
        html = str(field())
    assert html.count(" selected ") == 1
    assert "<option selected value=SYR>Syrian Arab Republic<" in html
    assert html.startswith('<select id="persons-0-nationality-nationalities-0" '
                           'name="persons-0-nationality-nationalities-0"><option value="">')


def test_blank_form_is_rendered_once_and_shared_without_the_csrf_token(app, signed_in):
    first, _user = signed_in("registration_officer")
    second, _other = signed_in("registration_officer")
    page_one, page_two = text_of(first.get("/cases/register")), text_of(second.get("/cases/register"))
    assert fields_part(page_one) == fields_part(page_two)
    token_one, token_two = CSRF_PATTERN.search(page_one).group(1), CSRF_PATTERN.search(page_two).group(1)
    assert token_one != token_two
    assert token_one not in fields_part(page_one)
    assert list(app.extensions["intake_blank_fields"]) == [("en", date.today().isoformat())]


def test_blank_form_follows_the_users_language(app, signed_in):
    browser, user = signed_in("registration_officer")
    assert "Date the claim was made" in fields_part(text_of(browser.get("/cases/register")))
    user.locale = "fr"
    db.session.commit()
    page = text_of(browser.get("/cases/register"))
    assert "Date de présentation de la demande" in page and "Date the claim was made" not in page
    assert "<option value=DEU>Allemagne<" in page
    assert {locale for locale, _day in app.extensions["intake_blank_fields"]} == {"en", "fr"}


def test_blank_form_follows_the_day(app, signed_in, monkeypatch):
    """The registration date is filled in: tomorrow's form is not today's."""
    browser, _user = signed_in("registration_officer")
    browser.get("/cases/register")
    monkeypatch.setattr(views, "date", fixed_day(date(2030, 1, 2)))
    page = text_of(browser.get("/cases/register"))
    assert re.search(r'id="registered_on" name="registered_on" type="date" value="2030-01-02"', page)


def test_blank_forms_kept_are_bounded(app, signed_in, monkeypatch):
    browser, _user = signed_in("registration_officer")
    monkeypatch.setattr(views, "MAX_BLANK_FORMS", 2)
    for day in (1, 2, 3):
        monkeypatch.setattr(views, "date", fixed_day(date(2030, 1, day)))
        assert f'value="2030-01-0{day}"' in text_of(browser.get("/cases/register"))
    assert len(app.extensions["intake_blank_fields"]) <= 2


def test_a_draft_is_never_served_from_the_blank_form(signed_in):
    browser, _user = signed_in("registration_officer")
    browser.get("/cases/register")
    values = form_values(text_of(browser.get("/cases/register")), "/cases/register")
    values["persons-0-identity-family_name"] = "Haddad"
    values["action"] = "save_draft"
    saved = browser.client.post("/cases/register", data=values)
    assert saved.status_code == 302
    page = text_of(browser.get(saved.headers["Location"]))
    assert 'name="persons-0-identity-family_name" type="text" value="Haddad"' in page


def test_section_helpers_show_section_errors_and_stop_offering_add_at_the_limit(app):
    from flask import render_template_string

    template = ('{% import "intake/_macros.html" as m with context %}'
                '{% call m.section(form.arrival) %}BODY{% endcall %}'
                '{{ m.repeated(form.persons[0].form.nationality.nationalities, "Add a nationality") }}')
    with app.test_request_context():
        form = forms.RegistrationForm(meta={"csrf": False}, formdata=None)
        nationalities = form.persons[0].form.nationality.nationalities
        while len(nationalities.entries) < nationalities.max_entries:
            nationalities.append_entry()
        html = render_template_string(template, form=form, section_errors={"arrival": ["Say <where>"]})
    assert html.startswith('<fieldset class="section field-error" id="arrival" aria-describedby="arrival-error">\n'
                           '<legend>Arrival</legend>\n<ul class="errors section-errors" id="arrival-error">'
                           "<li>Say &lt;where&gt;</li></ul>\nBODY\n</fieldset>")
    assert '<label for="persons-0-nationality-nationalities-4">Nationality 5</label>' in html
    assert "Add a nationality" not in html
