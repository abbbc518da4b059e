"""Shared fixtures.

Database: SQLite by default (a migrated template file copied per test: fast and fully isolated),
or PostgreSQL when TEST_DATABASE_URL is set (migrated once per run, tables truncated after each
test). The schema is always built by the Alembic migrations, never by create_all().

CSRF stays enforced: clients read the token from the page like a browser would.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyotp
import pytest
from flask import g, has_app_context
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import create_engine, event, select, text

from app import create_app, enable_migrations
from app.auth.models import Office, User
from app.auth.passwords import hash_password
from app.extensions import db, limiter
from config import TestingConfig

def _database_for_this_worker(url: str | None) -> str | None:
    """Under pytest-xdist each worker gets its own PostgreSQL database (``<name>_gw0``, ...),
    created on first use, so workers never reset each other's tables. The environment variable
    is rewritten too: tests that read it (pg_dump scans, concurrency tests) see their worker's."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"{base.database}_{worker}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    worker_url = base.set(database=name).render_as_string(hide_password=False)
    os.environ["TEST_DATABASE_URL"] = worker_url
    return worker_url


POSTGRES_URL = _database_for_this_worker(os.environ.get("TEST_DATABASE_URL"))
STRONG_PASSWORD = "correct horse battery staple glacier"
CSRF_PATTERN = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
KEEP_ON_RESET = {"alembic_version", "crypto_key", "audit_chain_head"}


@contextmanager
def captured_statements() -> Iterator[list[str]]:
    """The SQL statements sent to the database inside the block, in order (for tests of how
    many queries a page or service costs; never of how long they take)."""
    seen: list[str] = []

    def keep(_conn, _cursor, statement, *_args):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", keep)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", keep)


class FreshGlobalsClient(FlaskClient):
    """Starts every request with an empty ``g``, as a WSGI server does. The fixtures keep one app
    context pushed for setup and assertions, and Flask reuses a pushed context (and its ``g``)
    for a request: one request's signed-in user, CSRF token or locale cached on ``g`` would
    otherwise carry over into the next. (A whole new app context per request would also give the
    request its own database session, which on SQLite waits on the test's open transaction.)"""

    def open(self, *args, **kwargs):
        if has_app_context():
            for name in list(vars(g)):
                delattr(g, name)
        return super().open(*args, **kwargs)


def make_config(database_url: str, tmp_path: Path, **overrides) -> type[TestingConfig]:
    return type("PerTestConfig", (TestingConfig,), {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "AUDIT_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
        **overrides,
    })


def migrate_and_initialise(app) -> None:
    from app.admin.services import initialise_keys

    enable_migrations(app)
    with app.app_context():
        upgrade()
        initialise_keys()
        db.session.remove()
        db.engine.dispose()


def reset_postgres_schema(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def database_template(tmp_path_factory) -> str:
    """The migrated database every test starts from: a SQLite file path, or the PostgreSQL URL."""
    base = tmp_path_factory.mktemp("db")
    if POSTGRES_URL:
        reset_postgres_schema(POSTGRES_URL)
        migrate_and_initialise(create_app(make_config(POSTGRES_URL, base)))
        return POSTGRES_URL
    template = base / "template.db"
    migrate_and_initialise(create_app(make_config(f"sqlite:///{template}", base)))
    engine = create_engine(f"sqlite:///{template}")
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return str(template)


@pytest.fixture
def database_url(database_template, tmp_path) -> str:
    if POSTGRES_URL:
        return POSTGRES_URL
    copy = tmp_path / "nansen.db"
    shutil.copyfile(database_template, copy)
    return f"sqlite:///{copy}"


def truncate_postgres(app) -> None:
    """Empty every table after a test. DELETE, not TRUNCATE: on tables of a few rows it is an
    order of magnitude faster (TRUNCATE swaps files and takes exclusive locks). The session runs
    with session_replication_role=replica, as a superuser may, so the triggers that keep
    audit_event append-only do not fire for this clean-up."""
    with app.app_context():
        db.session.remove()
        tables = [t.name for t in reversed(db.metadata.sorted_tables) if t.name not in KEEP_ON_RESET]
        with db.engine.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))
            conn.execute(text("UPDATE audit_chain_head SET seq = 0, hash = :zero WHERE id = 1"),
                         {"zero": bytes(32)})
            conn.execute(text("DELETE FROM crypto_key WHERE id > (SELECT min(id) FROM crypto_key "
                              "WHERE purpose = 'data') AND purpose = 'data'"))
        db.engine.dispose()


@pytest.fixture
def app_factory(database_url, tmp_path):
    """Build an application on this test's database, with optional config overrides."""
    created = []

    def build(**overrides):
        application = create_app(make_config(database_url, tmp_path, **overrides))
        application.test_client_class = FreshGlobalsClient
        created.append(application)
        with application.app_context():
            limiter.reset()
        return application

    yield build
    for application in created:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()
    if POSTGRES_URL and created:
        truncate_postgres(created[0])


@pytest.fixture
def app(app_factory):
    application = app_factory()
    with application.app_context():
        yield application


@pytest.fixture
def office(app) -> Office:
    existing = db.session.scalar(select(Office).where(Office.code == "HQ"))
    if existing:
        return existing
    office = Office(code="HQ", name="Headquarters")
    db.session.add(office)
    db.session.commit()
    return office


@pytest.fixture
def other_office(app) -> Office:
    office = Office(code="NORTH", name="Northern office")
    db.session.add(office)
    db.session.commit()
    return office


@pytest.fixture
def make_user(app, office):
    """Create a user directly (fast path, not audited): tests of the services use the services."""
    counter = {"n": 0}

    def make(role: str = "caseworker", *, username: str | None = None, office_id: int | None = None,
             password: str = STRONG_PASSWORD, mfa: bool = False, active: bool = True) -> User:
        counter["n"] += 1
        user = User(username=username or f"{role}{counter['n']}", full_name=f"Test {role.title()}",
                    role=role, office_id=office_id or office.id, password_hash=hash_password(password),
                    active=active)
        db.session.add(user)
        db.session.flush()
        if mfa:
            user.totp_secret = pyotp.random_base32()
            from app.db_types import utcnow
            user.totp_confirmed_at = utcnow()
        db.session.commit()
        return user

    return make


class Browser:
    """A test client that behaves like a browser: reads CSRF tokens from pages."""

    def __init__(self, client):
        self.client = client

    def csrf(self, path: str = "/auth/login") -> str:
        page = self.client.get(path).get_data(as_text=True)
        match = CSRF_PATTERN.search(page)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def get(self, *args, **kwargs):
        return self.client.get(*args, **kwargs)

    def post(self, path: str, data: dict | None = None, *, token_from: str | None = None, **kwargs):
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf(token_from or path))
        return self.client.post(path, data=data, **kwargs)

    def login(self, user: User, password: str = STRONG_PASSWORD):
        response = self.post("/auth/login", {"username": user.username, "password": password})
        if response.status_code == 302 and response.headers["Location"].endswith("/auth/second-factor"):
            code = pyotp.TOTP(user.totp_secret).now()
            response = self.post("/auth/second-factor", {"code": code})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return response


@pytest.fixture
def browser(app) -> Browser:
    return Browser(app.test_client())


@pytest.fixture
def signed_in(app, make_user):
    """signed_in(role, **user_options) -> (Browser, User), already past sign-in."""

    def sign_in(role: str, **options):
        user = make_user(role, mfa=options.pop("mfa", role in app.config["MFA_REQUIRED_ROLES"]), **options)
        browser = Browser(app.test_client())
        browser.login(user)
        return browser, user

    return sign_in
