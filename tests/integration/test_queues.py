"""Queues, assignment and deadlines (app/triage/queues.py): order, office scoping, keyset paging,
take-next under concurrency, all-or-nothing assignment, workload aggregates, deadline boundaries,
and the partial indexes the queries are written for."""

from __future__ import annotations

import importlib.util
import itertools
import os
import threading
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.auth.models import User
from app.extensions import db
from app.intake.models import Case
from app.triage import queues

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")
TODAY = date(2026, 9, 1)
MIGRATION = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0005_queue_indexes.py"
_numbers = itertools.count(1)


def make_case(office_id: int, received_by_id: int, *, track: str | None = "regular", priority: int = 0,
              deadline: date | None = None, registered_on: date = date(2026, 7, 1), status: str = "registered",
              assigned_to: User | None = None, reference: str | None = None, commit: bool = True) -> Case:
    """A case row with only the fields the queues read (no people: queues never need them)."""
    case = Case(reference=reference or f"T-{next(_numbers):06d}", office_id=office_id, made_on=registered_on,
                registered_on=registered_on, received_by_id=received_by_id, track=track, priority=priority,
                statutory_deadline=deadline, status=status,
                assigned_to_id=assigned_to.id if assigned_to else None)
    db.session.add(case)
    if commit:
        db.session.commit()
    return case


@pytest.fixture
def registrar(make_user):
    return make_user("registration_officer")


@pytest.fixture
def new_case(office, registrar):
    """new_case(**fields) -> Case of the HQ office."""
    def make(**fields):
        return make_case(fields.pop("office_id", office.id), registrar.id, **fields)
    return make


def refs(page) -> list[str]:
    return [row.reference for row in page.rows]


def assignment_events() -> list[AuditEvent]:
    db.session.rollback()
    return db.session.scalars(select(AuditEvent).where(AuditEvent.code == EventCode.CASE_ASSIGNED)
                              .order_by(AuditEvent.id)).all()


def fresh(case_id: str) -> Case:
    db.session.rollback()
    db.session.expire_all()
    return db.session.get(Case, case_id)


# -- order, scope, paging --------------------------------------------------------------------------

def test_queue_orders_by_priority_then_deadline_nulls_last_then_registration(office, new_case):
    """Priority first, then nearest deadline (none last), then registration date, then id."""
    new_case(reference="P0-EARLY", priority=0, deadline=date(2026, 9, 2))
    new_case(reference="P2-NONE", priority=2, deadline=None)
    new_case(reference="P2-LATE", priority=2, deadline=date(2026, 12, 1))
    new_case(reference="P2-SOON-NEW", priority=2, deadline=date(2026, 10, 1), registered_on=date(2026, 7, 5))
    new_case(reference="P2-SOON-OLD", priority=2, deadline=date(2026, 10, 1), registered_on=date(2026, 7, 2))
    new_case(reference="P1-NONE", priority=1, deadline=None)
    new_case(reference="P1-SOON", priority=1, deadline=date(2026, 9, 10))
    page = queues.queue(office.id)
    assert refs(page) == ["P2-SOON-OLD", "P2-SOON-NEW", "P2-LATE", "P2-NONE", "P1-SOON", "P1-NONE", "P0-EARLY"]
    assert page.next_after is None
    row = page.rows[0]
    assert (row.track, row.priority, row.statutory_deadline, row.status) == ("regular", 2, date(2026, 10, 1),
                                                                             "registered")


