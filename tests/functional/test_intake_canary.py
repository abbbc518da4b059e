"""Canary scan: a family registered through the form (after a draft) with a recognisable canary in
every S2/S3 text field; neither the raw database (SQLite file and its WAL, or a pg_dump of
PostgreSQL) nor the log holds any canary."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from app.extensions import db
from app.intake.models import Case, RegistrationDraft
from test_intake_support import days_ago, person_fields, registration_fields, text_of

POSTGRES = bool(os.environ.get("TEST_DATABASE_URL"))

CANARIES = {
    "persons-0-identity-family_name": "Qzfamcanary",
    "persons-0-identity-given_names": "Qzgivencanary",
    "persons-0-identity-aliases": "Qzaliascanary",
    "persons-0-identity-original_script_name": "قزكناري",
    "persons-0-birth-place_of_birth": "Qzbirthplacecanary",
    "persons-0-contact-address": "Qzaddresscanary street 9",
    "persons-0-contact-reception_centre": "Qzcentrecanary",
    "persons-0-contact-phone": "+99 271828 1828459",
    "persons-0-contact-email": "qzmailcanary@example.org",
    "persons-0-documents-0-number": "QZDOCCANARY4471",
    "persons-0-biometrics-record_ref": "QZBIOREFCANARY",
    "persons-0-family-representative_name": "Qzrepresentativecanary",
    "persons-0-family-members_elsewhere-0-family_name": "Qzmemberfamcanary",
    "persons-0-family-members_elsewhere-0-given_names": "Qzmembergivencanary",
    "persons-0-special_needs-notes": "Qzneedsnotecanary",
    "persons-0-claim-statement": "Qzstatementcanary persecuted for faith",
    "persons-0-security-basis": "Qzsecuritybasiscanary",
    "arrival-entry_place": "Qzentryplacecanary",
    "persons-1-identity-family_name": "Qzdependantcanary",
    "persons-1-identity-given_names": "Qzdepgivencanary",
    "persons-1-documents-0-number": "QZDEPDOCCANARY",
}
CANARY_DATE_OF_BIRTH = "1961-07-23"
# S1, stored plain on purpose: proves the scan reads the bytes where the data is.
PLAIN_CONTROL = "Qzplaincontrolplace"


def canary_form() -> dict:
    principal = person_fields(0, family="x", given="x", dob=CANARY_DATE_OF_BIRTH, principal=True,
                              documents=[("passport", "x", "SYR")])
    dependant = person_fields(1, family="x", given="x", dob="2012-01-01", relationship="child",
                              documents=[("birth_certificate", "x", "SYR")])
    data = registration_fields(principal, dependant, made=days_ago(3), registered=days_ago(2))
    data.update(CANARIES)
    data.update({"made_place": PLAIN_CONTROL, "persons-0-security-flag": "y",
                 "persons-0-family-members_elsewhere-0-relationship": "sibling",
                 "persons-0-family-members_elsewhere-0-member_state": "DEU",
                 "persons-0-family-representative_appointed_on": days_ago(1)})
    return data


def needles() -> set[bytes]:
    found = set()
    for value in [*CANARIES.values(), CANARY_DATE_OF_BIRTH]:
        for variant in (value, value.lower(), value.upper(), value.casefold()):
            found.add(variant.encode("utf-8"))
    return found


@pytest.fixture
def registered(signed_in, caplog):
    """The canary family, saved as a draft first (drafts are data too), then registered."""
    caplog.set_level(logging.DEBUG)
    browser, _user = signed_in("registration_officer")
    data = canary_form()
    assert browser.post("/cases/register", {**data, "action": "save_draft"}).status_code == 302
    draft = db.session.scalars(select(RegistrationDraft)).one()
    response = browser.post("/cases/register", {**data, "draft_id": draft.id})
    assert response.status_code == 302, text_of(response)[:2000]
    page = text_of(browser.get(response.headers["Location"]))
    assert "Qzstatementcanary" in page  # decrypted for the page: the canaries went in
    # A second draft stays in the database, so draft storage is scanned too.
    assert browser.post("/cases/register", {**data, "action": "save_draft"}).status_code == 302
    case = db.session.scalars(select(Case)).one()
    assert case.persons[0].identity["family_name"] == "Qzfamcanary"
    return caplog


def hits(blob: bytes) -> list[bytes]:
    return sorted(needle for needle in needles() if needle in blob)


@pytest.mark.skipif(POSTGRES, reason="scans the SQLite file; on PostgreSQL the pg_dump test runs instead")
def test_no_canary_in_the_sqlite_file_or_its_wal(app, registered):
    """The raw bytes of the SQLite database and its WAL contain no canary (while the plain S1
    control value is found there), and neither does the log."""
    path = Path(make_url(app.config["SQLALCHEMY_DATABASE_URI"]).database)
    files = [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-journal")) if p.exists()]
    assert path in files and path.stat().st_size > 0
    for file in files:
        assert hits(file.read_bytes()) == [], file.name
    assert PLAIN_CONTROL.encode() in b"".join(file.read_bytes() for file in files)
    assert hits(registered.text.encode()) == []


@pytest.mark.skipif(not POSTGRES, reason="needs PostgreSQL (TEST_DATABASE_URL) for pg_dump")
def test_no_canary_in_pg_dump(app, registered):
    """A pg_dump of the PostgreSQL test database contains no canary (the plain S1 control value
    is found), and neither does the log."""
    pg_dump = shutil.which("pg_dump") or "/usr/bin/pg_dump"
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    dump = subprocess.run([pg_dump, "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
                           "-U", url.username or "postgres", url.database],
                          check=True, capture_output=True, timeout=120).stdout
    assert b"COPY public.person" in dump and len(dump) > 10_000
    assert hits(dump) == []
    assert PLAIN_CONTROL.encode() in dump
    assert hits(registered.text.encode()) == []
