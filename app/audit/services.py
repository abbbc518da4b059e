"""Writing audit events, signed checkpoints, and reading the trail for the viewer. Imports no
domain package: subjects are ``(subject_type, subject_id)``.

``record`` adds an event to the caller's transaction and never commits: the service that changes
the domain records its event and commits once, so the change and its event are stored together
or not at all.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import bindparam, insert, select, update

from app.audit import checkpoints
from app.audit.chain import hash_fields
from app.audit.codes import EventCode
from app.audit.models import GENESIS_HASH, AuditChainHead, AuditEvent
from app.crypto import CryptoError, EncryptedJSON
from app.crypto import keyring as _keyring
from app.database import insert_table_rows
from app.db_types import utcnow
from app.extensions import db
from app.web import current_client_address, current_request_id

OUTCOMES = frozenset({"success", "failure", "denied"})


_HEAD_KEY = "nansen.audit_chain_head"


# Built once on the tables: a statement object carries its cache key, so each use skips building
# and keying it; Core on the session's connection, so no ORM load, flush or unit of work.
_HEAD = AuditChainHead.__table__
_HEAD_FOR_UPDATE = select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1).with_for_update()
_HEAD_MOVE = update(_HEAD).where(_HEAD.c.id == 1).values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
_INSERT_EVENT = insert(AuditEvent.__table__)

# From this many events in one append, the rows go to the driver in bulk (``database.insert_rows``:
# COPY on PostgreSQL, one executemany on SQLite) instead of one Core INSERT: an import batch
# appends thousands, and per row SQLAlchemy's parameter handling and psycopg's pipelined INSERTs
# cost many times the database's own work. A registration's handful stay a plain INSERT, which
# passes the engine's statement hooks (COPY does not) and needs no conversion step.
BULK_INSERT_FROM = 20


@dataclass
class _Head:
    """The chain head as this session last read and moved it, the (sub)transaction that did, and
    that transaction's connection (appends run their Core statements on it)."""

    seq: int
    hash: bytes
    transaction: Any
    connection: Any


def _lock_head() -> _Head:
    """The chain head, locked until this transaction ends (FOR UPDATE; SQLite: BEGIN IMMEDIATE
    already holds the database) and read from the database, never from a cache."""
    session = db.session()  # the scoped session's own Session: it knows its (nested) transactions
    connection = session.connection()
    seq, digest = connection.execute(_HEAD_FOR_UPDATE).one()
    # Remember in which transaction (or savepoint) it was read: until that ends, this session is
    # the only writer of the head, so the in-memory copy is the truth.
    head = _Head(seq, bytes(digest), session.get_nested_transaction() or session.get_transaction(), connection)
    session.info[_HEAD_KEY] = head
    return head


def _locked_head() -> _Head:
    """The head locked by this transaction: read and locked once per transaction, not once per
    event (a registration appends three or more events; a bulk import thousands).

    Valid only in the very (sub)transaction that read it, while it is active: every append
    writes the head row at once, so in a savepoint begun since, or after the savepoint that read
    it has ended (released, or rolled back with its appends), it is read again from the
    database, which then holds exactly what was kept. (PostgreSQL also releases a row lock
    taken in a savepoint that rolls back: reading it again takes it again.)"""
    session = db.session()
    head = session.info.get(_HEAD_KEY)
    if head is not None and head.transaction.is_active and head.transaction is (
            session.get_nested_transaction() or session.get_transaction()):
        return head
    return _lock_head()


def _event_context() -> tuple[str | None, str | None]:
    return current_request_id(), current_client_address()


def record(code: EventCode, *, actor=None, subject: tuple[str, Any] | None = None,
           outcome: str = "success", details: dict | None = None) -> int:
    """Append one event to the chain inside the current transaction (no commit); returns its
    sequence number.

    ``actor`` is the acting user (anything with ``id`` and ``role``) or None for the system;
    ``subject`` is ``(type, id)``; ``details`` (changed fields, old and new values, reasons) is
    encrypted. The chain head row is locked (SELECT ... FOR UPDATE on PostgreSQL; SQLite
    transactions are BEGIN IMMEDIATE already) by the first event of a transaction and stays
    locked until it ends, so concurrent writers get one gap-free sequence.
    Request id and client address are taken from the request being served, if any.

    The event row is inserted at once, in the caller's transaction (one Core INSERT, no ORM
    object to flush): it stands or falls with the caller's commit like any other write.
    """
    return _append((PendingEvent(code, actor, subject, outcome, details),))[0]


@dataclass(frozen=True)
class PendingEvent:
    """One event for ``record_many``: the same arguments as ``record``."""

    code: EventCode
    actor: Any = None
    subject: tuple[str, Any] | None = None
    outcome: str = "success"
    details: dict | None = None