def test_queue_shows_only_open_unassigned_cases_of_the_office_and_track(office, other_office, new_case, make_user):
    """Another office's cases, assigned cases and closed cases never appear; a track filters."""
    worker = make_user("caseworker")
    new_case(reference="MINE-REG", track="regular")
    new_case(reference="MINE-BORDER", track="border", priority=5)
    new_case(reference="NOT-TRIAGED", track=None, registered_on=date(2026, 7, 9))
    new_case(reference="OTHER-OFFICE", office_id=other_office.id, priority=9)
    new_case(reference="TAKEN", status="assigned", assigned_to=worker, priority=9)
    for status in queues.CLOSED_STATUSES:
        new_case(reference=f"CLOSED-{status[:10]}", status=status, priority=9)
    assert refs(queues.queue(office.id)) == ["MINE-BORDER", "MINE-REG", "NOT-TRIAGED"]
    assert refs(queues.queue(office.id, "regular")) == ["MINE-REG"]
    assert refs(queues.queue(office.id, "accelerated")) == []
    assert refs(queues.queue(other_office.id)) == ["OTHER-OFFICE"]
    counts = [(row.track, row.waiting) for row in queues.track_counts(office.id)]
    assert counts == [("border", 1), ("regular", 1), (None, 1)]


def test_track_counts_are_kept_briefly_and_dropped_by_own_changes(office, new_case, make_user, supervisor):
    """Counts are kept max_age seconds, dropped by this process's own takes and assignments."""
    worker = make_user("caseworker")
    first = new_case()
    assert [(r.track, r.waiting) for r in queues.track_counts(office.id, max_age=60)] == [("regular", 1)]
    new_case()
    assert [(r.track, r.waiting) for r in queues.track_counts(office.id, max_age=60)] == [("regular", 1)]
    assert [(r.track, r.waiting) for r in queues.track_counts(office.id, max_age=0)] == [("regular", 2)]
    queues.bulk_assign([first.id], worker.id, acting_user=supervisor)
    assert [(r.track, r.waiting) for r in queues.track_counts(office.id, max_age=60)] == [("regular", 1)]
    queues.take_next(acting_user=worker)
    assert queues.track_counts(office.id, max_age=60) == []


def test_keyset_paging_visits_every_case_once_in_order_and_stays_stable(office, new_case):
    """Keyset pages give the one-page order exactly, even when a case is added between pages."""
    for n in range(23):
        new_case(reference=f"K-{n:02d}", priority=n % 3, deadline=None if n % 5 == 0 else TODAY + timedelta(days=n % 4),
                 registered_on=date(2026, 7, 1 + n % 2), commit=False)
    db.session.commit()
    everything = refs(queues.queue(office.id, limit=50))
    assert len(everything) == 23
    seen, after, pages = [], None, 0
    while True:
        page = queues.queue(office.id, limit=4, after=after)
        seen += refs(page)
        pages += 1
        if pages == 2:  # someone registers an urgent case meanwhile: it sorts before the cursor
            new_case(reference="K-URGENT", priority=9, deadline=TODAY)
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == everything
    assert pages == 6
    assert refs(queues.queue(office.id, limit=1)) == ["K-URGENT"]


def test_paging_cursors_are_checked(office, new_case, make_user):
    """A cursor that is malformed, tampered or from another list is refused, not run."""
    for n in range(3):
        new_case(priority=n)
    cursor = queues.queue(office.id, limit=1).next_after
    assert cursor is not None
    for bad in ["x", "1~2026-13-01~2026-07-01~" + "a" * 32, "1~~2026-07-01~" + "g" * 32, cursor + "~1",
                "99999999999~~2026-07-01~" + "a" * 32, "\x00"]:
        with pytest.raises(queues.InvalidCursor):
            queues.queue(office.id, after=bad)
    worker = make_user("caseworker")
    with pytest.raises(queues.InvalidCursor):  # a queue cursor handed to a deadline-ordered list
        queues.my_cases(acting_user=worker, after=cursor)
    with pytest.raises(ValueError):
        queues.queue(office.id, limit=0)


