"""Bulk import of legacy claims (JSON Lines), through the same registration service as the form:
the same validation, encryption, blind indexes, duplicate check, triage and audit.

Each line is registered in a transaction of its own, so a bad line is reported with its number
and reason and leaves nothing behind, while good lines are kept. Format: docs/import-format.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from app.extensions import db
from app.intake import services

MAX_LINE_BYTES = 1_000_000
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
                  on_line: Callable[[int], None] | None = None) -> ImportReport:
    """Import one claim per line. ``on_duplicate``: "skip" reports lines whose people may already
    be registered (a person must look at them); "new" registers them as new people (the decision
    is audited like the officer's). ``dry_run`` validates and checks duplicates, writes nothing.
    An optional ``legacy_id`` key per line is kept in the audit event to trace the migration."""
    if on_duplicate not in ON_DUPLICATE:
        raise ValueError(f"on_duplicate must be one of {ON_DUPLICATE}")
    report = ImportReport()
    for number, raw in enumerate(lines, start=1):
        if on_line:
            on_line(number)
        if not raw.strip():
            continue
        report.read += 1
        if len(raw) > MAX_LINE_BYTES:
            report.problems.append(ImportProblem(number, "line longer than 1 MB"))
            continue
        try:
            payload = json.loads(raw)
        except json.JSONDecodeError as exc:
            report.problems.append(ImportProblem(number, f"not valid JSON (column {exc.colno})"))
            continue
        if not isinstance(payload, dict):
            report.problems.append(ImportProblem(number, "a line must hold one JSON object"))
            continue
        legacy_id = payload.pop("legacy_id", None)
        legacy_id = str(legacy_id)[:100] if legacy_id is not None else None
        try:
            if dry_run:
                data = services.validate_registration(payload)
                duplicates = [p for p in data.persons if services.find_duplicate_candidates(p)]
                if duplicates and on_duplicate == "skip":
                    report.skipped_duplicates += 1
                    report.problems.append(ImportProblem(number, "possible duplicate of a registered person"))
                else:
                    report.valid += 1
                db.session.rollback()
                continue
            decisions = None
            if on_duplicate == "new" and isinstance(payload.get("persons"), list):
                decisions = dict.fromkeys(range(len(payload["persons"])), "new")
            result = services.register_claim(payload, acting_user=acting_user, duplicate_decisions=decisions,
                                             legacy_id=legacy_id)
        except services.RegistrationInvalid as exc:
            db.session.rollback()
            report.problems.append(ImportProblem(number, _describe(exc.errors)))
            continue
        except services.PossibleDuplicates as exc:
            db.session.rollback()
            refs = sorted({c.case_reference for cands in exc.candidates.values() for c in cands})
            report.skipped_duplicates += 1
            report.problems.append(ImportProblem(number, "possible duplicate of a person in " + ", ".join(refs)))
            continue
        report.imported += 1
        report.valid += 1
        report.references.append(result.case.reference)
    return report
