"""Verification of the audit trail: the hash chain, the chain head and the signed checkpoints.

``verify_audit_trail()`` reads every event once, in sequence order, from one consistent snapshot
(REPEATABLE READ on PostgreSQL, a read transaction on SQLite), streaming rows in batches through
Core selects: no ORM objects, no decryption (the chain covers the stored ciphertext), so a
million events take seconds. It returns a ``VerificationResult`` naming the first bad sequence
number and what happened there:

* ``edited``     the stored fields of an event no longer give its hash (or an event was changed
                 and re-hashed, so its successor no longer links to it);
* ``deleted``    a sequence number is missing (a gap), or events after a deleted one were
                 renumbered to close the gap;
* ``inserted``   an event that was never appended: it pushed later events up, or sits beyond the
                 chain head;
* ``reordered``  an event sits at another event's sequence number;
* ``truncated``  the newest events are gone: the head, or a checkpoint, names a later sequence
                 number than the table holds;
* ``rewritten``  the chain is consistent in itself but an event's hash differs from a signed
                 checkpoint: history was recomputed by someone who knows the (public) hash
                 recipe. Only checkpoints catch this, so the first bad event lies somewhere
                 after the previous matching checkpoint: that is the sequence number reported;
* ``bad-checkpoint`` a checkpoint file is unreadable or its signature does not verify.

The classification looks one event ahead of the first anomaly and tries nearby sequence numbers
on it, which is how a moved event is told from an edited one. ``check_rows`` is the pure part
(rows in, result out) so unit tests can feed it hand-made chains without a database.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from app import crypto
from app.audit import checkpoints as checkpoint_files
from app.audit.chain import hash_fields
from app.audit.codes import EventCode
from app.audit.models import GENESIS_HASH, AuditChainHead, AuditEvent
from app.extensions import db

EDITED = "edited"
DELETED = "deleted"
INSERTED = "inserted"
REORDERED = "reordered"
TRUNCATED = "truncated"
REWRITTEN = "rewritten"
BAD_CHECKPOINT = "bad-checkpoint"

# How far from its place a moved event is still recognised (each try costs one SHA-256).
MOVE_SEARCH_WINDOW = 1000
DEFAULT_BATCH_SIZE = 5000

# Row layout: the chained fields in hashing order (app/audit/chain.py), then prev_hash, hash.
_SEQ, _CODE, _SUBJECT_ID, _FIELDS_END, _PREV, _HASH = 0, 4, 6, 11, 11, 12
_CHECKPOINT_CODE = int(EventCode.AUDIT_CHECKPOINT_WRITTEN)


@dataclass(frozen=True)
class Problem:
    seq: int
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.kind} ({self.detail})"


@dataclass
class VerificationResult:
    events: int = 0
    head_seq: int = 0
    head_hash: bytes = GENESIS_HASH
    checkpoints: int = 0  # checkpoints whose signature and hash matched
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def summary(self) -> str:
        """One line: what was checked and the verdict."""
        if self.ok:
            return (f"audit trail intact: {self.events} events (seq 1-{self.head_seq}), head "
                    f"{self.head_hash.hex()[:16]}, {self.checkpoints} checkpoint(s) verified "
                    f"in {self.seconds:.1f}s")
        return (f"audit trail BROKEN: first bad seq {self.first_problem.seq}: {self.first_problem.kind} "
                f"({self.first_problem.detail}); {len(self.problems)} problem(s), {self.events} events read")


@dataclass
class _ChainState:
    """What one pass over the rows learned; filled in by ``check_rows``."""

    events: int = 0
    last_seq: int = 0
    last_hash: bytes = GENESIS_HASH
    problem: Problem | None = None
    hashes_at: dict[int, bytes] = field(default_factory=dict)
    checkpoint_events: set[int] = field(default_factory=set)


def _valid_as(row, seq: int) -> bool:
    """Would ``row`` hash correctly if its sequence number were ``seq``?"""
    return hash_fields(row[_PREV], (seq, *row[1:_FIELDS_END])) == bytes(row[_HASH])


def _moved_from(row, position: int) -> int | None:
    for distance in range(1, MOVE_SEARCH_WINDOW + 1):
        for candidate in (position + distance, position - distance):
            if candidate >= 1 and _valid_as(row, candidate):
                return candidate
    return None


def _classify(row, following, position: int) -> Problem:
    """Name the first anomaly, found at ``position`` (row ``row``; ``following`` is the next
    row or None). The rows before it were intact and linked."""
    pushed_down = following is not None and _valid_as(following, position)
    if _valid_as(row, position):
        # Consistent in itself but not linked to its predecessor.
        if pushed_down:
            return Problem(position, INSERTED, "an event not appended by the application, later events renumbered")
        if position == 1:
            return Problem(1, EDITED, "the first event was changed and re-hashed")
        return Problem(position - 1, EDITED, f"event {position - 1} was changed and re-hashed "
                                             f"(event {position} no longer links to it)")
    origin = _moved_from(row, position)
    if origin is None:
        if pushed_down:
            return Problem(position, INSERTED, "a forged event, later events renumbered")
        return Problem(position, EDITED, "stored fields do not match the event's hash")
    if origin == position - 1:
        return Problem(position - 1, INSERTED, f"event {position - 1} was inserted; the original "
                                               f"event {position - 1} now sits at {position}")
    if pushed_down:
        return Problem(position, REORDERED, f"events {position} and {origin} swapped places")
    if origin == position + 1:
        return Problem(position, DELETED, f"event {position} was deleted and later events renumbered")
    return Problem(position, REORDERED, f"event {origin} was moved to {position}")


def check_rows(rows: Iterable, checkpoint_seqs: Iterable[int] = (), head_seq: int | None = None) -> _ChainState:
    """Walk rows in sequence order: recompute each hash from the stored fields, check the
    sequence runs 1, 2, 3... without gaps and each prev_hash is the previous row's hash.
    Records the first anomaly, the stored hash at each of ``checkpoint_seqs``, and the sequence
    numbers that announce a checkpoint (to notice deleted checkpoint files). ``head_seq``, when
    known, tells a row added far beyond the head from a gap in the middle."""
    state = _ChainState()
    wanted = set(checkpoint_seqs)
    expected, prev_hash = 1, GENESIS_HASH
    iterator: Iterator = iter(rows)
    pending = []  # a row read ahead while classifying, to be walked like any other
    while True:
        row = pending.pop() if pending else next(iterator, None)
        if row is None:
            break
        seq, stored_hash = row[_SEQ], bytes(row[_HASH])
        state.events += 1
        state.last_seq, state.last_hash = seq, stored_hash
        if seq in wanted:
            state.hashes_at[seq] = stored_hash
        if row[_CODE] == _CHECKPOINT_CODE and row[_SUBJECT_ID] and row[_SUBJECT_ID].isdigit():
            state.checkpoint_events.add(int(row[_SUBJECT_ID]))
        if state.problem is not None:
            continue
        if seq != expected:
            if head_seq is not None and expected > head_seq:
                state.problem = Problem(seq, INSERTED, f"an event beyond the chain head (seq {head_seq})")
                continue
            missing = f"{expected}" if seq == expected + 1 else f"{expected}-{seq - 1}"
            state.problem = Problem(expected, DELETED, f"sequence number(s) {missing} missing")
            continue
        stored_prev = bytes(row[_PREV])
        if stored_prev != prev_hash or hash_fields(stored_prev, row[:_FIELDS_END]) != stored_hash:
            following = next(iterator, None)
            if following is not None:
                pending.append(following)
            state.problem = _classify(row, following, seq)
            continue
        expected, prev_hash = seq + 1, stored_hash
    return state


def _check_head(state: _ChainState, head_seq: int, head_hash: bytes) -> Problem | None:
    if state.last_seq < head_seq:
        return Problem(state.last_seq + 1, TRUNCATED,
                       f"the chain head records seq {head_seq}; the trail ends at {state.last_seq}")
    if state.last_seq > head_seq:
        return Problem(head_seq + 1, INSERTED, f"events beyond the chain head (seq {head_seq})")
    if state.last_hash != head_hash:
        return Problem(state.last_seq, EDITED, "the newest event does not match the chain head: "
                                               "changed and re-hashed, or the head was altered")
    return None


def _check_checkpoints(state: _ChainState, found, public_keys) -> tuple[int, list[Problem]]:
    problems, good, last_good = [], 0, 0
    trusted = {crypto.public_key_id(key): key for key in public_keys}
    for cp in found:
        name = cp.path.name if cp.path else f"checkpoint {cp.seq}"
        if cp.key_id not in trusted:
            problems.append(Problem(cp.seq, BAD_CHECKPOINT, f"{name} is signed by unknown key {cp.key_id}"))
            continue
        if not crypto.verify_checkpoint_signature(cp.message, cp.signature, trusted[cp.key_id]):
            problems.append(Problem(cp.seq, BAD_CHECKPOINT, f"{name}: signature does not verify"))
            continue
        if cp.seq > state.last_seq:
            problems.append(Problem(state.last_seq + 1, TRUNCATED,
                                    f"{name} covers seq {cp.seq}; the trail ends at {state.last_seq}"))
            continue
        if state.hashes_at.get(cp.seq) != cp.head_hash:
            problems.append(Problem(last_good + 1, REWRITTEN,
                                    f"event {cp.seq} does not match {name}: history between seq "
                                    f"{last_good + 1} and {cp.seq} was rewritten"))
            continue
        good, last_good = good + 1, cp.seq
    return good, problems


def evaluate(state: _ChainState, *, head_seq: int, head_hash: bytes, found=(), unreadable=(),
             public_keys=()) -> VerificationResult:
    """Combine a pass over the rows with the chain head and the checkpoints into a result whose
    problems are ordered by sequence number (chain findings before checkpoint findings)."""
    result = VerificationResult(events=state.events, head_seq=head_seq, head_hash=bytes(head_hash))
    problems = [state.problem] if state.problem else []
    if not problems and (head_problem := _check_head(state, head_seq, bytes(head_hash))):
        problems.append(head_problem)
    result.checkpoints, checkpoint_problems = _check_checkpoints(state, found, public_keys) if found else (0, [])
    problems += checkpoint_problems
    problems += [Problem(seq, BAD_CHECKPOINT, reason) for seq, reason in unreadable]
    result.problems = sorted(dict.fromkeys(problems), key=lambda p: p.seq)  # stable: chain first
    missing = sorted(state.checkpoint_events - {cp.seq for cp in found} - {seq for seq, _ in unreadable})
    if missing:
        result.warnings.append(f"{len(missing)} checkpoint(s) recorded in the trail have no file here "
                               f"(seq {', '.join(map(str, missing[:5]))}{'...' if len(missing) > 5 else ''}): "
                               "deleted, or written on another host")
    return result


def _columns():
    table = AuditEvent.__table__
    names = ("seq", "occurred_at", "actor_id", "actor_role", "code", "subject_type", "subject_id",
             "outcome", "request_id", "client_address", "details", "prev_hash", "hash")
    return [table.c[name] for name in names]


def verify_audit_trail(*, checkpoint_dir: str | Path | None = None, public_keys: Iterable[bytes] = (),
                       batch_size: int = DEFAULT_BATCH_SIZE) -> VerificationResult:
    """Verify the whole trail of the current application's database and every checkpoint in
    ``checkpoint_dir`` (default: AUDIT_CHECKPOINT_DIR). ``public_keys`` (raw Ed25519) are the
    checkpoint keys to trust: pinned keys let an auditor verify without the KEK, and an old key
    keeps checkpoints from before a KEK change verifiable. By default, the key derived from the
    KEK. Needs no data key. Never writes."""
    from flask import current_app

    started = time.perf_counter()
    if checkpoint_dir is None:
        checkpoint_dir = current_app.config.get("AUDIT_CHECKPOINT_DIR")
    public_keys = list(public_keys) or [crypto.checkpoint_public_key()]
    # Checkpoints are listed before the snapshot starts: each file is written only after the
    # state it names was committed, so none can be newer than the snapshot (a file written
    # while we read would otherwise look like a truncation).
    found, unreadable = checkpoint_files.load_all(checkpoint_dir)
    engine = db.engine
    options = {"read_only": True}  # SQLite: a plain BEGIN, so writers carry on (WAL)
    if engine.dialect.name == "postgresql":
        options["isolation_level"] = "REPEATABLE READ"  # one snapshot for the head and every row
    head_table = AuditChainHead.__table__
    with engine.connect().execution_options(**options) as conn:
        head = conn.execute(select(head_table.c.seq, head_table.c.hash).where(head_table.c.id == 1)).one()
        rows = conn.execution_options(yield_per=batch_size).execute(
            select(*_columns()).order_by(AuditEvent.__table__.c.seq))
        state = check_rows(rows, (cp.seq for cp in found), head_seq=head.seq)
        rows.close()
    result = evaluate(state, head_seq=head.seq, head_hash=head.hash, found=found, unreadable=unreadable,
                      public_keys=public_keys)
    result.seconds = time.perf_counter() - started
    return result
