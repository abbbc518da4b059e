"""Registration services: register a claim (with its duplicate check), save drafts, search, open
and edit cases. Each public function owns its transaction: it validates, changes the domain,
records the audit event in the same transaction and commits once. Actors come in as
``acting_user``; nothing here reads the request.

Office scope: a user sees and edits the cases of their own office only. A case of another
office answers exactly like a missing one (CaseNotFound), and the refusal is audited.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from functools import cache
from collections.abc import Iterator, Sequence
from typing import Any
from types import SimpleNamespace
from datetime import date, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm.exc import StaleDataError

from app import crypto
from app.audit.codes import EventCode
from app.audit.services import PendingEvent, record, record_and_commit, record_many
from app.auth.models import Office
from app.auth.permissions import Permission
from app.database import insert_rows, insert_table_rows
from app.db_types import utcnow
from app.extensions import db
from app.intake import matching
from app.intake.models import (S3_PERSON_SECTIONS, Case, DocumentNumberIndex, Person, PersonMatchKey,
                               RegistrationDraft)
from app.intake.schemas import (LATE_REGISTRATION_DAYS, PersonInput, RegistrationInput, ValidationError,
                                age_on, error_messages, parse_registration)

REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
SPECIAL_NEEDS_ASSESSMENT_DAYS = 30  # RCD Art 25: within 30 days of the application being made
REPRESENTATIVE_WORKING_DAYS = 15  # APR Art 23: representative for an unaccompanied minor
MAX_CANDIDATES_PER_PERSON = 5
MAX_CANDIDATES_LOOKED_UP = 200  # decrypted and scored; bounded so a common name stays cheap
# Purposes of the blind indexes (each gets its own HKDF-derived key).
BIDX_FAMILY_NAME = "person.family_name"
BIDX_GIVEN_NAMES = "person.given_names"
BIDX_DATE_OF_BIRTH = "person.date_of_birth"
BIDX_DOCUMENT_NUMBER = "document.number"
BIDX_MATCH_KEY = "person.match_key"


class IntakeError(Exception):
    """Base class of refusals the user can act on."""


class RegistrationInvalid(IntakeError):
    """The input breaks registration rules; ``errors`` maps dotted field paths to messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("registration refused: " + ", ".join(sorted(errors)))
        self.errors = errors


@dataclass(frozen=True)
class DuplicateCandidate:
    person_id: str
    case_reference: str
    office_code: str
    family_name: str
    given_names: str
    date_of_birth: str | None
    nationalities: tuple[str, ...]
    score: float
    reasons: tuple[str, ...]


class PossibleDuplicates(IntakeError):
    """Some people may already be registered; the officer must decide for each (link or new)."""

    def __init__(self, candidates: dict[int, list[DuplicateCandidate]]):
        super().__init__(f"possible duplicates for {len(candidates)} person(s)")
        self.candidates = candidates


class CaseNotFound(IntakeError):
    """No such case, or not one this user may see (the two are indistinguishable on purpose)."""


class EditConflict(IntakeError):
    """Someone saved the record after this user opened it; nothing was overwritten.
    ``current_person_ids`` are the ids of ``current["persons"]``, in order (to line people up
    with the submitted ones by identity when showing the differences)."""

    def __init__(self, current: dict, submitted: dict, current_version: int,
                 current_person_ids: list[str] | None = None):
        super().__init__("edit conflict")
        self.current = current
        self.submitted = submitted
        self.current_version = current_version
        self.current_person_ids = current_person_ids or []


@dataclass
class RegistrationResult:
    case: Case
    flags: list[str] = field(default_factory=list)


# -- helpers ---------------------------------------------------------------------------------------

def add_working_days(start: date, days: int) -> date:
    """``days`` working days after ``start`` (weekends skipped; public holidays are not known)."""
    current = start
    while days:
        current += timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current


def _new_reference(office: Office, registered_on: date) -> str:
    """Human-readable and unique, derived from nothing about the person: office, year, and six
    random characters (about a billion per office and year). Checked against existing ones."""
    while True:
        suffix = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(6))
        reference = f"{office.code}-{registered_on.year}-{suffix}"
        if db.session.scalar(_reference_taken(), {"reference": reference}) is None:
            return reference


# Statements every registration sends, built once (with bound parameters) rather than per call:
# building the expression and its cache key costs more CPU than SQLAlchemy's compiled-cache hit.
@cache
def _reference_taken():
    return select(Case.id).where(Case.reference == bindparam("reference"))


def _age_group(age: int | None) -> str:
    """Eurostat's age groups for asylum statistics."""
    if age is None:
        return "UNK"
    for limit, label in ((14, "Y_LT14"), (18, "Y14-17"), (35, "Y18-34"), (65, "Y35-64")):
        if age < limit:
            return label
    return "Y_GE65"


def identity_for_matching(person: PersonInput | dict, nationality: str | None) -> matching.Identity:
    """The identity fields duplicate detection compares, from input or a decrypted record."""
    if isinstance(person, PersonInput):
        identity, birth = person.identity.model_dump(), person.birth.model_dump(mode="json")
    else:
        identity, birth = person["identity"], person["birth"]
    dob = birth.get("date_of_birth")
    return matching.Identity(
        family_name=identity.get("family_name") or "",
        given_names=identity.get("given_names") or "",
        aliases=tuple(identity.get("aliases") or ()),
        original_script_name=identity.get("original_script_name"),
        date_of_birth=date.fromisoformat(dob) if isinstance(dob, str) else dob,
        dob_precision=birth.get("precision") or "day",
        dob_estimated=bool(birth.get("estimated")),
        nationality=nationality,
    )


def _person_nationality(person: PersonInput) -> str | None:
    nat = person.nationality
    return nat.nationalities[0] if nat.nationalities else nat.former_habitual_residence


def _match_key_tokens(identity: matching.Identity) -> list[bytes]:
    token = crypto.blind_indexer(BIDX_MATCH_KEY, normalise=False)
    return sorted({token(key) for key in matching.match_keys(identity)})


@dataclass(frozen=True)
class _Probe:
    """One person's matching identity and blind-indexed match keys, computed once per
    registration: the duplicate check and the stored keys use the same tokens."""

    identity: matching.Identity
    tokens: list[bytes]


def _probe(person: PersonInput, dumped: dict | None = None) -> _Probe:
    """``dumped``: the person's ``_dumped`` form when the caller has it (it holds the identity and
    birth sections, so they are not serialised again)."""
    identity = identity_for_matching(dumped if dumped is not None else person, _person_nationality(person))
    return _Probe(identity, _match_key_tokens(identity))


def find_duplicate_candidates(person: PersonInput, *, exclude_case_id: str | None = None) -> list[DuplicateCandidate]:
    """People already registered who may be ``person``: looked up through blind-indexed match
    keys (never by decrypting the table); only the few candidates found are decrypted and scored."""
    return _find_candidates(_probe(person), exclude_case_id=exclude_case_id)


def _find_candidates(probe_of: _Probe, *, exclude_case_id: str | None = None) -> list[DuplicateCandidate]:
    [stored] = _registered_candidates([probe_of])
    return _scored(probe_of, [p for p in stored if p.case_id != exclude_case_id])