def test_my_cases_lists_own_open_cases_by_deadline(office, new_case, make_user):
    """A caseworker's own open cases, nearest deadline first, none last; not others', not closed."""
    me, colleague = make_user("caseworker"), make_user("caseworker")
    new_case(reference="MINE-NONE", status="assigned", assigned_to=me, deadline=None, priority=9)
    new_case(reference="MINE-LATE", status="assigned", assigned_to=me, deadline=date(2026, 12, 1))
    new_case(reference="MINE-SOON", status="interview_scheduled", assigned_to=me, deadline=date(2026, 9, 5))
    new_case(reference="MINE-DONE", status="decision_issued", assigned_to=me, deadline=date(2026, 8, 1))
    new_case(reference="THEIRS", status="assigned", assigned_to=colleague, deadline=date(2026, 9, 2))
    assert refs(queues.my_cases(acting_user=me)) == ["MINE-SOON", "MINE-LATE", "MINE-NONE"]
    first = queues.my_cases(acting_user=me, limit=2)
    assert refs(first) == ["MINE-SOON", "MINE-LATE"]
    assert refs(queues.my_cases(acting_user=me, after=first.next_after)) == ["MINE-NONE"]


# -- take next ---------------------------------------------------------------------------------------

def test_take_next_assigns_the_first_case_and_audits(office, new_case, make_user):
    """take_next assigns the first case (status, time, version) and audits it; empty queue: None."""
    worker = make_user("caseworker")
    second = new_case(reference="SECOND", priority=1)
    first = new_case(reference="FIRST", priority=3)
    new_case(reference="BORDER", track="border", priority=0)
    taken = queues.take_next(acting_user=worker, track="regular")
    assert taken.id == first.id
    case = fresh(first.id)
    assert (case.assigned_to_id, case.status, case.version) == (worker.id, "assigned", 2)
    assert case.assigned_at is not None
    events = assignment_events()
    assert [(e.actor_id, e.subject_type, e.subject_id, e.outcome, e.details) for e in events] == [
        (worker.id, "case", first.id, "success", {"how": "take_next", "old_assignee": None, "new_assignee": worker.id})]
    assert queues.take_next(acting_user=worker, track="regular").id == second.id
    assert queues.take_next(acting_user=worker, track="regular") is None
    assert queues.take_next(acting_user=worker).reference == "BORDER"
    assert queues.take_next(acting_user=worker) is None
    assert len(assignment_events()) == 3


def test_take_next_stays_in_the_office_and_needs_queue_permission(office, other_office, new_case, make_user):
    """A caseworker never takes another office's case; a registration officer may not take."""
    new_case(reference="NORTH", office_id=other_office.id)
    worker = make_user("caseworker")
    assert queues.take_next(acting_user=worker) is None
    north_worker = make_user("caseworker", office_id=other_office.id)
    assert queues.take_next(acting_user=north_worker).reference == "NORTH"
    with pytest.raises(queues.AssignmentRefused):
        queues.take_next(acting_user=make_user("registration_officer"))
    assert len(assignment_events()) == 1


