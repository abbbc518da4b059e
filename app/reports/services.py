"""Report services: the dashboard's data and charts, and audited exports.

``export_report`` owns its transaction: it builds the file (read-only queries), then records
REPORT_EXPORTED (which report, which format, the filters, the size) and commits, before the
caller hands the bytes out, as every export and print of the application is audited. Views
never write audit rows. The actor comes in as ``acting_user``; nothing here reads the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask import render_template

from app.audit.codes import EventCode
from app.audit.services import record
from app.auth.models import Office
from app.auth.permissions import Permission
from app.db_types import utcnow
from app.extensions import db
from app.reports import charts, exports, queries
from app.reports.labels import BUCKET_LABELS, bucket_label, nationality_label, status_label, track_label


@dataclass(frozen=True)
class ExportSpec:
    format: str  # csv / pdf
    title: str


#: Every export, in the order the page offers them. CSV: one per dashboard table and the two
#: Eurostat returns; PDF: the summary (every section with its charts) and the listing.
EXPORTS: dict[str, ExportSpec] = {
    "summary": ExportSpec("pdf", "Summary report"),
    "listing": ExportSpec("pdf", "Listing report"),
    "backlog": ExportSpec("csv", "Backlog by track and status"),
    "ageing": ExportSpec("csv", "Ageing of the backlog"),
    "weekly_flow": ExportSpec("csv", "Inflow and outflow per week"),
    "decision_times": ExportSpec("csv", "Time to first-instance decision"),
    "within_limit": ExportSpec("csv", "Decisions within the statutory limit"),
    "deadlines": ExportSpec("csv", "Deadlines due and overdue"),
    "workload": ExportSpec("csv", "Caseworker workload"),
    "throughput": ExportSpec("csv", "Decisions per caseworker per week"),
    "recognition": ExportSpec("csv", "Recognition rate by nationality"),
    "late_registrations": ExportSpec("csv", "Late registrations per week"),
    "eurostat_applicants": ExportSpec("csv", "Eurostat migr_asyappctzm: applicants"),
    "eurostat_decisions": ExportSpec("csv", "Eurostat migr_asydcfstq: first-instance decisions"),
}
MIMETYPES = {"csv": "text/csv", "pdf": "application/pdf"}


class ReportRefused(Exception):
    """The user may not run this report (no permission, or another office's figures)."""


@dataclass(frozen=True)
class ExportFile:
    report: str
    filename: str
    mimetype: str
    content: bytes


def _check(acting_user, f: queries.ReportFilters) -> None:
    if not acting_user.can(Permission.REPORTS_VIEW):
        raise ReportRefused("reports need the reports.view permission")
    if f.office_id != acting_user.office_id:
        raise ReportRefused("a supervisor reports on their own office only")


def filename_for(kind: str, f: queries.ReportFilters) -> str:
    """Names say which report and period, never whose data: no person, no case, no office name."""
    extension = EXPORTS[kind].format
    return f"nansen-{kind.replace('_', '-')}-{f.date_from.isoformat()}-to-{f.date_to.isoformat()}.{extension}"


def export_report(kind: str, f: queries.ReportFilters, *, acting_user) -> ExportFile:
    """Build export ``kind`` for ``f``, audit it (REPORT_EXPORTED) and commit. KeyError for an
    unknown kind; ReportRefused (nothing recorded) when the user may not have it."""
    spec = EXPORTS[kind]
    _check(acting_user, f)
    if spec.format == "pdf":
        content = exports.html_to_pdf(report_html(kind, f))
    else:
        header, rows = exports.table_rows(kind, f)
        content = exports.to_csv(header, rows)
    record(EventCode.REPORT_EXPORTED, actor=acting_user, subject=("report", kind),
           details={"report": kind, "format": spec.format, "filters": f.as_dict(), "bytes": len(content)})
    db.session.commit()
    return ExportFile(kind, filename_for(kind, f), MIMETYPES[spec.format], content)


# -- what the page and the PDF show -------------------------------------------------------------------

@dataclass(frozen=True)
class PivotTable:
    columns: list[str]
    rows: list[tuple[str | None, list[int]]]


@dataclass(frozen=True)
class DashboardView:
    """What the page and the PDF summary show besides the rows: charts and laid-out tables."""

    charts: dict[str, charts.Chart]
    backlog: PivotTable
    ageing: PivotTable
    due_days: int = queries.DUE_WITHIN_DAYS


def dashboard_view(d: queries.Dashboard) -> DashboardView:
    statuses = [s for s in queries.PENDING_STATUSES if any(r.status == s for r in d.backlog)]
    return DashboardView(
        charts=dashboard_charts(d),
        backlog=PivotTable(statuses, queries.pivot(d.backlog, "track", "status", "cases", statuses)),
        ageing=PivotTable(list(queries.AGE_BUCKETS), queries.pivot(d.ageing, "track", "bucket", "cases",
                                                                  queries.AGE_BUCKETS)))


def dashboard_charts(d: queries.Dashboard) -> dict[str, charts.Chart]:
    """The dashboard's charts from already aggregated rows (layout only)."""
    weeks = [w.iso_week for w in d.flow]
    flow = charts.line_chart(
        "flow", _t("Inflow and outflow per week"),
        _t("Line chart, one point per ISO week from %(first)s to %(last)s: cases registered, first-instance "
           "decisions issued and cases closed. The table below gives every number.",
           first=weeks[0] if weeks else "", last=weeks[-1] if weeks else ""),
        weeks, [(_t("Registered"), [w.registered for w in d.flow]),
                (_t("Decisions issued"), [w.decisions_issued for w in d.flow]),
                (_t("Cases closed"), [w.cases_closed for w in d.flow])], y_title=_t("Cases"))
    tracks = _tracks(d.backlog)
    statuses = [s for s in queries.PENDING_STATUSES if any(r.status == s for r in d.backlog)]
    cells = {(r.track, r.status): r.cases for r in d.backlog}
    backlog = charts.stacked_bar_chart(
        "backlog", _t("Backlog by track and status"),
        _t("Stacked bar chart: one bar per track, one part per status, heights are pending cases. "
           "The table below gives every number."),
        [track_label(t) for t in tracks],
        [(status_label(s), [cells.get((t, s)) for t in tracks]) for s in statuses], y_title=_t("Pending cases"))
    ageing_tracks = _tracks(d.ageing)
    cells = {(r.track, r.bucket): r.cases for r in d.ageing}
    ageing = charts.stacked_bar_chart(
        "ageing", _t("Age of the backlog"),
        _t("Stacked bar chart: one bar per track, one part per age since registration (under 1 month to over "
           "12 months). The table below gives every number."),
        [track_label(t) for t in ageing_tracks],
        [(bucket_label(b), [cells.get((t, b)) for t in ageing_tracks]) for b in BUCKET_LABELS],
        y_title=_t("Pending cases"))
    return {"flow": flow, "backlog": backlog, "ageing": ageing}


def _tracks(rows) -> list:
    seen: list = []
    for row in rows:
        if row.track not in seen:
            seen.append(row.track)
    return seen


def _t(message: str, **params) -> str:
    from flask_babel import gettext

    return gettext(message, **params)


def office_name(office_id: int | None) -> str:
    office = db.session.get(Office, office_id) if office_id is not None else None
    return office.name if office else ""


def report_html(kind: str, f: queries.ReportFilters) -> str:
    """The HTML of a PDF report (summary or listing), from the same queries as the page."""
    context = {"filters": f, "office_name": office_name(f.office_id), "generated_at": utcnow(),
               "track_label": track_label, "status_label": status_label, "bucket_label": bucket_label,
               "nationality_label": nationality_label}
    if kind == "summary":
        dashboard = queries.dashboard(f)
        return render_template("reports/pdf_summary.html", d=dashboard, view=dashboard_view(dashboard),
                               **context)
    if kind == "listing":
        return render_template("reports/pdf_listing.html", workload=queries.workload(f),
                               throughput=exports.grouped(queries.throughput(f), "caseworker"),
                               applicants=exports.grouped(queries.eurostat_applicants(f), "month"),
                               decisions=exports.grouped(queries.eurostat_decisions(f), "quarter"), **context)
    raise KeyError(kind)


def today() -> date:
    return utcnow().date()
