"""`flask demo generate`: a realistic caseload written in bulk that the application reads like
its own (decryption, blind indexes, duplicate keys, triage, lifecycle, audit chain)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.audit.verify import verify_audit_trail
from app.auth.models import Office, User
from app.decisions import lifecycle
from app.decisions.models import Decision, DecisionReview
from app.demo_data import GenerationRefused, ensure_demo_users, generate_caseload
from app.extensions import db
from app.intake import services as intake
from app.intake.models import Case, Person, PersonMatchKey
from app.intake.schemas import parse_registration
from app.reports import queries
from app.triage import services as triage
from app.triage.models import RecognitionRate, TriageRecord

CASES = 200
NOW = datetime(2026, 11, 2, 16, 0, tzinfo=UTC)


def generate(count: int = CASES, seed: int = 7, **options):
    ensure_demo_users()
    return generate_caseload(count, seed=seed, now=options.pop("now", NOW), **options)


def run(app, *args):
    return app.test_cli_runner().invoke(args=["demo", "generate", *args])


def latest_records() -> dict[str, TriageRecord]:
    records = db.session.scalars(select(TriageRecord).order_by(TriageRecord.created_at)).all()
    return {r.case_id: r for r in records}


def test_the_command_creates_the_cases_asked_for(app):
    """`flask demo generate --cases 200` creates exactly 200 cases with people, decisions and the
    demo accounts, and imports the shipped recognition rates into the empty table."""
    result = run(app, "--cases", str(CASES), "--seed", "3")
    assert result.exit_code == 0, result.output
    assert "200 cases" in result.output and "seed 3" in result.output
    assert db.session.scalar(select(func.count()).select_from(Case)) == CASES
    assert db.session.scalar(select(func.count()).select_from(Person)) > CASES
    assert db.session.scalar(select(func.count()).select_from(Decision)) > 0
    assert db.session.scalar(select(User).where(User.username == "caseworker")) is not None
    assert {r.nationality: float(r.rate_pct) for r in db.session.scalars(select(RecognitionRate))}["SYR"] == 90.0
    offices = {o.id: o.code for o in db.session.scalars(select(Office))}
    counts = Counter(offices[o] for o in db.session.scalars(select(Case.office_id)))
    assert set(counts) == {"HQ", "NORTH"} and counts["HQ"] > counts["NORTH"]


def test_generated_people_decrypt_through_the_models_and_are_found_by_blind_index(app):
    """A generated person's identity section reads back as a dict with names; searching by family
    name and date of birth (blind indexes) finds them; their match keys find them as a duplicate."""
    generate()
    person = db.session.scalars(select(Person).where(Person.is_principal.is_(True),
                                                     Person.family_name_bidx.is_not(None))
                                .order_by(Person.id).limit(1)).one()
    identity, birth = person.identity, person.birth
    assert isinstance(identity, dict) and identity["family_name"] and identity["given_names"]
    assert birth["sex"] in ("F", "M", "X") and birth["date_of_birth"]
    case = db.session.get(Case, person.case_id)
    registrar = db.session.scalars(select(User).where(User.office_id == case.office_id,
                                                      User.role == "registration_officer")).first()
    hits = intake.search(intake.SearchCriteria(family_name=identity["family_name"].upper(),
                                               date_of_birth=date.fromisoformat(birth["date_of_birth"])),
                         acting_user=registrar)
    assert person.id in {hit.person_id for hit in hits}
    probe = parse_registration(intake.registration_payload(case)).persons[person.position]
    assert person.id in {c.person_id for c in intake.find_duplicate_candidates(probe)}


def test_generated_cases_are_what_registration_would_have_stored(app):
    """Every stored case reads back as a valid registration whose sections, derived case fields,
    blind indexes and match keys are exactly what the registration service computes from it."""
    generate(60)
    for case in db.session.scalars(select(Case).order_by(Case.reference)):
        data = parse_registration(intake.registration_payload(case))
        derived = SimpleNamespace()
        intake._apply_case_fields(derived, data)
        for name in ("location_context", "principal_nationality", "registration_delay_days", "late_registration",
                     "is_subsequent_application", "special_needs_assessment_due", "representative_due"):
            assert getattr(case, name) == getattr(derived, name), name
        assert case.arrival == derived.arrival
        for person, given in zip(case.persons, data.persons, strict=True):
            dumped = given.model_dump(mode="json")
            for section in ("identity", "birth", "language", "contact", "documents", "history", "family",
                            "biometrics", "special_needs", "claim", "security"):
                assert getattr(person, section) == dumped[section], section
            assert person.family_name_bidx == (intake.crypto.blind_index(given.identity.family_name,
                                                                           intake.BIDX_FAMILY_NAME))
            stored_keys = set(db.session.scalars(select(PersonMatchKey.key)
                                                 .where(PersonMatchKey.person_id == person.id)))
            identity = intake.identity_for_matching(given, intake._person_nationality(given))
            expected = intake._match_key_tokens(identity)
            assert stored_keys == set(expected)


def test_triage_outcomes_are_plausible_and_are_the_engines_own(app):
    """No Syrian principal gets the low-recognition-rate ground while most Venezuelan,
    Bangladeshi and Pakistani adults do; each case's track is what the engine computes from its
    latest record's stored facts on that day, and those facts are what the case gives today."""
    generate()
    state = triage.current_state()
    records = latest_records()
    grounds_by_nationality: dict[str, Counter] = {}
    for case in db.session.scalars(select(Case)):
        record = records[case.id]
        grounds, _rules = triage.record_grounds(record)
        codes = {g["code"] for g in grounds}
        grounds_by_nationality.setdefault(case.principal_nationality, Counter()).update(
            ["low_rate" if "low_recognition_rate" in codes else "other"])
        context = {**state.context, "decision_date": record.created_at.date()}
        result = state.active.ruleset.evaluate(record.facts, context)
        assert result.track == record.track == case.track
        assert triage.facts_of_case(case, state) == record.facts
    assert grounds_by_nationality["SYR"]["low_rate"] == 0 and grounds_by_nationality["SYR"]["other"] > 10
    low = sum((grounds_by_nationality.get(code, Counter()) for code in ("VEN", "BGD", "PAK")), Counter())
    assert low["low_rate"] > low["other"]
    tracks = Counter(db.session.scalars(select(Case.track)))
    assert {"accelerated", "regular_prioritised", "regular"} <= set(tracks)


