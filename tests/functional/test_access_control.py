"""Deny by default: every endpoint declares its permission or is on the reviewed public list, an
undeclared endpoint is refused at runtime, and a role x route matrix pins who gets what."""

from __future__ import annotations

import uuid

import pytest
from flask import url_for
from sqlalchemy import select
from werkzeug.routing import AnyConverter, IntegerConverter, UUIDConverter

from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.auth.access import PUBLIC, declared_permission
from app.auth.permissions import CLAIMANT_DATA_PERMISSIONS, ROLE_PERMISSIONS, Permission, Role
from app.extensions import db
from conftest import Browser

REVIEWED_PUBLIC_ENDPOINTS = {"auth.login", "auth.second_factor", "auth.enrol", "auth.choose_language",
                             "main.health", "static"}
ROLES = [r.value for r in Role]
ANONYMOUS = "anonymous"
FOUNDATION_BLUEPRINTS = {"main", "auth", "admin"}
MISSING_ID = 999_999


def undeclared_endpoints(app) -> list[str]:
    """Endpoints that declare no permission and are not public: each one is a hole."""
    return sorted(e for e in app.view_functions if declared_permission(app, e) is None)


def test_every_endpoint_declares_a_permission(app):
    """Walking the whole URL map finds no endpoint without a declaration."""
    assert {rule.endpoint for rule in app.url_map.iter_rules()} <= set(app.view_functions)
    assert undeclared_endpoints(app) == []


def test_public_endpoints_are_exactly_the_reviewed_list(app):
    """Only sign-in, second factor, enrolment, language, health and static files are open."""
    public = {e for e in app.view_functions if declared_permission(app, e) == PUBLIC}
    assert public == REVIEWED_PUBLIC_ENDPOINTS


def test_an_undeclared_endpoint_is_flagged_and_refused(app, make_user):
    """The walk catches a route registered without a declaration, and at runtime that route
    answers 403 to everyone (anonymous or administrator), with the denial audited."""
    app.add_url_rule("/throwaway", "throwaway", lambda: "should never be served")
    assert undeclared_endpoints(app) == ["throwaway"]
    anonymous = app.test_client().get("/throwaway")
    assert anonymous.status_code == 403
    assert "should never be served" not in anonymous.get_data(as_text=True)
    admin = Browser(app.test_client())
    admin.login(make_user("admin", mfa=True))
    assert admin.get("/throwaway").status_code == 403
    db.session.rollback()
    denials = db.session.scalars(select(AuditEvent).where(AuditEvent.code == EventCode.ACCESS_DENIED)
                                 .order_by(AuditEvent.id)).all()
    assert [(d.actor_role, d.outcome, d.details) for d in denials] == [
        (None, "denied", {"endpoint": "throwaway", "reason": "undeclared endpoint"}),
        ("admin", "denied", {"endpoint": "throwaway", "reason": "undeclared endpoint"}),
    ]


def test_administrators_hold_no_claimant_data_permission():
    """Separation of duties: the administrator manages accounts, never claimant data; the
    auditor reads the trail and nothing else."""
    assert ROLE_PERMISSIONS[Role.ADMIN] & CLAIMANT_DATA_PERMISSIONS == frozenset()
    assert ROLE_PERMISSIONS[Role.ADMIN] == {Permission.ACCOUNT_SELF, Permission.USERS_MANAGE,
                                            Permission.SETTINGS_MANAGE}
    assert ROLE_PERMISSIONS[Role.AUDITOR] == {Permission.ACCOUNT_SELF, Permission.AUDIT_VIEW,
                                              Permission.AUDIT_VIEW_DETAILS}
    assert all(Permission.USERS_MANAGE not in perms for role, perms in ROLE_PERMISSIONS.items() if role != Role.ADMIN)


