"""Drafting a decision (workload W5) stays lean and keeps its concurrency rule: a fixed, small
set of statements whatever the case holds, people's encrypted sections never read, and two new
drafts on one case from the same version: exactly one is saved, the other is told why."""

from __future__ import annotations

import os
import threading
from functools import partial

import pytest
from sqlalchemy import event, func, select

from app.auth.models import User
from app.decisions import services
from app.decisions.models import Decision
from app.extensions import db
from test_decisions_support import assign, fresh, interview, person, register

needs_postgres = pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"),
                                    reason="needs PostgreSQL (set TEST_DATABASE_URL): real concurrent row locks")


def statements_of(action) -> list[str]:
    """The SQL statements ``action()`` issues, without transaction control and without the audit
    service's own (another package's, with its own budget)."""
    seen: list[str] = []

    def keep(_conn, _cursor, statement, *_args):
        seen.append(" ".join(statement.split()))

    event.listen(db.engine, "before_cursor_execute", keep)
    try:
        action()
    finally:
        event.remove(db.engine, "before_cursor_execute", keep)
    return [s for s in seen if not s.upper().startswith(("BEGIN", "PRAGMA", "SAVEPOINT", "RELEASE"))
            and "audit_" not in s]


def interviewed_case(make_user, people: int = 1):
    officer, worker = make_user("registration_officer"), make_user("caseworker")
    members = [person("Haddad", "Rania")] + [person("Haddad", f"Child{n}", dob="2015-01-01", principal=False,
                                                    relationship="child") for n in range(people - 1)]
    case = register(officer, *members)
    assign(case.id, worker)
    interview(case.id, worker)
    return fresh(case.id), worker


def draft(case_id: str, user, person_id: str, **changes):
    arguments = {"outcome": "refugee_status", "legal_basis": ["QR-REFUGEE"], "reasons": None, **changes}
    return services.save_draft(case_id, acting_user=user, person_id=person_id, **arguments)


def test_a_new_draft_costs_the_same_few_statements_however_many_people_and_drafts(app, make_user):
    """Once the case has its first draft, another person's new draft is always the same four
    statements of drafting's own (the locking read with the person check, the case's decisions,
    the decision's INSERT, the version bump), for a family of one or of five people."""
    counts = []
    for people in (2, 5):
        case, worker = interviewed_case(make_user, people)
        case_id, persons = case.id, [p.id for p in case.persons]
        draft(case_id, worker, persons[0])  # the first draft also moves the case to decision_drafted
        for person_id in persons[1:]:
            db.session.refresh(worker)  # the signed-in user is fresh in a request
            found = statements_of(partial(draft, case_id, worker, person_id))
            counts.append(len(found))
            assert sum(s.startswith("INSERT INTO decision") for s in found) == 1
            assert sum(s.startswith("UPDATE asylum_case") for s in found) == 1
            # The person is checked by id: no statement reads the people's (encrypted) rows.
            assert not any("person.identity" in s or "FROM person WHERE person.case_id" in s for s in found)
    assert counts == [4] * len(counts), counts


def test_editing_a_draft_is_as_lean(app, make_user):
    """Editing an existing draft: the locking read, the decision by key, its UPDATE and the
    version bump; no read of the case's other decisions."""
    case, worker = interviewed_case(make_user)
    case_id, principal = case.id, case.principal.id
    saved_id = draft(case_id, worker, principal).id
    db.session.refresh(worker)
    found = statements_of(lambda: draft(case_id, worker, principal, decision_id=saved_id, reasons="Edited."))
    assert len(found) == 4, found
    assert not any(s.startswith("SELECT decision.person_id, decision.round") for s in found)
    assert db.session.get(Decision, saved_id).reasons == "Edited."


def test_the_version_moves_on_and_a_stale_second_draft_is_refused(app, make_user):
    """One after the other from the same version (SQLite and PostgreSQL alike): the second new
    draft gets DecisionConflict with what it submitted and the current version; one row."""
    case, worker = interviewed_case(make_user, people=2)
    first_person, second_person = (p.id for p in case.persons)
    version = case.version
    draft(case.id, worker, first_person, expected_version=version)
    assert fresh(case.id).version == version + 2  # the draft, and the step to decision_drafted
    with pytest.raises(services.DecisionConflict) as conflict:
        draft(case.id, worker, second_person, expected_version=version, reasons="Mine.")
    assert conflict.value.submitted["reasons"] == "Mine."
    assert conflict.value.current_version == version + 2
    assert db.session.scalar(select(func.count()).select_from(Decision).where(Decision.case_id == case.id)) == 1


def race_new_drafts(app, case_id: str, person_id: str, version: int, user_ids: list[int]) -> list[str]:
    """Each user, in a thread with its own session, saves a new draft for ``person_id`` from
    ``version``, all released together; how each one ended."""
    barrier = threading.Barrier(len(user_ids))
    outcomes: list[str] = []

    def attempt(user_id: int, outcome: str):
        with app.app_context():
            try:
                user = db.session.get(User, user_id)
                barrier.wait(timeout=30)
                draft(case_id, user, person_id, outcome=outcome, expected_version=version)
                outcomes.append("won")
            except services.DecisionConflict:
                outcomes.append("conflict")
            except Exception as exc:  # noqa: BLE001 - reported in the assertion
                outcomes.append(f"error: {type(exc).__name__}: {exc}")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=attempt, args=(uid, outcome))
               for uid, outcome in zip(user_ids, ("refugee_status", "subsidiary_protection"), strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcomes


@needs_postgres
def test_two_new_drafts_at_once_on_one_case_exactly_one_wins(app, make_user):
    """Two caseworkers save a new draft for the same person from the same version at the same
    moment, five times over: each time exactly one is saved, the other gets DecisionConflict, and
    exactly one decision row exists."""
    second = make_user("caseworker")
    for _round in range(5):
        case, first = interviewed_case(make_user)
        case_id, version, principal = case.id, case.version, case.principal.id
        db.session.commit()
        outcomes = race_new_drafts(app, case_id, principal, version, [first.id, second.id])
        assert sorted(outcomes) == ["conflict", "won"], outcomes
        db.session.expire_all()
        assert db.session.scalar(select(func.count()).select_from(Decision)
                                 .where(Decision.case_id == case_id)) == 1
