"""Roles and the permissions they carry. Pure data: no Flask, no database.

Every endpoint declares the permission it needs (``@requires``) or is on the reviewed public
list (``@public``); a request to an endpoint that declares nothing is refused (deny by default,
enforced in app/auth/access.py and proved by tests/functional/test_access_control.py).

Separation of duties: the administrator manages accounts and settings but holds no permission
on claimant data; the auditor reads the audit trail and nothing else.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    REGISTRATION_OFFICER = "registration_officer"
    CASEWORKER = "caseworker"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Permission(StrEnum):
    # Every signed-in user: own account, language, second factor.
    ACCOUNT_SELF = "account.self"
    # Claimant data.
    CASE_REGISTER = "case.register"
    CASE_VIEW = "case.view"
    CASE_EDIT = "case.edit"
    CASE_SEARCH = "case.search"
    CASE_VIEW_SPECIAL_CATEGORY = "case.view_special_category"  # S3 fields
    # Triage and queues.
    QUEUE_WORK = "queue.work"
    QUEUE_ASSIGN = "queue.assign"
    TRIAGE_OVERRIDE = "triage.override"
    REFERENCE_DATA_EDIT = "reference_data.edit"
    # Decisions.
    DECISION_DRAFT = "decision.draft"
    DECISION_REVIEW = "decision.review"
    # Reports.
    REPORTS_VIEW = "reports.view"
    # Audit trail.
    AUDIT_VIEW = "audit.view"
    AUDIT_VIEW_DETAILS = "audit.view_details"
    # Administration.
    USERS_MANAGE = "users.manage"
    SETTINGS_MANAGE = "settings.manage"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.REGISTRATION_OFFICER: frozenset({
        Permission.ACCOUNT_SELF, Permission.CASE_REGISTER, Permission.CASE_VIEW,
        Permission.CASE_EDIT, Permission.CASE_SEARCH, Permission.CASE_VIEW_SPECIAL_CATEGORY,
    }),
    Role.CASEWORKER: frozenset({
        Permission.ACCOUNT_SELF, Permission.CASE_VIEW, Permission.CASE_EDIT, Permission.CASE_SEARCH,
        Permission.CASE_VIEW_SPECIAL_CATEGORY, Permission.QUEUE_WORK, Permission.DECISION_DRAFT,
    }),
    Role.SUPERVISOR: frozenset({
        Permission.ACCOUNT_SELF, Permission.CASE_VIEW, Permission.CASE_EDIT, Permission.CASE_SEARCH,
        Permission.CASE_VIEW_SPECIAL_CATEGORY, Permission.QUEUE_WORK, Permission.QUEUE_ASSIGN,
        Permission.TRIAGE_OVERRIDE, Permission.REFERENCE_DATA_EDIT, Permission.DECISION_REVIEW,
        Permission.REPORTS_VIEW, Permission.AUDIT_VIEW,
    }),
    Role.AUDITOR: frozenset({
        Permission.ACCOUNT_SELF, Permission.AUDIT_VIEW, Permission.AUDIT_VIEW_DETAILS,
    }),
    Role.ADMIN: frozenset({
        Permission.ACCOUNT_SELF, Permission.USERS_MANAGE, Permission.SETTINGS_MANAGE,
    }),
}

CLAIMANT_DATA_PERMISSIONS = frozenset({
    Permission.CASE_REGISTER, Permission.CASE_VIEW, Permission.CASE_EDIT, Permission.CASE_SEARCH,
    Permission.CASE_VIEW_SPECIAL_CATEGORY, Permission.QUEUE_WORK, Permission.DECISION_DRAFT,
    Permission.DECISION_REVIEW,
})


def role_has(role: str | Role, permission: Permission) -> bool:
    """True when ``role`` carries ``permission``. Unknown roles carry nothing."""
    try:
        return permission in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False
