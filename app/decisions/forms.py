"""Decision forms. They check shape (types, lengths, choices); the services check the rules and
remain the authority. Several forms of one kind can be on the workspace at once (one per person,
interview, decision or appeal), so each gets a prefix naming what it is about.

CSRF: every POST is checked by the application-wide CSRFProtect (app/extensions.py), which
accepts the page's single ``csrf_token`` field; the forms themselves therefore carry none, so
prefixed forms need no token of their own.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (BooleanField, DateField, IntegerField, RadioField, SelectField,
                     SelectMultipleField, StringField, SubmitField, TextAreaField, TimeField)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional
from wtforms.widgets import HiddenInput

from app.decisions import settings
from app.decisions.models import APPEAL_OUTCOMES, CANCEL_REASONS, OMISSION_GROUNDS, SERVICE_METHODS



def choices(pairs) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


ATTENDANCE_CHOICES = choices([("attended", _l("Attended")), ("absent_excused", _l("Absent, with good reason")),
                              ("absent_unexcused", _l("Absent, without good reason"))])
GENDER_CHOICES = choices([("any", _l("No preference")), ("female", _l("Female interpreter")),
                          ("male", _l("Male interpreter"))])
METHOD_LABELS = {"in_person": _l("Handed over in person"), "post": _l("By registered post"),
                 "electronic": _l("Electronically"), "representative": _l("To the legal representative")}
CANCEL_REASON_LABELS = {"applicant_ill": _l("The applicant is ill"),
                        "interpreter_unavailable": _l("The interpreter is not available"),
                        "caseworker_unavailable": _l("The caseworker is not available"),
                        "applicant_requested": _l("At the applicant's request"),
                        "other": _l("Other reason (say which)")}
OMISSION_GROUND_LABELS = {
    "positive_decision": _l("A positive decision can be taken on the evidence available"),
    "unfit": _l("The applicant is unfit or unable to be interviewed (medical opinion)"),
    "failed_to_appear": _l("The applicant did not appear without good reason: decision on the file"),
    "other": _l("Another ground under national law (say which)")}
APPEAL_OUTCOME_LABELS = {"upheld": _l("Upheld (the decision stands)"),
                         "overturned": _l("Overturned (the decision is annulled or changed)"),
                         "remitted": _l("Remitted (examine again)")}


class CaseForm(FlaskForm):
    class Meta:
        csrf = False  # checked application-wide, see the module docstring

    expected_version = IntegerField(widget=HiddenInput(), validators=[InputRequired()])


class TransitionForm(CaseForm):
    reason = TextAreaField(_l("Reason"), validators=[Optional(), Length(max=2000)])
    submit = SubmitField(_l("Confirm"))


class InterviewForm(CaseForm):
    person_id = SelectField(_l("Person interviewed"), choices=[], validate_choice=True)
    date = DateField(_l("Date"), validators=[InputRequired(_l("Give the date."))])
    time = TimeField(_l("Time (UTC)"), validators=[InputRequired(_l("Give the time."))])
    duration_minutes = IntegerField(_l("Duration (minutes)"), default=120, validators=[
        InputRequired(_l("Give the duration.")), NumberRange(min=15, max=480)])
    remote = BooleanField(_l("Remote interview (video)"))
    place = StringField(_l("Place"), validators=[Optional(), Length(max=200)])
    interpreter_language = StringField(_l("Interpreter language (ISO 639-3)"),
                                       validators=[Optional(), Length(min=3, max=3)])
    interpreter_gender = SelectField(_l("Interpreter gender"), choices=GENDER_CHOICES, default="any")
    interpreter_name = StringField(_l("Interpreter name"), validators=[Optional(), Length(max=200)])
    submit = SubmitField(_l("Schedule the interview"))


class RecordInterviewForm(CaseForm):
    attendance = SelectField(_l("Attendance"), choices=ATTENDANCE_CHOICES)
    notes = TextAreaField(_l("Interview notes"), validators=[Optional(), Length(max=100_000)])
    submit = SubmitField(_l("Record the interview"))


class CancelInterviewForm(CaseForm):
    reason = SelectField(_l("Reason"), choices=choices((r, CANCEL_REASON_LABELS[r]) for r in CANCEL_REASONS))
    details = TextAreaField(_l("Details"), validators=[Optional(), Length(max=2000)],
                            description=_l("Required for another reason."))
    submit = SubmitField(_l("Cancel the interview"))


class RescheduleForm(CaseForm):
    reason = SelectField(_l("Reason"), choices=choices((r, CANCEL_REASON_LABELS[r]) for r in CANCEL_REASONS))
    details = TextAreaField(_l("Details"), validators=[Optional(), Length(max=2000)],
                            description=_l("Required for another reason."))
    date = DateField(_l("New date"), validators=[InputRequired(_l("Give the date."))])
    time = TimeField(_l("Time (UTC)"), validators=[InputRequired(_l("Give the time."))])
    submit = SubmitField(_l("Reschedule the interview"))


class OmissionForm(CaseForm):
    ground = SelectField(_l("Ground"), choices=choices((g, OMISSION_GROUND_LABELS[g]) for g in OMISSION_GROUNDS))
    medical_opinion_on = DateField(_l("Date of the medical opinion"), validators=[Optional()])
    medical_opinion_reference = StringField(_l("Reference of the medical opinion"),
                                            validators=[Optional(), Length(max=64)])
    details = TextAreaField(_l("Details"), validators=[Optional(), Length(max=2000)],
                            description=_l("Required for another ground under national law."))
    submit = SubmitField(_l("Record the omission of the interview"))


class DraftForm(CaseForm):
    outcome = SelectField(_l("Outcome"), choices=[], validators=[DataRequired(_l("Choose the outcome."))])
    legal_basis = SelectMultipleField(_l("Legal basis"), choices=[])
    reasons = TextAreaField(_l("Written reasons"), validators=[Optional(), Length(max=50_000)],
                            description=_l("Required for a negative decision before it is submitted."))
    submit = SubmitField(_l("Save the draft"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The labels are marked with N_ in settings.py; translated here, per request.
        self.outcome.choices = choices([("", _l("Choose…")), *((k, _l(v)) for k, v in settings.OUTCOMES.items())])
        self.legal_basis.choices = choices((k, f"{k} — {_l(v)}") for k, v in settings.LEGAL_BASIS.items())


class SubmitDecisionForm(CaseForm):
    submit = SubmitField(_l("Submit for review"))


class ReviewForm(CaseForm):
    action = RadioField(_l("Review"),
                        choices=choices([("approve", _l("Approve")), ("return", _l("Return with comments"))]),
                        validators=[InputRequired(_l("Choose approve or return."))])
    comments = TextAreaField(_l("Comments"), validators=[Optional(), Length(max=10_000)])
    submit = SubmitField(_l("Record the review"))


class IssueForm(CaseForm):
    service_date = DateField(_l("Planned date of service (the letter counts the appeal deadline from it)"),
                             validators=[Optional()])
    submit = SubmitField(_l("Issue"))


class ServiceForm(CaseForm):
    served_on = DateField(_l("Date served"), validators=[InputRequired(_l("Give the date served."))])
    method = SelectField(_l("How"), choices=choices((m, METHOD_LABELS[m]) for m in SERVICE_METHODS))
    submit = SubmitField(_l("Record service"))


class AppealForm(CaseForm):
    lodged_on = DateField(_l("Date lodged"), validators=[InputRequired(_l("Give the date the appeal was lodged."))])
    court_reference = StringField(_l("Court reference"), validators=[Optional(), Length(max=64)])
    suspension_requested = BooleanField(_l("The applicant asked the court to be allowed to remain"))
    submit = SubmitField(_l("Record the appeal"))


class AppealOutcomeForm(CaseForm):
    outcome = SelectField(_l("Outcome"), choices=choices((o, APPEAL_OUTCOME_LABELS[o]) for o in APPEAL_OUTCOMES))
    decided_on = DateField(_l("Date of the appeal decision"), validators=[InputRequired(_l("Give the date."))])
    submit = SubmitField(_l("Record the outcome"))


class CorrectionForm(CaseForm):
    submit = SubmitField(_l("Draft a correction"))
