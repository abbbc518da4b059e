"""Decision pages: the case's decision workspace (status, next steps, interviews, drafts,
reviews, issued decisions with their letters, notification and appeals) and the supervisors'
list of reviews waiting.

Views parse forms and call services; they never commit or audit. Every route declares its
permission: ``queue.work`` (caseworkers and supervisors: the people who work on cases) with
``case.view_special_category`` for pages showing reasons and notes, or ``case.edit`` for changes;
reviews need ``decision.review``. The services check the finer rule (which role may take which
lifecycle step) and the office scope (a case of another office answers 404). Refusals come back
next to the form that caused them: 422 for input or a refused step, 409 for a conflict (the
user's input shown back), 403 for a role that may not act at all.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Response, abort, flash, g, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from app.auth.access import requires
from app.auth.permissions import Permission
from app.decisions import bp, lifecycle, services, settings
from app.decisions.forms import (CANCEL_REASON_LABELS, OMISSION_GROUND_LABELS, AppealForm, AppealOutcomeForm,
                                 CancelInterviewForm, CorrectionForm, DraftForm, InterviewForm, IssueForm,
                                 OmissionForm, RecordInterviewForm, RescheduleForm, ReviewForm, ServiceForm,
                                 SubmitDecisionForm, TransitionForm, choices)
from app.intake.services import CaseNotFound


def _acting():
    return current_user._get_current_object()


def _conflict_message() -> str:
    return _("Someone else changed this case while you were working on it. Nothing of yours was saved: "
             "your input is shown below. Check the current state of the case, then save again.")


# -- the workspace -------------------------------------------------------------------------------

def _default_forms(ws: services.Workspace) -> dict:
    """One form per possible action on the page, keyed like their prefixes."""
    case, version = ws.case, ws.case.version
    forms: dict = {}
    for verdict in ws.steps:
        transition = verdict.transition
        if transition.trigger in (lifecycle.BUTTON, lifecycle.WITH_REASON) and \
                transition.target != lifecycle.DECISION_ISSUED:
            forms[f"to-{transition.target}"] = TransitionForm(prefix=f"to-{transition.target}", formdata=None,
                                                              expected_version=version)
    assigned_not_started = case.status in (lifecycle.REGISTERED, lifecycle.TRIAGED) and case.assigned_to_id
    if ws.can_draft and (assigned_not_started or case.status in (
            lifecycle.ASSIGNED, lifecycle.INTERVIEW_SCHEDULED, lifecycle.INTERVIEWED)):
        principal = next((p for p in ws.persons if p.principal), ws.persons[0] if ws.persons else None)
        form = InterviewForm(prefix="interview", formdata=None, expected_version=version,
                             interpreter_language=principal.preferred_language if principal and
                             principal.interpreter_needed else None,
                             interpreter_gender=principal.interpreter_gender if principal else "any",
                             person_id=principal.id if principal else None)
        form.person_id.choices = choices((p.id, p.name) for p in ws.persons)
        forms["interview"] = form
    for interview, _name, _notes in ws.interviews:
        if interview.status == "scheduled":
            forms[f"record-{interview.id}"] = RecordInterviewForm(prefix=f"record-{interview.id}", formdata=None,
                                                                  expected_version=version)
            if ws.can_draft:
                forms[f"cancel-{interview.id}"] = CancelInterviewForm(prefix=f"cancel-{interview.id}", formdata=None,
                                                                      expected_version=version)
                forms[f"reschedule-{interview.id}"] = RescheduleForm(
                    prefix=f"reschedule-{interview.id}", formdata=None, expected_version=version)
    if ws.can_draft and case.status == lifecycle.ASSIGNED and not any(o.current for o in ws.omissions) and not any(
            i.status == "scheduled" for i, _name, _notes in ws.interviews):
        forms["omission"] = OmissionForm(prefix="omission", formdata=None, expected_version=version)
    current = {row.decision.person_id: row.decision for row in ws.decisions
               if row.decision.round == ws.round and row.decision.corrects_decision_id is None}
    for person in ws.persons:
        decision = current.get(person.id)
        if decision is None and case.status in lifecycle.DRAFTING_STATUSES:
            forms[f"new-{person.id}"] = DraftForm(prefix=f"new-{person.id}", formdata=None, expected_version=version)
    for row in ws.decisions:
        decision = row.decision
        if decision.status in ("draft", "returned") and (
                decision.corrects_decision_id is not None or case.status in lifecycle.DRAFTING_STATUSES):
            forms[f"edit-{decision.id}"] = DraftForm(
                prefix=f"edit-{decision.id}", formdata=None, expected_version=version, outcome=decision.outcome,
                legal_basis=list(decision.legal_basis or []), reasons=row.reasons)
            if decision.corrects_decision_id is not None:
                forms[f"submit-{decision.id}"] = SubmitDecisionForm(prefix=f"submit-{decision.id}", formdata=None,
                                                                    expected_version=version)
        if decision.status == "submitted" and ws.can_review and ws.user_id not in (
                decision.drafted_by_id, decision.last_edited_by_id):
            forms[f"review-{decision.id}"] = ReviewForm(prefix=f"review-{decision.id}", formdata=None,
                                                        expected_version=version)
        if decision.status == "issued":
            if not any(r.decision.corrects_decision_id == decision.id and r.decision.status != "issued"
                       for r in ws.decisions):
                forms[f"correct-{decision.id}"] = CorrectionForm(prefix=f"correct-{decision.id}", formdata=None,
                                                                 expected_version=version)
            if row.notification is not None and case.status in (lifecycle.NOTIFIED, lifecycle.APPEAL_LODGED) and \
                    not any(a.outcome is None for a in row.appeals):
                forms[f"appeal-{decision.id}"] = AppealForm(prefix=f"appeal-{decision.id}", formdata=None,
                                                            expected_version=version)
        for appeal in row.appeals:
            if appeal.outcome is None:
                forms[f"outcome-{appeal.id}"] = AppealOutcomeForm(prefix=f"outcome-{appeal.id}", formdata=None,
                                                                  expected_version=version)
    issuable = case.status == lifecycle.UNDER_REVIEW or any(
        r.decision.corrects_decision_id is not None and r.decision.status == "approved" for r in ws.decisions)
    if issuable:
        forms["issue"] = IssueForm(prefix="issue", formdata=None, expected_version=version)
    if any(r.decision.status == "issued" and r.notification is None for r in ws.decisions):
        forms["service"] = ServiceForm(prefix="service", formdata=None, expected_version=version)
    return forms


def _render(case_id: str, *, failed: tuple[str, object] | None = None, status: int = 200,
            conflict: services.DecisionConflict | None = None):
    ws = services.workspace(case_id, acting_user=_acting())
    forms = _default_forms(ws)
    if failed is not None:
        key, form = failed
        if conflict is not None:
            # Shown back as typed; saving again now means saving over the version on the page.
            form.expected_version.data = conflict.current_version
            form.expected_version.raw_data = [str(conflict.current_version)]
            form.form_errors.append(_conflict_message())
        forms[key] = form
    return render_template("decisions/workspace.html", ws=ws, forms=forms, lifecycle=lifecycle,
                           settings=settings, failed_key=failed[0] if failed else None), status


def _apply_errors(form, errors: dict[str, list[str]], aliases: dict[str, str] | None = None) -> None:
    for name, messages in errors.items():
        field = getattr(form, (aliases or {}).get(name, name), None)
        (field.errors if field is not None and name != "__all__" else form.form_errors).extend(messages)


def _handle(case_id: str, key: str, form, action, *, aliases: dict[str, str] | None = None, done: str = ""):
    """Validate ``form``, run ``action()``, and answer: redirect on success; the workspace with
    the form's errors (422), the conflict (409) or the refusal otherwise."""
    if not form.validate_on_submit():
        return _render(case_id, failed=(key, form), status=422)
    try:
        action(form)
    except services.InvalidInput as refused:
        _apply_errors(form, refused.errors, aliases)
        return _render(case_id, failed=(key, form), status=422)
    except services.TransitionRefused as refused:
        form.form_errors.extend(refused.messages)
        return _render(case_id, failed=(key, form), status=422)
    except services.DecisionConflict as conflict:
        return _render(case_id, failed=(key, form), status=409, conflict=conflict)
    except services.DecisionForbidden:
        g.denial_reason = "decision permission"
        abort(403)
    except CaseNotFound:
        abort(404)
    if done:
        flash(done, "success")
    return redirect(url_for("decisions.workspace", case_id=case_id) + f"#{key}")


