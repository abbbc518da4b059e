"""Report queries (app/reports/queries.py) against a small hand-computed caseload: every figure
is checked against numbers worked out by hand below (never with the same SQL), on SQLite and on
PostgreSQL alike; percentiles through both formulations; Eurostat returns; exports."""

from __future__ import annotations

import csv
import io
import itertools
import os
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.decisions.models import Decision
from app.extensions import db
from app.intake.models import Case, Person
from app.reports import exports, queries, services
from app.reports.queries import ReportFilters

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")
AS_OF = date(2026, 9, 2)  # a Wednesday
PERIOD = (date(2026, 7, 6), date(2026, 8, 30))  # 8 ISO weeks, Monday 2026-W28 to Sunday 2026-W35
WEEKS = [date(2026, 7, 6), date(2026, 7, 13), date(2026, 7, 20), date(2026, 7, 27), date(2026, 8, 3),
         date(2026, 8, 10), date(2026, 8, 17), date(2026, 8, 24)]
CANARY_FAMILY, CANARY_GIVEN, CANARY_REFERENCE = "Zebulonskaya", "Quintessa", "CANARYREF"
_numbers = itertools.count(1)


def at(day: str, hour: int = 10, minute: int = 0) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=UTC)


class World:
    """Builds cases, people and decisions directly (no services): only the columns reports read."""

    def __init__(self, office, registrar):
        self.office, self.registrar = office, registrar

    def case(self, *, track="regular", status="registered", registered="2026-08-01", made=None, deadline=None,
             assigned=None, nationality="SYR", late=False, subsequent=False, office=None, updated=None,
             persons=()) -> Case:
        registered_on = date.fromisoformat(registered)
        made_on = date.fromisoformat(made) if made else registered_on
        case = Case(reference=f"{CANARY_REFERENCE}{next(_numbers):04d}", office_id=(office or self.office).id,
                    made_on=made_on, registered_on=registered_on, received_by_id=self.registrar.id, track=track,
                    status=status, statutory_deadline=date.fromisoformat(deadline) if deadline else None,
                    assigned_to_id=assigned.id if assigned else None, principal_nationality=nationality,
                    registration_delay_days=(registered_on - made_on).days, late_registration=late,
                    is_subsequent_application=subsequent)
        if updated:
            case.updated_at = updated
        db.session.add(case)
        db.session.flush()
        for position, (nationalities, sex, age, *stateless) in enumerate(persons):
            person = Person(case_id=case.id, position=position, is_principal=position == 0,
                            nationalities=list(nationalities), stateless=bool(stateless and stateless[0]),
                            stat_sex=sex, stat_age_group=age, minor_at_application=age in ("Y_LT14", "Y14-17"))
            db.session.add(person)
            db.session.flush()
            person.identity = {"family_name": CANARY_FAMILY, "given_names": f"{CANARY_GIVEN} {position}"}
        db.session.flush()
        return case

    def decide(self, case: Case, *, outcome: str, issued: datetime | None, by, person: int = 0, round_: int = 1,
               corrects: Decision | None = None, status: str = "issued") -> Decision:
        person_row = sorted(case.persons, key=lambda p: p.position)[person]
        decision = Decision(case_id=case.id, person_id=person_row.id, office_id=case.office_id, outcome=outcome,
                            status=status,
                            issued_at=issued, procedure_track=case.track if status == "issued" else None,
                            drafted_by_id=by.id, last_edited_by_id=by.id, round=round_,
                            corrects_decision_id=corrects.id if corrects else None, legal_basis=["APR-39"])
        db.session.add(decision)
        db.session.flush()
        return decision


@pytest.fixture
def staff(make_user):
    alice = make_user("caseworker", username="alice")
    alice.full_name = "Alice Worker"
    bruno = make_user("caseworker", username="bruno")
    bruno.full_name = "Bruno Worker"
    registrar = make_user("registration_officer", username="registrar")
    db.session.commit()
    return alice, bruno, registrar