def race(app, user_ids: list[int], track: str | None = None) -> tuple[list[str | None], list[str]]:
    """Every user takes the next case at the same moment, each thread with its own application
    context and session; returns what each got (case id or None) and any errors."""
    barrier, results, errors = threading.Barrier(len(user_ids)), [], []

    def take(user_id: int) -> None:
        with app.app_context():
            try:
                user = db.session.get(User, user_id)
                db.session.expunge(user)
                db.session.rollback()  # SQLite: no transaction (hence no write lock) held at the barrier
                barrier.wait(30)
                case = queues.take_next(acting_user=user, track=track)
                results.append(case.id if case else None)
            except Exception as exc:  # noqa: BLE001 - reported by the caller's assertion
                errors.append(repr(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=take, args=(uid,)) for uid in user_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results, errors


def assert_fair_race(results, errors, case_ids, takers):
    assert errors == []
    taken = [r for r in results if r is not None]
    assert len(results) == takers
    assert sorted(taken) == sorted(case_ids)            # every case taken, none twice
    assert results.count(None) == takers - len(case_ids)
    db.session.rollback()
    owners = db.session.execute(select(Case.assigned_to_id).where(Case.id.in_(case_ids))).scalars().all()
    assert len(set(owners)) == len(case_ids) and None not in owners
    events = assignment_events()
    assert sorted(e.subject_id for e in events) == sorted(case_ids)


@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL concurrency test: set TEST_DATABASE_URL to run it")
def test_twenty_concurrent_takers_on_postgresql_never_share_a_case(app_factory):
    """20 concurrent takers, 10 cases (SKIP LOCKED): 10 distinct assignments, 10 get None."""
    from app.auth.models import Office
    from conftest import STRONG_PASSWORD
    from app.auth.passwords import hash_password

    app = app_factory(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 25, "max_overflow": 5, "pool_timeout": 60})
    with app.app_context():
        office = Office(code="HQ", name="Headquarters")
        db.session.add(office)
        db.session.flush()
        password_hash = hash_password(STRONG_PASSWORD)
        users = [User(username=f"cw{n}", full_name="Racer", role="caseworker", office_id=office.id,
                      password_hash=password_hash) for n in range(20)]
        db.session.add_all(users)
        db.session.flush()
        case_ids = [make_case(office.id, users[0].id, priority=n % 3, commit=False).id for n in range(10)]
        db.session.commit()
        user_ids = [u.id for u in users]
        db.session.remove()
    results, errors = race(app, user_ids)
    with app.app_context():
        assert_fair_race(results, errors, case_ids, takers=20)


def test_concurrent_takers_on_this_database_never_share_a_case(app, office, new_case, make_user):
    """Six concurrent takers, three cases: three distinct assignments, three get None."""
    case_ids = [new_case(priority=n).id for n in range(3)]
    user_ids = [make_user("caseworker").id for _ in range(6)]
    db.session.remove()
    results, errors = race(app, user_ids, track="regular")
    assert_fair_race(results, errors, case_ids, takers=6)


# -- supervisors' assignment ---------------------------------------------------------------------------

@pytest.fixture
def supervisor(make_user):
    return make_user("supervisor")


def test_bulk_assign_gives_every_case_and_audits_old_and_new(office, new_case, make_user, supervisor):
    """Bulk assignment moves every case, audits old and new assignee, leaves unchanged ones alone."""
    worker, other = make_user("caseworker"), make_user("caseworker")
    a, b = new_case(reference="A"), new_case(reference="B")
    c = new_case(reference="C", status="assigned", assigned_to=other)
    d = new_case(reference="D", status="assigned", assigned_to=worker)
    changed = queues.bulk_assign([a.id, b.id, c.id, d.id, a.id], worker.id, acting_user=supervisor)
    assert changed == 3
    for case_id in (a.id, b.id, c.id, d.id):
        case = fresh(case_id)
        assert (case.assigned_to_id, case.status) == (worker.id, "assigned")
    assert fresh(d.id).version == 1  # untouched
    details = {e.subject_id: (e.actor_id, e.details) for e in assignment_events()}
    assert details == {
        a.id: (supervisor.id, {"how": "bulk_assign", "old_assignee": None, "new_assignee": worker.id}),
        b.id: (supervisor.id, {"how": "bulk_assign", "old_assignee": None, "new_assignee": worker.id}),
        c.id: (supervisor.id, {"how": "bulk_assign", "old_assignee": other.id, "new_assignee": worker.id}),
    }


