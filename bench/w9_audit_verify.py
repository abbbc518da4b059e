"""W9: audit chain verification against a raw fetch + SHA-256 loop over the same rows (PERFORMANCE.md).

Figure: ``app.audit.verify.verify_audit_trail`` over every event present in the run's database
(the generator's and those the other workloads wrote: they scale with --cases), checkpoints
included (none are written by the bench). Baseline, same run, same rows: a DB-API cursor reading
the same 13 columns in sequence order in batches, and one ``hashlib.sha256`` per row over the
previous hash and the fields joined as text; no length prefixes, no checks. Best of 3 each.

    part of bench/run.py (--only W9)
"""

from __future__ import annotations

import hashlib
import time

from bench.common import Context, Row, verdict

RATIO_TARGET = 3.0
SANITY_S_PER_MILLION = 30.0
COLUMNS = ("seq, occurred_at, actor_id, actor_role, code, subject_type, subject_id, outcome, request_id, "
           "client_address, details, prev_hash, hash")


def _raw_loop(engine) -> int:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(f"SELECT {COLUMNS} FROM audit_event ORDER BY seq")  # noqa: S608 - constant text
        prev, n = bytes(32), 0
        while True:
            batch = cursor.fetchmany(10_000)
            if not batch:
                break
            for row in batch:
                digest = hashlib.sha256(prev)
                for value in row[:11]:
                    digest.update(bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode())
                prev = digest.digest()
                n += 1
        cursor.close()
        raw.rollback()
    finally:
        raw.close()
    return n


LARGE_TRAIL_EVENTS = 5_000_000


def run(context: Context) -> list[Row]:
    from app.audit.verify import verify_audit_trail
    from app.extensions import db

    with context.app.app_context():
        engine = db.engine
        # A million-case run holds about 17M events, several minutes a pass on this machine: one
        # pass each there (the raw loop's first pass warms the page cache for ours), best of 3
        # below that.
        large = context.info.get("events", 0) > LARGE_TRAIL_EVENTS
        if not large:
            verify_audit_trail()  # warm: the rows are in the page cache for both sides
        raw_best, ours_best, events, summary = float("inf"), float("inf"), 0, ""
        for _ in range(1 if large else 3):
            started = time.perf_counter()
            events = _raw_loop(engine)
            raw_best = min(raw_best, time.perf_counter() - started)
            started = time.perf_counter()
            result = verify_audit_trail()
            ours_best = min(ours_best, time.perf_counter() - started)
            summary = result.summary()
        ok = result.ok
        db.session.remove()
    ratio = ours_best / raw_best
    per_million = ours_best * 1_000_000 / events if events else float("nan")
    return [
        Row(f"W9 audit chain verification, {events:,} events (s)", f"{ours_best:.2f}", f"{raw_best:.2f}",
            f"{ratio:.2f}", f"<={RATIO_TARGET:g}x", verdict(ratio <= RATIO_TARGET and ok),
            f"{events / ours_best:,.0f} events/s, {per_million:.1f} s per 1M events extrapolated "
            f"(sanity <= {SANITY_S_PER_MILLION:g} s: {'met' if per_million <= SANITY_S_PER_MILLION else 'not met'}); "
            f"chain {'intact' if ok else 'BROKEN: ' + summary}"),
    ]
