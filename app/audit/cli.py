"""`flask audit ...`: verify the trail, write a signed checkpoint, show the checkpoint key."""

from __future__ import annotations

import click
from flask.cli import AppGroup

audit_cli = AppGroup("audit", help="Audit trail: verification and signed checkpoints.")


@audit_cli.command("verify")
@click.option("--public-key", "public_keys_hex", multiple=True, metavar="HEX",
              help="Trust checkpoints signed by this Ed25519 public key (repeatable) instead of "
                   "the key derived from NANSEN_KEK; see `flask audit public-key`.")
@click.option("--checkpoint-dir", default=None, type=click.Path(file_okay=False),
              help="Read checkpoints from here instead of AUDIT_CHECKPOINT_DIR.")
@click.option("--batch-size", default=5000, show_default=True, type=click.IntRange(100, 1_000_000))
def verify(public_keys_hex: tuple[str, ...], checkpoint_dir: str | None, batch_size: int):
    """Check the whole chain and every checkpoint. Exit 0 and one summary line when intact;
    exit 1 naming the first bad sequence number and what happened there otherwise."""
    from app.audit.verify import verify_audit_trail

    public_keys = []
    for value in public_keys_hex:
        try:
            key = bytes.fromhex(value)
        except ValueError:
            raise click.BadParameter("not hexadecimal", param_hint="--public-key") from None
        if len(key) != 32:
            raise click.BadParameter("an Ed25519 public key is 32 bytes (64 hex digits)",
                                     param_hint="--public-key")
        public_keys.append(key)
    result = verify_audit_trail(checkpoint_dir=checkpoint_dir, public_keys=public_keys, batch_size=batch_size)
    click.echo(result.summary())
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    for problem in result.problems[1:20]:
        click.echo(f"  also {problem}", err=True)
    if not result.ok:
        raise SystemExit(1)


@audit_cli.command("checkpoint")
@click.option("--if-due", is_flag=True,
              help="Only when the last checkpoint is older than AUDIT_CHECKPOINT_INTERVAL and "
                   "events were added since (for cron).")
def checkpoint(if_due: bool):
    """Sign the current chain head and write it to AUDIT_CHECKPOINT_DIR (audited)."""
    from app.audit.checkpoints import CheckpointError
    from app.audit.services import write_checkpoint

    try:
        written = write_checkpoint(only_if_due=if_due)
    except CheckpointError as exc:
        raise click.ClickException(str(exc)) from None
    if written is None:
        click.echo("no checkpoint written: " + ("none due" if if_due else "the audit trail is empty"))
    else:
        click.echo(f"checkpoint of seq {written.seq} (head {written.head_hash.hex()[:16]}) "
                   f"written to {written.path}")


@audit_cli.command("public-key")
def public_key():
    """Print the checkpoint public key (hex) and its id, to pin outside this deployment."""
    from app import crypto

    raw = crypto.checkpoint_public_key()
    click.echo(f"{raw.hex()}  key id {crypto.public_key_id(raw)}")
