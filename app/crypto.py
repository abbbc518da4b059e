"""The only module that touches cryptographic primitives.

What it provides, and why it is shaped this way:

* **Envelope keys.** A key-encryption key (KEK, 32 bytes, from ``NANSEN_KEK`` or a key file:
  never in the database) wraps the data keys stored in the ``crypto_key`` table (RFC 3394 AES
  key wrap). A database dump plus the code, without the KEK, decrypts nothing.
* **Field encryption.** AES-256-GCM per value. Stored bytes are
  ``version (1) | key id (4, big-endian) | nonce (12) | ciphertext + tag``. The associated data
  is ``table.column:row-id``, so a ciphertext copied into another row or column fails to decrypt.
* **Encrypted attributes.** ``family_name = EncryptedText()`` on a model declares a binary column
  holding the ciphertext and a Python attribute holding the plaintext. Encryption happens on
  assignment, decryption on first read (then cached on the instance), so values are decrypted
  only when something reads them.
* **Blind indexes.** HMAC-SHA256 with keys derived by HKDF from a separate index root key (never a
  data key), truncated to ``BLIND_INDEX_LENGTH`` bytes. Equal inputs give equal tokens, so exact
  and normalised lookups work without decrypting the table.
* **Rotation.** New writes always use the newest data key; ``rotate_batch`` re-encrypts values
  still on older keys, a batch at a time, with a compare-and-set so it never clobbers a
  concurrent edit. Audit details are never re-encrypted (the audit table is append-only), so
  retired keys stay in the keyring for reading.
* **Audit checkpoint signatures.** Ed25519, with the seed derived by HKDF from the KEK under its
  own label, so the signing key lives wherever the KEK lives (never in the database) and needs
  no storage of its own. Someone holding only the database cannot forge a checkpoint.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import struct
import threading
import time
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any
from collections.abc import Callable, Iterable

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap
from flask import current_app
from sqlalchemy import Integer, LargeBinary, String, func, select, update
from sqlalchemy.orm import Mapped, mapped_column

from app.db_types import UTCDateTime, utcnow
from app.extensions import db

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_HEADER = struct.Struct(">BI")  # version, key id
_NONCE_BYTES = 12
HEADER_BYTES = _HEADER.size + _NONCE_BYTES
PURPOSE_DATA = "data"
PURPOSE_INDEX = "index"
DEFAULT_BLIND_INDEX_LENGTH = 16
# How long a process trusts its cached list of keys before looking for a newer one, so that a
# rotation started from the CLI reaches every worker within seconds.
KEYRING_REFRESH_SECONDS = 5.0


class CryptoError(Exception):
    """Base class; messages never contain plaintext or key material."""


class KeyConfigurationError(CryptoError):
    """The key-encryption key is missing, malformed or does not unwrap the stored keys."""


class DecryptionError(CryptoError):
    """A stored value failed authentication: tampered, moved to another row, or unknown key."""


class CryptoKey(db.Model):
    """A data or blind-index root key, stored wrapped by the KEK. Never deleted: retired data keys
    are still needed to read append-only audit details."""

    __tablename__ = "crypto_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16), index=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    def __repr__(self) -> str:  # never the key material
        return f"<CryptoKey {self.id} {self.purpose}>"


def decode_kek(value: str | None) -> bytes:
    """Decode a base64 KEK, refusing anything that is not exactly 32 bytes."""
    if not value:
        raise KeyConfigurationError("NANSEN_KEK is not set")
    try:
        kek = base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise KeyConfigurationError("NANSEN_KEK is not valid base64") from exc
    if len(kek) != 32:
        raise KeyConfigurationError("NANSEN_KEK must be 32 bytes (base64 of 32 random bytes)")
    return kek


def generate_kek() -> str:
    """A fresh KEK, base64-encoded, for an operator to store outside the database."""
    return base64.b64encode(os.urandom(32)).decode()


@dataclass
class _KeySet:
    data_keys: dict[int, AESGCM]
    current_data_key_id: int
    index_root: bytes
    loaded_at: float


class Keyring:
    """Unwrapped keys of one application, cached per process and refreshed every few seconds.

    Contract: ``encrypt`` always uses the newest data key; ``decrypt`` accepts any key the
    database holds (refreshing once when it meets an unknown key id); keys are created on first
    use when the database has none. Wrong KEK -> KeyConfigurationError, never garbage.
    """

    def __init__(self, kek: bytes, engine, blind_index_length: int = DEFAULT_BLIND_INDEX_LENGTH):
        self._kek = kek
        self._engine = engine
        self._lock = threading.Lock()
        self._keys: _KeySet | None = None
        self._derived_index_keys: dict[str, bytes] = {}
        self._indexers: dict[str, Callable[[str], bytes]] = {}
        self.blind_index_length = blind_index_length

    # -- loading -----------------------------------------------------------------------------
    def _load(self) -> _KeySet:
        rows = self._stored_keys()
        if not any(r.purpose == PURPOSE_DATA for r in rows) or not any(r.purpose == PURPOSE_INDEX for r in rows):
            raise KeyConfigurationError("this database has no encryption keys yet: run `flask crypto init`")
        data_keys: dict[int, AESGCM] = {}
        index_root = None
        for row in rows:
            try:
                raw = aes_key_unwrap(self._kek, row.wrapped_key)
            except InvalidUnwrap as exc:
                raise KeyConfigurationError(
                    "NANSEN_KEK does not unwrap the keys stored in this database") from exc
            if row.purpose == PURPOSE_DATA:
                data_keys[row.id] = AESGCM(raw)
            elif row.purpose == PURPOSE_INDEX and index_root is None:
                # The oldest index key wins, so racing creators agree and tokens never change.
                index_root = raw
        return _KeySet(data_keys, max(data_keys), index_root, time.monotonic())

    def _stored_keys(self):
        table = CryptoKey.__table__
        # A read-only connection: on SQLite it must not wait for the write lock that the
        # caller's own transaction may be holding (see app/database.py).
        with self._engine.connect().execution_options(read_only=True) as conn:
            return conn.execute(select(table.c.id, table.c.purpose, table.c.wrapped_key)
                                .order_by(table.c.id)).all()

    def initialise(self) -> bool:
        """Create the first data key and the blind-index root key when missing (idempotent).
        Returns True when keys were created. Run by `flask crypto init` after migrating."""
        purposes = {r.purpose for r in self._stored_keys()}
        if {PURPOSE_DATA, PURPOSE_INDEX} <= purposes:
            return False
        with self._engine.begin() as conn:
            for purpose in (PURPOSE_DATA, PURPOSE_INDEX):
                if purpose not in purposes:
                    conn.execute(CryptoKey.__table__.insert().values(
                        purpose=purpose, wrapped_key=aes_key_wrap(self._kek, os.urandom(32)),
                        created_at=utcnow()))
        self._keys = None
        return True

    def _keyset(self, *, force: bool = False) -> _KeySet:
        keys = self._keys
        if force or keys is None or time.monotonic() - keys.loaded_at > KEYRING_REFRESH_SECONDS:
            with self._lock:
                keys = self._keys = self._load()
        return keys

    def add_data_key(self, connection=None) -> int:
        """Create a new data key; it becomes the one every new write uses.

        With ``connection`` (e.g. ``db.session``) the key is inserted in the caller's
        transaction, so it commits together with its audit event, and the caller calls
        ``refresh()`` after the commit. Without, it uses a transaction of its own, which on
        SQLite must not be called while the caller's session holds the write lock."""
        statement = CryptoKey.__table__.insert().values(
            purpose=PURPOSE_DATA, wrapped_key=aes_key_wrap(self._kek, os.urandom(32)),
            created_at=utcnow()).returning(CryptoKey.__table__.c.id)
        if connection is not None:
            return connection.execute(statement).scalar_one()
        with self._engine.begin() as conn:
            new_id = conn.execute(statement).scalar_one()
        self.refresh()
        return new_id

    def refresh(self) -> None:
        """Reload the keys now (after committing a new one) instead of within the refresh time."""
        self._keyset(force=True)

    @property
    def current_key_id(self) -> int:
        return self._keyset().current_data_key_id

    # -- field encryption --------------------------------------------------------------------
    def encrypt(self, plaintext: bytes, context: str) -> bytes:
        """AES-256-GCM under the current data key, bound to ``context`` (table.column:row)."""
        keys = self._keyset()
        key_id = keys.current_data_key_id
        nonce = os.urandom(_NONCE_BYTES)
        header = _HEADER.pack(FORMAT_VERSION, key_id)
        sealed = keys.data_keys[key_id].encrypt(nonce, plaintext, header + context.encode())
        return header + nonce + sealed

    def decrypt(self, stored: bytes, context: str) -> bytes:
        """Authenticate and decrypt; DecryptionError (logged without the value) on any mismatch."""
        if len(stored) < HEADER_BYTES + 16:
            raise self._failure(context, None, "too short")
        version, key_id = _HEADER.unpack_from(stored)
        if version != FORMAT_VERSION:
            raise self._failure(context, key_id, "unknown format version")
        keys = self._keyset()
        if key_id not in keys.data_keys:
            keys = self._keyset(force=True)
            if key_id not in keys.data_keys:
                raise self._failure(context, key_id, "unknown key")
        nonce = stored[_HEADER.size:HEADER_BYTES]
        try:
            return keys.data_keys[key_id].decrypt(
                nonce, stored[HEADER_BYTES:], stored[:_HEADER.size] + context.encode())
        except InvalidTag:
            raise self._failure(context, key_id, "authentication failed") from None

    @staticmethod
    def _failure(context: str, key_id: int | None, why: str) -> DecryptionError:
        # The context names table, column and row id: no claimant data, so it can be logged.
        log.warning("decryption failed: %s (context=%s, key=%s)", why, context, key_id)
        return DecryptionError(f"stored value could not be decrypted ({why}) for {context}")

    def encryptor(self) -> Callable[[bytes, str], bytes]:
        """``encrypt`` with the current key looked up once: for a batch of many values.

        The returned function seals exactly like ``encrypt`` (same format, same associated
        data), under the data key that was current when it was made. A rotation starting
        meanwhile is harmless: those values sit on a still valid older key, and ``rotate_batch``
        moves them like any other."""
        keys = self._keyset()
        key_id = keys.current_data_key_id
        header = _HEADER.pack(FORMAT_VERSION, key_id)
        seal = keys.data_keys[key_id].encrypt
        urandom = os.urandom

        def encrypt(plaintext: bytes, context: str) -> bytes:
            nonce = urandom(_NONCE_BYTES)  # fresh per value: GCM must never reuse a nonce under one key
            return header + nonce + seal(nonce, plaintext, header + context.encode())
        return encrypt

    # -- blind indexes -----------------------------------------------------------------------
    def _index_key(self, purpose: str) -> bytes:
        # HKDF once per purpose and process: the root never changes (the oldest index key wins).
        key = self._derived_index_keys.get(purpose)
        if key is None:
            key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                       info=b"nansen blind index v1:" + purpose.encode()).derive(self._keyset().index_root)
            self._derived_index_keys[purpose] = key
        return key

    def blind_index(self, value: str, purpose: str) -> bytes:
        """HMAC-SHA256 token of ``value`` under a key derived for ``purpose`` (e.g.
        'person.family_name'), truncated. Purposes get unrelated keys, so tokens of one
        column cannot be matched against another's."""
        # hmac.digest is the one-shot C path: several times faster than hmac.new(...).digest().
        return hmac.digest(self._index_key(purpose), value.encode(), "sha256")[: self.blind_index_length]

    def blind_indexer(self, purpose: str) -> Callable[[str], bytes]:
        """``blind_index`` for one purpose with the key looked up once (same tokens)."""
        indexer = self._indexers.get(purpose)
        if indexer is None:
            key, length, digest = self._index_key(purpose), self.blind_index_length, hmac.digest

            def indexer(value: str) -> bytes:
                return digest(key, value.encode(), "sha256")[:length]
            self._indexers[purpose] = indexer
        return indexer