def test_bulk_assign_is_all_or_nothing(office, other_office, new_case, make_user, supervisor):
    """Any bad case or assignee refuses the whole bulk assignment: nothing assigned or audited."""
    worker = make_user("caseworker")
    mine = [new_case().id for _ in range(3)]
    foreign = new_case(office_id=other_office.id).id
    with pytest.raises(queues.AssignmentRefused) as refused:
        queues.bulk_assign([*mine, foreign], worker.id, acting_user=supervisor)
    assert refused.value.messages == ["1 selected case is not a case of your office."]
    wrong_people = [make_user("caseworker", office_id=other_office.id), make_user("caseworker", active=False),
                    make_user("registration_officer"), make_user("auditor")]
    for person in wrong_people:
        with pytest.raises(queues.AssignmentRefused) as refused:
            queues.bulk_assign(mine, person.id, acting_user=supervisor)
        assert refused.value.messages == [
            "Cases can only be given to an active caseworker or supervisor of your office."]
    closed = new_case(reference="DONE", status="withdrawn").id
    with pytest.raises(queues.AssignmentRefused) as refused:
        queues.bulk_assign([*mine, closed, "not-a-case\x00"], worker.id, acting_user=supervisor)
    assert refused.value.messages == ["1 selected case is not a case of your office.", "Case DONE is closed."]
    with pytest.raises(queues.AssignmentRefused):
        queues.bulk_assign(mine, worker.id, acting_user=worker)  # a caseworker may not assign
    with pytest.raises(queues.AssignmentRefused):
        queues.bulk_assign([], worker.id, acting_user=supervisor)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Case).where(Case.assigned_to_id.is_not(None))) == 0
    assert assignment_events() == []


def test_bulk_assign_refuses_cases_changed_since_the_page_was_shown(office, new_case, make_user, supervisor):
    """A case whose version moved on since the page was shown makes the bulk assignment a conflict."""
    worker, taker = make_user("caseworker"), make_user("caseworker")
    first = new_case(reference="FIRST", priority=5)
    second = new_case(reference="SECOND")
    shown = {first.id: 1, second.id: 1}
    queues.take_next(acting_user=taker)
    with pytest.raises(queues.AssignmentConflict) as conflict:
        queues.bulk_assign(list(shown), worker.id, acting_user=supervisor, expected_versions=shown)
    assert "FIRST" in conflict.value.messages[0]
    assert fresh(first.id).assigned_to_id == taker.id
    assert fresh(second.id).assigned_to_id is None
    assert len(assignment_events()) == 1


def test_assign_reassign_unassign_one_case(office, other_office, new_case, make_user, supervisor):
    """assign, reassign and unassign check the current state, the office and the version."""
    worker, other = make_user("caseworker"), make_user("caseworker")
    case = new_case(reference="ONE")
    queues.assign(case.id, worker.id, acting_user=supervisor, expected_version=1)
    assert (fresh(case.id).assigned_to_id, fresh(case.id).status) == (worker.id, "assigned")
    with pytest.raises(queues.AssignmentRefused, match="already assigned; reassign"):
        queues.assign(case.id, other.id, acting_user=supervisor)
    with pytest.raises(queues.AssignmentConflict):
        queues.reassign(case.id, other.id, acting_user=supervisor, expected_version=1)
    queues.reassign(case.id, other.id, acting_user=supervisor, expected_version=2)
    assert fresh(case.id).assigned_to_id == other.id
    back = queues.unassign(case.id, acting_user=supervisor)
    assert (back.assigned_to_id, back.assigned_at, back.status, back.version) == (None, None, "registered", 4)
    with pytest.raises(queues.AssignmentRefused, match="not assigned to anyone"):
        queues.unassign(case.id, acting_user=supervisor)
    foreign = new_case(office_id=other_office.id)
    with pytest.raises(queues.CaseNotFound):
        queues.assign(foreign.id, worker.id, acting_user=supervisor)
    assert [e.details["how"] for e in assignment_events()] == ["assign", "reassign", "unassign"]
    assert [(e.details["old_assignee"], e.details["new_assignee"]) for e in assignment_events()] == [
        (None, worker.id), (worker.id, other.id), (other.id, None)]


# -- workload and deadlines ----------------------------------------------------------------------------