@dataclass(repr=False)  # no repr: it would show the decrypted identity
class _StoredPerson:
    """A registered person as the duplicate check sees them: decrypted birth, nationalities and,
    once first needed, decrypted identity (``sealed_identity`` is its ciphertext until then: the
    names of a candidate born in another year or of another nationality are never decrypted)."""

    person_id: str
    case_id: str
    case_reference: str
    office_code: str
    birth: dict
    nationalities: tuple[str, ...]
    former_habitual_residence: str | None
    opened_identity: dict | None = None
    sealed_identity: bytes | None = None

    @property
    def identity(self) -> dict:
        if self.opened_identity is None:
            sealed = {"identity": self.sealed_identity}
            self.opened_identity = crypto.opened_columns(Person, self.person_id, sealed)["identity"] or {}
        return self.opened_identity

    def for_matching(self, *, names: bool = True) -> matching.Identity:
        """The matching identity; ``names=False`` leaves the names empty (no decryption), for
        ``matching.could_be_likely_duplicate``."""
        identity = self.identity if names else {}
        return identity_for_matching({"identity": identity, "birth": self.birth},
                                     (self.nationalities or (self.former_habitual_residence,))[0])


_KEY_CHUNK = 500  # values per IN list: far below every driver's parameter limit


@cache
def _key_holders():
    """The people holding each match key among ``:tokens``: key and person id only, read from
    the key index (built once, see ``_reference_taken``)."""
    return select(PersonMatchKey.key, PersonMatchKey.person_id).where(
        PersonMatchKey.key.in_(bindparam("tokens", expanding=True)))


@cache
def _candidate_rows():
    """Each person among ``:ids`` with the birth and identity ciphertexts, nationalities, case
    reference and office the duplicate check needs (built once)."""
    table = Person.__table__
    return (select(Person.id, Person.case_id, table.c.birth, table.c.identity, Person.nationalities,
                   Person.former_habitual_residence, Case.reference, Office.code)
            .join(Case, Case.id == Person.case_id).join(Office, Office.id == Case.office_id)
            .where(Person.id.in_(bindparam("ids", expanding=True))))


def _chunks(values: list) -> Iterator[list]:
    for start in range(0, len(values), _KEY_CHUNK):
        yield values[start:start + _KEY_CHUNK]


def most_telling_holders(tokens: Sequence[bytes], holders: dict[bytes, list[str]], cap: int) -> list[str]:
    """The people holding at least one of ``tokens`` (``holders``: token -> person ids), the most
    telling first, at most ``cap``: each shared key weighs the inverse of the number of people
    holding it, so a key only the real duplicate shares (a full date of birth with the
    nationality) outweighs the keys a common name shares with hundreds, and that crowd cannot
    push the duplicate out of the capped list. Ties go by person id (a stable order)."""
    weight: dict[str, float] = {}
    for token in tokens:
        people = holders.get(token, ())
        for person_id in people:
            weight[person_id] = weight.get(person_id, 0.0) + 1.0 / len(people)
    return sorted(weight, key=lambda pid: (-weight[pid], pid))[:cap]


def _registered_candidates(probes: list[_Probe]) -> list[list[_StoredPerson]]:
    """For each probe, the registered people sharing at least one match key with it, at most
    MAX_CANDIDATES_LOOKED_UP, the most telling first (``most_telling_holders``).

    For all the probes at once (a whole registration, or a whole import batch): first the key
    holders (key and person id only, from the key index), then one read of the people kept, with
    their birth and identity ciphertexts. Each is decrypted once, the identity only when needed
    (see ``_StoredPerson``)."""
    holders: dict[bytes, list[str]] = {}
    for chunk in _chunks(sorted({t for probe in probes for t in probe.tokens})):
        for key, person_id in db.session.execute(_key_holders(), {"tokens": chunk}):
            holders.setdefault(bytes(key), []).append(person_id)
    kept_per_probe = [most_telling_holders(probe.tokens, holders, MAX_CANDIDATES_LOOKED_UP) for probe in probes]
    opened: dict[str, _StoredPerson] = {}
    for chunk in _chunks(sorted({pid for kept in kept_per_probe for pid in kept})):
        for person_id, case_id, birth, identity, nationalities, former, reference, office_code in (
                db.session.execute(_candidate_rows(), {"ids": chunk})):
            values = crypto.opened_columns(Person, person_id, {"birth": birth})
            opened[person_id] = _StoredPerson(person_id, case_id, reference, office_code, values["birth"] or {},
                                              tuple(nationalities or ()), former, sealed_identity=identity)
    # A person deleted between the two reads is simply no longer a candidate.
    return [[opened[pid] for pid in kept if pid in opened] for kept in kept_per_probe]


def _scored(probe_of: _Probe, stored: list[_StoredPerson]) -> list[DuplicateCandidate]:
    """The likely duplicates among ``stored``, best first, at most MAX_CANDIDATES_PER_PERSON.
    Names are decrypted and compared only for the people whose date of birth and nationality
    leave them a chance (``matching.could_be_likely_duplicate``)."""
    probe = probe_of.identity
    plausible = {p.person_id: p for p in stored
                 if matching.could_be_likely_duplicate(probe, p.for_matching(names=False))}
    ranked = [(pid, result) for pid, result in matching.rank_candidates(
        probe, [(p.person_id, p.for_matching()) for p in plausible.values()]) if result.is_likely_duplicate]
    candidates = []
    for person_id, result in ranked[:MAX_CANDIDATES_PER_PERSON]:
        existing = plausible[person_id]
        candidates.append(DuplicateCandidate(
            person_id=person_id, case_reference=existing.case_reference, office_code=existing.office_code,
            family_name=existing.identity.get("family_name", ""), given_names=existing.identity.get("given_names", ""),
            date_of_birth=existing.birth.get("date_of_birth"), nationalities=existing.nationalities,
            score=round(result.score, 3), reasons=tuple(result.reasons)))
    return candidates


PERSON_SECTIONS = ("identity", "birth", "language", "contact", "documents", "history", "family",
                   "biometrics", "special_needs", "claim", "security")


def _dumped(person: PersonInput) -> dict:
    """The person's sections as stored (JSON types), serialised once per registration: the
    encrypted sections, the duplicate check's identity and the import's in-batch check read it."""
    return person.model_dump(mode="json")


def _person_values(position: int, data: PersonInput, made_on: date, linked_person_id: str | None,
                   dumped: dict | None = None) -> tuple[dict, dict]:
    """(plain column values, encrypted sections in plaintext) of a new person row: the one
    recipe both the form (ORM) and the bulk import (Core) store. ``dumped``: ``_dumped(data)``."""
    dumped = _dumped(data) if dumped is None else dumped
    birth = data.birth.date_of_birth
    age = age_on(birth, made_on) if birth else None
    plain = {"position": position, "is_principal": data.principal,
             "nationalities": list(data.nationality.nationalities), "stateless": data.nationality.stateless,
             "former_habitual_residence": data.nationality.former_habitual_residence,
             "stat_sex": data.birth.sex, "stat_age_group": _age_group(age),
             "minor_at_application": bool((age is not None and age < 18) or data.family.unaccompanied_minor),
             "linked_person_id": linked_person_id, **_blind_indexes(data)}
    sections = {"relationship_to_principal": {"relationship": data.relationship} if data.relationship else None,
                **{section: dumped[section] for section in PERSON_SECTIONS}}
    return plain, sections


