"""Match-key and document-index rows (and the import's case, person and triage rows) go to the
driver directly (COPY on PostgreSQL, one executemany on SQLite): they must still be part of the
registration's transaction, so a batch that fails after writing them leaves none behind, a
refused write is SQLAlchemy's error like any other, and they are the rows the duplicate check
and the document search read."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from app.extensions import db
from app.intake import importer, services
from app.intake.models import DocumentNumberIndex, Person, PersonMatchKey
from tests.integration.test_import_batch import claim, officer  # noqa: F401 - the fixture


def test_key_rows_of_a_failed_batch_are_rolled_back_with_it(app, officer, monkeypatch):  # noqa: F811
    """The audit append (after the key rows) fails once: the batch is rolled back whole, key
    rows included, and its lines registered one by one; every key row belongs to a stored person."""
    real_record_many = services.record_many
    calls = {"n": 0}

    def failing_once(events):
        calls["n"] += 1
        if calls["n"] == 1:
            assert db.session.scalar(select(func.count()).select_from(PersonMatchKey)) > 0  # written, in the batch
            raise OperationalError("INSERT INTO audit_event", {}, Exception("simulated failure"))
        return real_record_many(events)

    monkeypatch.setattr(services, "record_many", failing_once)
    lines = [json.dumps(claim(family_members=True)), json.dumps(claim("Nowak", "Anna", "1991-05-06",
                                                                      nationality="UKR", document="P7654321"))]
    report = importer.import_claims(lines, acting_user=officer)
    assert (report.imported, report.rejected, calls["n"]) == (2, 0, 3)
    people = set(db.session.scalars(select(Person.id)))
    assert len(people) == 4
    assert set(db.session.scalars(select(PersonMatchKey.person_id).distinct())) == people
    assert db.session.scalar(select(func.count()).select_from(DocumentNumberIndex)) == 2
    [hit] = services.search(services.SearchCriteria(document_number="P7654321"), acting_user=officer)
    assert hit.family_name == "Nowak"


def test_key_rows_written_one_at_a_time_find_the_duplicate(app, officer):  # noqa: F811
    """A claim registered through the form path stores keys that the next registration of the
    same person finds (the duplicate check reads exactly those rows)."""
    services.register_claim(claim(), acting_user=officer)
    stored = db.session.scalar(select(func.count()).select_from(PersonMatchKey))
    assert stored > 0
    try:
        services.register_claim(claim(), acting_user=officer)
    except services.PossibleDuplicates as exc:
        assert list(exc.candidates) == [0]
    else:
        raise AssertionError("the second registration of the same person was not flagged")


def test_a_refused_driver_write_is_a_sqlalchemy_error(app, officer):  # noqa: F811
    """A key row the database refuses (its person does not exist) raises SQLAlchemy's
    IntegrityError on both databases, as a Core INSERT would: the importer's fallback and the
    services' rollbacks catch database errors of that one kind."""
    services.register_claim(claim(), acting_user=officer)
    before = db.session.scalar(select(func.count()).select_from(PersonMatchKey))
    with pytest.raises(IntegrityError):
        services._insert_key_rows([("0" * 32, b"k" * 16)], [])
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(PersonMatchKey)) == before
