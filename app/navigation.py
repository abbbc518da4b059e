"""Navigation by role: each entry names the permission it needs, so a user only sees links to
pages they may open. Domain packages add their entries here as they gain pages.

The menu is the same for every user of a role, in a language, on a page: it is rendered once
per such combination and reused (rendering it asked for 17 URLs, 15 permission checks and 17
translations on every page)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup

from app.auth.permissions import Permission


@dataclass(frozen=True)
class NavEntry:
    endpoint: str
    label: object
    permission: Permission


NAV_ENTRIES: list[NavEntry] = [
    NavEntry("intake.register", _l("Register a claim"), Permission.CASE_REGISTER),
    NavEntry("intake.drafts", _l("My drafts"), Permission.CASE_REGISTER),
    NavEntry("intake.search", _l("Search"), Permission.CASE_SEARCH),
    NavEntry("triage.queue_page", _l("Queues"), Permission.QUEUE_WORK),
    NavEntry("triage.my_cases", _l("My cases"), Permission.QUEUE_WORK),
    NavEntry("triage.deadlines", _l("Deadlines"), Permission.QUEUE_WORK),
    NavEntry("triage.workload", _l("Workload"), Permission.QUEUE_ASSIGN),
    NavEntry("triage.recognition_rates", _l("Reference data"), Permission.REFERENCE_DATA_EDIT),
    NavEntry("triage.replay", _l("Ruleset replay"), Permission.REFERENCE_DATA_EDIT),
    NavEntry("triage.settings", _l("Triage settings"), Permission.SETTINGS_MANAGE),
    NavEntry("decisions.reviews", _l("Reviews"), Permission.DECISION_REVIEW),
    NavEntry("reports.dashboard", _l("Reports"), Permission.REPORTS_VIEW),
    NavEntry("admin.users", _l("Users"), Permission.USERS_MANAGE),
    NavEntry("admin.offices", _l("Offices"), Permission.USERS_MANAGE),
    NavEntry("audit.events", _l("Audit trail"), Permission.AUDIT_VIEW),
]
MAX_MENUS = 512  # menus kept rendered per application: roles x languages x pages, far fewer in practice


def init_navigation(app: Flask) -> None:
    from app.admin.forms import ROLE_LABELS

    role_labels = {role.value: label for role, label in ROLE_LABELS.items()}
    menus: dict[tuple, Markup] = app.extensions.setdefault("site_navigation", {})

    def navigation_items():
        if not current_user.is_authenticated:
            return []
        return [{"url": url_for(e.endpoint), "label": e.label, "current": request.endpoint == e.endpoint}
                for e in NAV_ENTRIES if e.endpoint in app.view_functions and current_user.can(e.permission)]

    def site_navigation() -> Markup:
        """The signed-in user's main menu (templates/_navigation.html), from the cache. What it
        depends on is the key: the language, the role and whether the account is active (the
        permissions), the page (aria-current) and the path the application is mounted at."""
        user = current_user._get_current_object()
        key = (str(get_locale()), user.role, user.active, request.endpoint, request.script_root)
        menu = menus.get(key)
        if menu is None:
            if len(menus) >= MAX_MENUS:
                menus.clear()
            menu = menus[key] = Markup(render_template("_navigation.html"))  # noqa: S704 - autoescaped template
        return menu

    def role_label(role: str):
        return role_labels.get(role, role)

    # Globals, not a context processor: they read the user and the request when called, so
    # nothing needs building for each page.
    app.jinja_env.globals.update(navigation_items=navigation_items, site_navigation=site_navigation,
                                 role_label=role_label)
