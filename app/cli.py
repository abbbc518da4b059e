"""Operator commands that are not tied to one domain package: keys and demo data."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from app import crypto

crypto_cli = AppGroup("crypto", help="Encryption keys: status, rotation, a new key-encryption key.")
demo_cli = AppGroup("demo", help="Demo data for development (refused outside development).")


@crypto_cli.command("generate-kek")
def generate_kek():
    """Print a new key-encryption key to store in NANSEN_KEK or a key file (not in the database)."""
    click.echo(crypto.generate_kek())


@crypto_cli.command("init")
def crypto_init():
    """Create the encryption keys of a new database (idempotent; run after `flask db upgrade`)."""
    from app.admin.services import initialise_keys

    click.echo("keys created" if initialise_keys() else "keys already present")


@crypto_cli.command("status")
def crypto_status():
    """How many encrypted values sit on each data key, per column."""
    ring = crypto.keyring()
    click.echo(f"current data key: {ring.current_key_id}")
    for column, counts in sorted(crypto.key_usage().items()):
        shown = ", ".join(f"key {k}: {n}" for k, n in sorted(counts.items())) or "no values"
        click.echo(f"{column}: {shown}")
    click.echo(f"values on older keys (re-encryptable): {crypto.values_on_old_keys()}")


@crypto_cli.command("rotate")
@click.option("--resume", is_flag=True, help="Do not create a new key; finish re-encrypting.")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 100_000))
def crypto_rotate(resume: bool, batch_size: int):
    """Create a new data key (new writes use it at once), then re-encrypt older values in
    batches while the application keeps serving. Safe to interrupt and --resume."""
    from app.admin.services import reencrypt_old_values, start_key_rotation

    if not resume:
        key_id = start_key_rotation()
        click.echo(f"new data key {key_id} is now used for every write")
    remaining = crypto.values_on_old_keys()
    with click.progressbar(length=max(remaining, 1), label="re-encrypting") as bar:
        total = reencrypt_old_values(batch_size=batch_size, on_batch=bar.update)
    click.echo(f"re-encrypted {total} values; values left on older keys: {crypto.values_on_old_keys()}")


def _require_development() -> None:
    if current_app.config["ENVIRONMENT"] not in {"development", "testing"}:
        raise click.ClickException("demo commands run only in development (NANSEN_ENV=development)")


@demo_cli.command("users")
def demo_users():
    """Create demo offices and one demo account per role, and print their sign-in details."""
    from app.demo import create_demo_users

    _require_development()
    for line in create_demo_users():
        click.echo(line)


@demo_cli.command("totp")
@click.argument("username")
def demo_totp(username: str):
    """Print the current second-factor code of a demo account (development only)."""
    from app.demo import current_demo_code

    _require_development()
    click.echo(current_demo_code(username))


@demo_cli.command("generate")
@click.option("--cases", "count", default=2000, show_default=True, type=click.IntRange(1, 5_000_000),
              help="How many cases (each with its people, triage, work and audit events).")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=None,
              help="Same seed, same plaintext data (on the same day); default: a random seed, printed.")
@click.option("--office", "offices", multiple=True, help="Office code (repeatable); default: the demo offices.")
@click.option("--if-empty", is_flag=True, help="Do nothing when the database already holds cases.")
@click.option("--batch-size", default=2000, show_default=True, type=click.IntRange(100, 20_000),
              help="Cases per transaction.")
@click.option("--verify", is_flag=True, help="Verify the audit chain afterwards.")
def demo_generate(count: int, seed: int | None, offices: tuple[str, ...], if_empty: bool, batch_size: int,
                  verify: bool):
    """Generate a realistic caseload over the last two years (docs/demo-data.md): people,
    triage by the active ruleset, assignments, interviews, decisions, appeals, audit events."""
    import secrets

    from app.demo_data import GenerationRefused, case_count, ensure_demo_users, generate_caseload

    _require_development()
    existing = case_count()
    if if_empty and existing:
        click.echo(f"the database already holds {existing} cases: nothing generated (--if-empty)")
        return
    for line in ensure_demo_users():
        click.echo(line)
    seed = secrets.randbelow(2**31) if seed is None else seed
    click.echo(f"seed {seed} (repeat with --seed {seed})")
    try:
        with click.progressbar(length=count, label="generating cases") as bar:
            report = generate_caseload(count, seed=seed, office_codes=list(offices) or None, batch_size=batch_size,
                                       on_batch=bar.update)
    except GenerationRefused as refused:
        raise click.ClickException(str(refused)) from None
    if report.rates_imported:
        click.echo("recognition rates imported from data/recognition-rates-eu-2024.csv")
    if report.staff_created:
        click.echo(f"{report.staff_created} staff accounts generated (they cannot sign in)")
    click.echo(f"{report.cases} cases, {report.persons} people, {report.decisions} decisions, "
               f"{report.events} audit events in {report.seconds:.1f}s ({report.cases_per_second:.0f} cases/s)")
    click.echo("tracks: " + ", ".join(f"{track} {n}" for track, n in sorted(report.tracks.items())))
    click.echo("statuses: " + ", ".join(f"{status} {n}" for status, n in sorted(report.statuses.items())))
    if verify:
        from app.audit.verify import verify_audit_trail

        result = verify_audit_trail()
        click.echo(result.summary())
        if not result.ok:
            raise click.ClickException("the audit chain does not verify")
