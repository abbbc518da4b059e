"""Dashboard figures kept for a few minutes (app/reports/figures.py): the page and the PDF
summary show the same numbers, a look again within the maximum age reads them instead of the
database, "compute again" and expiry compute them anew, kept figures come back equal to computed
ones, and a store that is down or holds something unreadable only means computing them."""

from __future__ import annotations

import json

import pytest
import redis
from flask_babel import force_locale

from app.extensions import db
from app.intake.models import Case
from app.reports import exports, figures, queries, services
from app.reports.labels import track_labeller
from tests.conftest import captured_statements
from tests.functional.test_rate_limit_shared import REDIS_URL, redis_reachable
from tests.integration.test_report_queries import hq, pdf_text, staff, world  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("world")  # the caseload of test_report_queries


@pytest.fixture
def keeping(app):
    app.config["REPORT_FIGURES_MAX_AGE"] = 300
    yield app
    app.config["REPORT_FIGURES_MAX_AGE"] = 0


def add_pending_case(office):
    """One more regular case registered at HQ: the backlog then counts one more."""
    case = db.session.query(Case).filter_by(office_id=office.id, status="registered").first()
    twin = Case(reference="HQ-EXTRA-1", office_id=office.id, made_on=case.made_on, registered_on=case.registered_on,
                track=case.track, status="registered", received_by_id=case.received_by_id)
    db.session.add(twin)
    db.session.commit()


def backlog_total(d: queries.Dashboard) -> int:
    return sum(row.cases for row in d.backlog)


def test_kept_figures_come_back_equal_to_the_computed_ones(office, keeping):
    computed = queries.dashboard(hq(office))
    assert computed.backlog and computed.flow and computed.decision_times and computed.recognition \
        and computed.workload and computed.throughput and computed.late_registrations  # every section has rows
    first = figures.dashboard(hq(office))
    with captured_statements() as seen:
        again = figures.dashboard(hq(office))
    assert seen == []
    assert again.dashboard == computed == first.dashboard
    assert again.computed_at == first.computed_at


def test_a_look_again_shows_the_kept_figures_until_computed_again(office, keeping):
    before = figures.dashboard(hq(office))
    add_pending_case(office)
    kept = figures.dashboard(hq(office))
    assert backlog_total(kept.dashboard) == backlog_total(before.dashboard)
    fresh = figures.dashboard(hq(office), fresh=True)
    assert backlog_total(fresh.dashboard) == backlog_total(before.dashboard) + 1
    assert fresh.computed_at >= before.computed_at
    assert backlog_total(figures.dashboard(hq(office)).dashboard) == backlog_total(fresh.dashboard)


