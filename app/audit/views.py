"""The audit viewer: auditors and supervisors read the trail; only auditors see the decrypted
details. Every page shown is itself audited (AUDIT_VIEWED) by the service, never here."""

from __future__ import annotations

from flask import render_template, request
from flask_login import current_user

from app.audit import bp, services
from app.audit.forms import AuditFilterForm
from app.auth.access import requires
from app.auth.permissions import Permission


@bp.route("/")
@requires(Permission.AUDIT_VIEW)
def events():
    form = AuditFilterForm(request.args)
    with_details = current_user.can(Permission.AUDIT_VIEW_DETAILS)
    if not form.validate():
        return _render(form, None, with_details), 400
    filters = form.filters()
    try:
        page = services.search_events(filters, before=form.before.data, after=form.after.data,
                                      with_details=with_details)
    except services.InvalidFilter as invalid:
        for name, messages in invalid.errors.items():
            form[name].errors = [*form[name].errors, *messages]
        return _render(form, None, with_details), 400
    services.record_audit_view(page, filters, acting_user=current_user._get_current_object())
    return _render(form, page, with_details)


def _render(form: AuditFilterForm, page, with_details: bool):
    filtering = any(form.query_args().values())
    return render_template("audit/events.html", form=form, page=page, with_details=with_details,
                           query=form.query_args(), filtering=filtering or bool(form.errors))
