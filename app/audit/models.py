"""Append-only, hash-chained audit events.

Each row's ``hash`` is SHA-256 over the previous row's hash and this row's stored bytes (details
ciphertext included), so the chain can be verified without any decryption key. The table refuses
UPDATE and DELETE through database triggers (migration 0001); ``audit_chain_head`` holds the
last sequence number and hash, and is the row writers lock to append one at a time.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.crypto import EncryptedJSON
from app.db_types import UTCDateTime
from app.extensions import db

GENESIS_HASH = bytes(32)


class AuditEvent(db.Model):
    __tablename__ = "audit_event"
    __table_args__ = (
        db.Index("ix_audit_event_subject", "subject_type", "subject_id", "seq"),
        db.Index("ix_audit_event_actor", "actor_id", "seq"),
        db.Index("ix_audit_event_code", "code", "seq"),
        db.Index("ix_audit_event_occurred_at", "occurred_at"),
    )

    # Named ``id`` (the sequence number) so encrypted details bind to it like any other row.
    id: Mapped[int] = mapped_column("seq", BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_role: Mapped[str | None] = mapped_column(String(32))
    code: Mapped[int] = mapped_column(Integer)
    subject_type: Mapped[str | None] = mapped_column(String(32))
    subject_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str | None] = mapped_column(String(64))
    client_address: Mapped[str | None] = mapped_column(String(64))
    details = EncryptedJSON(rotatable=False)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))

    @property
    def seq(self) -> int:
        return self.id

    def __repr__(self) -> str:
        return f"<AuditEvent {self.id} code={self.code} outcome={self.outcome}>"


class AuditChainHead(db.Model):
    """Exactly one row (id 1): the sequence number and hash of the newest event."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))
