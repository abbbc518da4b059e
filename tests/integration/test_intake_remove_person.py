"""Removing a saved person through ``update_registration``: people are matched by their ids, so
removing a dependant leaves everyone else's record (and id) alone, takes the removed person's
index rows with them, is audited in the same event as the edit, and re-triages. The principal
applicant, a person another record names, and ids that are not the case's are refused with
nothing saved."""

from __future__ import annotations

from datetime import date, timedelta

import copy

import pytest
from sqlalchemy import func, select

from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.decisions import services as decisions
from app.decisions.models import Interview
from app.extensions import db
from app.intake import services as intake
from app.intake.models import Case, DocumentNumberIndex, Person, PersonMatchKey
from app.intake.schemas import age_on
from app.triage import services as triage
from test_decisions_support import assign, later

TODAY = date.today()


def days_ago(n: int) -> str:
    return (TODAY - timedelta(days=n)).isoformat()


def person(family: str, given: str, dob: str, *, principal: bool = False, relationship: str | None = None,
           document: str | None = None) -> dict:
    data = {"principal": principal, "identity": {"family_name": family, "given_names": given},
            "birth": {"date_of_birth": dob, "sex": "F"}, "nationality": {"nationalities": ["SYR"]}}
    if relationship:
        data["relationship"] = relationship
    if document:
        data["documents"] = [{"type": "passport", "number": document, "issuing_country": "SYR"}]
    return data


@pytest.fixture
def officer(make_user):
    return make_user("registration_officer")


@pytest.fixture
def family(officer) -> Case:
    """A principal and two children, each with a passport (so each has document index rows)."""
    payload = {"made_on": days_ago(10), "registered_on": days_ago(9), "lodged_on": days_ago(8),
               "persons": [person("Haddad", "Rania", "1990-03-05", principal=True, document="P100"),
                           person("Haddad", "Sami", "2015-02-14", relationship="child", document="P200"),
                           person("Haddad", "Lina", "2018-07-01", relationship="child", document="P300")]}
    case = intake.register_claim(payload, acting_user=officer, duplicate_decisions={0: "new", 1: "new", 2: "new"}).case
    return fresh(case.id)


def fresh(case_id: str) -> Case:
    db.session.expire_all()
    return db.session.get(Case, case_id)


def index_rows(model, person_id: str) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(model.person_id == person_id))


def updates(case_id: str) -> list[AuditEvent]:
    return db.session.scalars(select(AuditEvent).where(AuditEvent.code == int(EventCode.CASE_UPDATED),
                                                       AuditEvent.subject_id == case_id)
                              .order_by(AuditEvent.id)).all()


def without(case: Case, *positions: int) -> tuple[dict, list[str]]:
    """The case's payload and person ids with the people at ``positions`` left out."""
    payload = copy.deepcopy(intake.registration_payload(case))  # not the live sections
    kept = [n for n in range(len(case.persons)) if n not in positions]
    payload["persons"] = [payload["persons"][n] for n in kept]
    return payload, [case.persons[n].id for n in kept]


def save(case: Case, payload: dict, person_ids, officer) -> Case:
    return intake.update_registration(case.id, payload, expected_version=case.version, acting_user=officer,
                                      person_ids=person_ids)


def test_removing_the_middle_dependant_keeps_everyone_else(family, officer, monkeypatch):
    """Removing child 1 of 2: the principal and the other child keep their rows, ids and
    sections (the other child moves up one position), the removed child's person row, match keys
    and document index rows are gone, the CASE_UPDATED event names the removal by id and former
    position (their former values only in the encrypted changed fields), and triage re-ran on
    the case as it now is."""
    principal, removed, kept = family.persons
    ids = (principal.id, removed.id, kept.id)
    assert index_rows(PersonMatchKey, removed.id) > 0 and index_rows(DocumentNumberIndex, removed.id) == 1
    retriaged = []
    real = triage.retriage_if_facts_changed
    monkeypatch.setattr(triage, "retriage_if_facts_changed",
                        lambda case, **kw: retriaged.append([p.id for p in case.persons]) or real(case, **kw))
    version = family.version

    payload, person_ids = without(family, 1)
    save(family, payload, person_ids, officer)

    case = fresh(family.id)
    assert [p.id for p in case.persons] == [ids[0], ids[2]]
    assert [p.position for p in case.persons] == [0, 1]
    assert case.persons[1].identity["given_names"] == "Lina" and case.persons[1].birth["date_of_birth"] == "2018-07-01"
    assert case.persons[0].is_principal and not case.persons[1].is_principal
    assert case.version > version
    assert db.session.get(Person, ids[1]) is None
    assert index_rows(PersonMatchKey, ids[1]) == 0 and index_rows(DocumentNumberIndex, ids[1]) == 0
    assert index_rows(DocumentNumberIndex, ids[2]) == 1 and index_rows(PersonMatchKey, ids[2]) > 0
    assert index_rows(DocumentNumberIndex, ids[0]) == 1
    # Search by the kept child's passport still finds her; the removed child's finds nobody.
    hits = intake.search(intake.SearchCriteria(document_number="P300"), acting_user=officer)
    assert [h.person_id for h in hits] == [ids[2]]
    assert intake.search(intake.SearchCriteria(document_number="P200"), acting_user=officer) == []

    [event] = updates(family.id)
    assert event.details["removed"] == [{"person_id": ids[1], "position": 1}]
    changed = event.details["changed"]
    assert changed["removed_persons.0.identity.given_names"] == {"old": "Sami", "new": None}
    assert changed["removed_persons.0.relationship"] == {"old": "child", "new": None}
    # The child who moved up is compared with her own record: nothing of hers changed.
    assert not [path for path in changed if path.startswith("persons.")]
    assert retriaged == [[ids[0], ids[2]]]
    assert triage.facts_of_case(case)["children_ages"] == [age_on(date(2018, 7, 1), TODAY - timedelta(days=10))]


