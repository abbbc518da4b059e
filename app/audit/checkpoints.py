"""Signed checkpoints of the audit chain, kept outside the database (RFC 9162's signed tree head,
for a hash chain).

A checkpoint says "the trail had ``seq`` events and the newest one's hash was ``head_hash`` at
``time``", signed with Ed25519 (key derived from the KEK: app/crypto.py). Whoever rewrites the
database afterwards, even with superuser rights and the hashes recomputed, cannot make the
event at ``seq`` match again, nor drop events up to ``seq`` unnoticed, and cannot sign a new
checkpoint without the KEK. Files are small JSON documents named by sequence number, written
atomically and never overwritten, so the directory can be shipped to write-once storage as is.

This module only encodes, signs, stores and reads files; the transaction that takes the chain
head and audits the writing lives in app/audit/services.py, and checking them in verify.py.
"""

from __future__ import annotations

import base64
import json
import os
import re
import struct
import tempfile
from dataclasses import dataclass, replace
from datetime import datetime, UTC
from pathlib import Path

from app import crypto

FORMAT_VERSION = 1
_MESSAGE_PREFIX = b"nansen audit checkpoint v1\n"
FILE_PATTERN = re.compile(r"^checkpoint-(\d{12,20})\.json$")


class CheckpointError(Exception):
    """The checkpoint directory is not configured, a file cannot be read, or a checkpoint for
    the same sequence number already exists with another hash (history was rewritten)."""


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head_hash: bytes
    time: str  # ISO 8601 UTC, seconds, "Z": part of the signed message
    key_id: str
    signature: bytes
    path: Path | None = None

    @property
    def message(self) -> bytes:
        return checkpoint_message(self.seq, self.head_hash, self.time)

    def to_json(self) -> str:
        return json.dumps({"version": FORMAT_VERSION, "seq": self.seq, "head_hash": self.head_hash.hex(),
                           "time": self.time, "key_id": self.key_id,
                           "signature": base64.b64encode(self.signature).decode()}, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, path: Path | None = None) -> Checkpoint:
        data = json.loads(text)
        if data.get("version") != FORMAT_VERSION:
            raise ValueError("unknown checkpoint format version")
        seq, head_hash = data["seq"], bytes.fromhex(data["head_hash"])
        if not isinstance(seq, int) or seq < 1 or len(head_hash) != 32:
            raise ValueError("malformed sequence number or head hash")
        return cls(seq=seq, head_hash=head_hash, time=str(data["time"]), key_id=str(data["key_id"]),
                   signature=base64.b64decode(data["signature"], validate=True), path=path)


def checkpoint_message(seq: int, head_hash: bytes, time: str) -> bytes:
    """The signed bytes: a domain label, the size (8 bytes, big-endian), the head hash (32
    bytes) and the time text. Fixed widths first, so no two checkpoints share a message."""
    return _MESSAGE_PREFIX + struct.pack(">Q", seq) + bytes(head_hash) + time.encode()


def sign(seq: int, head_hash: bytes, at: datetime) -> Checkpoint:
    time = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    signature, key_id = crypto.sign_checkpoint(checkpoint_message(seq, head_hash, time))
    return Checkpoint(seq=seq, head_hash=bytes(head_hash), time=time, key_id=key_id, signature=signature)


def file_name(seq: int) -> str:
    return f"checkpoint-{seq:012d}.json"


def store(directory: str | Path, checkpoint: Checkpoint) -> Checkpoint:
    """Write ``checkpoint`` atomically (temporary file, fsync, hard link: readers never see half
    a file, and an existing file is never replaced). If a checkpoint for the same seq exists
    with the same head hash it is kept and returned; with another hash, CheckpointError."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / file_name(checkpoint.seq)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".checkpoint-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(checkpoint.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)  # nothing secret inside; readable by backup and monitoring
        try:
            os.link(temporary, target)
        except FileExistsError:
            existing = read(target)
            if existing.head_hash != checkpoint.head_hash:
                raise CheckpointError(f"{target.name} already exists with another head hash: the "
                                      "audit trail was rewritten; run `flask audit verify`") from None
            return existing
    finally:
        os.unlink(temporary)
    _fsync_directory(directory)
    return replace(checkpoint, path=target)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not every platform opens directories
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read(path: Path) -> Checkpoint:
    try:
        checkpoint = Checkpoint.from_json(path.read_text(), path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path.name} cannot be read: {type(exc).__name__}") from None
    match = FILE_PATTERN.match(path.name)
    if match and int(match.group(1)) != checkpoint.seq:
        raise CheckpointError(f"{path.name} holds the checkpoint of seq {checkpoint.seq}")
    return checkpoint


def load_all(directory: str | Path | None) -> tuple[list[Checkpoint], list[tuple[int, str]]]:
    """Every checkpoint in ``directory``, by sequence number, and the files that could not be
    read as ``(seq from the file name, reason)``. A missing directory holds no checkpoints."""
    if not directory or not Path(directory).is_dir():
        return [], []
    found, unreadable = [], []
    for path in Path(directory).iterdir():
        match = FILE_PATTERN.match(path.name)
        if not match:
            continue
        try:
            found.append(read(path))
        except CheckpointError as exc:
            unreadable.append((int(match.group(1)), str(exc)))
    return sorted(found, key=lambda c: c.seq), sorted(unreadable)
