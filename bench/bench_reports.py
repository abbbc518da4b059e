"""W6, W7, W8: supervisor reports at scale (PERFORMANCE.md).

Generates a realistic caseload with bulk inserts (executemany on SQLite, COPY on PostgreSQL):
N cases over three years in four offices of unequal size, 400 caseworkers, one to five people a
case (ages, sexes and nationality shares after shared/domain/STATISTICS.md), first-instance
decisions for the cases whose processing time (log-normal per track) has elapsed, outcomes after
each nationality's recognition rate (Venezuelans mostly humanitarian), a few corrections,
withdrawals and late registrations. Then, for the largest office over the last 26 weeks, times in
the same run and on the same data:

* W6 backlog report (track x status, track x age): ``queries.backlog`` + ``queries.ageing``
  against the same aggregates written as raw SQL;
* W7 efficiency report (decisions per caseworker per ISO week; median and p90 days to decision
  per track): ``queries.throughput`` + ``queries.decision_times`` against raw SQL (percentile_cont
  on PostgreSQL, the ROW_NUMBER/COUNT window formulation on SQLite);
* W8 supervisor PDF: the export path (summary: every dashboard query, charts, template,
  WeasyPrint; listing: its queries, template, WeasyPrint) against WeasyPrint alone on the same
  HTML; the rendering path alone (charts + template + WeasyPrint from rows already fetched) is
  shown too, and listing pages per second.

Prints a table: workload, figure, baseline, ratio, target, pass/fail. Each figure and its
baseline are the best of --repeat runs taken in alternation (ours, baseline, ours, ...), so that
both meet the same load on a shared machine; W6 and W7, a few milliseconds each, take at least
W6_REPEAT and W7_REPEAT runs (best of 3 at that size measured the machine, not the query).
A report, never a test: machines are noisy.

    .venv/bin/python bench/bench_reports.py [--cases 100000] [--database URL] [--repeat 5] [--reuse]

--database defaults to a SQLite file in /tmp. A PostgreSQL URL must name a scratch database whose
name starts with ``nansen_bench`` (its public schema is dropped and rebuilt), e.g.
postgresql+psycopg://postgres@127.0.0.1:5432/nansen_bench_reports (created when missing).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

DEFAULT_SQLITE = "sqlite:////tmp/nansen-bench-reports.db"
BATCH = 20_000
NO_LOGIN = "!"  # not an Argon2 hash: nobody signs in to these generated accounts
OFFICES = [("CAP", "Capital office", 55), ("NOR", "Northern office", 20), ("SOU", "Southern office", 15),
           ("AIR", "Airport office", 10)]
CASEWORKERS = 400
# Share of applications and EU recognition rate (refugee + subsidiary, %), as bench_triage.py.
NATIONALITIES = [
    ("SYR", 16, 90.0), ("VEN", 8, 4.0), ("AFG", 8, 63.0), ("TUR", 6, 15.0), ("COL", 5, 6.0),
    ("BGD", 4, 3.0), ("PAK", 4, 12.0), ("GIN", 3, 30.0), ("SDN", 3, 70.0), ("UKR", 2, 80.0),
    ("EGY", 3, 5.0), ("MAR", 3, 3.0), ("IRQ", 4, 35.0), ("NGA", 3, 10.0), ("SOM", 3, 55.0),
    ("ERI", 2, 75.0), ("IRN", 3, 40.0), ("GEO", 2, 4.0), ("PER", 3, 8.0), ("TUN", 2, 2.0),
]
# track: share %, statutory limit (days), median processing (days)
TRACKS = {"regular": (45, 183, 200), "regular_prioritised": (15, 183, 120), "accelerated": (18, 91, 70),
          "border": (7, 84, 45), "border_optional": (2, 84, 50), "inadmissibility": (5, 61, 55),
          "responsibility": (5, 61, 60), "implicit_withdrawal": (3, None, 30)}
PENDING = [("registered", 15), ("triaged", 15), ("assigned", 35), ("interview_scheduled", 12),
           ("interviewed", 10), ("decision_drafted", 7), ("under_review", 6)]
DECIDED = [("decision_issued", 20), ("notified", 35), ("closed", 35), ("appeal_lodged", 8), ("appeal_decided", 2)]
REJECTIONS = [("rejected_unfounded", 60), ("rejected_manifestly_unfounded", 25), ("inadmissible", 15)]
CLOSED = ("decision_issued", "notified", "closed", "withdrawn", "implicitly_withdrawn", "transferred")
NOT_PENDING = tuple(sorted(set(CLOSED) | {"appeal_lodged", "appeal_decided"}))

W6_TARGET, W7_TARGET, W8_TARGET = 2.0, 2.0, 1.25
W6_ABS = {"postgresql": 1.0, "sqlite": 2.5}
W7_ABS = {"postgresql": 1.5, "sqlite": None}
W8_SUMMARY_S, W8_LISTING_PAGES_S = 1.0, 5.0
W6_REPEAT, W7_REPEAT = 30, 7  # runs at least (see the module docstring)


# -- database --------------------------------------------------------------------------------------

def prepare_database(url: str, reuse: bool) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database)
        if not reuse:
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        return
    if not (parsed.database or "").startswith("nansen_bench"):
        sys.exit("refusing: a PostgreSQL benchmark database must be named nansen_bench*")
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}):
            conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()
    if not reuse:
        engine = create_engine(parsed)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()


def build_app(url: str):
    from app import create_app
    from config import TestingConfig

    checkpoints = Path(tempfile.gettempdir()) / "nansen-bench-checkpoints"
    config = type("BenchConfig", (TestingConfig,), {"SQLALCHEMY_DATABASE_URI": url,
                                                    "AUDIT_CHECKPOINT_DIR": str(checkpoints)})
    return create_app(config)


# -- generation ------------------------------------------------------------------------------------

def _weighted(rng: random.Random, pairs):
    values, weights = zip(*pairs, strict=True)
    cumulative, total = [], 0
    for w in weights:
        total += w
        cumulative.append(total)
    return lambda: values[_bisect(cumulative, rng.random() * total)]


def _bisect(cumulative, x):
    lo, hi = 0, len(cumulative) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cumulative[mid] > x:
            hi = mid
        else:
            lo = mid + 1
    return lo


class Generator:
    """Rows as tuples, in the column order of ``*_COLUMNS``."""

    CASE_COLUMNS = ("id", "reference", "office_id", "status", "made_on", "registered_on",
                    "good_cause_for_not_lodging", "received_by_id", "location_context", "presented_without_delay",
                    "principal_nationality", "registration_delay_days", "late_registration",
                    "is_subsequent_application", "created_at", "updated_at", "version", "track", "track_overridden",
                    "statutory_deadline", "priority", "assigned_to_id")
    PERSON_COLUMNS = ("id", "case_id", "position", "is_principal", "nationalities", "stateless", "stat_sex",
                      "stat_age_group", "minor_at_application", "created_at", "version")
    DECISION_COLUMNS = ("id", "case_id", "person_id", "office_id", "round", "status", "outcome", "legal_basis",
                        "drafted_by_id", "last_edited_by_id", "issued_by_id", "issued_at", "procedure_track",
                        "created_at", "updated_at", "version", "corrects_decision_id")

    def __init__(self, seed: int, today: date, offices: list[tuple[int, int]], staff: dict[int, list[int]],
                 registrars: dict[int, int]):
        self.rng = random.Random(seed)
        self.today = today
        self.office = _weighted(self.rng, offices)
        self.staff, self.registrars = staff, registrars
        self.nationality = _weighted(self.rng, [(code, share) for code, share, _ in NATIONALITIES])
        self.rates = {code: rate / 100 for code, _, rate in NATIONALITIES}
        self.track = _weighted(self.rng, [(t, share) for t, (share, _, _) in TRACKS.items()])
        self.pending_status = _weighted(self.rng, PENDING)
        self.decided_status = _weighted(self.rng, DECIDED)
        self.rejection = _weighted(self.rng, REJECTIONS)
        self.n = 0

    def _id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def _people(self, case_id: str, nationality: str, stamp: datetime):
        rng = self.rng
        size = 1 if rng.random() < 0.7 else rng.randint(2, 5)
        stateless = rng.random() < 0.01
        people = []
        for position in range(size):
            if position == 0:
                sex = "M" if rng.random() < 0.7 else "F"
                age = rng.choices(["Y18-34", "Y35-64", "Y_GE65", "Y14-17", "UNK"], [60, 30, 2, 6, 2])[0]
            elif position == 1 and rng.random() < 0.6:
                sex = "F" if rng.random() < 0.8 else "M"
                age = rng.choices(["Y18-34", "Y35-64"], [60, 40])[0]
            else:
                sex = rng.choice("MF")
                age = rng.choices(["Y_LT14", "Y14-17"], [75, 25])[0]
            if rng.random() < 0.002:
                sex = "X"
            people.append((self._id(), case_id, position, position == 0, json.dumps([] if stateless else [nationality]),
                           stateless, sex, age, age in ("Y_LT14", "Y14-17"), stamp, 1))
        return people

    def _outcome(self, nationality: str) -> str:
        rng = self.rng
        rate = self.rates[nationality]
        x = rng.random()
        if x < rate * 0.52:
            return "refugee_status"
        if x < rate:
            return "subsidiary_protection"
        humanitarian = 0.85 if nationality == "VEN" else 0.05
        if rng.random() < humanitarian:
            return "humanitarian_status"
        return self.rejection()

    def batch(self, size: int):
        """(cases, people, decisions) for ``size`` more cases."""
        rng, today = self.rng, self.today
        cases, people, decisions = [], [], []
        for _ in range(size):
            self.n += 1
            office = self.office()
            # Three years of registrations, growing: more recent days are likelier.
            age_days = int(1095 * (1 - math.sqrt(rng.random())))
            registered = today - timedelta(days=age_days)
            late = rng.random() < 0.08
            delay = rng.randint(6, 40) if late else rng.choice((0, 0, 0, 1, 1, 2, 3, 5))
            made = registered - timedelta(days=delay)
            nationality = self.nationality()
            track = self.track()
            _share, limit, median = TRACKS[track]
            deadline = registered + timedelta(days=limit) if limit else None
            processing = max(1, int(rng.lognormvariate(math.log(median), 0.6)))
            case_id = self._id()
            stamp = datetime.combine(registered, datetime.min.time(), UTC) + timedelta(hours=9)
            updated = stamp
            assigned = None
            persons = self._people(case_id, nationality, stamp)
            if rng.random() < 0.04 and age_days > 30:
                status = rng.choice(("withdrawn", "implicitly_withdrawn", "transferred"))
                updated = stamp + timedelta(days=rng.randint(10, max(11, min(age_days, 300))))
            elif processing <= age_days:
                status = self.decided_status()
                issued = stamp + timedelta(days=processing, hours=rng.randint(0, 8), minutes=rng.randint(0, 59))
                updated = issued
                assigned = rng.choice(self.staff[office])
                for person in persons:
                    decision_id = self._id()
                    outcome = self._outcome(nationality)
                    decisions.append((decision_id, case_id, person[0], office, 1, "issued", outcome, "[]", assigned,
                                      assigned, assigned, issued, track, issued, issued, 1, None))
                    if rng.random() < 0.005:  # a correction, a week later
                        fixed = issued + timedelta(days=7)
                        decisions.append((self._id(), case_id, person[0], office, 1, "issued",
                                          self._outcome(nationality), "[]", assigned, assigned, assigned, fixed,
                                          track, fixed, fixed, 1, decision_id))
            else:
                status = self.pending_status()
                if status not in ("registered", "triaged"):
                    assigned = rng.choice(self.staff[office])
            cases.append((case_id, f"B{self.n:011d}", office, status, made, registered, False,
                          self.registrars[office], "inland", True, nationality, delay, delay > 5,
                          rng.random() < 0.08, stamp, updated, 1, track, False, deadline, 0, assigned))
            people.extend(persons)
        return cases, people, decisions


def generate(app, n_cases: int, seed: int, today: date) -> dict[str, int]:
    from flask_migrate import upgrade

    from app import enable_migrations
    from app.admin.services import initialise_keys
    from app.auth.models import Office, User
    from app.extensions import db

    enable_migrations(app)
    with app.app_context():
        upgrade()
        initialise_keys()
        offices, staff, registrars = [], {}, {}
        per_office = _split(CASEWORKERS, [share for _code, _name, share in OFFICES])
        for (code, name, share), workers in zip(OFFICES, per_office, strict=True):
            office = Office(code=code, name=name)
            db.session.add(office)
            db.session.flush()
            offices.append((office.id, share))
            registrar = User(username=f"reg-{code.lower()}", full_name=f"Registrar {code}", role="registration_officer",
                             office_id=office.id, password_hash=NO_LOGIN)
            db.session.add(registrar)
            db.session.add(User(username=f"sup-{code.lower()}", full_name=f"Supervisor {code}", role="supervisor",
                                office_id=office.id, password_hash=NO_LOGIN))
            users = [User(username=f"cw-{code.lower()}-{i}", full_name=f"Caseworker {code} {i:03d}", role="caseworker",
                          office_id=office.id, password_hash=NO_LOGIN) for i in range(workers)]
            db.session.add_all(users)
            db.session.flush()
            staff[office.id] = [u.id for u in users]
            registrars[office.id] = registrar.id
        db.session.commit()
        generator = Generator(seed, today, offices, staff, registrars)
        counts = {"cases": 0, "people": 0, "decisions": 0}
        engine = db.engine
        raw = engine.raw_connection()
        try:
            pg = engine.dialect.name == "postgresql"
            if not pg:
                raw.execute("PRAGMA synchronous=OFF")
            done = 0
            while done < n_cases:
                size = min(BATCH, n_cases - done)
                cases, people, decisions = generator.batch(size)
                _load(raw, pg, "asylum_case", Generator.CASE_COLUMNS, cases)
                _load(raw, pg, "person", Generator.PERSON_COLUMNS, people)
                _load(raw, pg, "decision", Generator.DECISION_COLUMNS, decisions)
                raw.commit()
                done += size
                counts["cases"] += len(cases)
                counts["people"] += len(people)
                counts["decisions"] += len(decisions)
            cursor = raw.cursor()
            cursor.execute("ANALYZE")
            raw.commit()
        finally:
            raw.close()
        return counts


def _split(total: int, shares: list[int]) -> list[int]:
    out = [total * s // sum(shares) for s in shares]
    out[0] += total - sum(out)
    return out


def _sqlite_value(value):
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def _load(raw, pg: bool, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    if not rows:
        return
    cursor = raw.cursor()
    if pg:
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                       [tuple(_sqlite_value(v) for v in row) for row in rows])


# -- raw SQL baselines -----------------------------------------------------------------------------

def _months_before(day: date, months: int) -> date:
    from app.reports.queries import _months_before as helper

    return helper(day, months)


def raw_w6(conn, f, pg: bool):
    closed = ", ".join(f"'{s}'" for s in NOT_PENDING)
    m1, m3, m6, m12 = (_months_before(f.as_of, n).isoformat() for n in (1, 3, 6, 12))
    p = "%(office)s" if pg else ":office"
    params = {"office": f.office_id}
    sql1 = (f"SELECT track, status, count(*) FROM asylum_case WHERE office_id = {p} AND status NOT IN ({closed}) "
            "GROUP BY track, status ORDER BY track, status")
    sql2 = (f"SELECT track, CASE WHEN registered_on > '{m1}' THEN 0 WHEN registered_on > '{m3}' THEN 1 "
            f"WHEN registered_on > '{m6}' THEN 2 WHEN registered_on > '{m12}' THEN 3 ELSE 4 END AS bucket, count(*) "
            f"FROM asylum_case WHERE office_id = {p} AND status NOT IN ({closed}) GROUP BY 1, 2 ORDER BY 1, 2")
    return (_fetch(conn, sql1, params, pg), _fetch(conn, sql2, params, pg))


def raw_w7(conn, f, pg: bool):
    p = (lambda name: f"%({name})s") if pg else (lambda name: f":{name}")
    params = {"office": f.office_id, "start": f.start, "end": f.end}
    if not pg:
        params = {**params, "start": f.start.replace(tzinfo=None).isoformat(sep=" "),
                  "end": f.end.replace(tzinfo=None).isoformat(sep=" ")}
    where = (f"d.status = 'issued' AND d.corrects_decision_id IS NULL AND d.issued_at >= {p('start')} "
             f"AND d.issued_at < {p('end')} AND c.office_id = {p('office')}")
    if pg:
        day = "(d.issued_at AT TIME ZONE 'UTC')::date"
        week = f"({day} - (extract(isodow FROM {day})::int - 1))"
        days = "((d.issued_at AT TIME ZONE 'UTC')::date - c.registered_on)"
        percentiles = (f"SELECT coalesce(d.procedure_track, c.track) AS track, count(*), "
                       f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {days}), "
                       f"percentile_cont(0.9) WITHIN GROUP (ORDER BY {days}) "
                       f"FROM decision d JOIN asylum_case c ON c.id = d.case_id WHERE {where} AND d.round = 1 "
                       "GROUP BY 1 ORDER BY 1")
    else:
        week = "date(d.issued_at, 'weekday 0', '-6 days')"
        days = "CAST(julianday(date(d.issued_at)) - julianday(c.registered_on) AS INTEGER)"
        percentiles = (
            "WITH base AS (SELECT coalesce(d.procedure_track, c.track) AS track, " + days + " AS v "
            f"FROM decision d JOIN asylum_case c ON c.id = d.case_id WHERE {where} AND d.round = 1), "
            "ranked AS (SELECT track, v, row_number() OVER (PARTITION BY track ORDER BY v) AS rn, "
            "count(*) OVER (PARTITION BY track) AS n FROM base), "
            "picked AS (SELECT track, max(n) AS n, "
            "max(CASE WHEN rn - 1 = CAST((n - 1) * 0.5 AS INTEGER) THEN v END) AS lo50, "
            "max(CASE WHEN rn - 1 = CAST((n - 1) * 0.5 AS INTEGER) + ((n - 1) * 0.5 > CAST((n - 1) * 0.5 AS INTEGER)) "
            "THEN v END) AS hi50, "
            "max(CASE WHEN rn - 1 = CAST((n - 1) * 0.9 AS INTEGER) THEN v END) AS lo90, "
            "max(CASE WHEN rn - 1 = CAST((n - 1) * 0.9 AS INTEGER) + ((n - 1) * 0.9 > CAST((n - 1) * 0.9 AS INTEGER)) "
            "THEN v END) AS hi90 FROM ranked GROUP BY track) "
            "SELECT track, n, lo50 + ((n - 1) * 0.5 - CAST((n - 1) * 0.5 AS INTEGER)) * (hi50 - lo50), "
            "lo90 + ((n - 1) * 0.9 - CAST((n - 1) * 0.9 AS INTEGER)) * (hi90 - lo90) FROM picked ORDER BY track")
    throughput = (f"SELECT u.full_name, t.week, t.n FROM (SELECT d.drafted_by_id AS uid, {week} AS week, count(*) AS n "
                  f"FROM decision d JOIN asylum_case c ON c.id = d.case_id WHERE {where} GROUP BY 1, 2) t "
                  "JOIN user_account u ON u.id = t.uid ORDER BY u.full_name, u.id, t.week")
    return (_fetch(conn, throughput, params, pg), _fetch(conn, percentiles, params, pg))


def _fetch(conn, sql: str, params: dict, pg: bool):
    if pg:
        return conn.exec_driver_sql(sql, params).all()
    return conn.execute(text(sql), params).all()


# -- timing ----------------------------------------------------------------------------------------

def timed(fn, repeat: int) -> tuple[float, object]:
    """Best of ``repeat`` wall-clock runs (the least disturbed by other load on the machine)."""
    (best, result), = alternated([fn], repeat)
    return best, result


def alternated(fns, repeat: int) -> list[tuple[float, object]]:
    """(best wall-clock time, last result) of each of ``fns``, over ``repeat`` rounds that run
    each once in turn: a burst of load elsewhere then slows all of them, not only one."""
    best, results = [float("inf")] * len(fns), [None] * len(fns)
    for _ in range(repeat):
        for index, fn in enumerate(fns):
            start = time.perf_counter()
            results[index] = fn()
            best[index] = min(best[index], time.perf_counter() - start)
    return list(zip(best, results, strict=True))


def run(app, repeat: int, today: date) -> list[tuple]:
    from weasyprint import HTML

    from app.extensions import db
    from app.reports import exports, figures, queries, services
    from app.reports.forms import default_period

    rows = []
    with app.test_request_context("/reports/"):
        pg = db.engine.dialect.name == "postgresql"
        dialect = "postgresql" if pg else "sqlite"
        office_id = db.session.execute(text("SELECT id FROM office ORDER BY id LIMIT 1")).scalar()
        start, end = default_period(today)
        f = queries.ReportFilters(date_from=start, date_to=end, as_of=today, office_id=office_id)
        conn = db.session.connection()
        pending = db.session.execute(text(
            f"SELECT count(*) FROM asylum_case WHERE office_id = :o AND status NOT IN "
            f"({', '.join(repr(s) for s in NOT_PENDING)})"), {"o": office_id}).scalar()
        office_cases = db.session.execute(text("SELECT count(*) FROM asylum_case WHERE office_id = :o"),
                                          {"o": office_id}).scalar()
        print(f"report scope: office 1 ({office_cases:,} cases, {pending:,} pending), {start} to {end}")

        # W6
        timed(lambda: (queries.backlog(f), queries.ageing(f)), 1)  # warm caches (both sides read the same pages)
        (baseline, raw), (figure, ours) = alternated(
            [lambda: raw_w6(conn, f, pg), lambda: (queries.backlog(f), queries.ageing(f))], max(repeat, W6_REPEAT))
        assert sum(r.cases for r in ours[0]) == sum(r[2] for r in raw[0]), "W6: report and raw SQL disagree"
        rows.append(("W6 backlog: track x status x age (s)", figure, baseline, W6_TARGET, W6_ABS[dialect]))

        # W7
        timed(lambda: (queries.throughput(f), queries.decision_times(f)), 1)
        (baseline, raw), (figure, ours) = alternated(
            [lambda: raw_w7(conn, f, pg), lambda: (queries.throughput(f), queries.decision_times(f))],
            max(repeat, W7_REPEAT))
        assert len(ours[0]) == len(raw[0]), "W7: report and raw SQL disagree (throughput)"
        assert [round(r.median_days, 6) for r in ours[1]] == [round(float(r[2]), 6) for r in raw[1]], \
            "W7: report and raw SQL disagree (median)"
        rows.append(("W7 efficiency: per caseworker-week, median/p90 (s)", figure, baseline, W7_TARGET,
                     W7_ABS[dialect]))

        # W8 summary and listing. The baseline is WeasyPrint alone on the very HTML the export path
        # renders (charts embedded as data: URLs, so the HTML string is the whole document). The
        # summary is timed twice: as exported after the dashboard was shown (its figures kept,
        # app/reports/figures.py, as in production) and computing its figures (nothing kept).
        app.config["REPORT_FIGURES_MAX_AGE"] = 300
        for kind in ("summary", "listing"):
            if kind == "summary":
                figures.dashboard(f, fresh=True)  # the supervisor's look at the dashboard
            html = services.report_html(kind, f)
            exports.html_to_pdf(html)  # warm fonts and the stylesheet
            contenders = [lambda html=html: HTML(string=html).write_pdf(stylesheets=[exports._stylesheet()]),
                          lambda kind=kind: exports.html_to_pdf(services.report_html(kind, f))]
            if kind == "listing":
                contenders.append(lambda: _nothing_kept(
                    app, lambda: exports.html_to_pdf(services.report_html("listing", f))))
            if kind == "summary":
                kept = figures.Figures(queries.dashboard(f, caseworkers=False), datetime.now(UTC))
                contenders += [lambda: exports.html_to_pdf(services.summary_html(
                                   figures.Figures(queries.dashboard(f, caseworkers=False), datetime.now(UTC)), f)),
                               lambda kept=kept: exports.html_to_pdf(services.summary_html(kept, f)),
                               lambda: queries.dashboard(f, caseworkers=False)]
            timings = alternated(contenders, repeat)
            (baseline, _pdf), (figure, pdf) = timings[:2]
            pages = _pages(pdf)
            if kind == "summary":
                rows.append((f"W8 summary PDF, export path after the dashboard (figures kept) ({pages} pages) (s)",
                             figure, baseline, W8_TARGET, W8_SUMMARY_S))
                (cold, _pdf), (render, _pdf), (queries_s, _d) = timings[2:]
                rows.append(("W8 summary PDF, export path computing its figures (s)", cold, baseline, W8_TARGET,
                             W8_SUMMARY_S))
                rows.append(("W8 summary PDF, rendering only (charts+template+PDF) (s)", render, baseline,
                             W8_TARGET, None))
                rows.append(("   (summary: its queries alone) (s)", queries_s, None, None, None))
            else:
                rows.append((f"W8 listing PDF, export path after the dashboard (caseworker figures kept) "
                             f"({pages} pages) (s)", figure, baseline, W8_TARGET, None))
                (cold, _pdf), = timings[2:]
                rows.append(("W8 listing PDF, export path computing its figures (s)", cold, baseline, W8_TARGET, None))
                rows.append((f"W8 listing PDF pages/s ({pages} pages)", pages / figure, None, None, W8_LISTING_PAGES_S))
        app.config["REPORT_FIGURES_MAX_AGE"] = 0
        return rows, dialect


def _nothing_kept(app, make):
    """``make()`` with no figures kept (REPORT_FIGURES_MAX_AGE 0), as if the dashboard had not been shown."""
    max_age = app.config["REPORT_FIGURES_MAX_AGE"]
    app.config["REPORT_FIGURES_MAX_AGE"] = 0
    try:
        return make()
    finally:
        app.config["REPORT_FIGURES_MAX_AGE"] = max_age


def _pages(pdf: bytes) -> int:
    try:
        from pypdf import PdfReader

        return len(PdfReader(io.BytesIO(pdf)).pages)
    except ImportError:
        return pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--database", default=DEFAULT_SQLITE)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reuse", action="store_true", help="keep the database of an earlier run (no generation)")
    args = parser.parse_args()
    today = datetime.now(UTC).date()
    prepare_database(args.database, args.reuse)
    app = build_app(args.database)
    if not args.reuse:
        started = time.perf_counter()
        counts = generate(app, args.cases, args.seed, today)
        took = time.perf_counter() - started
        print(f"generated {counts['cases']:,} cases, {counts['people']:,} people, {counts['decisions']:,} decisions "
              f"in {took:.1f} s ({counts['cases'] / took:,.0f} cases/s)")
    rows, dialect = run(app, args.repeat, today)
    header = f"{'workload':<58} {'figure':>9} {'baseline':>9} {'ratio':>6} {'target':>14} {'result':>6}"
    print(f"\n{dialect}, best of {args.repeat} runs, Python {sys.version.split()[0]}")
    print(header)
    print("-" * len(header))
    for name, figure, baseline, ratio_target, absolute in rows:
        ratio = figure / baseline if baseline else None
        checks = []
        target = []
        if ratio_target is not None and ratio is not None:
            checks.append(ratio <= ratio_target)
            target.append(f"<={ratio_target}x")
        if absolute is not None:
            if "pages/s" in name:
                checks.append(figure >= absolute)
                target.append(f">={absolute:g}/s")
            else:
                checks.append(figure <= absolute)
                target.append(f"<={absolute:g}s")
        verdict = ("pass" if all(checks) else "FAIL") if checks else ""
        base = "" if baseline is None else f"{baseline:.3f}"
        shown = "" if ratio is None else f"{ratio:.2f}"
        print(f"{name:<58} {figure:>9.3f} {base:>9} {shown:>6} {', '.join(target):>14} {verdict:>6}")
    print("ratio = report / raw SQL (W6, W7) or / WeasyPrint alone on the same HTML (W8), same run, same data")


if __name__ == "__main__":
    main()