def _blind_indexes(data: PersonInput) -> dict[str, bytes | None]:
    dob = data.birth.date_of_birth
    return {"family_name_bidx": crypto.blind_index(data.identity.family_name, BIDX_FAMILY_NAME),
            "given_names_bidx": crypto.blind_index(data.identity.given_names, BIDX_GIVEN_NAMES),
            "date_of_birth_bidx": crypto.blind_index(dob.isoformat(), BIDX_DATE_OF_BIRTH) if dob else None}


def _document_numbers(data: PersonInput) -> list[str]:
    numbers = {normalise_document_number(d.number) for d in data.documents if d.number}
    return sorted(n for n in numbers if n)


def _key_rows(person_id: str, data: PersonInput, tokens: list[bytes]) -> tuple[list[tuple], list[tuple]]:
    """The person_match_key and document_number_index rows of one person, as (person_id, token)."""
    document_token = crypto.blind_indexer(BIDX_DOCUMENT_NUMBER, normalise=False)
    return ([(person_id, token) for token in tokens],
            [(person_id, document_token(n)) for n in _document_numbers(data)])


def _insert_key_rows(match_keys: list[tuple], document_numbers: list[tuple]) -> None:
    """The key rows of ``_key_rows``, one statement per table, in the session's transaction (the
    person rows must already be flushed: foreign keys). A person has a dozen match keys, so an
    import batch has thousands: they go to the driver as they are (COPY on PostgreSQL, one
    executemany on SQLite), since SQLAlchemy's per-row parameter handling, and psycopg's one
    pipelined INSERT per row, cost many times the database's own work (measured: 40,000 rows,
    0.6 s of CPU as INSERTs, 0.03 s as COPY)."""
    for table, rows in ((PersonMatchKey.__table__, match_keys), (DocumentNumberIndex.__table__, document_numbers)):
        insert_rows(db.session.connection(), table.name, [column.name for column in table.columns], rows)


def _store_person(case: Case, position: int, data: PersonInput, made_on: date, linked_person_id: str | None,
                  tokens: list[bytes] | None = None,
                  dumped: dict | None = None) -> tuple[Person, list[tuple], list[tuple]]:
    """A new Person in the session (not flushed), and its key rows for ``_insert_key_rows``."""
    plain, sections = _person_values(position, data, made_on, linked_person_id, dumped)
    person = Person(case=case, **plain)
    db.session.add(person)  # SQLAlchemy 2.0 no longer cascades a new object into the session via a backref
    for name, value in sections.items():
        setattr(person, name, value)
    if tokens is None:
        tokens = _match_key_tokens(identity_for_matching(data, _person_nationality(data)))
    match_keys, documents = _key_rows(person.id, data, tokens)
    return person, match_keys, documents


def _index_person(person: Person, data: PersonInput) -> None:
    """Recompute the blind indexes and match keys of an existing person from its plaintext input."""
    for name, value in _blind_indexes(data).items():
        setattr(person, name, value)
    db.session.flush()  # the person row must exist before its key rows
    db.session.execute(PersonMatchKey.__table__.delete().where(PersonMatchKey.person_id == person.id))
    db.session.execute(DocumentNumberIndex.__table__.delete().where(DocumentNumberIndex.person_id == person.id))
    _insert_key_rows(*_key_rows(person.id, data, _match_key_tokens(identity_for_matching(
        data, _person_nationality(data)))))


def normalise_document_number(number: str) -> str:
    return "".join(ch for ch in number.upper() if ch.isalnum())


def registration_flags(data: RegistrationInput) -> list[str]:
    """What the officer and supervisors must see, but that does not block registration."""
    flags = []
    if (data.registered_on - data.made_on).days > LATE_REGISTRATION_DAYS:
        flags.append("late_registration")
    for person in data.persons:
        if person.family.unaccompanied_minor and not person.family.representative_name:
            flags.append("unaccompanied_minor_without_representative")
        if person.special_needs.vulnerabilities or person.special_needs.special_procedural_guarantees_needed:
            flags.append("special_needs")
    return sorted(set(flags))


# -- registration ----------------------------------------------------------------------------------

def validate_registration(payload: dict) -> RegistrationInput:
    """Parse and check a registration payload; RegistrationInvalid lists every failure."""
    from flask_babel import gettext

    try:
        return parse_registration(payload)
    except ValidationError as exc:
        raise RegistrationInvalid(error_messages(exc, gettext)) from None


def register_claim(payload: dict, *, acting_user, duplicate_decisions: dict[int, str] | None = None,
                   draft_id: str | None = None, legacy_id: str | None = None) -> RegistrationResult:
    """Register a claim: validate everything, check every person for duplicates, store the case
    with encrypted sections, blind indexes and match keys, run triage, audit, commit once.

    ``duplicate_decisions`` maps a person's position to ``"new"`` (the officer confirms a new
    person) or the id of the existing person to link. Without a decision for a person who has
    candidates, PossibleDuplicates is raised and nothing is saved. A completed draft is deleted
    in the same transaction. ``legacy_id`` (bulk import) is kept in the audit event.
    """
    if not acting_user.can(Permission.CASE_REGISTER):
        raise PermissionError("registration needs the case.register permission")
    data = validate_registration(payload)
    decisions = duplicate_decisions or {}
    for position in decisions:
        if not (isinstance(position, int) and 0 <= position < len(data.persons)):
            raise RegistrationInvalid({"persons": ["A duplicate decision names a person not in this registration."]})
    # Match keys once per person: the duplicate check reads them and the same tokens are stored.
    dumps = [_dumped(person) for person in data.persons]
    probes = [_probe(person, dumped) for person, dumped in zip(data.persons, dumps, strict=True)]
    undecided: dict[int, list[DuplicateCandidate]] = {}
    positions = [position for position in range(len(probes)) if position not in decisions]
    for position, stored in zip(positions, _registered_candidates([probes[p] for p in positions]), strict=True):
        candidates = _scored(probes[position], stored)
        if candidates:
            undecided[position] = candidates
    if undecided:
        db.session.rollback()
        raise PossibleDuplicates(undecided)
    for position, decision in decisions.items():
        # Only one of the candidates found may be linked: never an arbitrary person id.
        found = {c.person_id for c in _find_candidates(probes[position])} if decision != "new" else ()
        if decision != "new" and decision not in found:
            raise RegistrationInvalid({f"persons.{position}": [
                "The person chosen as a duplicate is not one of the candidates found (or no longer exists)."]})

    from app.triage.models import TriageRecord  # triage reads intake: imported late, no cycle
    from app.triage.services import NewCaseTriage, writable_state

    office = db.session.get(Office, acting_user.office_id)
    case = Case(reference=_new_reference(office, data.registered_on), office_id=office.id,
                made_on=data.made_on, made_place=data.made_place, registered_on=data.registered_on,
                lodged_on=data.lodged_on, good_cause_for_not_lodging=data.good_cause_for_not_lodging,
                received_by_id=acting_user.id)
    _apply_case_fields(case, data)
    flags = registration_flags(data)
    if draft_id:
        draft = db.session.get(RegistrationDraft, draft_id)
        if draft is not None and draft.created_by_id == acting_user.id:
            db.session.delete(draft)
    # Read before the rows are added (its first use stores the shipped ruleset, with a savepoint
    # that would flush them half-made).
    state = writable_state()
    db.session.add(case)
    match_keys, documents = [], []
    for position, person in enumerate(data.persons):
        linked = decisions.get(position)
        _, keys, numbers = _store_person(case, position, person, data.made_on,
                                         None if linked in (None, "new") else linked, probes[position].tokens,
                                         dumps[position])
        match_keys += keys
        documents += numbers
    # Triage of the new case exactly as triage_case does it (a new case has no override and no
    # previous track), with its event appended together with the registration's: one INSERT of
    # the events and one move of the chain head instead of two.
    triage = NewCaseTriage.of(case, state)
    for name, value in triage.case_fields(utcnow()).items():
        setattr(case, name, value)
    triage_record = TriageRecord(case_id=case.id, created_by_id=acting_user.id, **triage.record_fields(),
                                 **triage.sealed_fields())
    db.session.add(triage_record)
    record_many([*_registration_events(case.id, case.reference, len(data.persons), flags, decisions, acting_user,
                                       legacy_id),
                 PendingEvent(EventCode.CASE_TRIAGED, actor=acting_user, subject=("case", case.id),
                              details=triage.event_details(triage_record.id))])
    db.session.flush()  # the case, its triage record and its people: one INSERT per table
    _insert_key_rows(match_keys, documents)
    db.session.commit()
    return RegistrationResult(case, flags)


