"""Queues, assignment and deadlines: who works on which case next.

A queue is the open, unassigned cases of an office (optionally of one track), highest priority
first, then nearest statutory deadline (cases without one last), then oldest registration, then
id, so the order is total and keyset paging is stable. Lists read only the plain S1 columns a
page shows (never full ORM rows with their encrypted sections) in one statement each, through
the partial indexes declared below; counts and workloads are SQL aggregates.

Every function owns its transaction. Reads run in the caller's transaction and change nothing;
writes (``take_next``, ``assign``, ``reassign``, ``unassign``, ``bulk_assign``) lock what they
change, record CASE_ASSIGNED for each case in the same transaction and commit once, or roll back
and change nothing. Actors come in as ``acting_user=``; nothing here reads the request.

"Open" means a status outside CLOSED_STATUSES: the one place that list lives (the lifecycle
issue uses the same names). The partial indexes below freeze it into their WHERE clause, so a
change to it needs a migration that rebuilds them (tests/integration/test_queues.py checks).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import (Date, Integer, String, and_, bindparam, case, func, literal_column, or_, select, tuple_,
                        update)
from sqlalchemy.engine import Row
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from app.audit.codes import EventCode
from app.audit.services import record
from app.auth.models import User
from app.auth.permissions import Permission, Role
from app.db_types import utcnow
from app.extensions import db
from app.intake.models import Case

# Statuses in which a case needs no more work at first instance. Kept in one place; the partial
# indexes (migrations 0005 and 0008) are built on exactly this list.
CLOSED_STATUSES: tuple[str, ...] = ("decision_issued", "notified", "closed", "withdrawn",
                                    "implicitly_withdrawn", "transferred")
UNASSIGNED_STATUS = "registered"
ASSIGNED_STATUS = "assigned"
ASSIGNEE_ROLES: tuple[str, ...] = (Role.CASEWORKER.value, Role.SUPERVISOR.value)
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_BULK = 200          # cases in one bulk assignment
DUE_SOON_DAYS = 7       # the workload's "due within 7 days"
MAX_DAYS_AHEAD = 365
TAKE_ATTEMPTS = 5       # take_next retries when another worker won the race for its candidate
COUNTS_MAX_AGE = 10.0   # seconds a process keeps an office's per-track counts (see track_counts)


# -- the indexes the queues need ------------------------------------------------------------------
#
# The order "priority DESC, deadline ASC NULLS LAST" cannot come out of an all-ascending index,
# and NULLS LAST cannot be declared in a SQLite index at all; so the indexes carry ``priority
# DESC`` and ``(statutory_deadline IS NULL)`` as key parts and the queries order by exactly those
# expressions. They are partial: only open cases (and for the queues, only unassigned ones), so
# they stay small however many decided cases pile up, and scans never wade through closed cases.
# Declared here, beside the queries they serve, so the models' metadata (and the migration test)
# knows them; created by migrations 0005 and 0008.

def _open_sql():
    """The DDL form of "open" (literal values: a partial index predicate must be constant)."""
    return Case.__table__.c.status.not_in(CLOSED_STATUSES)


_c = Case.__table__.c
_DEADLINE_KEY = (_c.statutory_deadline.is_(None), _c.statutory_deadline, _c.registered_on, _c.id)
_UNASSIGNED_OPEN = and_(_c.assigned_to_id.is_(None), _open_sql())
_ASSIGNED_OPEN = and_(_c.assigned_to_id.is_not(None), _open_sql())
_DEADLINE_OPEN = and_(_c.statutory_deadline.is_not(None), _open_sql())
# PostgreSQL: the lists' other columns ride along (INCLUDE), so a page is an index-only scan
# (EXPLAIN at 1M cases: 5 buffers instead of 55, no heap fetch). SQLite has no INCLUDE; its
# 50 row lookups cost about 0.1 ms of CPU there.
_LISTED = ("reference", "status", "version")
QUEUE_INDEXES = (
    # queue() of all tracks: office, then the queue order.
    db.Index("ix_asylum_case_open_queue", _c.office_id, _c.priority.desc(), *_DEADLINE_KEY,
             sqlite_where=_UNASSIGNED_OPEN, postgresql_where=_UNASSIGNED_OPEN,
             postgresql_include=(*_LISTED, "track")),
    # queue() of one track and take_next: office and track, then the queue order.
    db.Index("ix_asylum_case_open_queue_track", _c.office_id, _c.track, _c.priority.desc(), *_DEADLINE_KEY,
             sqlite_where=_UNASSIGNED_OPEN, postgresql_where=_UNASSIGNED_OPEN, postgresql_include=_LISTED),
    # track_counts(): narrow, so counting reads a third of the pages the queue index would.
    # status and assigned_to_id are never searched on: with them SQLite counts from the index
    # alone (it re-checks the WHERE terms the predicate already implies); PostgreSQL needs them not.
    db.Index("ix_asylum_case_open_count", _c.office_id, _c.track, _c.status, _c.assigned_to_id,
             sqlite_where=_UNASSIGNED_OPEN, postgresql_where=_UNASSIGNED_OPEN),
    # cases_of()/my_cases(): the assignee and the office are both equalities, then deadline order,
    # so a later page seeks past its cursor instead of checking the office row by row.
    db.Index("ix_asylum_case_open_assignee", _c.assigned_to_id, _c.office_id, *_DEADLINE_KEY,
             sqlite_where=_ASSIGNED_OPEN, postgresql_where=_ASSIGNED_OPEN,
             postgresql_include=(*_LISTED, "track", "priority")),
    # due_within() and overdue(): office, then deadline order.
    db.Index("ix_asylum_case_open_deadline", _c.office_id, _c.statutory_deadline, _c.registered_on, _c.id,
             sqlite_where=_DEADLINE_OPEN, postgresql_where=_DEADLINE_OPEN),
)


# -- refusals ---------------------------------------------------------------------------------------

class QueueError(Exception):
    """A refusal the user can act on; ``messages`` are translated, ready to show."""

    def __init__(self, *messages: str):
        super().__init__("; ".join(messages))
        self.messages = list(messages)


class CaseNotFound(QueueError):
    """No such case, or not one of the user's office (indistinguishable on purpose)."""


