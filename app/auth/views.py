"""Sign-in, second factor, sign-out, password and language. Thin: forms in, services do the work."""

from __future__ import annotations

import unicodedata
from datetime import timedelta
from urllib.parse import urlsplit

import segno
from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user

from app.auth import bp
from app.auth import services
from app.auth.access import public, requires
from app.auth.forms import EnrolmentForm, LanguageForm, LoginForm, PasswordChangeForm, SecondFactorForm
from app.auth.models import User
from app.auth.permissions import Permission
from app.db_types import utcnow
from app.extensions import db, limiter, login_manager

PENDING_KEY = "pending_sign_in"
ENROLMENT_KEY = "enrolment_key"
PENDING_LIFETIME = timedelta(minutes=5)
GENERIC_FAILURE = _l("The username or password is not correct.")


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    user = db.session.get(User, int(user_id))
    return user if user is not None and user.active else None


def _account_limit_key() -> str:
    # Same key whether or not the account exists, so the limit reveals nothing.
    return "login-account:" + (request.form.get("username") or "").strip().lower()[:64]


def _pending_user_limit_key() -> str:
    # Per account: the pending sign-in's user, or the signed-in user enrolling by choice.
    if current_user.is_authenticated:
        return f"second-factor:{current_user.id}"
    return "second-factor:" + str((session.get(PENDING_KEY) or {}).get("user_id"))


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths: never redirect a signed-in user to another site. Browsers
    read a backslash as a slash and drop tabs and newlines, so "/\\evil" and "/<tab>/evil" mean
    "//evil" to them: any backslash or control character refuses the target."""
    if (target and target.startswith("/") and not target.startswith("//")
            and not any(c == "\\" or unicodedata.category(c) == "Cc" for c in target)
            and not urlsplit(target).netloc and not urlsplit(target).scheme):
        return target
    return url_for("main.index")


def _set_pending(user: User, stage: str) -> None:
    session[PENDING_KEY] = {"user_id": user.id, "stage": stage,
                            "expires": (utcnow() + PENDING_LIFETIME).timestamp(),
                            "next": session.get(PENDING_KEY, {}).get("next")}


def _pending_user(stage: str) -> User | None:
    pending = session.get(PENDING_KEY)
    if not pending or pending.get("stage") != stage or pending["expires"] < utcnow().timestamp():
        return None
    user = db.session.get(User, pending["user_id"])
    return user if user is not None and user.active else None


def _fresh_session() -> None:
    """Empty the session and carry on under a new token: at sign-in against session fixation,
    at sign-out and password change so the flashed message reaches the next page (the old row
    was revoked by the service and must not be written again). The language choice stays."""
    locale = session.get("locale")
    session.clear()
    session.regenerate()
    if locale:
        session["locale"] = locale


def _finish_sign_in(user: User, method: str, next_target: str | None = None):
    target = _safe_next(next_target or (session.get(PENDING_KEY) or {}).get("next"))
    _fresh_session()
    login_user(user)
    if user.locale:
        session["locale"] = user.locale
    services.record_login(user, method=method)
    return redirect(target)


@bp.route("/login", methods=["GET", "POST"])
@public
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_ADDRESS"], methods=["POST"])
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT"], key_func=_account_limit_key,
               methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    form = LoginForm()
    if form.validate_on_submit():
        attempt = services.check_password_step(form.username.data, form.password.data)
        if attempt.status is services.LoginStatus.OK:
            return _finish_sign_in(attempt.user, "password", request.args.get("next"))
        if attempt.status is not services.LoginStatus.FAILED:
            # A new token already here: a session planted before the password step must not be
            # the one that completes the second factor or enrolment (where the key is shown).
            _fresh_session()
            session[PENDING_KEY] = {"next": request.args.get("next")}
            stage = "code" if attempt.status is services.LoginStatus.SECOND_FACTOR_NEEDED else "enrol"
            _set_pending(attempt.user, stage)
            return redirect(url_for("auth.second_factor" if stage == "code" else "auth.enrol"))
        form.password.errors.append(str(GENERIC_FAILURE))
        return render_template("auth/login.html", form=form), 401
    status = 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/second-factor", methods=["GET", "POST"])
@public
@limiter.limit("5 per minute", key_func=_pending_user_limit_key, methods=["POST"])
def second_factor():
    user = _pending_user("code")
    if user is None:
        flash(_("Please sign in again."), "warning")
        return redirect(url_for("auth.login"))
    form = SecondFactorForm()
    if form.validate_on_submit():
        if services.check_second_factor(user, form.code.data):
            return _finish_sign_in(user, "password+totp")
        form.code.errors.append(_("This code is not valid. Codes work once; wait for the next one."))
        return render_template("auth/second_factor.html", form=form), 401
    return render_template("auth/second_factor.html", form=form), 400 if request.method == "POST" else 200


@bp.route("/enrol", methods=["GET", "POST"])
@public
@limiter.limit("10 per minute", key_func=_pending_user_limit_key, methods=["POST"])
def enrol():
    """Second-factor enrolment: for a user whose role requires it (pending sign-in) or for a
    signed-in user who chooses to turn it on."""
    user = current_user if current_user.is_authenticated else _pending_user("enrol")
    if user is None:
        flash(_("Please sign in again."), "warning")
        return redirect(url_for("auth.login"))
    user = db.session.get(User, user.id)
    if user.mfa_enabled:
        return redirect(url_for("auth.account"))
    form = EnrolmentForm()
    # Only the session that was shown the pending key may confirm it; any other session (a new
    # sign-in, perhaps by someone who only had the password) is shown a new key instead.
    shown_here = (user.totp_secret is not None
                  and session.get(ENROLMENT_KEY) == services.enrolment_key_fingerprint(user))
    if form.validate_on_submit():
        codes = services.confirm_totp_enrolment(user, form.code.data) if shown_here else None
        if codes is not None:
            session.pop(ENROLMENT_KEY, None)
            if not current_user.is_authenticated:
                _finish_sign_in(user, "password+totp-enrolment")
            session["fresh_recovery_codes"] = codes
            return redirect(url_for("auth.recovery_codes"))
        form.code.errors.append(_("This code does not match. Check the time on your phone and try again."))
    if not shown_here:
        services.start_totp_enrolment(user)
        session[ENROLMENT_KEY] = services.enrolment_key_fingerprint(user)
    uri = services.provisioning_uri(user)
    qr = segno.make(uri, error="m").svg_data_uri(scale=5, dark="#000", light="#fff")
    status = 400 if request.method == "POST" else 200
    return render_template("auth/enrol.html", form=form, qr=qr, secret=user.totp_secret,
                           required=user.mfa_required), status


@bp.route("/recovery-codes")
@requires(Permission.ACCOUNT_SELF)
def recovery_codes():
    codes = session.pop("fresh_recovery_codes", None)
    if not codes:
        return redirect(url_for("auth.account"))
    return render_template("auth/recovery_codes.html", codes=codes)


@bp.route("/logout", methods=["POST"])
@requires(Permission.ACCOUNT_SELF)
def logout():
    services.logout(current_user._get_current_object())
    logout_user()
    _fresh_session()
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/account")
@requires(Permission.ACCOUNT_SELF)
def account():
    return render_template("auth/account.html", user=current_user)


@bp.route("/password", methods=["GET", "POST"])
@requires(Permission.ACCOUNT_SELF)
def change_password():
    form = PasswordChangeForm()
    if form.validate_on_submit():
        try:
            services.change_password(current_user._get_current_object(),
                                     current_password=form.current_password.data,
                                     new_password=form.new_password.data)
        except services.ValidationFailed as failed:
            for name, messages in failed.errors.items():
                getattr(form, name).errors.extend(messages)
            return render_template("auth/password.html", form=form), 422
        logout_user()
        _fresh_session()
        flash(_("Your password was changed. Every session was signed out: please sign in again."), "info")
        return redirect(url_for("auth.login"))
    return render_template("auth/password.html", form=form), 400 if request.method == "POST" else 200


@bp.route("/language", methods=["POST"])
@public
def choose_language():
    form = LanguageForm()
    form.locale.choices = list(current_app.config["LANGUAGES"].items())
    if form.validate_on_submit():
        session["locale"] = form.locale.data
        if current_user.is_authenticated:
            services.set_locale(current_user._get_current_object(), form.locale.data)
    return redirect(_safe_next(request.form.get("next")))