def keyring() -> Keyring:
    """The keyring of the current application, created on first use."""
    app = current_app._get_current_object()
    ring = app.extensions.get("nansen.keyring")
    if ring is None:
        ring = Keyring(decode_kek(app.config.get("NANSEN_KEK")), db.engine,
                       app.config.get("BLIND_INDEX_LENGTH", DEFAULT_BLIND_INDEX_LENGTH))
        app.extensions["nansen.keyring"] = ring
    return ring


def encrypt_value(plaintext: bytes, context: str) -> bytes:
    return keyring().encrypt(plaintext, context)


def decrypt_value(stored: bytes, context: str) -> bytes:
    return keyring().decrypt(stored, context)


def normalise_for_index(value: str) -> str:
    """Case-, accent- and spacing-insensitive form used for exact blind-index lookups."""
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.split())


def blind_index(value: str | None, purpose: str, *, normalise: bool = True) -> bytes | None:
    """Token for looking ``value`` up in the blind-index column named by ``purpose``."""
    if value is None or value == "":
        return None
    return keyring().blind_index(normalise_for_index(value) if normalise else value, purpose)


def blind_indexer(purpose: str, *, normalise: bool = True) -> Callable[[str | None], bytes | None]:
    """``blind_index`` for many values of one purpose: the keyring and key are looked up once.
    Gives exactly the tokens ``blind_index(value, purpose, normalise=...)`` gives."""
    token = keyring().blind_indexer(purpose)

    def index(value: str | None) -> bytes | None:
        if value is None or value == "":
            return None
        return token(normalise_for_index(value) if normalise else value)
    return index