class AssignmentRefused(QueueError):
    """The assignment breaks a rule (office, assignee, closed case...); nothing was changed."""


class AssignmentConflict(QueueError):
    """A case changed since the user saw it (its version moved on); nothing was changed."""


class InvalidCursor(ValueError):
    """A paging cursor that this code did not write (tampered, truncated, other list)."""


# -- paging -----------------------------------------------------------------------------------------

_CASE_ID = re.compile(r"[0-9a-f]{32}")
_INT_LIMIT = 2**31


@dataclass(frozen=True)
class Cursor:
    """Position after the last row of a page: the sort key of that row. ``priority`` is set for
    queue-ordered lists and None for deadline-ordered ones."""

    priority: int | None
    deadline: date | None
    registered_on: date
    case_id: str

    def encode(self) -> str:
        priority = "" if self.priority is None else str(self.priority)
        deadline = self.deadline.isoformat() if self.deadline else ""
        return f"{priority}~{deadline}~{self.registered_on.isoformat()}~{self.case_id}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Parse ``encode``'s output; InvalidCursor for anything else."""
        try:
            priority, deadline, registered_on, case_id = text.split("~")
            value = cls(priority=int(priority) if priority else None,
                        deadline=date.fromisoformat(deadline) if deadline else None,
                        registered_on=date.fromisoformat(registered_on), case_id=case_id)
        except (AttributeError, ValueError) as exc:
            raise InvalidCursor("malformed paging cursor") from exc
        if not _CASE_ID.fullmatch(case_id) or (value.priority is not None and abs(value.priority) >= _INT_LIMIT):
            raise InvalidCursor("malformed paging cursor")
        return value


@dataclass(frozen=True)
class CasePage:
    """One page of a list: ``rows`` (SQLAlchemy rows with the listed columns) and ``next_after``,
    the cursor of the following page or None on the last one."""

    rows: list[Row]
    next_after: str | None


