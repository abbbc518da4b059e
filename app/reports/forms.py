"""The report filters: a GET form (bookmarkable, no CSRF token: it changes nothing), validated in
full: every problem is reported, bad input answers 400 with the messages, never 500."""

from __future__ import annotations

from datetime import date, timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField
from wtforms.validators import Optional

from app.reports.labels import nationality_choices, track_choices
from app.reports.queries import ReportFilters

DEFAULT_WEEKS = 26
MAX_PERIOD_DAYS = 3 * 366
EARLIEST = date(2000, 1, 1)


def default_period(today: date) -> tuple[date, date]:
    """The last 26 ISO weeks, this one included: Monday 25 weeks back to today."""
    monday = today - timedelta(days=today.weekday())
    return monday - timedelta(weeks=DEFAULT_WEEKS - 1), today


class ReportFilterForm(FlaskForm):
    class Meta:
        csrf = False

    date_from = DateField(_l("From"), validators=[Optional()],
                          description=_l("First day of the period (registrations and decisions)."))
    date_to = DateField(_l("To"), validators=[Optional()], description=_l("Last day of the period, included."))
    office = SelectField(_l("Office"), coerce=str, validate_choice=True)
    track = SelectField(_l("Track"), validate_choice=True)
    nationality = SelectField(_l("Nationality"), validate_choice=True)

    def __init__(self, formdata, *, offices: list[tuple[int, str]], today: date):
        # Defaults for parameters the query string leaves out (the first office: the user's own).
        super().__init__(formdata, office=str(offices[0][0]), track="", nationality="")
        self.today = today
        self.office.choices = [(str(office_id), name) for office_id, name in offices]
        self.track.choices = [("", _l("All tracks")), *track_choices()]
        self.nationality.choices = [("", _l("All nationalities")), *nationality_choices()]

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        start, end = self.period()
        if self.date_from.data and self.date_from.data < EARLIEST:
            self.date_from.errors.append(_("Enter a date from 2000 on."))
            ok = False
        if self.date_to.data and self.date_to.data > self.today + timedelta(days=366):
            self.date_to.errors.append(_("Enter a date at most a year ahead."))
            ok = False
        if start and end and start > end:
            self.date_to.errors.append(_("The end of the period must not be before its start."))
            ok = False
        elif start and end and (end - start).days + 1 > MAX_PERIOD_DAYS:
            self.date_to.errors.append(_("Choose a period of at most three years."))
            ok = False
        return ok

    def period(self) -> tuple[date | None, date | None]:
        default_from, default_to = default_period(self.today)
        start = self.date_from.data or (None if self.date_from.errors else default_from)
        end = self.date_to.data or (None if self.date_to.errors else default_to)
        return start, end

    def filters(self) -> ReportFilters:
        start, end = self.period()
        return ReportFilters(date_from=start, date_to=end, as_of=self.today, office_id=int(self.office.data),
                             track=self.track.data or None, nationality=self.nationality.data or None)

    def query_args(self) -> dict[str, str]:
        """The validated filters as query-string arguments (for export links and paging)."""
        start, end = self.period()
        args = {"date_from": start.isoformat(), "date_to": end.isoformat(), "office": self.office.data}
        if self.track.data:
            args["track"] = self.track.data
        if self.nationality.data:
            args["nationality"] = self.nationality.data
        return args
