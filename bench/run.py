"""The benchmark suite in one command (PERFORMANCE.md): builds one migrated database, fills it with
a generated caseload, runs each workload against its baseline measured in the same run, prints
the table and writes it, with the machine's description, to docs/performance.md (one table per
database kind; a run replaces its own kind's table and keeps the other's).

    .venv/bin/python bench/run.py [--database sqlite|postgresql] [--database-url URL] [--cases 10000]
                                  [--only W1,W4,...] [--generator demo|reports] [--w2-claims N] [--no-write]
                                  [--w10-seconds 600] [--w10-clients N] [--scratch nansen_bench_x]
                                  [--section postgresql-1m] [--reuse]

SQLite: a file in a temporary directory. PostgreSQL: ``--database-url`` names the server (default
postgresql+psycopg://postgres@127.0.0.1:5432/postgres); a scratch database ``nansen_bench`` is
created on it and dropped at the end (never the shared ``test`` database; ``--scratch`` names another,
so two runs can share a server). ``--section`` writes the table under another heading than the
database kind, e.g. a million-case run beside the quick one.

``--reuse`` keeps the filled database for the next run instead of dropping it, and uses it when it
is already there (migrated to the current head first; its cases are counted, not generated): a
million-case caseload takes an hour or more to generate on a loaded 2-core machine, so it is made
once and measured many times. PostgreSQL: the ``--scratch`` database; SQLite: the file
``instance/bench/<scratch>.db``. The workloads that write (W1, W2, W5, W10) add their cases to it,
a few thousand per run. Every run uses the testing configuration's fixed key, so the kept data
stays readable.

Fill: ``app.demo_data.generate_caseload`` (realistic cases, people, decisions and a valid audit
chain; the default), or ``--generator reports``: the bulk builder of bench/bench_reports.py
(COPY; no audit events, people without encrypted sections).

A report, never a test: machines are noisy; nothing here belongs in the test suite.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import sqlite3
import sys
import tempfile
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import PASSWORD, Context, Row, verdict  # noqa: E402

DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SCRATCH = "nansen_bench"
WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "W9", "W10", "M1")
DOC = ROOT / "docs" / "performance.md"


# -- the database ----------------------------------------------------------------------------------

def prepare(kind: str, server_url: str | None, workdir: Path, scratch: str = SCRATCH, reuse: bool = False):
    """(url, drop, existing) of the run's database: a fresh, empty one (on PostgreSQL, ``scratch``
    on the server), or with ``reuse`` the kept one when it exists (``existing`` True; ``drop`` then
    keeps it)."""
    if kind == "sqlite":
        if not reuse:
            return f"sqlite:///{workdir / 'bench.db'}", lambda: None, False
        path = ROOT / "instance" / "bench" / f"{scratch}.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}", lambda: None, path.exists() and path.stat().st_size > 0
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    server = make_url(server_url or DEFAULT_SERVER)
    if server.database == "test":
        server = server.set(database="postgres")  # connect there; the scratch database is made beside it
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    url = server.set(database=scratch).render_as_string(hide_password=False)
    with admin.connect() as conn:
        existing = bool(conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                     {"name": scratch}).scalar())
        if reuse and existing:
            admin.dispose()
            return url, lambda: None, True
        conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{scratch}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
        admin.dispose()
    return url, (lambda: admin.dispose()) if reuse else drop, False


def app_factory(url: str, workdir: Path):
    from app import create_app
    from tests.conftest import FreshGlobalsClient, make_config

    def make():
        application = create_app(make_config(url, workdir, TESTING=False))
        # The benches drive the test client inside a pushed app context, like the test suite:
        # each request must still start with an empty `g`, or cached sign-ins flatter the figures.
        application.test_client_class = FreshGlobalsClient
        return application
    return make


def reuse_existing(context: Context) -> None:
    """Bring a kept database to the current migration head and count what it holds (the run's
    ``cases`` become that count)."""
    from sqlalchemy import func, select

    from app.audit.models import AuditEvent
    from app.decisions.models import Decision
    from app.extensions import db
    from app.intake.models import Case, Person
    from tests.conftest import migrate_and_initialise

    started = time.perf_counter()
    migrate_and_initialise(context.app)
    with context.app.app_context():
        count = lambda model: db.session.scalar(select(func.count()).select_from(model))  # noqa: E731
        context.cases = count(Case)
        context.info.update(people=count(Person), decisions=count(Decision), events=count(AuditEvent),
                            fill="kept database reused (--reuse)")
        db.session.remove()
    analyse(context, vacuum=False)  # the kept database was vacuumed when it was filled
    context.info["fill_s"] = time.perf_counter() - started


def fill(context: Context, generator: str) -> None:
    from app.extensions import db
    from tests.conftest import migrate_and_initialise

    started = time.perf_counter()
    if generator == "reports":
        import bench_reports

        counts = bench_reports.generate(context.app, context.cases, context.seed, context.today)
        context.info.update(counts, fill="generated by the bench_reports bulk builder (COPY/executemany), "
                                         "no audit events")
    else:
        from app import demo_data

        migrate_and_initialise(context.app)
        with context.app.app_context():
            demo_data.ensure_demo_users()
            db.session.commit()
            report = demo_data.generate_caseload(context.cases, seed=context.seed)
            context.info.update(cases=report.cases, people=report.persons, decisions=report.decisions,
                                events=report.events, fill="generated by app.demo_data.generate_caseload")
            db.session.remove()
    analyse(context)
    context.info["fill_s"] = time.perf_counter() - started


def analyse(context: Context, *, vacuum: bool = True) -> None:
    """Fresh planner statistics, as after any bulk load (PostgreSQL: and a vacuum, so the
    visibility map lets index-only scans skip the table)."""
    from app.extensions import db

    with context.app.app_context():
        from sqlalchemy import text

        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE" if vacuum else "ANALYZE"))
        else:
            db.session.execute(text("ANALYZE"))
            db.session.commit()
        db.session.remove()


# -- adapters of the existing benches --------------------------------------------------------------

def run_w3(context: Context) -> list[Row]:
    """W3: the engine's claims/s on one core (per CPU second of this process; the wall clock,
    which on a shared machine also counts waiting for the core, in the notes), then the
    re-triage dry run (``services.replay`` of the active ruleset, database reads included) over
    the run's open cases, extrapolated to 1M."""
    import bench_triage as bt

    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_setaffinity") else None
    if affinity:
        os.sched_setaffinity(0, {sorted(affinity)[0]})  # one core, as W3 states
    try:
        rng = random.Random(context.seed)
        claims = [bt.make_claim(rng) for _ in range(20_000)]
        for facts in claims:
            bt.validate_facts(facts)

        def baseline(items):
            for facts in items:
                dict(facts)
        base, base_wall = bt.best_rates(baseline, claims, 3)
        rows = []
        for name in ("eu-apr-2026", "unhcr-dcp"):
            ruleset = bt.shipped_ruleset(name)
            extra = bt.CONTEXT if name == "eu-apr-2026" else None

            def evaluate(items, ruleset=ruleset, extra=extra):
                for facts in items:
                    ruleset.evaluate(facts, extra)
            rate, wall = bt.best_rates(evaluate, claims, 3)
            rows.append(Row(f"W3 triage evaluate, {name}, one core (claims/s)", f"{rate:,.0f}/s", f"{base:,.0f}/s",
                            f"{rate / base:.4f}", f">={bt.TARGET_CLAIMS_PER_SECOND:,}/s",
                            verdict(rate >= bt.TARGET_CLAIMS_PER_SECOND),
                            f"20,000 varied claims, best of 3, per CPU second; wall clock {wall:,.0f}/s "
                            f"(dict copy {base_wall:,.0f}/s); baseline: dict copy of the same facts"))
    finally:
        if affinity:
            os.sched_setaffinity(0, affinity)
    measured = bt.dry_run(context.make_app())
    cases = max(measured["cases"], 1)
    per_million = bt.per_million(measured)
    cpu = measured["cpu"] + (measured["server_cpu"] or 0)
    server = "" if measured["server_cpu"] is None else f" + {measured['server_cpu']:.2f} s in PostgreSQL"
    rows.append(Row("W3 re-triage dry run over 1M cases (s, extrapolated)", f"{per_million:,.1f}", "", "",
                    f"<={bt.RETRIAGE_LIMIT_S}s", verdict(per_million <= bt.RETRIAGE_LIMIT_S),
                    f"measured: {measured['cases']:,} open cases in {measured['seconds']:.2f} s wall "
                    f"({measured['cpu']:.2f} s CPU here{server}: {cpu / cases * bt.RETRIAGE_CASES:,.0f} s CPU "
                    f"per 1M; {measured['fixed']:.2f} s once per run), database reads, decryption and evaluation; "
                    f"load average {os.getloadavg()[0]:.1f}"))
    return rows


