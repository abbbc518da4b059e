"""`flask intake import FILE.jsonl`: migrate claims from a legacy system."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.auth.models import User
from app.auth.permissions import Permission
from app.extensions import db

intake_cli = AppGroup("intake", help="Registration: bulk import.")


@intake_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--as", "username", required=True, help="Registration officer the claims are registered by "
                                                     "(their office receives the cases).")
@click.option("--dry-run", is_flag=True, help="Validate and check duplicates; write nothing.")
@click.option("--on-duplicate", type=click.Choice(("skip", "new")), default="skip", show_default=True,
              help="skip: report lines whose people may already be registered; new: register them as new.")
@click.option("--batch-size", type=click.IntRange(1, 5000), default=None,
              help="Lines per transaction (default 500): smaller batches hold the write lock for less time.")
def import_command(path: str, username: str, dry_run: bool, on_duplicate: str, batch_size: int | None):
    """Import one claim per line (format: docs/import-format.md). Valid lines are registered;
    invalid ones are listed with their line number and reason. Exit status 0 when every line was
    imported (or valid, with --dry-run), 2 when some were rejected."""
    from app.intake.importer import import_claims

    user = db.session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None or not user.active:
        raise click.ClickException(f"no active account named {username}")
    if not user.can(Permission.CASE_REGISTER):
        raise click.ClickException(f"{username} may not register claims (role {user.role})")
    with click.open_file(path, encoding="utf-8") as handle:
        lines = handle.readlines()
    with click.progressbar(length=len(lines), label="importing" if not dry_run else "validating",
                           file=sys.stderr) as bar:
        last = {"n": 0}

        def advance(number: int) -> None:
            bar.update(number - last["n"])
            last["n"] = number

        report = import_claims(lines, acting_user=user, dry_run=dry_run, on_duplicate=on_duplicate,
                               on_line=advance, batch_size=batch_size)
    for problem in report.problems:
        click.echo(f"line {problem.line}: {problem.reason}")
    verb = "would import" if dry_run else "imported"
    count = report.valid if dry_run else report.imported
    click.echo(f"{report.read} lines read, {count} {verb}, {report.rejected} rejected "
               f"({report.skipped_duplicates} possible duplicates)")
    if report.rejected:
        sys.exit(2)