def test_workload_matches_a_hand_computed_office(office, other_office, new_case, make_user):
    """Workload per active caseworker/supervisor matches hand-computed counts, zeros included."""
    ana = make_user("caseworker", username="ana")
    ben = make_user("caseworker", username="ben")
    sue = make_user("supervisor", username="sue")
    make_user("caseworker", username="gone", active=False)
    make_user("registration_officer", username="reg")
    make_user("caseworker", username="north", office_id=other_office.id)
    for days in (-30, -1, 0, 7, 8, None):
        new_case(status="assigned", assigned_to=ana, deadline=None if days is None else TODAY + timedelta(days=days))
    new_case(status="decision_issued", assigned_to=ana, deadline=TODAY - timedelta(days=90))
    new_case(status="assigned", assigned_to=sue, deadline=None)
    new_case(deadline=TODAY - timedelta(days=5))  # unassigned: nobody's workload
    rows = {row.username: (row.role, row.open_cases, row.overdue, row.due_soon, row.oldest_deadline)
            for row in queues.workload(office.id, today=TODAY)}
    assert rows == {
        "ana": ("caseworker", 6, 2, 2, TODAY - timedelta(days=30)),
        "ben": ("caseworker", 0, 0, 0, None),
        "sue": ("supervisor", 1, 0, 0, None),
    }
    assert ben.id in {row.user_id for row in queues.workload(office.id, today=TODAY)}


def test_due_within_and_overdue_boundaries(office, other_office, new_case, make_user):
    """Due within N days includes today and day N; overdue is before today only."""
    worker = make_user("caseworker", username="wanda")
    for days in (-2, -1, 0, 14, 15):
        new_case(reference=f"D{days:+03d}", deadline=TODAY + timedelta(days=days))
    new_case(reference="D+01-TAKEN", deadline=TODAY + timedelta(days=1), status="assigned", assigned_to=worker)
    new_case(reference="CLOSED", deadline=TODAY, status="closed")
    new_case(reference="NONE", deadline=None)
    new_case(reference="NORTH", deadline=TODAY, office_id=other_office.id)
    due = queues.due_within(office.id, 14, today=TODAY)
    assert refs(due) == ["D+00", "D+01-TAKEN", "D+14"]
    assert [row.assignee_username for row in due.rows] == [None, "wanda", None]
    assert refs(queues.overdue(office.id, today=TODAY)) == ["D-02", "D-01"]
    assert refs(queues.due_within(office.id, 0, today=TODAY)) == ["D+00"]
    first = queues.due_within(office.id, 30, today=TODAY, limit=2)
    assert refs(first) == ["D+00", "D+01-TAKEN"]
    assert refs(queues.due_within(office.id, 30, today=TODAY, after=first.next_after)) == ["D+14", "D+15"]
    with pytest.raises(ValueError):
        queues.due_within(office.id, 366, today=TODAY)


# -- the indexes the queries are written for -----------------------------------------------------------

def test_closed_statuses_match_the_frozen_copy_in_the_migration():
    """The partial indexes are built on CLOSED_STATUSES: changing the list needs a migration."""
    spec = importlib.util.spec_from_file_location("queue_indexes_migration", MIGRATION)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert migration.CLOSED_STATUSES == queues.CLOSED_STATUSES


# sqlite_stat1 as ANALYZE wrote it for the W4 bench (20,000 cases, 400 caseworkers): averaged
# over every assignee, "assigned_to_id IS NULL" looks like it leaves a handful of rows of
# ix_asylum_case_assignee, though a quarter of the open cases are unassigned.
BENCH_STATISTICS = {
    "ix_asylum_case_assignee": "20000 50 6 1",
    "ix_asylum_case_deadline": "20000 5000 5",
    "ix_asylum_case_office_status": "20000 5000 455 2",
    "ix_asylum_case_principal_nationality": "20000 20000",
    "ix_asylum_case_open_queue": "1962 491 123 99 2 1 1",
    "ix_asylum_case_open_queue_track": "1962 491 62 33 33 2 1 1",
    "ix_asylum_case_open_count": "1962 491 62 62 62",
    "ix_asylum_case_open_assignee": "4606 12 12 10 1 1 1",
    "ix_asylum_case_open_deadline": "6391 1598 4 2 1",
}