def test_administrator_is_refused_every_claimant_data_page(app, signed_in):
    """Every endpoint that needs a claimant-data permission answers 403 to an administrator."""
    browser, _admin = signed_in("admin")
    claimant_endpoints = [e for e in app.view_functions
                          if isinstance(declared_permission(app, e), frozenset)
                          and declared_permission(app, e) & CLAIMANT_DATA_PERMISSIONS]
    for endpoint in claimant_endpoints:
        method, url = request_for(app, endpoint)
        if method == "GET":
            assert browser.get(url).status_code == 403, endpoint
        else:
            assert browser.post(url, token_from="/auth/account").status_code == 403, endpoint


# -- the role x route matrix ----------------------------------------------------------------------

def everyone(status):
    return {role: status for role in [ANONYMOUS, *ROLES]}


def signed_in_only(status, anonymous):
    return {ANONYMOUS: anonymous, **{role: status for role in ROLES}}


def admin_only(admin_status, anonymous):
    return {ANONYMOUS: anonymous, **{role: 403 for role in ROLES}, "admin": admin_status}


NOT_ENROLLED = {"registration_officer", "caseworker", "auditor"}  # supervisors and admins are enrolled

# (endpoint, method, path template, form data, expected status per role). {target} is another
# user's id, {missing} an id that does not exist, {office} that user's office. Logout runs last.
ROUTE_MATRIX = [
    ("main.index", "GET", "/", None, signed_in_only(200, 302)),
    ("main.health", "GET", "/health", None, everyone(200)),
    ("static", "GET", "/static/css/nansen.css", None, everyone(200)),
    ("auth.login", "GET", "/auth/login", None, signed_in_only(302, 200)),
    ("auth.login", "POST", "/auth/login", {}, signed_in_only(302, 400)),
    ("auth.second_factor", "GET", "/auth/second-factor", None, everyone(302)),
    ("auth.second_factor", "POST", "/auth/second-factor", {"code": "123456"}, everyone(302)),
    ("auth.enrol", "GET", "/auth/enrol", None,
     {ANONYMOUS: 302, **{r: 200 if r in NOT_ENROLLED else 302 for r in ROLES}}),
    ("auth.enrol", "POST", "/auth/enrol", {},
     {ANONYMOUS: 302, **{r: 400 if r in NOT_ENROLLED else 302 for r in ROLES}}),
    ("auth.recovery_codes", "GET", "/auth/recovery-codes", None, everyone(302)),
    ("auth.account", "GET", "/auth/account", None, signed_in_only(200, 302)),
    ("auth.change_password", "GET", "/auth/password", None, signed_in_only(200, 302)),
    ("auth.change_password", "POST", "/auth/password", {}, signed_in_only(400, 401)),
    ("auth.choose_language", "POST", "/auth/language", {"locale": "en", "next": "/"}, everyone(302)),
    ("admin.users", "GET", "/admin/users", None, admin_only(200, 302)),
    ("admin.create_user", "GET", "/admin/users/new", None, admin_only(200, 302)),
    ("admin.create_user", "POST", "/admin/users/new", {}, admin_only(400, 401)),
    ("admin.user_detail", "GET", "/admin/users/{target}", None, admin_only(200, 302)),
    ("admin.user_detail", "GET", "/admin/users/{missing}", None, admin_only(404, 302)),
    ("admin.user_detail", "POST", "/admin/users/{target}", {"role": "caseworker", "office_id": "{office}"},
     admin_only(302, 401)),
    ("admin.user_detail", "POST", "/admin/users/{missing}", {"role": "caseworker", "office_id": "{office}"},
     admin_only(404, 401)),
    ("admin.user_action", "POST", "/admin/users/{target}/reactivate", {}, admin_only(302, 401)),
    ("admin.user_action", "POST", "/admin/users/{target}/reset-second-factor", {}, admin_only(302, 401)),
    ("admin.user_action", "POST", "/admin/users/{missing}/deactivate", {}, admin_only(404, 401)),
    ("admin.user_action", "GET", "/admin/users/{target}/deactivate", None, everyone(405)),
    ("admin.offices", "GET", "/admin/offices", None, admin_only(200, 302)),
    ("admin.offices", "POST", "/admin/offices", {}, admin_only(400, 401)),
    ("auth.logout", "POST", "/auth/logout", {}, signed_in_only(302, 401)),
]