def test_the_work_follows_the_lifecycle_with_four_eyes(app):
    """Every recorded status change is a step of the lifecycle table; every issued decision was
    approved by a supervisor who neither drafted nor edited it; the reports show a backlog,
    decisions, times to decision and deadline compliance."""
    generate()
    steps = set(lifecycle.TRANSITION_TABLE)
    transitions = db.session.scalars(select(AuditEvent).where(AuditEvent.code == int(EventCode.CASE_TRANSITION)))
    seen = Counter()
    for event in transitions:
        assert (event.details["from"], event.details["to"]) in steps
        seen[event.details["to"]] += 1
    assert seen["closed"] and seen["decision_issued"] and seen["interviewed"]
    for decision in db.session.scalars(select(Decision).where(Decision.status == "issued")):
        approver = db.session.get(User, decision.approved_by_id)
        assert approver.role == "supervisor" and approver.id not in (decision.drafted_by_id, decision.last_edited_by_id)
        assert decision.reasons
    assert db.session.scalar(select(func.count()).select_from(DecisionReview).where(DecisionReview.action == "approve"))
    f = queries.ReportFilters(date_from=NOW.date() - timedelta(days=730), date_to=NOW.date(), as_of=NOW.date())
    assert sum(row.cases for row in queries.backlog(f)) > 10
    times = queries.decision_times(f)
    assert sum(row.decisions for row in times) > 20 and any(row.median_days for row in times)
    assert sum(row.with_deadline for row in queries.within_limit(f)) > 0
    assert sum(week.registered for week in queries.weekly_flow(f)) == CASES


def test_the_audit_chain_verifies_after_generation(app):
    """The trail verifies after generation (twice, so the second run chains onto the first); the
    generated events decrypt through the model and cover registration, triage and decisions."""
    report = generate(120, seed=1)
    generate(80, seed=2)
    result = verify_audit_trail()
    assert result.ok, result.summary()
    codes = Counter(db.session.scalars(select(AuditEvent.code)))
    assert codes[int(EventCode.CASE_REGISTERED)] == 200
    assert codes[int(EventCode.CASE_TRIAGED)] >= 200 and codes[int(EventCode.DECISION_ISSUED)] > 0
    assert codes[int(EventCode.BULK_IMPORT)] == 2
    registered = db.session.scalars(select(AuditEvent).where(AuditEvent.code == int(EventCode.CASE_REGISTERED))
                                    .order_by(AuditEvent.id).limit(1)).one()
    case = db.session.get(Case, registered.subject_id)
    assert registered.details["reference"] == case.reference
    assert report.events > 10 * 120