def plan(statement) -> str:
    """The query plan of a SQLAlchemy statement, as text, on this database, with planner
    statistics of a large caseload (the test's own tables are tiny)."""
    compiled = statement.compile(dialect=db.engine.dialect,
                                 compile_kwargs={"literal_binds": True, "render_postcompile": True})
    if db.engine.dialect.name == "postgresql":
        # Make scans and sorts look dear, so the plan shows what the indexes can do.
        db.session.execute(text("SET LOCAL enable_seqscan = off"))
        db.session.execute(text("SET LOCAL enable_sort = off"))
        lines = db.session.execute(text(f"EXPLAIN {compiled}")).scalars().all()
    else:
        db.session.execute(text("ANALYZE"))
        # Other indexes (other packages add their own): office-like first column, unless unique.
        db.session.execute(text("UPDATE sqlite_stat1 SET stat = '20000 5000' WHERE tbl = 'asylum_case'"))
        db.session.execute(text("UPDATE sqlite_stat1 SET stat = '20000 1' WHERE tbl = 'asylum_case' "
                                "AND (idx LIKE 'sqlite_autoindex%' OR idx LIKE 'uq_%')"))
        for index, stat in BENCH_STATISTICS.items():
            db.session.execute(text("UPDATE sqlite_stat1 SET stat = :stat WHERE idx = :idx"),
                               {"stat": stat, "idx": index})
        db.session.execute(text("ANALYZE sqlite_schema"))  # reload the statistics (SQLite docs)
        lines = [row[-1] for row in db.session.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))]
    db.session.rollback()
    return "\n".join(lines)


@pytest.mark.parametrize("statement, index", [
    (lambda o, u: queues._queue_statement(True, None).params(office_id=o, track="regular", limit=51),
     "ix_asylum_case_open_queue_track"),
    (lambda o, u: queues._queue_statement(False, True).params(
        office_id=o, limit=51, c_priority=1, c_deadline=TODAY, c_registered=TODAY, c_id="a" * 32),
     "ix_asylum_case_open_queue"),
    (lambda o, u: queues._take_statement(True).params(office_id=o, track="regular", limit=1),
     "ix_asylum_case_open_queue_track"),
    (lambda o, u: queues._assigned_statement(None).params(user_id=u, office_id=o, limit=51),
     "ix_asylum_case_open_assignee"),
    (lambda o, u: queues._deadline_statement("overdue", False).params(office_id=o, start=TODAY, limit=51),
     "ix_asylum_case_open_deadline"),
    (lambda o, u: queues._deadline_statement("due", True).params(
        office_id=o, start=TODAY, end=TODAY + timedelta(days=14), limit=51, c_deadline=TODAY,
        c_registered=TODAY, c_id="a" * 32), "ix_asylum_case_open_deadline"),
])
def test_queue_queries_read_their_partial_index_without_sorting(office, new_case, make_user, statement, index):
    """Each list statement reads its partial index in order (no sort), even under skewed statistics."""
    worker = make_user("caseworker")
    for n in range(30):
        new_case(priority=n % 4, deadline=TODAY + timedelta(days=n % 7 - 3), commit=False,
                 status="assigned" if n % 2 else "registered", assigned_to=worker if n % 2 else None)
    db.session.commit()
    text_plan = plan(statement(office.id, worker.id))
    # SQLite is given a large caseload's statistics, so the exact index is checked; PostgreSQL
    # plans from the test's 30 rows, where any of the open-case indexes is as good (the bench
    # shows its choice at 100k and 1M cases).
    assert (index if db.engine.dialect.name == "sqlite" else "ix_asylum_case_open_") in text_plan
    assert "Sort" not in text_plan and "TEMP B-TREE" not in text_plan
