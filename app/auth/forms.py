"""Account forms. Length limits here mirror the service's checks so the browser and the server
give the same message; the service remains the authority."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length


class LoginForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64)],
                           render_kw={"autocomplete": "username", "autofocus": True})
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=128)],
                             render_kw={"autocomplete": "current-password"})
    submit = SubmitField(_l("Sign in"))


class SecondFactorForm(FlaskForm):
    code = StringField(_l("Code from your authenticator app, or a recovery code"),
                       validators=[DataRequired(), Length(min=6, max=20)],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True})
    submit = SubmitField(_l("Verify"))


class EnrolmentForm(FlaskForm):
    code = StringField(_l("Six-digit code shown by your authenticator app"),
                       validators=[DataRequired(), Length(min=6, max=6)],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"})
    submit = SubmitField(_l("Turn on second factor"))


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=128)],
                                     render_kw={"autocomplete": "current-password"})
    new_password = PasswordField(_l("New password (at least 15 characters)"),
                                 validators=[DataRequired(), Length(max=128)],
                                 render_kw={"autocomplete": "new-password"})
    confirm_password = PasswordField(_l("Repeat the new password"),
                                     validators=[DataRequired(),
                                                 EqualTo("new_password", _l("The two passwords differ."))],
                                     render_kw={"autocomplete": "new-password"})
    submit = SubmitField(_l("Change password"))


class LanguageForm(FlaskForm):
    locale = SelectField(_l("Language"), choices=[])
    submit = SubmitField(_l("Change language"))


class LogoutForm(FlaskForm):
    submit = SubmitField(_l("Sign out"))


class ConfirmForm(FlaskForm):
    """A bare CSRF-protected form for one-button actions."""
    confirm = BooleanField(default=True)
    submit = SubmitField(_l("Confirm"))
