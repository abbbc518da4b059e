"""Appending audit events: the chain head is locked once per transaction (not once per event),
``record_many`` appends exactly what ``record`` would, and a savepoint that rolls back leaves
no gap and no stale head."""

from __future__ import annotations

from sqlalchemy import event, select

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