@pytest.fixture
def world(office, other_office, staff):
    """The caseload the expected numbers below are computed from (HQ unless said).

    Pending (as of 2026-09-02; 1 month ago = 08-02, 3 = 06-02, 6 = 03-02, 12 = 2025-09-02):
      P1 regular/registered, reg 08-20 (made 08-10: late), deadline 09-10 (due soon)
      P8 regular/registered, reg 08-21, no deadline
      P2 regular/assigned (Alice), reg 08-02 (exactly 1 month: 1-3), deadline 09-01 (overdue)
      P3 regular/interviewed (Alice), reg 05-15 (3-6), deadline 12-01
      P4 accelerated/assigned (Bruno), reg 01-10 (6-12), deadline 09-16 (as_of + 14: due soon)
      P5 accelerated/registered, reg 2025-09-02 (exactly 12 months: over 12), no deadline
      P6 border/under_review (Bruno), reg 08-25 (made 08-18: late), deadline 09-17 (not due soon),
         with an approved decision not yet issued
      P7 regular/appeal_lodged: not pending
    Decided (first-instance decisions; period 07-06..08-30):
      C1 regular, reg 03-02, deadline 09-02: SYR man + SYR girl, refugee x2 issued 07-07 (Alice)
         127 days; a draft correction to rejected (not issued: ignored)
      C2 regular, reg 01-05, deadline 07-05: AFG man, subsidiary 07-20 (Bruno) 196 days, late;
         corrected 07-25 to rejected, that correction corrected 07-30 to refugee: refugee counts
      C3 accelerated, reg 06-01, deadline 09-01: VEN woman, rejected 08-12 (Bruno) 72 days,
         corrected 08-20 (Alice) to humanitarian: humanitarian counts
      C4 accelerated, reg 05-01, no deadline: VEN man, inadmissible 08-26 23:30 UTC (Alice) 117 days
      C5 border, reg 07-01, deadline 08-15: GIN boy, implicit withdrawal 08-15 (Alice) 45 days
      C6 regular: refugee issued 07-05 23:59 UTC, before the period (Alice)
      C7 regular: ERI woman, round 1 rejected 06-15 (before), round 2 refugee 08-05 (Bruno)
      W1 regular/withdrawn, reg 07-08, no decision, last change 08-04
    Another office: N1 (pending), N2 (SYR refugee 08-10), both NORTH.
    """
    alice, bruno, registrar = staff
    w = World(office, registrar)
    syr_man, afg_man = (("SYR",), "M", "Y18-34"), (("AFG",), "M", "Y18-34")
    w.case(registered="2026-08-20", made="2026-08-10", late=True, deadline="2026-09-10", subsequent=True,
           persons=[syr_man])
    w.case(registered="2026-08-21", persons=[syr_man])
    w.case(status="assigned", assigned=alice, registered="2026-08-02", deadline="2026-09-01", nationality="AFG",
           persons=[(("AFG",), "F", "Y35-64"), (("AFG",), "M", "Y_LT14")])
    w.case(status="interviewed", assigned=alice, registered="2026-05-15", deadline="2026-12-01")
    w.case(track="accelerated", status="assigned", assigned=bruno, registered="2026-01-10", deadline="2026-09-16")
    w.case(track="accelerated", registered="2025-09-02")
    p6 = w.case(track="border", status="under_review", assigned=bruno, registered="2026-08-25", made="2026-08-18",
                late=True, deadline="2026-09-17", nationality=None, persons=[((), "M", "Y18-34", True)])
    w.decide(p6, outcome="refugee_status", issued=None, by=bruno, status="approved")
    w.case(status="appeal_lodged", registered="2026-02-01")

    c1 = w.case(status="decision_issued", registered="2026-03-02", deadline="2026-09-02",
                persons=[syr_man, (("SYR",), "F", "Y_LT14")])
    first = w.decide(c1, outcome="refugee_status", issued=at("2026-07-07"), by=alice)
    w.decide(c1, outcome="refugee_status", issued=at("2026-07-07", 11), by=alice, person=1)
    w.decide(c1, outcome="rejected_unfounded", issued=None, by=alice, corrects=first, status="draft")
    c2 = w.case(status="notified", registered="2026-01-05", deadline="2026-07-05", nationality="AFG",
                persons=[afg_man])
    original = w.decide(c2, outcome="subsidiary_protection", issued=at("2026-07-20"), by=bruno)
    again = w.decide(c2, outcome="rejected_unfounded", issued=at("2026-07-25"), by=bruno, corrects=original)
    w.decide(c2, outcome="refugee_status", issued=at("2026-07-30"), by=bruno, corrects=again)
    c3 = w.case(track="accelerated", status="decision_issued", registered="2026-06-01", deadline="2026-09-01",
                nationality="VEN", persons=[(("VEN",), "F", "Y35-64")])
    rejected = w.decide(c3, outcome="rejected_unfounded", issued=at("2026-08-12"), by=bruno)
    w.decide(c3, outcome="humanitarian_status", issued=at("2026-08-20"), by=alice, corrects=rejected)
    c4 = w.case(track="accelerated", status="closed", registered="2026-05-01", nationality="VEN",
                persons=[(("VEN",), "M", "Y18-34")])
    w.decide(c4, outcome="inadmissible", issued=at("2026-08-26", 23, 30), by=alice)
    c5 = w.case(track="border", status="decision_issued", registered="2026-07-01", deadline="2026-08-15",
                nationality="GIN", persons=[(("GIN",), "M", "Y14-17")])
    w.decide(c5, outcome="implicit_withdrawal", issued=at("2026-08-15"), by=alice)
    c6 = w.case(status="decision_issued", registered="2026-02-01", persons=[syr_man])
    w.decide(c6, outcome="refugee_status", issued=at("2026-07-05", 23, 59), by=alice)
    c7 = w.case(status="decision_issued", registered="2026-01-20", nationality="ERI",
                persons=[(("ERI",), "F", "Y18-34")])
    w.decide(c7, outcome="rejected_unfounded", issued=at("2026-06-15"), by=bruno)
    w.decide(c7, outcome="refugee_status", issued=at("2026-08-05"), by=bruno, round_=2)
    w.case(status="withdrawn", registered="2026-07-08", made="2026-07-07", updated=at("2026-08-04"),
           persons=[((), "X", "UNK")])

    w.case(office=other_office, registered="2026-08-10", persons=[syr_man])
    n2 = w.case(office=other_office, status="decision_issued", registered="2026-04-01", persons=[syr_man])
    w.decide(n2, outcome="refugee_status", issued=at("2026-08-10"), by=alice)
    db.session.commit()
    return w


