"""The batched registration path of the bulk import (services.register_claims): the same rows,
encryption, keys, triage and audit as registering one claim at a time, refused lines leave
nothing behind, duplicates are found in the database and within the batch, and a batch that
fails in the database is rolled back whole and retried line by line."""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, update

from app import crypto
from app.audit.codes import EventCode
from app.audit.models import AuditChainHead, AuditEvent
from app.audit.verify import verify_audit_trail
from app.extensions import db
from app.intake import importer, services
from app.intake.models import Case, DocumentNumberIndex, Person, PersonMatchKey
from app.triage.models import TriageRecord

TODAY = date.today()


def person(family: str, given: str, dob: str, *, principal: bool = False, relationship: str | None = None,
           nationality: str = "SYR", sex: str = "M", **sections) -> dict:
    return {"principal": principal, "relationship": relationship,
            "identity": {"family_name": family, "given_names": given},
            "birth": {"date_of_birth": dob, "sex": sex},
            "nationality": {"nationalities": [nationality]}, **sections}


def claim(family: str = "Haddad", given: str = "Omar", dob: str = "1985-04-12", *, nationality: str = "SYR",
          border: bool = False, family_members: bool = False, document: str | None = "N1234567") -> dict:
    made = TODAY - timedelta(days=5)
    principal = person(family, given, dob, principal=True, nationality=nationality,
                       documents=[{"type": "passport", "number": document, "issuing_country": nationality}]
                       if document else [],
                       special_needs={"vulnerabilities": ["serious_illness"]},
                       claim={"grounds": ["religion"], "statement": "Statement taken at registration."})
    persons = [principal]
    if family_members:
        persons += [person(family, "Leila", "1988-09-30", relationship="spouse", nationality=nationality, sex="F"),
                    person(family, "Sami", (TODAY - timedelta(days=9 * 365)).isoformat(), relationship="child",
                           nationality=nationality)]
    return {"made_on": made.isoformat(), "registered_on": (made + timedelta(days=1)).isoformat(),
            "made_place": "Airport" if border else "Reception centre",
            "arrival": {"location_context": "border_crossing_point" if border else "inland",
                        "authorised_to_enter": False if border else None,
                        "fulfils_entry_conditions": False if border else None},
            "persons": persons}


@pytest.fixture
def officer(make_user):
    return make_user("registration_officer", username="officer")


def case_rows(case_id: str) -> dict:
    case = db.session.get(Case, case_id)
    people = sorted(case.persons, key=lambda p: p.position)
    triage = db.session.scalars(select(TriageRecord).where(TriageRecord.case_id == case_id)).one()
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.subject_id == case_id)
                                .order_by(AuditEvent.id)).all()
    skip_case = {"id", "reference", "created_at", "updated_at", "triaged_at"}
    skip_person = {"id", "case_id", "created_at"}
    return {
        "case": {c.key: getattr(case, c.key) for c in Case.__mapper__.column_attrs
                 if c.key not in skip_case and not c.key.endswith("_ciphertext")} | {"arrival": case.arrival,
                                                                                     "assessment": case.assessment},
        "people": [{c.key: getattr(p, c.key) for c in Person.__mapper__.column_attrs
                    if c.key not in skip_person and not c.key.endswith("_ciphertext")}
                   | {name: getattr(p, name) for name in ("relationship_to_principal", *services.PERSON_SECTIONS)}
                   for p in people],
        "match_keys": [sorted(bytes(k) for k in db.session.scalars(
            select(PersonMatchKey.key).where(PersonMatchKey.person_id == p.id))) for p in people],
        "documents": [sorted(bytes(k) for k in db.session.scalars(
            select(DocumentNumberIndex.number_bidx).where(DocumentNumberIndex.person_id == p.id))) for p in people],
        "triage": {"ruleset_label": triage.ruleset_label, "track": triage.track, "deadline": triage.deadline,
                   "deadline_description": triage.deadline_description, "trigger": triage.trigger,
                   "grounds": triage.grounds, "facts": triage.facts, "created_by_id": triage.created_by_id},
        "events": [(e.code, e.actor_id, e.actor_role, e.subject_type, e.outcome,
                    {k: v for k, v in (e.details or {}).items() if k not in ("reference", "record")})
                   for e in events],
    }


@pytest.mark.parametrize("shape", [
    {}, {"border": True}, {"family_members": True}, {"family_members": True, "border": True, "document": None}])