def _cursor_of(after: str | Cursor | None, *, queue_order: bool) -> Cursor | None:
    if after is None or after == "":
        return None
    cursor = after if isinstance(after, Cursor) else Cursor.decode(after)
    if (cursor.priority is not None) != queue_order:
        raise InvalidCursor("cursor of another list")
    return cursor


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be within 1..{MAX_PAGE_SIZE}")
    return limit


def _page(stmt, params: dict, limit: int, *, queue_order: bool) -> CasePage:
    # Core execution on the session's connection (same transaction): these statements select
    # columns, not entities, and the ORM's row handling would double the cost of the call.
    rows = db.session.connection().execute(stmt, {**params, "limit": limit + 1}).all()
    if len(rows) <= limit:
        return CasePage(rows, None)
    last = rows[limit - 1]
    cursor = Cursor(priority=last.priority if queue_order else None, deadline=last.statutory_deadline,
                    registered_on=last.registered_on, case_id=last.id)
    return CasePage(rows[:limit], cursor.encode())


# -- predicates, orderings and the list statements ------------------------------------------------
#
# The list statements are built once per shape (with or without a track, a cursor with or
# without a deadline...) with bound parameters, and reused: on the hot path only the values
# change.


class _likely(FunctionElement):
    """SQLite's ``likely(X)``: X, with a hint to the planner that it is usually true; plain X
    elsewhere. Why the queues need it: SQLite's statistics average over every assignee, so
    "assigned_to_id IS NULL" looks like it leaves a handful of rows of an index that starts with
    the assignee (ix_asylum_case_assignee), and SQLite would read that index and sort the whole
    (large) unassigned part of an office.
    Marked likely, the term no longer tempts it, and it still proves the partial indexes apply."""

    name = "likely"
    inherit_cache = True  # no Boolean type: SQLite would compare the call with 1


@compiles(_likely)
def _plain(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)


@compiles(_likely, "sqlite")
def _sqlite_likely(element, compiler, **kw):
    return f"likely({compiler.process(element.clauses, **kw)})"


# The closed statuses as SQL string literals (code constants with no quote in them), part of the
# statement text itself: compiled once with the statement and cached with it. A "literal_execute"
# parameter would give the same SQL but be re-rendered at every execution.
if not all(re.fullmatch(r"[a-z_]+", status) for status in CLOSED_STATUSES):
    raise ValueError("a closed status must be a plain code: it is written into SQL as a literal")
_CLOSED_LITERALS = tuple(literal_column(f"'{status}'") for status in CLOSED_STATUSES)


def _is_open():
    # Literal values, never bound parameters: only then can SQLite (always) and PostgreSQL (with
    # generic plans for prepared statements) prove the partial indexes apply.
    return Case.status.not_in(_CLOSED_LITERALS)


def _queue_filter(office_id, track) -> list:
    """The queue's WHERE clause; ``office_id`` and ``track`` are values or bound parameters."""
    conditions = [Case.office_id == office_id, _likely(Case.assigned_to_id.is_(None)), _is_open()]
    if track is not None:
        conditions.append(Case.track == track)
    return conditions


def _deadline_order() -> tuple:
    return (Case.statutory_deadline.is_(None), Case.statutory_deadline, Case.registered_on, Case.id)


def _queue_order() -> tuple:
    return (Case.priority.desc(), *_deadline_order())


def _after_in_deadline_order(dated: bool):
    """Rows after the cursor (bound parameters c_deadline, c_registered, c_id) in deadline
    order; ``dated``: whether the cursor's row has a deadline (undated rows come last)."""
    later_registered = (tuple_(Case.registered_on, Case.id)
                        > tuple_(bindparam("c_registered", type_=Date), bindparam("c_id", type_=String)))
    if not dated:  # already among the cases without a deadline
        return and_(Case.statutory_deadline.is_(None), later_registered)
    deadline = bindparam("c_deadline", type_=Date)
    return or_(Case.statutory_deadline.is_(None), Case.statutory_deadline > deadline,
               and_(Case.statutory_deadline == deadline, later_registered))


