"""The language shell: right-to-left for Arabic, and the chosen language remembered (in the session
for visitors, on the account for signed-in users)."""

from __future__ import annotations

import re

from app.auth.models import User
from app.extensions import db
from conftest import Browser

HTML_TAG = re.compile(r"<html lang=\"([^\"]+)\" dir=\"([^\"]+)\">")


def language_of(response) -> tuple[str, str]:
    return HTML_TAG.search(response.get_data(as_text=True)).groups()


def choose(browser: Browser, locale: str, next_path: str = "/auth/login"):
    return browser.post("/auth/language", {"locale": locale, "next": next_path}, token_from=next_path)


def test_default_is_english_left_to_right(browser):
    """Without a choice, the page is English and left-to-right."""
    assert language_of(browser.get("/auth/login")) == ("en", "ltr")


def test_arabic_is_right_to_left(browser):
    """Choosing Arabic gives lang="ar" and dir="rtl" on the page."""
    response = choose(browser, "ar")
    assert (response.status_code, response.headers["Location"]) == (302, "/auth/login")
    assert language_of(browser.get("/auth/login")) == ("ar", "rtl")
    assert 'option value="ar" lang="ar" selected' in browser.get("/auth/login").get_data(as_text=True)


def test_browser_preference_is_used_until_a_choice_is_made(browser):
    """Accept-Language picks the first supported language; a choice overrides it."""
    assert language_of(browser.get("/auth/login", headers={"Accept-Language": "ar, en;q=0.5"})) == ("ar", "rtl")
    assert language_of(browser.get("/auth/login", headers={"Accept-Language": "de, fr;q=0.8"})) == ("fr", "ltr")
    choose(browser, "es")
    assert language_of(browser.get("/auth/login", headers={"Accept-Language": "ar"})) == ("es", "ltr")


def test_visitor_choice_is_remembered_in_the_session_only(app, browser):
    """A visitor's choice lasts for their session; another browser is not affected."""
    choose(browser, "fr")
    assert language_of(browser.get("/auth/login")) == ("fr", "ltr")
    assert language_of(Browser(app.test_client()).get("/auth/login")) == ("en", "ltr")


def test_visitor_choice_survives_signing_in(browser, make_user):
    """A language chosen on the sign-in page stays after signing in."""
    user = make_user("caseworker")
    choose(browser, "ar")
    browser.login(user)
    assert language_of(browser.get("/")) == ("ar", "rtl")


def test_signed_in_choice_is_saved_on_the_account(app, signed_in):
    """A signed-in user's choice is stored on the account and follows them to a new sign-in."""
    browser, user = signed_in("caseworker")
    response = choose(browser, "ar", "/auth/account")
    assert response.headers["Location"] == "/auth/account"
    db.session.rollback()
    assert db.session.get(User, user.id).locale == "ar"
    assert language_of(browser.get("/")) == ("ar", "rtl")
    elsewhere = Browser(app.test_client())
    elsewhere.login(user)
    assert language_of(elsewhere.get("/", headers={"Accept-Language": "en"})) == ("ar", "rtl")


def test_unknown_language_is_ignored(browser, signed_in):
    """A locale that is not offered changes nothing."""
    member, user = signed_in("caseworker")
    choose(member, "de", "/auth/account")
    db.session.rollback()
    assert db.session.get(User, user.id).locale is None
    assert language_of(member.get("/")) == ("en", "ltr")


def test_language_redirect_stays_on_this_site(browser):
    """`next` pointing to another site (directly or through backslash and control-character
    tricks) sends the visitor home instead."""
    token = browser.csrf()
    for target in ("https://evil.example/", "//evil.example", "/\\evil.example", "/\\/evil.example",
                   "/\t/evil.example", "/\n/evil.example", "http:/evil.example"):
        response = browser.client.post("/auth/language", data={"locale": "en", "next": target, "csrf_token": token})
        assert response.headers["Location"] == "/", target
