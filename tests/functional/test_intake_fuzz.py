"""Property-based: random text in the search and registration form fields (and in the Add and
Remove buttons) never gives a server error, only a page or a refusal with its message."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_intake_support import single, text_of

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Any text a browser can send: every Unicode character except lone surrogates (not encodable).
TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=300)
REGISTRATION_FIELDS = [
    "made_on", "registered_on", "lodged_on", "made_place", "arrival-location_context", "arrival-entry_date",
    "arrival-authorised_to_enter", "arrival-transit_countries-0", "persons-0-principal", "persons-0-relationship",
    "persons-0-identity-family_name", "persons-0-identity-given_names", "persons-0-identity-aliases",
    "persons-0-birth-date_of_birth", "persons-0-birth-precision", "persons-0-birth-sex",
    "persons-0-nationality-nationalities-0", "persons-0-nationality-former_habitual_residence",
    "persons-0-language-languages-0", "persons-0-language-preferred_language", "persons-0-contact-phone",
    "persons-0-contact-email", "persons-0-documents-0-type", "persons-0-documents-0-number",
    "persons-0-documents-0-valid_until", "persons-0-history-return_decision-received_on",
    "persons-0-family-members_elsewhere-0-date_of_birth", "persons-0-special_needs-vulnerabilities",
    "persons-0-claim-grounds", "persons-0-claim-statement", "persons-0-security-basis",
    "persons-3-identity-family_name", "persons-99999999999-birth-sex", "draft_id", "duplicate-0", "duplicate-x",
    "add", "remove", "action",
]
SEARCH_FIELDS = ["reference", "document_number", "family_name", "given_names", "date_of_birth"]
TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@pytest.fixture
def officer(signed_in):
    browser, _user = signed_in("registration_officer")
    token = TOKEN.search(text_of(browser.get("/cases/search"))).group(1)
    return browser, token


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(REGISTRATION_FIELDS), TEXT, min_size=1, max_size=8))
def test_random_registration_input_never_fails_the_server(officer, changes):
    """Random values in registration fields answer a page or a refusal, never a 500."""
    browser, token = officer
    data = {**single(), **changes, "csrf_token": token}
    response = browser.client.post("/cases/register", data=data)
    assert response.status_code in (200, 302, 400, 404, 409, 413, 422), changes
    if response.status_code == 422:
        assert 'class="error-summary"' in text_of(response)


@FUZZ
@given(terms=st.dictionaries(st.sampled_from(SEARCH_FIELDS), TEXT, min_size=1, max_size=5))
def test_random_search_input_never_fails_the_server(officer, terms):
    """Random search terms answer results or a 400 with a message, never a 500."""
    browser, token = officer
    response = browser.client.post("/cases/search", data={**terms, "csrf_token": token})
    assert response.status_code in (200, 400), terms
    if response.status_code == 400:
        page = text_of(response)
        assert 'class="errors' in page or 'class="error-summary"' in page


@FUZZ
@given(case_id=TEXT, draft=TEXT)
def test_random_ids_in_urls_are_not_found(officer, case_id, draft):
    """Random case and draft ids answer 404 (or a redirect for the empty id), never a 500."""
    browser, _token = officer
    assert browser.get("/cases/register", query_string={"draft": draft}).status_code in (200, 404)
    response = browser.get("/cases/" + case_id.replace("/", "%2F").replace("?", "%3F").replace("#", "%23"))
    assert response.status_code in (200, 301, 302, 308, 404, 405), repr(case_id)
