"""Database engine settings that SQLAlchemy cannot take from a URL."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import event

from app.extensions import db

SQLITE_BUSY_TIMEOUT_MS = 10_000


def init_database(app: Flask) -> None:
    """SQLite: WAL (readers never block the writer), foreign keys on, a busy timeout, and every
    transaction started with BEGIN IMMEDIATE so two writers can never interleave between reading
    the audit chain head and appending to it (SECURITY.md, audit trail). PostgreSQL needs nothing
    here: the audit service locks the chain head row instead."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def configure_sqlite(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # let the "begin" hook below issue BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def begin_immediate(conn):
        # Connections opened with execution_options(read_only=True) only read: a deferred
        # BEGIN lets them run beside a writer (WAL) instead of queueing for its lock.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("read_only") else "BEGIN IMMEDIATE")


def commit_after_read() -> None:
    """Commit the current transaction (a read service's audit event) without expiring what the
    service loaded in it: the page renders those objects next, and expired ones would each be
    reloaded with a query of their own. They were read in the transaction just committed, so
    they are current as of that commit; only the objects' expiry is skipped, nothing else."""
    session = db.session()
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = True