def record_many(events: list[PendingEvent]) -> list[int]:
    """Append many events in order, inside the current transaction (no commit): for bulk work
    (an import batch). Same chain, same encryption and same stored rows as calling ``record``
    once per event, in one lock of the head, the data key looked up once, and one multi-row
    INSERT (from BULK_INSERT_FROM events one bulk write: COPY on PostgreSQL). Returns the
    sequence numbers given."""
    if not events:
        return []
    return _append(events)


def _append(events) -> list[int]:
    """The one way events join the chain (``record`` and ``record_many``): each row hashed over
    the previous one's hash and its stored bytes (details ciphertext included), inserted with
    Core in the caller's transaction, and the head row moved with them (one UPDATE per call, not
    per event). Every outcome is checked before anything is appended."""
    for pending in events:
        if pending.outcome not in OUTCOMES:
            raise ValueError(f"unknown audit outcome {pending.outcome!r}")
    head = _locked_head()
    request_id, client_address = _event_context()
    encrypt = _keyring().encryptor() if any(pending.details for pending in events) else None
    encode = EncryptedJSON.encode  # the encoding AuditEvent.details uses
    seq, previous = head.seq, bytes(head.hash)
    rows = []
    for pending in events:
        seq += 1
        code = int(EventCode(pending.code))
        subject = pending.subject
        subject_type = subject[0] if subject else None
        subject_id = str(subject[1]) if subject and subject[1] is not None else None
        actor_id, actor_role = getattr(pending.actor, "id", None), getattr(pending.actor, "role", None)
        occurred_at = utcnow()
        details = (encrypt(encode(pending.details), f"audit_event.details:{seq}") if pending.details else None)
        digest = hash_fields(previous, (seq, occurred_at, actor_id, actor_role, code, subject_type, subject_id,
                                        pending.outcome, request_id, client_address, details))
        rows.append({"seq": seq, "occurred_at": occurred_at, "actor_id": actor_id, "actor_role": actor_role,
                     "code": code, "subject_type": subject_type, "subject_id": subject_id,
                     "outcome": pending.outcome, "request_id": request_id, "client_address": client_address,
                     "details": details, "prev_hash": previous, "hash": digest})
        previous = digest
    # On the session's connection: Core, so the session does not flush first (nothing pending
    # is needed by an event row: subjects and actors are plain values, not foreign keys).
    if len(rows) >= BULK_INSERT_FROM:
        insert_table_rows(head.connection, AuditEvent.__table__, rows)  # same stored bytes as the INSERT
    else:
        head.connection.execute(_INSERT_EVENT, rows[0] if len(rows) == 1 else rows)
    head.connection.execute(_HEAD_MOVE, {"new_seq": seq, "new_hash": previous})
    head.seq, head.hash = seq, previous
    return [row["seq"] for row in rows]


def record_and_commit(code: EventCode, **kwargs) -> None:
    """For events that are the whole of a service's work (a login, a denial, a read): record in
    a transaction of their own and commit."""
    record(code, **kwargs)
    db.session.commit()


# -- signed checkpoints --------------------------------------------------------------------------

def checkpoint_interval(app=None) -> timedelta | None:
    """AUDIT_CHECKPOINT_INTERVAL as a timedelta (seconds are accepted too); None when disabled."""
    value = (app or current_app).config.get("AUDIT_CHECKPOINT_INTERVAL")
    if not value:
        return None
    return value if isinstance(value, timedelta) else timedelta(seconds=float(value))


def _checkpoint_due(head: _Head, interval: timedelta | None) -> bool:
    last = db.session.execute(
        select(AuditEvent.id, AuditEvent.occurred_at)
        .where(AuditEvent.code == int(EventCode.AUDIT_CHECKPOINT_WRITTEN))
        .order_by(AuditEvent.id.desc()).limit(1)).first()
    if last is None:
        return True
    if head.seq == last.id:  # nothing happened since the last checkpoint but its own event
        return False
    return interval is None or utcnow() - last.occurred_at >= interval


