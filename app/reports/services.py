"""Report services: the dashboard's data and charts, and audited exports.

``export_report`` owns its transaction: it builds the file (read-only queries), then records
REPORT_EXPORTED (which report, which format, the filters, the size) and commits, before the
caller hands the bytes out, as every export and print of the application is audited. Views
never write audit rows. The actor comes in as ``acting_user``; nothing here reads the request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from flask import render_template
from flask_babel import get_locale

from app.audit.codes import EventCode
from app.audit.services import record
from app.auth.models import Office
from app.auth.permissions import Permission
from app.db_types import utcnow
from app.extensions import db
from app.reports import charts, exports, figures, queries
from app.reports.exports import TextTable, cell, text_table
from app.reports.labels import BUCKET_LABELS, bucket_label, nationality_label, status_label, track_labeller


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
        # A section of the page: the figures it showed for these filters, when kept, so the export
        # matches the screen. Only a per-caseworker section needs (and reads) that part of them.
        section = exports.DASHBOARD_SECTIONS.get(kind)
        shown = figures.kept(f, caseworkers=section in figures.CASEWORKER_SECTIONS) if section else None
        header, rows = exports.table_rows(kind, f, shown.dashboard if shown else None)
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


def dashboard_view(d: queries.Dashboard, track_label: Callable[[str | None], str] | None = None) -> DashboardView:
    """Charts and pivots of ``d``; ``track_label`` is the page's (``labels.track_labeller``)."""
    statuses = [s for s in queries.PENDING_STATUSES if any(r.status == s for r in d.backlog)]
    return DashboardView(
        charts=dashboard_charts(d, track_label or track_labeller()),
        backlog=PivotTable(statuses, queries.pivot(d.backlog, "track", "status", "cases", statuses)),
        ageing=PivotTable(list(queries.AGE_BUCKETS), queries.pivot(d.ageing, "track", "bucket", "cases",
                                                                  queries.AGE_BUCKETS)))


_CHARTS_KEPT = 16  # sets of charts (three SVGs, about 60 KB) kept per process
_charts_kept: OrderedDict[tuple, dict[str, charts.Chart]] = OrderedDict()
_charts_lock = threading.Lock()


def dashboard_charts(d: queries.Dashboard, track_label: Callable[[str | None], str]) -> dict[str, charts.Chart]:
    """The dashboard's charts from already aggregated rows (layout only). The same rows in the
    same language with the same track names make the same SVG, so the last few sets are kept:
    with the figures kept (app/reports/figures.py), a look again at the page and the PDF summary
    made after it cost no chart drawing (about 35 ms at a million cases, a sixth of the summary)."""
    tracks = _tracks(d.backlog) + _tracks(d.ageing)
    key = (str(get_locale() or "en"), tuple(d.flow), tuple(d.backlog), tuple(d.ageing),
           tuple(track_label(t) for t in tracks))
    with _charts_lock:
        found = _charts_kept.get(key)
        if found is not None:
            _charts_kept.move_to_end(key)
            return found
    drawn = _draw_dashboard_charts(d, track_label)
    with _charts_lock:
        _charts_kept[key] = drawn
        while len(_charts_kept) > _CHARTS_KEPT:
            _charts_kept.popitem(last=False)
    return drawn


def _draw_dashboard_charts(d: queries.Dashboard, track_label: Callable[[str | None], str]) -> dict[str, charts.Chart]:
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
    """The HTML of a PDF report (summary or listing), from the same queries as the page. Both
    show the figures the dashboard showed for these filters when they are kept (``figures``):
    the summary all but the per-caseworker ones, which are the listing's (its Eurostat rows are
    always read afresh)."""
    if kind == "summary":
        return summary_html(figures.dashboard(f, caseworkers=False), f)
    if kind == "listing":
        # The per-caseworker figures the page showed for these filters, when they are kept.
        page = figures.kept(f)
        return render_template("reports/pdf_listing.html",
                               workload=page.dashboard.workload if page else queries.workload(f),
                               throughput=exports.grouped(page.dashboard.throughput if page else queries.throughput(f),
                                                          "caseworker"),
                               computed_at=page.computed_at if page else None,
                               applicants=exports.grouped(queries.eurostat_applicants(f), "month"),
                               decisions=exports.grouped(queries.eurostat_decisions(f), "quarter"), **_pdf_context(f))
    raise KeyError(kind)


