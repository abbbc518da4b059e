"""The registration officer's pages: register a claim (drafts, the duplicate check), search,
the case page, and editing with optimistic locking.

Thin views: the forms carry the data, the services decide and audit. Personal data never goes
into a URL (search is a POST; pages are addressed by random ids), a log line or a flash message
(only the case reference and deadlines).
"""

from __future__ import annotations

import json
import re
from datetime import date

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from werkzeug.datastructures import MultiDict
from wtforms import FieldList, FormField

from app.audit.codes import EventCode
from app.auth.access import requires
from app.auth.permissions import Permission
from app.database import reads_only
from app.intake import bp, form_html, forms, services
from app.triage import services as triage_services
from app.intake.reference import country_name

ROW_ID = re.compile(r"[0-9a-f]{32}")
MAX_DRAFT_BYTES = 512 * 1024  # a full family with every section is a few tens of kilobytes
MAX_BLANK_FORMS = 16  # blank registration forms kept rendered (one per language and day)
EDIT_KEEPS_PERSONS = 1  # the edit page never offers to remove the principal applicant (person 1)
EVENT_LABELS = {
    EventCode.CASE_REGISTERED: _l("Claim registered"),
    EventCode.CASE_UPDATED: _l("Registration edited"),
    EventCode.DUPLICATE_LINKED: _l("Person linked to an existing record"),
    EventCode.DUPLICATE_CONFIRMED_NEW: _l("Confirmed as a new person (not a duplicate)"),
    EventCode.BULK_IMPORT: _l("Imported"),
    EventCode.RECORD_VIEWED: _l("Case opened"),
    EventCode.SEARCH_RESULT_OPENED: _l("Case opened from search results"),
    EventCode.ACCESS_DENIED: _l("Access refused"),
    EventCode.CASE_TRIAGED: _l("Triaged"),
    EventCode.TRACK_CHANGED: _l("Procedure track changed"),
    EventCode.TRACK_OVERRIDDEN: _l("Procedure track overridden"),
    EventCode.CASE_ASSIGNED: _l("Assigned"),
    EventCode.DATA_EXPORTED: _l("Data exported"),
    EventCode.DOCUMENT_PRINTED: _l("Printed"),
}
MATCH_REASON_LABELS = {  # app/intake/matching.py REASON_CODES, in words
    "name_exact": _l("same name"),
    "name_similar": _l("similar name (another spelling)"),
    "name_different": _l("different name"),
    "names_swapped": _l("given and family names swapped"),
    "alias_match": _l("matches a known alias"),
    "script_match": _l("same name in the original script"),
    "dob_exact": _l("same date of birth"),
    "dob_compatible": _l("compatible date of birth (partly known or estimated)"),
    "dob_transposed": _l("day and month of birth swapped"),
    "dob_close": _l("date of birth differs in one part"),
    "dob_unknown": _l("date of birth not known"),
    "dob_conflict": _l("different date of birth"),
    "nationality_same": _l("same nationality"),
    "nationality_different": _l("different nationality"),
    "nationality_unknown": _l("nationality not known"),
}


# The field helpers the intake templates' macros module hands out as m.control, m.check, m.group.
bp.add_app_template_global(form_html, "intake_fields")


def _actor():
    return current_user._get_current_object()


def _row_id_or_404(value: str | None) -> str:
    """Ids in URLs and hidden fields are random hex; anything else names nothing."""
    if not value or not ROW_ID.fullmatch(value):
        abort(404)
    return value


def _draft_id(form) -> str | None:
    value = form.draft_id.data or ""
    return value if ROW_ID.fullmatch(value) else None


# -- shared by the registration and edit forms ----------------------------------------------------------

def _blank_registration(today: str) -> forms.RegistrationForm:
    form = forms.RegistrationForm(formdata=None)
    form.persons[0].form.principal.data = True
    form.registered_on.data = today
    return form


def _blank_fields() -> Markup:
    """The fields of a blank registration form as HTML. Nearly 200 kB, the same for every officer
    on a given day (the registration date is filled in) in a given language: rendered once per
    language and day, per application, and reused; the form itself (1,200 fields) is built only
    then. It holds no personal data and no CSRF token (that field sits outside it, in
    register.html)."""
    cache = current_app.extensions.setdefault("intake_blank_fields", {})
    today = date.today().isoformat()
    key = (str(get_locale()), today)
    fields = cache.get(key)
    if fields is None:
        if len(cache) >= MAX_BLANK_FORMS:
            cache.clear()  # days go by: yesterday's forms are never asked for again
        fields = cache[key] = Markup(render_template(  # noqa: S704 - a rendered, autoescaped template
            "intake/_registration_fields.html", form=_blank_registration(today), person_title=_person_title,
            section_errors={}))
    return fields


