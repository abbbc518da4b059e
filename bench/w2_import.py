"""W2: bulk import of legacy claims through the service layer against a raw bulk insert (PERFORMANCE.md).

Figure: ``app.intake.importer.import_claims`` over JSON Lines (docs/import-format.md): batches
of ``importer.BATCH_SIZE`` claims, each registered by ``services.register_claims`` in one
transaction (validation, encryption, blind indexes, match keys, triage, audit: the same rows as
``register_claim``), ``on_duplicate="new"`` so every line is imported (no duplicate lookup; the
"skip" figure, with the lookup in the database and within the batch, is printed beside it).
Baseline, same run, same claims: their case and person rows (plain columns) inserted with Core
``insert()`` executemany in batches of 5,000, no validation, no crypto, no audit.

    part of bench/run.py (--only W2)
"""

from __future__ import annotations

import json
import time

from bench.common import Context, Row, bare_case_rows, bare_references, payloads, registrar_of, verdict

TIME_RATIO_TARGET = 10.0   # <= 10x the raw bulk insert time
SANITY_RATE = 4_000        # claims/s
BATCH = 5_000


def run(context: Context) -> list[Row]:
    from sqlalchemy import insert

    from app.extensions import db
    from app.intake.importer import import_claims
    from app.intake.models import Case, Person

    count = context.info.get("w2_claims") or min(context.cases, 2_000)
    items = payloads(count, context.seed + 2, context.today)
    lines = [json.dumps({"legacy_id": f"OLD-{n:09d}", **payload}) for n, payload in enumerate(items)]
    with context.app.app_context():
        officer = registrar_of()
        office_id, user_id = officer.office_id, officer.id
        case_rows, person_rows = [], []
        references = bare_references("BW2-")
        for payload in items:
            case, people = bare_case_rows(payload, office_id, user_id, next(references))
            case_rows.append(case)
            person_rows.extend(people)

        started = time.perf_counter()
        for start in range(0, len(case_rows), BATCH):
            db.session.execute(insert(Case.__table__), case_rows[start:start + BATCH])
        for start in range(0, len(person_rows), BATCH):
            db.session.execute(insert(Person.__table__), person_rows[start:start + BATCH])
        db.session.commit()
        raw_s = time.perf_counter() - started

        started = time.perf_counter()
        report = import_claims(lines, acting_user=officer, on_duplicate="new")
        ours_s = time.perf_counter() - started

        checked = min(count, 1_000)
        checked_lines = [json.dumps({"legacy_id": f"CHK-{n:09d}", **payload})
                         for n, payload in enumerate(payloads(checked, context.seed + 4, context.today))]
        started = time.perf_counter()
        checked_report = import_claims(checked_lines, acting_user=officer, on_duplicate="skip")
        checked_s = time.perf_counter() - started
        db.session.remove()
    ratio = ours_s / raw_s
    rate = report.imported / ours_s
    return [
        Row("W2 bulk import via import_claims, time (s)", f"{ours_s:,.1f}", f"{raw_s:,.2f}", f"{ratio:.1f}",
            f"<={TIME_RATIO_TARGET:g}x", verdict(ratio <= TIME_RATIO_TARGET and report.imported == count),
            f"{count:,} claims ({len(person_rows):,} people), {report.imported:,} imported, "
            f"{report.rejected} rejected; baseline: Core executemany of the same case+person rows"),
        Row("W2 bulk import, claims/s", f"{rate:,.0f}/s", f"{count / raw_s:,.0f}/s", "", f">={SANITY_RATE:,}/s",
            verdict(rate >= SANITY_RATE), "absolute sanity figure of PERFORMANCE.md (this machine)"),
        Row("W2 same, with the duplicate check (skip), claims/s", f"{checked / checked_s:,.0f}/s",
            f"{count / raw_s:,.0f}/s", f"{(checked_s / checked) / (raw_s / count):.1f}", "info", "info",
            f"{checked:,} other claims, {checked_report.imported:,} imported, {checked_report.skipped_duplicates:,} "
            "held back as possible duplicates (in the database or the same batch); ratio = time per claim "
            "over the raw insert's"),
    ]
