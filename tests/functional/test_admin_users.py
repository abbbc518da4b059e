"""Account administration through the admin pages: create, deactivate and reactivate, re-role,
move office, reset the second factor, offices; every change audited with the right code."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.auth import services
from app.auth.models import Office, User
from app.extensions import db
from conftest import STRONG_PASSWORD, Browser

NEW_PASSWORD = "velvet ocean drum parade lantern"


def events(code: EventCode) -> list[AuditEvent]:
    db.session.rollback()
    return db.session.scalars(select(AuditEvent).where(AuditEvent.code == code).order_by(AuditEvent.id)).all()


def user_count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(User))


@pytest.fixture
def admin(signed_in):
    """A signed-in administrator (with the second factor their role requires)."""
    return signed_in("admin")


def create(browser: Browser, **fields):
    data = {"username": "new.person", "full_name": "New Person", "role": "caseworker",
            "password": NEW_PASSWORD, **fields}
    return browser.post("/admin/users/new", {k: str(v) for k, v in data.items()})


def test_admin_lists_accounts(admin, make_user):
    """The users page lists every account with role, office and status, and no secret."""
    browser, admin_user = admin
    other = make_user("registration_officer", active=False)
    page = browser.get("/admin/users").get_data(as_text=True)
    assert admin_user.username in page and other.username in page
    assert "Registration officer" in page and "Deactivated" in page
    assert "$argon2" not in page


def test_admin_creates_an_account_that_can_sign_in(app, admin, office):
    """A valid form creates the account (username normalised), audits USER_CREATED by the admin,
    and the new person can sign in with the initial password."""
    browser, admin_user = admin
    response = create(browser, username="  new.person ", office_id=office.id)
    db.session.rollback()
    created = db.session.scalar(select(User).where(User.username == "new.person"))
    assert (response.status_code, response.headers["Location"]) == (302, f"/admin/users/{created.id}")
    assert (created.full_name, created.role, created.office_id, created.active) == (
        "New Person", "caseworker", office.id, True)
    assert created.password_hash.startswith("$argon2id$")
    [event] = events(EventCode.USER_CREATED)
    assert (event.actor_id, event.subject_id) == (admin_user.id, str(created.id))
    assert event.details == {"role": "caseworker", "office_id": office.id, "via": "web"}
    Browser(app.test_client()).login(created, NEW_PASSWORD)


def test_refused_account_shows_every_problem_and_saves_nothing(admin, office, make_user):
    """Bad username, weak password, duplicate: 422, each message next to its field, no account
    and no audit event."""
    browser, _admin_user = admin
    existing = make_user("caseworker", username="taken.name")
    before = user_count()
    response = create(browser, username="Bad Name!", password="short", office_id=office.id)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="username-error"' in page and "Use 3 to 64 characters" in page
    assert 'id="password-error"' in page and "Use at least 15 characters" in page
    response = create(browser, username=existing.username, office_id=office.id)
    assert response.status_code == 422
    assert "This username is already taken." in response.get_data(as_text=True)
    response = create(browser, username="sneaky.user", password="sneaky.user velvet ocean", office_id=office.id)
    assert "must not contain your username" in response.get_data(as_text=True)
    assert user_count() == before
    assert events(EventCode.USER_CREATED) == []


def test_form_refuses_roles_and_offices_that_are_not_offered(admin, office):
    """A role or office outside the lists (a forged form) is refused by the form (400)."""
    browser, _admin_user = admin
    before = user_count()
    assert create(browser, role="superuser", office_id=office.id).status_code == 400
    assert create(browser, office_id=999_999).status_code == 400
    assert create(browser, office_id="HQ").status_code == 400
    assert user_count() == before


def test_deactivation_stops_sign_in_and_reactivation_restores_it(app, admin, make_user):
    """A deactivated account cannot sign in (same answer as a wrong password); reactivated it
    can. Both are audited."""
    browser, admin_user = admin
    user = make_user("caseworker")
    response = browser.post(f"/admin/users/{user.id}/deactivate", token_from=f"/admin/users/{user.id}")
    assert response.headers["Location"] == f"/admin/users/{user.id}"
    db.session.rollback()
    assert db.session.get(User, user.id).active is False
    refused = Browser(app.test_client()).post("/auth/login", {"username": user.username, "password": STRONG_PASSWORD})
    assert refused.status_code == 401
    browser.post(f"/admin/users/{user.id}/reactivate", token_from=f"/admin/users/{user.id}")
    Browser(app.test_client()).login(user)
    assert [(e.actor_id, e.subject_id) for e in events(EventCode.USER_DEACTIVATED)] == [(admin_user.id, str(user.id))]
    assert [(e.actor_id, e.subject_id) for e in events(EventCode.USER_REACTIVATED)] == [(admin_user.id, str(user.id))]


def test_admin_cannot_deactivate_themself(admin):
    """Deactivating one's own account is refused with a message; the account stays active."""
    browser, admin_user = admin
    response = browser.post(f"/admin/users/{admin_user.id}/deactivate", token_from=f"/admin/users/{admin_user.id}")
    assert response.status_code == 302
    assert "You cannot deactivate your own account." in browser.get(response.headers["Location"]).get_data(as_text=True)
    db.session.rollback()
    assert db.session.get(User, admin_user.id).active is True
    assert events(EventCode.USER_DEACTIVATED) == []