def confirm_matches(candidates: Iterable[Any], read: Callable[[Any], str | None], wanted: str,
                    *, normalise: bool = True) -> list[Any]:
    """Drop the false positives a truncated blind index lets through, by comparing the decrypted
    value of each candidate (only the few candidates, never the table) with ``wanted``."""
    prepare = normalise_for_index if normalise else (lambda v: v)
    target = prepare(wanted)
    return [c for c in candidates if (value := read(c)) is not None and prepare(value) == target]


# -- encrypted model attributes ------------------------------------------------------------------

def _encode_text(value: str) -> bytes:
    return value.encode()


def _decode_text(raw: bytes) -> str:
    return raw.decode()


def _encode_date(value: date) -> bytes:
    if not isinstance(value, date):
        raise TypeError("EncryptedDate takes a datetime.date")
    return value.isoformat().encode()


def _decode_date(raw: bytes) -> date:
    return date.fromisoformat(raw.decode())


# One encoder for every value: json.dumps with options builds a new JSONEncoder per call, which
# is a measurable share of encrypting a claim's dozen sections. Same options, same bytes.
_JSON_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _encode_json(value: Any) -> bytes:
    return _JSON_ENCODER.encode(value).encode()


def _decode_json(raw: bytes) -> Any:
    return json.loads(raw)