@pytest.mark.parametrize("on_duplicate", ["skip", "new"])
def test_batch_stores_what_one_at_a_time_stores(app, officer, shape, on_duplicate):
    """The same claim registered alone (register_claim) and through a batch gives the same case,
    people (decrypted), match keys, document index, triage record and audit events."""
    # first use stores the shipped ruleset (in a savepoint, so that registration's case is
    # written before triage and updated by it): not the situation compared here
    services.register_claim(claim("Okafor", "Chidi", "1990-01-02", nationality="NGA"), acting_user=officer)
    payload = claim(**shape)
    decisions = dict.fromkeys(range(len(payload["persons"])), "new") if on_duplicate == "new" else None
    single = services.register_claim(copy.deepcopy(payload), acting_user=officer, duplicate_decisions=decisions,
                                     legacy_id="OLD-1")
    single_id = single.case.id
    expected = case_rows(single_id)
    # the stored claim would be a duplicate of itself: remove it (as a test may) before the batch
    db.session.execute(update(Case).where(Case.id == single_id).values(office_id=officer.office_id))
    db.session.execute(PersonMatchKey.__table__.delete())
    db.session.commit()
    [outcome] = services.register_claims([copy.deepcopy(payload)], acting_user=officer, on_duplicate=on_duplicate,
                                         legacy_ids=["OLD-1"])
    assert outcome.accepted and outcome.reference
    batch_case = db.session.scalars(select(Case).where(Case.reference == outcome.reference)).one()
    got = case_rows(batch_case.id)
    for part in expected:
        assert got[part] == expected[part], part
    registered = db.session.scalars(select(AuditEvent).where(
        AuditEvent.subject_id == batch_case.id, AuditEvent.code == EventCode.CASE_REGISTERED)).one()
    assert registered.details["reference"] == outcome.reference
    assert registered.details["legacy_id"] == "OLD-1"
    triaged = db.session.scalars(select(AuditEvent).where(
        AuditEvent.subject_id == batch_case.id, AuditEvent.code == EventCode.CASE_TRIAGED)).one()
    assert triaged.details["record"] == db.session.scalars(
        select(TriageRecord.id).where(TriageRecord.case_id == batch_case.id)).one()
    assert verify_audit_trail().ok


def test_batch_values_are_bound_to_their_rows(app, officer):
    """Every section written in bulk is encrypted with its own row as associated data: moved to
    another person it no longer decrypts."""
    outcomes = services.register_claims([claim(), claim("Okafor", "Chidi", "1990-01-02", nationality="NGA")],
                                        acting_user=officer)
    assert all(o.accepted for o in outcomes)
    first, second = db.session.scalars(select(Person).order_by(Person.case_id)).all()
    raw = db.session.execute(select(Person.__table__.c.identity).where(Person.id == first.id)).scalar_one()
    assert b"Haddad" not in raw and b"Okafor" not in raw
    db.session.execute(update(Person.__table__).where(Person.id == second.id).values(identity=raw))
    db.session.commit()
    db.session.expire_all()
    with pytest.raises(crypto.DecryptionError):
        _ = db.session.get(Person, second.id).identity


def test_refused_lines_leave_nothing_and_the_rest_is_kept(app, officer):
    """In one batch, a refused claim writes no row of any kind while its neighbours are stored
    with exactly their own people, keys, triage records and events."""
    bad = claim("Tesfay", "Abeba", "1992-03-04", nationality="ERI")
    bad["persons"][0]["birth"]["sex"] = "Q"
    later = claim("Nowak", "Anna", "1991-05-06", nationality="UKR")
    later["registered_on"] = (TODAY - timedelta(days=30)).isoformat()  # before it was made
    payloads = [claim(family_members=True), bad, claim("Okafor", "Chidi", "1990-01-02", nationality="NGA"), later]
    outcomes = services.register_claims(payloads, acting_user=officer)
    assert [o.accepted for o in outcomes] == [True, False, True, False]
    assert "persons.0.birth.sex" in outcomes[1].errors
    assert "registered_on" in outcomes[3].errors
    assert db.session.scalar(select(func.count()).select_from(Case)) == 2
    assert db.session.scalar(select(func.count()).select_from(Person)) == 4
    assert db.session.scalar(select(func.count()).select_from(TriageRecord)) == 2
    people = set(db.session.scalars(select(Person.id)))
    assert set(db.session.scalars(select(PersonMatchKey.person_id).distinct())) == people
    codes = db.session.scalars(select(AuditEvent.code).order_by(AuditEvent.id)).all()
    assert codes.count(EventCode.CASE_REGISTERED) == 2 and codes.count(EventCode.CASE_TRIAGED) == 2
    assert db.session.get(AuditChainHead, 1).seq == len(codes)
    assert verify_audit_trail().ok