def _registration_events(case_id: str, reference: str, persons: int, flags: list[str], decisions: dict[int, str],
                         acting_user, legacy_id: str | None) -> list[PendingEvent]:
    """CASE_REGISTERED, then one DUPLICATE_CONFIRMED_NEW or DUPLICATE_LINKED per decision."""
    events = [PendingEvent(EventCode.CASE_REGISTERED, actor=acting_user, subject=("case", case_id),
                           details={"reference": reference, "persons": persons, "flags": flags,
                                    **({"legacy_id": legacy_id} if legacy_id else {})})]
    for position, decision in sorted(decisions.items()):
        events.append(PendingEvent(
            EventCode.DUPLICATE_CONFIRMED_NEW if decision == "new" else EventCode.DUPLICATE_LINKED,
            actor=acting_user, subject=("case", case_id),
            details={"person_position": position, "linked_person_id": None if decision == "new" else decision}))
    return events


def _case_fields(data: RegistrationInput) -> dict:
    """Derived and S1 case fields, and the (encrypted) arrival section, from a validated
    registration: the one recipe of the form (ORM, create and edit) and the bulk import (Core)."""
    arrival = data.arrival
    principal = data.principal
    delay = (data.registered_on - data.made_on).days
    needs_representative = any(p.family.unaccompanied_minor and not p.family.representative_name
                               for p in data.persons)
    return {
        "location_context": arrival.location_context, "authorised_to_enter": arrival.authorised_to_enter,
        "fulfils_entry_conditions": arrival.fulfils_entry_conditions,
        "presented_without_delay": arrival.presented_without_delay, "arrival": arrival.model_dump(mode="json"),
        "principal_nationality": _person_nationality(principal), "registration_delay_days": delay,
        "late_registration": delay > LATE_REGISTRATION_DAYS,
        "is_subsequent_application": bool(principal.history.previous_applications),
        "special_needs_assessment_due": data.made_on + timedelta(days=SPECIAL_NEEDS_ASSESSMENT_DAYS),
        "representative_due": (add_working_days(data.registered_on, REPRESENTATIVE_WORKING_DAYS)
                               if needs_representative else None),
    }


def _apply_case_fields(case: Case, data: RegistrationInput) -> None:
    """Derived and S1 case fields from a validated registration (used on create and on edit)."""
    for name, value in _case_fields(data).items():
        setattr(case, name, value)


# -- bulk registration (the import) ----------------------------------------------------------------

@dataclass
class BulkOutcome:
    """What became of one claim of ``register_claims``: registered (``reference``), refused
    (``errors``, as RegistrationInvalid has them) or held back as a possible duplicate
    (``duplicates``: person position -> candidates, as PossibleDuplicates has them). In a dry
    run an accepted claim has neither errors nor duplicates and no reference."""

    reference: str | None = None
    errors: dict[str, list[str]] | None = None
    duplicates: dict[int, list[DuplicateCandidate]] | None = None

    @property
    def accepted(self) -> bool:
        return self.errors is None and self.duplicates is None


@dataclass
class PreparedClaim:
    """One claim of a bulk import validated and made into rows, without any database access:
    ``prepare_claims`` makes it (possibly in another process: it pickles), ``register_prepared``
    checks it for duplicates, draws its reference and stores it. ``errors`` when refused.
    Person ids are drawn here so a claim's values are encrypted bound to their final rows."""

    index: int
    errors: dict[str, list[str]] | None = None
    probes: list[_Probe] = field(default_factory=list)
    case_id: str = ""
    person_ids: list[str] = field(default_factory=list)
    # per person: (identity, birth, nationalities, former habitual residence), for the in-batch check
    identities: list[tuple] = field(default_factory=list)
    registered_on: date | None = None
    flags: list[str] = field(default_factory=list)
    case_row: dict | None = None  # without reference, office and officer: set when stored
    person_rows: list[dict] = field(default_factory=list)
    match_keys: list[tuple] = field(default_factory=list)
    documents: list[tuple] = field(default_factory=list)
    triage_row: dict | None = None  # without created_by_id
    triage_details: dict | None = None
    reference: str | None = None


def prepare_claims(payloads: list[dict], *, triage_state=None) -> list[PreparedClaim]:
    """Validate ``payloads`` and make each valid one into its rows: case, people (sections
    encrypted, bound to their rows; blind indexes), match keys, document index, triage record
    (evaluated with ``triage_state``, the state ``triage_case`` would use) and its CASE_TRIAGED
    details. Pure work, no database access and no transaction, so it can run ahead of the
    writes, in another process. Without ``triage_state`` (a dry run) only validation and the
    match keys are done. Needs an application context (keys, messages)."""
    encrypt = crypto.keyring().encryptor() if triage_state is not None else None
    out = []
    for index, payload in enumerate(payloads):
        try:
            data = validate_registration(payload)
        except RegistrationInvalid as exc:
            out.append(PreparedClaim(index, errors=exc.errors))
            continue
        dumps = [_dumped(person) for person in data.persons]
        item = PreparedClaim(index, probes=[_probe(p, d) for p, d in zip(data.persons, dumps, strict=True)],
                             case_id=crypto.new_row_id(), person_ids=[crypto.new_row_id() for _ in data.persons],
                             registered_on=data.registered_on, flags=registration_flags(data))
        for person, dumped in zip(data.persons, dumps, strict=True):
            item.identities.append((dumped["identity"], dumped["birth"], tuple(person.nationality.nationalities),
                                    person.nationality.former_habitual_residence))
        if triage_state is not None:
            _make_rows(item, data, triage_state, encrypt, dumps)
        out.append(item)
    return out