def test_re_role_takes_effect_and_is_audited(app, admin, make_user):
    """A new role is saved and audited with old and new values; the user's next sign-in has the
    new role's home page and rights."""
    browser, admin_user = admin
    user = make_user("caseworker")
    response = browser.post(f"/admin/users/{user.id}", {"role": "auditor", "office_id": str(user.office_id)})
    assert response.status_code == 302
    db.session.rollback()
    assert db.session.get(User, user.id).role == "auditor"
    [event] = events(EventCode.USER_ROLE_CHANGED)
    assert (event.actor_id, event.subject_id, event.details) == (
        admin_user.id, str(user.id), {"role": {"old": "caseworker", "new": "auditor"}})
    again = Browser(app.test_client())
    again.login(user)
    assert "<h1>Audit</h1>" in again.get("/").get_data(as_text=True)


def test_office_move_is_audited(admin, make_user, other_office):
    """Moving a user to another office is saved and audited as an office change only."""
    browser, _admin_user = admin
    user = make_user("caseworker")
    old_office = user.office_id
    browser.post(f"/admin/users/{user.id}", {"role": "caseworker", "office_id": str(other_office.id)})
    db.session.rollback()
    assert db.session.get(User, user.id).office_id == other_office.id
    [event] = events(EventCode.USER_OFFICE_CHANGED)
    assert event.details == {"office_id": {"old": old_office, "new": other_office.id}}
    assert events(EventCode.USER_ROLE_CHANGED) == []


def test_admin_cannot_change_their_own_role_but_can_save_their_office(admin, other_office):
    """Changing one's own role is refused (422, nothing saved); saving one's own form with the
    role unchanged is allowed."""
    browser, admin_user = admin
    response = browser.post(f"/admin/users/{admin_user.id}",
                            {"role": "supervisor", "office_id": str(admin_user.office_id)})
    assert response.status_code == 422
    assert "You cannot change your own role." in response.get_data(as_text=True)
    db.session.rollback()
    assert db.session.get(User, admin_user.id).role == "admin"
    response = browser.post(f"/admin/users/{admin_user.id}", {"role": "admin", "office_id": str(other_office.id)})
    assert response.status_code == 302
    db.session.rollback()
    assert db.session.get(User, admin_user.id).office_id == other_office.id


def test_refused_assignment_changes_nothing(app, make_user):
    """The role and the office are checked together: a bad office leaves the role unchanged."""
    user = make_user("caseworker")
    admin_user = make_user("admin")
    with pytest.raises(services.ValidationFailed) as refused:
        services.change_assignment(user, role="auditor", office_id=999_999, acting_user=admin_user)
    assert set(refused.value.errors) == {"office_id"}
    db.session.rollback()
    assert db.session.get(User, user.id).role == "caseworker"
    assert events(EventCode.USER_ROLE_CHANGED) == []


def test_reset_second_factor_forces_enrolment_again(app, admin, make_user):
    """After an administrator removes a supervisor's second factor, the supervisor must enrol
    again at the next sign-in; the reset is audited."""
    browser, admin_user = admin
    user = make_user("supervisor", mfa=True)
    browser.post(f"/admin/users/{user.id}/reset-second-factor", token_from=f"/admin/users/{user.id}")
    db.session.rollback()
    assert db.session.get(User, user.id).mfa_enabled is False
    response = Browser(app.test_client()).post("/auth/login", {"username": user.username, "password": STRONG_PASSWORD})
    assert response.headers["Location"] == "/auth/enrol"
    assert [(e.actor_id, e.subject_id) for e in events(EventCode.MFA_RESET)] == [(admin_user.id, str(user.id))]


def test_admin_creates_an_office(admin):
    """A new office appears in the list and in the user form; a duplicate code is refused."""
    browser, admin_user = admin
    response = browser.post("/admin/offices", {"code": " south-2 ", "name": "Southern office"})
    assert (response.status_code, response.headers["Location"]) == (302, "/admin/offices")
    db.session.rollback()
    office = db.session.scalar(select(Office).where(Office.code == "SOUTH-2"))
    assert office.name == "Southern office"
    assert "SOUTH-2 — Southern office" in browser.get("/admin/users/new").get_data(as_text=True)
    [event] = events(EventCode.SETTINGS_CHANGED)
    assert (event.actor_id, event.subject_type, event.subject_id) == (admin_user.id, "office", str(office.id))
    duplicate = browser.post("/admin/offices", {"code": "south-2", "name": "Again"})
    assert duplicate.status_code == 422
    assert "This office code exists already." in duplicate.get_data(as_text=True)


def test_unknown_user_id_is_404_for_the_admin(admin):
    """An id that does not exist answers 404 on the detail page and on the actions."""
    browser, _admin_user = admin
    assert browser.get("/admin/users/999999").status_code == 404
    assert browser.post("/admin/users/999999/deactivate", token_from="/admin/users").status_code == 404