def _person_title(index: int, person) -> str:
    if person.form.principal.data:
        return _("Person %(number)d: principal applicant", number=index + 1)
    return _("Person %(number)d: dependant", number=index + 1)


def _list_and_index(entry_id: str):
    head, _sep, tail = entry_id.rpartition("-")
    return (head, int(tail)) if head and tail.isdigit() else (None, None)


def _removable(form, entry_id: str, keep_persons: int = 0, kept_ids: frozenset = frozenset()) -> bool:
    """Only entries of repeatable groups can be removed; the last person never, nor the first
    ``keep_persons`` (on the edit page, the principal applicant), nor a saved person whose id is
    in ``kept_ids`` (one the service would refuse to remove). A saved person taken off the edit
    form is removed from the case only when the edit is saved, and only if the service agrees
    (people are matched by their ids, so nobody else's record shifts)."""
    list_id, index = _list_and_index(entry_id)
    target = forms.find_field(form, list_id) if list_id else None
    if not isinstance(target, FieldList) or index >= len(target.entries):
        return False
    if target.id == "persons":
        person_id = getattr(target.entries[index].form, "person_id", None)
        return len(target.entries) > 1 and index >= keep_persons and (
            person_id is None or person_id.data not in kept_ids)
    return True


def _add_entry(form, list_id: str) -> None:
    target = forms.find_field(form, list_id)
    if not isinstance(target, FieldList) or (target.max_entries and len(target.entries) >= target.max_entries):
        return
    entry = target.append_entry()
    # Keyboard users land in the entry they asked for.
    first_id = forms.first_input(entry.form.identity if target.id == "persons" else entry)
    first = forms.find_field(form, first_id) if first_id else None
    if first is not None:
        first.render_kw = {**(first.render_kw or {}), "autofocus": True}


def _edit_buttons(form, keep_persons: int = 0, kept_ids=frozenset):
    """Handle "Add ..." and "Remove ..." buttons: the same page again, one entry more or less.
    Returns the form to show, or None when the request was not such a button. ``kept_ids``: a
    callable giving the ids of saved people who may not be removed (asked only for a Remove)."""
    if "remove" in request.form:
        entry_id = request.form.get("remove", "")
        if _removable(form, entry_id, keep_persons, kept_ids()):
            form = type(form)(formdata=forms.drop_entry(request.form, entry_id))
        return form
    if "add" in request.form:
        _add_entry(form, request.form.get("add", ""))
        return form
    return None


def _apply_errors(form, paths: forms.PathMap, errors: dict[str, list[str]]) -> dict:
    """Put the service's errors (dotted paths) next to their fields; errors on a whole section go
    under its legend. Returns the page's error context: section errors and the summary links."""
    order = forms.field_order(form)
    section_errors: dict[str, list[str]] = {}
    summary = []
    for path, messages in errors.items():
        field = paths.field_for(path) if path != "__all__" else None
        if field is None:
            form.form_errors.extend(messages)
            summary.extend((-1, None, "", message) for message in messages)
            continue
        if isinstance(field, (FormField, FieldList)):
            section_errors.setdefault(field.id, []).extend(messages)
            anchor = forms.first_input(field) or field.id
        else:
            field.errors = [*field.errors, *messages]
            anchor = field.id
        label = forms.describe(form, field.id)
        summary.extend((order.get(field.id, 10**6), anchor, label, message) for message in messages)
    summary.sort(key=lambda item: item[0])
    return {"section_errors": section_errors, "summary": [item[1:] for item in summary]}


def _render_form(template: str, form, status: int = 200, **context):
    context.setdefault("section_errors", {})
    context.setdefault("summary", [])
    return render_template(template, form=form, person_title=_person_title, **context), status


# -- registration ------------------------------------------------------------------------------------------

