"""`flask audit verify` and signed checkpoints against real tampering.

Every attack below runs the way someone with database superuser rights would: the append-only
triggers are dropped (SQLite) or bypassed with ``session_replication_role = replica``
(PostgreSQL) on a connection of its own, then the verifier must name the first bad sequence
number and what happened there.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import DBAPIError

from app import crypto
from app.audit.chain import event_hash
from app.audit.checkpoints import file_name
from app.audit.codes import EventCode
from app.audit.models import AuditChainHead, AuditEvent
from app.audit.services import record, record_and_commit, write_checkpoint
from app.audit.verify import verify_audit_trail
from app.db_types import utcnow
from app.extensions import db

EVENTS = AuditEvent.__table__
HEAD = AuditChainHead.__table__
SQLITE_TRIGGERS = {
    "audit_event_no_update": "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event "
                             "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END",
    "audit_event_no_delete": "CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event "
                             "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END",
}


@contextmanager
def superuser():
    """A connection on which the append-only triggers do not fire, committed at the end."""
    db.session.remove()  # SQLite: the test's own session must not hold the write lock
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            yield conn
        else:
            for name in SQLITE_TRIGGERS:
                conn.exec_driver_sql(f"DROP TRIGGER {name}")
            yield conn
            for sql in SQLITE_TRIGGERS.values():
                conn.exec_driver_sql(sql)


def make_events(user, count: int = 10) -> None:
    for i in range(count):
        record_and_commit(EventCode.CASE_UPDATED, actor=user, subject=("case", f"c{i}"),
                          details={"field": "status", "old": i, "new": i + 1})


def rows(conn):
    return conn.execute(select(EVENTS).order_by(EVENTS.c.seq)).mappings().all()


def rehash(row, prev_hash: bytes, seq: int | None = None) -> bytes:
    return event_hash(prev_hash, seq=row["seq"] if seq is None else seq, occurred_at=row["occurred_at"],
                      actor_id=row["actor_id"], actor_role=row["actor_role"], code=row["code"],
                      subject_type=row["subject_type"], subject_id=row["subject_id"], outcome=row["outcome"],
                      request_id=row["request_id"], client_address=row["client_address"],
                      details_ciphertext=row["details"])


def set_head(conn, seq: int, hash_: bytes) -> None:
    conn.execute(update(HEAD).where(HEAD.c.id == 1).values(seq=seq, hash=hash_))


def renumber(conn, old: int, new: int) -> None:
    conn.execute(update(EVENTS).where(EVENTS.c.seq == old).values(seq=new))


def run_verify(app):
    db.session.remove()
    return app.test_cli_runner().invoke(args=["audit", "verify"])


def assert_broken(app, seq: int, kind: str) -> None:
    result = run_verify(app)
    assert result.exit_code == 1, result.output
    first_line = result.stdout.splitlines()[0]
    assert f"first bad seq {seq}: {kind} " in first_line, first_line


@pytest.fixture
def user(make_user):
    """A caseworker, on a trail emptied first: the template database starts with the KEY_CREATED
    event on SQLite but not on PostgreSQL, and the tests count from seq 1."""
    caseworker = make_user("caseworker")
    with superuser() as conn:
        conn.execute(delete(EVENTS))
        set_head(conn, 0, bytes(32))
    return db.session.merge(caseworker)


def test_intact_trail_verifies_with_one_line_summary(app, user):
    """An untouched trail exits 0 with one line naming the number of events and checkpoints."""
    make_events(user, 12)
    result = run_verify(app)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [result.stdout.strip()]
    assert result.stdout.startswith("audit trail intact: 12 events (seq 1-12)")
    assert "0 checkpoint(s) verified" in result.stdout


def test_empty_trail_verifies(app, user):
    """An empty trail (no events, head at 0) is intact."""
    result = verify_audit_trail()
    assert result.ok and result.events == 0 and result.head_seq == 0


def test_triggers_refuse_update_and_delete(app, user):
    """Without superuser tricks the database refuses UPDATE and DELETE on audit_event."""
    make_events(user, 2)
    for statement in (update(EVENTS).where(EVENTS.c.seq == 1).values(outcome="failure"),
                      delete(EVENTS).where(EVENTS.c.seq == 2)):
        with pytest.raises(DBAPIError, match="append-only"):
            db.session.execute(statement)
        db.session.rollback()
    assert db.session.scalar(select(EVENTS.c.outcome).where(EVENTS.c.seq == 1)) == "success"
    assert db.session.scalar(select(db.func.count()).select_from(EVENTS)) == 2


def test_edited_field_is_named(app, user):
    """Changing one stored field (the outcome) of event 5 is reported as edited at seq 5."""
    make_events(user)
    with superuser() as conn:
        conn.execute(update(EVENTS).where(EVENTS.c.seq == 5).values(outcome="denied"))
    assert_broken(app, 5, "edited")


def test_edited_details_ciphertext_is_named(app, user):
    """Flipping one bit of the stored (encrypted) details of event 4: edited at seq 4, found
    without any decryption key."""
    make_events(user)
    with superuser() as conn:
        stored = conn.scalar(select(EVENTS.c.details).where(EVENTS.c.seq == 4))
        conn.execute(update(EVENTS).where(EVENTS.c.seq == 4)
                     .values(details=stored[:-1] + bytes([stored[-1] ^ 1])))
    assert_broken(app, 4, "edited")


def test_edited_and_rehashed_event_is_named(app, user):
    """Event 6 changed and its own hash recomputed: its successor no longer links, edited at 6."""
    make_events(user)
    with superuser() as conn:
        row = dict(rows(conn)[5], outcome="failure")
        conn.execute(update(EVENTS).where(EVENTS.c.seq == 6)
                     .values(outcome="failure", hash=rehash(row, row["prev_hash"])))
    assert_broken(app, 6, "edited")


def test_deleted_event_is_named(app, user):
    """Deleting event 6 leaves a gap: deleted at seq 6."""
    make_events(user)
    with superuser() as conn:
        conn.execute(delete(EVENTS).where(EVENTS.c.seq == 6))
    assert_broken(app, 6, "deleted")


def test_deleted_and_renumbered_event_is_named(app, user):
    """Deleting event 6 and renumbering the later ones to close the gap: deleted at seq 6."""
    make_events(user)
    with superuser() as conn:
        conn.execute(delete(EVENTS).where(EVENTS.c.seq == 6))
        for seq in range(7, 11):
            renumber(conn, seq, seq - 1)
        set_head(conn, 9, rows(conn)[-1]["hash"])
    assert_broken(app, 6, "deleted")


def test_inserted_forged_event_is_named(app, user):
    """A forged event slipped in at seq 4, correctly hashed and linked, later events pushed up
    and the head moved: inserted at seq 4."""
    make_events(user)
    with superuser() as conn:
        for seq in range(10, 3, -1):
            renumber(conn, seq, seq + 1)
        before = rows(conn)[2]
        forged = {**before, "seq": 4, "outcome": "success", "subject_id": "forged", "details": None,
                  "occurred_at": before["occurred_at"] + timedelta(milliseconds=1), "prev_hash": before["hash"]}
        forged["hash"] = rehash(forged, before["hash"])
        conn.execute(insert(EVENTS).values(**forged))
        set_head(conn, 11, rows(conn)[-1]["hash"])
    assert_broken(app, 4, "inserted")


def test_event_appended_behind_the_heads_back_is_named(app, user):
    """A row added after the newest event without going through the chain head: inserted at 11."""
    make_events(user)
    with superuser() as conn:
        last = rows(conn)[-1]
        forged = {**last, "seq": 11, "prev_hash": last["hash"]}
        forged["hash"] = rehash(forged, last["hash"])
        conn.execute(insert(EVENTS).values(**forged))
    assert_broken(app, 11, "inserted")


def test_reordered_events_are_named(app, user):
    """Events 3 and 4 swapped places: reordered at seq 3."""
    make_events(user)
    with superuser() as conn:
        renumber(conn, 3, -3)
        renumber(conn, 4, 3)
        renumber(conn, -3, 4)
    assert_broken(app, 3, "reordered")


def test_truncated_tail_after_checkpoint_is_named(app, user):
    """After a checkpoint of seq 10, the newest events (8 on) are deleted and the head is set
    back so the chain looks whole: the checkpoint proves truncation at seq 8."""
    make_events(user)
    assert write_checkpoint().seq == 10
    with superuser() as conn:
        conn.execute(delete(EVENTS).where(EVENTS.c.seq >= 8))
        set_head(conn, 7, rows(conn)[-1]["hash"])
    assert_broken(app, 8, "truncated")


def test_truncated_tail_without_checkpoint_is_named_by_the_head(app, user):
    """Deleting the two newest events (head untouched): truncated at seq 9."""
    make_events(user)
    with superuser() as conn:
        conn.execute(delete(EVENTS).where(EVENTS.c.seq >= 9))
    assert_broken(app, 9, "truncated")


def test_rewritten_history_is_caught_by_checkpoint(app, user):
    """Event 3 edited and every later hash and the head recomputed: the chain is consistent in
    itself, but the checkpoint of seq 10 no longer matches, and the intact checkpoint of seq 2
    bounds the damage: rewritten from seq 3."""
    make_events(user, 2)
    assert write_checkpoint().seq == 2  # its own event is seq 3
    make_events(user, 7)
    assert write_checkpoint().seq == 10
    with superuser() as conn:
        prev = rows(conn)[1]["hash"]
        for row in rows(conn)[2:]:
            row = dict(row, outcome="failure") if row["seq"] == 3 else dict(row)
            new_hash = rehash(row, prev)
            conn.execute(update(EVENTS).where(EVENTS.c.seq == row["seq"])
                         .values(outcome=row["outcome"], prev_hash=prev, hash=new_hash))
            prev = new_hash
        set_head(conn, rows(conn)[-1]["seq"], prev)
    result = verify_audit_trail()
    assert [(p.seq, p.kind) for p in result.problems] == [(3, "rewritten")]
    assert "event 10 does not match checkpoint-000000000010.json" in result.problems[0].detail
    assert_broken(app, 3, "rewritten")


def test_checkpoint_file_is_signed_and_audited(app, user):
    """A checkpoint is a small JSON file (seq, head hash, time, key id, signature) whose
    writing is event seq+1, and a verified trail counts it."""
    make_events(user, 3)
    head_hash = bytes(db.session.get(AuditChainHead, 1).hash)
    checkpoint = write_checkpoint()
    data = json.loads(checkpoint.path.read_text())
    assert checkpoint.path.name == file_name(3) == "checkpoint-000000000003.json"
    assert data["seq"] == 3 and data["head_hash"] == head_hash.hex()
    assert set(data) == {"version", "seq", "head_hash", "time", "key_id", "signature"}
    announced = db.session.get(AuditEvent, 4)
    assert announced.code == EventCode.AUDIT_CHECKPOINT_WRITTEN and announced.subject_id == "3"
    assert announced.details["head_hash"] == data["head_hash"]
    result = verify_audit_trail()
    assert result.ok and result.checkpoints == 1 and result.events == 4


def test_tampered_checkpoint_file_fails_verification(app, user):
    """A checkpoint whose head hash was edited in the file no longer verifies: bad-checkpoint."""
    make_events(user, 3)
    checkpoint = write_checkpoint()
    data = json.loads(checkpoint.path.read_text())
    data["head_hash"] = "00" * 32
    checkpoint.path.write_text(json.dumps(data))
    result = verify_audit_trail()
    assert [(p.seq, p.kind) for p in result.problems] == [(3, "bad-checkpoint")]
    assert "signature does not verify" in result.problems[0].detail


def test_checkpoint_from_another_kek_is_refused(app_factory, app, user):
    """Under another KEK (a forger's, or after a KEK change) the existing checkpoint is refused
    as signed by an unknown key, unless its public key is trusted explicitly."""
    make_events(user, 3)
    write_checkpoint()
    original_key = crypto.checkpoint_public_key()
    db.session.remove()
    other = app_factory(NANSEN_KEK="AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=")
    with other.app_context():
        assert crypto.checkpoint_public_key() != original_key
        refused = verify_audit_trail()
        trusted = verify_audit_trail(public_keys=[crypto.checkpoint_public_key(), original_key])
    assert [p.kind for p in refused.problems] == ["bad-checkpoint"]
    assert f"signed by unknown key {crypto.public_key_id(original_key)}" in refused.problems[0].detail
    assert trusted.ok and trusted.checkpoints == 1


def test_verify_with_pinned_public_key(app, user):
    """`--public-key` verifies checkpoints against a key printed by `flask audit public-key`;
    a wrong pinned key fails, a malformed one is a usage error."""
    make_events(user, 2)
    write_checkpoint()
    runner = app.test_cli_runner()
    printed = runner.invoke(args=["audit", "public-key"]).stdout.split()
    assert printed[1:3] == ["key", "id"] and printed[3] == crypto.public_key_id(bytes.fromhex(printed[0]))
    ok = runner.invoke(args=["audit", "verify", "--public-key", printed[0]])
    assert ok.exit_code == 0 and "1 checkpoint(s) verified" in ok.stdout
    wrong = runner.invoke(args=["audit", "verify", "--public-key", "11" * 32])
    assert wrong.exit_code == 1 and "bad-checkpoint" in wrong.stdout
    assert runner.invoke(args=["audit", "verify", "--public-key", "zz"]).exit_code == 2


def test_deleted_checkpoint_file_is_warned_about(app, user):
    """A checkpoint recorded in the trail whose file is gone is reported as a warning."""
    make_events(user, 2)
    write_checkpoint().path.unlink()
    result = verify_audit_trail()
    assert result.ok
    assert result.warnings and "seq 2" in result.warnings[0]


def test_checkpoint_cli_and_if_due(app_factory, app, user):
    """`flask audit checkpoint` always writes; `--if-due` only once the interval has passed and
    something other than the last checkpoint's own event was added."""
    runner = app.test_cli_runner()
    assert "the audit trail is empty" in runner.invoke(args=["audit", "checkpoint"]).stdout
    make_events(user, 2)
    first = runner.invoke(args=["audit", "checkpoint", "--if-due"])
    assert "checkpoint of seq 2" in first.stdout  # no checkpoint yet: due
    assert "none due" in runner.invoke(args=["audit", "checkpoint", "--if-due"]).stdout
    make_events(user, 1)
    assert "none due" in runner.invoke(args=["audit", "checkpoint", "--if-due"]).stdout  # < 5 minutes
    assert "checkpoint of seq 4" in runner.invoke(args=["audit", "checkpoint"]).stdout
    app.config["AUDIT_CHECKPOINT_INTERVAL"] = timedelta(0)
    assert "none due" in runner.invoke(args=["audit", "checkpoint", "--if-due"]).stdout  # nothing new
    make_events(user, 1)
    assert "checkpoint of seq 6" in runner.invoke(args=["audit", "checkpoint", "--if-due"]).stdout


def test_checkpoint_written_after_a_request_once_due(app_factory, app, user):
    """With a short interval, a request made after it has passed writes a checkpoint (audited);
    the next request, with nothing new since, writes none."""
    make_events(user, 3)
    db.session.remove()
    client = app_factory(AUDIT_CHECKPOINT_INTERVAL=0.05).test_client()
    time.sleep(0.06)
    assert client.get("/health").status_code == 200
    written = db.session.scalars(select(AuditEvent).where(
        AuditEvent.code == EventCode.AUDIT_CHECKPOINT_WRITTEN)).all()
    assert [e.subject_id for e in written] == ["3"]
    db.session.remove()
    time.sleep(0.06)
    assert client.get("/health").status_code == 200
    assert db.session.scalar(select(db.func.count()).select_from(EVENTS)) == 4
    assert verify_audit_trail().checkpoints == 1


def test_failing_checkpoint_never_breaks_a_page(app_factory, app, user, tmp_path, caplog):
    """If the checkpoint directory is unusable, the page is still served and nothing is
    recorded about a checkpoint that does not exist."""
    make_events(user, 2)
    db.session.remove()
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    client = app_factory(AUDIT_CHECKPOINT_INTERVAL=0.01, AUDIT_CHECKPOINT_DIR=str(blocker / "sub")).test_client()
    time.sleep(0.02)
    assert client.get("/health").status_code == 200
    assert db.session.scalar(select(db.func.count()).select_from(EVENTS)) == 2
    assert "audit checkpoint failed: NotADirectoryError" in caplog.text


def test_failed_file_write_records_nothing(app, user, monkeypatch):
    """write_checkpoint records its event only after the file exists: a failing write leaves
    the trail as it was."""
    make_events(user, 2)
    monkeypatch.setattr("app.audit.checkpoints.os.link", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        write_checkpoint()
    assert db.session.get(AuditChainHead, 1).seq == 2
    assert verify_audit_trail().ok


def test_record_inside_failed_transaction_leaves_chain_valid(app, user):
    """An event recorded in a transaction that is rolled back leaves no gap and no fork."""
    make_events(user, 2)
    record(EventCode.CASE_UPDATED, actor=user, subject=("case", "x"))
    db.session.rollback()
    make_events(user, 1)
    result = verify_audit_trail()
    assert result.ok and result.events == 3 and result.head_seq == 3


def test_verify_streams_in_batches(app, user, monkeypatch):
    """Rows are read in batches (a tiny batch size gives the same verdict and count)."""
    make_events(user, 25)
    result = verify_audit_trail(batch_size=4)
    assert result.ok and result.events == 25
    assert utcnow()  # the clock used for checkpoint times is aware UTC