def _make_rows(item: PreparedClaim, data: RegistrationInput, state, encrypt, dumps: list[dict]) -> None:
    from app.triage.models import TriageRecord  # triage reads intake: imported late, no cycle

    now = utcnow()
    fields = _case_fields(data)
    arrival = fields.pop("arrival")
    stored_persons = []
    for position, person in enumerate(data.persons):
        person_id = item.person_ids[position]
        plain, sections = _person_values(position, person, data.made_on, None, dumps[position])
        item.person_rows.append({"id": person_id, "case_id": item.case_id, "created_at": now, "version": 1, **plain,
                                 **crypto.sealed_columns(Person, person_id, sections, encrypt)})
        keys, numbers = _key_rows(person_id, person, item.probes[position].tokens)
        item.match_keys += keys
        item.documents += numbers
        stored_persons.append(SimpleNamespace(**plain, **sections))
    # The case as triage_case would read it (facts_of_case -> registration_payload): the same
    # attribute names as the stored case, so the facts are the same.
    case_view = SimpleNamespace(
        made_on=data.made_on, made_place=data.made_place, registered_on=data.registered_on,
        lodged_on=data.lodged_on, good_cause_for_not_lodging=data.good_cause_for_not_lodging, arrival=arrival,
        assessment=None, persons=stored_persons)
    from app.triage.services import NewCaseTriage  # triage reads intake: imported late, no cycle

    outcome = NewCaseTriage.of(case_view, state)
    record_id = crypto.new_row_id()
    item.triage_row = {"id": record_id, "case_id": item.case_id, "created_at": now, **outcome.record_fields(),
                       **crypto.sealed_columns(TriageRecord, record_id, outcome.sealed_fields(), encrypt)}
    item.triage_details = outcome.event_details(record_id)
    item.case_row = {
        "id": item.case_id, "status": "registered", "made_on": data.made_on, "made_place": data.made_place,
        "registered_on": data.registered_on, "lodged_on": data.lodged_on,
        "good_cause_for_not_lodging": data.good_cause_for_not_lodging, **fields, "assigned_to_id": None,
        "assigned_at": None, "created_at": now, "updated_at": now, "version": 1, **outcome.case_fields(now),
        **crypto.sealed_columns(Case, item.case_id, {"arrival": arrival, "assessment": None}, encrypt)}


def register_claims(payloads: list[dict], *, acting_user, on_duplicate: str = "skip",
                    legacy_ids: list[str | None] | None = None, labels: list[str] | None = None,
                    dry_run: bool = False) -> list[BulkOutcome]:
    """Register many claims in one transaction (the bulk import): the same validation,
    encryption, blind indexes, match keys, duplicate check, triage and audit as
    ``register_claim``, and the same stored rows, but written with one bulk write per table
    (COPY on PostgreSQL), one lock of the audit chain head and the data key looked up once.

    Every claim is validated and checked before anything is written, so a refused claim leaves
    nothing behind and never spoils the others; the accepted ones commit together, once. Returns
    one BulkOutcome per payload, in order. ``on_duplicate``: "skip" holds back a claim with a
    person who may already be registered -- in the database or in an earlier claim of the same
    batch, exactly as registering them one after the other would find; "new" registers every
    person as new and audits that decision per person (as the officer's "new person" is
    audited), without a lookup. ``legacy_ids`` go into each CASE_REGISTERED event; ``labels``
    name the claims (say "line 12") where a candidate is another claim of the batch, which has
    no case reference yet (default: "claim N of this batch").
    ``dry_run``: validate and check only, write nothing. A database error (say, a concurrent
    registration taking the same reference) rolls the whole batch back and is raised.
    (``prepare_claims`` then ``register_prepared``, in one go.)
    """
    from app.triage.services import writable_state  # triage reads intake: imported late, no cycle

    _check_bulk_arguments(acting_user, on_duplicate)
    # Read once per batch; stores and activates the shipped ruleset on first use, as triage_case does.
    state = None if dry_run else writable_state()
    return register_prepared(prepare_claims(payloads, triage_state=state), acting_user=acting_user,
                             on_duplicate=on_duplicate, legacy_ids=legacy_ids, labels=labels, dry_run=dry_run)


def _check_bulk_arguments(acting_user, on_duplicate: str) -> None:
    if not acting_user.can(Permission.CASE_REGISTER):
        raise PermissionError("registration needs the case.register permission")
    if on_duplicate not in ("skip", "new"):
        raise ValueError("on_duplicate must be 'skip' or 'new'")


def register_prepared(prepared: list[PreparedClaim], *, acting_user, on_duplicate: str = "skip",
                      legacy_ids: list[str | None] | None = None, labels: list[str] | None = None,
                      dry_run: bool = False) -> list[BulkOutcome]:
    """Check claims made by ``prepare_claims`` for duplicates and store the accepted ones in one
    transaction; the contract of ``register_claims`` (which it completes). Claims prepared
    without a triage state can only be checked (``dry_run``)."""
    _check_bulk_arguments(acting_user, on_duplicate)
    count = len(prepared)
    legacy_ids = legacy_ids or [None] * count
    outcomes = [BulkOutcome() for _ in prepared]
    accepted = []
    for position, item in enumerate(prepared):
        item.index = position  # outcomes, legacy ids and labels are in the order given
        if item.errors is not None:
            outcomes[position].errors = item.errors
        else:
            accepted.append(item)
    office = db.session.get(Office, acting_user.office_id)
    if on_duplicate == "skip":
        labels = labels or [f"claim {n} of this batch" for n in range(1, count + 1)]
        accepted = _without_duplicates(accepted, outcomes, office, labels)
    if dry_run or not accepted:
        db.session.rollback()
        return outcomes
    if any(item.case_row is None for item in accepted):
        raise ValueError("claims prepared without a triage state can only be checked (dry_run)")
    try:
        _write_prepared(accepted, office, acting_user, on_duplicate, legacy_ids)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    for item in accepted:
        outcomes[item.index].reference = item.reference
    return outcomes


def _without_duplicates(accepted: list[PreparedClaim], outcomes: list[BulkOutcome], office: Office,
                        labels: list[str]) -> list[PreparedClaim]:
    """The claims none of whose people may already be registered, in order. Candidates come
    from the database (one key lookup and one read for the whole batch) and from the claims
    kept before in this batch; each person is scored like ``find_duplicate_candidates`` does."""
    probes = [(item.index, position, probe) for item in accepted for position, probe in enumerate(item.probes)]
    registered = dict(zip(((index, position) for index, position, _ in probes),
                          _registered_candidates([probe for _, _, probe in probes]), strict=True))
    in_batch: dict[bytes, list[_StoredPerson]] = {}
    kept = []
    for item in accepted:
        undecided: dict[int, list[DuplicateCandidate]] = {}
        for position, probe in enumerate(item.probes):
            people = list(registered[item.index, position])
            seen = set()
            for token in probe.tokens:
                for earlier in in_batch.get(token, ()):
                    if earlier.person_id not in seen:
                        seen.add(earlier.person_id)
                        people.append(earlier)
            candidates = _scored(probe, people)
            if candidates:
                undecided[position] = candidates
        if undecided:
            outcomes[item.index].duplicates = undecided
            continue
        kept.append(item)
        for position, (identity, birth, nationalities, former) in enumerate(item.identities):
            # Named by its label: its reference is only drawn when the batch is written.
            entry = _StoredPerson(item.person_ids[position], item.case_id, labels[item.index], office.code,
                                  birth, nationalities, former, opened_identity=identity)
            for token in item.probes[position].tokens:
                in_batch.setdefault(token, []).append(entry)
    return kept


