"""The audit hash-chain encoding and the verifier's classification, on hand-made chains (no
application, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.audit.chain import event_hash, hash_fields
from app.audit.models import GENESIS_HASH
from app.audit.verify import check_rows, evaluate

T0 = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
FIELDS = dict(seq=1, occurred_at=T0, actor_id=7, actor_role="caseworker", code=102, subject_type="case",
              subject_id="abc", outcome="success", request_id="r1", client_address="10.0.0.1",
              details_ciphertext=b"\x01\x02")


def build(count: int) -> list[tuple]:
    """A valid chain of ``count`` rows in the verifier's row layout."""
    rows, prev = [], GENESIS_HASH
    for seq in range(1, count + 1):
        values = (seq, T0 + timedelta(seconds=seq), 7, "caseworker", 102, "case", f"c{seq}", "success",
                  f"r{seq}", "10.0.0.1", bytes([seq]) * 20)
        digest = hash_fields(prev, values)
        rows.append((*values, prev, digest))
        prev = digest
    return rows


def with_seq(row: tuple, seq: int) -> tuple:
    return (seq, *row[1:])


def verdict(rows: list[tuple], head_seq: int | None = None, head_hash: bytes | None = None):
    head_seq = rows[-1][0] if head_seq is None else head_seq
    state = check_rows(rows, head_seq=head_seq)
    result = evaluate(state, head_seq=head_seq, head_hash=rows[-1][12] if head_hash is None else head_hash)
    return [(p.seq, p.kind) for p in result.problems]


def test_encoding_is_pinned():
    """The hash of a known event never changes: stored chains must verify forever."""
    assert event_hash(GENESIS_HASH, **FIELDS).hex() == \
        "61bce4a482a39e64cd2e21e3238d44e65a62391d9b74ff197f66e0cee9cb59da"


def test_fields_are_length_prefixed():
    """Moving characters between neighbouring fields changes the hash."""
    a = event_hash(GENESIS_HASH, **{**FIELDS, "subject_type": "ca", "subject_id": "seabc"})
    b = event_hash(GENESIS_HASH, **{**FIELDS, "subject_type": "case", "subject_id": "abc"})
    assert a != b


def test_none_and_empty_differ():
    """A missing value and an empty one hash differently."""
    assert event_hash(GENESIS_HASH, **{**FIELDS, "request_id": None}) != \
        event_hash(GENESIS_HASH, **{**FIELDS, "request_id": ""})


def test_same_instant_in_another_zone_hashes_the_same():
    """Timestamps are hashed as UTC, so the zone a driver returns them in does not matter."""
    elsewhere = T0.astimezone(timezone(timedelta(hours=-5)))
    assert event_hash(GENESIS_HASH, **{**FIELDS, "occurred_at": elsewhere}) == event_hash(GENESIS_HASH, **FIELDS)


def test_previous_hash_is_bound():
    """The same event after a different predecessor has a different hash."""
    assert event_hash(b"\x01" * 32, **FIELDS) != event_hash(GENESIS_HASH, **FIELDS)


def test_intact_chain_has_no_problem():
    """A well-formed chain with a matching head verifies."""
    assert verdict(build(10)) == []


def test_edit_is_first_bad_seq():
    """A changed field in row 5 is 'edited' at 5."""
    rows = build(10)
    rows[4] = (*rows[4][:7], "failure", *rows[4][8:])
    assert verdict(rows) == [(5, "edited")]


def test_gap_is_deleted():
    """A missing row 6 is 'deleted' at 6."""
    rows = build(10)
    del rows[5]
    assert verdict(rows) == [(6, "deleted")]


def test_delete_with_renumbering_is_deleted():
    """Row 6 removed and later rows renumbered down: 'deleted' at 6."""
    rows = build(10)
    rows = rows[:5] + [with_seq(r, r[0] - 1) for r in rows[6:]]
    assert verdict(rows) == [(6, "deleted")]


@pytest.mark.parametrize("a, b", [(3, 4), (2, 9)])
def test_swap_is_reordered(a, b):
    """Rows a and b exchanged: 'reordered' at a."""
    rows = build(10)
    rows[a - 1], rows[b - 1] = with_seq(rows[b - 1], a), with_seq(rows[a - 1], b)
    assert verdict(rows) == [(a, "reordered")]


@pytest.mark.parametrize("linked", [True, False])
def test_insertion_is_inserted(linked):
    """A forged row at 4 (correctly linked or not), later rows pushed up: 'inserted' at 4."""
    rows = build(10)
    prev = rows[2][12] if linked else b"\x07" * 32
    values = (4, T0, 1, "admin", 101, "case", "forged", "success", None, None, None)
    forged = (*values, prev, hash_fields(prev, values) if linked else b"\x00" * 32)
    rows = rows[:3] + [forged] + [with_seq(r, r[0] + 1) for r in rows[3:]]
    assert verdict(rows) == [(4, "inserted")]


def test_rehashed_edit_is_edited_at_that_row():
    """Row 6 changed and re-hashed: row 7 no longer links, so 'edited' at 6."""
    rows = build(10)
    values = (*rows[5][:7], "failure", *rows[5][8:11])
    rows[5] = (*values, rows[5][11], hash_fields(rows[5][11], values))
    assert verdict(rows) == [(6, "edited")]


def test_missing_tail_is_truncated():
    """The head names seq 10 but the rows stop at 8: 'truncated' at 9."""
    rows = build(10)
    assert verdict(rows[:8], head_seq=10, head_hash=rows[9][12]) == [(9, "truncated")]


def test_rows_beyond_head_are_inserted():
    """Rows after the head's seq are 'inserted' at head + 1."""
    rows = build(10)
    assert verdict(rows, head_seq=8, head_hash=rows[7][12]) == [(9, "inserted")]


def test_row_far_beyond_head_is_inserted_not_a_gap():
    """A row numbered 1000 after a head of 10 is 'inserted' at 1000, not a deletion of 11-999."""
    rows = build(10)
    values = (1000, T0, 1, "admin", 101, "case", "forged", "success", None, None, None)
    rows.append((*values, rows[-1][12], hash_fields(rows[-1][12], values)))
    assert verdict(rows, head_seq=10, head_hash=rows[9][12]) == [(1000, "inserted")]


def test_only_the_first_anomaly_is_classified():
    """Later damage does not hide or reorder the first: the earliest bad seq comes first."""
    rows = build(10)
    rows[2] = (*rows[2][:7], "denied", *rows[2][8:])
    del rows[7]
    assert verdict(rows)[0] == (3, "edited")