def run_w4(context: Context) -> list[Row]:
    import bench_queue as bq
    from sqlalchemy import func, select

    from app.auth.models import User
    from app.auth.passwords import hash_password
    from app.extensions import db
    from app.intake.models import Case

    app = context.make_app()
    rng = random.Random(context.seed)
    samples, page_samples = (600, 150) if context.quick else (2000, 400)
    with app.app_context():
        users = db.session.execute(select(User.id, User.office_id).where(
            User.role == "caseworker", User.active.is_(True)).order_by(User.id)).all()
        office_ids = [o for o, in db.session.execute(
            select(Case.office_id).group_by(Case.office_id).order_by(func.count().desc()))]
        from app.triage import queues

        office_ids = [o for o in office_ids if len(queues.queue(o).rows) == 50]  # bench_queue asserts a full page
        if not office_ids:
            return [Row("W4 queue", "", "", "", "", "not run", "no office has 50 cases waiting in its queue")]
        busiest = db.session.execute(select(Case.assigned_to_id).where(Case.assigned_to_id.is_not(None))
                                     .group_by(Case.assigned_to_id).order_by(func.count().desc()).limit(1)).scalar()
        workers = sorted((u.id for u in users), key=lambda uid: uid != busiest)
        worker_office = {u.id: u.office_id for u in users}
        signed_in = db.session.get(User, workers[0])
        signed_in.password_hash = hash_password(PASSWORD)
        db.session.commit()
        case_ids = list(db.session.scalars(select(Case.id).where(Case.office_id == office_ids[0]).limit(5000)))
        data = {"office_ids": office_ids, "workers": workers, "worker_office": worker_office,
                "case_ids": case_ids, "load_s": context.info.get("fill_s", 0.0)}
        queries = bq.measure_queries(data, rng, samples)
        db.session.remove()
    # Outside the context: each request pushes its own, as under a WSGI server (see measure_pages).
    pages = bq.measure_pages(app, data, rng, page_samples)
    with app.app_context():
        db.engine.dispose()
    base = queries["get_by_key"]
    rows = []
    for name, label in [("queue_track", "W4 queue query, one track, 50 rows"),
                        ("queue_all", "W4 queue query, all tracks, 50 rows"),
                        ("queue_p2", "W4 queue query, page 2 (keyset)"),
                        ("my_cases", "W4 my_cases query, 50 rows"),
                        ("track_counts", "W4 per-track counts, uncached")]:
        t = queries[name]
        rows.append(Row(label + " (p95 ms)", f"{t.pct(0.95):.2f}", f"{base.pct(0.95):.2f}",
                        f"{t.per_second / base.per_second:.2f}", f"p95<={bq.QUERY_P95_TARGET_MS:g}ms",
                        verdict(t.pct(0.95) <= bq.QUERY_P95_TARGET_MS),
                        f"{t.per_second:,.0f}/s vs get-by-key {base.per_second:,.0f}/s; ratio = throughput; "
                        f"CPU time of the calling thread p50 {t.cpu_pct(0.5):.2f} ms, p95 {t.cpu_pct(0.95):.2f} ms, "
                        f"CPU ratio {t.cpu_per_second / base.cpu_per_second:.2f}"))
    bare = pages["bare_page"]
    for name, label in [("queue_page", "W4 queue page, one track (HTTP req/s)"),
                        ("queue_page_all", "W4 queue page, all tracks (HTTP req/s)"),
                        ("my_cases_page", "W4 my cases page (HTTP req/s)")]:
        t = pages[name]
        ratio = t.per_second / bare.per_second
        ok = ratio >= bq.PAGE_RATIO_TARGET and t.pct(0.95) <= bq.PAGE_LATENCY_TARGET_MS
        rows.append(Row(label, f"{t.per_second:,.0f}/s", f"{bare.per_second:,.0f}/s", f"{ratio:.2f}",
                        f">={bq.PAGE_RATIO_TARGET:.2f}, p95<={bq.PAGE_LATENCY_TARGET_MS:g}ms", verdict(ok),
                        f"p50 {t.p50:.1f} ms, p95 {t.pct(0.95):.1f} ms; vs bare layout page "
                        f"{t.per_second / pages['bare_layout'].per_second:.2f}; CPU time p50 {t.cpu_pct(0.5):.1f} ms "
                        f"vs bare {bare.cpu_pct(0.5):.1f} ms, CPU ratio {t.cpu_per_second / bare.cpu_per_second:.2f}; "
                        "baseline: bare get-by-key endpoint (same session, sign-in, permission check), Flask test "
                        "client, a request context of its own per request, requests taking turns"))
    return rows


