"""W5: decision recording with concurrency control against a bare insert (PERFORMANCE.md).

Figure: ``app.decisions.services.save_draft`` (permission check, the case re-read under a row
lock, version check against the version the user saw, validation, the decision row, the case
version bump, the DECISION_DRAFTED audit event, one commit) for the principal of cases without a
decision, put in ``decision_drafted`` status and assigned to one caseworker beforehand (not timed).
Baseline, same run: the same decision rows added through the ORM and committed one at a time.
The notes say what share of save_draft's time the audit service's ``record()`` takes (another
package's code, with its own work under way), so drafting's own share is plain.

Check: two threads, each with its own session, draft a decision on the same case at the same
moment with the same expected version; exactly one must win, the other get a conflict (or, on
SQLite, the write lock refused), and exactly one decision row must exist afterwards. Repeated
over several cases; pass only when every repetition had exactly one winner.

    part of bench/run.py (--only W5)
"""

from __future__ import annotations

import threading
import time

from bench.common import Context, Row, percentile, timed_each, verdict

THROUGHPUT_TARGET = 0.50
RACES = 10


class _AuditClock:
    """While entered, times every audit ``record()`` call save_draft makes (the audit service is
    another package's: its share is reported apart from drafting's own)."""

    def __init__(self, services):
        self.services, self.seconds = services, 0.0

    def __enter__(self):
        self.original = self.services.record

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return self.original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
        self.services.record = timed
        return self

    def __exit__(self, *_exc):
        self.services.record = self.original


def _setup(count: int):
    """(caseworker, [(case_id, person_id)]) for ``count`` cases, all in one office."""
    from sqlalchemy import select, text, update

    from app.auth.models import User
    from app.extensions import db
    from app.intake.models import Case

    worker = db.session.scalars(select(User).where(User.role == "caseworker", User.active.is_(True))
                                .order_by(User.id)).first()
    rows = db.session.execute(text(
        "SELECT c.id, p.id FROM asylum_case c JOIN person p ON p.case_id = c.id AND p.is_principal "
        "WHERE c.office_id = :office AND NOT EXISTS (SELECT 1 FROM decision d WHERE d.case_id = c.id) "
        "ORDER BY c.id LIMIT :n"), {"office": worker.office_id, "n": count}).all()
    ids = [r[0] for r in rows]
    for start in range(0, len(ids), 1000):
        db.session.execute(update(Case).where(Case.id.in_(ids[start:start + 1000]))
                           .values(status="decision_drafted", assigned_to_id=worker.id),
                           execution_options={"synchronize_session": False})
    db.session.commit()
    return worker, [(r[0], r[1]) for r in rows]


def _race(app, worker_id: int, case_id: str, person_id: str) -> tuple[int, list[str], int]:
    """(winners, what the losers got, decision rows) of two simultaneous drafts on one case."""
    from sqlalchemy import func, select

    from app.auth.models import User
    from app.decisions import services
    from app.decisions.models import Decision
    from app.extensions import db
    from app.intake.models import Case

    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt(outcome: str):
        with app.app_context():
            user = db.session.get(User, worker_id)
            version = db.session.get(Case, case_id).version
            db.session.rollback()
            barrier.wait()
            try:
                services.save_draft(case_id, acting_user=user, person_id=person_id, outcome=outcome,
                                    legal_basis=["QR-REFUGEE"], reasons=None, expected_version=version)
                outcomes.append("won")
            except Exception as exc:  # noqa: BLE001 - the loser's error is what is reported
                outcomes.append(type(exc).__name__)
                db.session.rollback()
            finally:
                db.session.remove()

    threads = [threading.Thread(target=attempt, args=(o,)) for o in ("refugee_status", "subsidiary_protection")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with app.app_context():
        rows = db.session.scalar(select(func.count()).select_from(Decision).where(Decision.case_id == case_id))
        db.session.remove()
    return outcomes.count("won"), [o for o in outcomes if o != "won"], rows


def run(context: Context) -> list[Row]:
    from app.decisions import services
    from app.decisions.models import Decision
    from app.extensions import db

    count = max(200, min(2000, context.cases // 20))
    app = context.make_app()
    with app.app_context():
        worker, targets = _setup(2 * count + 20 + RACES)
        worker_id, office_id = worker.id, worker.office_id
        if len(targets) < 2 * count + 20 + RACES:
            return [Row("W5 decision recording", "", "", "", "", "not run",
                        f"only {len(targets)} cases without a decision in office {worker.office_id}")]
        warm, ours, bare, races = (targets[:20], targets[20:20 + count], targets[20 + count:20 + 2 * count],
                                   targets[20 + 2 * count:])

        def draft(target):
            case_id, person_id = target
            services.save_draft(case_id, acting_user=worker, person_id=person_id, outcome="refugee_status",
                                legal_basis=["QR-REFUGEE"], reasons=None, expected_version=None)

        def bare_insert(target):
            case_id, person_id = target
            db.session.add(Decision(case_id=case_id, person_id=person_id, office_id=office_id, round=1,
                                    drafted_by_id=worker_id,
                                    last_edited_by_id=worker_id, status="draft", outcome="refugee_status",
                                    legal_basis=["QR-REFUGEE"]))
            db.session.commit()

        for target in warm[:10]:
            draft(target)
        for target in warm[10:]:
            bare_insert(target)
        half = count // 2
        audit = _AuditClock(services)
        cpu = {"ours": 0.0, "bare": 0.0}  # CPU time of this thread: the machine is shared (SQLite runs in it)

        def cpu_timed(kind, operation, items):
            started = time.thread_time()
            result = timed_each(operation, items)
            cpu[kind] += time.thread_time() - started
            return result

        b1, bs1 = cpu_timed("bare", bare_insert, bare[:half])
        with audit:
            o1, os1 = cpu_timed("ours", draft, ours[:half])
        b2, bs2 = cpu_timed("bare", bare_insert, bare[half:])
        with audit:
            o2, os2 = cpu_timed("ours", draft, ours[half:])
        db.session.remove()
    our_rate, bare_rate = count / (o1 + o2), count / (b1 + b2)
    ratio = our_rate / bare_rate

    results = [_race(app, worker_id, case_id, person_id) for case_id, person_id in races]
    exact = sum(1 for winners, _losers, rows in results if winners == 1 and rows == 1)
    loser_errors = sorted({e for _w, losers, _r in results for e in losers})
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    return [
        Row("W5 decision drafting (save_draft) decisions/s", f"{our_rate:,.0f}/s", f"{bare_rate:,.0f}/s",
            f"{ratio:.2f}", f">={THROUGHPUT_TARGET:.2f}", verdict(ratio >= THROUGHPUT_TARGET),
            f"{count:,} decisions; p95 {percentile(os1 + os2, 0.95) * 1000:.1f} ms vs bare "
            f"{percentile(bs1 + bs2, 0.95) * 1000:.1f} ms; audit record() {audit.seconds / (o1 + o2):.0%} of "
            f"save_draft's time ({audit.seconds / count * 1000:.2f} ms a call); CPU time a call "
            f"{cpu['ours'] / count * 1000:.2f} ms vs bare {cpu['bare'] / count * 1000:.2f} ms, CPU ratio "
            f"{cpu['bare'] / cpu['ours']:.2f}; "
            "baseline: ORM add of the same decision row, commit each"),
        Row("W5 two concurrent drafts on one case: exactly one wins", f"{exact}/{len(results)}", "", "",
            "all", verdict(exact == len(results)),
            "losers got: " + (", ".join(loser_errors) or "nothing (both won)")),
    ]