def _new_references(office: Office, items: list[PreparedClaim]) -> None:
    """A fresh reference per claim (see ``_new_reference``), unique in the batch and checked
    against the stored ones with one query per round."""
    taken: set[str] = set()
    pending = list(items)
    while pending:
        for item in pending:
            while True:
                suffix = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(6))
                reference = f"{office.code}-{item.registered_on.year}-{suffix}"
                if reference not in taken:
                    break
            item.reference = reference
            taken.add(reference)
        clashing = set()
        wanted = [item.reference for item in pending]
        for start in range(0, len(wanted), _KEY_CHUNK):
            clashing.update(db.session.scalars(select(Case.reference).where(
                Case.reference.in_(wanted[start:start + _KEY_CHUNK]))))
        pending = [item for item in pending if item.reference in clashing]


def _write_prepared(items: list[PreparedClaim], office: Office, acting_user, on_duplicate: str,
                    legacy_ids: list[str | None]) -> None:
    """The accepted claims' rows, then their audit events, in the current transaction: one
    bulk write per table (``database.insert_table_rows``, ``_insert_key_rows``), events in the order
    registering one claim after the other gives (CASE_REGISTERED, the duplicate decisions,
    CASE_TRIAGED)."""
    from app.triage.models import TriageRecord  # triage reads intake: imported late, no cycle

    _new_references(office, items)
    cases, people, match_keys, documents, triage_records, events = [], [], [], [], [], []
    for item in items:
        cases.append({**item.case_row, "reference": item.reference, "office_id": office.id,
                      "received_by_id": acting_user.id})
        people += item.person_rows
        match_keys += item.match_keys
        documents += item.documents
        triage_records.append({**item.triage_row, "created_by_id": acting_user.id})
        decisions = dict.fromkeys(range(len(item.person_ids)), "new") if on_duplicate == "new" else {}
        events += _registration_events(item.case_id, item.reference, len(item.person_ids), item.flags, decisions,
                                       acting_user, legacy_ids[item.index])
        events.append(PendingEvent(EventCode.CASE_TRIAGED, actor=acting_user, subject=("case", item.case_id),
                                   details=item.triage_details))
    for model, rows in ((Case, cases), (Person, people), (TriageRecord, triage_records)):
        insert_table_rows(db.session.connection(), model.__table__, rows)
    _insert_key_rows(match_keys, documents)
    record_many(events)


# -- drafts ------------------------------------------------------------------------------------------

def save_draft(payload: dict, *, acting_user, draft_id: str | None = None) -> RegistrationDraft:
    """Keep an incomplete registration (encrypted) to finish later; no validation beyond size."""
    draft = db.session.get(RegistrationDraft, draft_id) if draft_id else None
    if draft is None or draft.created_by_id != acting_user.id:
        draft = RegistrationDraft(office_id=acting_user.office_id, created_by_id=acting_user.id)
        db.session.add(draft)
    draft.payload = payload
    db.session.flush()
    record(EventCode.DRAFT_SAVED, actor=acting_user, subject=("registration_draft", draft.id))
    db.session.commit()
    return draft


def my_drafts(acting_user) -> list[RegistrationDraft]:
    return db.session.scalars(select(RegistrationDraft).where(RegistrationDraft.created_by_id == acting_user.id)
                              .order_by(RegistrationDraft.updated_at.desc())).all()


def load_draft(draft_id: str, *, acting_user) -> RegistrationDraft:
    draft = db.session.get(RegistrationDraft, draft_id)
    if draft is None or draft.created_by_id != acting_user.id:
        raise CaseNotFound("no such draft")
    return draft


# -- reading -----------------------------------------------------------------------------------------

def _scoped_case(case_id: str, acting_user) -> Case:
    case = db.session.get(Case, case_id) if case_id and len(case_id) <= 32 else None
    if case is None or case.office_id != acting_user.office_id:
        if case is not None:
            record_and_commit(EventCode.ACCESS_DENIED, actor=acting_user, subject=("case", case.id),
                              outcome="denied", details={"reason": "other office"})
        raise CaseNotFound("no such case")
    return case


@dataclass
class CaseView:
    """What one user may see of a case: S3 sections only with the permission for them."""

    case: Case
    persons: list[dict]
    show_special_category: bool
    history: list  # rows of (occurred_at, actor_role, outcome, code), oldest first


def open_case(case_id: str, *, acting_user, via_search: bool = False) -> CaseView:
    """Open a case for reading: scope check, decrypt the sections the role may see, audit the
    read (RECORD_VIEWED, or SEARCH_RESULT_OPENED when opened from search results)."""
    case = _scoped_case(case_id, acting_user)
    show_s3 = acting_user.can(Permission.CASE_VIEW_SPECIAL_CATEGORY)
    persons = [person_sections(person, include_special_category=show_s3) for person in case.persons]
    from app.audit.models import AuditEvent  # read-only listing of the case's own history

    # Plain rows of the four columns shown, not entities: the commit below would expire entities
    # and the page would then reload each event with a query of its own.
    history = db.session.execute(select(AuditEvent.occurred_at, AuditEvent.actor_role, AuditEvent.outcome,
                                        AuditEvent.code)
                                 .where(AuditEvent.subject_type == "case", AuditEvent.subject_id == case.id)
                                 .order_by(AuditEvent.id)).all()
    record(EventCode.SEARCH_RESULT_OPENED if via_search else EventCode.RECORD_VIEWED, actor=acting_user,
           subject=("case", case.id), details={"special_category_shown": show_s3})
    db.session.commit()
    return CaseView(case, persons, show_s3, history)


def person_sections(person: Person, *, include_special_category: bool) -> dict:
    sections = {"id": person.id, "principal": person.is_principal, "version": person.version,
                "relationship": (person.relationship_to_principal or {}).get("relationship"),
                "nationality": {"nationalities": person.nationalities, "stateless": person.stateless,
                                "former_habitual_residence": person.former_habitual_residence}}
    for name in ("identity", "birth", "language", "contact", "documents", "history", "family"):
        sections[name] = getattr(person, name)
    if include_special_category:
        for name in S3_PERSON_SECTIONS:
            sections[name] = getattr(person, name)
    return sections


# -- search ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SearchCriteria:
    reference: str | None = None
    document_number: str | None = None
    family_name: str | None = None
    given_names: str | None = None
    date_of_birth: date | None = None

    def is_empty(self) -> bool:
        return not any((self.reference, self.document_number, self.family_name, self.given_names,
                        self.date_of_birth))


@dataclass(frozen=True)
class SearchHit:
    case_id: str
    reference: str
    person_id: str
    family_name: str
    given_names: str
    date_of_birth: str | None
    principal: bool