def _after_in_queue_order(dated: bool):
    priority = bindparam("c_priority", type_=Integer)
    # The redundant "priority <= p" lets the index scan start at the cursor's priority.
    return and_(Case.priority <= priority,
                or_(Case.priority < priority, and_(Case.priority == priority, _after_in_deadline_order(dated))))


def _cursor_params(cursor: Cursor | None) -> tuple[bool | None, dict]:
    """(shape, parameters) of a cursor: shape None without one, else whether it has a deadline."""
    if cursor is None:
        return None, {}
    return cursor.deadline is not None, {"c_priority": cursor.priority, "c_deadline": cursor.deadline,
                                         "c_registered": cursor.registered_on, "c_id": cursor.case_id}


LIST_COLUMNS = (Case.id, Case.reference, Case.track, Case.priority, Case.statutory_deadline,
                Case.registered_on, Case.status, Case.version)
DEADLINE_COLUMNS = (*LIST_COLUMNS, Case.assigned_to_id, User.username.label("assignee_username"),
                    User.full_name.label("assignee_name"))
_LIMIT = bindparam("limit", type_=Integer)


@cache
def _queue_statement(by_track: bool, cursor_shape: bool | None, columns=LIST_COLUMNS):
    stmt = select(*columns).where(*_queue_filter(bindparam("office_id", type_=Integer),
                                                 bindparam("track", type_=String) if by_track else None))
    if cursor_shape is not None:
        stmt = stmt.where(_after_in_queue_order(cursor_shape))
    return stmt.order_by(*_queue_order()).limit(_LIMIT)


@cache
def _assigned_statement(cursor_shape: bool | None):
    stmt = select(*LIST_COLUMNS).where(Case.assigned_to_id == bindparam("user_id", type_=Integer),
                                       Case.office_id == bindparam("office_id", type_=Integer), _is_open())
    if cursor_shape is not None:
        stmt = stmt.where(_after_in_deadline_order(cursor_shape))
    return stmt.order_by(*_deadline_order()).limit(_LIMIT)


@cache
def _deadline_statement(window: str, with_cursor: bool):
    deadline = Case.statutory_deadline
    start, end = bindparam("start", type_=Date), bindparam("end", type_=Date)
    stmt = (select(*DEADLINE_COLUMNS).outerjoin(User, User.id == Case.assigned_to_id)
            .where(Case.office_id == bindparam("office_id", type_=Integer), deadline.is_not(None), _is_open(),
                   *((deadline >= start, deadline <= end) if window == "due" else (deadline < start,))))
    if with_cursor:
        stmt = stmt.where(tuple_(deadline, Case.registered_on, Case.id) > tuple_(
            bindparam("c_deadline", type_=Date), bindparam("c_registered", type_=Date),
            bindparam("c_id", type_=String)))
    return stmt.order_by(deadline, Case.registered_on, Case.id).limit(_LIMIT)


def _today(today: date | None) -> date:
    # Deadlines are calendar dates; the service day is the UTC date unless the caller says.
    return today or utcnow().date()


# -- reading the queues -------------------------------------------------------------------------------

def queue(office_id: int, track: str | None = None, *, limit: int = PAGE_SIZE,
          after: str | Cursor | None = None) -> CasePage:
    """One page of the office's queue: open, unassigned cases (of ``track`` when given; every
    track, untriaged cases included, when None) ordered by priority (highest first), statutory
    deadline (nearest first, none last), registration date, id. ``after`` is the previous page's
    ``next_after``. One SELECT of the listed columns through ix_asylum_case_open_queue(_track).
    Raises InvalidCursor for a cursor this function did not write, ValueError for a bad limit."""
    shape, params = _cursor_params(_cursor_of(after, queue_order=True))
    stmt = _queue_statement(track is not None, shape)
    return _page(stmt, {**params, "office_id": office_id, "track": track}, _limit(limit), queue_order=True)