def _case_id_of(loader) -> str:
    try:
        return loader()
    except CaseNotFound:
        abort(404)


def _interview_case_id(interview_id: str) -> str:
    """The case of an interview the user may reach (404 otherwise)."""
    return _case_id_of(lambda: services.case_id_of("interview", interview_id, acting_user=_acting()))


@bp.route("/case/<case_id>")
@requires(Permission.QUEUE_WORK, Permission.CASE_VIEW_SPECIAL_CATEGORY)
def workspace(case_id: str):
    try:
        return _render(case_id)
    except CaseNotFound:
        abort(404)
    except services.DecisionForbidden:
        g.denial_reason = "decision permission"
        abort(403)


@bp.route("/case/<case_id>/to/<target>", methods=["POST"])
@requires(Permission.QUEUE_WORK, Permission.CASE_EDIT)
def transition(case_id: str, target: str):
    if target not in lifecycle.STATUSES:
        abort(404)
    form = TransitionForm(prefix=f"to-{target}")
    acting = _acting()

    def act(f):
        version = f.expected_version.data
        if target == lifecycle.UNDER_REVIEW:
            services.submit_for_review(case_id, acting_user=acting, expected_version=version)
        elif target == lifecycle.DECISION_ISSUED:
            services.issue_decisions(case_id, acting_user=acting, expected_version=version)
        else:
            services.transition(case_id, target, acting_user=acting, expected_version=version, reason=f.reason.data)

    return _handle(case_id, f"to-{target}", form, act,
                   done=_("Case moved to “%(status)s”.", status=_(lifecycle.STATUS_LABELS[target])))