@bp.route("/register", methods=["GET", "POST"])
@requires(Permission.CASE_REGISTER)
def register():
    actor = _actor()
    if request.method == "GET":
        draft_param = request.args.get("draft")
        if draft_param is None:
            return _render_form("intake/register.html", forms.RegistrationHead(), blank_fields=_blank_fields())
        try:
            draft = services.load_draft(_row_id_or_404(draft_param), acting_user=actor)
        except services.CaseNotFound:
            abort(404)
        form = forms.RegistrationForm(formdata=_draft_formdata(draft.payload))
        form.draft_id.data = draft.id
        return _render_form("intake/register.html", form)

    form = forms.RegistrationForm(formdata=request.form)
    if not form.validate():  # the CSRF token; every other rule is the schema's
        abort(400)
    changed = _edit_buttons(form)
    if changed is not None:
        return _render_form("intake/register.html", changed)
    if request.form.get("action") == "save_draft":
        return _save_draft(form, actor)

    payload, paths = forms.to_payload(form)
    decisions = _duplicate_decisions(len(payload.get("persons") or ()))
    try:
        result = services.register_claim(payload, acting_user=actor, duplicate_decisions=decisions or None,
                                         draft_id=_draft_id(form))
    except services.RegistrationInvalid as refused:
        return _render_form("intake/register.html", form, 422, **_apply_errors(form, paths, refused.errors))
    except services.PossibleDuplicates as found:
        return _render_duplicates(form, payload, found, decisions)
    flash(_registered_message(result), "success")
    return redirect(url_for(".case_page", case_id=result.case.id))


def _draft_formdata(payload) -> MultiDict:
    pairs = []
    if isinstance(payload, dict):
        for key, values in payload.items():
            for value in values if isinstance(values, list) else [values]:
                if isinstance(key, str) and isinstance(value, str):
                    pairs.append((key, value))
    return MultiDict(pairs)


def _save_draft(form, actor):
    raw = forms.raw_formdata(request.form)
    raw.pop("draft_id", None)
    if len(json.dumps(raw)) > MAX_DRAFT_BYTES:
        form.form_errors.append(_("This draft is too large to be saved. Shorten the longest texts."))
        return _render_form("intake/register.html", form, 413,
                            summary=[(None, "", form.form_errors[-1])])
    draft = services.save_draft(raw, acting_user=actor, draft_id=_draft_id(form))
    flash(_("Draft saved. You can finish it later from “My drafts”."), "success")
    return redirect(url_for(".register", draft=draft.id))


def _duplicate_decisions(person_count: int) -> dict[int, str]:
    """The officer's choices in the duplicate step: ``duplicate-<position>`` is "new" or the id
    of the existing person to link. Anything else is no decision (asked again)."""
    decisions = {}
    for key, value in request.form.items():
        position = key.removeprefix("duplicate-")
        if key.startswith("duplicate-") and position.isdigit() and int(position) < person_count \
                and (value == "new" or ROW_ID.fullmatch(value)):
            decisions[int(position)] = value
    return decisions


def _render_duplicates(form, payload: dict, found: services.PossibleDuplicates, decisions: dict):
    candidates = dict(found.candidates)
    if decisions:
        # Some people were decided already: show them again with the choice made still selected
        # (the service reports only the undecided ones). A lookup only: nothing is written.
        data = services.validate_registration(payload)
        for position in decisions:
            if position not in candidates and (again := services.find_duplicate_candidates(data.persons[position])):
                candidates[position] = again
    missing = set(found.candidates) if request.form.get("duplicate_step") else set()
    summary = []
    people = []
    for position in sorted(candidates):
        entry = form.persons[position] if position < len(form.persons.entries) else None
        identity = payload["persons"][position].get("identity", {})
        people.append({
            "position": position,
            "title": _person_title(position, entry) if entry is not None else str(position + 1),
            "name": ", ".join(part for part in (identity.get("family_name"), identity.get("given_names")) if part),
            "candidates": [_candidate_view(c) for c in candidates[position]],
            "chosen": decisions.get(position),
            "missing": position in missing,
        })
        if position in missing:
            summary.append((f"duplicate-{position}-0", people[-1]["title"],
                            _("Choose whether this is a person already registered or a new person.")))
    return _render_form("intake/register.html", form, 409, duplicates=people, summary=summary)


def _candidate_view(candidate: services.DuplicateCandidate) -> dict:
    locale = str(get_locale())
    return {
        "person_id": candidate.person_id, "reference": candidate.case_reference, "office": candidate.office_code,
        "name": ", ".join(part for part in (candidate.family_name, candidate.given_names) if part),
        "date_of_birth": candidate.date_of_birth or _("not known"),
        "nationalities": ", ".join(country_name(code, locale) for code in candidate.nationalities) or _("none"),
        "score": f"{round(candidate.score * 100)} %",
        "reasons": "; ".join(str(MATCH_REASON_LABELS.get(reason, reason.replace("_", " ")))
                             for reason in candidate.reasons),
    }


