"""Triage pages: the case triage panel, overrides, assessment facts, settings, reference data,
ruleset replay and activation. Views validate forms and call services; they never commit and
never write audit rows. Bad input answers 422 with the message next to its field."""

from __future__ import annotations

from datetime import date

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.auth.access import requires
from app.auth.permissions import Permission
from app.triage import bp, rules, services
from app.triage.facts import ASSESSMENT_FACTS
from app.triage.forms import (ASSESSMENT_LABELS, ActionForm, ActivateForm, AssessmentForm, CsvImportForm,
                              OverrideForm, RateForm, ReplayForm, SafeCountryForm, assessment_values,
                              settings_form_class)

UNPROCESSABLE = 422


def _user():
    return current_user._get_current_object()


def _apply_errors(form, errors: dict[str, list[str]]) -> None:
    """Service errors next to their fields (unknown names go to the top of the form)."""
    for name, messages in errors.items():
        field = getattr(form, name.split(".")[0], None)
        if field is not None and hasattr(field, "errors"):
            if not isinstance(field.errors, list):
                field.errors = list(field.errors)
            field.errors.extend(messages)
        else:
            form.form_errors.extend(messages)


def _read_upload(form, limit: int) -> bytes | None:
    """The uploaded file's bytes, at most ``limit``; None (with the message on the field) when larger."""
    data = form.file.data.stream.read(limit + 1)
    if len(data) > limit:
        form.file.errors = [*form.file.errors, _("The file is larger than %(kb)d KB.", kb=limit // 1024)]
        return None
    return data


# -- the case panel --------------------------------------------------------------------------------

def _render_case(case_id: str, *, override_form=None, status: int = 200):
    try:
        panel = services.open_triage(case_id, acting_user=_user())
    except services.CaseNotFound:
        abort(404)
    override_form = override_form or OverrideForm()
    override_form.track.choices = panel.track_choices
    if not override_form.track.data:
        override_form.track.data = panel.track
    return render_template("triage/case.html", triage=panel, override_form=override_form,
                           withdraw_form=ActionForm(), assessment_labels=ASSESSMENT_LABELS), status


@bp.route("/case/<case_id>")
@requires(Permission.CASE_VIEW, Permission.CASE_VIEW_SPECIAL_CATEGORY)  # grounds can reveal S3 data
def case_triage(case_id: str):
    return _render_case(case_id)


@bp.route("/case/<case_id>/override", methods=["POST"])
@requires(Permission.TRIAGE_OVERRIDE)
def override(case_id: str):
    form = OverrideForm()
    try:
        form.track.choices = [(t.code, t.label) for t in services.active_ruleset().ruleset.tracks]
        if form.validate_on_submit():
            services.override_track(case_id, form.track.data, form.reason.data, acting_user=_user())
            flash(_("Track overridden. The override stays until it is withdrawn."), "success")
            return redirect(url_for("triage.case_triage", case_id=case_id))
    except services.CaseNotFound:
        abort(404)
    except services.TriageInvalid as invalid:
        _apply_errors(form, invalid.errors)
    return _render_case(case_id, override_form=form, status=UNPROCESSABLE)


@bp.route("/case/<case_id>/override/withdraw", methods=["POST"])
@requires(Permission.TRIAGE_OVERRIDE)
def withdraw_override(case_id: str):
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        services.withdraw_override(case_id, acting_user=_user())
        flash(_("Override withdrawn: the rules' latest result applies again."), "success")
    except services.CaseNotFound:
        abort(404)
    except services.TriageInvalid as invalid:
        for messages in invalid.errors.values():
            for message in messages:
                flash(message, "error")
    return redirect(url_for("triage.case_triage", case_id=case_id))


@bp.route("/case/<case_id>/assessment", methods=["GET", "POST"])
@requires(Permission.CASE_EDIT, Permission.QUEUE_WORK)  # case work: caseworkers and supervisors
def assessment(case_id: str):
    try:
        case = services.scoped_case(case_id, _user())
    except services.CaseNotFound:
        abort(404)
    form = AssessmentForm()
    status = 200
    if form.validate_on_submit():
        try:
            version = int(form.version.data) if (form.version.data or "").isdigit() else None
            services.set_assessment_facts(case.id, assessment_values(form), acting_user=_user(),
                                          expected_version=version)
            flash(_("Assessment saved; the case was triaged again where it mattered."), "success")
            return redirect(url_for("triage.case_triage", case_id=case.id))
        except services.TriageInvalid as invalid:
            _apply_errors(form, invalid.errors)
            status = UNPROCESSABLE
        except services.TriageConflict:
            form.form_errors.append(_("Someone saved this case meanwhile. Nothing was overwritten: "
                                      "check the current values and save again."))
            status = 409
        case = services.scoped_case(case_id, _user())
    elif request.method == "POST":
        status = UNPROCESSABLE
    if request.method == "GET" or status == 409:
        stored = case.assessment or {}
        for name in ASSESSMENT_FACTS:
            getattr(form, name).data = {True: "yes", False: "no"}.get(stored.get(name), "")
    form.version.data = str(case.version)
    return render_template("triage/assessment.html", case=case, form=form), status


# -- settings --------------------------------------------------------------------------------------

def _setting_value(item, field):
    """A submitted settings field as the ruleset's type, or raise ValueError with the message."""
    data = field.data
    if item.type == "bool":
        return data == "yes"
    if item.type == "choice":
        return data
    if item.type == "date":
        return data.isoformat() if data else None
    if item.type in ("alpha3_list", "code_list"):
        parts = [p for p in (data or "").replace(",", " ").split() if p]
        if item.type == "alpha3_list":
            parts = [p.upper() for p in parts]
        return list(dict.fromkeys(parts))
    text = (data or "").strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        raise ValueError(_("Enter a number, e.g. 50 or 20.5.")) from None
    return int(number) if number.is_integer() else number


def _fill_settings_form(form, settings) -> None:
    for item in settings:
        if not item.editable:
            continue
        field, value = getattr(form, item.name), item.value
        if item.type == "bool":
            field.data = "yes" if value else "no"
        elif item.type in ("alpha3_list", "code_list"):
            field.data = ", ".join(value or [])
        elif item.type == "date":
            field.data = date.fromisoformat(value) if value else None
        elif item.type == "number":
            field.data = "" if value is None else str(value)
        else:
            field.data = value


@bp.route("/settings", methods=["GET", "POST"])
@requires(Permission.SETTINGS_MANAGE)
def settings():
    overview = services.settings_overview()
    form = settings_form_class(overview)()
    status = 200
    if form.validate_on_submit():
        values, reset, errors = {}, [], {}
        for item in overview:
            if not item.editable:
                continue
            if getattr(form, f"reset__{item.name}").data:
                if item.stored:
                    reset.append(item.name)
                continue
            try:
                values[item.name] = _setting_value(item, getattr(form, item.name))
            except ValueError as error:
                errors[item.name] = [str(error)]
        if not errors:
            try:
                changes = services.update_settings(values, acting_user=_user(), reset=tuple(reset))
                flash(_("%(count)d setting(s) changed.", count=len(changes)) if changes
                      else _("Nothing changed."), "success")
                return redirect(url_for("triage.settings"))
            except services.TriageInvalid as invalid:
                errors = invalid.errors
        _apply_errors(form, errors)
        status = UNPROCESSABLE
    elif request.method == "POST":
        status = UNPROCESSABLE
    else:
        _fill_settings_form(form, overview)
    return render_template("triage/settings.html", form=form, settings=overview,
                           ruleset=services.active_ruleset()), status


# -- reference data --------------------------------------------------------------------------------

def _reference_page(kind: str, *, row_form=None, import_form=None, status: int = 200, problems=None):
    rates, safe = services.reference_rows()
    if kind == "rates":
        return render_template("triage/rates.html", rows=rates, form=row_form or RateForm(),
                               import_form=import_form or CsvImportForm(), delete_form=ActionForm(),
                               problems=problems or [], header=",".join(services.RATES_HEADER)), status
    return render_template("triage/safe_countries.html", rows=safe, form=row_form or SafeCountryForm(),
                           import_form=import_form or CsvImportForm(), delete_form=ActionForm(),
                           problems=problems or [], header=",".join(services.SAFE_COUNTRIES_HEADER)), status


@bp.route("/reference/rates", methods=["GET", "POST"])
@requires(Permission.REFERENCE_DATA_EDIT)
def recognition_rates():
    form = RateForm()
    if request.method == "GET":
        return _reference_page("rates")
    if form.validate_on_submit():
        try:
            changes = services.set_recognition_rate(form.nationality.data, form.rate_pct.data, form.source.data,
                                                    form.as_of.data, acting_user=_user())
            flash(_("Recognition rate saved.") if changes else _("Nothing changed."), "success")
            return redirect(url_for("triage.recognition_rates"))
        except services.TriageInvalid as invalid:
            _apply_errors(form, invalid.errors)
    return _reference_page("rates", row_form=form, status=UNPROCESSABLE)


@bp.route("/reference/safe-countries", methods=["GET", "POST"])
@requires(Permission.REFERENCE_DATA_EDIT)
def safe_countries():
    form = SafeCountryForm()
    if request.method == "GET":
        return _reference_page("safe")
    if form.validate_on_submit():
        try:
            changes = services.set_safe_country(form.country.data, form.designation.data, form.source.data,
                                                form.as_of.data, acting_user=_user())
            flash(_("Safe country saved.") if changes else _("Nothing changed."), "success")
            return redirect(url_for("triage.safe_countries"))
        except services.TriageInvalid as invalid:
            _apply_errors(form, invalid.errors)
    return _reference_page("safe", row_form=form, status=UNPROCESSABLE)


def _import_view(kind: str):
    form = CsvImportForm()
    endpoint = "triage.recognition_rates" if kind == "rates" else "triage.safe_countries"
    importer = services.import_recognition_rates if kind == "rates" else services.import_safe_countries
    problems = []
    if form.validate_on_submit():
        data = _read_upload(form, services.MAX_CSV_BYTES)
        if data is not None:
            try:
                report = importer(data, acting_user=_user(), replace=form.replace.data)
                flash(_("%(rows)d rows: %(created)d created, %(updated)d updated, %(unchanged)d unchanged, "
                        "%(removed)d removed.", rows=report.rows, created=report.created, updated=report.updated,
                        unchanged=report.unchanged, removed=report.removed), "success")
                return redirect(url_for(endpoint))
            except services.ImportRejected as rejected:
                problems = rejected.problems
                form.file.errors = [*form.file.errors, _("Nothing was imported: correct the lines below.")]
    return _reference_page(kind, import_form=form, status=UNPROCESSABLE, problems=problems)


@bp.route("/reference/rates/import", methods=["POST"])
@requires(Permission.REFERENCE_DATA_EDIT)
def import_rates():
    return _import_view("rates")


@bp.route("/reference/safe-countries/import", methods=["POST"])
@requires(Permission.REFERENCE_DATA_EDIT)
def import_safe_countries():
    return _import_view("safe")


@bp.route("/reference/rates/<code>/delete", methods=["POST"])
@requires(Permission.REFERENCE_DATA_EDIT)
def delete_rate(code: str):
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        services.delete_recognition_rate(code, acting_user=_user())
        flash(_("Recognition rate removed."), "success")
    except services.TriageInvalid:
        abort(404)
    return redirect(url_for("triage.recognition_rates"))


@bp.route("/reference/safe-countries/<code>/delete", methods=["POST"])
@requires(Permission.REFERENCE_DATA_EDIT)
def delete_safe_country(code: str):
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        services.delete_safe_country(code, acting_user=_user())
        flash(_("Country removed from the safe-country list."), "success")
    except services.TriageInvalid:
        abort(404)
    return redirect(url_for("triage.safe_countries"))


# -- replay and activation -------------------------------------------------------------------------

@bp.route("/replay", methods=["GET", "POST"])
@requires(Permission.REFERENCE_DATA_EDIT)
def replay():
    form = ReplayForm()
    report, activate_form, status = None, None, 200
    if form.validate_on_submit():
        data = _read_upload(form, services.MAX_RULESET_BYTES)
        if data is not None:
            try:
                text = data.decode("utf-8-sig")
                report = services.replay(text, acting_user=_user(), example_office_id=_user().office_id)
                activate_form = ActivateForm(formdata=None, document=text, checksum=report.checksum)
            except UnicodeDecodeError:
                form.file.errors = [*form.file.errors, _("The file is not UTF-8 text.")]
            except rules.RulesetError as error:
                form.file.errors = [*form.file.errors, _("This is not a valid ruleset: %(error)s", error=str(error))]
        if report is None:
            status = UNPROCESSABLE
    elif request.method == "POST":
        status = UNPROCESSABLE
    return render_template("triage/replay.html", form=form, report=report, activate_form=activate_form,
                           active=services.active_ruleset()), status


@bp.route("/replay/activate", methods=["POST"])
@requires(Permission.REFERENCE_DATA_EDIT)
def activate():
    form = ActivateForm()
    if form.validate_on_submit():
        if services.checksum_of(services.normalise_newlines(form.document.data)) != form.checksum.data:
            form.confirm.errors = [*form.confirm.errors, _("The document changed since the replay: replay it again.")]
        else:
            try:
                row = services.activate_ruleset(form.document.data, acting_user=_user())
                flash(_("%(label)s is now the active ruleset. Cases keep their current triage until they are "
                        "triaged again (an edit of their facts, or `flask triage retriage`).",
                        label=f"{row.ruleset_id}@{row.version}"), "success")
                return redirect(url_for("triage.replay"))
            except rules.RulesetError as error:
                form.confirm.errors = [*form.confirm.errors, str(error)]
            except services.TriageInvalid as invalid:
                form.confirm.errors = [*form.confirm.errors, *[m for ms in invalid.errors.values() for m in ms]]
    # The replay is not run again here (it reads the whole caseload): the form comes back with
    # its message and the same document; the report is the one on the previous page.
    return render_template("triage/replay.html", form=ReplayForm(formdata=None), report=None, activate_form=form,
                           active=services.active_ruleset()), UNPROCESSABLE
