"""`flask triage ...`: evaluate facts, replay and activate rulesets, re-triage, import reference data.

``evaluate`` needs only a ruleset: it works on a database that is not migrated (or not there),
with the configured shipped ruleset. The other commands work on the database through the
services. ``--as USERNAME`` names the person responsible in the audit trail (their role must
allow the action); without it the event's actor is the system (an operator at the console).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from app.auth.models import User
from app.extensions import db
from app.triage import rules

triage_cli = AppGroup("triage", help="Triage: evaluate facts, replay and activate rulesets, reference data.")

MAX_EVALUATE_BYTES = 64 * 1024 * 1024


def _acting_user(username: str | None):
    if not username:
        return None
    user = db.session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None or not user.active:
        raise click.ClickException(f"no active account named {username}")
    return user


def _read_ruleset_file(path: str) -> str:
    """A ruleset file's text, or a shipped ruleset's by name (e.g. ``unhcr-dcp``)."""
    candidate = Path(path)
    if not candidate.is_file() and path in rules.shipped_ruleset_names():
        candidate = rules.RULESETS_DIR / f"{path}.yaml"
    try:
        return candidate.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise click.ClickException(f"{path}: cannot read it ({type(error).__name__})") from None


def _evaluation_ruleset(path: str | None) -> rules.Ruleset:
    """--ruleset FILE; else the database's active ruleset; else (no database, not migrated)
    the shipped ruleset named by TRIAGE_RULESET."""
    from app.triage import services

    try:
        if path:
            return services.compile_ruleset_text(_read_ruleset_file(path))[1]
        try:
            active = services.active_ruleset()
            db.session.rollback()
            return active.ruleset
        except SQLAlchemyError:
            db.session.rollback()
            return rules.shipped_ruleset(current_app.config.get("TRIAGE_RULESET") or "eu-apr-2026")
    except rules.RulesetError as error:
        raise click.ClickException(f"ruleset refused: {error}") from None


@triage_cli.command("evaluate")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--ruleset", "ruleset_path", help="A ruleset file (.yaml/.json) or shipped name to try instead.")
def evaluate_command(path: str, ruleset_path: str | None):
    """Evaluate FILE: a JSON array of {"id", "facts", "context"} in the TRIAGE.md vocabulary
    (the shape of triage-examples.json). Prints a JSON array of {"id", "track", "grounds",
    "rules", "ruleset", "deadline"}. Invalid facts or context: the item and field are named on
    stderr and the exit status is 2. Writes nothing."""
    try:
        with click.open_file(path, encoding="utf-8") as handle:
            text = handle.read(MAX_EVALUATE_BYTES + 1)
    except (OSError, UnicodeDecodeError) as error:
        raise click.ClickException(f"{path}: cannot read it ({type(error).__name__})") from None
    if len(text) > MAX_EVALUATE_BYTES:
        raise click.ClickException(f"{path}: larger than {MAX_EVALUATE_BYTES // (1024 * 1024)} MB")
    try:
        items = json.loads(text)
    except json.JSONDecodeError as error:
        raise click.ClickException(f"{path}: not valid JSON (line {error.lineno}, column {error.colno})") from None
    if not isinstance(items, list):
        raise click.ClickException(f"{path}: expected a JSON array of {{\"id\", \"facts\", \"context\"}} objects")
    ruleset = _evaluation_ruleset(ruleset_path)
    try:
        output = rules.evaluate_batch(items, ruleset)
    except rules.FactError as error:
        click.echo(f"error: invalid facts: {error} [field: {error.field}]", err=True)
        sys.exit(2)
    except rules.ContextError as error:
        click.echo(f"error: invalid context: {error} [field: context.{error.field}]", err=True)
        sys.exit(2)
    click.echo(json.dumps(output, indent=2, ensure_ascii=False))


@triage_cli.command("replay")
@click.option("--ruleset", "ruleset_path", required=True, help="The candidate ruleset file (.yaml/.json).")
@click.option("--batch-size", default=2000, show_default=True, type=click.IntRange(1, 100_000))
def replay_command(ruleset_path: str, batch_size: int):
    """Evaluate the open caseload with a candidate ruleset, writing nothing: prints how many
    cases would move from each track to each other, with example case references."""
    from app.triage import services

    try:
        report = services.replay(_read_ruleset_file(ruleset_path), batch_size=batch_size)
    except rules.RulesetError as error:
        raise click.ClickException(f"ruleset refused: {error}") from None
    _print_replay(report)


def _print_replay(report, dry_run: bool = False) -> None:
    """The move matrix and example case references of a replay (references only: no personal data)."""
    if dry_run:
        click.echo(f"re-triage dry run with the active ruleset {report.current} (nothing written)")
    else:
        click.echo(f"candidate {report.candidate} (checksum {report.checksum[:12]}) against active {report.current}")
    click.echo(f"{report.total} open cases: {report.moved} would change track, {report.total - report.moved} would "
               f"not ({report.overridden} kept by an override); {report.failed} unreadable")
    sources, targets = report.sources, report.targets
    width = max([len(code) for code in sources + targets] + [10])
    click.echo("")
    click.echo("from \\ to".ljust(width) + "".join(code.rjust(width + 2) for code in targets))
    for source in sources:
        click.echo(source.ljust(width) + "".join(str(report.matrix.get((source, t), "")).rjust(width + 2)
                                                 for t in targets))
    moves = report.moves()
    if moves:
        click.echo("")
        click.echo("moves (examples):")
        for source, target, count, examples in moves:
            click.echo(f"  {source} -> {target}: {count}  {', '.join(examples)}")


@triage_cli.command("activate")
@click.argument("path")
@click.option("--as", "username", help="The supervisor responsible (audit trail); default: the system.")
def activate_command(path: str, username: str | None):
    """Store the ruleset in PATH (a file, or a shipped name such as unhcr-dcp) and make it the
    active one. Re-triages nothing: run `flask triage retriage` afterwards."""
    from app.triage import services

    try:
        row = services.activate_ruleset(_read_ruleset_file(path), acting_user=_acting_user(username))
    except rules.RulesetError as error:
        raise click.ClickException(f"ruleset refused: {error}") from None
    except services.TriageInvalid as invalid:
        raise click.ClickException(" ".join(m for ms in invalid.errors.values() for m in ms)) from None
    except PermissionError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"active ruleset: {row.ruleset_id}@{row.version} (checksum {row.checksum[:12]}). "
               "Open cases keep their triage until `flask triage retriage`.")


@triage_cli.command("retriage")
@click.option("--as", "username", help="The supervisor responsible (audit trail); default: the system.")
@click.option("--batch-size", type=click.IntRange(1, 10_000),
              help="Cases per transaction (default 500), or per read with --dry-run (default 2000).")
@click.option("--dry-run", is_flag=True,
              help="Write nothing: print how many open cases would move (a replay of the active ruleset).")
def retriage_command(username: str | None, batch_size: int | None, dry_run: bool):
    """Re-triage every open case with the active ruleset, in batches (each committed; safe to
    interrupt and run again). Overrides are kept; unchanged cases get no new record. With
    --dry-run nothing is written: the active ruleset is replayed over the open caseload with
    today's settings and reference data, and the moves are printed like `replay` prints them."""
    from app.triage import services

    user = _acting_user(username)
    if dry_run:
        try:
            report = services.replay(services.active_ruleset().text, acting_user=user, batch_size=batch_size or 2000)
        except PermissionError as error:
            raise click.ClickException(str(error)) from None
        _print_replay(report, dry_run=True)
        return
    batch_size = batch_size or 500
    done = {"cases": 0}

    def progress(count: int) -> None:
        done["cases"] += count
        click.echo(f"  {done['cases']} cases examined", err=True)

    try:
        report = services.retriage_open_cases(acting_user=user, batch_size=batch_size, on_batch=progress)
    except PermissionError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{report.examined} open cases examined, {report.retriaged} re-triaged, {report.moved} changed track")


