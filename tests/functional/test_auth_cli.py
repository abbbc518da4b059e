"""Operator commands: `flask users create` makes the first administrator (no account exists by
default), and `flask demo users` prints one working sign-in per role (development only)."""

from __future__ import annotations

import re

import pyotp
from sqlalchemy import func, select

from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.auth.models import Office, User
from app.auth.permissions import Role
from app.extensions import db
from conftest import Browser

PASSWORD = "velvet ocean drum parade lantern"
DEMO_LINE = re.compile(r"^  (\S+)\s+(\S+)\s+(\S+)(?:\s+second factor: .*\(secret ([A-Z2-7]+)\))?$")


def run(app, *args, **kwargs):
    return app.test_cli_runner().invoke(args=list(args), **kwargs)


def test_no_account_exists_before_the_first_administrator(app):
    """A freshly migrated database has no account to sign in with."""
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_users_create_makes_the_first_administrator(app):
    """The CLI creates an administrator (and their office), audited as created via the CLI; the
    output names the account but never the password."""
    result = run(app, "users", "create", "--username", "first.admin", "--full-name", "First Admin",
                 "--office-code", "hq", "--office-name", "Headquarters", "--password", PASSWORD)
    assert result.exit_code == 0, result.output
    assert "created admin account first.admin" in result.output
    assert PASSWORD not in result.output
    db.session.rollback()
    user = db.session.scalar(select(User).where(User.username == "first.admin"))
    assert (user.role, user.office.code, user.active) == ("admin", "HQ", True)
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.code == EventCode.USER_CREATED)).one()
    assert (event.actor_id, event.details["via"]) == (None, "cli")


def test_first_administrator_signs_in_and_must_enrol(app):
    """The administrator made by the CLI signs in with the password and is sent to enrol a
    second factor."""
    run(app, "users", "create", "--username", "first.admin", "--full-name", "First Admin",
        "--office-code", "HQ", "--office-name", "Headquarters", "--password", PASSWORD)
    browser = Browser(app.test_client())
    response = browser.post("/auth/login", {"username": "first.admin", "password": PASSWORD})
    assert response.headers["Location"] == "/auth/enrol"


def test_users_create_prompts_for_a_hidden_password(app):
    """Without --password the command prompts twice (hidden) for it."""
    result = run(app, "users", "create", "--username", "first.admin", "--full-name", "First Admin",
                 "--office-code", "HQ", "--office-name", "Headquarters", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert db.session.scalar(select(func.count()).select_from(User)) == 1


def test_users_create_refuses_bad_input_cleanly(app):
    """A weak password or bad username is refused with the reasons and exit code 1, no traceback,
    and nothing is created (not even the office)."""
    result = run(app, "users", "create", "--username", "Bad Name", "--full-name", "X",
                 "--office-code", "HQ", "--office-name", "Headquarters", "--password", "password")
    assert result.exit_code == 1
    assert "account not created" in result.output
    assert "username: Use 3 to 64 characters" in result.output
    assert "password: Use at least 15 characters" in result.output
    assert "Traceback" not in result.output
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(User)) == 0
    assert db.session.scalar(select(func.count()).select_from(Office)) == 0
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.code == EventCode.SETTINGS_CHANGED)) == 0


def test_users_create_in_an_existing_office(app, office):
    """With an existing office code, the account joins that office and no office is created."""
    result = run(app, "users", "create", "--username", "second.admin", "--full-name", "Second Admin",
                 "--office-code", "hq", "--password", PASSWORD)
    assert result.exit_code == 0, result.output
    db.session.rollback()
    assert db.session.scalar(select(User).where(User.username == "second.admin")).office_id == office.id
    assert db.session.scalar(select(func.count()).select_from(Office)) == 1


def test_users_create_needs_an_existing_or_named_office(app):
    """An unknown office code without --office-name is refused."""
    result = run(app, "users", "create", "--username", "first.admin", "--full-name", "First Admin",
                 "--office-code", "NOWHERE", "--password", PASSWORD)
    assert result.exit_code == 1
    assert "office NOWHERE does not exist" in result.output


def test_demo_users_prints_working_sign_ins_for_every_role(app):
    """`flask demo users` creates one account per role and prints passwords that sign in (with
    the printed second-factor secret where the role needs one)."""
    result = run(app, "demo", "users")
    assert result.exit_code == 0, result.output
    accounts = [DEMO_LINE.match(line).groups() for line in result.output.splitlines()[1:]]
    assert {role for role, *_ in accounts} == {r.value for r in Role}
    for role, username, password, secret in accounts:
        db.session.rollback()
        user = db.session.scalar(select(User).where(User.username == username))
        assert user.role == role
        browser = Browser(app.test_client())
        response = browser.post("/auth/login", {"username": username, "password": password})
        if secret:
            assert response.headers["Location"] == "/auth/second-factor"
            response = browser.post("/auth/second-factor", {"code": pyotp.TOTP(secret).now()})
        assert response.headers["Location"] == "/", (username, response.status_code)
        assert browser.get("/").status_code == 200
    assert {o.code for o in db.session.scalars(select(Office))} == {"HQ", "NORTH"}


def test_demo_users_again_refreshes_passwords(app):
    """Running the command again keeps the accounts and prints new passwords that work."""
    run(app, "demo", "users")
    count = db.session.scalar(select(func.count()).select_from(User))
    result = run(app, "demo", "users")
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(User)) == count
    _role, username, password, _secret = DEMO_LINE.match(result.output.splitlines()[2]).groups()
    Browser(app.test_client()).post("/auth/login", {"username": username, "password": password})


def test_demo_commands_are_refused_in_production(app_factory):
    """Outside development and testing the demo commands refuse to run and create nothing."""
    app = app_factory(ENVIRONMENT="production")
    with app.app_context():
        result = run(app, "demo", "users")
        assert result.exit_code == 1
        assert "demo commands run only in development" in result.output
        assert db.session.scalar(select(func.count()).select_from(User)) == 0