def run_reports(context: Context) -> list[Row]:
    import bench_reports as br

    app = context.make_app()
    found, _dialect = br.run(app, 3, context.today)
    rows = []
    for name, figure, baseline, ratio_target, absolute in found:
        ratio = figure / baseline if baseline else None
        checks, target = [], []
        if ratio_target is not None and ratio is not None:
            checks.append(ratio <= ratio_target)
            target.append(f"<={ratio_target:g}x")
        sanity = ""
        if absolute is not None:
            pages = "pages/s" in name
            met = figure >= absolute if pages else figure <= absolute
            if pages:
                checks.append(met)
                target.append(f">={absolute:g}/s")
            else:
                sanity = f"sanity <= {absolute:g} s: {'met' if met else 'not met'}"
        result = verdict(all(checks)) if checks else "info"
        rows.append(Row(name.strip(), f"{figure:.4g}", "" if baseline is None else f"{baseline:.4g}",
                        "" if ratio is None else f"{ratio:.2f}", ", ".join(target), result,
                        (sanity + "; " if sanity else "") + "best of 3; baseline: raw SQL (W6, W7), "
                        "WeasyPrint alone on the same HTML (W8)"))
    return rows


def not_run() -> dict[str, list[Row]]:
    """Workloads with no measurement yet (none: W10 and M1 are bench/w10_mixed.py)."""
    return {}


