"""What the journeys share: signing in as a person does, the family claim both registrations
type (in English and in Arabic), and the words of the pages in the user's language.

Everything is found by its label, its role or its visible text, never by CSS classes or ids:
if a label disappears or stops being tied to its control, the journey breaks, as it would for
someone using a screen reader.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

from playwright.sync_api import Page, expect

REPO_DIR = Path(__file__).resolve().parents[2]
TODAY = date.today()

# The family claim: the principal is a likely duplicate of "Mohammed Al-Hassan" (1990-03-05, SYR),
# registered beforehand (conftest), spelled another way.
MADE_ON = (TODAY - timedelta(days=3)).isoformat()
REGISTERED_ON = (TODAY - timedelta(days=2)).isoformat()
PRINCIPAL = {"family": "Al Hasan", "given": "Muhammad", "dob": "1990-03-05", "sex": "Male",
             "place_of_birth": "Aleppo", "nationality": "SYR", "language": "ara",
             "grounds": ("Political opinion", "Religion"),
             "statement": "Arrested twice after attending protests in Aleppo; summoned again in 2025."}
DEPENDANT = {"family": "Al Hasan", "given": "Fatima", "dob": "1992-07-21", "sex": "Female",
             "relationship": "Spouse", "nationality": "SYR"}


@lru_cache(maxsize=4)
def words(locale: str):
    """The application's own message catalogue for ``locale``: ``words("ar")("Sign in")`` is
    what an Arabic-speaking user reads (the English text where a message is not translated yet,
    exactly as the application falls back)."""
    from babel.support import Translations

    if locale == "en":
        return lambda message: message
    catalogue = Translations.load(str(REPO_DIR / "app" / "translations"), [locale])
    return catalogue.gettext


def country(code: str, locale: str) -> str:
    from app.intake.reference import country_name

    return country_name(code, locale)


def language(code: str, locale: str) -> str:
    from app.intake.reference import language_choices

    return dict(language_choices(locale))[code]


def sign_in(page: Page, account, checkpoint, *, locale: str = "en") -> None:
    """Through the sign-in form, then the second factor when the account has one (the code
    computed from the account's TOTP secret, as the authenticator app would)."""
    t = words(locale)
    page.goto("/auth/login")
    expect(page.get_by_role("heading", level=1)).to_have_text(t("Sign in"))
    checkpoint(page, f"sign in {account.username}", once=f"sign-in-{locale}")
    page.get_by_label(t("Username"), exact=True).fill(account.username)
    page.get_by_label(t("Password"), exact=True).fill(account.password)
    page.get_by_role("button", name=t("Sign in"), exact=True).click()
    if account.totp_secret:
        expect(page).to_have_url(re.compile(r"/auth/second-factor$"))
        checkpoint(page, f"second factor {account.username}", once=f"second-factor-{locale}")
        page.get_by_label(t("Code from your authenticator app, or a recovery code")).fill(account.totp_code())
        page.get_by_role("button", name=t("Verify"), exact=True).click()
    expect(page.get_by_role("button", name=t("Sign out"), exact=True)).to_be_visible()


def nav(page: Page, label: str, locale: str = "en") -> None:
    """Follow a link of the main navigation."""
    menu = page.get_by_role("navigation", name=words(locale)("Main"), exact=True)
    menu.get_by_role("link", name=label, exact=True).click()


def person_region(page: Page, number: int, principal: bool, locale: str = "en"):
    t = words(locale)
    title = t("Person %(number)d: principal applicant") if principal else t("Person %(number)d: dependant")
    return page.get_by_role("region", name=title % {"number": number}, exact=True)


def _fill_person(region, person: dict, locale: str) -> None:
    t = words(locale)
    identity = region.get_by_role("group", name=t("Identity"), exact=True)
    identity.get_by_label(t("Family name"), exact=True).fill(person["family"])
    identity.get_by_label(t("Given names"), exact=True).fill(person["given"])
    birth = region.get_by_role("group", name=t("Birth"), exact=True)
    birth.get_by_label(t("Date of birth"), exact=True).fill(person["dob"])
    birth.get_by_label(t("Sex"), exact=True).select_option(label=t(person["sex"]))
    if person.get("place_of_birth"):
        birth.get_by_label(t("Place of birth"), exact=True).fill(person["place_of_birth"])
    nationality = region.get_by_role("group", name=t("Nationality"), exact=True)
    nationality.get_by_label(f"{t('Nationality')} 1", exact=True).select_option(
        label=country(person["nationality"], locale))
    if person.get("language"):
        spoken = region.get_by_role("group", name=t("Language"), exact=True)
        spoken.get_by_label(t("Preferred language for the procedure"), exact=True).select_option(
            label=language(person["language"], locale))
        spoken.get_by_label(t("An interpreter is needed"), exact=True).check()
        spoken.get_by_label(f"{t('Language spoken')} 1", exact=True).select_option(
            label=language(person["language"], locale))
    if person.get("grounds"):
        claim = region.get_by_role("group", name=t("Claim"), exact=True)
        grounds = claim.get_by_role("group", name=t("Grounds of the claim"), exact=True)
        for ground in person["grounds"]:
            grounds.get_by_label(t(ground), exact=True).check()
        claim.get_by_label(t("Short statement of reasons"), exact=True).fill(person["statement"])


def fill_family_claim(page: Page, checkpoint, *, locale: str = "en") -> None:
    """Type the family claim into the registration form: the claim's dates, the principal, then
    "Add a dependant" (a round trip to the server: the form works without JavaScript) and the
    dependant."""
    t = words(locale)
    expect(page.get_by_role("heading", level=1)).to_have_text(t("Register a claim"))
    # The form is scanned, and shot whole, on the duplicate-check page, which shows it again (with
    # both people, as typed) under the duplicates: each scan or full shot of it costs seconds.
    checkpoint(page, "registration form", scan=False, full_page=False)
    claim = page.get_by_role("group", name=t("The claim"), exact=True)
    claim.get_by_label(t("Date the claim was made"), exact=True).fill(MADE_ON)
    claim.get_by_label(t("Place where the claim was made"), exact=True).fill("Reception centre Nord")
    claim.get_by_label(t("Date of registration"), exact=True).fill(REGISTERED_ON)
    claim.get_by_label(t("Date the claim was lodged"), exact=True).fill(REGISTERED_ON)
    principal = person_region(page, 1, True, locale)
    expect(principal.get_by_label(t("This person is the principal applicant"), exact=True)).to_be_checked()
    _fill_person(principal, PRINCIPAL, locale)

    page.get_by_role("button", name=t("Add a dependant"), exact=True).click()
    dependant = person_region(page, 2, False, locale)
    expect(dependant).to_be_visible()
    # What was typed before the round trip is still there.
    expect(principal.get_by_role("group", name=t("Identity"), exact=True)
           .get_by_label(t("Family name"), exact=True)).to_have_value(PRINCIPAL["family"])
    dependant.get_by_label(t("Relationship to the principal applicant"), exact=True).select_option(
        label=t(DEPENDANT["relationship"]))
    _fill_person(dependant, DEPENDANT, locale)
    checkpoint(page, "registration form filled", scan=False, full_page=False)


def confirm_new_people(page: Page, checkpoint, *, locale: str = "en") -> list[str]:
    """Answer the duplicate check: every person shown is a new person. Returns the legends of
    the people asked about."""
    t = words(locale)
    duplicates = page.get_by_role("region", name=t("Possible duplicates: nothing is saved yet"), exact=True)
    expect(duplicates).to_be_visible()
    checkpoint(page, "possible duplicates")
    people = duplicates.get_by_role("group")
    legends = []
    for index in range(people.count()):
        group = people.nth(index)
        legends.append(group.locator("legend").inner_text())
        group.get_by_label(t("This is a new person"), exact=True).check()
    duplicates.get_by_role("button", name=t("Register with these decisions"), exact=True).click()
    return legends
