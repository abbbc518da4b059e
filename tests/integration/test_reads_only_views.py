"""Views declared ``reads_only`` (app/database.py) read in one read-only transaction: on SQLite a
deferred BEGIN, so they answer while another connection holds the single write lock; and no
connection declared read-only ever sends a write."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import func, select, text

from app.auth.models import Office
from app.database import READS_ONLY_ATTRIBUTE, WriteInReadOnlyTransaction
from app.extensions import db
from tests.conftest import captured_statements

ON_SQLITE = pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")),
                               reason="SQLite's write lock; PostgreSQL readers never wait for writers")


def test_a_write_on_a_read_only_connection_is_refused_before_it_is_sent(app, office):
    """The statement never reaches the database: nothing is written, a clear error is raised."""
    before = db.session.scalar(select(func.count()).select_from(Office))
    db.session.remove()
    with db.engine.connect().execution_options(read_only=True) as conn:
        with captured_statements() as sent:
            with pytest.raises(WriteInReadOnlyTransaction, match="read-only connection"):
                conn.execute(text("INSERT INTO office (code, name) VALUES ('ZZZ', 'Never')"))
        assert not any("INSERT" in s for s in sent)
        assert conn.execute(select(func.count()).select_from(Office)).scalar() == before  # reads still work
    assert db.session.scalar(select(func.count()).select_from(Office)) == before


def test_the_declared_views_are_marked(app):
    """The pages that only read carry the mark; a page that writes an audit event does not."""
    marked = {name for name, view in app.view_functions.items() if getattr(view, READS_ONLY_ATTRIBUTE, False)}
    assert {"admin.users", "reports.dashboard", "triage.queue_page", "triage.my_cases", "intake.search"} <= marked
    assert "intake.case_page" not in marked and "audit.trail" not in marked


@ON_SQLITE
def test_a_reads_only_page_answers_while_another_connection_holds_the_write_lock(app, signed_in):
    """The admin's user list is served, with its content, while a writer holds BEGIN IMMEDIATE;
    without the declaration it would wait for the lock until the busy timeout."""
    browser, admin = signed_in("admin")
    browser.get("/")  # shows and drops the sign-in's flash message: a session write, which needs the lock
    username = admin.username
    db.session.remove()
    with db.engine.connect() as writer:  # app/database.py: BEGIN IMMEDIATE, the write lock
        writer.execute(select(Office.id).limit(1)).all()
        assert writer.in_transaction()
        with captured_statements() as sent:
            page = browser.get("/admin/users")
        assert page.status_code == 200
        assert username in page.get_data(as_text=True)
        assert "BEGIN" in sent and "BEGIN IMMEDIATE" not in sent
