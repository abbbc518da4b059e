"""The site layout's cheaper parts: the main menu rendered once per language, role and page and
reused, and the templates' ``_()`` bound to the request's catalogue. Whatever is cached must still
follow the user: their role's links only, the current page marked, their language."""

from __future__ import annotations

import re

from flask import g, render_template_string

from app import navigation
from app.extensions import db
from app.i18n import lazy_gettext, quick_gettext, request_catalogue
from test_intake_support import text_of

MENU = re.compile(r'<nav aria-label="[^"]+">\s*<ul class="nav">(.*?)</ul>\s*</nav>', re.S)


def menu_links(page: str) -> list[tuple[str, bool, str]]:
    """(href, marked as the current page, label) of each link of the main menu."""
    return [(href, bool(current), label) for href, current, label in
            re.findall(r'<a href="([^"]+)"( aria-current="page")?>([^<]+)</a>', MENU.search(page).group(1))]


def test_menu_shows_only_the_links_of_the_users_role(app, signed_in):
    caseworker, _user = signed_in("caseworker")
    admin, _other = signed_in("admin")
    for_caseworker = [label for _href, _current, label in menu_links(text_of(caseworker.get("/auth/account")))]
    for_admin = [label for _href, _current, label in menu_links(text_of(admin.get("/auth/account")))]
    assert "Queues" in for_caseworker and "Users" not in for_caseworker
    assert "Users" in for_admin and "Queues" not in for_admin
    # Once more from the cache: still each role's own menu.
    again = [label for _href, _current, label in menu_links(text_of(caseworker.get("/auth/account")))]
    assert again == for_caseworker


def test_menu_marks_the_current_page(signed_in):
    browser, _user = signed_in("caseworker")
    on_queue = menu_links(text_of(browser.get("/triage/queue")))
    assert [label for _href, current, label in on_queue if current] == ["Queues"]
    on_mine = menu_links(text_of(browser.get("/triage/my-cases")))
    assert [label for _href, current, label in on_mine if current] == ["My cases"]
    assert ("/triage/queue", False, "Queues") in on_mine


def test_menu_and_layout_follow_the_users_language(signed_in):
    browser, user = signed_in("caseworker")
    assert "Queues" in text_of(browser.get("/triage/queue"))
    user.locale = "fr"
    db.session.commit()
    page = text_of(browser.get("/triage/queue"))
    labels = [label for _href, _current, label in menu_links(page)]
    assert "Files d'attente" in labels and "Mes dossiers" in labels and "Queues" not in labels
    assert "Aller au contenu principal" in page


def test_menus_kept_are_bounded(app, signed_in, monkeypatch):
    monkeypatch.setattr(navigation, "MAX_MENUS", 2)
    browser, _user = signed_in("caseworker")
    for path in ("/triage/queue", "/triage/my-cases", "/triage/deadlines", "/auth/account"):
        assert browser.get(path).status_code == 200
    assert 1 <= len(app.extensions["site_navigation"]) <= 2


def test_templates_translate_with_the_requests_catalogue_and_escape_variables(app):
    template = "{{ _('Case %(reference)s saved.', reference=ref) }}|{{ _('Skip to main content') }}"
    with app.test_request_context():
        english = render_template_string(template, ref="<b>")
    assert english == "Case &lt;b&gt; saved.|Skip to main content"
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        for name in list(vars(g)):  # the test's app context outlives the first request, as FreshGlobalsClient
            delattr(g, name)
        french = render_template_string(template, ref="A&B")
    assert french == "Dossier A&amp;B mis à jour.|Aller au contenu principal"


def test_form_labels_translate_through_the_requests_catalogue(app):
    label = lazy_gettext("Queues")
    assert quick_gettext("Queues") == "Queues"  # no request: the default language
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        for name in list(vars(g)):
            delattr(g, name)
        assert str(label) == "Files d'attente"
        assert g._request_catalogue is request_catalogue()  # looked up once for the request
