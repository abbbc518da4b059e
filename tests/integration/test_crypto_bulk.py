"""The batch helpers of app.crypto give exactly what the one-value paths give: the same blind
index tokens, ciphertexts the ORM reads back, bound to their row and column."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select

from app import crypto
from app.auth.models import Office
from app.extensions import db
from app.intake.models import Case


def test_blind_indexer_gives_the_same_tokens(app):
    """blind_indexer(purpose) agrees with blind_index for normalised and raw values, and None."""
    for normalise in (True, False):
        index = crypto.blind_indexer("person.family_name", normalise=normalise)
        for value in ("Haddad", "  HÄDDAD ", "ḥaddād", "Okafor"):
            assert index(value) == crypto.blind_index(value, "person.family_name", normalise=normalise)
    assert crypto.blind_indexer("person.family_name")("") is None
    assert crypto.blind_indexer("a")("x") != crypto.blind_indexer("b")("x")


def test_encryptor_output_decrypts_with_its_context_only(app):
    """A value sealed by the batch encryptor opens with the same context and fails with another."""
    seal = crypto.keyring().encryptor()
    stored = seal(b"secret", "person.identity:abc")
    assert crypto.decrypt_value(stored, "person.identity:abc") == b"secret"
    assert seal(b"secret", "person.identity:abc") != stored  # a fresh nonce each time
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_value(stored, "person.identity:abd")


def test_sealed_columns_are_read_back_by_the_orm(app, make_user):
    """A row inserted with Core and sealed_columns reads back through the model attributes;
    opened_columns reverses it; None stays NULL."""
    user = make_user("registration_officer")
    office = db.session.get(Office, user.office_id)
    case_id = crypto.new_row_id()
    arrival = {"location_context": "inland", "transit_countries": ["GRC", "MKD"]}
    sealed = crypto.sealed_columns(Case, case_id, {"arrival": arrival, "assessment": None})
    assert sealed["assessment"] is None and b"GRC" not in sealed["arrival"]
    from datetime import date
    db.session.execute(insert(Case.__table__), [{
        "id": case_id, "reference": "HQ-2026-TEST01", "office_id": office.id, "made_on": date(2026, 1, 2),
        "registered_on": date(2026, 1, 3), "received_by_id": user.id, **sealed}])
    db.session.commit()
    db.session.expire_all()
    case = db.session.get(Case, case_id)
    assert case.arrival == arrival and case.assessment is None
    raw = db.session.execute(select(Case.__table__.c.arrival).where(Case.id == case_id)).scalar_one()
    assert crypto.opened_columns(Case, case_id, {"arrival": raw}) == {"arrival": arrival}
    with pytest.raises(crypto.DecryptionError):
        crypto.opened_columns(Case, crypto.new_row_id(), {"arrival": raw})
    with pytest.raises(crypto.CryptoError):
        crypto.sealed_columns(Case, case_id, {"reference": "not encrypted"})