def test_duplicates_found_within_the_batch_and_in_the_database(app, officer):
    """A transliteration variant of a person registered earlier, or of a person on an earlier
    line of the same batch, is held back and named by reference or line."""
    [stored] = services.register_claims([claim("Al-Hassan", "Mohammed", "1980-07-01")], acting_user=officer)
    payloads = [claim("Al Hasan", "Muhammad", "1980-07-01"),                     # the stored one
                claim("Abdelrahman", "Youssef", "1975-02-03", nationality="EGY"),
                claim("Abdel Rahman", "Yousef", "1975-02-03", nationality="EGY"),  # the line before
                claim("Okafor", "Chidi", "1990-01-02", nationality="NGA")]
    outcomes = services.register_claims(payloads, acting_user=officer, labels=["line 1", "line 2", "line 3", "line 4"])
    assert [o.accepted for o in outcomes] == [False, True, False, True]
    assert [c.case_reference for c in outcomes[0].duplicates[0]] == [stored.reference]
    assert [c.case_reference for c in outcomes[2].duplicates[0]] == ["line 2"]
    assert db.session.scalar(select(func.count()).select_from(Case)) == 3


def test_dry_run_checks_everything_and_writes_nothing(app, officer):
    """A dry run reports the same refusals and duplicates as a real run and stores nothing."""
    head = db.session.get(AuditChainHead, 1).seq
    payloads = [claim(), claim("Haddad", "Omar", "1985-04-12"), {"persons": []}]
    outcomes = services.register_claims(payloads, acting_user=officer, dry_run=True)
    assert [o.accepted for o in outcomes] == [True, False, False]
    assert outcomes[1].duplicates and outcomes[2].errors
    assert db.session.scalar(select(func.count()).select_from(Case)) == 0
    assert db.session.get(AuditChainHead, 1).seq == head


def test_failing_batch_is_rolled_back_whole_and_retried_line_by_line(app, officer, monkeypatch):
    """A batch whose insert fails (here: every reference already taken) stores nothing of
    itself; its lines are then registered one by one and every line is imported once."""
    [first] = services.register_claims([claim("Okafor", "Chidi", "1990-01-02", nationality="NGA")],
                                       acting_user=officer)

    def taken_references(office, items):
        for item in items:
            item.reference = first.reference
    monkeypatch.setattr(services, "_new_references", taken_references)
    lines = [json.dumps(claim()), json.dumps(claim("Nowak", "Anna", "1991-05-06", nationality="UKR"))]
    report = importer.import_claims(lines, acting_user=officer)
    assert (report.imported, report.rejected) == (2, 0)
    assert db.session.scalar(select(func.count()).select_from(Case)) == 3
    assert db.session.scalar(select(func.count()).select_from(TriageRecord)) == 3
    assert verify_audit_trail().ok


def test_batches_and_single_registrations_share_one_chain(app, officer):
    """Batches of several sizes interleaved with single registrations leave one gap-free chain
    that verifies, and imported people are found by the document search."""
    names = ["Haddad", "Okafor", "Nowak", "Tesfay", "Karimi", "Mensah", "Popescu"]
    lines = [json.dumps(claim(name, "Sam", f"19{60 + n}-01-15", document=f"P{n:07d}")) for n, name in enumerate(names)]
    report = importer.import_claims(lines[:5], acting_user=officer, batch_size=2)
    services.register_claim(claim("Okafor", "Chidi", "1990-01-02", nationality="NGA"), acting_user=officer)
    report2 = importer.import_claims(lines[5:], acting_user=officer, batch_size=10)
    assert report.imported + report2.imported == 7
    seqs = db.session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)).all()
    assert seqs == list(range(1, len(seqs) + 1))
    assert verify_audit_trail().ok
    hits = services.search(services.SearchCriteria(document_number="p 0000003"), acting_user=officer)
    assert [h.family_name for h in hits] == ["Tesfay"]


def test_cli_batch_size_gives_the_same_outcome(app, officer, tmp_path):
    """--batch-size 1 and the default batch give the same report for the same kind of file: a
    duplicate on a later line is held back either way, bad lines are reported by number."""
    lines = [json.dumps(claim()), "{not json", json.dumps(claim("Haddad", "Omar", "1985-04-12")),
             json.dumps(claim("Okafor", "Chidi", "1990-01-02", nationality="NGA"))]
    path = tmp_path / "claims.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["intake", "import", str(path), "--as", "officer", "--batch-size", "1"])
    assert result.exit_code == 2, result.output
    assert "line 2: not valid JSON" in result.output
    assert "line 3: possible duplicate of a person in HQ-" in result.output
    assert "4 lines read, 2 imported, 2 rejected (1 possible duplicates)" in result.output
    assert "Haddad" not in result.output and "Omar" not in result.output
    refused = app.test_cli_runner().invoke(args=["intake", "import", str(path), "--as", "officer",
                                                 "--batch-size", "0"])
    assert refused.exit_code != 0 and "batch-size" in refused.output