@dataclass(frozen=True)
class EncryptedColumn:
    """One registered encrypted column, for rotation and status."""

    model: type
    attribute: str
    column_attribute: str
    rotatable: bool


ENCRYPTED_COLUMNS: list[EncryptedColumn] = []


class EncryptedField:
    """Declares an encrypted attribute on a model in one word (see EncryptedText & co).

    ``name = EncryptedText()`` adds a nullable binary column ``name`` mapped to the attribute
    ``_name_ciphertext`` and makes ``obj.name`` a plaintext property. The associated data binds
    the value to ``table.name:<primary key>``; a row whose primary key is still None gets a UUID
    when the key column is a string of 32 (the convention for claimant tables), otherwise the
    caller must flush first.
    """

    encode: Callable[[Any], bytes] = staticmethod(_encode_text)
    decode: Callable[[bytes], Any] = staticmethod(_decode_text)

    def __init__(self, *, rotatable: bool = True, doc: str | None = None):
        # Append-only tables (the audit trail) cannot be re-encrypted: their values stay on the
        # key they were written with, which is why retired keys are never deleted.
        self.rotatable = rotatable
        self.doc = doc

    def __set_name__(self, owner, name):
        self.name = name
        self.column_attribute = f"_{name}_ciphertext"
        self.cache_attribute = f"_{name}_plaintext_cache"
        # Added before declarative scans the class (__set_name__ runs before __init_subclass__).
        setattr(owner, self.column_attribute, mapped_column(name, LargeBinary, nullable=True))
        ENCRYPTED_COLUMNS.append(EncryptedColumn(owner, name, self.column_attribute, self.rotatable))

    @staticmethod
    def context(obj, column: str) -> str:
        return f"{obj.__tablename__}.{column}:{_row_key(obj)}"

    def __get__(self, obj, owner=None):
        if obj is None:
            return getattr(owner, self.column_attribute)
        stored = getattr(obj, self.column_attribute)
        if stored is None:
            return None
        cached = obj.__dict__.get(self.cache_attribute)
        if cached is not None and cached[0] is stored:
            return cached[1]
        value = self.decode(decrypt_value(stored, self.context(obj, self.name)))
        obj.__dict__[self.cache_attribute] = (stored, value)
        return value

    def __set__(self, obj, value):
        if value is None or value == "":
            setattr(obj, self.column_attribute, None)
            obj.__dict__.pop(self.cache_attribute, None)
            return
        stored = encrypt_value(self.encode(value), self.context(obj, self.name))
        setattr(obj, self.column_attribute, stored)
        obj.__dict__[self.cache_attribute] = (stored, value)


