"""The queues' indexes after migration 0008: the redundant ix_asylum_case_queue is gone, the
per-track counts read the narrow ix_asylum_case_open_count alone, and "my cases" seeks on the
assignee and the office together. Plans are read under a large caseload's planner statistics
(see test_queues.plan)."""

from __future__ import annotations

import importlib.util
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select

from app.extensions import db
from app.intake.models import Case
from app.triage import queues
from test_queues import TODAY, make_case, plan

# SQLite cannot reflect expression-based (partial) indexes and says so.
pytestmark = pytest.mark.filterwarnings("ignore:.*expression-based index")
MIGRATION = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0008_queue_indexes_lean.py"


@pytest.fixture
def add_case(office, make_user):
    """add_case(**fields) -> Case of the HQ office (test_queues.make_case)."""
    registrar = make_user("registration_officer")
    return lambda **fields: make_case(office.id, registrar.id, **fields)


def fill(add_case, worker) -> None:
    for n in range(30):
        add_case(priority=n % 4, deadline=TODAY + timedelta(days=n % 7 - 3), commit=False,
                 track="regular" if n % 3 else "border",
                 status="assigned" if n % 2 else "registered", assigned_to=worker if n % 2 else None)
    db.session.commit()


def test_closed_statuses_match_the_frozen_copy_in_migration_0008():
    """0008 rebuilds partial indexes on CLOSED_STATUSES: its frozen copy must be the list."""
    spec = importlib.util.spec_from_file_location("queue_indexes_lean_migration", MIGRATION)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert migration.CLOSED_STATUSES == queues.CLOSED_STATUSES


def test_the_redundant_queue_index_is_gone_and_the_new_ones_exist(app):
    """After the migrations the database has the queues' partial indexes and not the old one."""
    with db.engine.connect() as conn:
        names = {index["name"] for index in inspect(conn).get_indexes("asylum_case")}
    assert "ix_asylum_case_queue" not in names
    if db.engine.dialect.name == "postgresql":  # SQLite does not reflect expression-based indexes
        assert {"ix_asylum_case_open_count", "ix_asylum_case_open_queue_track",
                "ix_asylum_case_open_assignee"} <= names


def test_track_counts_read_the_narrow_count_index_alone(office, add_case, make_user):
    """The per-track GROUP BY reads ix_asylum_case_open_count without touching the table."""
    fill(add_case, make_user("caseworker"))
    statement = (select(Case.track, func.count()).where(*queues._queue_filter(office.id, None))
                 .group_by(Case.track).order_by(Case.track.is_(None), Case.track))
    text_plan = plan(statement)
    if db.engine.dialect.name == "sqlite":
        assert "COVERING INDEX ix_asylum_case_open_count" in text_plan, text_plan
    else:
        assert "ix_asylum_case_open_" in text_plan and "Seq Scan" not in text_plan, text_plan
    assert [(r.track, r.waiting) for r in queues.track_counts(office.id, max_age=0)] == [
        ("border", 5), ("regular", 10)]


def test_my_cases_later_pages_seek_on_assignee_and_office(office, add_case, make_user):
    """A later page of "my cases" is a range of ix_asylum_case_open_assignee on the assignee and
    the office, read in order (no sort)."""
    worker = make_user("caseworker")
    fill(add_case, worker)
    first = queues.cases_of(worker.id, office_id=office.id, limit=5)
    cursor = queues.Cursor.decode(first.next_after)
    statement = queues._assigned_statement(cursor.deadline is not None).params(
        user_id=worker.id, office_id=office.id, limit=6, c_deadline=cursor.deadline,
        c_registered=cursor.registered_on, c_id=cursor.case_id, c_priority=None)
    text_plan = plan(statement)
    if db.engine.dialect.name == "sqlite":
        assert "ix_asylum_case_open_assignee (assigned_to_id=? AND office_id=?)" in text_plan, text_plan
    else:
        assert "ix_asylum_case_open_" in text_plan, text_plan
    assert "Sort" not in text_plan and "TEMP B-TREE" not in text_plan
    second = queues.cases_of(worker.id, office_id=office.id, limit=5, after=first.next_after)
    assert not {r.id for r in first.rows} & {r.id for r in second.rows}
