"""Key administration services (rotation), audited like any other settings change."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, select

from app.audit.codes import EventCode
from app.audit.services import record, record_and_commit
from app import crypto
from app.db_types import utcnow
from app.extensions import db

# How long a request that encrypted a value just before its process switched to the new key may
# still take to commit it. Added to crypto.KEYRING_REFRESH_SECONDS, the longest a process keeps
# writing with the previous key after a rotation starts.
IN_FLIGHT_WRITE_SECONDS = 2.0


def initialise_keys(*, acting_user=None) -> bool:
    """Create the first data key and the blind-index root key if the database has none; the
    creation is audited. Returns True when keys were created."""
    if not crypto.keyring().initialise():
        return False
    record_and_commit(EventCode.KEY_CREATED, actor=acting_user,
                      subject=("crypto_key", crypto.keyring().current_key_id), details={"initial": True})
    return True


def start_key_rotation(*, acting_user=None) -> int:
    """Create a new data key; every new write uses it from now on (other processes within
    crypto.KEYRING_REFRESH_SECONDS). Returns the new key id."""
    ring = crypto.keyring()
    # In this transaction: the key and its KEY_CREATED event commit together, and no second
    # connection waits for the write lock this session may already hold (SQLite).
    key_id = ring.add_data_key(db.session)
    record(EventCode.KEY_CREATED, actor=acting_user, subject=("crypto_key", key_id))
    db.session.commit()
    ring.refresh()
    return key_id


def reencrypt_old_values(*, batch_size: int = 500, on_batch: Callable[[int], None] | None = None,
                         acting_user=None) -> int:
    """Re-encrypt every value still on an older key, batch by batch (each batch commits), until
    none is left. Resumable: run it again after an interruption. Returns the total re-encrypted
    and audits the run.

    Other processes keep encrypting with the previous key until their keyring refreshes
    (crypto.KEYRING_REFRESH_SECONDS) and their open requests commit, so "nothing left" is only
    believed once that window after the newest key's creation has passed; until then finished
    passes are repeated every half second to pick up such stragglers."""
    total = 0
    settled_at = _newest_data_key_created_at() + timedelta(
        seconds=crypto.KEYRING_REFRESH_SECONDS + IN_FLIGHT_WRITE_SECONDS)
    while True:
        done = crypto.rotate_batch(batch_size)
        total += done
        if on_batch and done:
            on_batch(done)
        if done == 0 and crypto.values_on_old_keys() == 0:
            wait = (settled_at - utcnow()).total_seconds()
            if wait <= 0:
                break
            db.session.rollback()  # hold no lock while waiting
            time.sleep(min(wait, 0.5))
    record_and_commit(EventCode.KEYS_ROTATED, actor=acting_user,
                      subject=("crypto_key", crypto.keyring().current_key_id), details={"reencrypted": total})
    return total


def _newest_data_key_created_at():
    created = db.session.scalar(select(func.max(crypto.CryptoKey.created_at))
                                .where(crypto.CryptoKey.purpose == crypto.PURPOSE_DATA))
    db.session.rollback()
    return created or utcnow()
