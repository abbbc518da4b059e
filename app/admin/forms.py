"""User and office administration forms."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length

from app.auth.permissions import Role

ROLE_LABELS = {
    Role.REGISTRATION_OFFICER: _l("Registration officer"),
    Role.CASEWORKER: _l("Caseworker"),
    Role.SUPERVISOR: _l("Supervisor"),
    Role.AUDITOR: _l("Auditor"),
    Role.ADMIN: _l("Administrator"),
}


def role_choices():
    return [(role.value, label) for role, label in ROLE_LABELS.items()]


class UserCreateForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(min=3, max=64)],
                           description=_l("Lower-case letters, digits, dot, dash or underscore."))
    full_name = StringField(_l("Full name"), validators=[DataRequired(), Length(max=200)])
    role = SelectField(_l("Role"), choices=[], validators=[DataRequired()])
    office_id = SelectField(_l("Office"), coerce=int, choices=[], validators=[DataRequired()])
    password = PasswordField(_l("Initial password (at least 15 characters)"),
                             validators=[DataRequired(), Length(max=128)],
                             render_kw={"autocomplete": "new-password"})
    submit = SubmitField(_l("Create account"))


class UserRoleForm(FlaskForm):
    role = SelectField(_l("Role"), choices=[], validators=[DataRequired()])
    office_id = SelectField(_l("Office"), coerce=int, choices=[], validators=[DataRequired()])
    submit = SubmitField(_l("Save role and office"))


class OfficeForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=16)])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    submit = SubmitField(_l("Create office"))
