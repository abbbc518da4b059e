"""Report pages (app/reports/views.py): who may see them, filter validation, what the page shows
(values, charts that obey the CSP, no claimant data), and audited, no-store exports."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.decisions.models import Decision
from app.extensions import db
from app.intake.models import Case, Person
from app.reports.forms import default_period

CANARY_FAMILY, CANARY_GIVEN, CANARY_REFERENCE = "Wolfingtonova", "Perpetua", "CANARYPG"
EVIL_NAME = "=HYPERLINK(\"http://x\")"


def pdf_text(content: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def recent(days_ago: int) -> date:
    return datetime.now(UTC).date() - timedelta(days=days_ago)


def add_case(office, registrar, n: int, *, track="regular", status="registered", registered: date, deadline=None,
             assigned=None, nationality="SYR", persons=(("SYR", "M", "Y18-34"),)) -> Case:
    case = Case(reference=f"{CANARY_REFERENCE}{n:03d}", office_id=office.id, made_on=registered,
                registered_on=registered, received_by_id=registrar.id, track=track, status=status,
                statutory_deadline=deadline, assigned_to_id=assigned.id if assigned else None,
                principal_nationality=nationality)
    db.session.add(case)
    db.session.flush()
    for position, (nationality_code, sex, age) in enumerate(persons):
        person = Person(case_id=case.id, position=position, is_principal=position == 0,
                        nationalities=[nationality_code], stat_sex=sex, stat_age_group=age)
        db.session.add(person)
        db.session.flush()
        person.identity = {"family_name": CANARY_FAMILY, "given_names": CANARY_GIVEN}
    return case


def issue(case: Case, outcome: str, when: datetime, by) -> None:
    db.session.add(Decision(case_id=case.id, person_id=case.persons[0].id, office_id=case.office_id,
                            outcome=outcome, status="issued",
                            issued_at=when, procedure_track=case.track, drafted_by_id=by.id,
                            last_edited_by_id=by.id, legal_basis=[]))


@pytest.fixture
def caseload(office, other_office, make_user):
    """HQ: 3 pending regular cases (one assigned to a caseworker whose display name is a formula),
    1 pending border case overdue, 2 decided (SYR refugee, VEN rejected). NORTH: 5 pending."""
    registrar = make_user("registration_officer")
    worker = make_user("caseworker", username="evil")
    worker.full_name = EVIL_NAME
    add_case(office, registrar, 1, registered=recent(3))
    add_case(office, registrar, 2, registered=recent(10))
    add_case(office, registrar, 3, status="assigned", assigned=worker, registered=recent(40))
    add_case(office, registrar, 4, track="border", status="triaged", registered=recent(20), deadline=recent(1))
    decided = add_case(office, registrar, 5, status="decision_issued", registered=recent(30))
    issue(decided, "refugee_status", datetime.now(UTC) - timedelta(days=2), worker)
    rejected = add_case(office, registrar, 6, status="decision_issued", registered=recent(30), nationality="VEN",
                        persons=(("VEN", "F", "Y35-64"),))
    issue(rejected, "rejected_unfounded", datetime.now(UTC) - timedelta(days=2), worker)
    for n in range(5):
        add_case(other_office, registrar, 100 + n, registered=recent(5))
    db.session.commit()
    return worker


def cells(html: str, caption: str) -> list[list[str]]:
    """The body rows of the table with ``caption`` as lists of cell texts."""
    table = re.search(r"<caption>" + re.escape(caption) + r"</caption>(.*?)</table>", html, re.S).group(1)
    body = table.split("<tbody>", 1)[1]
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def export_events() -> list[AuditEvent]:
    db.session.rollback()
    return db.session.scalars(select(AuditEvent).where(AuditEvent.code == int(EventCode.REPORT_EXPORTED))
                              .order_by(AuditEvent.id)).all()


# -- access -----------------------------------------------------------------------------------------

def test_caseworker_and_registration_officer_get_403(signed_in, caseload):
    """Reports need REPORTS_VIEW: a caseworker is refused the page and every export, and sees no nav entry."""
    for role in ("caseworker", "registration_officer"):
        browser, _user = signed_in(role)
        assert browser.get("/reports/").status_code == 403
        token = browser.csrf("/auth/account")
        assert browser.client.post("/reports/export/backlog", data={"csrf_token": token}).status_code == 403
        assert 'href="/reports/"' not in browser.get("/").get_data(as_text=True)
    assert export_events() == []


def test_supervisor_dashboard_shows_office_figures_without_claimant_data(signed_in, caseload):
    """The page shows the office's numbers (never another office's), a nav entry, and no name or
    reference of a claimant anywhere."""
    browser, _user = signed_in("supervisor")
    response = browser.get("/reports/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert '<a href="/reports/" aria-current="page">' in html
    border, regular = "Border procedure (mandatory)", "Regular procedure"
    assert cells(html, "Pending cases: tracks by status") == [[border, "0", "1", "0"], [regular, "2", "0", "1"]]
    assert cells(html, "Pending cases: tracks by age since registration") == [
        [border, "1", "0", "0", "0", "0"], [regular, "2", "1", "0", "0", "0"]]
    assert cells(html, "Pending cases by statutory deadline") == [[border, "0", "1"]]
    assert cells(html, "First-instance decisions by nationality and outcome") == [
        ["Syrian Arab Republic", "1", "1", "0", "0", "100.0", "0", "0.0", "0"],
        ["Venezuela, Bolivarian Republic of", "1", "0", "0", "1", "0.0", "0", "0.0", "0"]]
    assert cells(html, "Days from registration to the first-instance decision (first examination round)") == [
        [regular, "2", "28.0", "28.0"]]
    # 2 decisions in 26 weeks: 2 / 26 = 0.08 a week; the supervisor is staff too, with nothing.
    assert cells(html, "Caseworkers: pending cases assigned and decisions issued in the period") == [
        ["=HYPERLINK(&#34;http://x&#34;)", "1", "0", "2", "0.08"], ["Test Supervisor", "0", "0", "0", "0.00"]]
    for canary in (CANARY_FAMILY, CANARY_GIVEN, CANARY_REFERENCE):
        assert canary not in html


def test_charts_are_inline_svg_with_text_alternatives_and_no_inline_style(signed_in, caseload):
    """Three charts (trend lines, stacked bars) as accessible inline SVG with a title, a text
    alternative and a table beside them; nothing the CSP would block (no style, no script)."""
    browser, _user = signed_in("supervisor")
    response = browser.get("/reports/")
    html = response.get_data(as_text=True)
    assert "style-src 'self'" in response.headers["Content-Security-Policy"]
    for slug in ("flow", "backlog", "ageing"):
        assert f'id="chart-{slug}" role="img" aria-labelledby="chart-{slug}-title chart-{slug}-desc"' in html
        assert re.search(f'<title id="chart-{slug}-title">[^<]+</title><desc id="chart-{slug}-desc">[^<]+</desc>', html)
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg"') == 3
    assert "<style" not in html and "<script" not in html and " style=" not in html
    assert 'fill="#0072B2"' in html  # colours arrive as presentation attributes


# -- filters -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "message"), [
    ("date_from=2026-13-01", "Not a valid date value."),
    ("date_from=2026-08-01&date_to=2026-07-01", "The end of the period must not be before its start."),
    ("date_from=2001-01-01&date_to=2026-01-01", "Choose a period of at most three years."),
    ("date_from=1999-12-31&date_to=2000-06-01", "Enter a date from 2000 on."),
    ("track=no_such_track", "Not a valid choice"),
    ("nationality=ZZZ", "Not a valid choice"),
    ("nationality=%3Cscript%3E", "Not a valid choice"),
    ("office=abc", "Not a valid choice"),
])
def test_bad_filters_answer_400_with_the_message(signed_in, caseload, query, message):
    """Malformed or impossible filters answer 400 with a message next to the field, never 500."""
    browser, _user = signed_in("supervisor")
    response = browser.get(f"/reports/?{query}")
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert "<script>" not in response.get_data(as_text=True)


def test_another_offices_figures_are_refused_and_its_supervisor_sees_only_its_own(signed_in, caseload,
                                                                                 other_office):
    """Asking for another office is a bad filter (400, nothing exported); that office's supervisor
    sees its 5 pending cases and nothing of HQ."""
    browser, user = signed_in("supervisor")
    assert browser.get(f"/reports/?office={other_office.id}").status_code == 400
    token = browser.csrf("/reports/")
    assert browser.client.post(f"/reports/export/backlog?office={other_office.id}",
                               data={"csrf_token": token}).status_code == 400
    assert export_events() == []
    north, _north_user = signed_in("supervisor", office_id=other_office.id)
    html = north.get("/reports/").get_data(as_text=True)
    assert cells(html, "Pending cases: tracks by status") == [["Regular procedure", "5"]]
    assert cells(html, "First-instance decisions by nationality and outcome") == [
        ["No decision issued in this period."]]


def test_filters_narrow_the_figures(signed_in, caseload):
    """A track filter keeps that track; a nationality filter keeps that citizenship."""
    browser, _user = signed_in("supervisor")
    html = browser.get("/reports/?track=border").get_data(as_text=True)
    assert [row[0] for row in cells(html, "Pending cases: tracks by status")] == ["Border procedure (mandatory)"]
    html = browser.get("/reports/?nationality=VEN").get_data(as_text=True)
    assert [row[0] for row in cells(html, "First-instance decisions by nationality and outcome")] == [
        "Venezuela, Bolivarian Republic of"]


# -- exports --------------------------------------------------------------------------------------------

def test_csv_export_is_audited_no_store_and_neutralises_formulas(signed_in, caseload):
    """A CSV export is an attachment named by report and period only, not cached, audited with
    its filters; a caseworker name that is a formula arrives quoted."""
    browser, user = signed_in("supervisor")
    start, end = default_period(datetime.now(UTC).date())
    response = browser.post("/reports/export/workload?track=", token_from="/reports/")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="nansen-workload-{start.isoformat()}-to-{end.isoformat()}.csv"')
    rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert rows[0] == ["caseworker", "open_assigned", "overdue", "decisions_issued", "decisions_per_week"]
    assert ["'" + EVIL_NAME, "1", "0", "2", "0.08"] in rows
    [event] = export_events()
    assert event.actor_id == user.id
    assert event.details["report"] == "workload" and event.details["format"] == "csv"
    assert event.details["filters"]["date_from"] == start.isoformat()
    assert event.details["filters"]["office_id"] == user.office_id


def test_every_export_holds_no_claimant_data_and_each_is_audited(signed_in, caseload):
    """Every CSV, the Eurostat returns and both PDFs: no claimant name or reference in the file
    (PDF text extracted), one REPORT_EXPORTED event each."""
    from app.reports.services import EXPORTS

    browser, _user = signed_in("supervisor")
    for kind, spec in EXPORTS.items():
        response = browser.post(f"/reports/export/{kind}", token_from="/reports/")
        assert response.status_code == 200, kind
        body = pdf_text(response.get_data()) if spec.format == "pdf" else response.get_data().decode("utf-8-sig")
        for canary in (CANARY_FAMILY, CANARY_GIVEN, CANARY_REFERENCE):
            assert canary not in body, kind
        if kind == "summary":
            assert "Backlog by track and status" in body and "Recognition rate by nationality" in body
        if kind == "eurostat_decisions":
            assert ",SY,SYR,M,Y18-34,1,1,1,0,0,0" in body
    assert [e.details["report"] for e in export_events()] == list(EXPORTS)


def test_export_needs_the_csrf_token_and_a_known_report(signed_in, caseload):
    """No token: 400 and nothing exported; an unknown report: 404."""
    browser, _user = signed_in("supervisor")
    assert browser.client.post("/reports/export/backlog").status_code == 400
    assert browser.post("/reports/export/everything", token_from="/reports/").status_code == 404
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.code == int(EventCode.REPORT_EXPORTED))) == 0


def test_the_page_says_when_its_figures_were_computed_and_computes_them_again_on_request(signed_in, caseload,
                                                                                            office, app):
    """With figures kept (as in production), a look again shows the same figures even after a
    new case; the page says when they were computed, and its link computes them again."""
    app.config["REPORT_FIGURES_MAX_AGE"] = 300
    browser, _user = signed_in("supervisor")
    html = browser.get("/reports/?track=regular").get_data(as_text=True)
    assert cells(html, "Pending cases: tracks by status") == [["Regular procedure", "2", "1"]]
    assert re.search(r"Figures computed at \d{4}-\d\d-\d\d \d\d:\d\d UTC", html)
    link = re.search(r'<a href="(/reports/\?[^"]*fresh=1[^"]*)">Compute them again now</a>', html).group(1)
    assert "track=regular" in link
    add_case(office, caseload, 7, registered=recent(1))
    db.session.commit()
    again = browser.get("/reports/?track=regular").get_data(as_text=True)
    assert cells(again, "Pending cases: tracks by status") == [["Regular procedure", "2", "1"]]
    fresh = browser.get(link.replace("&amp;", "&")).get_data(as_text=True)
    assert cells(fresh, "Pending cases: tracks by status") == [["Regular procedure", "3", "1"]]