def write_checkpoint(*, acting_user=None, only_if_due: bool = False) -> checkpoints.Checkpoint | None:
    """Sign the current chain head and store it in AUDIT_CHECKPOINT_DIR; audit it; commit.

    Under the chain-head lock, so the checkpoint names a committed state and nobody appends
    meanwhile: sign (seq N, hash of N), write the file, then record AUDIT_CHECKPOINT_WRITTEN as
    event N+1 and commit. Auditing the checkpoint is not circular: the signature covers the
    chain *before* its own announcement, verifying checkpoint N reads only event N, and event
    N+1 is covered by the next checkpoint like any other. If writing the file fails, nothing
    is recorded; if the commit fails after the file was written, the file still names a real,
    committed state. ``only_if_due``: skip unless the last checkpoint is older than
    AUDIT_CHECKPOINT_INTERVAL and something happened since (an idle trail is not checkpointed
    again and again just because each checkpoint adds its own event). Returns the checkpoint,
    or None when the trail is empty or no checkpoint was due. CheckpointError when
    AUDIT_CHECKPOINT_DIR is not set or a conflicting checkpoint exists.
    """
    directory = current_app.config.get("AUDIT_CHECKPOINT_DIR")
    if not directory:
        raise checkpoints.CheckpointError("AUDIT_CHECKPOINT_DIR is not set")
    try:
        head = _lock_head()
        if head.seq == 0 or (only_if_due and not _checkpoint_due(head, checkpoint_interval())):
            db.session.rollback()
            return None
        checkpoint = checkpoints.store(directory, checkpoints.sign(head.seq, bytes(head.hash), utcnow()))
        record(EventCode.AUDIT_CHECKPOINT_WRITTEN, actor=acting_user, subject=("audit_checkpoint", head.seq),
               details={"seq": checkpoint.seq, "head_hash": checkpoint.head_hash.hex(),
                        "key_id": checkpoint.key_id, "file": checkpoint.path.name})
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return checkpoint


@dataclass
class _CheckpointSchedule:
    started: float
    lock: threading.Lock
    next_check: float | None = None


# How often a process looks at most. Its first look is one interval after start-up, so
# short-lived processes (CLI runs, tests) never write a checkpoint by surprise.
CHECKPOINT_CHECK_EVERY = 60.0
_SCHEDULE_KEY = "nansen.audit_checkpoint_schedule"


def start_checkpoint_schedule(app) -> None:
    """Note the start-up time of ``app`` (called when the audit blueprint is registered)."""
    app.extensions[_SCHEDULE_KEY] = _CheckpointSchedule(started=time.monotonic(), lock=threading.Lock())


def checkpoint_when_due() -> None:
    """Called after every request (see app/audit/__init__.py); almost always returns at once.

    Why after a request rather than a background thread or cron only: it needs no extra moving
    part to deploy, a thread would not survive gunicorn's forking, and traffic is exactly when
    the trail grows. Each process looks at most once a minute (a monotonic clock, no I/O in
    between); the decision itself is taken in the database under the chain-head lock (the last
    AUDIT_CHECKPOINT_WRITTEN event and its time), so many workers still write one checkpoint per
    interval. An idle system needs none: nothing new to cover. Operators may add
    `flask audit checkpoint --if-due` to cron as well (docs/operations.md). Never raises: a
    failing checkpoint is logged and must not turn a served page into an error.
    """
    app = current_app._get_current_object()
    interval = checkpoint_interval(app)
    schedule = app.extensions.get(_SCHEDULE_KEY)
    if interval is None or schedule is None or not app.config.get("AUDIT_CHECKPOINT_DIR"):
        return
    now = time.monotonic()
    if schedule.next_check is None:
        schedule.next_check = schedule.started + interval.total_seconds()
    if now < schedule.next_check or not schedule.lock.acquire(blocking=False):
        return
    try:
        schedule.next_check = now + min(CHECKPOINT_CHECK_EVERY, interval.total_seconds())
        # Like the session store: the request's services have committed what they meant to;
        # whatever is left open is ended so the checkpoint runs in a short transaction of its own.
        db.session.rollback()
        write_checkpoint(only_if_due=True)
    except Exception as exc:  # noqa: BLE001 - logged, and retried at the next check
        db.session.rollback()
        app.logger.error("audit checkpoint failed: %s", type(exc).__name__)
    finally:
        schedule.lock.release()


# -- reading the trail (the viewer) ---------------------------------------------------------------

PAGE_SIZE = 50


