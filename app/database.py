"""Database engine settings that SQLAlchemy cannot take from a URL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from flask import Flask, current_app, request
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError

from app.extensions import db

SQLITE_BUSY_TIMEOUT_MS = 10_000
READS_ONLY_ATTRIBUTE = "nansen_reads_only"
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")


class WriteInReadOnlyTransaction(RuntimeError):
    """A statement that writes was sent on a connection declared read-only: a programming error
    (a view marked ``reads_only`` that writes after all); the statement is not sent."""


def reads_only(view):
    """Declare that a view never writes (no audit event either). Its GET requests run their
    session's queries in one read-only transaction: on SQLite a deferred BEGIN, so the page reads
    beside the writers (WAL) instead of holding the database's single write lock while it
    queries and renders, which every other request does from its first query (BEGIN IMMEDIATE,
    below). A write in that transaction raises WriteInReadOnlyTransaction before it is sent."""
    setattr(view, READS_ONLY_ATTRIBUTE, True)
    return view


def _begin_read_only_when_declared() -> None:
    if request.method not in ("GET", "HEAD") or request.endpoint is None:
        return
    if getattr(current_app.view_functions.get(request.endpoint), READS_ONLY_ATTRIBUTE, False):
        db.session.connection(execution_options={"read_only": True})


def init_database(app: Flask) -> None:
    """SQLite: WAL (readers never block the writer), foreign keys on, a busy timeout, and every
    transaction started with BEGIN IMMEDIATE so two writers can never interleave between reading
    the audit chain head and appending to it (SECURITY.md, audit trail). PostgreSQL needs none of
    that: the audit service locks the chain head row instead. Both: views declared ``reads_only``
    read in a read-only transaction, and no connection declared read-only ever sends a write."""
    with app.app_context():
        engine = db.engine
    # Before every other hook that may read through the session (access control, the limiter).
    app.before_request_funcs.setdefault(None, []).insert(0, _begin_read_only_when_declared)

    @event.listens_for(engine, "before_cursor_execute")
    def refuse_writes_when_read_only(conn, _cursor, statement, *_args):
        if conn.get_execution_options().get("read_only") and statement.lstrip()[:7].upper().startswith(_WRITES):
            raise WriteInReadOnlyTransaction("a statement that writes was sent on a read-only connection")

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


@contextmanager
def keeping_loaded(kept: Iterable | None = None) -> Iterator:
    """A commit inside the block does not expire the objects the session holds (SQLAlchemy's
    ``expire_on_commit``, switched off for the block only, whatever the block raises). Expired
    objects are reloaded on next use, each with a query of its own; objects read or written in
    the transaction just committed are current as of that commit, so reloading them buys
    nothing. With ``kept``, when the block ends normally every other object is expired after
    all, as after an ordinary commit: only ``kept`` stays loaded. Yields the session.

    The one place that toggles ``expire_on_commit``: ``commit_after_read`` below, and the
    decisions service that keeps the rows it just wrote."""
    session = db.session()
    session.expire_on_commit = False
    try:
        yield session
    finally:
        session.expire_on_commit = True
    if kept is not None:
        keep = {id(row) for row in kept}
        for row in list(session.identity_map.values()):
            if id(row) not in keep:
                session.expire(row)


def commit_after_read() -> None:
    """Commit the current transaction (a read service's audit event) without expiring what the
    service loaded in it: the page renders those objects next, and expired ones would each be
    reloaded with a query of their own. They were read in the transaction just committed, so
    they are current as of that commit; only the objects' expiry is skipped, nothing else."""
    with keeping_loaded() as session:
        session.commit()


def insert_table_rows(connection, table, rows: Sequence[dict]) -> None:
    """``rows`` given as dicts, every column of ``table`` (a SQLAlchemy Table) named, through
    ``insert_rows``: each value is first put in the driver's form by its column type's processor
    for this dialect, exactly as a Core INSERT would (dates and JSON on SQLite, JSON and binary
    wrappers on PostgreSQL, timezone checks). So the stored bytes are the same either way: on
    SQLite a timestamp is SQLAlchemy's text with its microseconds always written, not the sqlite3
    module's rendering, which drops them when they are zero and would then compare differently
    as text (and the audit chain hashes its stored values)."""
    if not rows:
        return
    columns = list(table.columns)
    missing = [column.name for column in columns if column.name not in rows[0]]
    if missing:  # a Core INSERT would apply their defaults; this path never guesses them
        raise ValueError(f"{table.name} rows lack columns: {', '.join(missing)}")
    dialect = connection.dialect
    converters = [(column.name, column.type.dialect_impl(dialect).bind_processor(dialect)) for column in columns]
    insert_rows(connection, table.name, [name for name, _convert in converters],
                [tuple(row[name] if convert is None else convert(row[name]) for name, convert in converters)
                 for row in rows])


def insert_rows(connection, table: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
    """Bulk INSERT of ``rows`` (tuples in the order of ``columns``, every value already in the
    driver's form: str, bytes, numbers) into ``table``, in ``connection``'s transaction: COPY on
    PostgreSQL, one executemany elsewhere. For the bulk paths (the demo generator, import
    batches, a registration's dozens of key rows): SQLAlchemy's per-row parameter handling and
    psycopg's one pipelined INSERT per row cost many times the database's own work (40,000 rows:
    0.6 s of CPU as INSERTs, 0.03 s as COPY). A driver error is raised as SQLAlchemy raises a
    failed INSERT (IntegrityError for a taken unique value, say), so callers catch one kind.

    Table and column names come from the models, never from input. COPY does not pass the
    engine's statement hooks (the read-only guard above): every caller also writes through
    SQLAlchemy in the same transaction, so a connection the guard refuses commits none of it."""
    if not rows:
        return
    quote = connection.dialect.identifier_preparer.quote
    names = ", ".join(quote(name) for name in columns)
    if connection.dialect.name != "postgresql":
        connection.exec_driver_sql(f"INSERT INTO {quote(table)} ({names}) "  # noqa: S608 - names from the models
                                   f"VALUES ({', '.join('?' * len(columns))})", list(rows))
        return
    statement = f"COPY {quote(table)} ({names}) FROM STDIN"
    driver_error = connection.dialect.loaded_dbapi.Error
    try:
        with connection.connection.driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
            write = copy.write_row
            for row in rows:
                write(row)
    except driver_error as exc:
        raise DBAPIError.instance(statement, None, exc, driver_error) from exc