def _registered_message(result: services.RegistrationResult) -> str:
    case = result.case
    parts = [_("Case %(reference)s registered.", reference=case.reference)]
    if case.late_registration:
        parts.append(_("Late registration: %(days)d days after the claim was made.",
                       days=case.registration_delay_days))
    if case.representative_due:
        parts.append(_("Unaccompanied minor without a representative: one must be appointed by %(date)s.",
                       date=case.representative_due.isoformat()))
    if "special_needs" in result.flags:
        parts.append(_("Special needs recorded."))
    if case.special_needs_assessment_due:
        parts.append(_("Special-needs assessment due by %(date)s.",
                       date=case.special_needs_assessment_due.isoformat()))
    return " ".join(parts)


@bp.route("/drafts")
@reads_only
@requires(Permission.CASE_REGISTER)
def drafts():
    rows = []
    for draft in services.my_drafts(_actor()):
        payload = draft.payload if isinstance(draft.payload, dict) else {}
        name = ", ".join(value[0] for key in ("persons-0-identity-family_name", "persons-0-identity-given_names")
                         if isinstance(value := payload.get(key), list) and value and value[0].strip())
        rows.append({"id": draft.id, "saved": draft.updated_at, "name": name})
    return render_template("intake/drafts.html", drafts=rows)


# -- search --------------------------------------------------------------------------------------------------

@bp.route("/search", methods=["GET", "POST"])
@reads_only
@requires(Permission.CASE_SEARCH)
def search():
    """Search terms travel in the body of a POST, never in the URL (they are personal data)."""
    form = forms.SearchForm()
    if request.method == "GET":
        return _render_search(form)
    if form.validate():
        criteria = _criteria(form)
        if criteria is not None:
            try:
                hits = services.search(criteria, acting_user=_actor())
            except services.RegistrationInvalid as refused:
                for messages in refused.errors.values():
                    form.form_errors.extend(messages)
            else:
                return _render_search(form, hits)
    return _render_search(form), 400


def _render_search(form, hits=None):
    return render_template("intake/search.html", form=form, hits=hits, section_errors={})


def _criteria(form) -> services.SearchCriteria | None:
    values = {name: (getattr(form, name).data or "").strip()
              for name in ("reference", "document_number", "family_name", "given_names", "date_of_birth")}
    birth = None
    if values["date_of_birth"]:
        try:
            birth = date.fromisoformat(values["date_of_birth"])
        except ValueError:
            form.date_of_birth.errors.append(_("Enter a date as YYYY-MM-DD."))
            return None
    criteria = services.SearchCriteria(reference=values["reference"] or None,
                                       document_number=values["document_number"] or None,
                                       family_name=values["family_name"] or None,
                                       given_names=values["given_names"] or None, date_of_birth=birth)
    if criteria.is_empty():
        form.form_errors.append(_("Enter at least one search criterion."))
        return None
    return criteria


# -- the case page -------------------------------------------------------------------------------------------

def _case_payload(view: services.CaseView) -> dict:
    case = view.case
    return {"made_on": case.made_on.isoformat(), "made_place": case.made_place,
            "registered_on": case.registered_on.isoformat(),
            "lodged_on": case.lodged_on.isoformat() if case.lodged_on else None,
            "good_cause_for_not_lodging": case.good_cause_for_not_lodging, "arrival": case.arrival or {},
            "persons": [{key: value for key, value in person.items() if key not in ("id", "version")}
                        for person in view.persons]}


@bp.route("/<case_id>")
@requires(Permission.CASE_VIEW)
def case_page(case_id: str):
    actor = _actor()
    try:
        view = services.open_case(_row_id_or_404(case_id), acting_user=actor,
                                  via_search=request.args.get("from") == "search")
    except services.CaseNotFound:
        abort(404)
    shown = forms.RegistrationForm(formdata=forms.payload_to_formdata(_case_payload(view)), meta={"csrf": False})
    history = [{"time": event.occurred_at, "role": event.actor_role, "outcome": event.outcome,
                "event": _event_label(event.code)} for event in view.history]
    # Grounds can reveal special-category data: the panel only for roles that may see S3.
    triage = (triage_services.triage_panel(view.case, acting_user=actor)
              if view.show_special_category else None)
    can_decide = actor.can(Permission.QUEUE_WORK) and view.show_special_category
    return render_template("intake/case.html", view=view, case=view.case, shown=shown, history=history,
                           triage=triage, can_decide=can_decide,
                           today=date.today(), person_title=_person_title, is_blank=forms.is_blank,
                           is_empty=forms.is_empty, display_value=forms.display_value,
                           can_edit=actor.can(Permission.CASE_EDIT) and actor.can(
                               Permission.CASE_VIEW_SPECIAL_CATEGORY))