@bp.route("/case/<case_id>/interviews", methods=["POST"])
@requires(Permission.QUEUE_WORK, Permission.CASE_EDIT)
def schedule_interview(case_id: str):
    ws_persons = _case_id_of(lambda: services.workspace_persons(case_id, acting_user=_acting()))
    form = InterviewForm(prefix="interview")
    form.person_id.choices = choices((p.id, p.name) for p in ws_persons)

    def act(f):
        starts_at = datetime.combine(f.date.data, f.time.data, tzinfo=UTC)
        services.schedule_interview(
            case_id, acting_user=_acting(), person_id=f.person_id.data, starts_at=starts_at,
            duration_minutes=f.duration_minutes.data, remote=f.remote.data, place=f.place.data,
            interpreter_language=f.interpreter_language.data, interpreter_gender=f.interpreter_gender.data,
            interpreter_name=f.interpreter_name.data, expected_version=f.expected_version.data)

    return _handle(case_id, "interview", form, act, aliases={"starts_at": "date"},
                   done=_("Interview scheduled."))


@bp.route("/interviews/<interview_id>/record", methods=["POST"])
@requires(Permission.QUEUE_WORK, Permission.CASE_EDIT)
def record_interview(interview_id: str):
    case_id = _interview_case_id(interview_id)
    form = RecordInterviewForm(prefix=f"record-{interview_id}")

    def act(f):
        services.record_interview(interview_id, acting_user=_acting(), attendance=f.attendance.data,
                                  notes=f.notes.data, expected_version=f.expected_version.data)

    return _handle(case_id, f"record-{interview_id}", form, act, done=_("Interview recorded."))


@bp.route("/interviews/<interview_id>/cancel", methods=["POST"])
@requires(Permission.QUEUE_WORK, Permission.CASE_EDIT)
def cancel_interview(interview_id: str):
    case_id = _interview_case_id(interview_id)
    form = CancelInterviewForm(prefix=f"cancel-{interview_id}")

    def act(f):
        services.cancel_interview(interview_id, acting_user=_acting(), reason=f.reason.data, details=f.details.data,
                                  expected_version=f.expected_version.data)

    return _handle(case_id, f"cancel-{interview_id}", form, act,
                   done=_("Interview cancelled. A new one can be scheduled."))


@bp.route("/interviews/<interview_id>/reschedule", methods=["POST"])
@requires(Permission.QUEUE_WORK, Permission.CASE_EDIT)
def reschedule_interview(interview_id: str):
    case_id = _interview_case_id(interview_id)
    form = RescheduleForm(prefix=f"reschedule-{interview_id}")

    def act(f):
        services.reschedule_interview(interview_id, acting_user=_acting(), reason=f.reason.data,
                                      details=f.details.data,
                                      starts_at=datetime.combine(f.date.data, f.time.data, tzinfo=UTC),
                                      expected_version=f.expected_version.data)

    return _handle(case_id, f"reschedule-{interview_id}", form, act, aliases={"starts_at": "date"},
                   done=_("Interview rescheduled."))