def _import(kind: str, path: str, username: str | None, replace: bool):
    from app.triage import services

    importer = services.import_recognition_rates if kind == "rates" else services.import_safe_countries
    try:
        with open(path, "rb") as handle:
            data = handle.read(services.MAX_CSV_BYTES + 1)
        report = importer(data, acting_user=_acting_user(username), replace=replace)
    except OSError as error:
        raise click.ClickException(f"{path}: cannot read it ({type(error).__name__})") from None
    except services.ImportRejected as rejected:
        for line, message in rejected.problems:
            click.echo(f"line {line}: {message}", err=True)
        click.echo(f"nothing imported: {len(rejected.problems)} problem(s)", err=True)
        sys.exit(2)
    except PermissionError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{report.rows} rows: {report.created} created, {report.updated} updated, "
               f"{report.unchanged} unchanged, {report.removed} removed")


@triage_cli.command("import-rates")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--as", "username", help="The supervisor responsible (audit trail); default: the system.")
@click.option("--replace", is_flag=True, help="Also remove nationalities absent from the file.")
def import_rates_command(path: str, username: str | None, replace: bool):
    """Import recognition rates from CSV `nationality,rate_pct,source,as_of`; all or nothing."""
    _import("rates", path, username, replace)


@triage_cli.command("import-safe-countries")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--as", "username", help="The supervisor responsible (audit trail); default: the system.")
@click.option("--replace", is_flag=True, help="Also remove countries absent from the file.")
def import_safe_countries_command(path: str, username: str | None, replace: bool):
    """Import safe countries of origin from CSV `country,designation,source,as_of`; all or nothing."""
    _import("safe", path, username, replace)