def test_an_edit_and_a_removal_in_one_save(family, officer):
    """A change to the dependant who stays, saved with the removal, lands on her record and is
    audited at her new position."""
    principal, removed, kept = family.persons
    payload, person_ids = without(family, 1)
    payload["persons"][1]["identity"]["given_names"] = "Lina Maria"
    save(family, payload, person_ids, officer)
    case = fresh(family.id)
    assert [p.id for p in case.persons] == [principal.id, kept.id]
    assert case.persons[1].identity["given_names"] == "Lina Maria"
    [event] = updates(family.id)
    assert event.details["changed"]["persons.1.identity.given_names"] == {"old": "Lina", "new": "Lina Maria"}


def test_a_person_added_and_one_removed(family, officer):
    """A new person (no id) is added while a saved one is removed: the new one gets a fresh id."""
    removed = family.persons[2].id
    payload, person_ids = without(family, 2)
    payload["persons"].append(person("Haddad", "Yara", "2020-01-01", relationship="child"))
    save(family, payload, [*person_ids, None], officer)
    case = fresh(family.id)
    assert [p.id for p in case.persons[:2]] == person_ids
    assert case.persons[2].id not in {removed, *person_ids} and db.session.get(Person, removed) is None
    assert case.persons[2].identity["given_names"] == "Yara" and case.persons[2].position == 2


def test_the_principal_cannot_be_removed(family, officer):
    """Leaving out the principal applicant's id is refused, whatever else is submitted; nothing
    changes and nothing is audited."""
    payload, person_ids = without(family, 0)
    payload["persons"][0]["principal"] = True  # even with a dependant promoted in their place
    payload["persons"][0].pop("relationship")
    version = family.version
    with pytest.raises(intake.RegistrationInvalid) as refused:
        save(family, payload, person_ids, officer)
    assert refused.value.errors == {"persons": ["The principal applicant cannot be removed from the registration."]}
    case = fresh(family.id)
    assert len(case.persons) == 3 and case.version == version and updates(family.id) == []


@pytest.mark.parametrize("forged", ["0" * 32, "not-an-id", "x" * 500, 7])
def test_an_id_not_of_this_case_is_refused(family, officer, forged):
    """An id that names no person of this case (made up, malformed, of another type) is refused
    at that person with a message saying what to do; nothing is saved."""
    payload = copy.deepcopy(intake.registration_payload(family))
    payload["persons"][1]["identity"]["given_names"] = "Changed"
    person_ids = [family.persons[0].id, forged, family.persons[2].id]
    with pytest.raises(intake.RegistrationInvalid) as refused:
        save(family, payload, person_ids, officer)
    assert refused.value.errors == {"persons.1": [
        "This person is not part of this case, or was removed since the page was opened. "
        "Reload the case and edit it again."]}
    case = fresh(family.id)
    assert [p.identity["given_names"] for p in case.persons] == ["Rania", "Sami", "Lina"]
    assert updates(family.id) == []


def test_a_person_of_another_case_is_refused(family, officer):
    """The id of a person of another case (same office) is not this case's: refused, and that
    other person is untouched."""
    other = intake.register_claim({"made_on": days_ago(5), "registered_on": days_ago(4),
                                   "persons": [person("Okafor", "Chidi", "1985-11-20", principal=True)]},
                                  acting_user=officer, duplicate_decisions={0: "new"}).case
    outsider = other.persons[0].id
    payload = intake.registration_payload(family)
    with pytest.raises(intake.RegistrationInvalid) as refused:
        save(family, payload, [family.persons[0].id, family.persons[1].id, outsider], officer)
    assert list(refused.value.errors) == ["persons.2"]
    assert len(fresh(family.id).persons) == 3
    assert db.session.get(Person, outsider).identity["family_name"] == "Okafor"


