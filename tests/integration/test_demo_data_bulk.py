"""`generate_caseload` in bulk: the caseload's figures match shared/domain/STATISTICS.md within
sampling tolerances, every stored value reads back through the application, the audit chain holds
when another writer appends between batches, and the fast paths refuse to write what the
application could not read or verify."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from app import demo_data
from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.audit.services import record
from app.audit.verify import verify_audit_trail
from app.decisions.models import Appeal, Decision, Interview
from app.demo_data import ensure_demo_users, generate_caseload
from app.extensions import db
from app.intake.models import Case, Person
from app.triage.models import TriageRecord

NOW = datetime(2026, 11, 2, 16, 0, tzinfo=UTC)
CASES = 1500
GRANTS = ("refugee_status", "subsidiary_protection", "humanitarian_status")


def generate(count: int, seed: int = 21, **options):
    ensure_demo_users()
    return generate_caseload(count, seed=seed, now=NOW, **options)


def share(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


@pytest.fixture
def caseload(app):
    """One caseload of CASES cases, generated in several batches with the forked producer."""
    return generate(CASES, batch_size=400, pipeline=True)


def test_people_match_the_statistics(caseload):
    """About a quarter of the applicants are children, 34-38% men aged 18-34, about 4%
    unaccompanied minors (about 85% boys, two thirds aged 16-17), Syrians about 16% of the
    principal applicants (STATISTICS.md, "People" and "Nationalities"), within sampling error."""
    people = db.session.execute(select(Person.stat_sex, Person.stat_age_group, Person.minor_at_application,
                                       Person.is_principal, Person.nationalities)).all()
    total = len(people)
    assert total == caseload.persons and 1.3 * CASES < total < 1.7 * CASES
    children = sum(p.stat_age_group in ("Y_LT14", "Y14-17") for p in people)
    assert 20 <= share(children, total) <= 29
    men_18_34 = sum(p.stat_sex == "M" and p.stat_age_group == "Y18-34" for p in people)
    assert 32 <= share(men_18_34, total) <= 40
    principals = [p for p in people if p.is_principal]
    assert len(principals) == CASES
    assert 12 <= share(sum(p.nationalities[0] == "SYR" for p in principals), CASES) <= 20
    minors = db.session.scalars(select(Person).where(Person.minor_at_application.is_(True))).all()
    alone = [p for p in minors if p.family["unaccompanied_minor"]]
    assert 2.5 <= share(len(alone), total) <= 6
    assert share(sum(p.stat_sex == "M" for p in alone), len(alone)) >= 70
    assert 50 <= share(sum(_age_at_claim(p) >= 16 for p in alone), len(alone)) <= 85


def _age_at_claim(person: Person) -> int:
    case = db.session.get(Case, person.case_id)
    born = datetime.fromisoformat(person.birth["date_of_birth"]).date()
    made = case.made_on
    return made.year - born.year - ((made.month, made.day) < (born.month, born.day))


def test_outcomes_follow_recognition_rates_and_appeals(caseload):
    """Issued outcomes follow the nationality's recognition rate (Syrians mostly protected,
    Venezuelans mostly humanitarian status, Bangladeshis mostly rejected); refugee status and
    subsidiary protection are the bulk of the grants; about 27% of decided appeals are
    overturned; a good share of the cases is still pending at first instance."""
    rows = db.session.execute(select(Case.principal_nationality, Decision.outcome).join(
        Decision, Decision.case_id == Case.id).where(Decision.status == "issued")).all()
    by_nationality: dict[str, Counter] = {}
    for nationality, outcome in rows:
        by_nationality.setdefault(nationality, Counter())[outcome] += 1

    def granted(code: str) -> float:
        counts = by_nationality[code]
        return share(sum(counts[g] for g in GRANTS), sum(counts.values()))
    assert granted("SYR") >= 70
    assert granted("BGD") <= 25
    venezuela = by_nationality["VEN"]
    assert venezuela["humanitarian_status"] > venezuela["refugee_status"] + venezuela["subsidiary_protection"]
    grants = Counter(outcome for _, outcome in rows if outcome in GRANTS)
    assert grants["refugee_status"] > grants["humanitarian_status"]
    assert grants["subsidiary_protection"] > grants["humanitarian_status"]
    appeals = Counter(db.session.scalars(select(Appeal.outcome).where(Appeal.outcome.is_not(None))))
    assert sum(appeals.values()) > 20
    assert 12 <= share(appeals["overturned"], sum(appeals.values())) <= 42
    pending = sum(n for status, n in caseload.statuses.items()
                  if status in ("registered", "triaged", "assigned", "interview_scheduled", "interviewed",
                                "decision_drafted", "under_review"))
    assert 10 <= share(pending, CASES) <= 45


def test_the_report_counts_what_was_stored(caseload):
    """The report's counts are the table's: cases, people, decisions, audit events (besides the
    closing BULK_IMPORT), tracks and statuses; events per case are those of the services the
    steps stand for (registration, triage, assignment, interview, decision steps per person,
    transitions), between 10 and 25 on average."""
    assert db.session.scalar(select(func.count()).select_from(Case)) == caseload.cases == CASES
    assert db.session.scalar(select(func.count()).select_from(Decision)) == caseload.decisions
    generated = db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.subject_type == "case"))
    assert generated == caseload.events
    assert 10 <= caseload.events / CASES <= 25
    assert Counter(dict(caseload.tracks)) == Counter(db.session.scalars(select(Case.track)))
    assert Counter(dict(caseload.statuses)) == Counter(db.session.scalars(select(Case.status)))
    assert caseload.rechained == 0


def test_every_encrypted_value_and_event_reads_back(caseload):
    """Every generated audit event's details decrypt through the model (bound to its sequence
    number) and name the case's own reference at registration; triage records' facts and
    interview notes decrypt too; the chain verifies."""
    references = dict(db.session.execute(select(Case.id, Case.reference)).all())
    seen = Counter()
    for event in db.session.scalars(select(AuditEvent).where(AuditEvent.subject_type == "case")):
        details = event.details
        seen[event.code] += 1
        if event.code == int(EventCode.CASE_REGISTERED):
            assert details["reference"] == references[event.subject_id]
    assert seen[int(EventCode.CASE_REGISTERED)] == CASES
    record_ = db.session.scalars(select(TriageRecord).limit(1)).one()
    assert record_.facts["nationality"] and record_.grounds["grounds"] is not None
    notes = db.session.scalars(select(Interview).where(Interview.status == "recorded").limit(5)).all()
    assert notes and all(n.notes is None or n.notes.startswith("Interview held") for n in notes)
    assert verify_audit_trail().ok


def test_no_interviewer_is_booked_twice_at_once(caseload):
    """Interviews of one interviewer never overlap, across batches as within one."""
    by_interviewer: dict[int, list] = {}
    for interviewer, starts, ends in db.session.execute(
            select(Interview.interviewer_id, Interview.starts_at, Interview.ends_at)):
        by_interviewer.setdefault(interviewer, []).append((starts, ends))
    for slots in by_interviewer.values():
        slots.sort()
        assert all(earlier[1] <= later[0] for earlier, later in zip(slots, slots[1:], strict=False))


def test_another_writer_between_batches_keeps_one_chain(app):
    """When someone appends audit events while the generator runs (here: after each batch),
    the next batch is chained after them instead of the head it expected: the chain verifies,
    and the report says how many batches were chained again."""

    def meanwhile(_cases: int) -> None:
        record(EventCode.SETTINGS_CHANGED, actor=None, subject=("test", "meanwhile"), details={"n": 1})
        db.session.commit()

    report = generate(300, seed=5, batch_size=100, on_batch=meanwhile, pipeline=False)
    assert report.rechained == 2  # the batches after the first two events; the last one has none after it
    assert report.cases == 300
    assert verify_audit_trail().ok
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.subject_type == "test")) == 3


def test_the_same_seed_gives_the_same_caseload_in_any_batch_size(app):
    """Batches and the forked producer change how the work is cut, not what is generated: one
    seed gives the same people, references, tracks, statuses, outcomes and event codes with
    batches of 1000 in one process as with batches of 70 prepared in a forked process."""

    def snapshot(case_ids: set[str]):
        cases = db.session.scalars(select(Case).where(Case.id.in_(case_ids))).all()
        people = db.session.scalars(select(Person).where(Person.case_id.in_(case_ids))).all()
        outcomes = Counter(db.session.scalars(select(Decision.outcome).where(Decision.case_id.in_(case_ids))))
        events = Counter(db.session.scalars(select(AuditEvent.code).where(AuditEvent.subject_id.in_(case_ids))))
        return (sorted((c.reference[-6:], c.track, c.status, c.registered_on, c.updated_at) for c in cases),
                sorted((p.identity["family_name"], p.birth["date_of_birth"], p.stat_sex) for p in people),
                outcomes, events)

    def run(**options) -> set[str]:
        before = set(db.session.scalars(select(Case.id)))
        generate(210, seed=99, **options)
        return set(db.session.scalars(select(Case.id))) - before

    first = snapshot(run(batch_size=1000, pipeline=False))
    # Free the references for the second run (a stored one would be drawn again, at random).
    db.session.execute(Case.__table__.update().values(reference="x" + Case.reference, updated_at=Case.updated_at))
    db.session.commit()
    second = snapshot(run(batch_size=70, pipeline=True))
    assert first == second
    assert verify_audit_trail().ok


def test_a_chain_encoding_it_does_not_match_stops_generation(app, monkeypatch):
    """If app/audit/chain.py hashed differently from the generator's bulk hashing, the first
    batch stops with an error before anything of it is stored, instead of writing a chain that
    does not verify."""
    monkeypatch.setattr(demo_data, "_DOMAIN", b"another-encoding")
    with pytest.raises(RuntimeError, match="audit hash"):
        generate(20, seed=3, pipeline=False)
    assert db.session.scalar(select(func.count()).select_from(Case)) == 0
    assert verify_audit_trail().ok


def test_the_reference_filter_never_misses_a_repeat():
    """The fixed-size filter of drawn references answers False for every repeat, True the first
    time for nearly all new ones (a false alarm only costs a redraw)."""
    seen = demo_data._SeenFilter()
    drawn = [f"HQ-2026-{n:06d}" for n in range(50_000)]
    fresh = sum(seen.add(value) for value in drawn)
    assert fresh >= 0.99 * len(drawn)
    assert not any(seen.add(value) for value in drawn)
