"""Report queries have a time limit (REPORT_QUERY_TIMEOUT_SECONDS, app/reports/queries.py): a
query past it is stopped by the database (PostgreSQL statement_timeout; SQLite a progress
handler), the supervisor gets a 503 page that says so and keeps the filters, nothing is exported
or recorded, and the limit never follows the pooled connection into other work."""

from __future__ import annotations

import time

import pytest

from app.extensions import db
from app.reports import queries
from tests.functional.test_report_pages import caseload, export_events  # noqa: F401 - caseload is a fixture

# Counts to twenty million, one row at a time: seconds of work on either database, so only the
# limit can stop it within the test's limit of a fraction of a second. If the limit did not
# work, the query would finish and return its count, and the tests below would fail.
RUNAWAY = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000000) "
           "SELECT count(*) FROM n")
# Enough steps to meet SQLite's progress handler many times, quick without a limit.
SHORT = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) SELECT count(*) FROM n"
LIMIT_SECONDS = 0.2


@pytest.fixture
def limited(app):
    app.config["REPORT_QUERY_TIMEOUT_SECONDS"] = LIMIT_SECONDS
    yield app
    app.config["REPORT_QUERY_TIMEOUT_SECONDS"] = 60.0


def run_in_report_snapshot(sql: str):
    with queries.read_only_snapshot():
        return queries._snapshot.get().exec_driver_sql(sql).scalar()


def test_a_report_query_past_the_limit_is_stopped(limited):
    with pytest.raises(queries.ReportTooSlow) as stopped:
        run_in_report_snapshot(RUNAWAY)
    assert stopped.value.limit_seconds == LIMIT_SECONDS
    assert "limit of 0.2 seconds" in str(stopped.value)


def test_a_report_query_within_the_limit_runs(limited):
    assert run_in_report_snapshot(SHORT) == 20000


def test_the_limit_does_not_follow_the_pooled_connection(limited):
    """After the report, the same database connection runs other work with no limit: on
    PostgreSQL the setting was local to the report's transaction; on SQLite the handler is gone
    (were it left, it would interrupt the first statement after the deadline)."""
    with queries.read_only_snapshot():
        connection = queries._snapshot.get()
        raw = connection.connection.driver_connection
        if db.engine.dialect.name == "postgresql":
            assert connection.exec_driver_sql("SHOW statement_timeout").scalar() == "200ms"
    time.sleep(LIMIT_SECONDS + 0.05)  # the report's deadline has passed
    if db.engine.dialect.name == "postgresql":
        assert raw.execute("SHOW statement_timeout").fetchone()[0] == "0"
        raw.rollback()
    else:
        assert raw.execute(SHORT).fetchone()[0] == 20000


def test_other_database_errors_are_not_taken_for_the_limit(limited):
    with pytest.raises(Exception) as failed:
        run_in_report_snapshot("SELECT * FROM no_such_table")
    assert not isinstance(failed.value, queries.ReportTooSlow)


@pytest.fixture
def runaway_backlog(monkeypatch, limited):
    """The backlog aggregate, as a planner gone wrong would run it."""
    monkeypatch.setattr(queries, "backlog", lambda f: run_in_report_snapshot(RUNAWAY))


@pytest.mark.usefixtures("caseload")
def test_the_dashboard_says_the_report_was_stopped(signed_in, runaway_backlog):
    browser, _user = signed_in("supervisor")
    response = browser.get("/reports/?track=regular")
    html = response.get_data(as_text=True)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"
    assert "took longer than 0.2 seconds to compute and was stopped" in html
    assert '<option selected value="regular">' in html  # the filters are kept, to be narrowed
    assert "Figures computed at" not in html


@pytest.mark.parametrize("kind", ["backlog", "summary"])
@pytest.mark.usefixtures("caseload")
def test_an_export_stopped_at_the_limit_records_nothing(signed_in, runaway_backlog, kind):
    browser, _user = signed_in("supervisor")
    token = browser.csrf("/auth/account")
    response = browser.client.post(f"/reports/export/{kind}", data={"csrf_token": token})
    assert response.status_code == 503
    assert "was stopped" in response.get_data(as_text=True)
    assert "attachment" not in response.headers.get("Content-Disposition", "")
    assert export_events() == []