def test_same_seed_gives_the_same_plaintext(app):
    """Two runs with one seed give the same people (nationalities, birth years, sexes), tracks and
    statuses, whether or not the second is prepared in a forked process; another seed differs."""

    def plaintext(case_ids):
        people = db.session.scalars(select(Person).where(Person.case_id.in_(case_ids)))
        cases = db.session.scalars(select(Case).where(Case.id.in_(case_ids)))
        return (Counter((p.nationalities[0], p.birth["date_of_birth"][:4], p.stat_sex) for p in people),
                Counter((c.track, c.status, c.registered_on) for c in cases))

    def run_once(seed, **options):
        before = set(db.session.scalars(select(Case.id)))
        generate(100, seed=seed, **options)
        return set(db.session.scalars(select(Case.id))) - before

    first = plaintext(run_once(11))
    second = plaintext(run_once(11, batch_size=50, pipeline=True))
    other = plaintext(run_once(12))
    assert first == second
    assert first != other
    assert verify_audit_trail().ok


def test_if_empty_does_nothing_on_a_database_with_cases(app):
    """`--if-empty` on a database that holds cases generates nothing and says so; on an empty one
    it generates."""
    first = run(app, "--cases", "30", "--seed", "5", "--if-empty")
    assert first.exit_code == 0, first.output
    assert db.session.scalar(select(func.count()).select_from(Case)) == 30
    events = db.session.scalar(select(func.count()).select_from(AuditEvent))
    result = run(app, "--cases", "30", "--seed", "5", "--if-empty")
    assert result.exit_code == 0 and "nothing generated" in result.output, result.output
    assert db.session.scalar(select(func.count()).select_from(Case)) == 30
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == events


def test_refused_outside_development_and_testing(app_factory):
    """The command and the function refuse in any other environment and write nothing."""
    production_like = app_factory(ENVIRONMENT="staging")
    with production_like.app_context():
        result = production_like.test_cli_runner().invoke(args=["demo", "generate", "--cases", "5"])
        assert result.exit_code != 0 and "only in development" in result.output
        with pytest.raises(GenerationRefused):
            generate_caseload(5, seed=1)
        assert db.session.scalar(select(func.count()).select_from(Case)) == 0


def test_an_unknown_office_is_refused(app):
    """--office names existing offices only; nothing is generated otherwise."""
    result = run(app, "--cases", "5", "--office", "NOWHERE")
    assert result.exit_code != 0 and "NOWHERE" in result.output
    assert db.session.scalar(select(func.count()).select_from(Case)) == 0


def test_the_application_pages_show_generated_cases(app, signed_in):
    """Generated cases open in the application like registered ones: case page, triage panel,
    decision workspace, queue and my cases for a caseworker; reports for a supervisor; the audit
    viewer for an auditor."""
    caseworker_browser, _ = signed_in("caseworker")
    generate()
    hq = db.session.scalar(select(Office).where(Office.code == "HQ"))
    decided = db.session.scalars(select(Case).where(Case.office_id == hq.id, Case.status == "closed")).first()
    pending = db.session.scalars(select(Case).where(Case.office_id == hq.id,
                                                    Case.status.in_(lifecycle.OPEN_STATUSES))).first()
    for case in (decided, pending):
        for path in (f"/cases/{case.id}", f"/triage/case/{case.id}", f"/decisions/case/{case.id}"):
            response = caseworker_browser.get(path)
            assert response.status_code == 200, path
        assert case.reference in caseworker_browser.get(f"/cases/{case.id}").get_data(as_text=True)
    for path in ("/triage/queue", "/triage/my-cases"):
        assert caseworker_browser.get(path).status_code == 200, path
    supervisor_browser, _ = signed_in("supervisor")
    assert supervisor_browser.get("/reports/").status_code == 200
    auditor_browser, _ = signed_in("auditor")
    assert auditor_browser.get("/audit/").status_code == 200


def test_the_other_shipped_ruleset_works_too(app_factory):
    """With TRIAGE_RULESET=unhcr-dcp the caseload is triaged by that ruleset, on its own tracks."""
    dcp = app_factory(TRIAGE_RULESET="unhcr-dcp")
    with dcp.app_context():
        generate(60)
        state = triage.current_state()
        assert state.active.label.startswith("unhcr-dcp@")
        codes = {t.code for t in state.active.ruleset.tracks}
        assert set(db.session.scalars(select(Case.track))) <= codes
        assert verify_audit_trail().ok
