"""Concurrency on one case: two people issuing (or editing) at once, exactly one wins and the other
gets a conflict carrying what they submitted, nothing of theirs written. Threads on PostgreSQL
(real row locks); the same rule, one after the other, on SQLite."""

from __future__ import annotations

import os
import threading

import pytest
from sqlalchemy import func, select

from app.audit.codes import EventCode
from app.auth.models import User
from app.decisions import services
from app.decisions.models import Decision, DecisionLetter
from app.extensions import db
from test_decisions_support import (approve_all, assign, events, fresh, interview, register, to_under_review,
                                    transitions)

needs_postgres = pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"),
                                    reason="needs PostgreSQL (set TEST_DATABASE_URL): real concurrent row locks")


def approved_case(make_user):
    officer, supervisor = make_user("registration_officer"), make_user("supervisor")
    first, second = make_user("caseworker"), make_user("caseworker")
    case = register(officer)
    assign(case.id, first)
    to_under_review(case.id, first)
    approve_all(case.id, supervisor)
    return case, first, second


def race(app, user_ids: list[int], action) -> list[str]:
    """Run ``action(user)`` in one thread per user, released together; each thread has its own
    application context, so its own session and connection. Returns how each one ended."""
    barrier = threading.Barrier(len(user_ids))
    results: list[str] = [""] * len(user_ids)

    def run(index: int, user_id: int):
        with app.app_context():
            try:
                user = db.session.get(User, user_id)
                barrier.wait(timeout=30)
                action(user)
                results[index] = "won"
            except services.DecisionConflict:
                results[index] = "conflict"
            except services.TransitionRefused:
                results[index] = "refused"
            except Exception as exc:  # noqa: BLE001 - reported in the assertion
                results[index] = f"error: {type(exc).__name__}: {exc}"
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, uid)) for i, uid in enumerate(user_ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


@needs_postgres
def test_two_caseworkers_issue_at_once_exactly_one_wins(app, make_user):
    """Both saw the same version and press "issue" together: one issues (one letter, one audit
    event), the other gets a conflict."""
    case, first, second = approved_case(make_user)
    version = fresh(case.id).version
    db.session.commit()
    results = race(app, [first.id, second.id], lambda user: services.issue_decisions(
        case.id, acting_user=user, expected_version=version))
    assert sorted(results) == ["conflict", "won"], results
    db.session.expire_all()
    assert fresh(case.id).status == "decision_issued"
    assert db.session.scalar(select(func.count()).select_from(DecisionLetter)) == 1
    assert len(events(EventCode.DECISION_ISSUED, case.id)) == 1
    assert transitions(case.id).count(("under_review", "decision_issued")) == 1


@needs_postgres
def test_two_issue_without_a_version_exactly_one_wins(app, make_user):
    """Even without a version (a script, an API), the row lock makes the second see the case
    already issued: it is refused, never issued twice."""
    case, first, second = approved_case(make_user)
    db.session.commit()
    results = race(app, [first.id, second.id], lambda user: services.issue_decisions(case.id, acting_user=user))
    assert sorted(results) == ["refused", "won"], results
    assert db.session.scalar(select(func.count()).select_from(DecisionLetter)) == 1


@needs_postgres
def test_two_edit_the_same_draft_at_once_exactly_one_wins(app, make_user):
    """Two caseworkers save the same draft from the same version: one is saved, one conflicts."""
    officer, first, second = make_user("registration_officer"), make_user("caseworker"), make_user("caseworker")
    case = register(officer)
    assign(case.id, first)
    interview(case.id, first)
    draft = services.save_draft(case.id, acting_user=first, person_id=fresh(case.id).principal.id,
                                outcome="refugee_status", legal_basis=["QR-REFUGEE"], reasons="First version.")
    version = fresh(case.id).version
    db.session.commit()

    def save(user):
        services.save_draft(case.id, acting_user=user, person_id=draft.person_id, decision_id=draft.id,
                            outcome="subsidiary_protection", legal_basis=["QR-SUBSIDIARY"],
                            reasons=f"Written by {user.username}.", expected_version=version)

    results = race(app, [first.id, second.id], save)
    assert sorted(results) == ["conflict", "won"], results
    db.session.expire_all()
    winner = [first, second][results.index("won")]
    assert db.session.get(Decision, draft.id).reasons == f"Written by {winner.username}."
    assert fresh(case.id).version == version + 1


def test_serial_conflict_on_issue_keeps_the_loser_input(app, make_user):
    """One after the other from the same version: the second issue gets DecisionConflict with its
    input and the current version; nothing is issued twice."""
    case, first, second = approved_case(make_user)
    version = fresh(case.id).version
    services.issue_decisions(case.id, acting_user=first, expected_version=version)
    from datetime import date, timedelta

    planned = date.today() + timedelta(days=2)
    with pytest.raises(services.DecisionConflict) as conflict:
        services.issue_decisions(case.id, acting_user=second, expected_version=version, service_date=planned)
    assert conflict.value.submitted == {"service_date": planned.isoformat()}
    assert conflict.value.current_version == fresh(case.id).version > version
    assert db.session.scalar(select(func.count()).select_from(DecisionLetter)) == 1
    assert len(events(EventCode.DECISION_ISSUED, case.id)) == 1


def test_serial_conflict_on_draft_edit_writes_nothing(app, make_user):
    """Two caseworkers opened the draft at the same version; the second save conflicts, carrying
    its text back, and the first one's text stays."""
    officer, first, second = make_user("registration_officer"), make_user("caseworker"), make_user("caseworker")
    case = register(officer)
    assign(case.id, first)
    interview(case.id, first)
    draft = services.save_draft(case.id, acting_user=first, person_id=fresh(case.id).principal.id,
                                outcome="refugee_status", legal_basis=["QR-REFUGEE"], reasons="v1")
    version = fresh(case.id).version
    services.save_draft(case.id, acting_user=first, person_id=draft.person_id, decision_id=draft.id,
                        outcome="refugee_status", legal_basis=["QR-REFUGEE"], reasons="first's edit",
                        expected_version=version)
    with pytest.raises(services.DecisionConflict) as conflict:
        services.save_draft(case.id, acting_user=second, person_id=draft.person_id, decision_id=draft.id,
                            outcome="rejected_unfounded", legal_basis=["APR-39"], reasons="second's edit",
                            expected_version=version)
    assert conflict.value.submitted["reasons"] == "second's edit"
    assert conflict.value.submitted["outcome"] == "rejected_unfounded"
    db.session.expire_all()
    assert db.session.get(Decision, draft.id).reasons == "first's edit"
    assert [e.actor_id for e in events(EventCode.DECISION_DRAFTED, case.id)] == [first.id, first.id]
