"""Bulk import of legacy claims (JSON Lines), through the registration service: the same
validation, encryption, blind indexes, duplicate check, triage and audit as the form.

Lines are registered in batches (``BATCH_SIZE``) by ``services.register_claims``: each batch is
one transaction in which every line is validated and checked before anything is written, so a
bad line is reported with its number and reason and leaves nothing behind, while the good lines
of the batch are kept. Should a batch fail in the database (a reference taken meanwhile by a
concurrent registration, say), it is rolled back whole and its lines are registered one by one
instead, each in a transaction of its own. Format: docs/import-format.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db
from app.intake import services

MAX_LINE_BYTES = 1_000_000
# Lines per transaction: large enough that per-transaction costs (the chain-head lock, the
# commit, the lookups) vanish per claim, small enough to hold the write lock (SQLite) briefly.
BATCH_SIZE = 500
ON_DUPLICATE = ("skip", "new")


@dataclass
class ImportProblem:
    line: int
    reason: str


@dataclass
class ImportReport:
    read: int = 0
    imported: int = 0
    valid: int = 0  # dry run: lines that would be imported
    skipped_duplicates: int = 0
    problems: list[ImportProblem] = field(default_factory=list)
    references: list[str] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.problems)


def _describe(errors: dict[str, list[str]]) -> str:
    return "; ".join(f"{path}: {' '.join(messages)}" for path, messages in sorted(errors.items()))


def import_claims(lines: Iterable[str], *, acting_user, dry_run: bool = False, on_duplicate: str = "skip",
                  on_line: Callable[[int], None] | None = None, batch_size: int | None = None) -> ImportReport:
    """Import one claim per line. ``on_duplicate``: "skip" reports lines whose people may already
    be registered, or appear on an earlier line of the file (a person must look at them); "new"
    registers them as new people (the decision is audited like the officer's). ``dry_run``
    validates and checks duplicates, writes nothing. An optional ``legacy_id`` key per line is
    kept in the audit event to trace the migration. ``batch_size``: lines per transaction.
    ``on_line(n)``: called as lines up to ``n`` are done."""
    # Batches are prepared and written in this process. Preparing the next batch in a forked
    # process while this one writes was tried: measured slower on the 2-core machine (the
    # preparation is most of the work, and shipping its rows back costs more than it saves).
    if on_duplicate not in ON_DUPLICATE:
        raise ValueError(f"on_duplicate must be one of {ON_DUPLICATE}")
    size = max(1, batch_size or BATCH_SIZE)
    report = ImportReport()
    batch: list[_Line] = []
    number = 0
    for number, raw in enumerate(lines, start=1):
        if raw.strip():
            report.read += 1
            parsed = _parse(number, raw)
            if isinstance(parsed, ImportProblem):
                report.problems.append(parsed)
            else:
                batch.append(parsed)
        if len(batch) >= size:
            _import_batch(batch, report, acting_user=acting_user, dry_run=dry_run, on_duplicate=on_duplicate)
            batch = []
            if on_line:
                on_line(number)
    if batch:
        _import_batch(batch, report, acting_user=acting_user, dry_run=dry_run, on_duplicate=on_duplicate)
    if on_line:
        on_line(number)
    report.problems.sort(key=lambda problem: problem.line)
    return report


@dataclass
class _Line:
    number: int
    payload: dict
    legacy_id: str | None


def _parse(number: int, raw: str) -> _Line | ImportProblem:
    if len(raw) > MAX_LINE_BYTES:
        return ImportProblem(number, "line longer than 1 MB")
    try:
        payload = json.loads(raw)
    except json.JSONDecodeError as exc:
        return ImportProblem(number, f"not valid JSON (column {exc.colno})")
    if not isinstance(payload, dict):
        return ImportProblem(number, "a line must hold one JSON object")
    legacy_id = payload.pop("legacy_id", None)
    return _Line(number, payload, str(legacy_id)[:100] if legacy_id is not None else None)


def _duplicate_reason(candidates: dict[int, list[services.DuplicateCandidate]]) -> str:
    # References and line numbers only: never a name or any other personal data.
    refs = sorted({c.case_reference for cands in candidates.values() for c in cands})
    return "possible duplicate of a person in " + ", ".join(refs)


def _import_batch(batch: list[_Line], report: ImportReport, *, acting_user, dry_run: bool, on_duplicate: str) -> None:
    try:
        outcomes = services.register_claims(
            [line.payload for line in batch], acting_user=acting_user, on_duplicate=on_duplicate,
            legacy_ids=[line.legacy_id for line in batch], labels=[f"line {line.number}" for line in batch],
            dry_run=dry_run)
    except SQLAlchemyError:
        # The batch was rolled back whole (register_claims did): nothing of it is stored.
        db.session.rollback()
        for line in batch:
            _import_one(line, report, acting_user=acting_user, on_duplicate=on_duplicate)
        return
    for line, outcome in zip(batch, outcomes, strict=True):
        if outcome.errors is not None:
            report.problems.append(ImportProblem(line.number, _describe(outcome.errors)))
        elif outcome.duplicates is not None:
            report.skipped_duplicates += 1
            report.problems.append(ImportProblem(line.number, _duplicate_reason(outcome.duplicates)))
        else:
            report.valid += 1
            if not dry_run:
                report.imported += 1
                report.references.append(outcome.reference)


def _import_one(line: _Line, report: ImportReport, *, acting_user, on_duplicate: str) -> None:
    """One line in a transaction of its own (the fallback when a batch fails in the database)."""
    decisions = None
    if on_duplicate == "new" and isinstance(line.payload.get("persons"), list):
        decisions = dict.fromkeys(range(len(line.payload["persons"])), "new")
    try:
        result = services.register_claim(line.payload, acting_user=acting_user, duplicate_decisions=decisions,
                                         legacy_id=line.legacy_id)
    except services.RegistrationInvalid as exc:
        db.session.rollback()
        report.problems.append(ImportProblem(line.number, _describe(exc.errors)))
        return
    except services.PossibleDuplicates as exc:
        db.session.rollback()
        report.skipped_duplicates += 1
        report.problems.append(ImportProblem(line.number, _duplicate_reason(exc.candidates)))
        return
    except SQLAlchemyError:
        db.session.rollback()
        report.problems.append(ImportProblem(line.number, "could not be stored (database error); nothing was saved"))
        return
    report.imported += 1
    report.valid += 1
    report.references.append(result.case.reference)