def track_counts(office_id: int, *, max_age: float | None = None) -> list[Row]:
    """Per track (None: not triaged yet), how many open unassigned cases wait in the office's
    queue: rows of ``(track, waiting)``, by track code. One GROUP BY, read from the narrow
    ix_asylum_case_open_count alone (index-only).

    That read grows with the backlog (about 30,000 waiting cases an office at 1M cases: some
    milliseconds), so each process keeps an office's counts for ``max_age`` seconds
    (QUEUE_COUNTS_MAX_AGE, default 10; 0 always counts afresh); this process's own takes and
    assignments drop them at once. The list of cases itself is always read fresh."""
    if max_age is None:
        max_age = current_app.config.get("QUEUE_COUNTS_MAX_AGE", COUNTS_MAX_AGE)
    kept = _counts_cache()
    now = time.monotonic()
    hit = kept.get(office_id)
    if hit is not None and now - hit[0] < max_age:
        return hit[1]
    stmt = (select(Case.track, func.count().label("waiting"))
            .where(*_queue_filter(office_id, None))
            .group_by(Case.track).order_by(Case.track.is_(None), Case.track))
    rows = db.session.connection().execute(stmt).all()
    kept[office_id] = (now, rows)
    return rows


def _counts_cache() -> dict:
    return current_app.extensions.setdefault("nansen.queue_counts", {})


def _counts_changed(office_id: int) -> None:
    _counts_cache().pop(office_id, None)


def cases_of(user_id: int, *, office_id: int, limit: int = PAGE_SIZE,
             after: str | Cursor | None = None) -> CasePage:
    """One page of the open cases of the office assigned to ``user_id``, nearest deadline first
    (none last), then registration date, id. One SELECT through ix_asylum_case_open_assignee."""
    shape, params = _cursor_params(_cursor_of(after, queue_order=False))
    return _page(_assigned_statement(shape), {**params, "user_id": user_id, "office_id": office_id},
                 _limit(limit), queue_order=False)


def my_cases(*, acting_user, limit: int = PAGE_SIZE, after: str | Cursor | None = None) -> CasePage:
    """One page of ``acting_user``'s own open cases (of their office), nearest deadline first.
    See ``cases_of``."""
    return cases_of(acting_user.id, office_id=acting_user.office_id, limit=limit, after=after)


# -- deadlines ----------------------------------------------------------------------------------------

def _deadline_list(office_id: int, window: str, dates: dict, limit: int, after) -> CasePage:
    cursor = _cursor_of(after, queue_order=False)
    if cursor is not None and cursor.deadline is None:
        raise InvalidCursor("cursor of another list")
    _shape, params = _cursor_params(cursor)
    return _page(_deadline_statement(window, cursor is not None), {**params, **dates, "office_id": office_id},
                 _limit(limit), queue_order=False)


def due_within(office_id: int, days: int, *, today: date | None = None, limit: int = PAGE_SIZE,
               after: str | Cursor | None = None) -> CasePage:
    """Open cases of the office whose statutory deadline falls from ``today`` to ``today + days``
    inclusive (a deadline of today is due, not overdue), nearest first, with their assignee
    (None: still in the queue). ``days`` within 0..365, else ValueError. One SELECT through
    ix_asylum_case_open_deadline."""
    if not 0 <= days <= MAX_DAYS_AHEAD:
        raise ValueError(f"days must be within 0..{MAX_DAYS_AHEAD}")
    start = _today(today)
    return _deadline_list(office_id, "due", {"start": start, "end": start + timedelta(days=days)}, limit, after)


def overdue(office_id: int, *, today: date | None = None, limit: int = PAGE_SIZE,
            after: str | Cursor | None = None) -> CasePage:
    """Open cases of the office whose statutory deadline is before ``today`` (longest overdue
    first), with their assignee. One SELECT through ix_asylum_case_open_deadline."""
    return _deadline_list(office_id, "overdue", {"start": _today(today)}, limit, after)


# -- workload -----------------------------------------------------------------------------------------