class EncryptedText(EncryptedField):
    """Encrypted ``str``."""


class EncryptedDate(EncryptedField):
    """Encrypted ``datetime.date``."""

    encode = staticmethod(_encode_date)
    decode = staticmethod(_decode_date)


class EncryptedJSON(EncryptedField):
    """Encrypted JSON-serialisable value (lists, dicts)."""

    encode = staticmethod(_encode_json)
    decode = staticmethod(_decode_json)


def _encode_bytes(value: bytes) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError("EncryptedBytes takes bytes")
    return bytes(value)


class EncryptedBytes(EncryptedField):
    """Encrypted ``bytes`` (generated documents such as decision letters)."""

    encode = staticmethod(_encode_bytes)
    decode = staticmethod(bytes)


def sealed_columns(model: type, row_id: str, values: dict[str, Any],
                   encrypt: Callable[[bytes, str], bytes] | None = None) -> dict[str, bytes | None]:
    """The stored (column name -> ciphertext) form of encrypted attributes of ``model`` for the
    row ``row_id``, for Core bulk inserts: the same encoding and associated data
    (``table.column:row-id``) as assigning the attributes on an instance, so the ORM reads them
    back as if they had been set one by one. None and "" are stored as NULL, as on assignment.
    ``encrypt`` (from ``Keyring.encryptor()``) lets a batch look the key up once."""
    encrypt = encrypt or keyring().encrypt
    table = model.__tablename__
    out: dict[str, bytes | None] = {}
    for name, value in values.items():
        encode = _encrypted_field(model, name).encode
        out[name] = None if value is None or value == "" else encrypt(encode(value), f"{table}.{name}:{row_id}")
    return out


def opened_columns(model: type, row_id: str, stored: dict[str, bytes | None]) -> dict[str, Any]:
    """The reverse of ``sealed_columns``: plaintext values of encrypted columns of ``model`` read
    with Core (column name -> stored bytes) for the row ``row_id``. A value bound to another
    row or column fails with DecryptionError, exactly as reading the attribute would."""
    ring = keyring()
    table = model.__tablename__
    return {name: None if value is None
            else _encrypted_field(model, name).decode(ring.decrypt(bytes(value), f"{table}.{name}:{row_id}"))
            for name, value in stored.items()}


_FIELDS: dict[tuple[type, str], EncryptedField] = {}


def _encrypted_field(model: type, name: str) -> EncryptedField:
    found = _FIELDS.get((model, name))
    if found is None:
        for klass in model.__mro__:
            candidate = vars(klass).get(name)
            if isinstance(candidate, EncryptedField):
                found = _FIELDS[model, name] = candidate
                break
        else:
            raise CryptoError(f"{model.__name__}.{name} is not an encrypted attribute")
    return found


def _row_key(obj) -> str:
    key = getattr(obj, "id", None)
    if key is None:
        id_column = type(obj).__table__.c.id
        if isinstance(id_column.type, String) and id_column.type.length == 32:
            key = obj.id = uuid.uuid4().hex
        else:
            raise CryptoError(f"{type(obj).__name__} needs a primary key before an encrypted field is set")
    return str(key)


def new_row_id() -> str:
    """Primary key for claimant tables: random, so it reveals nothing about identity or order."""
    return uuid.uuid4().hex


# -- rotation ------------------------------------------------------------------------------------

