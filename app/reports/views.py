"""Report pages: the supervisor's dashboard and its exports. Thin: validate the filters, call the
queries and services, render. Nothing here commits or audits (the export service does both).

A supervisor reports on their own office: the office filter offers only it, and anything else
is refused with 400 like any other bad filter. Exports are POST (with the CSRF token) because
each one writes an audit event; their filters travel in the query string, validated the same way.
"""

from __future__ import annotations

from pathlib import Path

from flask import Response, abort, render_template, request, send_from_directory
from flask_login import current_user

from app.auth.access import requires
from app.auth.permissions import Permission
from app.database import reads_only
from app.reports import bp, figures, queries, services
from app.reports.forms import ReportFilterForm
from app.reports.labels import bucket_label, nationality_label, status_label, track_labeller


ASSETS = Path(__file__).resolve().parent / "assets"


def _form() -> ReportFilterForm:
    offices = [(current_user.office_id, services.office_name(current_user.office_id))]
    return ReportFilterForm(request.args, offices=offices, today=services.today())


def _render(status: int, form: ReportFilterForm, *, track_label=None, **context):
    return render_template("reports/dashboard.html", form=form, exports=services.EXPORTS,
                           track_label=track_label or track_labeller(), status_label=status_label,
                           bucket_label=bucket_label, nationality_label=nationality_label, **context), status


def _too_slow(form: ReportFilterForm, stopped: queries.ReportTooSlow):
    """503: the database stopped a report query at its time limit; nothing was exported or
    recorded. The page says so and keeps the filters, so the supervisor can narrow them."""
    response, status = _render(503, form, d=None, view=None, too_slow_seconds=stopped.limit_seconds)
    return response, status, {"Retry-After": "60"}


@bp.get("/")
@reads_only
@requires(Permission.REPORTS_VIEW)
def dashboard():
    form = _form()
    if not form.validate():
        return _render(400, form, d=None, view=None)
    try:
        kept = figures.dashboard(form.filters(), fresh=request.args.get("fresh") == "1")
    except queries.ReportTooSlow as stopped:
        return _too_slow(form, stopped)
    d = kept.dashboard
    track_label = track_labeller()  # one read of the ruleset for the whole page
    return _render(200, form, d=d, view=services.dashboard_view(d, track_label), query_args=form.query_args(),
                   track_label=track_label, computed_at=kept.computed_at)


@bp.post("/export/<kind>")
@requires(Permission.REPORTS_VIEW)
def export(kind: str):
    if kind not in services.EXPORTS:
        abort(404)
    form = _form()
    if not form.validate():
        return _render(400, form, d=None, view=None)
    try:
        made = services.export_report(kind, form.filters(), acting_user=current_user._get_current_object())
    except services.ReportRefused:
        abort(403)
    except queries.ReportTooSlow as stopped:
        return _too_slow(form, stopped)
    response = Response(made.content, mimetype=made.mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{made.filename}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/reports.css")
@requires(Permission.REPORTS_VIEW)
def stylesheet():
    """The report pages' own stylesheet (a blueprint static folder would be an undeclared endpoint)."""
    return send_from_directory(ASSETS, "reports.css", mimetype="text/css", max_age=0)