def search(criteria: SearchCriteria, *, acting_user, limit: int = 50) -> list[SearchHit]:
    """Find people by case reference, document number, name and/or date of birth, through
    blind indexes, within the user's office. Names match exactly after normalisation (case,
    accents, spacing); the few rows found are decrypted to drop blind-index false positives.
    The search is audited (which criteria were used and how many hits; never the values)."""
    if criteria.is_empty():
        raise RegistrationInvalid({"__all__": ["Enter at least one search criterion."]})
    query = select(Person).join(Case, Case.id == Person.case_id).where(Case.office_id == acting_user.office_id)
    if criteria.reference:
        query = query.where(Case.reference == criteria.reference.strip().upper())
    if criteria.document_number:
        token = crypto.blind_index(normalise_document_number(criteria.document_number), BIDX_DOCUMENT_NUMBER,
                                   normalise=False)
        query = query.join(DocumentNumberIndex, DocumentNumberIndex.person_id == Person.id).where(
            DocumentNumberIndex.number_bidx == token)
    if criteria.family_name:
        query = query.where(Person.family_name_bidx == crypto.blind_index(criteria.family_name, BIDX_FAMILY_NAME))
    if criteria.given_names:
        query = query.where(Person.given_names_bidx == crypto.blind_index(criteria.given_names, BIDX_GIVEN_NAMES))
    if criteria.date_of_birth:
        query = query.where(Person.date_of_birth_bidx == crypto.blind_index(criteria.date_of_birth.isoformat(),
                                                                             BIDX_DATE_OF_BIRTH))
    people = db.session.scalars(query.order_by(Case.registered_on.desc()).limit(limit)).all()
    if criteria.family_name:
        people = crypto.confirm_matches(people, lambda p: (p.identity or {}).get("family_name"), criteria.family_name)
    if criteria.given_names:
        people = crypto.confirm_matches(people, lambda p: (p.identity or {}).get("given_names"), criteria.given_names)
    hits = [SearchHit(case_id=p.case_id, reference=p.case.reference, person_id=p.id,
                      family_name=(p.identity or {}).get("family_name", ""),
                      given_names=(p.identity or {}).get("given_names", ""),
                      date_of_birth=(p.birth or {}).get("date_of_birth"), principal=p.is_principal)
            for p in people]
    used = sorted(name for name, value in vars(criteria).items() if value)
    record(EventCode.SEARCH_PERFORMED, actor=acting_user, details={"criteria": used, "hits": len(hits)})
    db.session.commit()
    return hits


# -- editing -----------------------------------------------------------------------------------------

def registration_payload(case: Case) -> dict:
    """A stored case back in the registration input shape (for editing, conflicts, triage)."""
    persons = []
    for person in case.persons:
        persons.append({
            "principal": person.is_principal,
            "relationship": (person.relationship_to_principal or {}).get("relationship"),
            "identity": person.identity, "birth": person.birth,
            "nationality": {"nationalities": person.nationalities, "stateless": person.stateless,
                            "former_habitual_residence": person.former_habitual_residence},
            **{name: getattr(person, name) for name in ("language", "contact", "documents", "biometrics", "history",
                                                         "family", "special_needs", "claim", "security")},
        })
    return {"made_on": case.made_on.isoformat(), "made_place": case.made_place,
            "registered_on": case.registered_on.isoformat(),
            "lodged_on": case.lodged_on.isoformat() if case.lodged_on else None,
            "good_cause_for_not_lodging": case.good_cause_for_not_lodging,
            "arrival": case.arrival or {}, "persons": persons}


def flatten(value, prefix: str = "") -> dict[str, object]:
    """{"a": {"b": 1}, "l": [x]} -> {"a.b": 1, "l.0": x}: field-level comparison of two versions."""
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}{key}."))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}{index}."))
        return out
    return {prefix.rstrip("."): value}


def changed_fields(before: dict, after: dict) -> dict[str, dict]:
    old, new = flatten(before), flatten(after)
    return {path: {"old": old.get(path), "new": new.get(path)}
            for path in sorted(set(old) | set(new)) if old.get(path) != new.get(path)}


def update_registration(case_id: str, payload: dict, *, expected_version: int, acting_user,
                        person_ids: Sequence[str | None] | None = None) -> Case:
    """Save an edited registration. Optimistic locking: ``expected_version`` is the case version
    the user opened; when someone saved since, EditConflict carries both versions and nothing is
    written. Otherwise every rule is checked again, sections, indexes and keys are rewritten,
    the changed fields (old and new values) are audited, triage re-runs, and it commits once.

    People are matched by identity: ``person_ids[n]`` is the id of the saved person that
    ``payload["persons"][n]`` edits, or None for a person added on this edit. A saved person
    whose id is not submitted is removed, with their match keys and document index rows; the
    principal applicant never is, nor a person named by another record (an interview, a
    decision, a registration linked to them): those refusals, an id not of this case (forged,
    or a person removed since the page was opened) and an id given twice raise
    RegistrationInvalid and nothing is written. Without ``person_ids`` the submitted people
    edit the saved ones in order and saved people beyond the submitted ones are removed.

    Audit (CASE_UPDATED, encrypted details): ``changed`` compares each person with their own
    saved record (paths use the submitted positions); a removed person's former values appear
    under ``removed_persons.<n>.`` (old value, new None), and ``removed`` lists who was removed
    by id and former position only."""
    case = _locked_case(case_id, acting_user)
    try:
        if not acting_user.can(Permission.CASE_EDIT):
            raise PermissionError("editing needs the case.edit permission")
        data = validate_registration(payload)
        before = registration_payload(case)
        if case.version != expected_version:
            raise EditConflict(before, payload, case.version, [person.id for person in case.persons])
        existing = list(case.persons)
        matched, removed = _match_people(case, existing, len(data.persons), person_ids)
    except Exception:
        db.session.rollback()  # refused before any change: release the case's lock at once
        raise
    before_by_id = {person.id: snapshot for person, snapshot in zip(existing, before["persons"], strict=True)}
    case.made_on, case.made_place = data.made_on, data.made_place
    case.registered_on, case.lodged_on = data.registered_on, data.lodged_on
    case.good_cause_for_not_lodging = data.good_cause_for_not_lodging
    _apply_case_fields(case, data)
    for person in removed:
        _remove_person(case, person)
    if removed:
        # The case row joins this write even if no case field changed, so its version is checked
        # and bumped: whoever opened the case before the removal gets a conflict, not a stale form.
        case.updated_at = utcnow()
    match_keys, documents = [], []
    for position, (person, person_input) in enumerate(zip(matched, data.persons, strict=True)):
        if person is not None:
            _rewrite_person(person, position, person_input, data.made_on)
        else:
            _, keys, numbers = _store_person(case, position, person_input, data.made_on, None)
            match_keys += keys
            documents += numbers
    if match_keys or documents:
        db.session.flush()  # the added people's rows before their key rows (foreign keys)
        _insert_key_rows(match_keys, documents)
    # Submitted order (a new person was appended last; a crafted post may reorder): the payload
    # compared below and the one triage reads follow the positions just written.
    case.persons.sort(key=lambda person: person.position)
    after = registration_payload(case)
    # Each person against their own saved record; a new one against nothing (every value new).
    compared = {**before, "persons": [before_by_id.get(person.id, {}) for person in case.persons]}
    if removed:
        compared["removed_persons"] = [before_by_id[person.id] for person in removed]
    changes = changed_fields(compared, after)
    details: dict[str, Any] = {"changed": changes}
    if removed:
        details["removed"] = [{"person_id": person.id, "position": existing.index(person)} for person in removed]
    record(EventCode.CASE_UPDATED, actor=acting_user, subject=("case", case.id), details=details)
    _after_update(case, acting_user, changes)
    try:
        db.session.commit()
    except StaleDataError:
        # Another save won the race between our version check and our write.
        db.session.rollback()
        current = db.session.get(Case, case_id)
        raise EditConflict(registration_payload(current), payload, current.version,
                           [person.id for person in current.persons]) from None
    return case