def key_id_prefix(key_id: int) -> bytes:
    return _HEADER.pack(FORMAT_VERSION, key_id)


def key_usage() -> dict[str, dict[int, int]]:
    """For each encrypted column (``table.column``), how many values sit on each key id."""
    usage: dict[str, dict[int, int]] = {}
    for enc in ENCRYPTED_COLUMNS:
        column = getattr(enc.model, enc.column_attribute)
        header = func.substr(column, 1, _HEADER.size)
        rows = db.session.execute(
            select(header, func.count()).where(column.is_not(None)).group_by(header)).all()
        usage[f"{enc.model.__tablename__}.{enc.attribute}"] = {
            _HEADER.unpack(bytes(h))[1]: n for h, n in rows}
    return usage


def values_on_old_keys() -> int:
    """How many re-encryptable stored values are not on the current data key."""
    current = keyring().current_key_id
    rotatable = {f"{e.model.__tablename__}.{e.attribute}" for e in ENCRYPTED_COLUMNS if e.rotatable}
    return sum(n for column, counts in key_usage().items() if column in rotatable
               for key, n in counts.items() if key != current)


def rotate_batch(batch_size: int = 500) -> int:
    """Re-encrypt up to ``batch_size`` values per column that are not on the current key and
    commit. Returns how many values were re-encrypted; 0 means nothing is left.

    Each UPDATE is a compare-and-set on the old ciphertext, so a value the application changed
    meanwhile is left as written (it is already on the current key). Safe to interrupt and run
    again: progress is simply the set of values still on old keys.
    """
    ring = keyring()
    current_prefix = key_id_prefix(ring.current_key_id)
    done = 0
    for enc in ENCRYPTED_COLUMNS:
        if not enc.rotatable:
            continue
        table = enc.model.__table__
        column = table.c[enc.attribute]
        primary_key = enc.model.__mapper__.primary_key[0]
        # In key order, like any other writer that touches several rows, so two transactions
        # never wait for each other's row locks in opposite orders (PostgreSQL deadlock).
        rows = db.session.execute(
            select(primary_key, column)
            .where(column.is_not(None), func.substr(column, 1, _HEADER.size) != current_prefix)
            .order_by(primary_key).limit(batch_size)).all()
        for row_id, stored in rows:
            context = f"{table.name}.{enc.attribute}:{row_id}"
            fresh = ring.encrypt(ring.decrypt(bytes(stored), context), context)
            result = db.session.execute(
                update(table).where(primary_key == row_id, column == stored).values({column: fresh}))
            done += result.rowcount
    db.session.commit()
    return done


# -- audit checkpoint signatures -----------------------------------------------------------------

CHECKPOINT_KEY_INFO = b"nansen audit checkpoint signing key v1"


def checkpoint_signing_key() -> Ed25519PrivateKey:
    """The Ed25519 key that signs audit checkpoints: its seed is HKDF-SHA256 of the KEK under
    its own info label, so it is unrelated to the data keys (which the KEK only wraps) and to
    the blind-index keys. Changes if the KEK changes (see docs/operations.md)."""
    kek = decode_kek(current_app.config.get("NANSEN_KEK"))
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=CHECKPOINT_KEY_INFO).derive(kek)
    return Ed25519PrivateKey.from_private_bytes(seed)


def checkpoint_public_key() -> bytes:
    """The raw 32-byte public key matching ``checkpoint_signing_key``, to publish or pin."""
    return checkpoint_signing_key().public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_id(public_key: bytes) -> str:
    """Short, stable name of a checkpoint public key (hex of the first 8 bytes of its SHA-256)."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def sign_checkpoint(message: bytes) -> tuple[bytes, str]:
    """Sign a checkpoint message; returns (signature, public key id)."""
    key = checkpoint_signing_key()
    raw_public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key.sign(message), public_key_id(raw_public)


def verify_checkpoint_signature(message: bytes, signature: bytes, public_key: bytes | None = None) -> bool:
    """True when ``signature`` is a valid Ed25519 signature of ``message`` under ``public_key``
    (default: this deployment's checkpoint key). Never raises for a bad signature."""
    try:
        raw = public_key if public_key is not None else checkpoint_public_key()
        Ed25519PublicKey.from_public_bytes(raw).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
