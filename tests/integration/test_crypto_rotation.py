"""Key rotation without downtime: `flask crypto rotate` while the application keeps writing."""

from __future__ import annotations

import math
import secrets
import threading
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from app import crypto
from app.admin import services as admin_services
from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.audit.services import record
from app.audit.verify import verify_audit_trail
from app.auth.models import User
from app.extensions import db


@pytest.fixture
def quick_settle(monkeypatch):
    """Shrink the wait for other processes' keyrings to refresh (one process here)."""
    monkeypatch.setattr(crypto, "KEYRING_REFRESH_SECONDS", 0.2)
    monkeypatch.setattr(admin_services, "IN_FLIGHT_WRITE_SECONDS", 0.3)


def test_rotation_while_writes_continue(app, make_user, quick_settle, monkeypatch):
    """A writer keeps changing encrypted values during `flask crypto rotate`: no error, nothing
    left on old keys, every value decrypts to what was last written, the chain verifies."""
    users = [make_user("caseworker") for _ in range(40)]
    expected = {}
    for user in users:
        user.totp_secret = expected[user.id] = secrets.token_hex(10)
    db.session.commit()
    ids = list(expected)
    # Values the writer never touches: only the rotation can move them to the new key, so the
    # count re-encrypted has a floor even when the writer rewrites every busy value first.
    bystanders = {}
    for _ in range(10):
        bystander = make_user("caseworker")
        bystander.totp_secret = secrets.token_hex(10)
        bystanders[bystander.id] = bystander.totp_secret
    db.session.commit()
    old_key = crypto.keyring().current_key_id
    db.session.remove()

    stop, started, errors, writes = threading.Event(), threading.Event(), [], []

    def writer():
        with app.app_context():
            try:
                while not stop.is_set():
                    user_id = ids[len(writes) % len(ids)]
                    value = secrets.token_hex(10)
                    user = db.session.get(User, user_id)
                    user.totp_secret = value
                    record(EventCode.MFA_ENROLLED, actor=user, subject=("user", user_id), details={"n": len(writes)})
                    db.session.commit()
                    expected[user_id] = value
                    writes.append(crypto.keyring().current_key_id)
                    started.set()
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(repr(exc))
            finally:
                db.session.remove()

    # The rotation's first batch waits for one more write of the application (holding no
    # transaction, so SQLite's write lock is free): the writes interleave with the rotation by
    # construction, not by how the threads happen to be scheduled on a loaded machine.
    first_batch_waited = []
    rotate_batch = crypto.rotate_batch

    def rotate_batch_after_a_write(*args, **kwargs):
        if not first_batch_waited:
            db.session.rollback()
            target = len(writes) + 1
            for _ in range(6000):  # at most 60 s
                if len(writes) >= target or errors:
                    break
                time.sleep(0.01)
            first_batch_waited.append(len(writes) >= target)
        return rotate_batch(*args, **kwargs)
    monkeypatch.setattr(crypto, "rotate_batch", rotate_batch_after_a_write)

    thread = threading.Thread(target=writer)
    thread.start()
    assert started.wait(60)  # generous: a loaded CI machine serialises SQLite writers
    writes_before = len(writes)
    result = app.test_cli_runner().invoke(args=["crypto", "rotate", "--batch-size", "7"])
    writes_during = len(writes)
    db.session.remove()  # the CLI ran in this app context; on SQLite its last read holds the lock
    stop.set()
    thread.join(20)
    assert not thread.is_alive() and errors == []
    assert result.exit_code == 0, result.output
    assert "values left on older keys: 0" in result.output
    new_key = crypto.keyring().current_key_id
    assert first_batch_waited == [True] and writes_during > writes_before  # writes went on during the rotation
    assert new_key != old_key and new_key in writes[writes_before:]

    db.session.remove()
    assert crypto.values_on_old_keys() == 0
    assert {u.id: u.totp_secret for u in db.session.scalars(select(User).where(User.id.in_(ids)))} == expected
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.code == EventCode.MFA_ENROLLED)).all()
    assert sorted(e.details["n"] for e in events) == list(range(len(writes)))
    assert crypto.key_usage()["audit_event.details"].keys() >= {old_key, new_key}  # never re-encrypted
    rotated = db.session.scalars(select(AuditEvent).where(AuditEvent.code == EventCode.KEYS_ROTATED)).one()
    assert rotated.details["reencrypted"] >= len(bystanders)
    rows = db.session.scalars(select(User).where(User.id.in_(list(bystanders))))
    assert {u.id: u.totp_secret for u in rows} == bystanders
    assert verify_audit_trail().ok


def test_rotation_resumes(app, make_user, quick_settle):
    """An interrupted rotation is finished by `--resume` without creating another key."""
    for _ in range(5):
        user = make_user("caseworker")
        user.totp_secret = secrets.token_hex(8)
    db.session.commit()
    new_key = admin_services.start_key_rotation()
    assert crypto.values_on_old_keys() == 5
    assert crypto.rotate_batch(2) == 2  # "interrupted" after one batch
    assert crypto.values_on_old_keys() == 3
    result = app.test_cli_runner().invoke(args=["crypto", "rotate", "--resume"])
    assert result.exit_code == 0 and "re-encrypted 3 values" in result.output
    assert crypto.keyring().current_key_id == new_key and crypto.values_on_old_keys() == 0


def test_rotation_waits_for_stale_writers(app, make_user, quick_settle, monkeypatch):
    """A value written with the previous key shortly after the rotation started (another
    process whose keyring had not refreshed yet) is still re-encrypted before the run ends."""
    user_id = make_user("caseworker").id
    admin_services.start_key_rotation()
    stale = crypto.Keyring(crypto.decode_kek(app.config["NANSEN_KEK"]), db.engine)
    stale._keys = crypto.keyring()._load()
    stale._keys.current_data_key_id = min(stale._keys.data_keys)  # still on the old key
    # ...and it stays there: it must not reload its keys before its write. With quick_settle's
    # 0.2 s refresh it did whenever a loaded machine took longer than that to reach the write,
    # and then wrote on the new key, leaving nothing to re-encrypt (total 0: a flaky failure).
    stale._keys.loaded_at = math.inf
    # The run's clock only moves when it pauses, and the straggler writes at its first pause: the
    # write lands inside the settling window by construction, however slowly a loaded machine runs.
    now, pauses = [admin_services._newest_data_key_created_at()], []

    def pause(seconds):
        if not pauses:
            _write_with(app, stale, user_id)
        pauses.append(seconds)
        now[0] += timedelta(seconds=seconds)
    monkeypatch.setattr(admin_services, "utcnow", lambda: now[0])
    monkeypatch.setattr(admin_services, "time", SimpleNamespace(sleep=pause))
    total = admin_services.reencrypt_old_values()
    assert pauses  # the run did wait for stragglers
    assert total == 1 and crypto.values_on_old_keys() == 0


def _write_with(app, ring, user_id):
    with app.app_context():
        context = f"user_account.totp_secret:{user_id}"
        db.session.execute(User.__table__.update().where(User.__table__.c.id == user_id)
                           .values(totp_secret=ring.encrypt(b"STALEWRITER", context)))
        db.session.commit()
        db.session.remove()