# -- the report ------------------------------------------------------------------------------------

def machine(context: Context, pg_version: str | None) -> list[str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        memory = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, IndexError, ValueError):
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [f"- CPU: {cpu}; {os.cpu_count()} logical cores ({usable} usable by this process); "
            f"load average {os.getloadavg()[0]:.1f} at the end of the run",
            f"- memory: {memory}; {platform.system()} {platform.release()}",
            f"- Python {platform.python_version()}; SQLite {sqlite3.sqlite_version}; "
            f"PostgreSQL {pg_version or 'not used'}",
            f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; database: {context.dialect}; "
            f"{context.cases:,} cases ({context.info.get('fill', '')}, "
            f"{context.info.get('fill_s', 0):.0f} s; {context.info.get('events', 0):,} audit events)"]


def table(rows: list[Row]) -> list[str]:
    lines = ["| workload | figure | baseline | ratio | target | result | absolute figures, notes |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [r.workload, r.figure, r.baseline, r.ratio, r.target, r.result, r.sanity]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return lines


def print_table(rows: list[Row]) -> None:
    fmt = "{:58} {:>12} {:>12} {:>7} {:>24}  {}"
    header = fmt.format("workload", "figure", "baseline", "ratio", "target", "result")
    print("\n" + header)
    print("-" * len(header))
    for r in rows:
        print(fmt.format(r.workload[:58], r.figure, r.baseline, r.ratio, r.target, r.result))
        if r.sanity:
            print(f"    {r.sanity}")


def write_doc(kind: str, command: str, description: list[str], rows: list[Row],
              ran: Sequence[str] = WORKLOADS) -> None:
    """Replace section ``kind`` of docs/performance.md with this run. The rows of workloads this
    run did not measure (``--only``) are carried over from the section's earlier run, marked with
    that run's date, so a partial re-run never drops a measured row."""
    start, end = f"<!-- bench:{kind} -->", f"<!-- /bench:{kind} -->"
    head = ("# Performance: measured\n\nWritten by `bench/run.py` (targets and workloads: PERFORMANCE.md). "
            "Every ratio is against a baseline measured in the same run on the same machine and data; "
            "absolute figures are beside it for sanity. A report, not a test: machines are noisy.\n")
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else head
    earlier = text.split(start, 1)[1].split(end, 1)[0] if start in text and end in text else ""
    ran = {*ran, *(workload_of(row) for row in rows)}  # a step may measure more than it was asked for
    rows = in_workload_order([*rows, *carried_rows(earlier, ran)])
    section = "\n".join([start, f"## {kind}", "", f"`{command}`", "", *description, "", *table(rows), end])
    if earlier:
        before, rest = text.split(start, 1)
        text = before + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOC.write_text(text, encoding="utf-8")


_WORKLOAD_OF_ROW = re.compile(r"^(W\d+|M\d+)\b")
_RUN_DATE = re.compile(r"^- date: (\d{4}-\d\d-\d\d \d\d:\d\d UTC)", re.M)
CARRIED = "carried over from the run of"


def workload_of(row: Row) -> str | None:
    found = _WORKLOAD_OF_ROW.match(row.workload)
    return found.group(1) if found else None


def carried_rows(section: str, ran: Iterable[str | None]) -> list[Row]:
    """The table rows of an earlier run's ``section`` whose workload is not in ``ran``, each noted
    with the date of the run that measured it (a row carried before keeps its original date)."""
    date = _RUN_DATE.search(section)
    label = f"{CARRIED} {date.group(1) if date else 'an earlier date'}"
    carried = []
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith(("| workload |", "|---")):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if len(cells) != 7:
            continue
        row = Row(*cells)
        if workload_of(row) in {None, *ran}:
            continue
        if CARRIED not in row.sanity:
            row = replace(row, sanity=f"{row.sanity}; {label}" if row.sanity else label)
        carried.append(row)
    return carried


def in_workload_order(rows: list[Row]) -> list[Row]:
    """Rows sorted by workload (W1 ... W10, M1) keeping each workload's own order."""
    order = {name: n for n, name in enumerate(WORKLOADS)}
    return sorted(rows, key=lambda row: order.get(workload_of(row), len(order)))


# -- main --------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--database-url", help=f"PostgreSQL server URL (default {DEFAULT_SERVER})")
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--only", help="comma-separated workloads, e.g. W1,W4 (default: all)")
    parser.add_argument("--generator", choices=("demo", "reports"), default="demo")
    parser.add_argument("--w2-claims", type=int, help="claims W2 imports (default: --cases, at most 2,000)")
    parser.add_argument("--w10-seconds", type=float, default=600,
                        help="W10/M1 soak under gunicorn, seconds (default 600; the bare baseline adds a fifth)")
    parser.add_argument("--w10-clients", type=int, help="W10 concurrent clients (default: one per gunicorn worker)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-write", action="store_true", help="print the table, leave docs/performance.md")
    parser.add_argument("--scratch", default=SCRATCH,
                        help=f"PostgreSQL scratch database, made and dropped by the run (default {SCRATCH}); "
                             "give each concurrent run its own")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the filled database for later runs, and use the kept one when there is "
                             "one (see above)")
    parser.add_argument("--section",
                        help="docs/performance.md section this run replaces (default: the database kind), "
                             "e.g. postgresql-1m to keep a million-case run beside the 10k one")
    args = parser.parse_args(argv)
    if not args.scratch.startswith("nansen_bench"):
        parser.error("--scratch must start with nansen_bench: the run drops it")
    wanted = [w.strip().upper() for w in args.only.split(",")] if args.only else list(WORKLOADS)
    unknown = [w for w in wanted if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s): {', '.join(unknown)}")
    sys.path.insert(0, str(ROOT / "bench"))  # the standalone benches import as top-level modules

    from bench import w1_intake, w2_import, w5_decisions, w9_audit_verify, w10_mixed

    steps = [("W3", run_w3), ("W4", run_w4), (("W6", "W7", "W8"), run_reports), ("W1", w1_intake.run),
             ("W2", w2_import.run), ("W5", w5_decisions.run), ("W9", w9_audit_verify.run),
             (("W10", "M1"), w10_mixed.run)]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="nansen-bench-") as tmp:
        workdir = Path(tmp)
        url, drop, existing = prepare(args.database, args.database_url, workdir, args.scratch, args.reuse)
        pg_version = None
        try:
            make_app = app_factory(url, workdir)
            app = make_app()
            context = Context(url=url, dialect=args.database, cases=args.cases, seed=args.seed, workdir=workdir,
                              today=datetime.now(UTC).date(), make_app=make_app, app=app,
                              quick=args.cases < 100_000,
                              info={"w2_claims": args.w2_claims, "w10_seconds": args.w10_seconds,
                                    "w10_clients": args.w10_clients})
            if existing:
                print(f"reusing the kept {args.scratch} on {args.database}...", flush=True)
                reuse_existing(context)
                context.quick = context.cases < 100_000
                print(f"{context.cases:,} cases, migrated in {context.info['fill_s']:.1f} s", flush=True)
            else:
                print(f"filling {args.cases:,} cases on {args.database} ({args.generator} generator)...",
                      flush=True)
                fill(context, args.generator)
                print(f"filled in {context.info['fill_s']:.1f} s", flush=True)
            if args.database == "postgresql":
                from sqlalchemy import text

                from app.extensions import db
                with app.app_context():
                    pg_version = db.session.execute(text("SHOW server_version")).scalar()
                    db.session.remove()
            for names, step in steps:
                names = names if isinstance(names, tuple) else (names,)
                chosen = [n for n in names if n in wanted]
                if not chosen:
                    continue
                print(f"running {', '.join(chosen)}...", flush=True)
                started = time.perf_counter()
                try:
                    found = step(context)
                    rows += [r for r in found if r.workload.split()[0] in chosen]
                except Exception as exc:  # noqa: BLE001 - one broken workload must not hide the others
                    traceback.print_exc()
                    rows += [Row(f"{n}", "", "", "", "", "error", f"{type(exc).__name__}: {exc}"[:300])
                             for n in chosen]
                print(f"  {time.perf_counter() - started:.1f} s", flush=True)
            for name, extra in not_run().items():
                if name in wanted:
                    rows += extra
            with app.app_context():
                from app.extensions import db

                db.session.remove()
                db.engine.dispose()
        finally:
            drop()
    order = {w: i for i, w in enumerate(WORKLOADS)}
    rows.sort(key=lambda r: order.get(r.workload.split()[0], 99))
    print_table(rows)
    command = "bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    description = machine(context, pg_version)
    print("\n".join(description))
    if not args.no_write:
        write_doc(args.section or args.database, command, description, rows, wanted)
        print(f"written: {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