def test_figures_expire_after_the_maximum_age(office, keeping, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(figures.time, "monotonic", lambda: clock[0])
    before = figures.dashboard(hq(office))
    add_pending_case(office)
    clock[0] += 299
    assert backlog_total(figures.dashboard(hq(office)).dashboard) == backlog_total(before.dashboard)
    clock[0] += 2
    assert backlog_total(figures.dashboard(hq(office)).dashboard) == backlog_total(before.dashboard) + 1


def test_other_filters_are_other_figures(office, keeping):
    all_tracks = figures.dashboard(hq(office))
    regular = figures.dashboard(hq(office, track="regular"))
    assert regular.dashboard == queries.dashboard(hq(office, track="regular"))
    assert regular.dashboard != all_tracks.dashboard


def test_nothing_is_kept_at_maximum_age_zero(office, app):
    assert app.config["REPORT_FIGURES_MAX_AGE"] == 0
    before = figures.dashboard(hq(office))
    add_pending_case(office)
    assert backlog_total(figures.dashboard(hq(office)).dashboard) == backlog_total(before.dashboard) + 1


def test_the_pdf_summary_shows_the_figures_the_dashboard_showed(office, keeping, make_user, monkeypatch):
    """The page keeps its figures (with the caseworker sections); the summary, which needs fewer
    sections, uses them: no query of the dashboard's runs for the export."""
    supervisor = make_user("supervisor", username="sup")
    shown = figures.dashboard(hq(office))
    add_pending_case(office)

    def not_again(*args, **kwargs):
        raise AssertionError("the summary computed its figures again")

    monkeypatch.setattr(figures.queries, "dashboard", not_again)
    made = services.export_report("summary", hq(office), acting_user=supervisor)
    assert f"Figures computed at {shown.computed_at:%Y-%m-%d %H:%M} UTC" in pdf_text(made.content)


def test_the_pdf_listing_shows_the_caseworker_figures_the_dashboard_showed(office, keeping, make_user, monkeypatch):
    supervisor = make_user("supervisor", username="sup")
    shown = figures.dashboard(hq(office))
    fresh_listing = services.report_html("listing", hq(office))

    def not_again(*args, **kwargs):
        raise AssertionError("the listing queried the caseworker figures again")

    monkeypatch.setattr(services.queries, "workload", not_again)
    monkeypatch.setattr(services.queries, "throughput", not_again)
    made = services.export_report("listing", hq(office), acting_user=supervisor)
    text = pdf_text(made.content)
    assert f"Figures computed at {shown.computed_at:%Y-%m-%d %H:%M} UTC" in text
    assert "Alice Worker" in text and "Alice Worker" in fresh_listing


@pytest.mark.parametrize("kind", sorted(exports.DASHBOARD_SECTIONS))
def test_a_csv_export_of_a_dashboard_section_shows_what_the_dashboard_showed(office, keeping, make_user, kind):
    """After the page, a CSV export of one of its sections is the kept rows: equal to what the
    section's query gave then, no report query run, even once the data has changed."""
    supervisor = make_user("supervisor", username="sup")
    computed = exports.table_rows(kind, hq(office))
    figures.dashboard(hq(office))
    add_pending_case(office)
    with captured_statements() as seen:
        made = services.export_report(kind, hq(office), acting_user=supervisor)
    assert made.content == exports.to_csv(*computed)
    assert not [s for s in seen if "asylum_case" in s or "decision" in s]  # only the audit event's statements


def test_a_csv_export_with_nothing_kept_is_computed(office, keeping, make_user):
    supervisor = make_user("supervisor", username="sup")
    add_pending_case(office)
    made = services.export_report("backlog", hq(office), acting_user=supervisor)
    assert made.content == exports.to_csv(*exports.table_rows("backlog", hq(office)))
    assert b"regular,registered," in made.content


def test_the_eurostat_exports_are_always_read_afresh(office, keeping, make_user, monkeypatch):
    supervisor = make_user("supervisor", username="sup")
    figures.dashboard(hq(office))
    asked = []
    monkeypatch.setattr(exports.queries, "eurostat_applicants", lambda f: asked.append(f) or [])
    services.export_report("eurostat_applicants", hq(office), acting_user=supervisor)
    assert asked == [hq(office)]


def test_the_page_figures_serve_the_summary_without_their_caseworker_sections(office, keeping):
    """The summary reads the page's kept figures without rebuilding the per-caseworker rows: what
    it gets equals what it would compute (those sections None), and the page still gets them."""
    page = figures.dashboard(hq(office))
    for_summary = figures.kept(hq(office), caseworkers=False)
    assert for_summary.dashboard == queries.dashboard(hq(office), caseworkers=False)
    assert for_summary.dashboard.workload is None and for_summary.dashboard.throughput is None
    assert for_summary.computed_at == page.computed_at
    assert figures.kept(hq(office)).dashboard.throughput == page.dashboard.throughput != []


def test_the_summary_alone_keeps_no_caseworker_figures_for_the_listing(office, keeping):
    """Figures kept by a summary export lack the caseworker sections: the listing reads those."""
    figures.dashboard(hq(office), caseworkers=False)
    assert figures.kept(hq(office)) is None
    assert figures.kept(hq(office), caseworkers=False) is not None


def damaged(main: str, part: str, how: str) -> tuple[str | None, str | None]:
    """A real kept pair (main part, per-caseworker part) damaged in one way."""
    document = json.loads(main)
    match how:
        case "not json":
            return "not json", part
        case "another format":
            return json.dumps({**document, "format": 999}), part
        case "no time":
            return json.dumps({"format": figures.FORMAT, "sections": document["sections"]}), part
        case "row of another shape":
            return json.dumps({**document, "sections": {**document["sections"], "backlog": [["regular"]]}}), part
        case "part missing":
            return main, None
        case "part of another computation":
            return main, json.dumps({**json.loads(part), "computed_at": "2026-01-01T00:00:00"})
        case "part damaged":
            return main, '{"format": 2, "computed_at": "' + document["computed_at"] + '", "sections": []}'
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["not json", "another format", "no time", "row of another shape", "part missing",
                                 "part of another computation", "part damaged"])
