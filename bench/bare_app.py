"""The baseline of W10 (bench/w10_mixed.py): bare endpoints on Nansen's database and schema.

A minimal Flask + SQLAlchemy (Core) app doing what each class of the mix does at the least:
get-by-key (reads), read-then-update by key with a version check (updates), insert of the case
and person rows of a registration (intake, the rows of bench/common.py's ``bare_case_rows``),
and a GROUP BY over the office's cases (reports). No session, sign-in, CSRF, templates,
validation, encryption, triage or audit. Served by the same gunicorn settings as Nansen:

    BARE_DATABASE_URL=sqlite:///... gunicorn --workers 5 bench.bare_app:app

SQLite gets what Nansen's engine gets (app/database.py): WAL, foreign keys, a 10 s busy
timeout, synchronous=NORMAL, and BEGIN IMMEDIATE for transactions that write.
Rows it inserts carry references starting with ``W10B-`` (deleted by the bench afterwards).
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask, Response, abort, redirect, request
from sqlalchemy import MetaData, Table, create_engine, event, func, insert, select, update

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import bare_case_rows  # noqa: E402

REFERENCE_PREFIX = "W10B-"
SQLITE_BUSY_TIMEOUT_MS = 10_000  # as app/database.py

engine = create_engine(os.environ["BARE_DATABASE_URL"], pool_pre_ping=True, hide_parameters=True)
if engine.dialect.name == "sqlite":
    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
                       "synchronous=NORMAL"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("read_only") else "BEGIN IMMEDIATE")

metadata = MetaData()
case = Table("asylum_case", metadata, autoload_with=engine)
person = Table("person", metadata, autoload_with=engine)
engine.dispose()  # connections are made again in each worker after the fork

app = Flask(__name__)


def _read():
    return engine.connect().execution_options(read_only=True)


@app.get("/bare/ping")
def ping():
    return "ok"


@app.get("/bare/case/<case_id>")
def get_by_key(case_id: str):
    with _read() as conn:
        row = conn.execute(select(case.c.reference, case.c.status, case.c.version)
                           .where(case.c.id == case_id)).first()
    if row is None:
        abort(404)
    return f"<p>{row.reference} {row.status} {row.version}</p>"


@app.get("/bare/case/<case_id>/form")
def form(case_id: str):
    with _read() as conn:
        row = conn.execute(select(case.c.reference, case.c.version).where(case.c.id == case_id)).first()
    if row is None:
        abort(404)
    return f"{row.reference} {row.version}"


@app.post("/bare/search")
def search():
    with _read() as conn:
        row = conn.execute(select(case.c.id, case.c.status).where(
            case.c.reference == request.form.get("reference", ""))).first()
    return f"<p>{row.id if row else ''}</p>"


@app.post("/bare/case/<case_id>")
def update_by_key(case_id: str):
    version = request.form.get("version", "")
    if not version.isdigit():
        abort(400)
    with engine.begin() as conn:
        changed = conn.execute(update(case).where(case.c.id == case_id, case.c.version == int(version))
                               .values(version=case.c.version + 1, updated_at=datetime.now(UTC))).rowcount
    if not changed:
        return "changed meanwhile", 409
    return redirect(f"/bare/case/{case_id}", 303)


@app.get("/bare/register")
def register_form():
    return "<form method=post></form>"


@app.post("/bare/register")
def register():
    payload = json.loads(request.form["payload"])
    reference = REFERENCE_PREFIX + uuid.uuid4().hex[:12]
    row, people = bare_case_rows(payload, int(request.form["office_id"]), int(request.form["received_by_id"]),
                                 reference)
    with engine.begin() as conn:
        conn.execute(insert(case), [row])
        conn.execute(insert(person), people)
    return redirect(f"/bare/case/{row['id']}", 303)


def _aggregate(office_id: int):
    with _read() as conn:
        return conn.execute(select(case.c.track, case.c.status, func.count()).where(case.c.office_id == office_id)
                            .group_by(case.c.track, case.c.status).order_by(case.c.track, case.c.status)).all()


@app.get("/bare/report")
def report():
    rows = _aggregate(request.args.get("office", type=int) or 0)
    return "<table>" + "".join(f"<tr><td>{t}</td><td>{s}</td><td>{n}</td></tr>" for t, s, n in rows) + "</table>"


@app.post("/bare/export")
def export():
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["track", "status", "cases"])
    writer.writerows(_aggregate(request.args.get("office", type=int) or 0))
    return Response(out.getvalue(), mimetype="text/csv")