def workload(office_id: int, *, today: date | None = None) -> list[Row]:
    """Per active caseworker and supervisor of the office, their open caseload: rows of
    ``(user_id, username, full_name, role, open_cases, overdue, due_soon, oldest_deadline)``,
    where ``due_soon`` counts deadlines from today to today + DUE_SOON_DAYS inclusive and
    ``oldest_deadline`` is the earliest deadline among their open cases (None if none). Staff
    with nothing assigned are listed with zeros (outer join). A user's whole open caseload
    counts, whatever office the case belongs to. One SQL aggregate (GROUP BY)."""
    start = _today(today)
    soon = start + timedelta(days=DUE_SOON_DAYS)
    deadline = Case.statutory_deadline
    stmt = (select(User.id.label("user_id"), User.username, User.full_name, User.role,
                   func.count(Case.id).label("open_cases"),
                   func.count(case((deadline < start, 1))).label("overdue"),
                   func.count(case((and_(deadline >= start, deadline <= soon), 1))).label("due_soon"),
                   func.min(deadline).label("oldest_deadline"))
            .select_from(User)
            .outerjoin(Case, and_(Case.assigned_to_id == User.id, _is_open()))
            .where(User.office_id == office_id, User.active.is_(True), User.role.in_(ASSIGNEE_ROLES))
            .group_by(User.id, User.username, User.full_name, User.role)
            .order_by(User.full_name, User.username))
    return db.session.execute(stmt).all()


def assignees(office_id: int) -> list[Row]:
    """Who may be given cases of the office: its active caseworkers and supervisors, as rows of
    ``(id, username, full_name, role)`` by name."""
    stmt = (select(User.id, User.username, User.full_name, User.role)
            .where(User.office_id == office_id, User.active.is_(True), User.role.in_(ASSIGNEE_ROLES))
            .order_by(User.full_name, User.username))
    return db.session.execute(stmt).all()


# -- taking and assigning (writes) -----------------------------------------------------------------

def _assignment_values(user_id: int | None, now):
    if user_id is None:
        status = case((Case.status == ASSIGNED_STATUS, UNASSIGNED_STATUS), else_=Case.status)
    else:
        status = case((Case.status == UNASSIGNED_STATUS, ASSIGNED_STATUS), else_=Case.status)
    # The version moves on like any ORM edit of the case, so an editor holding the old version
    # gets a conflict instead of overwriting the assignment.
    return {"assigned_to_id": user_id, "assigned_at": now if user_id is not None else None,
            "status": status, "version": Case.version + 1, "updated_at": now}


@cache
def _take_statement(by_track: bool):
    return _queue_statement(by_track, None, (Case.id,)).with_for_update(skip_locked=True)


def take_next(*, acting_user, track: str | None = None) -> Case | None:
    """``acting_user`` (a caseworker or supervisor) takes the first case of their office's queue
    (of ``track`` when given) and gets it back, assigned to them; None when the queue is empty.

    Two people taking at once never get the same case: on PostgreSQL the candidate is selected
    ``FOR UPDATE SKIP LOCKED`` (a case another transaction is taking is skipped, not waited
    for); SQLite transactions are BEGIN IMMEDIATE (app/database.py), so takers run one after
    the other. As a belt, the UPDATE only applies while the case is still unassigned; if it
    finds the case taken, the next candidate is tried. Sets the assignee and time, moves a
    "registered" case to "assigned", records CASE_ASSIGNED (how: take_next) and commits.
    AssignmentRefused when the user may not work on queues."""
    _require(acting_user, Permission.QUEUE_WORK)
    try:
        for _attempt in range(TAKE_ATTEMPTS):
            candidate = db.session.execute(_take_statement(track is not None), {
                "office_id": acting_user.office_id, "track": track, "limit": 1}).first()
            if candidate is None:
                db.session.rollback()
                return None
            taken = db.session.execute(
                update(Case).where(Case.id == candidate.id, Case.assigned_to_id.is_(None))
                .values(**_assignment_values(acting_user.id, utcnow()))
                .execution_options(synchronize_session=False))
            if taken.rowcount == 1:
                break
            db.session.rollback()
        else:
            return None
        record(EventCode.CASE_ASSIGNED, actor=acting_user, subject=("case", candidate.id),
               details={"how": "take_next", "old_assignee": None, "new_assignee": acting_user.id})
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    _counts_changed(acting_user.office_id)
    return db.session.get(Case, candidate.id)


