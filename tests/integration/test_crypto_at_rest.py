"""Encryption at rest: no plaintext in the database file or a dump, ciphertexts bound to their
row, nothing readable without the KEK, and blind indexes that behave as documented."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import make_url

from app import crypto
from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.audit.services import record_and_commit
from app.auth.models import User
from app.extensions import db

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")
CANARY_TOTP = "CANARYTOTPSECRETQ7X2"
CANARY_DETAIL = "canary-persecution-story-5b1d"
CANARY_PLAIN = "Canary Plaintext Fullname 93"  # a plaintext column: proves the scan sees data
OTHER_KEK = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="


def forms(value: str) -> list[bytes]:
    """The ways a value could show up in raw storage: its bytes, and hex as pg_dump prints bytea."""
    raw = value.encode()
    return [raw, raw.hex().encode()]


def write_canaries(make_user) -> User:
    user = make_user("caseworker", username="canary")
    user.full_name = CANARY_PLAIN
    user.totp_secret = CANARY_TOTP
    db.session.commit()
    record_and_commit(EventCode.CASE_UPDATED, actor=user, subject=("user", user.id),
                      details={"story": CANARY_DETAIL, "nested": [CANARY_DETAIL]})
    return user


def assert_no_canaries(blob: bytes, ciphertext: bytes) -> None:
    assert CANARY_PLAIN.encode() in blob, "control: the scan must see plaintext columns"
    assert ciphertext in blob or ciphertext.hex().encode() in blob, "control: the scan must see ciphertexts"
    for canary in (CANARY_TOTP, CANARY_DETAIL):
        for form in forms(canary):
            assert form not in blob, f"{canary} found in raw storage"


@pytest.mark.skipif(bool(POSTGRES_URL), reason="scans the SQLite file; the PostgreSQL run uses pg_dump")
def test_canaries_absent_from_sqlite_file_and_wal(app, make_user, database_url):
    """Canary values written through the models appear in neither the SQLite file nor its WAL."""
    user = write_canaries(make_user)
    ciphertext = bytes(user._totp_secret_ciphertext)
    db.session.remove()
    path = Path(make_url(database_url).database)
    wal = path.with_name(path.name + "-wal")
    assert wal.exists() and wal.stat().st_size > 0  # the fresh writes are in the WAL
    assert_no_canaries(path.read_bytes() + wal.read_bytes(), ciphertext)
    db.engine.dispose()  # closing the last connection checkpoints the WAL into the file
    assert_no_canaries(path.read_bytes() + (wal.read_bytes() if wal.exists() else b""), ciphertext)


@pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL (TEST_DATABASE_URL)")
def test_canaries_absent_from_pg_dump(app, make_user):
    """Canary values written through the models are absent from a pg_dump of the database."""
    pg_dump = shutil.which("pg_dump") or "/usr/bin/pg_dump"
    assert Path(pg_dump).exists(), "pg_dump is required for this test (apt-get install postgresql-client)"
    user = write_canaries(make_user)
    ciphertext = bytes(user._totp_secret_ciphertext)
    # The application's own URL: under pytest-xdist each worker has a database of its own.
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).set(drivername="postgresql").render_as_string(
        hide_password=False)
    dump = subprocess.run([pg_dump, "--no-owner", f"--dbname={url}"], capture_output=True, check=True,
                          timeout=60).stdout
    assert b"COPY public.user_account" in dump
    assert_no_canaries(dump, ciphertext)


def test_ciphertext_moved_to_another_row_fails(app, make_user, caplog):
    """A ciphertext copied to another row fails to decrypt; the log names the row, not the value."""
    alice, bob = make_user("caseworker"), make_user("caseworker")
    alice.totp_secret, bob.totp_secret = CANARY_TOTP, "BOBSECRETBOBSECRET"
    db.session.commit()
    table = User.__table__
    db.session.execute(update(table).where(table.c.id == bob.id).values(
        totp_secret=bytes(alice._totp_secret_ciphertext)))
    db.session.commit()
    caplog.set_level(logging.WARNING, logger="app.crypto")
    with pytest.raises(crypto.DecryptionError, match="authentication failed"):
        _ = db.session.get(User, bob.id).totp_secret
    assert f"user_account.totp_secret:{bob.id}" in caplog.text
    assert CANARY_TOTP not in caplog.text and "BOBSECRET" not in caplog.text
    assert db.session.get(User, alice.id).totp_secret == CANARY_TOTP


@pytest.mark.parametrize("offset, why", [(-1, "authentication failed"),  # tag
                                         (crypto.HEADER_BYTES, "authentication failed"),  # ciphertext
                                         (6, "authentication failed"),  # nonce
                                         (4, "unknown key"),  # key id
                                         (0, "unknown format version")])
def test_flipped_bit_fails(app, make_user, offset, why):
    """One flipped bit anywhere in a stored value makes it fail to decrypt."""
    user = make_user("caseworker")
    user.totp_secret = CANARY_TOTP
    db.session.commit()
    stored = bytearray(user._totp_secret_ciphertext)
    stored[offset] ^= 0x01
    db.session.execute(update(User.__table__).where(User.__table__.c.id == user.id).values(totp_secret=bytes(stored)))
    db.session.commit()
    with pytest.raises(crypto.DecryptionError, match=why):
        _ = db.session.get(User, user.id).totp_secret


def test_nothing_decrypts_under_another_kek(app_factory, app, make_user):
    """The same database with another KEK decrypts nothing and encrypts nothing."""
    user = write_canaries(make_user)
    user_id = user.id
    db.session.remove()
    stranger = app_factory(NANSEN_KEK=OTHER_KEK)
    with stranger.app_context():
        loaded = db.session.get(User, user_id)
        with pytest.raises(crypto.KeyConfigurationError, match="does not unwrap"):
            _ = loaded.totp_secret
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.code == EventCode.CASE_UPDATED)).one()
        with pytest.raises(crypto.KeyConfigurationError):
            _ = event.details
        with pytest.raises(crypto.KeyConfigurationError):
            crypto.blind_index("Ana", "person.family_name")
        with pytest.raises(crypto.KeyConfigurationError):
            crypto.encrypt_value(b"x", "user_account.totp_secret:1")
    assert db.session.get(User, user_id).totp_secret == CANARY_TOTP  # the right KEK still reads it


def test_missing_kek_refuses(app):
    """No KEK at all is a configuration error, not a silent fallback."""
    with pytest.raises(crypto.KeyConfigurationError, match="not set"):
        crypto.decode_kek(None)
    with pytest.raises(crypto.KeyConfigurationError, match="32 bytes"):
        crypto.decode_kek("c2hvcnQ=")


def test_blind_index_same_input_same_token(app):
    """Equal (normalised) inputs give equal tokens; different inputs differ."""
    token = crypto.blind_index("Ana María", "person.family_name")
    assert crypto.blind_index("  ana   MARIA ", "person.family_name") == token
    assert crypto.blind_index("Ana Mario", "person.family_name") != token
    assert crypto.blind_index("Ana María", "person.family_name", normalise=False) != \
        crypto.blind_index("ana maria", "person.family_name", normalise=False)
    assert crypto.blind_index("", "person.family_name") is None


def test_blind_index_purposes_differ(app):
    """The same value under two purposes gives unrelated tokens."""
    assert crypto.blind_index("Tesfay", "person.family_name") != crypto.blind_index("Tesfay", "person.given_names")


def test_blind_index_truncated_to_configured_length(app_factory, app):
    """Tokens are BLIND_INDEX_LENGTH bytes (16 by default): truncations of one HMAC."""
    full = crypto.blind_index("Tesfay", "person.family_name")
    assert len(full) == 16
    short_app = app_factory(BLIND_INDEX_LENGTH=6)
    with short_app.app_context():
        short = crypto.blind_index("Tesfay", "person.family_name")
    assert len(short) == 6 and full.startswith(short)


def test_blind_index_survives_data_key_rotation(app):
    """Blind-index keys are not data keys: a new data key leaves every token unchanged."""
    from app.admin.services import start_key_rotation

    before = crypto.blind_index("Tesfay", "person.family_name")
    start_key_rotation()
    assert crypto.blind_index("Tesfay", "person.family_name") == before


def test_confirm_matches_drops_false_positives(app_factory, app):
    """With a 1-byte index two names collide; confirm_matches keeps only the real match."""
    tiny = app_factory(BLIND_INDEX_LENGTH=1)
    with tiny.app_context():
        wanted = "Tesfay"
        token = crypto.blind_index(wanted, "person.family_name")
        collider = next(f"name{i}" for i in range(10_000)
                        if crypto.blind_index(f"name{i}", "person.family_name") == token)
        candidates = [{"id": 1, "name": collider}, {"id": 2, "name": " TESFAY"}, {"id": 3, "name": None}]
        kept = crypto.confirm_matches(candidates, lambda c: c["name"], wanted)
    assert [c["id"] for c in kept] == [2]