def test_unreadable_kept_figures_are_computed_again(office, keeping, how):
    key = figures._key(hq(office), True)
    main, part = figures._dump(figures.dashboard(hq(office)))
    main, part = damaged(main, part, how)
    store = figures._store()
    store.set(key, main, 300)
    if part is None:
        store._entries.pop(key + figures.CASEWORKERS_PART)
    else:
        store.set(key + figures.CASEWORKERS_PART, part, 300)
    add_pending_case(office)
    assert figures.dashboard(hq(office)).dashboard == queries.dashboard(hq(office))


def test_the_summary_does_not_read_the_per_caseworker_part(office, keeping):
    page = figures.dashboard(hq(office))
    figures._store()._entries.pop(figures._key(hq(office), True) + figures.CASEWORKERS_PART)
    assert figures.kept(hq(office)) is None  # the page needs it
    assert figures.kept(hq(office), caseworkers=False).computed_at == page.computed_at


def test_a_store_that_is_down_means_computing_the_figures(office, keeping):
    keeping.extensions["nansen.report_figures"] = figures.RedisStore("redis://127.0.0.1:1/0")
    first = figures.dashboard(hq(office))
    add_pending_case(office)
    assert backlog_total(figures.dashboard(hq(office)).dashboard) == backlog_total(first.dashboard) + 1


@pytest.mark.skipif(not redis_reachable(), reason=f"no Redis reachable at {REDIS_URL} (TEST_REDIS_URL)")
def test_workers_share_the_figures_through_redis(office, keeping, app_factory):
    client = redis.Redis.from_url(REDIS_URL)
    key = figures._key(hq(office), True)
    part = key + figures.CASEWORKERS_PART
    client.delete(key, part)
    try:
        keeping.extensions["nansen.report_figures"] = figures.RedisStore(REDIS_URL)
        shown = figures.dashboard(hq(office))
        assert 0 < client.ttl(key) <= 300 and 0 < client.ttl(part) <= 300
        assert b"HQ-" not in client.get(key) + client.get(part)  # aggregates only: no reference
        add_pending_case(office)
        other = app_factory(REPORT_FIGURES_STORE=REDIS_URL, REPORT_FIGURES_MAX_AGE=300)
        with other.app_context():
            assert figures.dashboard(hq(office)).dashboard == shown.dashboard
    finally:
        client.delete(key, part)


def test_the_same_figures_in_the_same_language_draw_their_charts_once(office):
    d = queries.dashboard(hq(office))
    labels = track_labeller()
    services._charts_kept.clear()
    with force_locale("en"):
        first = services.dashboard_charts(d, labels)
        assert services.dashboard_charts(d, labels) is first
        assert services.dashboard_charts(queries.dashboard(hq(office, track="regular")), labels) is not first
    with force_locale("fr"):
        french = services.dashboard_charts(d, labels)
        assert french is not first and "Plus de 12 mois" in french["ageing"].svg != first["ageing"].svg
        assert french == services._draw_dashboard_charts(d, labels)


def test_kept_charts_are_bounded(office, monkeypatch):
    monkeypatch.setattr(services, "_draw_dashboard_charts", lambda d, labels: {})
    d = queries.dashboard(hq(office))
    services._charts_kept.clear()
    with force_locale("en"):
        for n in range(40):
            services.dashboard_charts(d, lambda track, n=n: f"{track} {n}")
    assert len(services._charts_kept) == services._CHARTS_KEPT
