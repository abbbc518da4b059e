"""The re-triage dry run (a replay of the active ruleset, `flask triage retriage --dry-run`): it
reads every open case's newest triage record whatever the batch size, skips closed cases, uses
today's reference data, predicts exactly what the real re-triage then does, and writes nothing."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, update

from app.audit.models import AuditEvent
from app.extensions import db
from app.intake import services as intake
from app.intake.models import Case
from app.triage import services
from app.triage.models import TriageRecord

TODAY = date.today()
NATIONALITIES = ["PAK", "AFG", "SYR", "AFG", "PAK", "SYR", "AFG"]


def claim(nationality: str, number: int) -> dict:
    """An adult inland applicant, made 10 days ago and lodged 8 days ago."""
    def days_ago(days: int) -> str:
        return (TODAY - timedelta(days=days)).isoformat()
    return {"made_on": days_ago(10), "registered_on": days_ago(9), "lodged_on": days_ago(8),
            "persons": [{"principal": True, "identity": {"family_name": f"Applicant{number}", "given_names": "Test"},
                         "birth": {"date_of_birth": f"19{70 + number}-03-05", "sex": "F"},
                         "nationality": {"nationalities": [nationality]}}]}


@pytest.fixture
def supervisor(make_user):
    return make_user("supervisor")


@pytest.fixture
def caseload(make_user, supervisor):
    """Seven open cases (PAK 15%: accelerated, AFG 25%: regular, SYR 60%: prioritised), one more
    closed, and an AFG case whose caseworker recorded "only irrelevant issues" (accelerated: its
    newest triage record differs from its first)."""
    services.import_recognition_rates(
        "nationality,rate_pct,source,as_of\nPAK,15,Eurostat 2025,2026-03-01\nAFG,25,Eurostat 2025,2026-03-01\n"
        "SYR,60,Eurostat 2025,2026-03-01\n", acting_user=supervisor)
    officer, caseworker = make_user("registration_officer"), make_user("caseworker")
    cases = [intake.register_claim(claim(nationality, number), acting_user=officer,
                                   duplicate_decisions={0: "new"}).case
             for number, nationality in enumerate(NATIONALITIES)]
    services.set_assessment_facts(cases[1].id, {"only_irrelevant_issues": True}, acting_user=caseworker)
    closed = intake.register_claim(claim("PAK", 9), acting_user=officer, duplicate_decisions={0: "new"}).case
    db.session.execute(update(Case).where(Case.id == closed.id).values(status="closed"))
    db.session.commit()
    return [db.session.get(Case, case.id) for case in cases]


def dry_run(batch_size: int = 2000, acting_user=None) -> services.ReplayReport:
    return services.replay(services.active_ruleset().text, acting_user=acting_user, batch_size=batch_size)


def written() -> tuple:
    db.session.expire_all()
    return (db.session.scalar(select(func.count()).select_from(TriageRecord)),
            db.session.scalar(select(func.count()).select_from(AuditEvent)),
            sorted(db.session.execute(select(Case.id, Case.track, Case.statutory_deadline)).all()))


def comparable(report: services.ReplayReport) -> tuple:
    return (report.total, report.moved, report.overridden, report.from_registration, report.failed,
            report.matrix, {cell: sorted(refs) for cell, refs in report.examples.items()})


def test_dry_run_reads_the_newest_record_of_every_open_case_at_any_batch_size(caseload, supervisor):
    """Nothing has changed since triage, so nothing moves; the closed case is not read; the AFG
    case with an assessment stays accelerated (its newest record is read, not its first); batches
    of 1, 2 and 3 cases give exactly the report of one batch."""
    before = written()
    report = dry_run(acting_user=supervisor)
    assert written() == before
    assert report.matrix == {("accelerated", "accelerated"): 3, ("regular", "regular"): 2,
                             ("regular_prioritised", "regular_prioritised"): 2}
    assert (report.total, report.moved, report.failed, report.from_registration) == (7, 0, 0, 0)
    assert caseload[1].track == "accelerated"
    for batch_size in (1, 2, 3):
        assert comparable(dry_run(batch_size)) == comparable(report)


def test_newest_record_is_chosen_by_time_then_id_like_the_former_query(caseload):
    """Two records with the same timestamp: the one with the greater id counts (ORDER BY
    created_at DESC, id DESC), whichever was written last."""
    first, newest = db.session.scalars(select(TriageRecord).where(TriageRecord.case_id == caseload[1].id)
                                       .order_by(TriageRecord.created_at)).all()
    db.session.execute(update(TriageRecord).where(TriageRecord.id == newest.id).values(created_at=first.created_at))
    db.session.commit()
    chosen = max(first, newest, key=lambda record: record.id)
    expected = "accelerated" if chosen.id == newest.id else "regular"  # the first record predates the assessment
    report = dry_run()
    assert report.matrix.get(("accelerated", expected)) == (1 if expected == "regular" else 3)
    assert report.moved == (1 if expected == "regular" else 0)


def test_dry_run_predicts_the_re_triage_and_the_command_writes_nothing(app, caseload, supervisor):
    """New reference data (AFG now 15%): the dry run command prints the two AFG cases still on
    the regular track moving to accelerated and writes nothing; the real re-triage then moves
    exactly those cases."""
    services.import_recognition_rates("nationality,rate_pct,source,as_of\nAFG,15,Eurostat 2026,2026-09-01\n",
                                      acting_user=supervisor)
    moving = sorted(case.reference for case in caseload if case.track == "regular" and
                    case.principal_nationality == "AFG")
    assert len(moving) == 2
    before = written()
    result = app.test_cli_runner().invoke(args=["triage", "retriage", "--dry-run", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert written() == before
    assert "re-triage dry run with the active ruleset eu-apr-2026@2026.1.0 (nothing written)" in result.output
    assert "7 open cases: 2 would change track, 5 would not (0 kept by an override); 0 unreadable" in result.output
    assert f"regular -> accelerated: 2  {', '.join(moving)}" in result.output

    report = services.retriage_open_cases(acting_user=supervisor)
    assert report.moved == 2
    db.session.expire_all()
    assert sorted(c.reference for c in db.session.scalars(select(Case).where(Case.id.in_([c.id for c in caseload])))
                  if c.track == "accelerated" and c.principal_nationality == "AFG") == sorted(
        [*moving, caseload[1].reference])


def test_dry_run_needs_the_reference_data_permission(app, caseload, make_user):
    """A registration officer may not run it (the command names the missing permission)."""
    make_user("registration_officer", username="clerk")
    result = app.test_cli_runner().invoke(args=["triage", "retriage", "--dry-run", "--as", "clerk"])
    assert result.exit_code == 1 and "permission" in result.output
