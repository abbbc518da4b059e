"""Appending audit events: the chain head is locked once per transaction (not once per event),
``record_many`` appends exactly what ``record`` would, and a savepoint that rolls back leaves
no gap and no stale head."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import event, select, text

from app.audit import services as audit_services
from app.audit.codes import EventCode
from app.audit.models import AuditChainHead, AuditEvent
from app.audit.services import PendingEvent, record, record_many
from app.audit.verify import verify_audit_trail
from app.extensions import db


def head_seq() -> int:
    seq = db.session.get(AuditChainHead, 1).seq
    db.session.commit()  # the tests start with no transaction open
    return seq


def head_reads(app) -> list[str]:
    """Every statement that reads the chain head, as it runs."""
    seen: list[str] = []

    def watch(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "audit_chain_head" in statement:
            seen.append(statement)
    event.listen(db.engine, "before_cursor_execute", watch)
    return seen


def test_head_locked_once_per_transaction(app):
    """Five events in one transaction read (and lock) the head once; the next transaction
    locks it again."""
    start = head_seq()
    reads = head_reads(app)
    for n in range(5):
        record(EventCode.RECORD_VIEWED, subject=("case", f"c{n}"))
    record_many([PendingEvent(EventCode.RECORD_VIEWED, subject=("case", "many"))])
    db.session.commit()
    assert len(reads) == 1
    record(EventCode.RECORD_VIEWED, subject=("case", "next"))
    db.session.commit()
    assert len(reads) == 2
    if db.engine.dialect.name == "postgresql":
        assert all("FOR UPDATE" in statement for statement in reads)
    assert db.session.get(AuditChainHead, 1).seq == start + 7
    assert verify_audit_trail().ok


def test_record_many_interleaved_with_record(app, make_user):
    """Events appended with record and record_many in one transaction take consecutive sequence
    numbers in call order, their details decrypt, and the chain verifies."""
    user = make_user("caseworker")
    start = head_seq()
    record(EventCode.CASE_UPDATED, actor=user, subject=("case", "a"), details={"n": 1})
    seqs = record_many([PendingEvent(EventCode.CASE_UPDATED, actor=user, subject=("case", "b"), details={"n": 2}),
                        PendingEvent(EventCode.RECORD_VIEWED, subject=("case", "c")),
                        PendingEvent(EventCode.ACCESS_DENIED, actor=user, subject=("case", "d"), outcome="denied",
                                     details={"reason": "other office"})])
    record(EventCode.CASE_UPDATED, actor=user, subject=("case", "e"), details={"n": 5})
    db.session.commit()
    assert seqs == [start + 2, start + 3, start + 4]
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.id > start).order_by(AuditEvent.id)).all()
    assert [(e.id - start, e.subject_id, e.actor_id, e.actor_role, e.outcome) for e in events] == [
        (1, "a", user.id, "caseworker", "success"), (2, "b", user.id, "caseworker", "success"),
        (3, "c", None, None, "success"), (4, "d", user.id, "caseworker", "denied"),
        (5, "e", user.id, "caseworker", "success")]
    assert [e.details for e in events] == [{"n": 1}, {"n": 2}, None, {"reason": "other office"}, {"n": 5}]
    assert all(bytes(b.prev_hash) == bytes(a.hash) for a, b in zip(events, events[1:], strict=False))
    head = db.session.get(AuditChainHead, 1)
    assert head.seq == start + 5 and bytes(head.hash) == bytes(events[-1].hash)
    assert verify_audit_trail().ok


def test_record_many_refuses_an_unknown_outcome(app):
    """A bad outcome is refused before anything is appended."""
    start = head_seq()
    try:
        record_many([PendingEvent(EventCode.RECORD_VIEWED), PendingEvent(EventCode.RECORD_VIEWED, outcome="maybe")])
    except ValueError as exc:
        assert "outcome" in str(exc)
    else:
        raise AssertionError("an unknown outcome was accepted")
    db.session.rollback()
    assert db.session.get(AuditChainHead, 1).seq == start


def test_savepoint_rolled_back_leaves_no_gap(app):
    """An event recorded in a savepoint that rolls back is gone, and the next event takes its
    sequence number (the head is read again, never the rolled-back one)."""
    start = head_seq()
    record(EventCode.RECORD_VIEWED, subject=("case", "kept-1"))
    savepoint = db.session.begin_nested()
    record(EventCode.RECORD_VIEWED, subject=("case", "dropped"))
    record_many([PendingEvent(EventCode.RECORD_VIEWED, subject=("case", "dropped-too"))])
    savepoint.rollback()
    record(EventCode.RECORD_VIEWED, subject=("case", "kept-2"))
    db.session.commit()
    rows = db.session.execute(select(AuditEvent.id, AuditEvent.subject_id).where(AuditEvent.id > start)
                              .order_by(AuditEvent.id)).all()
    assert [tuple(r) for r in rows] == [(start + 1, "kept-1"), (start + 2, "kept-2")]
    assert verify_audit_trail().ok


def test_lock_first_taken_in_a_savepoint_is_taken_again_after_it(app):
    """When the first event of a transaction is in a savepoint that rolls back, the next event
    locks the head again (PostgreSQL releases that lock with the savepoint)."""
    start = head_seq()
    reads = head_reads(app)
    with db.session.begin_nested() as savepoint:
        record(EventCode.RECORD_VIEWED, subject=("case", "dropped"))
        savepoint.rollback()
    record(EventCode.RECORD_VIEWED, subject=("case", "kept"))
    db.session.commit()
    assert len(reads) == 2
    assert db.session.scalars(select(AuditEvent.subject_id).where(AuditEvent.id > start)).all() == ["kept"]
    assert verify_audit_trail().ok


def test_savepoint_released_keeps_its_events_and_the_chain_goes_on(app):
    """The head read in the transaction, events appended in a savepoint that is released, then
    more in the transaction: consecutive sequence numbers, one unbroken chain."""
    start = head_seq()
    record(EventCode.RECORD_VIEWED, subject=("case", "before"))
    with db.session.begin_nested():
        record(EventCode.RECORD_VIEWED, subject=("case", "inside"))
        record_many([PendingEvent(EventCode.RECORD_VIEWED, subject=("case", "inside-too"))])
    record(EventCode.RECORD_VIEWED, subject=("case", "after"))
    db.session.commit()
    rows = db.session.execute(select(AuditEvent.id, AuditEvent.subject_id).where(AuditEvent.id > start)
                              .order_by(AuditEvent.id)).all()
    assert [tuple(r) for r in rows] == [(start + 1, "before"), (start + 2, "inside"), (start + 3, "inside-too"),
                                        (start + 4, "after")]
    assert db.session.get(AuditChainHead, 1).seq == start + 4
    assert verify_audit_trail().ok


def test_the_head_row_moves_with_every_append(app):
    """Each append writes the head row in the same transaction: seen from the session before
    any commit, the head names the last event appended."""
    start = head_seq()
    record(EventCode.RECORD_VIEWED, subject=("case", "one"))
    record_many([PendingEvent(EventCode.RECORD_VIEWED, subject=("case", "two")),
                 PendingEvent(EventCode.RECORD_VIEWED, subject=("case", "three"))])
    seq, digest = db.session.execute(select(AuditChainHead.seq, AuditChainHead.hash)).one()
    last = db.session.scalar(select(AuditEvent.hash).where(AuditEvent.id == start + 3))
    assert seq == start + 3 and bytes(digest) == bytes(last)
    db.session.rollback()
    assert head_seq() == start


def stored_as_text(start: int) -> list[tuple]:
    """The events after ``start`` as the database holds them (the timestamp as its stored text),
    without ``seq`` and the hashes: what two equal events appended at different places share."""
    return [tuple(row) for row in db.session.execute(text(
        "SELECT CAST(occurred_at AS TEXT), actor_id, actor_role, code, subject_type, subject_id, outcome, "
        "request_id, client_address, details IS NULL FROM audit_event WHERE seq > :start ORDER BY seq"),
        {"start": start})]


def test_record_many_in_bulk_stores_what_record_stores(app, make_user, monkeypatch):
    """From BULK_INSERT_FROM events, record_many writes its rows in one bulk write (COPY on
    PostgreSQL): the same events appended one by one with ``record`` and then in bulk, at the same
    times, are stored with the same bytes (a timestamp without microseconds included: sqlite3
    would render it differently from SQLAlchemy), their details decrypt, and the chain verifies."""
    user = make_user("caseworker")
    count = audit_services.BULK_INSERT_FROM + 5
    pending = [PendingEvent(EventCode.CASE_UPDATED, actor=user, subject=("case", f"c{n}"), details={"n": n})
               if n % 3 == 0 else PendingEvent(EventCode.RECORD_VIEWED) if n % 3 == 1 else
               PendingEvent(EventCode.ACCESS_DENIED, actor=user, subject=("case", f"c{n}"), outcome="denied",
                            details={"reason": "é" * n}) for n in range(count)]
    stamps = [datetime(2024, 5, 6, 7, 8, 9, n % 2 * 123_456, tzinfo=UTC) for n in range(count)]
    clock = iter(stamps + stamps)
    monkeypatch.setattr(audit_services, "utcnow", lambda: next(clock))
    bulk_writes = []
    original = audit_services.insert_table_rows

    def spy(connection, table, rows):
        bulk_writes.append((table.name, len(rows)))
        original(connection, table, rows)

    monkeypatch.setattr(audit_services, "insert_table_rows", spy)
    start = head_seq()
    for one in pending:
        record(one.code, actor=one.actor, subject=one.subject, outcome=one.outcome, details=one.details)
    assert bulk_writes == []
    assert record_many(pending) == list(range(start + count + 1, start + 2 * count + 1))
    assert bulk_writes == [("audit_event", count)]
    db.session.commit()

    stored = stored_as_text(start)
    assert stored[:count] == stored[count:]
    assert len(stored) == 2 * count and len(set(stored)) > 2
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.id > start).order_by(AuditEvent.id)).all()
    assert [e.occurred_at for e in events[count:]] == stamps
    assert [e.details for e in events[count:]] == [e.details for e in events[:count]] == [
        one.details for one in pending]
    assert [len(e._details_ciphertext or b"") for e in events[count:]] == [
        len(e._details_ciphertext or b"") for e in events[:count]]
    assert all(bytes(b.prev_hash) == bytes(a.hash) for a, b in zip(events, events[1:], strict=False))
    head = db.session.get(AuditChainHead, 1)
    assert head.seq == start + 2 * count and bytes(head.hash) == bytes(events[-1].hash)
    assert verify_audit_trail().ok
