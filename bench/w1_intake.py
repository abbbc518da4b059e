"""W1: intake through the service layer against a bare ORM insert of the same rows (PERFORMANCE.md).

Figure: ``app.intake.services.register_claim`` called directly inside an app context (validate,
encrypt, blind-index, match keys, duplicate check, triage, insert, audit, one commit per claim);
a claim whose people may already be registered is registered again with the officer's "new
person" decision, as the form does (both calls are timed). Baseline, same run, same payloads:
the same case and person rows (their plain columns) added through the ORM and committed one
claim at a time, without any of that work. The HTTP path (form POST) is not measured here.

    part of bench/run.py (--only W1)
"""

from __future__ import annotations

from bench.common import Context, Row, bare_case_rows, payloads, percentile, registrar_of, timed_each, verdict

THROUGHPUT_TARGET = 0.50  # >= 50% of the bare ORM insert throughput
P95_TARGET = 2.0          # p95 <= 2x the bare insert's p95
SANITY_RATE = {"postgresql": 250}  # req/s, PERFORMANCE.md
SANITY_P95_MS = 150


def claims_for(context: Context) -> int:
    return max(200, min(2000, context.cases // 20))


def run(context: Context) -> list[Row]:
    from app.extensions import db
    from app.intake import services
    from app.intake.models import Case, Person

    count = claims_for(context)
    items = payloads(2 * count + 20, context.seed + 1, context.today)
    warm, ours, bare = items[:20], items[20:20 + count], items[20 + count:]
    with context.app.app_context():
        officer = registrar_of()
        office_id, user_id = officer.office_id, officer.id
        duplicates = 0

        def register(payload):
            nonlocal duplicates
            try:
                services.register_claim(payload, acting_user=officer)
            except services.PossibleDuplicates:
                duplicates += 1
                services.register_claim(payload, acting_user=officer,
                                        duplicate_decisions=dict.fromkeys(range(len(payload["persons"])), "new"))

        serial = iter(range(10**9))

        def bare_insert(payload):
            case_row, person_rows = bare_case_rows(payload, office_id, user_id, f"BW1-{next(serial):012d}")
            case = Case(**case_row)
            db.session.add(case)
            for row in person_rows:
                db.session.add(Person(**row))
            db.session.commit()

        for payload in warm[:10]:
            register(payload)
        for payload in warm[10:]:
            bare_insert(payload)
        # Interleaved halves, so drift on the machine hits both sides alike.
        half = count // 2
        b1, bare_samples1 = timed_each(bare_insert, bare[:half])
        o1, our_samples1 = timed_each(register, ours[:half])
        b2, bare_samples2 = timed_each(bare_insert, bare[half:])
        o2, our_samples2 = timed_each(register, ours[half:])
        db.session.remove()
    our_rate, bare_rate = count / (o1 + o2), count / (b1 + b2)
    our_p95 = percentile(our_samples1 + our_samples2, 0.95) * 1000
    bare_p95 = percentile(bare_samples1 + bare_samples2, 0.95) * 1000
    people = sum(len(p["persons"]) for p in ours)
    ratio = our_rate / bare_rate
    sanity_rate = SANITY_RATE.get(context.dialect)
    return [
        Row("W1 intake, service layer (direct call) claims/s", f"{our_rate:,.0f}/s", f"{bare_rate:,.0f}/s",
            f"{ratio:.2f}", f">={THROUGHPUT_TARGET:.2f}", verdict(ratio >= THROUGHPUT_TARGET),
            f"{count:,} claims, {people:,} people, {duplicates} flagged as possible duplicates; sanity "
            + (f">= {sanity_rate}/s: {'met' if our_rate >= sanity_rate else 'not met'}" if sanity_rate
               else "target given for PostgreSQL only")
            + "; baseline: ORM add of the same case+person rows, commit per claim"),
        Row("W1 intake, service layer p95 (ms)", f"{our_p95:.1f}", f"{bare_p95:.1f}", f"{our_p95 / bare_p95:.2f}",
            f"<={P95_TARGET:g}x", verdict(our_p95 <= P95_TARGET * bare_p95),
            f"sanity p95 <= {SANITY_P95_MS} ms: {'met' if our_p95 <= SANITY_P95_MS else 'not met'}"),
        Row("W1 intake, HTTP form POST", "", "", "", "", "not run",
            "the form path (CSRF, form parsing, template) is not measured yet: a later session"),
    ]
