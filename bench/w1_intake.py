"""W1: intake through the service layer against a bare ORM insert of the same rows (PERFORMANCE.md).

Figure: ``app.intake.services.register_claim`` called directly inside an app context (validate,
encrypt, blind-index, match keys, duplicate check, triage, insert, audit, one commit per claim);
a claim whose people may already be registered is registered again with the officer's "new
person" decision, as the form does (both calls are timed). Baseline, same run, same payloads:
the same case and person rows (their plain columns) added through the ORM and committed one
claim at a time, without any of that work.

HTTP figure: the registration form POST (``/cases/register``: CSRF check, form parsing into
the payload, the same service, flash and redirect) through the Flask test client, one officer
signed in once and the session cookie reused (login stays out of the loop), each request in its
own application context as under a WSGI server. Baseline, same run: a bare endpoint on the same
stack (same session, sign-in, permission and CSRF checks, the same form posted and parsed) that
adds the same case and person rows through the ORM and commits, then redirects.

    part of bench/run.py (--only W1)
"""

from __future__ import annotations

from bench.common import (PASSWORD, Context, Row, bare_case_rows, bare_references, interleaved, payloads, registrar_of,
                          verdict)

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

        serial = bare_references("BW1-")

        def bare_insert(payload):
            case_row, person_rows = bare_case_rows(payload, office_id, user_id, next(serial))
            case = Case(**case_row)
            db.session.add(case)
            for row in person_rows:
                db.session.add(Person(**row))
            db.session.commit()

        for payload in warm[:10]:
            register(payload)
        for payload in warm[10:]:
            bare_insert(payload)
        measured = interleaved(register, ours, bare_insert, bare)
        db.session.remove()
    http_rows = run_http(context, count)
    our_rate, bare_rate = measured.our_rate, measured.bare_rate
    our_p95, bare_p95 = measured.our_p95_ms, measured.bare_p95_ms
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
        *http_rows,
    ]


def run_http(context: Context, count: int) -> list[Row]:
    """The form POST against a bare ORM-insert endpoint on the same stack (see the docstring)."""
    import re

    from flask import redirect, request

    from app.auth.access import requires
    from app.auth.passwords import hash_password
    from app.auth.permissions import Permission
    from app.extensions import db
    from app.intake.forms import payload_to_formdata
    from app.intake.models import Case, Person

    items = payloads(2 * count + 20, context.seed + 3, context.today)
    warm, ours, bare = items[:20], items[20:20 + count], items[20 + count:]
    app = context.make_app()  # fresh: the bare route can still be added
    serial = bare_references("BH1-")

    @requires(Permission.CASE_REGISTER)
    def bare_register(n: int):
        from flask_login import current_user

        request.form.to_dict(flat=False)  # the same form parsed, as the real view does
        case_row, person_rows = bare_case_rows(items[n], current_user.office_id, current_user.id,
                                               next(serial))
        db.session.add(Case(**case_row))
        for row in person_rows:
            db.session.add(Person(**row))
        db.session.commit()
        return redirect(f"/cases/{case_row['id']}")

    app.add_url_rule("/bench/w1-bare/<int:n>", "bench_w1_bare", bare_register, methods=["POST"])
    with app.app_context():
        officer = registrar_of()
        officer.password_hash = hash_password(PASSWORD)  # the bench's throwaway account signs in once
        username = officer.username
        db.session.commit()
        db.session.remove()
    client = app.test_client()
    page = client.get("/auth/login").get_data(as_text=True)
    token_of = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
    response = client.post("/auth/login", data={"username": username, "password": PASSWORD,
                                                "csrf_token": token_of.search(page).group(1)})
    assert response.status_code == 302, response.status_code
    token = token_of.search(client.get("/cases/register").get_data(as_text=True)).group(1)
    index = {id(payload): n for n, payload in enumerate(items)}
    duplicates = 0

    def form_of(payload, **extra):
        data = payload_to_formdata(payload)
        data.update({"csrf_token": token, "action": "register", **extra})
        return data

    def register(payload):
        nonlocal duplicates
        response = client.post("/cases/register", data=form_of(payload))
        if response.status_code == 409:  # the duplicate step: the officer confirms new people
            duplicates += 1
            response = client.post("/cases/register", data=form_of(
                payload, **{f"duplicate-{n}": "new" for n in range(len(payload["persons"]))}))
        assert response.status_code == 302, response.status_code

    def bare_insert(payload):
        response = client.post(f"/bench/w1-bare/{index[id(payload)]}", data=form_of(payload))
        assert response.status_code == 302, response.status_code

    for payload in warm[:10]:
        register(payload)
    for payload in warm[10:]:
        bare_insert(payload)
    measured = interleaved(register, ours, bare_insert, bare)
    our_rate, bare_rate = measured.our_rate, measured.bare_rate
    our_p95, bare_p95 = measured.our_p95_ms, measured.bare_p95_ms
    ratio = our_rate / bare_rate
    sanity_rate = SANITY_RATE.get(context.dialect)
    return [
        Row("W1 intake, HTTP form POST req/s", f"{our_rate:,.0f}/s", f"{bare_rate:,.0f}/s", f"{ratio:.2f}",
            f">={THROUGHPUT_TARGET:.2f}", verdict(ratio >= THROUGHPUT_TARGET),
            f"{count:,} claims, {duplicates} flagged as possible duplicates (second POST timed too); sanity "
            + (f">= {sanity_rate}/s: {'met' if our_rate >= sanity_rate else 'not met'}" if sanity_rate
               else "target given for PostgreSQL only")
            + "; baseline: bare endpoint, same session, CSRF and form parsing, ORM add of the same rows; "
              "Flask test client"),
        Row("W1 intake, HTTP form POST p95 (ms)", f"{our_p95:.1f}", f"{bare_p95:.1f}", f"{our_p95 / bare_p95:.2f}",
            f"<={P95_TARGET:g}x", verdict(our_p95 <= P95_TARGET * bare_p95),
            f"sanity p95 <= {SANITY_P95_MS} ms: {'met' if our_p95 <= SANITY_P95_MS else 'not met'}"),
    ]
