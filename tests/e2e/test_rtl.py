"""The same registration in Arabic: the officer chooses Arabic with the language form, every
page is then right-to-left (``<html dir="rtl" lang="ar">``), and the family claim typed with the
same data is stored exactly like the English one (compared decrypted, through the service layer).

Labels are looked up in the application's Arabic catalogue (journey_helpers.words), so the test
reads the page as an Arabic-speaking officer does, and keeps working as the catalogue fills up.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.extensions import db
from app.intake.models import Case
from app.intake.services import changed_fields, registration_payload
from .journey_helpers import confirm_new_people, fill_family_claim, nav, sign_in, words

pytestmark = pytest.mark.e2e

CASE_URL = re.compile(r"/cases/([0-9a-f]{32})$")


def direction(page) -> list[str]:
    """[dir, lang] of the page's root element, once the page shows the expected language."""
    return page.evaluate("[document.documentElement.dir, document.documentElement.lang]")


def expect_direction(page, direction_: str, lang: str) -> None:
    root = page.locator(":root")
    expect(root).to_have_attribute("lang", lang)
    expect(root).to_have_attribute("dir", direction_)
    assert direction(page) == [direction_, lang]


def register_family(page, checkpoint, locale: str) -> str:
    t = words(locale)
    nav(page, t("Register a claim"), locale)
    fill_family_claim(page, checkpoint, locale=locale)
    page.get_by_role("button", name=t("Check and register"), exact=True).click()
    confirm_new_people(page, checkpoint, locale=locale)
    expect(page).to_have_url(CASE_URL)
    return CASE_URL.search(page.url).group(1)


def stored_registration(app, case_id: str) -> dict:
    """The case as the service layer gives it back: every section decrypted, in the shape of
    the registration input."""
    with app.app_context():
        try:
            return registration_payload(db.session.get(Case, case_id))
        finally:
            db.session.remove()


def test_registration_in_arabic_is_right_to_left_and_stores_the_same_data(people, live_server, checkpoint):
    """Choose العربية in the language form: the page turns right-to-left; register the family
    claim with the same data as the English journey; the stored registrations are identical."""
    account = live_server.accounts["registrar.north"]
    page, _new = people.page_of(account.username)
    sign_in(page, account, checkpoint)
    english_case_id = live_server.state.get("case_id")
    if english_case_id is None:  # run on its own: register the English one first
        english_case_id = register_family(page, checkpoint, "en")
    expect_direction(page, "ltr", "en")

    page.get_by_label("Language", exact=True).select_option(label="العربية")
    page.get_by_role("button", name="Change", exact=True).click()
    expect_direction(page, "rtl", "ar")
    expect(page.get_by_role("combobox", name=words("ar")("Language"), exact=True)).to_have_value("ar")
    checkpoint(page, "home in arabic")

    arabic_case_id = register_family(page, checkpoint, "ar")
    expect_direction(page, "rtl", "ar")
    checkpoint(page, "case page in arabic")
    checkpoint.assert_accessible()

    assert arabic_case_id != english_case_id
    english = stored_registration(live_server.app, english_case_id)
    arabic = stored_registration(live_server.app, arabic_case_id)
    assert changed_fields(english, arabic) == {}
    assert arabic == english
    # ...and what is compared is the claim as typed, not two empty records.
    principal, dependant = arabic["persons"]
    assert (principal["identity"]["family_name"], principal["identity"]["given_names"]) == ("Al Hasan", "Muhammad")
    assert principal["birth"]["date_of_birth"] == "1990-03-05" and principal["nationality"]["nationalities"] == ["SYR"]
    assert principal["language"]["preferred_language"] == "ara" and principal["language"]["interpreter_needed"]
    assert sorted(principal["claim"]["grounds"]) == ["political_opinion", "religion"]
    assert principal["claim"]["statement"].startswith("Arrested twice")
    assert (dependant["relationship"], dependant["identity"]["given_names"]) == ("spouse", "Fatima")