def hq(office, **kwargs) -> ReportFilters:
    return ReportFilters(date_from=PERIOD[0], date_to=PERIOD[1], as_of=AS_OF, office_id=office.id, **kwargs)


def pdf_text(content: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def as_tuples(rows) -> list[tuple]:
    return [tuple(vars(r).values()) for r in rows]


# -- snapshots ------------------------------------------------------------------------------------

def test_backlog_counts_pending_cases_per_track_and_status(world, office):
    """Pending cases only (not decided, closed, withdrawn or in appeal), of the office, per track and status."""
    assert as_tuples(queries.backlog(hq(office))) == [
        ("accelerated", "assigned", 1), ("accelerated", "registered", 1), ("border", "under_review", 1),
        ("regular", "assigned", 1), ("regular", "interviewed", 1), ("regular", "registered", 2)]


def test_ageing_buckets_by_calendar_months_from_registration(world, office):
    """Exactly one month old falls in 1-3 months, exactly twelve in over 12 months."""
    assert as_tuples(queries.ageing(hq(office))) == [
        ("accelerated", "6to12", 1), ("accelerated", "gt12", 1), ("border", "lt1", 1),
        ("regular", "lt1", 2), ("regular", "1to3", 1), ("regular", "3to6", 1)]


def test_deadlines_due_within_14_days_inclusive_and_overdue(world, office):
    """Due soon is as_of..as_of+14 inclusive (09-16 yes, 09-17 no); overdue is before as_of."""
    assert as_tuples(queries.deadlines(hq(office))) == [("accelerated", 1, 0), ("regular", 1, 1)]


# -- flows ------------------------------------------------------------------------------------------

def test_weekly_inflow_and_outflow_fill_every_iso_week(world, office):
    """Registrations per ISO week (a Sunday belongs to the week of the Monday before), original
    decisions issued (corrections and drafts excluded, the period's edges by UTC day), cases
    closed by their first decision or by withdrawal."""
    flow = queries.weekly_flow(hq(office))
    assert [r.week_start for r in flow] == WEEKS
    assert [r.iso_week for r in flow] == [f"2026-W{n}" for n in range(28, 36)]
    assert [r.registered for r in flow] == [1, 0, 0, 1, 0, 0, 2, 1]
    assert [r.decisions_issued for r in flow] == [2, 0, 1, 0, 1, 2, 0, 1]
    assert [r.cases_closed for r in flow] == [1, 0, 1, 0, 1, 2, 0, 1]


def test_late_registrations_count_and_share_per_week(world, office):
    """Late registrations (more than 5 days after the claim was made) per week and their share."""
    rows = queries.late_registrations(hq(office))
    assert [(r.registered, r.late) for r in rows] == [(1, 0), (0, 0), (0, 0), (1, 0), (0, 0), (0, 0), (2, 1), (1, 1)]
    assert [r.share_pct for r in rows] == [0.0, None, None, 0.0, None, None, 50.0, 100.0]


# -- time to decision and limits ---------------------------------------------------------------------

def test_time_to_decision_median_and_p90_per_track(world, office):
    """Days from registration to issue, first round only: regular [127, 127, 196] -> median 127,
    p90 127 + 0.8 * 69 = 182.2; accelerated [72, 117] -> 94.5 and 112.5; border [45]."""
    rows = {r.track: r for r in queries.decision_times(hq(office))}
    assert set(rows) == {"accelerated", "border", "regular"}
    assert (rows["regular"].decisions, rows["regular"].median_days) == (3, 127.0)
    assert rows["regular"].p90_days == pytest.approx(182.2)
    assert (rows["accelerated"].decisions, rows["accelerated"].median_days) == (2, 94.5)
    assert rows["accelerated"].p90_days == pytest.approx(112.5)
    assert (rows["border"].decisions, rows["border"].median_days, rows["border"].p90_days) == (1, 45.0, 45.0)


def test_both_percentile_formulations_agree_on_this_database(world, office, staff, make_user):
    """percentile_cont (PostgreSQL) and the ROW_NUMBER/COUNT window formulation give the same
    median and p90 over ten values: 1..9 and 100 -> 5.5 and 9 + 0.1 * 91 = 18.1."""
    alice = staff[0]
    for days in (*range(1, 10), 100):
        case = world.case(track="prioritised", status="decision_issued", registered="2026-07-01",
                          persons=[(("SYR",), "M", "Y18-34")])
        world.decide(case, outcome="refugee_status", issued=at(f"2026-07-{1 + days:02d}") if days < 30
                     else at("2026-10-09"), by=alice)
    db.session.commit()
    wide = ReportFilters(date_from=date(2026, 7, 1), date_to=date(2026, 10, 31), as_of=AS_OF, office_id=office.id,
                         track="prioritised")
    implementations = ["window"] + (["percentile_cont"] if db.engine.dialect.name == "postgresql" else [])
    for implementation in implementations:
        [row] = queries.decision_times(wide, implementation=implementation)
        assert row.decisions == 10
        assert row.median_days == pytest.approx(5.5)
        assert row.p90_days == pytest.approx(18.1)


def test_share_within_statutory_limit_per_track(world, office):
    """Issued on or before the case's deadline; cases without a deadline are counted apart."""
    assert as_tuples(queries.within_limit(hq(office))) == [
        ("accelerated", 2, 1, 1, 100.0), ("border", 1, 1, 1, 100.0), ("regular", 3, 3, 2, pytest.approx(66.6667))]


# -- caseworkers ------------------------------------------------------------------------------------

def test_workload_and_throughput_per_caseworker(world, office, staff):
    """Open assigned (and overdue) per caseworker, decisions drafted and issued in the period
    (8 weeks: per week = n * 7 / 56), and decisions per ISO week; corrections do not count."""
    rows = {r.caseworker: r for r in queries.workload(hq(office))}
    assert set(rows) == {"Alice Worker", "Bruno Worker"}
    assert (rows["Alice Worker"].open_assigned, rows["Alice Worker"].overdue,
            rows["Alice Worker"].decisions_issued, rows["Alice Worker"].per_week) == (2, 1, 4, 0.5)
    assert (rows["Bruno Worker"].open_assigned, rows["Bruno Worker"].overdue,
            rows["Bruno Worker"].decisions_issued) == (2, 0, 3)
    assert rows["Bruno Worker"].per_week == 0.375
    assert as_tuples(queries.throughput(hq(office))) == [
        ("Alice Worker", date(2026, 7, 6), 2), ("Alice Worker", date(2026, 8, 10), 1),
        ("Alice Worker", date(2026, 8, 24), 1),
        ("Bruno Worker", date(2026, 7, 20), 1), ("Bruno Worker", date(2026, 8, 3), 1),
        ("Bruno Worker", date(2026, 8, 10), 1)]


# -- outcomes ---------------------------------------------------------------------------------------

def test_recognition_rate_by_nationality_counts_the_latest_correction(world, office):
    """Refugee + subsidiary over all decisions; humanitarian apart; implicit withdrawal is
    'other', outside the rate; C2's chain of corrections ends on refugee, C3's on humanitarian."""
    assert as_tuples(queries.recognition(hq(office))) == [
        ("SYR", 2, 2, 0, 0, 0, 0, 100.0, 0.0),
        ("VEN", 2, 0, 0, 1, 1, 0, 0.0, 50.0),
        ("AFG", 1, 1, 0, 0, 0, 0, 100.0, 0.0),
        ("ERI", 1, 1, 0, 0, 0, 0, 100.0, 0.0),
        ("GIN", 0, 0, 0, 0, 0, 1, None, None)]


def test_eurostat_applicants_by_month_citizenship_sex_age_first_time_and_subsequent(world, office):
    """Every person of the cases registered in the period; stateless is STLS, none known is UNK."""
    assert as_tuples(queries.eurostat_applicants(hq(office))) == [
        ("2026-07", "UNK", "X", "UNK", 1, 1, 0),
        ("2026-08", "AFG", "F", "Y35-64", 1, 1, 0),
        ("2026-08", "AFG", "M", "Y_LT14", 1, 1, 0),
        ("2026-08", "STLS", "M", "Y18-34", 1, 1, 0),
        ("2026-08", "SYR", "M", "Y18-34", 2, 1, 1)]


def test_eurostat_decisions_by_quarter_and_outcome(world, office):
    """Decisions on the merits or admissibility only (no implicit withdrawal), latest correction."""
    assert as_tuples(queries.eurostat_decisions(hq(office))) == [
        ("2026-Q3", "AFG", "M", "Y18-34", 1, 1, 1, 0, 0, 0),
        ("2026-Q3", "ERI", "F", "Y18-34", 1, 1, 1, 0, 0, 0),
        ("2026-Q3", "SYR", "F", "Y_LT14", 1, 1, 1, 0, 0, 0),
        ("2026-Q3", "SYR", "M", "Y18-34", 1, 1, 1, 0, 0, 0),
        ("2026-Q3", "VEN", "F", "Y35-64", 1, 1, 0, 0, 1, 0),
        ("2026-Q3", "VEN", "M", "Y18-34", 1, 0, 0, 0, 0, 1)]


# -- filters -----------------------------------------------------------------------------------------

def test_filters_by_track_nationality_and_office(world, office, other_office):
    """A track keeps its rows only; a nationality filters case tables by the principal's and person
    tables by the person's citizenship; another office sees only its own cases."""
    assert as_tuples(queries.backlog(hq(office, track="accelerated"))) == [
        ("accelerated", "assigned", 1), ("accelerated", "registered", 1)]
    venezuela = hq(office, nationality="VEN")
    assert [(r.track, r.decisions) for r in queries.decision_times(venezuela)] == [("accelerated", 2)]
    assert [r.nationality for r in queries.recognition(venezuela)] == ["VEN"]
    assert [r.citizen for r in queries.eurostat_applicants(hq(office, nationality="AFG"))] == ["AFG", "AFG"]
    north = hq(other_office)
    assert as_tuples(queries.backlog(north)) == [("regular", "registered", 1)]
    assert as_tuples(queries.recognition(north)) == [("SYR", 1, 1, 0, 0, 0, 0, 100.0, 0.0)]
    assert sum(r.decisions_issued for r in queries.weekly_flow(north)) == 1
    # Alice is not of that office, but drafted one of its decisions: listed there with that work only.
    assert as_tuples(queries.workload(north)) == [("Alice Worker", 0, 0, 1, 0.125)]
    assert as_tuples(queries.throughput(north)) == [("Alice Worker", date(2026, 8, 10), 1)]


def test_an_offices_decisions_are_found_without_reading_its_cases(world, office):
    """Decisions carry their case's office (migration 0010): throughput and the outcome counts of
    an office read the decision index alone, and join the cases only for a filter on the case's
    track or nationality, with the same rows as before."""
    from tests.conftest import captured_statements

    for report in (queries.throughput, queries.recognition):
        with captured_statements() as plain:
            report(hq(office))
        with captured_statements() as by_track:
            narrowed = report(hq(office, track="regular"))
        assert not any("asylum_case" in s for s in plain), report.__name__
        assert any("asylum_case" in s for s in by_track), report.__name__
        assert narrowed and len(narrowed) <= len(report(hq(office)))


def test_reports_are_read_only_and_carry_no_identifiers(world, office):
    """No row of any report holds a reference, a name of a claimant or a row id."""
    dashboard = queries.dashboard(hq(office))
    text = (repr(dashboard) + repr(queries.eurostat_applicants(hq(office)))
            + repr(queries.eurostat_decisions(hq(office))))
    assert CANARY_REFERENCE not in text and CANARY_FAMILY not in text and CANARY_GIVEN not in text
    ids = db.session.scalars(select(Case.id)).all() + db.session.scalars(select(Person.id)).all()
    assert not any(i in text for i in ids)
    assert not db.session.new and not db.session.dirty


# -- exports ------------------------------------------------------------------------------------------

def test_csv_cells_that_could_be_formulas_are_neutralised():
    """Cells starting with = + - @ tab or CR get a leading quote; numbers stay numbers."""
    content = exports.to_csv(["a", "b"], [["=HYPERLINK(\"x\")", "+1"], ["-2+3", "@SUM(A1)"], ["\tx", "\rx"],
                                          [-5, 2.5], ["safe", None]])
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert rows == [["a", "b"], ["'=HYPERLINK(\"x\")", "'+1"], ["'-2+3", "'@SUM(A1)"], ["'\tx", "'\rx"],
                    ["-5", "2.5"], ["safe", ""]]


def test_every_export_is_audited_with_report_and_filters(world, office, make_user):
    """The export service records REPORT_EXPORTED (report, format, filters) and commits; the files
    hold no claimant name or reference."""
    supervisor = make_user("supervisor", username="sup")
    f = hq(office)
    made = [services.export_report(kind, f, acting_user=supervisor) for kind in services.EXPORTS]
    db.session.rollback()
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.code == int(EventCode.REPORT_EXPORTED))
                                .order_by(AuditEvent.id)).all()
    assert [e.details["report"] for e in events] == list(services.EXPORTS)
    assert all(e.actor_id == supervisor.id and e.details["filters"] == f.as_dict() for e in events)
    for export in made:
        assert CANARY_REFERENCE not in export.filename and CANARY_FAMILY not in export.filename
        body = pdf_text(export.content) if export.mimetype == "application/pdf" else export.content.decode()
        assert CANARY_FAMILY not in body and CANARY_GIVEN not in body and CANARY_REFERENCE not in body
    eurostat = next(e for e in made if e.report == "eurostat_applicants").content.decode("utf-8-sig")
    assert "2026-08,SY,SYR,M,Y18-34,2,1,1" in eurostat.replace("\r\n", "\n")


