"""The audit viewer's filter form: a GET form (bookmarkable, no state change, so no CSRF token)."""

from __future__ import annotations

from datetime import UTC

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateTimeLocalField, IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, NumberRange, Optional, ValidationError
from wtforms.widgets import HiddenInput

from app.audit.codes import EventCode
from app.audit.services import OUTCOMES, AuditFilters

MAX_SEQ = 2**63 - 1  # the largest value a BIGINT (and SQLite's INTEGER) can hold
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]


def printable(_form, field) -> None:
    """Refuse control characters (PostgreSQL cannot even compare text containing NUL)."""
    if field.data and any(ord(ch) < 32 or ord(ch) == 127 for ch in field.data):
        raise ValidationError(_l("Remove the control characters."))


def code_choices():
    return [SelectChoice("", _l("Any event"))] + [SelectChoice(str(int(code)), f"{int(code)} {code.name}")
                                                  for code in EventCode]


def outcome_choices():
    labels = {"success": _l("Success"), "failure": _l("Failure"), "denied": _l("Denied")}
    return [SelectChoice("", _l("Any outcome"))] + [SelectChoice(value, labels[value]) for value in sorted(OUTCOMES)]


class AuditFilterForm(FlaskForm):
    class Meta:
        csrf = False

    actor = StringField(_l("Actor (username)"), validators=[Optional(), Length(max=64), printable])
    subject_type = StringField(_l("Subject type"), validators=[Optional(), Length(max=32), printable],
                               description=_l("For example: user, case, crypto_key."))
    subject_id = StringField(_l("Subject id"), validators=[Optional(), Length(max=64), printable])
    code = SelectField(_l("Event"), choices=code_choices, validators=[Optional()])
    outcome = SelectField(_l("Outcome"), choices=outcome_choices, validators=[Optional()])
    since = DateTimeLocalField(_l("From (UTC)"), format=DATETIME_FORMATS, validators=[Optional()])
    until = DateTimeLocalField(_l("Until (UTC)"), format=DATETIME_FORMATS, validators=[Optional()])
    # Keyset paging cursors, carried in the links, not typed by people.
    before = IntegerField(widget=HiddenInput(), validators=[Optional(), NumberRange(min=1, max=MAX_SEQ)])
    after = IntegerField(widget=HiddenInput(), validators=[Optional(), NumberRange(min=0, max=MAX_SEQ)])

    def validate_until(self, field) -> None:
        if field.data and self.since.data and field.data < self.since.data:
            raise ValidationError(_l("The end of the period must not be before its start."))

    def validate_after(self, field) -> None:
        if field.data is not None and self.before.data is not None:
            raise ValidationError(_l("Page either forwards or backwards, not both."))

    def filters(self) -> AuditFilters:
        """The validated input as service filters (times are UTC, as the labels say)."""
        return AuditFilters(
            actor=(self.actor.data or "").strip() or None,
            subject_type=(self.subject_type.data or "").strip() or None,
            subject_id=(self.subject_id.data or "").strip() or None,
            code=int(self.code.data) if self.code.data else None,
            outcome=self.outcome.data or None,
            since=self.since.data.replace(tzinfo=UTC) if self.since.data else None,
            until=self.until.data.replace(tzinfo=UTC) if self.until.data else None,
        )

    def query_args(self) -> dict:
        """The filters as URL parameters, for the paging links."""
        return {name: self[name].raw_data[0] for name in
                ("actor", "subject_type", "subject_id", "code", "outcome", "since", "until")
                if self[name].raw_data and self[name].raw_data[0]}
