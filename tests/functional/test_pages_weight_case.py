"""The case page's read-only display, written in Python (form_html.show) instead of a recursive
macro: the same markup, values escaped, codes shown as names, repeated entries numbered from the
ones filled in, and "none recorded" for an empty section."""

from __future__ import annotations

from werkzeug.datastructures import MultiDict

from app.intake import forms
from app.intake.form_html import show


def shown_form(data: dict) -> forms.RegistrationForm:
    return forms.RegistrationForm(formdata=MultiDict(data), meta={"csrf": False})


def test_a_section_lists_its_fields_with_names_for_codes_and_escaped_values(app):
    with app.test_request_context():
        form = shown_form({"persons-0-identity-family_name": "<Haddad & sons>",
                           "persons-0-nationality-nationalities-0": "SYR",
                           "persons-0-identity-aliases": "Omar Hadad\nO. H."})
        identity = str(show(form.persons[0].form.identity))
        nationality = str(show(form.persons[0].form.nationality))
    assert identity.startswith('<dl class="summary"><dt>Family name</dt><dd><span class="value" dir="auto">'
                               "&lt;Haddad &amp; sons&gt;</span></dd>")
    assert ('<dt>Other names and spellings</dt><dd><span class="value long-text" dir="auto">Omar Hadad, O. H.'
            "</span></dd>") in identity
    assert '<dd><span class="value" dir="auto">Syrian Arab Republic</span></dd>' in nationality
    assert '<dt>Stateless</dt><dd><span class="value" dir="auto">No</span></dd>' in nationality


def test_entries_are_numbered_from_those_filled_in_and_empty_sections_say_none_recorded(app):
    with app.test_request_context():
        form = shown_form({"persons-0-documents-0-type": "", "persons-0-documents-1-type": "passport",
                           "persons-0-documents-1-number": "N1"})
        documents = str(show(form.persons[0].form.documents))
        contact = str(show(form.persons[0].form.contact))
        hits = str(show(form.persons[0].form.biometrics.form.eurodac_hits))
    assert documents.count('<div class="entry">') == 1
    assert documents.startswith('<div class="entry"><p class="entry-title">Document 1</p><dl class="summary">'
                                '<dt>Document type</dt><dd><span class="value" dir="auto">Passport</span></dd>')
    assert contact == hits == '<span class="muted">none recorded</span>'