@bp.route("/case/<case_id>/omission", methods=["POST"])
@requires(Permission.QUEUE_WORK, Permission.CASE_EDIT)
def record_omission(case_id: str):
    form = OmissionForm(prefix="omission")

    def act(f):
        services.record_interview_omission(
            case_id, acting_user=_acting(), ground=f.ground.data, medical_opinion_on=f.medical_opinion_on.data,
            medical_opinion_reference=f.medical_opinion_reference.data, details=f.details.data,
            expected_version=f.expected_version.data)

    return _handle(case_id, "omission", form, act,
                   done=_("The omission of the interview is recorded: a decision can be drafted."))


@bp.route("/case/<case_id>/person/<person_id>/draft", methods=["POST"])
@requires(Permission.QUEUE_WORK, Permission.CASE_EDIT)
def new_draft(case_id: str, person_id: str):
    form = DraftForm(prefix=f"new-{person_id}")

    def act(f):
        services.save_draft(case_id, acting_user=_acting(), person_id=person_id, outcome=f.outcome.data,
                            legal_basis=f.legal_basis.data, reasons=f.reasons.data,
                            expected_version=f.expected_version.data)

    return _handle(case_id, f"new-{person_id}", form, act, done=_("Draft saved."))


@bp.route("/decision/<decision_id>/edit", methods=["POST"])
@requires(Permission.QUEUE_WORK, Permission.CASE_EDIT)
def edit_draft(decision_id: str):
    case_id, person_id = _case_id_of(lambda: services.decision_owner(decision_id, acting_user=_acting()))
    form = DraftForm(prefix=f"edit-{decision_id}")

    def act(f):
        services.save_draft(case_id, acting_user=_acting(), person_id=person_id, decision_id=decision_id,
                            outcome=f.outcome.data, legal_basis=f.legal_basis.data, reasons=f.reasons.data,
                            expected_version=f.expected_version.data)

    return _handle(case_id, f"edit-{decision_id}", form, act, done=_("Draft saved."))


@bp.route("/decision/<decision_id>/submit", methods=["POST"])
@requires(Permission.QUEUE_WORK, Permission.CASE_EDIT)
def submit_correction(decision_id: str):
    case_id, _person = _case_id_of(lambda: services.decision_owner(decision_id, acting_user=_acting()))
    form = SubmitDecisionForm(prefix=f"submit-{decision_id}")

    def act(f):
        services.submit_for_review(case_id, acting_user=_acting(), decision_id=decision_id,
                                   expected_version=f.expected_version.data)

    return _handle(case_id, f"submit-{decision_id}", form, act, done=_("Sent for review."))


@bp.route("/decision/<decision_id>/review", methods=["POST"])
@requires(Permission.DECISION_REVIEW)
def review(decision_id: str):
    case_id, _person = _case_id_of(lambda: services.decision_owner(decision_id, acting_user=_acting()))
    form = ReviewForm(prefix=f"review-{decision_id}")

    def act(f):
        services.review_decision(decision_id, acting_user=_acting(), action=f.action.data, comments=f.comments.data,
                                 expected_version=f.expected_version.data)

    return _handle(case_id, f"review-{decision_id}", form, act, done=_("Review recorded."))


@bp.route("/case/<case_id>/issue", methods=["POST"])
@requires(Permission.QUEUE_WORK, Permission.CASE_EDIT)
def issue(case_id: str):
    form = IssueForm(prefix="issue")

    def act(f):
        services.issue_decisions(case_id, acting_user=_acting(), service_date=f.service_date.data,
                                 expected_version=f.expected_version.data)

    return _handle(case_id, "issue", form, act, done=_("Decisions issued; the letters are ready."))


@bp.route("/decision/<decision_id>/correct", methods=["POST"])
@requires(Permission.QUEUE_WORK, Permission.CASE_EDIT)
def correct(decision_id: str):
    case_id, _person = _case_id_of(lambda: services.decision_owner(decision_id, acting_user=_acting()))
    form = CorrectionForm(prefix=f"correct-{decision_id}")

    def act(f):
        services.start_correction(decision_id, acting_user=_acting(), expected_version=f.expected_version.data)

    return _handle(case_id, f"correct-{decision_id}", form, act,
                   done=_("A correction was drafted: edit it, then submit it for review."))


