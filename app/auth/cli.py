"""`flask users ...`: account commands for operators (the first administrator, above all)."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.auth import services
from app.auth.models import Office
from app.auth.permissions import Role
from app.extensions import db

users_cli = AppGroup("users", help="User accounts.")


@users_cli.command("create")
@click.option("--username", required=True)
@click.option("--full-name", required=True)
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.ADMIN.value, show_default=True)
@click.option("--office-code", required=True, help="Office code; created when --office-name is given.")
@click.option("--office-name", help="Create the office with this name if it does not exist.")
@click.password_option(help="Prompted (hidden) when not given.")
def create_user(username, full_name, role, office_code, office_name, password):
    """Create an account, e.g. the first administrator. No account exists by default."""
    office = db.session.scalar(select(Office).where(Office.code == office_code.strip().upper()))
    if office is None and not office_name:
        raise click.ClickException(f"office {office_code} does not exist: add --office-name to create it")
    try:
        if office is None:  # the office and the account are saved together, or neither
            user = services.create_user_with_office(office_code=office_code, office_name=office_name,
                                                    username=username, full_name=full_name, role=role,
                                                    password=password, acting_user=None)
        else:
            user = services.create_user(username=username, full_name=full_name, role=role,
                                        office_id=office.id, password=password, acting_user=None)
    except services.ValidationFailed as failed:
        messages = [f"{name}: {m}" for name, ms in failed.errors.items() for m in ms]
        raise click.ClickException("account not created:\n" + "\n".join(messages)) from None
    click.echo(f"created {user.role} account {user.username} (id {user.id}) in office {user.office.code}")