def persons_kept_on_edit(case_id: str, *, acting_user) -> set[str]:
    """Ids of the saved people of a case that an edit may not remove (``update_registration``
    refuses it): the principal applicant, and anyone another record names. For the edit page,
    which offers Remove only for the others; ids only, so the read is not audited (opening the
    edit page is)."""
    case = _scoped_case(case_id, acting_user)
    dependants = [person.id for person in case.persons if not person.is_principal]
    return {person.id for person in case.persons if person.is_principal} | _referenced_elsewhere(case, dependants)


def _locked_case(case_id: str, acting_user) -> Case:
    """The case, in scope, locked for this transaction (FOR UPDATE; SQLite: the transaction is
    BEGIN IMMEDIATE) and re-read, so the checks below (version, who may be removed) still hold
    when the write lands: the decisions services lock the same row before naming a person.
    Out of scope or missing: ``_scoped_case`` refuses, the one way every package refuses."""
    case = None
    if isinstance(case_id, str) and 0 < len(case_id) <= 32:
        case = db.session.execute(select(Case).where(Case.id == case_id).with_for_update()
                                  .execution_options(populate_existing=True)).scalar_one_or_none()
    if case is None or case.office_id != acting_user.office_id:
        _scoped_case(case_id, acting_user)  # raises (and audits a case of another office)
        raise CaseNotFound("no such case")  # not reached
    return case


# Tables whose rows only index a person for intake's own lookups: removed with the person. Any
# other table pointing at ``person`` holds case records that must outlive a registration edit.
_PERSON_INDEX_TABLES = frozenset({PersonMatchKey.__tablename__, DocumentNumberIndex.__tablename__})


def _match_people(case: Case, existing: list[Person], count: int,
                  person_ids: Sequence[str | None] | None) -> tuple[list[Person | None], list[Person]]:
    """(the saved person each submitted one edits, None for a new one; the saved people to
    remove). Raises RegistrationInvalid, every refusal collected, before anything is changed."""
    from flask_babel import gettext as _

    if person_ids is None:  # by position: the saved people in order, the surplus removed
        matched = [existing[n] if n < len(existing) else None for n in range(count)]
        return matched, existing[count:]
    reload = _("Reload the case and edit it again.")
    if not isinstance(person_ids, (list, tuple)) or len(person_ids) != count:
        raise RegistrationInvalid({"persons": [_("The people on this form do not match the case.") + " " + reload]})
    saved = {person.id: person for person in existing}
    errors: dict[str, list[str]] = {}
    matched: list[Person | None] = []
    seen: set[str] = set()
    for position, person_id in enumerate(person_ids):
        if person_id is None or person_id == "":
            matched.append(None)
            continue
        person = saved.get(person_id) if isinstance(person_id, str) else None
        if person is None:
            errors.setdefault(f"persons.{position}", []).append(
                _("This person is not part of this case, or was removed since the page was opened.") + " " + reload)
        elif person_id in seen:
            errors.setdefault(f"persons.{position}", []).append(_("This person appears more than once on the form."))
            person = None
        else:
            seen.add(person_id)
        matched.append(person)
    removed = [person for person in existing if person.id not in seen]
    if errors:  # an unknown id makes "who is removed" meaningless: report the ids first
        raise RegistrationInvalid(errors)
    if any(person.is_principal for person in removed):
        errors.setdefault("persons", []).append(_("The principal applicant cannot be removed from the registration."))
    for person_id in sorted(_referenced_elsewhere(case, [p.id for p in removed if not p.is_principal])):
        errors.setdefault("persons", []).append(_(
            "Person %(number)d as saved cannot be removed: an interview, a decision or another registration "
            "refers to them.", number=existing.index(saved[person_id]) + 1))
    if errors:
        raise RegistrationInvalid(errors)
    return matched, removed


def _referenced_elsewhere(case: Case, person_ids: list[str]) -> set[str]:
    """Those of ``person_ids`` that some other record names: a row of any table with a foreign
    key to ``person`` other than intake's own indexes (interviews and decisions today; a table
    added later is covered without touching this code), or a person of another registration
    confirmed as the same individual (``linked_person_id``, a plain column)."""
    if not person_ids:
        return set()
    found: set[str] = set()
    person_table = Person.__table__
    for table in db.metadata.sorted_tables:
        if table.name in _PERSON_INDEX_TABLES:
            continue
        for foreign_key in table.foreign_keys:
            if foreign_key.column.table is person_table:
                found.update(db.session.scalars(select(foreign_key.parent).distinct()
                                                .where(foreign_key.parent.in_(person_ids))))
    found.update(db.session.scalars(select(Person.linked_person_id).distinct().where(
        Person.linked_person_id.in_(person_ids), Person.id.not_in(person_ids))))
    return found


def _remove_person(case: Case, person: Person) -> None:
    """Take a saved person out of the case: their index rows now (explicitly, not left to the
    database's ON DELETE CASCADE, so no engine setting decides it), their row at the flush."""
    db.session.execute(PersonMatchKey.__table__.delete().where(PersonMatchKey.person_id == person.id))
    db.session.execute(DocumentNumberIndex.__table__.delete().where(DocumentNumberIndex.person_id == person.id))
    case.persons.remove(person)  # delete-orphan: the row goes, checked against its version


def _rewrite_person(person: Person, position: int, data: PersonInput, made_on: date) -> None:
    dumped = data.model_dump(mode="json")
    birth = data.birth.date_of_birth
    age = age_on(birth, made_on) if birth else None
    person.position, person.is_principal = position, data.principal
    person.nationalities = list(data.nationality.nationalities)
    person.stateless = data.nationality.stateless
    person.former_habitual_residence = data.nationality.former_habitual_residence
    person.stat_sex, person.stat_age_group = data.birth.sex, _age_group(age)
    person.minor_at_application = bool((age is not None and age < 18) or data.family.unaccompanied_minor)
    person.relationship_to_principal = {"relationship": data.relationship} if data.relationship else None
    for section in ("identity", "birth", "language", "contact", "documents", "history", "family",
                    "biometrics", "special_needs", "claim", "security"):
        if getattr(person, section) != dumped[section]:
            setattr(person, section, dumped[section])
    _index_person(person, data)


def _after_update(case: Case, acting_user, changes: dict) -> None:
    """Hook for triage (issue Triage): re-triage when a fact it reads changed."""
    from app.triage.services import retriage_if_facts_changed  # compares facts, not raw fields

    if changes:
        retriage_if_facts_changed(case, acting_user=acting_user)