def _require(acting_user, permission: Permission) -> None:
    if acting_user is None or not acting_user.can(permission):
        raise AssignmentRefused(_("You may not do this."))


def _assign_many(case_ids: Sequence[str], user_id: int | None, *, acting_user, how: str,
                 require: str, expected_versions: dict[str, int] | None, single: bool = False) -> int:
    """The one implementation of supervisor assignment: validate everything, refuse with every
    reason found, or change every case; one UPDATE, one audit event per changed case, commit.
    ``require``: "unassigned", "assigned" or "any" (the state each case must be in now);
    ``single``: a case outside the office is CaseNotFound rather than a refusal."""
    _require(acting_user, Permission.QUEUE_ASSIGN)
    ids = list(dict.fromkeys(case_ids))  # de-duplicated, order kept
    wellformed = [i for i in ids if isinstance(i, str) and _CASE_ID.fullmatch(i)]  # others: not found
    if not ids:
        raise AssignmentRefused(_("Select at least one case."))
    if len(ids) > MAX_BULK:
        raise AssignmentRefused(_("Assign at most %(n)d cases at a time.", n=MAX_BULK))
    office_id = acting_user.office_id
    try:
        # Locked in id order (two bulk assignments cannot deadlock); SQLite: BEGIN IMMEDIATE.
        found = {row.id: row for row in db.session.execute(
            select(Case.id, Case.reference, Case.status, Case.assigned_to_id, Case.version)
            .where(Case.id.in_(wellformed), Case.office_id == office_id).order_by(Case.id).with_for_update())}
        if single and len(found) < len(ids):
            raise CaseNotFound(_("No such case in your office."))
        problems = [] if user_id is None else _assignee_problems(user_id, office_id)
        conflicts = _case_problems(ids, found, user_id, require, expected_versions, problems)
        if problems:
            raise AssignmentRefused(*problems)
        if conflicts:
            raise AssignmentConflict(ngettext(
                "Case %(refs)s changed since you opened the page. Nothing was changed; look again.",
                "Cases %(refs)s changed since you opened the page. Nothing was changed; look again.",
                len(conflicts), refs=", ".join(conflicts)))
        changing = [found[i] for i in ids if found[i].assigned_to_id != user_id]
        if changing:
            result = db.session.execute(
                update(Case).where(Case.id.in_([row.id for row in changing]),
                                   tuple_(Case.id, Case.version).in_([(row.id, row.version) for row in changing]))
                .values(**_assignment_values(user_id, utcnow()))
                .execution_options(synchronize_session=False))
            if result.rowcount != len(changing):  # cannot happen under the locks; never half-apply
                raise AssignmentConflict(_("Some cases changed meanwhile. Nothing was changed; look again."))
            for row in changing:
                record(EventCode.CASE_ASSIGNED, actor=acting_user, subject=("case", row.id),
                       details={"how": how, "old_assignee": row.assigned_to_id, "new_assignee": user_id})
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    _counts_changed(office_id)
    return len(changing)


def _assignee_problems(user_id: int, office_id: int) -> list[str]:
    user = db.session.get(User, user_id)
    if (user is None or not user.active or user.role not in ASSIGNEE_ROLES
            or user.office_id != office_id):
        return [_("Cases can only be given to an active caseworker or supervisor of your office.")]
    return []


