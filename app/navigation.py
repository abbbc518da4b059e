"""Navigation by role: each entry names the permission it needs, so a user only sees links to
pages they may open. Domain packages add their entries here as they gain pages."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

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


def init_navigation(app: Flask) -> None:
    from app.admin.forms import ROLE_LABELS

    @app.context_processor
    def navigation_context():
        def navigation_items():
            if not current_user.is_authenticated:
                return []
            return [{"url": url_for(e.endpoint), "label": e.label, "current": request.endpoint == e.endpoint}
                    for e in NAV_ENTRIES if e.endpoint in app.view_functions and current_user.can(e.permission)]

        def role_label(role: str):
            return next((label for r, label in ROLE_LABELS.items() if r.value == role), role)

        return {"navigation_items": navigation_items, "role_label": role_label}
