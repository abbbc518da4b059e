"""Administration pages: accounts and offices. No access to claimant data from here."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from app.admin import bp
from app.admin.forms import OfficeForm, UserCreateForm, UserRoleForm, role_choices
from app.auth import services
from app.auth.access import requires
from app.auth.forms import ConfirmForm
from app.auth.models import Office, User
from app.auth.permissions import Permission
from app.database import reads_only
from app.extensions import db


def _office_choices():
    return [(o.id, f"{o.code} — {o.name}") for o in db.session.scalars(select(Office).order_by(Office.code))]


def _apply_errors(form, failed: services.ValidationFailed) -> None:
    for name, messages in failed.errors.items():
        field = getattr(form, name, None)
        (field.errors if field is not None else form.form_errors).extend(messages)


def _user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


@bp.route("/users")
@reads_only
@requires(Permission.USERS_MANAGE)
def users():
    rows = db.session.scalars(select(User).order_by(User.active.desc(), User.username)).all()
    return render_template("admin/users.html", users=rows)


@bp.route("/users/new", methods=["GET", "POST"])
@requires(Permission.USERS_MANAGE)
def create_user():
    form = UserCreateForm()
    form.role.choices = role_choices()
    form.office_id.choices = _office_choices()
    if form.validate_on_submit():
        try:
            user = services.create_user(username=form.username.data, full_name=form.full_name.data,
                                        role=form.role.data, office_id=form.office_id.data,
                                        password=form.password.data,
                                        acting_user=current_user._get_current_object())
        except services.ValidationFailed as failed:
            _apply_errors(form, failed)
            return render_template("admin/user_new.html", form=form), 422
        flash(_("Account %(username)s created.", username=user.username), "success")
        return redirect(url_for("admin.user_detail", user_id=user.id))
    return render_template("admin/user_new.html", form=form), 400 if request.method == "POST" else 200


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@requires(Permission.USERS_MANAGE)
def user_detail(user_id: int):
    user = _user_or_404(user_id)
    form = UserRoleForm(obj=user)
    form.role.choices = role_choices()
    form.office_id.choices = _office_choices()
    if form.validate_on_submit():
        acting = current_user._get_current_object()
        try:
            services.change_assignment(user, role=form.role.data, office_id=form.office_id.data,
                                       acting_user=acting)
        except services.ValidationFailed as failed:
            _apply_errors(form, failed)
            return render_template("admin/user_detail.html", user=user, form=form, action=ConfirmForm()), 422
        flash(_("Saved. The user's open sessions were ended so the change applies at once."), "success")
        return redirect(url_for("admin.user_detail", user_id=user.id))
    status = 400 if request.method == "POST" else 200
    return render_template("admin/user_detail.html", user=user, form=form, action=ConfirmForm()), status


@bp.route("/users/<int:user_id>/<any(deactivate, reactivate, 'reset-second-factor'):action>", methods=["POST"])
@requires(Permission.USERS_MANAGE)
def user_action(user_id: int, action: str):
    user = _user_or_404(user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    acting = current_user._get_current_object()
    try:
        if action == "reset-second-factor":
            services.reset_second_factor(user, acting_user=acting)
            flash(_("Second factor removed; the user enrols again at next sign-in."), "success")
        else:
            services.set_active(user, active=(action == "reactivate"), acting_user=acting)
            flash(_("Account reactivated.") if action == "reactivate" else _("Account deactivated."), "success")
    except services.ValidationFailed as failed:
        for messages in failed.errors.values():
            for message in messages:
                flash(message, "error")
    return redirect(url_for("admin.user_detail", user_id=user.id))


@bp.route("/offices", methods=["GET", "POST"])
@requires(Permission.USERS_MANAGE)
def offices():
    form = OfficeForm()
    status = 200
    if form.validate_on_submit():
        try:
            services.create_office(code=form.code.data, name=form.name.data,
                                   acting_user=current_user._get_current_object())
            flash(_("Office created."), "success")
            return redirect(url_for("admin.offices"))
        except services.ValidationFailed as failed:
            _apply_errors(form, failed)
            status = 422
    elif request.method == "POST":
        status = 400
    rows = db.session.scalars(select(Office).order_by(Office.code)).all()
    return render_template("admin/offices.html", offices=rows, form=form), status
