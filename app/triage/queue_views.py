"""Queue pages: the office's queues and "take next case", my cases, deadlines, supervisors'
assignment and workload. Thin: read and validate input, call app/triage/queues.py, render.

Every page is scoped to the signed-in user's office; nothing here commits or audits. Malformed
input (a track code that cannot exist, a tampered paging link, days out of range) answers 400
with a message on the page, a refused assignment 422, a case changed meanwhile 409.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from operator import itemgetter
from typing import NamedTuple

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_translations
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from app.auth.access import requires
from app.auth.forms import ConfirmForm
from app.auth.permissions import Permission
from app.database import reads_only
from app.db_types import utcnow
from app.triage import bp, queues

TRACK_CODE = r"^[a-z][a-z0-9_]{0,39}$"
TRACK_PATTERN = re.compile(TRACK_CODE)
CURSOR_MAX = 120
DEFAULT_DAYS = 14
CASE_CHOICE = re.compile(r"([0-9a-f]{32}):(\d{1,9})")


# -- query parameters of the list pages -------------------------------------------------------------

@dataclass(slots=True)
class ListArgs:
    """The query parameters of the queue and my-cases pages (``track``, ``after``), checked by
    hand. Not a WTForms form: these pages are the hottest of the application, and building a
    form object cost more than the queue query itself. Shaped for the ``field_errors`` macro:
    ``errors`` (field -> messages) and ``form_errors``."""

    track: str | None = None
    after: str | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)
    form_errors: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, values) -> ListArgs:
        """``values``: the request's args. Anything malformed is an error of its field, never an
        exception; empty values mean "not given", as in a form."""
        args = cls(track=values.get("track") or None, after=values.get("after") or None)
        if args.track is not None and not TRACK_PATTERN.fullmatch(args.track):
            args.errors["track"] = [_("Unknown track.")]
        if args.after is not None and len(args.after) > CURSOR_MAX:
            args.errors["after"] = [_bad_link()]  # no cursor this code writes is that long
        return args

    @property
    def valid(self) -> bool:
        return not self.errors


# -- forms (GET forms carry no CSRF token: they change nothing and must be bookmarkable) ---------

class QueueArgs(FlaskForm):
    class Meta:
        csrf = False

    track = StringField(_l("Track"), validators=[Optional(), Regexp(TRACK_CODE, message=_l("Unknown track."))])
    after = StringField(validators=[Optional(), Length(max=CURSOR_MAX)])


class AssignArgs(QueueArgs):
    from_user = IntegerField(validators=[Optional(), NumberRange(min=1, max=2**31 - 1)])


class DeadlineArgs(FlaskForm):
    class Meta:
        csrf = False

    days = IntegerField(_l("Due within (days)"), default=DEFAULT_DAYS,
                        validators=[Optional(), NumberRange(min=1, max=queues.MAX_DAYS_AHEAD,
                                                            message=_l("Enter a number of days from 1 to 365."))])
    due_after = StringField(validators=[Optional(), Length(max=CURSOR_MAX)])
    overdue_after = StringField(validators=[Optional(), Length(max=CURSOR_MAX)])


class TakeNextForm(FlaskForm):
    track = HiddenField(validators=[Optional(), Regexp(TRACK_CODE)])


class AssignForm(FlaskForm):
    assignee = SelectField(_l("Give the selected cases to"), coerce=int, validate_choice=True,
                           validators=[DataRequired(_l("Choose who gets the cases."))])
    # The list the page showed, kept to show it again after a refusal.
    track = HiddenField(validators=[Optional(), Regexp(TRACK_CODE)])
    from_user = HiddenField(validators=[Optional(), Regexp(r"^\d{1,9}$")])

    def validate_on_submit(self, extra_validators=None) -> bool:
        ok = super().validate_on_submit(extra_validators)
        self.selection: dict[str, int] = {}
        values = request.form.getlist("case")
        for value in values:
            match = CASE_CHOICE.fullmatch(value)
            if match is None:
                self.form_errors.append(_("The selection could not be read. Reload the page and try again."))
                return False
            self.selection[match.group(1)] = int(match.group(2))
        if not self.selection:
            self.form_errors.append(_("Select at least one case."))
            return False
        return ok


class UnassignForm(ConfirmForm):
    version = HiddenField(validators=[DataRequired(), Regexp(r"^\d{1,9}$")])


# -- helpers ---------------------------------------------------------------------------------------

def case_url(case_id: str) -> str:
    """The case page (intake's), if it is there; its path otherwise."""
    if "intake.case_page" in current_app.view_functions:
        return url_for("intake.case_page", case_id=case_id)
    return f"/cases/{case_id}"


class ListedCase(NamedTuple):
    """One row of a case list as the templates show it: every value ready to print (the
    deadline as its ISO date), so the template only escapes and joins."""

    id: str
    reference: str
    url: str
    track: str | None
    priority: int
    deadline: str | None
    days_left: str
    late: bool
    status: str
    version: int
    assignee: str | None


def listed(rows, today: date) -> list[ListedCase]:
    """Rows of a CasePage ready to show. Prepared here rather than per row in Jinja: a page of
    50 rows through macros, url_for and ngettext cost more than the query itself. Whatever
    depends only on the page (the case URL prefix, the catalogue, whether the rows carry an
    assignee) is worked out once, and labels once per distinct number of days."""
    marker = "0" * 32
    url = case_url(marker).rpartition(marker)[0]
    labels: dict[int | None, str] = {}
    translations = get_translations()
    if not rows:
        return []
    # Values picked by position (found once from the column names): a Row's attribute access
    # costs ten times an index, and a missing attribute raises inside SQLAlchemy.
    fields = rows[0]._fields
    names = ["id", "reference", "track", "priority", "statutory_deadline", "status", "version"]
    with_assignee = "assignee_username" in fields
    if with_assignee:
        names += ["assignee_username", "assignee_name"]
    pick = itemgetter(*(fields.index(name) for name in names))
    result = []
    for row in rows:
        case_id, reference, track, priority, deadline, status, version, *assignee = pick(row)
        days = None if deadline is None else (deadline - today).days
        label = labels.get(days)
        if label is None:
            label = labels[days] = _days_left(days, translations)
        result.append(ListedCase(
            case_id, reference, url + case_id, track, priority, None if deadline is None else deadline.isoformat(),
            label, days is not None and days <= 0, status, version,
            f"{assignee[1]} ({assignee[0]})" if assignee and assignee[0] else None))
    return result


def _days_left(days: int | None, translations) -> str:
    # The catalogue is passed in, not looked up through flask_babel's per-call context lookups:
    # this runs for up to 50 rows per page.
    if days is None:
        return translations.gettext("No deadline")
    if days < 0:
        return translations.ngettext("Overdue by %(num)d day", "Overdue by %(num)d days", -days) % {"num": -days}
    if days == 0:
        return translations.gettext("Due today")
    return translations.ngettext("%(num)d day", "%(num)d days", days) % {"num": days}


def _render(template: str, status: int = 200, **context):
    today = utcnow().date()
    for name in ("page", "due", "late"):
        if context.get(name) is not None:
            context[name + "_rows"] = listed(context[name].rows, today)
    return render_template(template, can_assign=current_user.can(Permission.QUEUE_ASSIGN), **context), status


def _me():
    return current_user._get_current_object()


def _bad_link():
    return _("This link is no longer valid. Start again from the first page.")


# -- queues ----------------------------------------------------------------------------------------

@bp.route("/queue")
@reads_only
@requires(Permission.QUEUE_WORK)
def queue_page():
    args = ListArgs.parse(request.args)
    office_id = current_user.office_id
    counts = queues.track_counts(office_id)
    context = {"args": args, "counts": counts, "total": sum(row.waiting for row in counts),
               "track": None, "page": None}
    if not args.valid:
        return _render("triage/queue.html", 400, **context)
    context["track"] = args.track
    try:
        context["page"] = queues.queue(office_id, args.track, limit=queues.PAGE_SIZE, after=args.after)
    except queues.InvalidCursor:
        args.errors["after"] = [_bad_link()]
        return _render("triage/queue.html", 400, **context)
    return _render("triage/queue.html", **context)


@bp.route("/queue/take", methods=["POST"])
@requires(Permission.QUEUE_WORK)
def take_next_case():
    form = TakeNextForm()
    if not form.validate_on_submit():
        abort(400)
    track = form.track.data or None
    taken = queues.take_next(acting_user=_me(), track=track)
    if taken is None:
        flash(_("No case is waiting in this queue."), "info")
        return redirect(url_for("triage.queue_page", track=track))
    flash(_("Case %(ref)s is now yours.", ref=taken.reference), "success")
    return redirect(case_url(taken.id))


@bp.route("/my-cases")
@reads_only
@requires(Permission.QUEUE_WORK)
def my_cases():
    args = ListArgs.parse(request.args)
    if not args.valid:
        return _render("triage/queue_mine.html", 400, args=args, page=None)
    try:
        page = queues.my_cases(acting_user=_me(), limit=queues.PAGE_SIZE, after=args.after)
    except queues.InvalidCursor:
        args.errors["after"] = [_bad_link()]
        return _render("triage/queue_mine.html", 400, args=args, page=None)
    return _render("triage/queue_mine.html", args=args, page=page)


@bp.route("/deadlines")
@reads_only
@requires(Permission.QUEUE_WORK)
def deadlines():
    args = DeadlineArgs(request.args)
    if not args.validate():
        return _render("triage/deadlines.html", 400, args=args, days=None, due=None, late=None)
    days = args.days.data or DEFAULT_DAYS
    office_id = current_user.office_id
    try:
        due = queues.due_within(office_id, days, after=args.due_after.data or None)
        late = queues.overdue(office_id, after=args.overdue_after.data or None)
    except queues.InvalidCursor:
        args.days.errors = [*args.days.errors, _bad_link()]
        return _render("triage/deadlines.html", 400, args=args, days=days, due=None, late=None)
    return _render("triage/deadlines.html", args=args, days=days, due=due, late=late)


# -- supervisors -------------------------------------------------------------------------------------

@bp.route("/workload")
@reads_only
@requires(Permission.QUEUE_ASSIGN)
def workload():
    return _render("triage/workload.html", rows=queues.workload(current_user.office_id))


def _assign_page(form: AssignForm, args: AssignArgs, status: int):
    """The assignment page: the chosen list (a queue, or one person's cases) with checkboxes."""
    office_id = current_user.office_id
    people = queues.assignees(office_id)
    form.assignee.choices = [(0, _("Choose a person"))] + [
        (p.id, f"{p.full_name} ({p.username})") for p in people]
    page, owner = None, None
    if args.validate():
        from_user = args.from_user.data
        if from_user is not None:
            owner = next((p for p in people if p.id == from_user), None)
            if owner is None:
                abort(404)
        try:
            if owner is not None:
                page = queues.cases_of(owner.id, office_id=office_id, after=args.after.data or None)
            else:
                page = queues.queue(office_id, args.track.data or None, after=args.after.data or None)
        except queues.InvalidCursor:
            args.after.errors = [_bad_link()]
            status = 400
    else:
        status = 400
    return _render("triage/assign.html", status, form=form, args=args, page=page, owner=owner,
                   counts=queues.track_counts(office_id))


@bp.route("/assign", methods=["GET", "POST"])
@reads_only
@requires(Permission.QUEUE_ASSIGN)
def assign():
    if request.method == "GET":
        return _assign_page(AssignForm(formdata=None), AssignArgs(request.args), 200)
    form = AssignForm()
    # The list to show again comes from hidden fields: only well-formed values are used.
    track = form.track.data if re.fullmatch(TRACK_CODE, form.track.data or "") else None
    from_user = int(form.from_user.data) if re.fullmatch(r"\d{1,9}", form.from_user.data or "") else None
    args = AssignArgs(data={"track": track, "from_user": from_user})
    form.assignee.choices = [(0, "")] + [(p.id, "") for p in queues.assignees(current_user.office_id)]
    if not form.validate_on_submit():
        return _assign_page(form, args, 400)
    try:
        changed = queues.bulk_assign(list(form.selection), form.assignee.data, acting_user=_me(),
                                     expected_versions=form.selection)
    except queues.AssignmentConflict as conflict:
        form.form_errors.extend(conflict.messages)
        return _assign_page(form, args, 409)
    except queues.AssignmentRefused as refused:
        form.form_errors.extend(refused.messages)
        return _assign_page(form, args, 422)
    flash(ngettext("%(num)d case assigned.", "%(num)d cases assigned.", changed), "success")
    return redirect(url_for("triage.assign", track=track, from_user=from_user))


@bp.route("/cases/<case_id>/unassign", methods=["POST"])
@requires(Permission.QUEUE_ASSIGN)
def unassign(case_id: str):
    form = UnassignForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        case = queues.unassign(case_id, acting_user=_me(), expected_version=int(form.version.data))
    except queues.CaseNotFound:
        abort(404)
    except queues.QueueError as refused:
        for message in refused.messages:
            flash(message, "error")
        return redirect(url_for("triage.assign"))
    flash(_("Case %(ref)s is back in the queue.", ref=case.reference), "success")
    return redirect(url_for("triage.assign", track=case.track))