def _event_label(code: int) -> str:
    try:
        event = EventCode(code)
    except ValueError:
        return str(code)
    return str(EVENT_LABELS.get(event, event.name.replace("_", " ").capitalize()))


# -- editing -------------------------------------------------------------------------------------------------

@bp.route("/<case_id>/edit", methods=["GET", "POST"])
@requires(Permission.CASE_EDIT, Permission.CASE_VIEW_SPECIAL_CATEGORY)
def edit(case_id: str):
    """The whole registration, S3 sections included, so editing needs the S3 permission too."""
    actor = _actor()
    case_id = _row_id_or_404(case_id)
    if request.method == "GET":
        try:
            view = services.open_case(case_id, acting_user=actor)
        except services.CaseNotFound:
            abort(404)
        form = forms.EditForm(formdata=forms.with_person_ids(
            forms.payload_to_formdata(services.registration_payload(view.case)), [p.id for p in view.case.persons]))
        form.expected_version.data = str(view.case.version)
        form.reference.data = view.case.reference
        return _render_edit(form, view.case.reference, case_id)

    form = forms.EditForm(formdata=request.form)
    if not form.validate() or not (form.expected_version.data or "").isdigit():
        abort(400)
    reference = (form.reference.data or "")[:20]
    changed = _edit_buttons(form, keep_persons=EDIT_KEEPS_PERSONS, kept_ids=lambda: _kept_ids(case_id, actor))
    if changed is not None:
        return _render_edit(changed, reference, case_id)
    payload, paths = forms.to_payload(form)
    try:
        case = services.update_registration(case_id, payload, expected_version=int(form.expected_version.data),
                                            acting_user=actor, person_ids=forms.submitted_person_ids(form))
    except services.CaseNotFound:
        abort(404)
    except services.RegistrationInvalid as refused:
        return _render_edit(form, reference, case_id, 422, **_apply_errors(form, paths, refused.errors))
    except services.EditConflict as conflict:
        form.expected_version.data = str(conflict.current_version)
        return _render_edit(form, reference, case_id, 409,
                            conflict=_conflict_rows(form, conflict, forms.submitted_person_ids(form)))
    flash(_("Case %(reference)s saved.", reference=case.reference), "success")
    return redirect(url_for(".case_page", case_id=case.id))


def _kept_ids(case_id: str, actor) -> frozenset:
    try:
        return frozenset(services.persons_kept_on_edit(case_id, acting_user=actor))
    except services.CaseNotFound:
        abort(404)


def _render_edit(form, reference: str, case_id: str, status: int = 200, **context):
    return _render_form("intake/register.html", form, status, editing=True, reference=reference,
                        case_id=case_id, edit_keeps_persons=EDIT_KEEPS_PERSONS,
                        kept_person_ids=_kept_ids(case_id, _actor()), **context)


def _normalised(payload: dict) -> dict:
    """A payload as the schema reads it (defaults filled in), so only real differences show."""
    try:
        return services.validate_registration(payload).model_dump(mode="json")
    except services.RegistrationInvalid:
        return payload


def _conflict_rows(form, conflict: services.EditConflict, submitted_ids: list[str | None]) -> list[dict]:
    """The fields that differ, each person compared with the saved record of the same person (by
    id): someone else's removal of a dependant shows as that person's values "not given" now,
    not as every later person's values shifted by one."""
    current = _normalised(conflict.current)
    saved = dict(zip(conflict.current_person_ids, current.get("persons") or [], strict=False))
    if saved and len(submitted_ids) == len(conflict.submitted.get("persons") or ()):
        current = {**current, "persons": [saved.get(person_id, {}) if person_id else {}
                                          for person_id in submitted_ids]}
    rows = []
    for path, change in services.changed_fields(current, _normalised(conflict.submitted)).items():
        field = forms.field_at(form, path)
        rows.append({"path": path, "label": forms.describe_payload_path(form, path),
                     "saved": forms.format_value(field, change["old"]),
                     "yours": forms.format_value(field, change["new"])})
    return rows