class InvalidFilter(Exception):
    """Filter input refused; ``errors`` maps form field names to messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("invalid audit filter: " + ", ".join(sorted(errors)))
        self.errors = errors


@dataclass(frozen=True)
class AuditFilters:
    actor: str | None = None  # username
    subject_type: str | None = None
    subject_id: str | None = None
    code: int | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def described(self) -> dict:
        """The filters in use, for the AUDIT_VIEWED event."""
        return {name: (value.isoformat() if isinstance(value, datetime) else value)
                for name, value in self.__dict__.items() if value not in (None, "")}


@dataclass(frozen=True)
class EventRow:
    """One event as the viewer shows it: plain values, details decrypted only when allowed."""

    seq: int
    occurred_at: datetime
    code: int
    code_name: str
    actor_id: int | None
    actor_username: str | None
    actor_role: str | None
    subject_type: str | None
    subject_id: str | None
    outcome: str
    request_id: str | None
    client_address: str | None
    has_details: bool
    details: Any = None
    details_unreadable: bool = False


@dataclass(frozen=True)
class EventPage:
    events: list[EventRow]
    newer: int | None  # ?after=<newer> shows the page of newer events
    older: int | None  # ?before=<older> shows the page of older events
    details_shown: bool


def _code_name(code: int) -> str:
    try:
        return EventCode(code).name
    except ValueError:
        return f"UNKNOWN_{code}"


def search_events(filters: AuditFilters, *, before: int | None = None, after: int | None = None,
                  with_details: bool = False, page_size: int = PAGE_SIZE) -> EventPage:
    """One page of events matching ``filters``, newest first, by keyset on the sequence number
    (``before``: older than that seq; ``after``: newer than that seq). Details are decrypted
    only when ``with_details`` (the caller checks AUDIT_VIEW_DETAILS); a value that fails to
    decrypt is shown as unreadable, not as an error page. Read-only: the caller audits the view
    with ``record_audit_view``. InvalidFilter when ``filters.actor`` names no account."""
    from app.auth.models import User  # the only account data the trail needs: usernames

    query = select(AuditEvent, User.username).outerjoin(User, User.id == AuditEvent.actor_id)
    if filters.actor:
        actor_id = db.session.scalar(select(User.id).where(User.username == filters.actor.strip().lower()))
        if actor_id is None:
            raise InvalidFilter({"actor": [_("No account has this username.")]})
        query = query.where(AuditEvent.actor_id == actor_id)
    if filters.subject_type:
        query = query.where(AuditEvent.subject_type == filters.subject_type)
    if filters.subject_id:
        query = query.where(AuditEvent.subject_id == filters.subject_id)
    if filters.code is not None:
        query = query.where(AuditEvent.code == filters.code)
    if filters.outcome:
        query = query.where(AuditEvent.outcome == filters.outcome)
    if filters.since:
        query = query.where(AuditEvent.occurred_at >= filters.since)
    if filters.until:
        query = query.where(AuditEvent.occurred_at <= filters.until)
    if after is not None:
        rows = db.session.execute(query.where(AuditEvent.id > after)
                                  .order_by(AuditEvent.id.asc()).limit(page_size + 1)).all()
        more_newer, rows = len(rows) > page_size, list(reversed(rows[:page_size]))
        more_older = True
    else:
        if before is not None:
            query = query.where(AuditEvent.id < before)
        rows = db.session.execute(query.order_by(AuditEvent.id.desc()).limit(page_size + 1)).all()
        more_older, rows = len(rows) > page_size, rows[:page_size]
        more_newer = before is not None
    events = [_event_row(event, username, with_details) for event, username in rows]
    return EventPage(events=events,
                     newer=events[0].seq if events and more_newer else None,
                     older=events[-1].seq if events and more_older else None,
                     details_shown=with_details)


def _event_row(event: AuditEvent, username: str | None, with_details: bool) -> EventRow:
    details, unreadable = None, False
    if with_details and event._details_ciphertext is not None:
        try:
            details = event.details
        except CryptoError:
            unreadable = True
    return EventRow(seq=event.id, occurred_at=event.occurred_at, code=event.code, code_name=_code_name(event.code),
                    actor_id=event.actor_id, actor_username=username, actor_role=event.actor_role,
                    subject_type=event.subject_type, subject_id=event.subject_id, outcome=event.outcome,
                    request_id=event.request_id, client_address=event.client_address,
                    has_details=event._details_ciphertext is not None, details=details,
                    details_unreadable=unreadable)


def record_audit_view(page: EventPage, filters: AuditFilters, *, acting_user) -> None:
    """Audit that ``acting_user`` read a page of the trail (AUDIT_VIEWED): the filters, the
    range of sequence numbers shown, and whether details were decrypted. Commits."""
    shown = [event.seq for event in page.events]
    record_and_commit(EventCode.AUDIT_VIEWED, actor=acting_user, subject=("audit_trail", None),
                      details={"filters": filters.described(), "count": len(shown),
                               "newest_seq": max(shown, default=None), "oldest_seq": min(shown, default=None),
                               "details_shown": page.details_shown})


__all__ = ["record", "record_many", "PendingEvent", "record_and_commit", "write_checkpoint", "search_events",
           "record_audit_view", "AuditFilters", "InvalidFilter", "EventCode", "GENESIS_HASH"]
