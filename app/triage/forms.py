"""Triage forms: override, assessment facts, settings (built from the active ruleset's context),
reference data (one row, or a CSV file), ruleset replay and activation."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, DateField, HiddenField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from app.triage.facts import ASSESSMENT_FACTS

ASSESSMENT_LABELS = {
    "only_irrelevant_issues": _l("Only issues irrelevant to international protection raised (APR 42(1)(a))"),
    "inconsistent_or_improbable_statements": _l("Clearly inconsistent, false or improbable statements (42(1)(b))"),
    "applied_merely_to_delay_removal": _l("Applied merely to delay or frustrate removal (42(1)(d))"),
    "good_cause_shown": _l("Good cause shown for withheld or false documents"),
    "special_reception_needs_support_at_border": _l("Special reception needs can be supported at the border location"),
    "medical_reasons_against_border": _l("Medical reasons against the border procedure"),
    "detention_guarantees_met": _l("Guarantees for detention at the border are met"),
    "sco_individual_rebuttal_elements": _l("Individual elements rebut the safe-country-of-origin presumption"),
    "significant_change_since_eurostat": _l(
        "Significant change in the country since the recognition rate was published"),
    "category_not_representative": _l("The recognition rate is not representative of the applicant's category"),
}
TRISTATE_CHOICES = [("", _l("Not established")), ("yes", _l("Yes")), ("no", _l("No"))]
YES_NO_CHOICES = [("yes", _l("Yes")), ("no", _l("No"))]


class OverrideForm(FlaskForm):
    track = SelectField(_l("Track"), choices=[], validators=[DataRequired()])
    reason = TextAreaField(_l("Reason (mandatory; kept in the case history)"),
                           validators=[DataRequired(_l("Give the reason for the override.")), Length(max=2000)])
    submit = SubmitField(_l("Override the track"))


class ActionForm(FlaskForm):
    """A bare CSRF-protected form for one-button actions (withdraw, delete)."""

    submit = SubmitField(_l("Confirm"))


def _assessment_form_class():
    fields = {name: SelectField(ASSESSMENT_LABELS[name], choices=TRISTATE_CHOICES, default="")
              for name in ASSESSMENT_FACTS}
    fields["version"] = HiddenField()
    fields["submit"] = SubmitField(_l("Save assessment"))
    return type("AssessmentForm", (FlaskForm,), fields)


AssessmentForm = _assessment_form_class()


def assessment_values(form) -> dict:
    """The submitted choices as facts: yes -> true, no -> false, empty -> null (not established)."""
    return {name: {"yes": True, "no": False}.get(getattr(form, name).data) for name in ASSESSMENT_FACTS}


def settings_form_class(settings):
    """A form with one field per editable setting (``services.SettingView``), named after it,
    plus a ``reset__<name>`` box to go back to the ruleset's default."""
    fields = {}
    for item in settings:
        if not item.editable:
            continue
        label, description = item.name.replace("_", " ").capitalize(), item.description
        if item.type == "bool":
            fields[item.name] = SelectField(label, choices=YES_NO_CHOICES, description=description)
        elif item.type == "choice":
            fields[item.name] = SelectField(label, choices=[(c, c) for c in item.choices], description=description)
        elif item.type == "date":
            fields[item.name] = DateField(label, validators=[Optional()], description=description)
        elif item.type in ("alpha3_list", "code_list"):
            hint = _l("Codes separated by commas or spaces.")
            fields[item.name] = StringField(label, validators=[Length(max=4000)],
                                            description=f"{description} {hint}".strip())
        else:  # number
            fields[item.name] = StringField(label, validators=[Length(max=40)], description=description)
        fields[f"reset__{item.name}"] = BooleanField(_l("Use the ruleset's default"))
    fields["submit"] = SubmitField(_l("Save settings"))
    return type("SettingsForm", (FlaskForm,), fields)


class RateForm(FlaskForm):
    nationality = StringField(_l("Nationality (alpha-3)"), validators=[InputRequired(), Length(max=3)])
    rate_pct = StringField(_l("Recognition rate (%)"), validators=[InputRequired(), Length(max=10)],
                           description=_l("Refugee + subsidiary protection over all first-instance decisions; "
                                          "never national humanitarian status."))
    source = StringField(_l("Source"), validators=[InputRequired(), Length(max=200)])
    as_of = DateField(_l("Date of the data"), validators=[InputRequired()])
    submit = SubmitField(_l("Save rate"))


class SafeCountryForm(FlaskForm):
    country = StringField(_l("Country (alpha-3)"), validators=[InputRequired(), Length(max=3)])
    designation = SelectField(_l("Designation"), choices=[("EU_list", _l("EU list")),
                                                          ("national_list", _l("National list"))])
    source = StringField(_l("Source"), validators=[InputRequired(), Length(max=200)])
    as_of = DateField(_l("Date of the designation"), validators=[InputRequired()])
    submit = SubmitField(_l("Save country"))


class CsvImportForm(FlaskForm):
    file = FileField(_l("CSV file"), validators=[FileRequired(_l("Choose a CSV file."))])
    replace = BooleanField(_l("Also remove entries absent from the file"))
    submit = SubmitField(_l("Import"))


class ReplayForm(FlaskForm):
    file = FileField(_l("Candidate ruleset (.yaml, .yml or .json)"),
                     validators=[FileRequired(_l("Choose a ruleset file."))])
    submit = SubmitField(_l("Replay the open caseload"))


class ActivateForm(FlaskForm):
    document = HiddenField(validators=[DataRequired()])
    checksum = HiddenField(validators=[DataRequired()])
    confirm = BooleanField(_l("I have reviewed the moves above and want this ruleset to be the active one"),
                           validators=[DataRequired(_l("Tick the box to confirm."))])
    submit = SubmitField(_l("Activate this ruleset"))
