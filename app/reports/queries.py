"""Read-only report queries for supervisors: every figure is an SQL aggregate.

Each function takes ``ReportFilters`` and returns plain frozen dataclasses: counts, shares, days,
track and status codes, ISO weeks, citizenship codes, and for the staff tables the display name of
a caseworker (staff, not claimants). No ORM entity leaves this module and no identifier of a case
or a person does either: no reference, no name, no row id. Nothing here writes or commits.

What counts (see docs/reports.md for the long form):

* **Pending** (backlog, ageing, deadlines, open workload): cases still at first instance, i.e. a
  status outside ``app.triage.queues.CLOSED_STATUSES`` and not in appeal. A snapshot on
  ``filters.as_of``; the date range does not apply to it.
* **First-instance decision**: an issued decision that is not a correction. A correction (its own
  issued row pointing at the decision it corrects, maybe through several corrections) replaces
  the outcome but not the date: the latest issued correction's outcome counts, on the original's
  issue date. The issue date is the UTC date of ``issued_at``.
* **Time to decision** and **within the statutory limit**: per decision of the first examination
  round (a remitted case's later decisions would measure the appeal, not the first instance), from
  the case's registration to the issue date; within the limit when the issue date is on or
  before the case's statutory deadline (decisions of cases without a deadline are counted apart).
* **Track** of a decision: the track it was taken in (``procedure_track``), else the case's.
* **Recognition rate**: refugee status + subsidiary protection over all first-instance decisions
  on the merits or admissibility (Eurostat's TOTAL: refugee, subsidiary, humanitarian, rejected);
  humanitarian status is shown apart; implicit withdrawals, discontinuations and transfer
  decisions are not asylum decisions for Eurostat and are counted as "other", outside the rate.
* **Citizenship** (person-level tables and the Eurostat returns): the person's first listed
  nationality, ``STLS`` when stateless, ``UNK`` when none is known. The nationality filter applies
  to it there, and to the principal applicant's nationality in case-level tables.

Percentiles are continuous (linear interpolation, as PostgreSQL's ``percentile_cont``): on
PostgreSQL with ``percentile_cont``, on SQLite with an equivalent ROW_NUMBER/COUNT window
formulation; both give the same numbers (tests/integration/test_report_queries.py runs both).

Each statement is built once per *shape* (dialect, and which of office, track and nationality
filter it) and reused with the filter values as bound parameters (``_memoised``, ``_params``):
building and hashing a Core statement cost more than running the small aggregates at the top of
a report (W6 measured 2.2x its raw SQL with a fresh statement per call). Statements are executed
on the session's connection (same transaction), skipping the ORM's execution layer they do not
need: they select columns, never entities.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import wraps
from time import monotonic

from flask import current_app
from sqlalchemy import (Date, Float, Integer, String, and_, bindparam, case, cast, exists, extract, func, literal,
                        or_, select, union_all)
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql.elements import ColumnElement

from app.auth.models import User
from app.decisions import lifecycle
from app.decisions.models import Decision
from app.extensions import db
from app.intake.models import Case, Person
from app.triage.queues import ASSIGNEE_ROLES, CLOSED_STATUSES

# -- vocabulary ------------------------------------------------------------------------------------

#: Not pending at first instance: the queues' closed statuses, and the appeal stage.
NOT_PENDING_STATUSES: tuple[str, ...] = tuple(sorted(
    set(CLOSED_STATUSES) | {lifecycle.APPEAL_LODGED, lifecycle.APPEAL_DECIDED}))
#: Cases that ended without a decision (no way out of these statuses: the last change ended them).
ENDED_WITHOUT_DECISION: tuple[str, ...] = (lifecycle.WITHDRAWN, lifecycle.IMPLICITLY_WITHDRAWN,
                                           lifecycle.TRANSFERRED)
#: Pending statuses in lifecycle order (the backlog's columns).
PENDING_STATUSES: tuple[str, ...] = tuple(s for s in lifecycle.STATUSES if s not in NOT_PENDING_STATUSES)

REFUGEE, SUBSIDIARY, HUMANITARIAN = "refugee_status", "subsidiary_protection", "humanitarian_status"
REJECTED_OUTCOMES: tuple[str, ...] = ("rejected_unfounded", "rejected_manifestly_unfounded", "inadmissible")
#: Outcomes that are first-instance decisions in Eurostat's sense (the recognition rate's denominator).
COUNTED_OUTCOMES: tuple[str, ...] = (REFUGEE, SUBSIDIARY, HUMANITARIAN, *REJECTED_OUTCOMES)

AGE_BUCKETS: tuple[str, ...] = ("lt1", "1to3", "3to6", "6to12", "gt12")  # months since registration
DUE_WITHIN_DAYS = 14
STATELESS, UNKNOWN = "STLS", "UNK"


@dataclass(frozen=True)
class ReportFilters:
    """What a report covers. ``date_from``..``date_to`` (inclusive) bound the flows (registrations,
    decisions, closures); ``as_of`` is the day of the snapshots (backlog, ageing, deadlines).
    ``office_id`` None means every office (benchmarks and a future national role only: the pages
    always set the supervisor's office)."""

    date_from: date
    date_to: date
    as_of: date
    office_id: int | None = None
    track: str | None = None
    nationality: str | None = None

    @property
    def start(self) -> datetime:
        return datetime.combine(self.date_from, time(0), UTC)

    @property
    def end(self) -> datetime:  # exclusive
        return datetime.combine(self.date_to + timedelta(days=1), time(0), UTC)

    @property
    def days(self) -> int:
        return (self.date_to - self.date_from).days + 1

    def weeks(self) -> list[date]:
        """The Monday of every ISO week the period touches, in order."""
        monday = self.date_from - timedelta(days=self.date_from.weekday())
        out = []
        while monday <= self.date_to:
            out.append(monday)
            monday += timedelta(days=7)
        return out

    def as_dict(self) -> dict:
        return {"date_from": self.date_from.isoformat(), "date_to": self.date_to.isoformat(),
                "as_of": self.as_of.isoformat(), "office_id": self.office_id, "track": self.track,
                "nationality": self.nationality}


# -- rows ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BacklogRow:
    track: str | None
    status: str
    cases: int


@dataclass(frozen=True)
class AgeingRow:
    track: str | None
    bucket: str
    cases: int


@dataclass(frozen=True)
class WeekFlow:
    week_start: date
    registered: int
    decisions_issued: int
    cases_closed: int

    @property
    def iso_week(self) -> str:
        year, week, _day = self.week_start.isocalendar()
        return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class DecisionTimeRow:
    track: str | None
    decisions: int
    median_days: float | None
    p90_days: float | None


@dataclass(frozen=True)
class WithinLimitRow:
    track: str | None
    decisions: int
    with_deadline: int
    within_limit: int
    share_pct: float | None  # within_limit over with_deadline


@dataclass(frozen=True)
class DeadlineRow:
    track: str | None
    due_soon: int
    overdue: int


@dataclass(frozen=True)
class WorkloadRow:
    caseworker: str
    open_assigned: int
    overdue: int
    decisions_issued: int
    per_week: float


@dataclass(frozen=True)
class ThroughputRow:
    caseworker: str
    week_start: date
    decisions: int

    @property
    def iso_week(self) -> str:
        year, week, _day = self.week_start.isocalendar()
        return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class RecognitionRow:
    nationality: str
    decisions: int  # refugee + subsidiary + humanitarian + rejected
    refugee: int
    subsidiary: int
    humanitarian: int
    rejected: int
    other: int  # implicit withdrawal, discontinued, transfer: outside the rate
    recognition_pct: float | None
    humanitarian_pct: float | None


@dataclass(frozen=True)
class LateRegistrationRow:
    week_start: date
    registered: int
    late: int
    share_pct: float | None

    @property
    def iso_week(self) -> str:
        year, week, _day = self.week_start.isocalendar()
        return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class ApplicantsRow:
    """One cell group of Eurostat's migr_asyappctzm: applicants registered in a month."""

    month: str  # YYYY-MM
    citizen: str  # ISO 3166 alpha-3, STLS or UNK
    sex: str  # F, M, X (Eurostat: UNK for X; see the export)
    age_group: str  # Y_LT14, Y14-17, Y18-34, Y35-64, Y_GE65, UNK
    applicants: int
    first_time: int
    subsequent: int


@dataclass(frozen=True)
class DecisionsRow:
    """One cell group of Eurostat's migr_asydcfstq: first-instance decisions in a quarter."""

    quarter: str  # YYYY-Qn
    citizen: str
    sex: str
    age_group: str
    total: int
    positive: int
    geneva_convention: int
    subsidiary_protection: int
    humanitarian: int
    rejected: int


# -- dialect helpers -------------------------------------------------------------------------------

class _Sql:
    """The few expressions that differ between PostgreSQL and SQLite. Everything else is shared."""

    def __init__(self, pg: bool) -> None:
        self.pg = pg

    def day(self, ts) -> ColumnElement:
        """The UTC calendar day of a timestamp column."""
        if self.pg:
            return cast(func.timezone("UTC", ts), Date)
        return func.date(ts, type_=Date)

    def week_start(self, day) -> ColumnElement:
        """The Monday of the ISO week of a date expression."""
        if self.pg:
            return day - (cast(extract("isodow", day), Integer) - 1)
        return func.date(day, "weekday 0", "-6 days", type_=Date)

    def days_between(self, later, earlier) -> ColumnElement:
        if self.pg:
            return later - earlier
        return cast(func.julianday(later) - func.julianday(earlier), Integer)

    def month(self, day) -> ColumnElement:
        if self.pg:
            return func.to_char(day, "YYYY-MM")
        return func.strftime("%Y-%m", day)

    def quarter(self, day) -> ColumnElement:
        if self.pg:
            return func.to_char(day, 'YYYY-"Q"Q')
        month = cast(func.strftime("%m", day), Integer)
        return func.strftime("%Y", day).concat("-Q").concat(cast((month + 2) // 3, String))


_case = Case.__table__.c
_person = Person.__table__.c
_decision = Decision.__table__
_user = User.__table__.c


# -- the indexes the reports need -------------------------------------------------------------------
#
# Declared here, beside the queries they serve, so the models' metadata (and the migration test)
# knows them; created by migration 0007. EXPLAIN at 1M cases showed full scans without them:
# * the period's first-instance decisions (every decision query filters status + issued_at);
# * the period's registrations of an office (inflow, late registrations, Eurostat applicants);
# * pending cases of an office: backlog, ageing and deadlines read only these columns, so this
#   partial index covers them (only pending cases: it stays small as decided cases pile up).

_d = Decision.__table__.c
_PENDING_DDL = _case.status.not_in(NOT_PENDING_STATUSES)
REPORT_INDEXES = (
    db.Index("ix_decision_status_issued", _d.status, _d.issued_at),
    # An office's first-instance decisions of a period (every efficiency and outcome query): on
    # PostgreSQL partial and covering, so throughput and workload are index-only scans (migration 0010).
    db.Index("ix_decision_office_issued", _d.office_id, _d.issued_at,
             postgresql_include=[_d.case_id, _d.drafted_by_id, _d.procedure_track, _d.round],
             postgresql_where=(_d.status == "issued") & _d.corrects_decision_id.is_(None),
             sqlite_where=_d.status == "issued"),
    db.Index("ix_asylum_case_office_registered", _case.office_id, _case.registered_on),
    db.Index("ix_asylum_case_pending_report", _case.office_id, _case.track, _case.status, _case.registered_on,
             _case.statutory_deadline, sqlite_where=_PENDING_DDL, postgresql_where=_PENDING_DDL),
)


# -- statements, built once per shape ----------------------------------------------------------------

@dataclass(frozen=True)
class _Shape:
    """What a report statement's SQL depends on, besides parameter values: the dialect, and
    which optional filters apply."""

    pg: bool
    office: bool
    track: bool
    nationality: bool

    @classmethod
    def of(cls, f: ReportFilters) -> _Shape:
        pg = db.session.get_bind().dialect.name == "postgresql"
        return cls(pg, f.office_id is not None, bool(f.track), bool(f.nationality))

    @property
    def sql(self) -> _Sql:
        return _Sql(self.pg)


def _memoised(build: Callable) -> Callable:
    """``build(shape, *args)`` -> statement, memoised per (shape, args). The statement holds named
    parameters only (see ``_params``), never a filter's values, so one serves every call of
    that shape; SQLAlchemy then also reuses its compiled form and cache key."""
    built: dict = {}

    @wraps(build)
    def statement(f: ReportFilters, *args):
        key = (_Shape.of(f), args)
        stmt = built.get(key)
        if stmt is None:
            stmt = built[key] = build(key[0], *args)
        return stmt
    return statement


def _params(f: ReportFilters) -> dict:
    """Every named parameter a report statement may use (each statement reads the ones it holds)."""
    return {"office_id": f.office_id, "track": f.track, "nationality": f.nationality,
            "date_from": f.date_from, "date_to": f.date_to, "start": f.start, "end": f.end, "days": f.days,
            "as_of": f.as_of, "due_until": f.as_of + timedelta(days=DUE_WITHIN_DAYS),
            **{f"m{n}": _months_before(f.as_of, n) for n in (1, 3, 6, 12)}}


_snapshot: ContextVar = ContextVar("report_snapshot", default=None)

# SQLite's progress handler runs every this many virtual-machine instructions: often enough to
# stop within milliseconds of the limit, rarely enough to cost nothing measurable.
_SQLITE_PROGRESS_INSTRUCTIONS = 10_000


class ReportTooSlow(RuntimeError):
    """A report query ran past ``REPORT_QUERY_TIMEOUT_SECONDS`` and the database stopped it. Nothing
    was kept or recorded; the supervisor is asked to narrow the filters."""

    def __init__(self, limit_seconds: float):
        super().__init__(f"a report query ran past its limit of {limit_seconds:g} seconds and was stopped")
        self.limit_seconds = limit_seconds


@contextmanager
def read_only_snapshot() -> Iterator[None]:
    """Run every report query inside the block on one read-only connection, in one transaction
    that sees one snapshot, so the sections agree with each other: on PostgreSQL REPEATABLE READ
    READ ONLY (under the default READ COMMITTED each statement would see the commits made since
    the one before); on SQLite a deferred BEGIN (app/database.py), so a report reads beside the
    writers instead of holding the write lock for its whole length (the dashboard took 0.5-2 s
    of it under the W10 mixed load). Nested blocks share the outer one.

    Every statement in the block is stopped after ``REPORT_QUERY_TIMEOUT_SECONDS`` (PostgreSQL:
    ``SET LOCAL statement_timeout``; SQLite: a progress handler that interrupts it) and the block
    raises ReportTooSlow: a query the planner got wrong must not hold a core for hours (one ran
    for 1 h 53 min at a million cases before this limit)."""
    if _snapshot.get() is not None:
        yield
        return
    limit = float(current_app.config["REPORT_QUERY_TIMEOUT_SECONDS"])
    options: dict = {"read_only": True}
    postgresql = db.engine.dialect.name == "postgresql"
    if postgresql:
        options.update(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    with db.engine.connect().execution_options(**options) as connection:
        stop = _stop_statements_after(connection, limit, postgresql)
        token = _snapshot.set(connection)
        try:
            yield
        except OperationalError as error:
            if _stopped_for_time(error, postgresql):
                raise ReportTooSlow(limit) from None
            raise
        finally:
            _snapshot.reset(token)
            stop()


def _stop_statements_after(connection, limit_seconds: float, postgresql: bool) -> Callable[[], None]:
    """Arm the time limit on ``connection`` (its transaction, on PostgreSQL; the whole block's
    wall time, on SQLite); returns what disarms it before the connection goes back to the pool."""
    if postgresql:
        # SET LOCAL: the limit ends with this transaction, so it never follows the pooled
        # connection into another request's work.
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, round(limit_seconds * 1000))}")
        return lambda: None
    sqlite_connection = connection.connection.driver_connection
    deadline = monotonic() + limit_seconds
    sqlite_connection.set_progress_handler(lambda: monotonic() > deadline,
                                           _SQLITE_PROGRESS_INSTRUCTIONS)
    return lambda: sqlite_connection.set_progress_handler(None, 0)


def _stopped_for_time(error: OperationalError, postgresql: bool) -> bool:
    if postgresql:
        return getattr(error.orig, "sqlstate", None) == "57014"  # query_canceled
    return "interrupted" in str(error.orig)


def _rows(stmt, f: ReportFilters) -> Sequence:
    connection = _snapshot.get()
    if connection is None:
        with read_only_snapshot():
            return _rows(stmt, f)
    return connection.execute(stmt, _params(f)).all()


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _pending() -> ColumnElement:
    # Literal values (not bound parameters), as the queues do: the planner can then match
    # partial indexes declared on "open" cases.
    return _case.status.not_in(bindparam("not_pending", NOT_PENDING_STATUSES, expanding=True,
                                         literal_execute=True))


def _case_scope(s: _Shape, *, office: bool = True, track: bool = True,
                nationality: bool = True) -> list[ColumnElement]:
    conditions = []
    if office and s.office:
        conditions.append(_case.office_id == bindparam("office_id"))
    if track and s.track:
        conditions.append(_case.track == bindparam("track"))
    if nationality and s.nationality:
        conditions.append(_case.principal_nationality == bindparam("nationality"))
    return conditions


def _citizen(person) -> ColumnElement:
    first = person.c.nationalities[0].as_string()
    return case((person.c.stateless.is_(True), STATELESS), else_=func.coalesce(first, UNKNOWN))


def _months_before(day: date, months: int) -> date:
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _share(part, whole) -> ColumnElement:
    """100 * part / whole in SQL, NULL when whole is 0."""
    return 100.0 * cast(part, Float) / func.nullif(whole, 0)


def _issued_originals(s: _Shape, *, round_one: bool = False):
    """First-instance decisions issued in the period (not corrections), with the scope applied
    (office: the decision's own copy of its case's office; track: the decision's track). Returns
    (d, track, conditions); the conditions name the case table only when ``_needs_case(s)``, and
    callers then join it with ``_with_case``."""
    d = _decision.alias("d")
    track = func.coalesce(d.c.procedure_track, _case.track)
    conditions = [d.c.status == "issued", _original(d, s), d.c.issued_at >= bindparam("start"),
                  d.c.issued_at < bindparam("end"), *_case_scope(s, office=False, track=False)]
    if s.office:
        conditions.append(d.c.office_id == bindparam("office_id"))
    if s.track:
        conditions.append(track == bindparam("track", type_=String))
    if round_one:
        conditions.append(d.c.round == 1)
    return d, track, conditions


def _needs_case(s: _Shape) -> bool:
    """Whether a query over ``_issued_originals`` must join the case: its office is on the
    decision, its track and nationality are not."""
    return s.track or s.nationality


def _with_case(d, s: _Shape, *, always: bool = False):
    """The decisions, joined to their case when the query reads it (``always``) or its scope
    needs it. At 1M cases the office's decisions of a period are read from one covering index
    (ix_decision_office_issued) without touching the case table."""
    if always or _needs_case(s):
        return d.join(Case.__table__, _case.id == d.c.case_id)
    return d


def _original(d, s: _Shape) -> ColumnElement:
    """Not a correction. On SQLite written so no index on ``corrects_decision_id`` is used for
    it: SQLite takes "IS NULL" for a selective equality, while nearly every decision is an
    original, and then walks that index instead of the period's range of ix_decision_status_issued.
    PostgreSQL keeps "IS NULL": it knows the share of NULLs from its statistics, while it guesses
    0.5% for the SQLite phrasing, and that guess (21 rows for 4,259) made it pick nested-loop
    probes of every case by primary key over a hash join (W7 and the summary, 2-3x slower)."""
    if s.pg:
        return d.c.corrects_decision_id.is_(None)
    return func.coalesce(d.c.corrects_decision_id, "") == ""


def _latest_corrections():
    """(root decision id, outcome of the latest issued correction in its chain), as a subquery.

    Walks each issued correction up to the original it finally corrects (a recursive CTE that
    starts from corrections only, so it costs nothing when there are none)."""
    corr = _decision.alias("corr")
    chain = (select(corr.c.id.label("correction_id"), corr.c.corrects_decision_id.label("target_id"),
                    corr.c.issued_at.label("issued_at"), corr.c.outcome.label("outcome"))
             # "> ''" rather than IS NOT NULL: a range SQLite reads from ix_decision_corrects_decision_id.
             .where(corr.c.corrects_decision_id > "", corr.c.status == "issued")
             .cte("correction_chain", recursive=True))
    parent = _decision.alias("parent")
    chain = chain.union_all(
        select(chain.c.correction_id, parent.c.corrects_decision_id, chain.c.issued_at, chain.c.outcome)
        .join(parent, parent.c.id == chain.c.target_id)
        .where(parent.c.corrects_decision_id.is_not(None)))
    root = _decision.alias("root")
    ranked = (select(chain.c.target_id.label("root_id"), chain.c.outcome,
                     func.row_number().over(partition_by=chain.c.target_id,
                                            order_by=(chain.c.issued_at.desc(), chain.c.correction_id.desc()))
                     .label("rn"))
              .join(root, and_(root.c.id == chain.c.target_id, root.c.corrects_decision_id.is_(None)))
              .subquery("ranked_corrections"))
    return select(ranked.c.root_id, ranked.c.outcome).where(ranked.c.rn == 1).subquery("latest_correction")


# -- backlog and ageing (W6) -----------------------------------------------------------------------

def backlog(f: ReportFilters) -> list[BacklogRow]:
    """Pending cases per track and status (a snapshot)."""
    return [BacklogRow(r.track, r.status, r.cases) for r in _rows(_backlog(f), f)]


@_memoised
def _backlog(s: _Shape):
    return (select(_case.track, _case.status, func.count().label("cases"))
            .where(_pending(), *_case_scope(s))
            .group_by(_case.track, _case.status)
            .order_by(_case.track.is_(None), _case.track, _case.status))


def ageing(f: ReportFilters) -> list[AgeingRow]:
    """Pending cases per track and age since registration: under 1 month, 1-3, 3-6, 6-12 and over
    12 months on ``as_of`` (calendar months: a case registered exactly a month ago is in 1-3)."""
    return [AgeingRow(r.track, AGE_BUCKETS[r.bucket], r.cases) for r in _rows(_ageing(f), f)]


@_memoised
def _ageing(s: _Shape):
    registered = _case.registered_on
    bucket = case((registered > bindparam("m1"), 0), (registered > bindparam("m3"), 1),
                  (registered > bindparam("m6"), 2), (registered > bindparam("m12"), 3), else_=4)
    inner = select(_case.track.label("track"), bucket.label("bucket")).where(_pending(), *_case_scope(s)).subquery()
    return (select(inner.c.track, inner.c.bucket, func.count().label("cases"))
            .group_by(inner.c.track, inner.c.bucket)
            .order_by(inner.c.track.is_(None), inner.c.track, inner.c.bucket))


# -- flows per week --------------------------------------------------------------------------------

def weekly_flow(f: ReportFilters) -> list[WeekFlow]:
    """Per ISO week of the period: cases registered (inflow); first-instance decisions issued,
    and cases closed (first decision issued, or ended by withdrawal or transfer without one,
    dated by their last change) (outflow). Weeks without any are listed with zeros."""
    registered_counts = {_as_date(r.week): r.n for r in _rows(_registered_per_week(f), f)}
    outflow = {_as_date(r.week): r for r in _rows(_outflow_per_week(f), f)}
    return [WeekFlow(week, registered_counts.get(week, 0), outflow[week].issued if week in outflow else 0,
                     outflow[week].closed if week in outflow else 0)
            for week in f.weeks()]


def _registered_in_period(s: _Shape) -> list[ColumnElement]:
    return [_case.registered_on >= bindparam("date_from"), _case.registered_on <= bindparam("date_to")]


@_memoised
def _registered_per_week(s: _Shape):
    registered = (select(s.sql.week_start(_case.registered_on).label("week"))
                  .where(*_registered_in_period(s), *_case_scope(s)).subquery())
    return select(registered.c.week, func.count().label("n")).group_by(registered.c.week)


@_memoised
def _outflow_per_week(s: _Shape):
    """Per week: first-instance decisions issued, and cases closed, from one read of the period's
    decisions. The track filter means the decision's track for "issued" and the case's for
    "closed" (a case-level condition: all decisions of a case pass it or none)."""
    sql = s.sql
    d = _decision.alias("d")
    decision_track = func.coalesce(d.c.procedure_track, _case.track)
    counted = decision_track == bindparam("track", type_=String) if s.track else None
    conditions = [d.c.status == "issued", _original(d, s), d.c.issued_at >= bindparam("start"),
                  d.c.issued_at < bindparam("end"), *_case_scope(s, office=False, track=False)]
    if s.office:
        conditions.append(d.c.office_id == bindparam("office_id"))
    if s.track:
        conditions.append(or_(counted, _case.track == bindparam("track")))
    decisions = (select(d.c.case_id, sql.week_start(sql.day(d.c.issued_at)).label("week"),
                        (case((counted, 1)) if s.track else literal(1)).label("issued"),
                        # first of the case's decisions in the period, among those of a counted case
                        case((_case.track == bindparam("track"), func.row_number().over(
                            partition_by=d.c.case_id, order_by=(d.c.issued_at, d.c.id)))).label("nth")
                        if s.track else
                        func.row_number().over(partition_by=d.c.case_id, order_by=(d.c.issued_at, d.c.id))
                        .label("nth"))
                 .select_from(_with_case(d, s)).where(*conditions).subquery())
    # A case's first decision: its first of the period, with no original issued before the period
    # (probed once per case, by ix_decision_case, only for that first decision).
    earlier = _decision.alias("earlier")
    before_period = [earlier.c.case_id == decisions.c.case_id, earlier.c.status == "issued",
                     earlier.c.corrects_decision_id.is_(None), earlier.c.issued_at < bindparam("start")]
    if s.office:  # PostgreSQL hashes this probe: the office bounds the earlier decisions it reads
        before_period.append(earlier.c.office_id == bindparam("office_id"))
    no_earlier = ~exists().where(*before_period)
    first = case((decisions.c.nth == 1, case((no_earlier, 1))))
    issued = select(decisions.c.week, decisions.c.issued.label("issued"), first.label("closed"))
    other = _decision.alias("od")
    ended = (select(sql.week_start(sql.day(_case.updated_at)).label("week"), literal(None).label("issued"),
                    literal(1).label("closed"))
             .where(_case.status.in_(ENDED_WITHOUT_DECISION), _case.updated_at >= bindparam("start"),
                    _case.updated_at < bindparam("end"), *_case_scope(s),
                    ~exists().where(other.c.case_id == _case.id, other.c.status == "issued")))
    both = union_all(issued, ended).subquery()
    return (select(both.c.week, func.count(both.c.issued).label("issued"), func.count(both.c.closed).label("closed"))
            .group_by(both.c.week))


def late_registrations(f: ReportFilters) -> list[LateRegistrationRow]:
    """Per ISO week of the period: cases registered, how many were registered late (more than 5
    days after the claim was made: the case's ``late_registration``, set at intake), and their share."""
    found = {_as_date(r.week): r for r in _rows(_late_registrations(f), f)}
    out = []
    for week in f.weeks():
        row = found.get(week)
        out.append(LateRegistrationRow(week, row.registered, row.late, row.share) if row
                   else LateRegistrationRow(week, 0, 0, None))
    return out


@_memoised
def _late_registrations(s: _Shape):
    inner = (select(s.sql.week_start(_case.registered_on).label("week"),
                    _case.late_registration.label("late"))
             .where(*_registered_in_period(s), *_case_scope(s))
             .subquery())
    late = func.count(case((inner.c.late.is_(True), 1)))
    return select(inner.c.week, func.count().label("registered"), late.label("late"),
                  _share(late, func.count()).label("share")).group_by(inner.c.week)


# -- time to decision and statutory limits (W7) ----------------------------------------------------

def decision_times(f: ReportFilters, *, implementation: str | None = None) -> list[DecisionTimeRow]:
    """Median and 90th percentile of the days from registration to the issue of first-instance
    decisions (first examination round) issued in the period, per track. ``implementation``
    ("percentile_cont" or "window") forces one formulation; by default PostgreSQL uses
    percentile_cont and SQLite the window one."""
    return _times_and_limits(f, implementation)[0]


def within_limit(f: ReportFilters) -> list[WithinLimitRow]:
    """Per track: first-instance decisions (first round) issued in the period, how many of them
    belong to a case with a statutory deadline, and how many were issued on or before it."""
    return _times_and_limits(f)[1]


def _times_and_limits(f: ReportFilters, implementation: str | None = None):
    """(decision_times, within_limit): both count the same decisions per track, so one statement
    reads them once (at 1M cases each read of the period's decisions costs seconds on SQLite)."""
    rows = _rows(_decision_times(f, implementation), f)
    return ([DecisionTimeRow(r.grp, r.n, _float(r.p50), _float(r.p90)) for r in rows],
            [WithinLimitRow(r.grp, r.n, r.with_deadline, r.within, _float(r.share)) for r in rows])


@_memoised
def _decision_times(s: _Shape, implementation: str | None):
    sql = s.sql
    d, track, conditions = _issued_originals(s, round_one=True)
    issued_on = sql.day(d.c.issued_at)
    base = (select(track.label("track"), sql.days_between(issued_on, _case.registered_on).label("days"),
                   _case.statutory_deadline.label("deadline"), issued_on.label("issued_on"))
            .select_from(_with_case(d, s, always=True))
            .where(*conditions).subquery())

    def counts(rows):  # within the statutory limit: on or before the case's deadline
        return [func.count(rows.deadline).label("with_deadline"),
                func.count(case((rows.issued_on <= rows.deadline, 1))).label("within")]

    def share(columns):
        return [_share(columns["within"], columns["with_deadline"]).label("share")]

    implementation = implementation or ("percentile_cont" if sql.pg else "window")
    return _percentiles(base.c.track, base.c.days, base, implementation, pg=s.pg, counts=counts, derived=share)


def _float(value) -> float | None:
    return None if value is None else float(value)


def _percentiles(group, value, base, implementation: str, *, pg: bool, ps: tuple[float, float] = (0.5, 0.9),
                 counts=None, derived=None):
    """SELECT grp, n, p50, p90 ... GROUP BY grp: continuous percentiles of ``value`` per ``group``.
    ``counts(columns)``: more labelled aggregates per group over the base rows' columns, returned
    beside them; ``derived(by_label)``: labelled expressions over those aggregates (shares)."""
    if implementation == "percentile_cont":
        more = counts(base.c) if counts else []
        return (select(group.label("grp"), func.count().label("n"),
                       *(func.percentile_cont(p).within_group(value).label(f"p{int(p * 100)}") for p in ps),
                       *more, *(derived({c.name: c.element for c in more}) if derived else []))
                .group_by(group)
                .order_by(group.is_(None), group))
    if implementation != "window":
        raise ValueError(f"unknown percentile implementation {implementation!r}")
    ranked = select(group.label("grp"), value.label("v"),
                    func.row_number().over(partition_by=group, order_by=value).label("rn"),
                    func.count().over(partition_by=group).label("n"),
                    *(c for c in base.c if counts and c.name not in (group.name, value.name))
                    ).select_from(base).subquery()
    # PostgreSQL's percentile_cont: h = p * (n - 1) in double precision; the rows at floor(h) and
    # ceil(h) (0-based) are interpolated. CAST(h AS INTEGER) floors (h >= 0) on SQLite; on
    # PostgreSQL it would round, hence FLOOR there.
    columns, picks = [], []
    for p in ps:
        h = (ranked.c.n - 1) * cast(literal(p), Float)
        lo = func.floor(h) if pg else cast(h, Integer)
        hi = case((h > lo, lo + 1), else_=lo)
        name = f"p{int(p * 100)}"
        columns += [func.max(case((ranked.c.rn - 1 == lo, ranked.c.v))).label(f"{name}_lo"),
                    func.max(case((ranked.c.rn - 1 == hi, ranked.c.v))).label(f"{name}_hi")]
        picks.append(name)
    more = counts(ranked.c) if counts else []
    grouped = (select(ranked.c.grp, func.max(ranked.c.n).label("n"), *columns, *more)
               .group_by(ranked.c.grp).subquery())
    outs = []
    for p, name in zip(ps, picks, strict=True):
        h = (grouped.c.n - 1) * cast(literal(p), Float)
        frac = h - (func.floor(h) if pg else cast(h, Integer))
        lo_v, hi_v = grouped.c[f"{name}_lo"], grouped.c[f"{name}_hi"]
        outs.append((cast(lo_v, Float) + frac * (hi_v - lo_v)).label(name))
    passed = [grouped.c[c.name] for c in more]
    outs += [*passed, *(derived({c.name: c for c in passed}) if derived else [])]
    return select(grouped.c.grp, grouped.c.n, *outs).order_by(grouped.c.grp.is_(None), grouped.c.grp)


def deadlines(f: ReportFilters) -> list[DeadlineRow]:
    """Pending cases per track whose statutory deadline falls within the next 14 days (``as_of``
    to ``as_of`` + 14, inclusive), and those already overdue (deadline before ``as_of``)."""
    return [DeadlineRow(r.track, r.due, r.overdue) for r in _rows(_deadlines(f), f)]


@_memoised
def _deadlines(s: _Shape):
    deadline = _case.statutory_deadline
    as_of, soon_end = bindparam("as_of", type_=Date), bindparam("due_until", type_=Date)
    due = func.count(case((and_(deadline >= as_of, deadline <= soon_end), 1)))
    overdue = func.count(case((deadline < as_of, 1)))
    return (select(_case.track, due.label("due"), overdue.label("overdue"))
            .where(_pending(), deadline.is_not(None), deadline <= soon_end, *_case_scope(s))
            .group_by(_case.track).order_by(_case.track.is_(None), _case.track))


# -- caseworkers (W7) ------------------------------------------------------------------------------

def workload(f: ReportFilters) -> list[WorkloadRow]:
    """Per active caseworker and supervisor of the office: pending cases assigned to them (and
    overdue among them), first-instance decisions they drafted that were issued in the period,
    and that number per week of the period. Staff are named by display name."""
    return [WorkloadRow(r.full_name, r.open_assigned, r.overdue, r.issued, float(r.per_week))
            for r in _rows(_workload(f), f)]


@_memoised
def _workload(s: _Shape):
    open_cases = (select(_case.assigned_to_id.label("user_id"), func.count().label("open_assigned"),
                         func.count(case((_case.statutory_deadline < bindparam("as_of", type_=Date), 1)))
                         .label("overdue"))
                  .where(_pending(), _case.assigned_to_id.is_not(None), *_case_scope(s))
                  .group_by(_case.assigned_to_id).subquery())
    d, _track, conditions = _issued_originals(s)
    issued = (select(d.c.drafted_by_id.label("user_id"), func.count().label("issued"))
              .select_from(_with_case(d, s)).where(*conditions)
              .group_by(d.c.drafted_by_id).subquery())
    issued_n = func.coalesce(issued.c.issued, 0)
    staff = [_user.active.is_(True), _user.role.in_(ASSIGNEE_ROLES)]
    if s.office:
        staff.append(_user.office_id == bindparam("office_id"))
    return (select(_user.full_name, func.coalesce(open_cases.c.open_assigned, 0).label("open_assigned"),
                   func.coalesce(open_cases.c.overdue, 0).label("overdue"), issued_n.label("issued"),
                   (issued_n * 7.0 / bindparam("days", type_=Integer)).label("per_week"))
            .select_from(User.__table__)
            .outerjoin(open_cases, open_cases.c.user_id == _user.id)
            .outerjoin(issued, issued.c.user_id == _user.id)
            .where(or_(and_(*staff), open_cases.c.user_id.is_not(None), issued.c.user_id.is_not(None)))
            .order_by(_user.full_name, _user.id))


def throughput(f: ReportFilters) -> list[ThroughputRow]:
    """First-instance decisions issued per drafting caseworker per ISO week of the period (weeks
    without any decision of that person are left out)."""
    return [ThroughputRow(r.full_name, _as_date(r.week), r.decisions) for r in _rows(_throughput(f), f)]


@_memoised
def _throughput(s: _Shape):
    sql = s.sql
    d, _track, conditions = _issued_originals(s)
    inner = (select(d.c.drafted_by_id.label("user_id"), sql.week_start(sql.day(d.c.issued_at)).label("week"))
             .select_from(_with_case(d, s)).where(*conditions).subquery())
    counted = (select(inner.c.user_id, inner.c.week, func.count().label("decisions"))
               .group_by(inner.c.user_id, inner.c.week).subquery())
    return (select(_user.full_name, counted.c.week, counted.c.decisions)
            .join(User.__table__, _user.id == counted.c.user_id)
            .order_by(_user.full_name, _user.id, counted.c.week))


# -- outcomes ---------------------------------------------------------------------------------------

def _decisions_with_outcome(s: _Shape):
    """Issued first-instance decisions of the period with their effective outcome (after
    corrections), the person's citizenship, sex and age group. A subquery."""
    sql = s.sql
    d, _track, conditions = _issued_originals(s)
    p = Person.__table__.alias("p")
    latest = _latest_corrections()
    citizen = _citizen(p)
    if s.nationality:
        conditions.append(citizen == bindparam("nationality", type_=String))
    return (select(func.coalesce(latest.c.outcome, d.c.outcome).label("outcome"), citizen.label("citizen"),
                   p.c.stat_sex.label("sex"), p.c.stat_age_group.label("age_group"),
                   sql.day(d.c.issued_at).label("issued_on"))
            .select_from(_with_case(d, s))
            .join(p, p.c.id == d.c.person_id)
            .outerjoin(latest, latest.c.root_id == d.c.id)
            .where(*conditions).subquery())


def _outcome_counts(base) -> list:
    def n(*outcomes: str):
        return func.count(case((base.c.outcome.in_(outcomes), 1)))
    return [n(*COUNTED_OUTCOMES).label("total"), n(REFUGEE, SUBSIDIARY, HUMANITARIAN).label("positive"),
            n(REFUGEE).label("refugee"), n(SUBSIDIARY).label("subsidiary"), n(HUMANITARIAN).label("humanitarian"),
            n(*REJECTED_OUTCOMES).label("rejected")]


def recognition(f: ReportFilters) -> list[RecognitionRow]:
    """Per citizenship: first-instance decisions issued in the period by outcome, the recognition
    rate (refugee + subsidiary protection over all decisions) and, apart, the humanitarian share.
    Most decisions first."""
    return [RecognitionRow(r.citizen, r.total, r.refugee, r.subsidiary, r.humanitarian, r.rejected, r.other,
                           _float(r.recognition), _float(r.hum_share)) for r in _rows(_recognition(f), f)]


@_memoised
def _recognition(s: _Shape):
    base = _decisions_with_outcome(s)
    counts = _outcome_counts(base)
    total = func.count(case((base.c.outcome.in_(COUNTED_OUTCOMES), 1)))
    recognised = func.count(case((base.c.outcome.in_((REFUGEE, SUBSIDIARY)), 1)))
    humanitarian = func.count(case((base.c.outcome == HUMANITARIAN, 1)))
    return (select(base.c.citizen, *counts, (func.count() - total).label("other"),
                   _share(recognised, total).label("recognition"), _share(humanitarian, total).label("hum_share"))
            .group_by(base.c.citizen).order_by(total.desc(), base.c.citizen))


# -- Eurostat returns -------------------------------------------------------------------------------

def eurostat_applicants(f: ReportFilters) -> list[ApplicantsRow]:
    """migr_asyappctzm: persons of the cases registered in the period (every applicant of a case,
    children included), per month of registration, citizenship, sex and age group, first-time and
    subsequent (the case's ``is_subsequent_application``)."""
    return [ApplicantsRow(r.month, r.citizen, r.sex, r.age_group, r.n, r.first_time, r.subsequent)
            for r in _rows(_eurostat_applicants(f), f)]


@_memoised
def _eurostat_applicants(s: _Shape):
    sql = s.sql
    p = Person.__table__.alias("p")
    citizen = _citizen(p)
    conditions = [*_registered_in_period(s), *_case_scope(s, nationality=False)]
    if s.nationality:
        conditions.append(citizen == bindparam("nationality", type_=String))
    inner = (select(sql.month(_case.registered_on).label("month"), citizen.label("citizen"),
                    p.c.stat_sex.label("sex"), p.c.stat_age_group.label("age_group"),
                    _case.is_subsequent_application.label("subsequent"))
             .select_from(p).join(Case.__table__, _case.id == p.c.case_id).where(*conditions).subquery())
    subsequent = func.count(case((inner.c.subsequent.is_(True), 1)))
    return (select(inner.c.month, inner.c.citizen, inner.c.sex, inner.c.age_group, func.count().label("n"),
                   (func.count() - subsequent).label("first_time"), subsequent.label("subsequent"))
            .group_by(inner.c.month, inner.c.citizen, inner.c.sex, inner.c.age_group)
            .order_by(inner.c.month, inner.c.citizen, inner.c.sex, inner.c.age_group))


def eurostat_decisions(f: ReportFilters) -> list[DecisionsRow]:
    """migr_asydcfstq: first-instance decisions issued in the period per quarter, citizenship, sex
    and age group (at application): total, positive, Geneva Convention status, subsidiary
    protection, humanitarian status, rejected. Other outcomes are not decisions here."""
    return [DecisionsRow(r.quarter, r.citizen, r.sex, r.age_group, r.total, r.positive, r.refugee, r.subsidiary,
                         r.humanitarian, r.rejected) for r in _rows(_eurostat_decisions(f), f)]


@_memoised
def _eurostat_decisions(s: _Shape):
    sql = s.sql
    base = _decisions_with_outcome(s)
    inner = select(sql.quarter(base.c.issued_on).label("quarter"), base.c.citizen, base.c.sex, base.c.age_group,
                   base.c.outcome).subquery()
    counts = _outcome_counts(inner)
    # Other outcomes are left out by the counts and HAVING, not by a WHERE on the corrected
    # outcome: PostgreSQL guesses 3% of rows for that filter and then probes 430k cases and 240k
    # people one by one (1M cases: 9.8 s), where it otherwise hash-joins them.
    return (select(inner.c.quarter, inner.c.citizen, inner.c.sex, inner.c.age_group, *counts)
            .group_by(inner.c.quarter, inner.c.citizen, inner.c.sex, inner.c.age_group)
            .having(counts[0] > 0)
            .order_by(inner.c.quarter, inner.c.citizen, inner.c.sex, inner.c.age_group))


# -- everything the dashboard shows -----------------------------------------------------------------

@dataclass(frozen=True)
class Dashboard:
    filters: ReportFilters
    backlog: list[BacklogRow]
    ageing: list[AgeingRow]
    flow: list[WeekFlow]
    decision_times: list[DecisionTimeRow]
    within_limit: list[WithinLimitRow]
    deadlines: list[DeadlineRow]
    workload: list[WorkloadRow] | None  # None: not asked for (see ``dashboard``)
    throughput: list[ThroughputRow] | None
    recognition: list[RecognitionRow]
    late_registrations: list[LateRegistrationRow]


def dashboard(f: ReportFilters, *, caseworkers: bool = True) -> Dashboard:
    """Every dashboard section, each one SQL aggregate (or two), in one read-only transaction.
    ``caseworkers=False`` leaves the per-caseworker sections (workload, throughput) out as None:
    the PDF summary does not show them (the listing does), so it does not pay for them."""
    with read_only_snapshot():
        times, limits = _times_and_limits(f)
        return Dashboard(filters=f, backlog=backlog(f), ageing=ageing(f), flow=weekly_flow(f),
                         decision_times=times, within_limit=limits, deadlines=deadlines(f),
                         workload=workload(f) if caseworkers else None,
                         throughput=throughput(f) if caseworkers else None, recognition=recognition(f),
                         late_registrations=late_registrations(f))


def distinct_tracks(office_id: int | None) -> list[str]:
    """Track codes present among the office's cases (the filter's choices besides the rulesets')."""
    stmt = select(_case.track).where(_case.track.is_not(None)).distinct()
    if office_id is not None:
        stmt = stmt.where(_case.office_id == office_id)
    return sorted(r.track for r in db.session.execute(stmt))


def pivot(rows: Iterable, row_key: str, column_key: str, value: str, columns: Sequence) -> list[tuple]:
    """Lay already-aggregated rows out as a table: (row label, [value per column]). Pure layout
    (one cell per SQL row, no arithmetic)."""
    table: dict = {}
    for row in rows:
        table.setdefault(getattr(row, row_key), {})[getattr(row, column_key)] = getattr(row, value)
    return [(label, [cells.get(column, 0) for column in columns]) for label, cells in table.items()]