def test_an_id_given_twice_or_a_wrong_count_is_refused(family, officer):
    """Two entries editing the same saved person, or ids not one per submitted person, are refused."""
    payload = intake.registration_payload(family)
    ids = [p.id for p in family.persons]
    with pytest.raises(intake.RegistrationInvalid) as refused:
        save(family, payload, [ids[0], ids[1], ids[1]], officer)
    assert refused.value.errors == {"persons.2": ["This person appears more than once on the form."]}
    with pytest.raises(intake.RegistrationInvalid) as refused:
        save(family, payload, ids[:2], officer)
    assert refused.value.errors == {"persons": [
        "The people on this form do not match the case. Reload the case and edit it again."]}
    assert len(fresh(family.id).persons) == 3 and updates(family.id) == []


def test_a_person_an_interview_names_cannot_be_removed(family, officer, make_user):
    """A dependant with an interview booked (a record that must not be lost) is refused with a
    message naming their position, never their name; the interview and the person stay."""
    caseworker = make_user("caseworker")
    assign(family.id, caseworker)
    dependant = fresh(family.id).persons[1]
    decisions.schedule_interview(family.id, acting_user=caseworker, person_id=dependant.id,
                                 starts_at=later(days=2), duration_minutes=60, remote=False, place="Room 4",
                                 interpreter_language="ara")
    case = fresh(family.id)
    assert intake.persons_kept_on_edit(case.id, acting_user=officer) == {case.persons[0].id, dependant.id}
    payload, person_ids = without(case, 1)
    with pytest.raises(intake.RegistrationInvalid) as refused:
        save(case, payload, person_ids, officer)
    assert refused.value.errors == {"persons": [
        "Person 2 as saved cannot be removed: an interview, a decision or another registration refers to them."]}
    assert "Sami" not in str(refused.value.errors) and "Haddad" not in str(refused.value)
    assert len(fresh(family.id).persons) == 3
    assert db.session.scalar(select(func.count()).select_from(Interview)
                             .where(Interview.person_id == dependant.id)) == 1
    # Removing the other dependant, who has no interview, still works.
    payload, person_ids = without(case, 2)
    save(fresh(family.id), payload, person_ids, officer)
    assert [p.id for p in fresh(family.id).persons] == [case.persons[0].id, dependant.id]


def test_a_person_another_registration_is_linked_to_cannot_be_removed(family, officer):
    """A later registration confirmed as the same individual (linked) keeps the removal from
    leaving its link dangling: refused."""
    dependant = family.persons[2]
    later_claim = intake.register_claim({"made_on": days_ago(2), "registered_on": days_ago(1),
                                         "persons": [person("Haddad", "Lina", "2018-07-01", principal=True)]},
                                        acting_user=officer, duplicate_decisions={0: dependant.id}).case
    assert later_claim.persons[0].linked_person_id == dependant.id
    case = fresh(family.id)
    payload, person_ids = without(case, 2)
    with pytest.raises(intake.RegistrationInvalid) as refused:
        save(case, payload, person_ids, officer)
    assert list(refused.value.errors) == ["persons"] and "Person 3 as saved" in refused.value.errors["persons"][0]
    assert len(fresh(family.id).persons) == 3


def test_a_stale_version_still_conflicts(family, officer):
    """Optimistic locking protects a removal: after someone else saved, the removal is an
    EditConflict and nobody is removed; a second edit from the version before a removal
    conflicts too."""
    opened = family.version
    payload = copy.deepcopy(intake.registration_payload(family))
    payload["persons"][0]["identity"]["given_names"] = "Rania M."
    intake.update_registration(family.id, payload, expected_version=opened, acting_user=officer,
                               person_ids=[p.id for p in family.persons])
    payload, person_ids = without(fresh(family.id), 1)
    with pytest.raises(intake.EditConflict) as conflict:
        intake.update_registration(family.id, payload, expected_version=opened, acting_user=officer,
                                   person_ids=person_ids)
    assert len(fresh(family.id).persons) == 3
    assert conflict.value.current_person_ids == [p.id for p in fresh(family.id).persons]

    case = fresh(family.id)
    before_removal = case.version
    payload, person_ids = without(case, 1)
    save(case, payload, person_ids, officer)
    payload = intake.registration_payload(fresh(family.id))
    with pytest.raises(intake.EditConflict):
        intake.update_registration(family.id, payload, expected_version=before_removal, acting_user=officer,
                                   person_ids=[p.id for p in fresh(family.id).persons])


def test_without_ids_the_surplus_is_removed_by_position(family, officer):
    """Callers that send no ids keep today's meaning: people edit the saved ones in order and
    the saved people beyond them are removed (index rows included)."""
    last = family.persons[2].id
    payload = intake.registration_payload(family)
    payload["persons"] = payload["persons"][:2]
    intake.update_registration(family.id, payload, expected_version=family.version, acting_user=officer)
    case = fresh(family.id)
    assert [p.identity["given_names"] for p in case.persons] == ["Rania", "Sami"]
    assert index_rows(PersonMatchKey, last) == 0 and index_rows(DocumentNumberIndex, last) == 0
