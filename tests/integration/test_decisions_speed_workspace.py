"""The decision workspace reads each of the case's tables once: the working round and the
lifecycle facts behind the next steps come from the rows loaded for the page, and are the same
as the guards' own queries find, at every stage of a case's life (remittal included)."""

from __future__ import annotations

from sqlalchemy import select

from app.decisions import services
from app.decisions.models import Appeal, Decision
from app.extensions import db
from conftest import captured_statements
from test_decisions_support import (TODAY, approve_all, assign, draft_all, fresh, interview, person, register,
                                    staff_of, to_under_review)


def steps_agree(case_id: str, caseworker, monkeypatch) -> None:
    """The workspace's round, lifecycle facts and next steps equal working_round, case_facts and
    next_steps (the guards' own queries), verdict by verdict."""
    built = []
    real = services._facts_of

    def spy(*args, **kwargs):
        built.append(real(*args, **kwargs))
        return built[-1]

    with monkeypatch.context() as patch:
        patch.setattr(services, "_facts_of", spy)
        view = services.workspace(case_id, acting_user=caseworker)
    case = fresh(case_id)
    assert view.round == services.working_round(case)
    assert built == [services.case_facts(case, reason_given=True)]
    assert view.steps == services.next_steps(case, caseworker)


def test_workspace_steps_match_the_guards_at_every_stage(app, make_user, monkeypatch):
    """From assignment through issue, service, appeal and remittal into a second round."""
    officer, caseworker, supervisor = staff_of(make_user)
    case = register(officer, person("Haddad", "Rania"),
                    person("Haddad", "Omar", dob="2012-01-01", principal=False, relationship="child"))
    case_id = case.id
    assign(case_id, caseworker)
    steps_agree(case_id, caseworker, monkeypatch)
    interview(case_id, caseworker, record=False)
    steps_agree(case_id, caseworker, monkeypatch)
    to_under_review(case_id, caseworker)
    steps_agree(case_id, caseworker, monkeypatch)
    approve_all(case_id, supervisor)
    steps_agree(case_id, caseworker, monkeypatch)
    services.issue_decisions(case_id, acting_user=caseworker)
    steps_agree(case_id, caseworker, monkeypatch)
    services.record_service(case_id, acting_user=caseworker, served_on=TODAY, method="in_person")
    steps_agree(case_id, caseworker, monkeypatch)
    principal = db.session.scalar(select(Decision.id).where(Decision.case_id == case_id, Decision.status == "issued")
                                  .order_by(Decision.created_at))
    services.lodge_appeal(principal, acting_user=caseworker, lodged_on=TODAY)
    steps_agree(case_id, caseworker, monkeypatch)
    appeal_id = db.session.scalar(select(Appeal.id).where(Appeal.case_id == case_id))
    services.record_appeal_outcome(appeal_id, acting_user=caseworker, outcome="remitted", decided_on=TODAY)
    steps_agree(case_id, caseworker, monkeypatch)
    assign(case_id, caseworker, track=None)
    interview(case_id, caseworker)
    steps_agree(case_id, caseworker, monkeypatch)
    draft_all(case_id, caseworker, outcome="rejected_unfounded", reasons="Not credible.")
    steps_agree(case_id, caseworker, monkeypatch)
    assert services.working_round(fresh(case_id)) == 2
    # Round two to its own appeal: the first round's remitted appeal must not count in its facts.
    services.submit_for_review(case_id, acting_user=caseworker)
    approve_all(case_id, supervisor)
    services.issue_decisions(case_id, acting_user=caseworker)
    services.record_service(case_id, acting_user=caseworker, served_on=TODAY, method="in_person")
    second = db.session.scalar(select(Decision.id).where(Decision.case_id == case_id, Decision.round == 2,
                                                         Decision.status == "issued").order_by(Decision.created_at))
    services.lodge_appeal(second, acting_user=caseworker, lodged_on=TODAY)
    appeal_id = db.session.scalar(select(Appeal.id).where(Appeal.decision_id == second))
    services.record_appeal_outcome(appeal_id, acting_user=caseworker, outcome="upheld", decided_on=TODAY)
    steps_agree(case_id, caseworker, monkeypatch)


def test_workspace_reads_each_table_once(app, make_user):
    """No second read of decisions, interviews or omissions, and no separate query for the
    working round, whatever the case holds."""
    officer, caseworker, _supervisor = staff_of(make_user)
    case = register(officer, person("Haddad", "Rania"),
                    person("Haddad", "Omar", dob="2012-01-01", principal=False, relationship="child"))
    assign(case.id, caseworker)
    interview(case.id, caseworker)
    draft_all(case.id, caseworker)
    db.session.expire_all()
    with captured_statements() as seen:
        services.workspace(case.id, acting_user=caseworker)
    reads = [" ".join(s.split()) for s in seen if s.lstrip().upper().startswith("SELECT")]
    for table in ("decision", "interview", "interview_omission"):
        assert sum(f" FROM {table} " in f"{s} " for s in reads) == 1, (table, reads)
    assert not any("max(decision.round)" in s for s in reads), reads