def test_migration_freezes_the_current_pending_statuses():
    """Migration 0007 built ix_asylum_case_pending_report on a frozen copy of the pending rule:
    a change of NOT_PENDING_STATUSES needs a migration rebuilding it (this test says when)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0007_reports.py"
    spec = importlib.util.spec_from_file_location("migration_0007", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.NOT_PENDING_STATUSES == queries.NOT_PENDING_STATUSES


@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"),
                    reason="PostgreSQL's isolation levels (SQLite: one deferred transaction, tested below)")
def test_the_dashboards_sections_read_one_postgresql_snapshot(world, office):
    """On PostgreSQL the sections run in one REPEATABLE READ READ ONLY transaction: a decision
    committed by another connection between two sections is seen by neither."""
    from sqlalchemy import text

    with queries.read_only_snapshot():
        connection = queries._snapshot.get()
        assert connection.execute(text("SHOW transaction_isolation")).scalar() == "repeatable read"
        assert connection.execute(text("SHOW transaction_read_only")).scalar() == "on"
        before = queries.workload(hq(office))
        with db.engine.begin() as other:  # another connection commits a decision drafted by Alice
            other.execute(text("INSERT INTO decision (id, case_id, person_id, office_id, round, status, outcome, "
                               "legal_basis, drafted_by_id, last_edited_by_id, issued_at, procedure_track, "
                               "created_at, updated_at, version) SELECT 'late-decision', case_id, person_id, "
                               "office_id, 1, 'issued', outcome, legal_basis, drafted_by_id, last_edited_by_id, "
                               "issued_at, procedure_track, created_at, updated_at, 1 FROM decision "
                               "WHERE status = 'issued' AND corrects_decision_id IS NULL AND office_id = :office "
                               "ORDER BY issued_at DESC LIMIT 1"), {"office": office.id})
        assert queries.workload(hq(office)) == before
    after = {r.caseworker: r.decisions_issued for r in queries.workload(hq(office))}
    assert sum(after.values()) == sum(r.decisions_issued for r in before) + 1


@pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")),
                    reason="SQLite's write lock; PostgreSQL readers never wait for writers")
def test_the_dashboard_reads_while_another_connection_holds_the_write_lock(world, office):
    """On SQLite the dashboard runs in one deferred (read-only) transaction: it answers, with the
    same figures, while another connection holds BEGIN IMMEDIATE, instead of queueing behind it
    for the write lock until the busy timeout."""
    expected = queries.dashboard(hq(office)).backlog
    db.session.remove()
    with db.engine.connect() as writer:  # app/database.py: BEGIN IMMEDIATE, the write lock
        writer.execute(select(Case.id).limit(1)).all()
        assert queries.dashboard(hq(office)).backlog == expected