def summary_html(kept: figures.Figures, f: queries.ReportFilters) -> str:
    """The PDF summary's HTML from figures already computed: charts, tables and template (layout
    only, no query)."""
    track_label = track_labeller()
    view = dashboard_view(kept.dashboard, track_label)
    return render_template("reports/pdf_summary.html", d=kept.dashboard, view=view,
                           tables=summary_tables(kept.dashboard, view, track_label), chart_uri=charts.data_uri,
                           computed_at=kept.computed_at, **_pdf_context(f, track_label))


def _pdf_context(f: queries.ReportFilters, track_label: Callable[[str | None], str] | None = None) -> dict:
    return {"filters": f, "office_name": office_name(f.office_id), "generated_at": utcnow(),
            "track_label": track_label or track_labeller(), "status_label": status_label,
            "bucket_label": bucket_label, "nationality_label": nationality_label}


def summary_tables(d: queries.Dashboard, view: DashboardView,
                   track_label: Callable[[str | None], str]) -> dict[str, TextTable]:
    """The PDF summary's tables as fixed-width text (exports.text_table): the same rows, columns
    and captions as the page's tables (templates/reports/_tables.html), laid out for WeasyPrint."""
    no_pending, no_decision = _t("No pending case."), _t("No decision issued in this period.")

    def pivot(caption: str, table: PivotTable, column_label) -> TextTable:
        return text_table(caption, [_t("Track"), *(column_label(c) for c in table.columns)],
                          [[track_label(t), *(cell(v) for v in values)] for t, values in table.rows], empty=no_pending)

    return {
        "backlog": pivot(_t("Pending cases: tracks by status"), view.backlog, status_label),
        "ageing": pivot(_t("Pending cases: tracks by age since registration"), view.ageing, bucket_label),
        "flow": text_table(
            _t("Inflow and outflow per ISO week"),
            [_t("Week"), _t("Starts"), _t("Registered"), _t("Decisions issued"), _t("Cases closed")],
            [[w.iso_week, w.week_start.isoformat(), cell(w.registered), cell(w.decisions_issued), cell(w.cases_closed)]
             for w in d.flow], empty=no_decision),
        "decision_times": text_table(
            _t("Days from registration to the first-instance decision (first examination round)"),
            [_t("Track"), _t("Decisions"), _t("Median (days)"), _t("90th percentile (days)")],
            [[track_label(r.track), cell(r.decisions), cell(r.median_days), cell(r.p90_days)]
             for r in d.decision_times], empty=no_decision),
        "within_limit": text_table(
            _t("First-instance decisions issued on or before the statutory deadline"),
            [_t("Track"), _t("Decisions"), _t("With a deadline"), _t("Within the limit"), _pct("Share (%%)")],
            [[track_label(r.track), cell(r.decisions), cell(r.with_deadline), cell(r.within_limit), cell(r.share_pct)]
             for r in d.within_limit], empty=no_decision),
        "deadlines": text_table(
            _t("Pending cases by statutory deadline"),
            [_t("Track"), _t("Due within %(days)d days", days=view.due_days), _t("Overdue")],
            [[track_label(r.track), cell(r.due_soon), cell(r.overdue)] for r in d.deadlines],
            empty=_t("No deadline due soon and none overdue.")),
        "recognition": text_table(
            _t("First-instance decisions by nationality and outcome"),
            [_t("Nationality"), _t("Decisions"), _t("Refugee status"), _t("Subsidiary protection"), _t("Rejected"),
             _pct("Recognition rate (%%)"), _t("Humanitarian status"), _pct("Humanitarian (%%)"), _t("Other endings")],
            [[nationality_label(r.nationality), cell(r.decisions), cell(r.refugee), cell(r.subsidiary),
              cell(r.rejected), cell(r.recognition_pct), cell(r.humanitarian), cell(r.humanitarian_pct), cell(r.other)]
             for r in d.recognition], empty=no_decision),
        "late": text_table(
            _t("Registrations more than 5 days after the claim was made, per ISO week"),
            [_t("Week"), _t("Registered"), _t("Late"), _pct("Share (%%)")],
            [[r.iso_week, cell(r.registered), cell(r.late), cell(r.share_pct)] for r in d.late_registrations],
            empty=no_decision),
    }


def _pct(message: str) -> str:
    """A message holding "%%": the templates' gettext formats it (one "%"), so the catalogues
    hold it escaped; formatted here the same way."""
    return _t(message) % ()


def today() -> date:
    return utcnow().date()
