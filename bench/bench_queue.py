"""W4: the caseworker queue page at scale (PERFORMANCE.md).

Builds a caseload with bulk Core inserts (default 100,000 cases; ``--cases 1000000`` for the
real run) spread over a few offices and 400 caseworkers: a realistic mix of tracks, priorities,
deadlines, decided cases and a backlog, most of it assigned. Then measures, in the same run and
on the same data:

* the queue query (one page of 50, a random track or all tracks, through app.triage.queues),
  the ``my_cases`` query (50, a random caseworker) and the per-track counts, against a baseline
  "bare get-by-key": SELECT of one case row by primary key;
* the queue page through Flask (test client, signed-in caseworker, session and permission
  checks, template), against a bare endpoint on the same stack that only fetches one case by key.

Prints a table: workload, figure, baseline, ratio, target, pass/fail; and the query plans, to
show the partial indexes of migration 0005 are used. A report, never a test: machines are noisy.

    .venv/bin/python bench/bench_queue.py [--cases 100000] [--database-url URL] [--keep]

SQLite by default (a file in a temporary directory). With ``--database-url`` naming a
PostgreSQL server (any database on it), a scratch database ``nansen_bench_queue`` is created
there, and dropped afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flask_migrate import upgrade  # noqa: E402
from flask import render_template  # noqa: E402
from sqlalchemy import create_engine, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app import create_app  # noqa: E402
from app.auth.access import requires  # noqa: E402
from app.auth.models import Office, User  # noqa: E402
from app.auth.passwords import hash_password  # noqa: E402
from app.auth.permissions import Permission  # noqa: E402
from app.extensions import db  # noqa: E402
from app.intake.models import Case  # noqa: E402
from app.triage import queues  # noqa: E402
from config import TestingConfig  # noqa: E402

PASSWORD = "correct horse battery staple glacier"  # noqa: S105 - the bench's throwaway accounts
SCRATCH_DATABASE = "nansen_bench_queue"
PAGE_RATIO_TARGET = 0.60        # W4: >= 60% of bare get-by-key throughput
QUERY_P95_TARGET_MS = 2.0       # W4: query p95 <= 2 ms
PAGE_LATENCY_TARGET_MS = 50.0   # W4: one user <= 50 ms
TODAY = date(2026, 9, 1)

# (track, share %, months to the statutory deadline or None, priority choices)
TRACKS = [
    ("regular", 38, 6, (0, 0, 0, 1)),
    ("regular_prioritised", 14, 6, (1, 2, 2, 3)),
    ("accelerated", 15, 3, (0, 1)),
    ("border", 9, 3, (2, 3)),
    ("border_optional", 3, 3, (1, 2)),
    ("inadmissibility", 8, 2, (0, 1)),
    ("responsibility", 10, 2, (1,)),
    ("implicit_withdrawal", 3, None, (0,)),
]
CLOSED = queues.CLOSED_STATUSES
OPEN_ASSIGNED = ("assigned", "assigned", "interview_scheduled", "interviewed", "decision_drafted")


# -- the data --------------------------------------------------------------------------------------

def bench_config(url: str, workdir: Path):
    return type("BenchConfig", (TestingConfig,), {
        "SQLALCHEMY_DATABASE_URI": url, "AUDIT_CHECKPOINT_DIR": str(workdir / "checkpoints"),
        "AUDIT_CHECKPOINT_INTERVAL": None, "TESTING": False,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": False}})


def prepare_database(url: str | None, workdir: Path) -> tuple[str, object]:
    """A fresh, empty database URL and a cleanup callable."""
    if url is None or url.startswith("sqlite"):
        path = workdir / "bench.db"
        return f"sqlite:///{path}", lambda: None
    server = make_url(url)
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{SCRATCH_DATABASE}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{SCRATCH_DATABASE}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{SCRATCH_DATABASE}" WITH (FORCE)'))
        admin.dispose()
    return server.set(database=SCRATCH_DATABASE).render_as_string(hide_password=False), drop


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, 28))


def build(app, cases: int, offices: int, caseworkers: int, rng: random.Random) -> dict:
    """Offices, staff and ``cases`` cases by bulk Core inserts; returns what the runs pick from."""
    from app import enable_migrations
    from app.admin.services import initialise_keys

    enable_migrations(app)
    upgrade()
    initialise_keys()
    now = datetime.now(UTC)
    password_hash = hash_password(PASSWORD)
    office_rows = [{"code": f"OF{n}", "name": f"Office {n}", "created_at": now} for n in range(offices)]
    db.session.execute(insert(Office), office_rows)
    office_ids = list(db.session.scalars(select(Office.id).order_by(Office.id)))
    staff = []
    for n in range(caseworkers):
        staff.append({"username": f"cw{n:04d}", "full_name": f"Caseworker {n}", "role": "caseworker",
                      "office_id": office_ids[n % offices]})
    for n, office_id in enumerate(office_ids):
        staff.append({"username": f"sup{n}", "full_name": f"Supervisor {n}", "role": "supervisor",
                      "office_id": office_id})
        staff.append({"username": f"reg{n}", "full_name": f"Registrar {n}", "role": "registration_officer",
                      "office_id": office_id})
    for row in staff:
        row.update(password_hash=password_hash, active=True, created_at=now, password_changed_at=now)
    db.session.execute(insert(User), staff)
    users = db.session.execute(select(User.id, User.role, User.office_id)).all()
    workers = {o: [u.id for u in users if u.office_id == o and u.role == "caseworker"] for o in office_ids}
    registrars = {u.office_id: u.id for u in users if u.role == "registration_officer"}
    db.session.commit()

    codes, weights = zip(*[(t[0], t[1]) for t in TRACKS], strict=True)
    by_code = {t[0]: t for t in TRACKS}
    table = Case.__table__
    batch, started = [], time.perf_counter()
    for n in range(cases):
        office_id = office_ids[n % offices]
        code = rng.choices(codes, weights)[0]
        _, _, months, priorities = by_code[code]
        registered = TODAY - timedelta(days=int(rng.triangular(0, 4 * 365, 0)))  # more recent than old
        age_days = (TODAY - registered).days
        # Older cases are mostly decided; the recent ones form the backlog.
        closed = rng.random() < min(0.95, age_days / 500)
        assigned = closed or rng.random() < 0.7
        status = rng.choice(CLOSED) if closed else (rng.choice(OPEN_ASSIGNED) if assigned else "registered")
        deadline = add_months(registered, months) if months else None
        batch.append({
            "id": uuid.uuid4().hex, "reference": f"B-{n:09d}", "office_id": office_id, "status": status,
            "made_on": registered - timedelta(days=rng.choice((0, 0, 1, 2, 3))), "registered_on": registered,
            "good_cause_for_not_lodging": False, "received_by_id": registrars[office_id],
            "location_context": "inland", "presented_without_delay": True, "registration_delay_days": 0,
            "late_registration": False, "track": code, "track_overridden": False, "statutory_deadline": deadline,
            "priority": rng.choice(priorities), "triaged_at": now,
            "assigned_to_id": rng.choice(workers[office_id]) if assigned else None,
            "assigned_at": now if assigned else None, "created_at": now, "updated_at": now, "version": 1,
        })
        if len(batch) == 20_000:
            db.session.execute(insert(table), batch)
            db.session.commit()
            batch = []
    if batch:
        db.session.execute(insert(table), batch)
    db.session.commit()
    load_s = time.perf_counter() - started
    db.session.commit()
    # What autovacuum (PostgreSQL) or "PRAGMA optimize" (SQLite) would have done by now: planner
    # statistics, and on PostgreSQL the visibility map that index-only scans rely on.
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        db.session.execute(text("ANALYZE"))
        db.session.commit()
    case_ids = list(db.session.scalars(select(Case.id).where(Case.office_id == office_ids[0]).limit(5000)))
    return {"office_ids": office_ids, "workers": [w for ws in workers.values() for w in ws],
            "worker_office": {w: o for o, ws in workers.items() for w in ws}, "case_ids": case_ids,
            "load_s": load_s}


# -- measuring -------------------------------------------------------------------------------------

class Timing:
    """Wall-clock samples of one operation, and the CPU time this thread spent in each: on a
    shared machine (other work, load far above the core count) the wall clock mostly measures
    waiting for a core, and the CPU time is what the code itself costs (on SQLite the database
    runs in this thread too; on PostgreSQL the server's share is not in it)."""

    def __init__(self, name: str, samples: list[float], cpu: list[float] | None = None):
        self.name = name
        self.samples = sorted(samples)
        self.cpu = sorted(cpu or [])

    @property
    def per_second(self) -> float:
        return len(self.samples) / sum(self.samples)

    @property
    def cpu_per_second(self) -> float:
        return len(self.cpu) / sum(self.cpu) if self.cpu and sum(self.cpu) else float("nan")

    def pct(self, p: float) -> float:
        return self.samples[min(len(self.samples) - 1, int(p * len(self.samples)))] * 1000

    def cpu_pct(self, p: float) -> float:
        return self.cpu[min(len(self.cpu) - 1, int(p * len(self.cpu)))] * 1000 if self.cpu else float("nan")

    @property
    def p50(self) -> float:
        return statistics.median(self.samples) * 1000


def timed(name: str, operation, count: int, warmup: int = 50) -> Timing:
    return interleaved({name: operation}, count, warmup)[name]


def interleaved(operations: dict, count: int, warmup: int = 50) -> dict[str, Timing]:
    """Each operation ``count`` times, taking turns (one call of each, then again), so drift on
    the machine (load from other work, caches) hits every operation alike, baselines included."""
    for _ in range(warmup):
        for operation in operations.values():
            operation()
    wall: dict[str, list[float]] = {name: [] for name in operations}
    cpu: dict[str, list[float]] = {name: [] for name in operations}
    for _ in range(count):
        for name, operation in operations.items():
            started, started_cpu = time.perf_counter(), time.thread_time()
            operation()
            cpu[name].append(time.thread_time() - started_cpu)
            wall[name].append(time.perf_counter() - started)
    return {name: Timing(name, wall[name], cpu[name]) for name in operations}


def measure_queries(data: dict, rng: random.Random, count: int) -> dict[str, Timing]:
    table = Case.__table__
    tracks = [t[0] for t in TRACKS]
    office_ids, workers, case_ids = data["office_ids"], data["workers"], data["case_ids"]

    def get_by_key():
        db.session.execute(select(table).where(table.c.id == rng.choice(case_ids))).first()

    def queue_track():
        page = queues.queue(rng.choice(office_ids), rng.choice(tracks))
        assert len(page.rows) <= 50

    def queue_all():
        assert len(queues.queue(rng.choice(office_ids)).rows) == 50

    def my_cases():
        worker = rng.choice(workers)
        queues.cases_of(worker, office_id=data["worker_office"][worker])

    def counts():
        queues.track_counts(rng.choice(office_ids), max_age=0)  # the query itself, never the kept copy

    # Page 2 is one keyset query after page 1's last row: the cursor each office's page 1 gives
    # is taken before timing, so the figure is that one query, like the others.
    cursors = [(office, first.next_after) for office in office_ids
               if (first := queues.queue(office, "regular")).next_after]

    def queue_page_2():
        office, after = rng.choice(cursors)
        queues.queue(office, "regular", after=after)

    results = interleaved({"get_by_key": get_by_key, "queue_track": queue_track, "queue_all": queue_all,
                           "my_cases": my_cases, "track_counts": counts, "queue_p2": queue_page_2}, count)
    db.session.rollback()
    return results


def measure_pages(app, data: dict, rng: random.Random, count: int) -> dict[str, Timing]:
    """The queue page and a bare get-by-key endpoint on the same stack, signed in once.

    Call it outside any application context: each request must push its own, as under a WSGI
    server. Inside an outer context Flask reuses it, so the session store, the signed-in user
    and the database session outlive the request: the user is never loaded again and both the
    pages and the baseline measure less than production does."""
    table = Case.__table__
    case_ids = data["case_ids"]

    @requires(Permission.QUEUE_WORK)
    def bare_case(case_id):
        row = db.session.execute(select(table).where(table.c.id == case_id)).first()
        return row.reference if row else ("", 404)

    layout = app.jinja_env.from_string(
        '{% extends "base.html" %}{% block content %}<p>{{ reference }}</p>{% endblock %}')

    @requires(Permission.QUEUE_WORK)
    def bare_layout_page(case_id):
        row = db.session.execute(select(table).where(table.c.id == case_id)).first()
        return render_template(layout, reference=row.reference if row else "")

    app.add_url_rule("/bench/case/<case_id>", "bench_case", bare_case)
    app.add_url_rule("/bench/layout/<case_id>", "bench_layout", bare_layout_page)
    with app.app_context():
        worker = db.session.get(User, data["workers"][0])
        username, office_id = worker.username, worker.office_id
        office_cases = list(db.session.scalars(select(Case.id).where(Case.office_id == office_id).limit(2000)))
        db.session.remove()
    client = app.test_client()
    login_page = client.get("/auth/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', login_page).group(1)
    response = client.post("/auth/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, response.status_code
    tracks = [t[0] for t in TRACKS]

    def bare():
        assert client.get(f"/bench/case/{rng.choice(office_cases or case_ids)}").status_code == 200

    def bare_layout():
        assert client.get(f"/bench/layout/{rng.choice(office_cases or case_ids)}").status_code == 200

    def queue_page():
        assert client.get(f"/triage/queue?track={rng.choice(tracks)}").status_code == 200

    def queue_page_all():
        assert client.get("/triage/queue").status_code == 200

    def my_cases_page():
        assert client.get("/triage/my-cases").status_code == 200

    return interleaved({"bare_page": bare, "bare_layout": bare_layout, "queue_page": queue_page,
                        "queue_page_all": queue_page_all, "my_cases_page": my_cases_page}, count, warmup=20)


def explain(data: dict) -> list[tuple[str, str]]:
    """The plan of each list query, to check the partial indexes are used and nothing is sorted."""
    office = data["office_ids"][0]
    worker = data["workers"][0]
    statements = {
        "queue (track)": queues._queue_statement(True, None).params(office_id=office, track="regular", limit=51),
        "queue (all tracks)": queues._queue_statement(False, None).params(office_id=office, limit=51),
        "take next (track)": queues._take_statement(True).params(office_id=office, track="regular", limit=1),
        "my_cases": queues._assigned_statement(None).params(user_id=worker, office_id=office, limit=51),
        "overdue": queues._deadline_statement("overdue", False).params(office_id=office, start=TODAY, limit=51),
        "track counts": select(Case.track, text("count(*)")).where(*queues._queue_filter(office, None))
        .group_by(Case.track),
    }
    plans = []
    for name, statement in statements.items():
        sql = str(statement.compile(dialect=db.engine.dialect,
                                    compile_kwargs={"literal_binds": True, "render_postcompile": True}))
        if db.engine.dialect.name == "postgresql":
            lines = db.session.execute(text(f"EXPLAIN {sql}")).scalars().all()
        else:
            lines = [row[-1] for row in db.session.execute(text(f"EXPLAIN QUERY PLAN {sql}"))]
        plans.append((name, " | ".join(line.strip() for line in lines)))
    db.session.rollback()
    return plans


# -- the report ----------------------------------------------------------------------------------

def report(args, dialect: str, data: dict, queries: dict[str, Timing], pages: dict[str, Timing], plans) -> None:
    base = queries["get_by_key"]
    row = "{:44} {:>22} {:>22} {:>7} {:>12}  {}"
    print(f"\nW4 queue, {dialect}: {args.cases:,} cases, {len(data['office_ids'])} offices, "
          f"{len(data['workers'])} caseworkers; load {data['load_s']:.1f} s "
          f"({args.cases / data['load_s']:,.0f} cases/s, bulk Core inserts); {args.samples} samples each; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end (other work on the machine "
          f"shows in the p95s, baseline's included)")
    header = row.format("workload", "figure", "baseline", "ratio", "target", "result")
    print(header)
    print("-" * len(header))

    def query_line(name: str, label: str):
        t = queries[name]
        ratio = t.per_second / base.per_second
        figure = f"{t.per_second:,.0f}/s p50 {t.p50:.2f} p95 {t.pct(0.95):.2f}"
        baseline = f"{base.per_second:,.0f}/s p95 {base.pct(0.95):.2f}"
        verdict = "pass" if t.pct(0.95) <= QUERY_P95_TARGET_MS else "FAIL"
        print(row.format(label, figure, baseline, f"{ratio:.2f}", f"p95<={QUERY_P95_TARGET_MS:g}ms", verdict))
        cpu_line(t, base)

    def cpu_line(t: Timing, base_t: Timing):
        print(row.format("   same, CPU time of this thread (ms)", f"p50 {t.cpu_pct(0.5):.2f} p95 {t.cpu_pct(0.95):.2f}",
                         f"p95 {base_t.cpu_pct(0.95):.2f}", f"{t.cpu_per_second / base_t.cpu_per_second:.2f}",
                         "(info)", ""))

    query_line("queue_track", "W4 queue query, one track, 50 (ms)")
    query_line("queue_all", "W4 queue query, all tracks, 50 (ms)")
    query_line("queue_p2", "W4 queue query, page 2 (keyset) (ms)")
    query_line("my_cases", "W4 my_cases query, 50 (ms)")
    query_line("track_counts", "W4 per-track counts, uncached (GROUP BY) (ms)")
    bare, layout = pages["bare_page"], pages["bare_layout"]
    for name, label in [("queue_page", "W4 queue page, one track (HTTP)"),
                        ("queue_page_all", "W4 queue page, all tracks (HTTP)"),
                        ("my_cases_page", "W4 my cases page (HTTP)")]:
        t = pages[name]
        ratio = t.per_second / bare.per_second
        print(row.format(label + " req/s", f"{t.per_second:,.0f}/s", f"{bare.per_second:,.0f}/s", f"{ratio:.2f}",
                         f">={PAGE_RATIO_TARGET:.2f}", "pass" if ratio >= PAGE_RATIO_TARGET else "FAIL"))
        cpu_line(t, bare)
        print(row.format("   same, against the bare layout page", f"{t.per_second:,.0f}/s",
                         f"{layout.per_second:,.0f}/s", f"{t.per_second / layout.per_second:.2f}", "(info)", ""))
        print(row.format("   same, one user latency (ms)", f"p50 {t.p50:.1f} p95 {t.pct(0.95):.1f}",
                         f"p95 {bare.pct(0.95):.1f}", "", f"<={PAGE_LATENCY_TARGET_MS:g}ms",
                         "pass" if t.pct(0.95) <= PAGE_LATENCY_TARGET_MS else "FAIL"))
    print("query baseline: SELECT of one case row by primary key (Core, same session). Page baseline: a bare "
          "endpoint on the same stack (session, sign-in, permission check) returning one case fetched by key as "
          "text; bare layout page: the same, rendered in the site layout (base.html) every page has.")
    print("ratio = figure/s over baseline/s, same run. Query verdicts are on the p95 (2 ms); page verdicts on the "
          "ratio (0.60) and on the one-user p95 (50 ms). Pages use the per-track counts as kept for "
          "QUEUE_COUNTS_MAX_AGE (10 s), as in production.")
    print("\nplans:")
    for name, plan in plans:
        print(f"  {name}: {plan}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--offices", type=int, default=4)
    parser.add_argument("--caseworkers", type=int, default=400)
    parser.add_argument("--samples", type=int, default=2000, help="timed calls per query")
    parser.add_argument("--page-samples", type=int, default=400, help="timed requests per page")
    parser.add_argument("--database-url", help="PostgreSQL server URL (a scratch database is made there)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch PostgreSQL database")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="nansen-bench-queue-") as workdir:
        url, cleanup = prepare_database(args.database_url, Path(workdir))
        try:
            app = create_app(bench_config(url, Path(workdir)))
            with app.app_context():
                data = build(app, args.cases, args.offices, args.caseworkers, rng)
                queries = measure_queries(data, rng, args.samples)
                plans = explain(data)
                dialect = db.engine.dialect.name
                db.session.remove()
            pages = measure_pages(app, data, rng, args.page_samples)  # outside: a context per request
            report(args, dialect, data, queries, pages, plans)
            with app.app_context():
                db.engine.dispose()
        finally:
            if not args.keep:
                cleanup()


if __name__ == "__main__":
    main()