@bp.route("/letters/<letter_id>")
@requires(Permission.QUEUE_WORK, Permission.CASE_VIEW_SPECIAL_CATEGORY)
def letter(letter_id: str):
    try:
        download = services.download_letter(letter_id, acting_user=_acting())
    except CaseNotFound:
        abort(404)
    except services.DecisionForbidden:
        g.denial_reason = "decision permission"
        abort(403)
    response = Response(download.pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{download.filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/case/<case_id>/service", methods=["POST"])
@requires(Permission.QUEUE_WORK, Permission.CASE_EDIT)
def service(case_id: str):
    form = ServiceForm(prefix="service")

    def act(f):
        services.record_service(case_id, acting_user=_acting(), served_on=f.served_on.data, method=f.method.data,
                                expected_version=f.expected_version.data)

    return _handle(case_id, "service", form, act, done=_("Service recorded: the appeal clock has started."))


@bp.route("/decision/<decision_id>/appeal", methods=["POST"])
@requires(Permission.QUEUE_WORK, Permission.CASE_EDIT)
def appeal(decision_id: str):
    case_id, _person = _case_id_of(lambda: services.decision_owner(decision_id, acting_user=_acting()))
    form = AppealForm(prefix=f"appeal-{decision_id}")

    def act(f):
        services.lodge_appeal(decision_id, acting_user=_acting(), lodged_on=f.lodged_on.data,
                              court_reference=f.court_reference.data,
                              suspension_requested=f.suspension_requested.data,
                              expected_version=f.expected_version.data)

    return _handle(case_id, f"appeal-{decision_id}", form, act, done=_("Appeal recorded."))


@bp.route("/appeals/<appeal_id>/outcome", methods=["POST"])
@requires(Permission.QUEUE_WORK, Permission.CASE_EDIT)
def appeal_outcome(appeal_id: str):
    case_id = _case_id_of(lambda: services.case_id_of("appeal", appeal_id, acting_user=_acting()))
    form = AppealOutcomeForm(prefix=f"outcome-{appeal_id}")

    def act(f):
        services.record_appeal_outcome(appeal_id, acting_user=_acting(), outcome=f.outcome.data,
                                       decided_on=f.decided_on.data, expected_version=f.expected_version.data)

    return _handle(case_id, f"outcome-{appeal_id}", form, act, done=_("Appeal outcome recorded."))


@bp.route("/reviews")
@requires(Permission.DECISION_REVIEW)
def reviews():
    items = services.reviews_waiting(acting_user=_acting())
    return render_template("decisions/reviews.html", items=items, settings=settings)


@bp.app_template_filter("status_label")
def status_label(status: str) -> str:
    return _(lifecycle.STATUS_LABELS.get(status, status))


DECISION_STATUS_LABELS = {"draft": _l("Draft"), "submitted": _l("Waiting for review"), "returned": _l("Returned"),
                          "approved": _l("Approved"), "issued": _l("Issued")}
INTERVIEW_LABELS = {"scheduled": _l("Scheduled"), "recorded": _l("Recorded"), "cancelled": _l("Cancelled"),
                    "missed": _l("Missed"),
                    "attended": _l("attended"), "absent_excused": _l("absent, with good reason"),
                    "absent_unexcused": _l("absent, without good reason")}


@bp.app_template_filter("decision_status_label")
def decision_status_label(status: str) -> str:
    return str(DECISION_STATUS_LABELS.get(status, status))


@bp.app_template_filter("interview_label")
def interview_label(value: str) -> str:
    return str(INTERVIEW_LABELS.get(value, value))


@bp.app_template_filter("cancel_reason_label")
def cancel_reason_label(reason: str | None) -> str:
    return str(CANCEL_REASON_LABELS.get(reason, reason or "-"))


@bp.app_template_filter("omission_ground_label")
def omission_ground_label(ground: str | None) -> str:
    return str(OMISSION_GROUND_LABELS.get(ground, ground or "-"))


@bp.app_template_filter("outcome_label")
def outcome_label(outcome: str | None) -> str:
    return _(settings.OUTCOMES[outcome]) if outcome in settings.OUTCOMES else "-"