def test_the_matrix_covers_every_foundation_route(app):
    """Every endpoint and method of the foundation blueprints has a row in the matrix."""
    covered = {(endpoint, method) for endpoint, method, *_ in ROUTE_MATRIX}
    routes = {(rule.endpoint, method) for rule in app.url_map.iter_rules()
              for method in rule.methods - {"HEAD", "OPTIONS"}
              if rule.endpoint == "static" or rule.endpoint.split(".")[0] in FOUNDATION_BLUEPRINTS}
    assert routes - covered == set()


@pytest.mark.parametrize("role", [ANONYMOUS, *ROLES])
def test_role_route_matrix(app, make_user, signed_in, role):
    """Each role gets exactly the expected status on every foundation route, ids included."""
    target = make_user("caseworker")
    if role == ANONYMOUS:
        browser = Browser(app.test_client())
        token = browser.csrf("/auth/login")
    else:
        browser, _user = signed_in(role)
        token = browser.csrf("/auth/account")
    values = {"target": target.id, "missing": MISSING_ID, "office": target.office_id}
    mismatches = []
    for _endpoint, method, template, data, expected in ROUTE_MATRIX:
        path = template.format(**values)
        if method == "GET":
            response = browser.get(path)
        else:
            form = {k: str(v).format(**values) for k, v in data.items()}
            response = browser.client.post(path, data={**form, "csrf_token": token})
        if response.status_code != expected[role]:
            mismatches.append((method, path, response.status_code, expected[role]))
    assert mismatches == []


def test_access_denial_is_audited(signed_in):
    """A caseworker opening an administration page gets 403 and an ACCESS_DENIED event naming
    them, the endpoint and the reason."""
    browser, user = signed_in("caseworker")
    assert browser.get("/admin/users").status_code == 403
    db.session.rollback()
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.code == EventCode.ACCESS_DENIED)).one()
    assert (event.actor_id, event.actor_role, event.outcome) == (user.id, "caseworker", "denied")
    assert event.details == {"endpoint": "admin.users", "reason": "missing permission"}


# -- routes of the other packages, from their declarations ------------------------------------------

def request_for(app, endpoint: str) -> tuple[str, str]:
    """A method and URL for an endpoint, with placeholder values for its parameters (ids that
    do not exist: permission checks come before any lookup)."""
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    values = {}
    for name, converter in rule._converters.items():
        if isinstance(converter, IntegerConverter):
            values[name] = MISSING_ID
        elif isinstance(converter, UUIDConverter):
            values[name] = uuid.UUID(int=0)
        elif isinstance(converter, AnyConverter):
            values[name] = converter.items[0] if hasattr(converter, "items") else "x"
        else:
            values[name] = "x"
    with app.test_request_context():
        url = url_for(endpoint, **values)
    return ("GET" if "GET" in rule.methods else sorted(rule.methods - {"HEAD", "OPTIONS"})[0]), url


@pytest.mark.parametrize("role", ROLES)
def test_other_routes_follow_their_declarations(app, signed_in, role):
    """On the routes of the other packages, a role without the declared permission gets 403, and a
    role with it never gets 403 from the permission check nor a server error."""
    browser, _user = signed_in(role)
    token = browser.csrf("/auth/account")
    mismatches = []
    for endpoint in sorted(app.view_functions):
        declared = declared_permission(app, endpoint)
        if (endpoint.split(".")[0] in FOUNDATION_BLUEPRINTS or endpoint == "static" or declared == PUBLIC
                or declared is None):  # undeclared: test_every_endpoint_declares_a_permission names it
            continue
        allowed = all(p in ROLE_PERMISSIONS[Role(role)] for p in declared)
        method, url = request_for(app, endpoint)
        if not allowed:
            response = (browser.get(url) if method == "GET"
                        else browser.client.post(url, data={"csrf_token": token}))
            if response.status_code != 403:
                mismatches.append((endpoint, response.status_code, 403))
        elif method == "GET":
            response = browser.get(url)
            if response.status_code >= 500:
                mismatches.append((endpoint, response.status_code, "< 500"))
    assert mismatches == []
