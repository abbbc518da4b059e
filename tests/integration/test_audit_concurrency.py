"""Concurrent writers get one gap-free, fork-free chain (row lock on the chain head on
PostgreSQL, BEGIN IMMEDIATE on SQLite), and a failure after the business write leaves neither
the change nor its event."""

from __future__ import annotations

import os
import threading

import pytest
from sqlalchemy import func, select

from app.audit.codes import EventCode
from app.audit.models import AuditChainHead, AuditEvent
from app.audit.services import record
from app.audit.verify import verify_audit_trail
from app.auth import services as auth_services
from app.auth.models import User
from app.extensions import db
from tests.conftest import STRONG_PASSWORD

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")


def hammer(app, writers: int, events_each: int) -> list[str]:
    """Start ``writers`` threads, each with its own app context and session, released together,
    each recording ``events_each`` events in transactions of one or two events."""
    barrier, errors = threading.Barrier(writers), []

    def write(number: int) -> None:
        with app.app_context():
            try:
                barrier.wait(30)
                for i in range(events_each):
                    record(EventCode.CASE_UPDATED, subject=("case", f"w{number}"), details={"writer": number, "i": i})
                    if i % 3 == 0:  # some transactions carry two events
                        record(EventCode.RECORD_VIEWED, subject=("case", f"w{number}"))
                    db.session.commit()
            except Exception as exc:  # noqa: BLE001 - reported by the caller's assertion
                errors.append(repr(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return errors


def assert_one_clean_chain(start_seq: int, expected_new: int) -> None:
    rows = db.session.execute(select(AuditEvent.id, AuditEvent.prev_hash, AuditEvent.hash)
                              .order_by(AuditEvent.id)).all()
    new = [r for r in rows if r.id > start_seq]
    assert [r.id for r in new] == list(range(start_seq + 1, start_seq + expected_new + 1))  # gap-free
    prevs = [bytes(r.prev_hash) for r in rows]
    assert len(set(prevs)) == len(prevs)  # fork-free: no two events share a predecessor
    assert all(bytes(b.prev_hash) == bytes(a.hash) for a, b in zip(rows, rows[1:], strict=False))
    head = db.session.get(AuditChainHead, 1)
    assert head.seq == rows[-1].id and bytes(head.hash) == bytes(rows[-1].hash)
    result = verify_audit_trail()
    assert result.ok, result.summary()


@pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL (TEST_DATABASE_URL)")
def test_fifty_concurrent_writers_on_postgresql(app_factory):
    """50 threads writing at once on PostgreSQL produce one gap-free, fork-free chain."""
    app = app_factory(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 55, "max_overflow": 10, "pool_timeout": 60})
    with app.app_context():
        start = db.session.get(AuditChainHead, 1).seq
        db.session.remove()
    errors = hammer(app, writers=50, events_each=6)
    assert errors == []
    with app.app_context():
        assert_one_clean_chain(start, 50 * 8)


def test_concurrent_writers_on_this_database(app):
    """Eight threads writing at once (SQLite: serialised by BEGIN IMMEDIATE) give one clean chain."""
    start = db.session.get(AuditChainHead, 1).seq
    db.session.remove()
    errors = hammer(app, writers=8, events_each=6)
    assert errors == []
    assert_one_clean_chain(start, 8 * 8)


def test_failure_after_record_leaves_nothing(app, office, monkeypatch):
    """create_user fails right after recording its event: neither the account nor the event is
    stored, seen from another connection and after the rollback, and the chain still verifies."""
    office_id = office.id
    head_before = db.session.get(AuditChainHead, 1).seq
    db.session.commit()
    real_record = auth_services.record

    def record_then_fail(*args, **kwargs):
        real_record(*args, **kwargs)
        db.session.flush()  # the user row and the event row are written to the database
        raise RuntimeError("injected failure before commit")

    monkeypatch.setattr(auth_services, "record", record_then_fail)
    with pytest.raises(RuntimeError, match="injected"):
        auth_services.create_user(username="ghost.user", full_name="Ghost", role="caseworker",
                                  office_id=office_id, password=STRONG_PASSWORD, acting_user=None)
    with db.engine.connect().execution_options(read_only=True) as other:  # reads beside the writer
        assert other.scalar(select(func.count()).select_from(User).where(User.username == "ghost.user")) == 0
        assert other.scalar(select(AuditChainHead.seq)) == head_before
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(User).where(User.username == "ghost.user")) == 0
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.code == EventCode.USER_CREATED)) == 0
    assert db.session.get(AuditChainHead, 1).seq == head_before
    assert verify_audit_trail().ok


def test_failure_in_a_request_leaves_nothing(signed_in, monkeypatch):
    """The same injected failure during the admin page's account creation: an error page, no
    account, no event, the chain intact."""
    browser, admin = signed_in("admin")
    real_record = auth_services.record

    def record_then_fail(code, **kwargs):
        real_record(code, **kwargs)
        if code == EventCode.USER_CREATED:
            raise RuntimeError("injected failure before commit")

    monkeypatch.setattr(auth_services, "record", record_then_fail)
    head_before = db.session.get(AuditChainHead, 1).seq
    db.session.commit()
    response = browser.post("/admin/users/new", {"username": "ghost.two", "full_name": "Ghost Two",
                                                 "role": "caseworker", "office_id": str(admin.office_id),
                                                 "password": STRONG_PASSWORD})
    assert response.status_code == 500
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(User).where(User.username == "ghost.two")) == 0
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.code == EventCode.USER_CREATED)) == 0
    assert verify_audit_trail().ok and db.session.get(AuditChainHead, 1).seq >= head_before

