"""Migrations are the only way the schema changes: one head, the same schema as the models, and
a clean downgrade/upgrade round trip, on SQLite and on PostgreSQL.

PostgreSQL runs in a scratch database of its own (created and dropped here), so the shared test
database the other tests use is never touched.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.engine import make_url

from app import create_app, enable_migrations
from app.auth.models import User
from app.extensions import db
from config import TestingConfig

# SQLite cannot reflect expression-based (partial) indexes, so autogenerate skips them there and
# says so; PostgreSQL compares them.
pytestmark = pytest.mark.filterwarnings("ignore:.*expression-based index")

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")


def migration_app(url: str, tmp_path: Path):
    config = type("MigrationTestConfig", (TestingConfig,), {
        "SQLALCHEMY_DATABASE_URI": url, "AUDIT_CHECKPOINT_DIR": str(tmp_path / "checkpoints")})
    app = create_app(config)
    enable_migrations(app)
    return app


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    """The URL of an empty database: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL runs when TEST_DATABASE_URL is set")
    server = make_url(POSTGRES_URL)
    name = f"nansen_migrations_test_{os.getpid()}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def migrated(empty_database, tmp_path):
    """An application on the empty database, inside its context; engines disposed afterwards."""
    app = migration_app(empty_database, tmp_path)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def schema_differences() -> list:
    """What Alembic's autogenerate would still change to make the database match the models."""
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
        return compare_metadata(context, db.metadata)


def table_names() -> set[str]:
    with db.engine.connect() as conn:
        return set(inspect(conn).get_table_names())


def test_there_is_exactly_one_head():
    """Every migration descends from one line of history: exactly one Alembic head."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    heads = ScriptDirectory.from_config(config).get_heads()
    assert len(heads) == 1, f"several migration heads: {heads}"


def test_upgrade_from_empty_gives_the_models_schema(migrated):
    """Upgrading an empty database gives exactly the tables, columns, indexes and constraints the
    models declare: autogenerate finds nothing left to do."""
    assert table_names() == set()
    assert len(schema_differences()) >= len(db.metadata.tables)  # the comparison sees what is missing
    upgrade()
    assert schema_differences() == []
    assert table_names() == set(db.metadata.tables) | {"alembic_version"}


def test_no_account_exists_after_migration(migrated):
    """A fresh database has no user at all: the first administrator comes from the CLI."""
    upgrade()
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_downgrade_to_base_and_upgrade_again(migrated):
    """Downgrading to base removes every table (and on PostgreSQL the audit trigger function);
    upgrading again gives the models' schema once more."""
    upgrade()
    downgrade(revision="base")
    assert table_names() <= {"alembic_version"}
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as conn:
            functions = conn.scalars(text("SELECT proname FROM pg_proc WHERE proname LIKE 'audit_event%'")).all()
        assert functions == []
    upgrade()
    assert schema_differences() == []


def test_audit_table_is_append_only_after_upgrade(migrated):
    """The migration installs the triggers that refuse UPDATE and DELETE on audit_event."""
    from app.admin.services import initialise_keys
    from app.audit.codes import EventCode
    from app.audit.services import record_and_commit

    upgrade()
    initialise_keys()
    record_and_commit(EventCode.SETTINGS_CHANGED, details={"test": True})
    for statement in ("UPDATE audit_event SET outcome = 'failure'", "DELETE FROM audit_event"):
        with pytest.raises(Exception, match="append-only"):
            with db.engine.begin() as conn:
                conn.execute(text(statement))


def _insert_minimal(conn, table: str, **given) -> None:
    """INSERT a row into ``table`` as the database stands (reflected, not the models): ``given``
    values, and a placeholder for every other NOT NULL column without a default."""
    from datetime import UTC, datetime

    from sqlalchemy import Boolean, Date, DateTime, Integer, MetaData, Table

    reflected = Table(table, MetaData(), autoload_with=conn)
    row = dict(given)
    for column in reflected.columns:
        if column.name in row or column.nullable or column.server_default is not None or column.autoincrement is True:
            continue
        kind = column.type
        row[column.name] = (False if isinstance(kind, Boolean) else 1 if isinstance(kind, Integer)
                            else datetime(2026, 1, 5, tzinfo=UTC).date() if isinstance(kind, Date)
                            else datetime(2026, 1, 5, tzinfo=UTC) if isinstance(kind, DateTime)
                            else "[]" if "JSON" in type(kind).__name__.upper() else "x")
    conn.execute(reflected.insert().values(**row))


def test_decisions_get_their_case_office_on_upgrade_to_0010(migrated):
    """0010 fills the new decision.office_id from each decision's case, then makes it NOT NULL,
    so decisions made before it count for their office in the reports."""
    upgrade(revision="0009")
    with db.engine.begin() as conn:
        for office_id, code in ((1, "HQ"), (2, "NOR")):
            _insert_minimal(conn, "office", id=office_id, code=code, name=code)
        _insert_minimal(conn, "user_account", id=1, username="caseworker", office_id=1, role="caseworker")
        for case_id, office_id in (("case-hq", 1), ("case-nor", 2)):
            _insert_minimal(conn, "asylum_case", id=case_id, reference=case_id, office_id=office_id, version=1)
            _insert_minimal(conn, "person", id=f"p-{case_id}", case_id=case_id, position=0, version=1)
            _insert_minimal(conn, "decision", id=f"d-{case_id}", case_id=case_id, person_id=f"p-{case_id}",
                            drafted_by_id=1, last_edited_by_id=1, status="issued", version=1,
                            corrects_decision_id=None)
    upgrade(revision="0010")
    with db.engine.connect() as conn:
        found = dict(conn.execute(text("SELECT id, office_id FROM decision")).all())
        column = next(c for c in inspect(conn).get_columns("decision") if c["name"] == "office_id")
    assert found == {"d-case-hq": 1, "d-case-nor": 2}
    assert column["nullable"] is False
    downgrade(revision="0009")
    with db.engine.connect() as conn:
        assert "office_id" not in {c["name"] for c in inspect(conn).get_columns("decision")}
        assert conn.execute(text("SELECT count(*) FROM decision")).scalar() == 2


@pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite's planner names the index it uses for any table size")
def test_deleting_a_person_finds_its_interviews_and_decisions_by_index(migrated):
    """The cascade from person reads interview and decision by an index leading with person_id
    (0011), not by a scan of the whole table."""
    upgrade()
    with db.engine.connect() as conn:
        for table in ("interview", "decision"):
            plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN SELECT 1 FROM {table} WHERE person_id = 'p'"))  # noqa: S608 - constant names
            assert f"USING COVERING INDEX ix_{table}_person" in plan or f"USING INDEX ix_{table}_person" in plan, plan


def test_the_duplicate_check_reads_key_holders_from_one_index(migrated):
    """The key-holder lookup of the duplicate check is answered by ix_person_match_key_key_person
    (0012) alone: on SQLite a covering index, on PostgreSQL an index-only scan (the planner is
    told to avoid whole-table reads, as at a million cases; the table here is empty)."""
    upgrade()
    with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")
            conn.exec_driver_sql("SET enable_bitmapscan = off")
            plan = " ".join(str(row[0]) for row in conn.exec_driver_sql(
                "EXPLAIN SELECT key, person_id FROM person_match_key WHERE key IN ('\\x00'::bytea, '\\x01'::bytea)"))
            assert "Index Only Scan using ix_person_match_key_key_person" in plan, plan
        else:
            plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT key, person_id FROM person_match_key WHERE key IN (x'00', x'01')"))
            assert "USING COVERING INDEX ix_person_match_key_key_person" in plan, plan