def _case_problems(ids, found, user_id, require, expected_versions, problems: list[str]) -> list[str]:
    """Adds the rule breaks of the selected cases to ``problems``; returns the references of
    cases whose version moved on since the page showed them."""
    conflicts = []
    outside = sum(1 for i in ids if i not in found)
    if outside:
        problems.append(ngettext("%(num)d selected case is not a case of your office.",
                                 "%(num)d selected cases are not cases of your office.", outside))
    for case_id in ids:
        row = found.get(case_id)
        if row is None:
            continue
        if row.status in CLOSED_STATUSES:
            problems.append(_("Case %(ref)s is closed.", ref=row.reference))
        elif require == "unassigned" and row.assigned_to_id is not None:
            problems.append(_("Case %(ref)s is already assigned; reassign it instead.", ref=row.reference))
        elif require == "assigned" and row.assigned_to_id is None:
            problems.append(_("Case %(ref)s is not assigned to anyone.", ref=row.reference))
        elif require == "assigned" and row.assigned_to_id == user_id:
            problems.append(_("Case %(ref)s is already assigned to that person.", ref=row.reference))
        if expected_versions and case_id in expected_versions and expected_versions[case_id] != row.version:
            conflicts.append(row.reference)
    return conflicts


def _single(case_id: str, user_id: int | None, *, acting_user, how: str, require: str,
            expected_version: int | None) -> Case:
    _assign_many([case_id], user_id, acting_user=acting_user, how=how, require=require, single=True,
                 expected_versions={case_id: expected_version} if expected_version is not None else None)
    return db.session.get(Case, case_id)


def assign(case_id: str, user_id: int, *, acting_user, expected_version: int | None = None) -> Case:
    """A supervisor gives an unassigned open case of their office to ``user_id`` (an active
    caseworker or supervisor of the same office). ``expected_version``: the version the
    supervisor saw; if the case changed since, AssignmentConflict. CaseNotFound for a case
    outside the office, AssignmentRefused for any other rule broken; nothing changes then.
    Audited (CASE_ASSIGNED, how: assign, old and new assignee); commits; returns the case."""
    return _single(case_id, user_id, acting_user=acting_user, how="assign", require="unassigned",
                   expected_version=expected_version)


def reassign(case_id: str, user_id: int, *, acting_user, expected_version: int | None = None) -> Case:
    """Like ``assign``, for an open case already assigned to someone else: it moves to
    ``user_id``. Audited with how: reassign."""
    return _single(case_id, user_id, acting_user=acting_user, how="reassign", require="assigned",
                   expected_version=expected_version)


def unassign(case_id: str, *, acting_user, expected_version: int | None = None) -> Case:
    """A supervisor puts an assigned open case of their office back into the queue ("assigned"
    becomes "registered" again). Refusals and audit (how: unassign) as for ``assign``."""
    return _single(case_id, None, acting_user=acting_user, how="unassign", require="assigned",
                   expected_version=expected_version)


def bulk_assign(case_ids: Iterable[str], user_id: int, *, acting_user,
                expected_versions: dict[str, int] | None = None) -> int:
    """A supervisor gives every case in ``case_ids`` to ``user_id``, all in one transaction:
    each must be an open case of the supervisor's office and the assignee an active caseworker
    or supervisor of that office, otherwise AssignmentRefused listing every problem and nothing
    changes. Cases already assigned to someone else are reassigned (the audit keeps the old
    assignee); those already with ``user_id`` are left alone. ``expected_versions`` (case id ->
    version the page showed): any mismatch is an AssignmentConflict, nothing changes. Returns
    how many cases changed hands; one CASE_ASSIGNED event (how: bulk_assign) for each."""
    return _assign_many(list(case_ids), user_id, acting_user=acting_user, how="bulk_assign",
                        require="any", expected_versions=expected_versions)


__all__ = ["CLOSED_STATUSES", "ASSIGNED_STATUS", "UNASSIGNED_STATUS", "PAGE_SIZE", "Cursor", "CasePage",
           "QueueError", "CaseNotFound", "AssignmentRefused", "AssignmentConflict", "InvalidCursor",
           "queue", "track_counts", "take_next", "my_cases", "cases_of", "assign", "reassign", "unassign",
           "bulk_assign", "workload", "assignees", "due_within", "overdue"]
