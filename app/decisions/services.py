"""Decision services: lifecycle transitions, interviews, drafting, four-eyes review, issue with
letters, notification, appeals. Each public function owns its transaction: it checks scope,
permission and guards, changes the domain, records the audit event(s) and commits once. The actor
comes in as ``acting_user``; nothing here reads the request. ``now`` may be given (tests); it
defaults to the current UTC time.

Concurrency: the case row is the lock point for everything on a case. Every write locks it
(SELECT ... FOR UPDATE on PostgreSQL; SQLite runs each write transaction under BEGIN IMMEDIATE),
compares the version the user saw (``expected_version``) and bumps the version through the
mapper's ``version_id_col``. Two people issuing or editing on the same case at once: the first
commits, the second gets DecisionConflict carrying what they submitted, and nothing of theirs
is written.

Examination rounds: when an appeal remits a case it is examined again. Interviews and decisions
carry the round they belong to; the round being worked on is one more than the last issued one
while the case is before a decision, so a remitted case starts with no interview and no draft.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pycountry
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import bindparam, false, func, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.exc import StaleDataError

from app import crypto
from app.audit.codes import EventCode
from app.audit.services import record, record_and_commit
from app.auth.models import Office, User
from app.auth.permissions import Permission
from app.db_types import utcnow
from app.database import commit_after_read, keeping_loaded
from app.decisions import lifecycle, letters, settings
from app.decisions.models import (APPEAL_OUTCOMES, ATTENDANCE, CANCEL_REASONS, INTERPRETER_GENDERS, OMISSION_GROUNDS,
                                  SERVICE_METHODS, Appeal, Decision, DecisionLetter, DecisionReview, Interview,
                                  InterviewOmission, Notification)
from app.extensions import db
from app.intake.models import Case, Person
from app.intake.services import CaseNotFound, _scoped_case

BIDX_INTERPRETER = "interview.interpreter"
MIN_INTERVIEW_MINUTES, MAX_INTERVIEW_MINUTES = 15, 8 * 60
MAX_REASONS = 50_000
MAX_NOTES = 100_000
MAX_COMMENTS = 10_000
MAX_SHORT = 200
MAX_LEGAL_BASIS = 10
MAX_DETAILS = 2000
MAX_REFERENCE = 64
CASEWORK = (Permission.DECISION_DRAFT, Permission.DECISION_REVIEW)


# -- refusals ------------------------------------------------------------------------------------

class DecisionError(Exception):
    """Base class of refusals the user can act on."""


class InvalidInput(DecisionError):
    """Input refused; ``errors`` maps field names to messages (``__all__`` for the form)."""

    def __init__(self, errors: Mapping[str, list[str]]):
        super().__init__("invalid input: " + ", ".join(sorted(errors)))
        self.errors = dict(errors)


class TransitionRefused(DecisionError):
    """A lifecycle step was refused; ``messages`` says every reason, translated."""

    def __init__(self, source: str, target: str, messages: list[str]):
        super().__init__(f"transition {source} -> {target} refused: " + " ".join(messages))
        self.source, self.target, self.messages = source, target, messages


class DecisionForbidden(DecisionError):
    """The user's role may not do this at all (answered with 403)."""


class DecisionConflict(DecisionError):
    """Someone changed the case after this user opened it. Nothing of this user's was written;
    ``submitted`` is what they sent, to be shown back."""

    def __init__(self, submitted: Mapping | None, current_version: int):
        super().__init__("the case was changed meanwhile")
        self.submitted = dict(submitted or {})
        self.current_version = current_version


# -- helpers -------------------------------------------------------------------------------------

def _now(now: datetime | None) -> datetime:
    if now is None:
        return utcnow()
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("naive datetime refused: pass an aware UTC datetime")
    return now


def permission_values(user) -> frozenset[str]:
    """The permission strings ``user`` holds, as the lifecycle table names them."""
    return frozenset(p.value for p in Permission if user.can(p))


def _require_any(user, permissions: Iterable[Permission], what: str) -> None:
    if not any(user.can(p) for p in permissions):
        raise DecisionForbidden(f"{what} needs one of: " + ", ".join(p.value for p in permissions))


def _lock_case(case_id: str, acting_user, expected_version: int | None, submitted: Mapping | None) -> Case:
    """The case, in scope, locked for this transaction and re-read; DecisionConflict when its
    version is not the one the user saw.

    One read: the locking SELECT is also the scope check. Only when it finds nothing, or a case
    of another office, does intake's ``_scoped_case`` take over, to refuse in the one way every
    package refuses (CaseNotFound, and the denial audited)."""
    case = None
    if case_id and len(case_id) <= 32:
        # Fetched (not just executed): the ORM refreshes the instance only while loading the rows.
        case = db.session.execute(select(Case).where(Case.id == case_id).with_for_update()
                                  .execution_options(populate_existing=True)).scalar_one_or_none()
    if case is None or case.office_id != acting_user.office_id:
        _scoped_case(case_id, acting_user)  # raises
        raise CaseNotFound("no such case")  # not reached: _scoped_case refuses what we refuse
    if expected_version is not None and case.version != expected_version:
        current = case.version
        db.session.rollback()
        raise DecisionConflict(submitted, current)
    return case


def _touch(case: Case, now: datetime) -> None:
    """Make the case row part of this write, so its version is checked and bumped."""
    case.updated_at = now


def _commit(case_id: str, submitted: Mapping | None) -> None:
    try:
        db.session.commit()
    except StaleDataError:
        # Someone committed between our read and our write (only possible without the row lock).
        db.session.rollback()
        current = db.session.get(Case, case_id)
        raise DecisionConflict(submitted, current.version if current else 0) from None


def _commit_keeping_loaded(case_id: str, submitted: Mapping | None, *written) -> None:
    """``_commit``, after which the session forgets what it held as usual (expired: reloaded on
    next use) except the acting user and the rows this service wrote (``written``).

    Those stay loaded: the rows hold exactly what was just committed under the case lock, and
    the acting user is the one this call was checked against, as a request checks the user it
    loaded once. Without this, a caller that goes on in the same session (an import, a CLI,
    the next call) pays a reload of the user by its key at its first permission check, which in
    W5 was 30% of drafting's CPU. On a conflict nothing is expired beyond what the rollback
    expires (``keeping_loaded`` skips that step when its block raises)."""
    with keeping_loaded(kept=written):
        _commit(case_id, submitted)


def _rollback_and_raise(error: DecisionError):
    db.session.rollback()
    raise error


def _optional_text(value: str | None, field: str, errors: dict[str, list[str]], *, limit: int,
                   required: bool = False, message: str | None = None) -> str | None:
    """A free-text input cleaned the one way every service here cleans it: stripped, ``None``
    when empty. When ``required`` and empty, ``message`` is added to ``errors[field]``; when
    longer than ``limit`` characters, "At most N characters." is (the two cannot both apply).
    Returns the cleaned text; the caller checks ``errors`` before storing it."""
    text = (value or "").strip() or None
    if required and not text:
        errors.setdefault(field, []).append(message)
    if text and len(text) > limit:
        errors.setdefault(field, []).append(_("At most %(n)d characters.", n=limit))
    return text


def person_name(person: Person) -> str:
    identity = person.identity or {}
    return " ".join(part for part in (identity.get("given_names"), identity.get("family_name")) if part) or "-"


def _issued_round(case_id: str) -> int:
    return db.session.scalar(select(func.coalesce(func.max(Decision.round), 0)).where(
        Decision.case_id == case_id, Decision.status == "issued")) or 0


def working_round(case: Case) -> int:
    """The examination round the case is in: a new one while it is before a decision."""
    return _round_after(case.status, _issued_round(case.id))


def _round_after(status: str, issued_round: int) -> int:
    """``working_round`` from the case's status and the last round with an issued decision."""
    return issued_round + 1 if status in lifecycle.OPEN_STATUSES else max(issued_round, 1)


def _is_complete(decision: Decision) -> bool:
    if not decision.outcome or not decision.legal_basis:
        return False
    return decision.outcome not in settings.NEGATIVE_OUTCOMES or decision._reasons_ciphertext is not None


def _approved_by_other(decision: Decision) -> bool:
    return (decision.status in ("approved", "issued") and decision.approved_by_id is not None
            and decision.approved_by_id not in (decision.drafted_by_id, decision.last_edited_by_id))


def _current_decisions(case: Case, round_: int) -> list[Decision]:
    return db.session.scalars(select(Decision).where(
        Decision.case_id == case.id, Decision.round == round_, Decision.corrects_decision_id.is_(None))
        .order_by(Decision.created_at)).all()


def case_facts(case: Case, *, reason_given: bool = False, today: date | None = None) -> lifecycle.CaseFacts:
    """What exists on ``case`` for the lifecycle guards (a few small queries on one case)."""
    round_ = working_round(case)
    interviews = db.session.execute(select(Interview.status, Interview.attendance).where(
        Interview.case_id == case.id, Interview.round == round_)).all()
    omitted = db.session.scalar(select(InterviewOmission.id).where(
        InterviewOmission.case_id == case.id, InterviewOmission.round == round_)) is not None
    current = _current_decisions(case, round_)
    issued_ids = [d.id for d in db.session.scalars(select(Decision).where(
        Decision.case_id == case.id, Decision.round == round_, Decision.status == "issued"))]
    notifications = db.session.scalars(select(Notification).where(Notification.decision_id.in_(issued_ids))).all() \
        if issued_ids else []
    appeals = db.session.scalars(select(Appeal).where(Appeal.decision_id.in_(issued_ids))).all() if issued_ids else []
    return _facts_of(case, interviews, omitted, current, issued_ids, notifications, appeals,
                     reason_given=reason_given, today=today)


def _facts_of(case: Case, interviews: list[tuple[str, str | None]], omitted: bool, current: list[Decision],
              issued_ids: list[str], notifications: list[Notification], appeals: list[Appeal], *,
              reason_given: bool, today: date | None) -> lifecycle.CaseFacts:
    """The lifecycle facts from what was read of the working round: (status, attendance) of its
    interviews, whether it has an omission, its original decisions, the ids of its issued ones
    and their notifications and appeals. Pure: ``case_facts`` queries these; the workspace
    passes what it has loaded for the page already."""
    today = today or utcnow().date()
    originals_issued = [d for d in current if d.status == "issued"]
    notified_ids = {n.decision_id for n in notifications}
    return lifecycle.CaseFacts(
        persons=len(case.persons),
        has_track=bool(case.track),
        has_assignee=case.assigned_to_id is not None,
        scheduled_interviews=sum(1 for s, _a in interviews if s == "scheduled"),
        attended_interviews=sum(1 for s, a in interviews if s == "recorded" and a == "attended"),
        interview_omitted=omitted,
        drafts=len(current),
        complete_drafts=sum(1 for d in current if _is_complete(d)),
        negative_without_reasons=sum(1 for d in current if d.outcome in settings.NEGATIVE_OUTCOMES
                                     and d._reasons_ciphertext is None),
        approved_by_other=sum(1 for d in current if _approved_by_other(d)),
        returned_with_comments=sum(1 for d in current if d.status == "returned"),
        issued=len(originals_issued),
        notified=sum(1 for d in originals_issued if d.id in notified_ids),
        appeals_pending=sum(1 for a in appeals if a.outcome is None),
        appeals_decided=sum(1 for a in appeals if a.outcome is not None),
        appeals_remitted=sum(1 for a in appeals if a.outcome == "remitted"),
        appeal_period_over=bool(issued_ids) and len(notifications) == len(issued_ids)
        and all(n.appeal_deadline < today for n in notifications),
        issued_outcomes=frozenset(d.outcome for d in originals_issued if d.outcome),
        reason_given=reason_given,
    )


def _translate(verdict: lifecycle.Verdict) -> list[str]:
    return [_(message, **params) for message, params in verdict.reasons]


def _apply_transition(case: Case, target: str, *, acting_user, now: datetime, reason: str | None = None,
                      automatic: bool = False) -> None:
    """Check and take one lifecycle step inside the caller's transaction (no commit)."""
    facts = case_facts(case, reason_given=bool(reason and reason.strip()), today=now.date())
    verdict = lifecycle.check(case.status, target, facts, permission_values(acting_user))
    if not verdict.allowed:
        raise TransitionRefused(case.status, target, _translate(verdict))
    source = case.status
    case.status = target
    _touch(case, now)
    if target == lifecycle.TRIAGED and source == lifecycle.APPEAL_DECIDED:
        # Remitted: examined again, from the queue of its track.
        case.assigned_to_id = None
        case.assigned_at = None
    details = {"from": source, "to": target, **({"automatic": True} if automatic else {})}
    if reason and reason.strip():
        details["reason"] = reason.strip()
    record(EventCode.CASE_TRANSITION, actor=acting_user, subject=("case", case.id), details=details)


def _try_transition(case: Case, target: str, *, acting_user, now: datetime) -> bool:
    """Take a step that follows from another action when its guards allow it."""
    facts = case_facts(case, today=now.date())
    if lifecycle.check(case.status, target, facts, permission_values(acting_user)).allowed:
        _apply_transition(case, target, acting_user=acting_user, now=now, automatic=True)
        return True
    return False


# -- lifecycle -----------------------------------------------------------------------------------

def transition(case: Case | str, to_status: str, *, acting_user, expected_version: int | None = None,
               reason: str | None = None, now: datetime | None = None) -> Case:
    """Move ``case`` to ``to_status`` when the lifecycle table allows it for this user: checks
    the permission and every guard, refuses with TransitionRefused (every reason, translated),
    audits CASE_TRANSITION (from, to, reason), bumps the version, commits."""
    now = _now(now)
    case_id = case if isinstance(case, str) else case.id
    submitted = {"to_status": to_status, "reason": reason}
    case = _lock_case(case_id, acting_user, expected_version, submitted)
    if reason is not None and len(reason) > 2000:
        _rollback_and_raise(InvalidInput({"reason": [_("At most 2000 characters.")]}))
    try:
        _apply_transition(case, to_status, acting_user=acting_user, now=now, reason=reason)
    except TransitionRefused:
        db.session.rollback()
        raise
    _commit(case_id, submitted)
    return case


def mark_triaged(case_id: str, *, acting_user, expected_version: int | None = None) -> Case:
    """``registered -> triaged`` once triage has set a track (triage does not move the status)."""
    return transition(case_id, lifecycle.TRIAGED, acting_user=acting_user, expected_version=expected_version)


def next_steps(case: Case, acting_user, *, today: date | None = None) -> list[lifecycle.Verdict]:
    """The steps the table offers from the case's status, each allowed or with its reasons."""
    return lifecycle.next_steps(case.status, case_facts(case, reason_given=True, today=today),
                                permission_values(acting_user))


# -- interviews ----------------------------------------------------------------------------------

def _advisory_key(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def _lock_bookings(keys: Iterable[str]) -> None:
    """PostgreSQL: serialise bookings of the same interviewer or interpreter (transaction-scoped
    advisory locks, taken in a fixed order). SQLite write transactions are serial already."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    for key in sorted(set(keys)):
        db.session.execute(select(func.pg_advisory_xact_lock(_advisory_key(key))))


def _valid_language(code: str) -> bool:
    return len(code) == 3 and pycountry.languages.get(alpha_3=code) is not None


def schedule_interview(case_id: str, *, acting_user, person_id: str | None, starts_at: datetime,
                       duration_minutes: int, remote: bool, place: str | None,
                       interpreter_language: str | None = None, interpreter_gender: str | None = None,
                       interpreter_name: str | None = None, interviewer_id: int | None = None,
                       expected_version: int | None = None, now: datetime | None = None) -> Interview:
    """Book a personal interview. Refused (InvalidInput, every failure) when the time is naive
    or past, the duration is out of range, neither a place nor remote is given, the language is
    not ISO 639-3, or the interviewer or the interpreter is already booked at an overlapping
    time (checked in SQL, under a lock per interviewer and interpreter). The interpreter's
    language and gender default to the person's recorded needs. Moves ``assigned`` to
    ``interview_scheduled``. Audited (INTERVIEW_SCHEDULED, no names), commits."""
    now = _now(now)
    submitted = {"person_id": person_id, "starts_at": starts_at, "duration_minutes": duration_minutes,
                 "remote": remote, "place": place, "interpreter_language": interpreter_language,
                 "interpreter_gender": interpreter_gender, "interpreter_name": interpreter_name}
    _require_any(acting_user, CASEWORK, "scheduling an interview")
    case = _lock_case(case_id, acting_user, expected_version, submitted)
    interview = _book(case, acting_user=acting_user, person_id=person_id, starts_at=starts_at,
                      duration_minutes=duration_minutes, remote=remote, place=place,
                      interpreter_language=interpreter_language, interpreter_gender=interpreter_gender,
                      interpreter_name=interpreter_name, interviewer_id=interviewer_id, now=now)
    _commit(case.id, submitted)
    return interview


def _book(case: Case, *, acting_user, person_id: str | None, starts_at: datetime, duration_minutes: int,
          remote: bool, place: str | None, interpreter_language: str | None, interpreter_gender: str | None,
          interpreter_name: str | None, interviewer_id: int | None, now: datetime) -> Interview:
    """Validate and book an interview on the locked ``case`` inside the caller's transaction (no
    commit): ``schedule_interview``'s rules, its audit event and its lifecycle steps."""
    errors: dict[str, list[str]] = {}
    catching_up = case.status in (lifecycle.REGISTERED, lifecycle.TRIAGED) and case.assigned_to_id is not None
    if not catching_up and case.status not in (lifecycle.ASSIGNED, lifecycle.INTERVIEW_SCHEDULED,
                                               lifecycle.INTERVIEWED):
        errors.setdefault("__all__", []).append(
            _("Interviews are scheduled once the case is assigned and before a decision is drafted."))
    person = next((p for p in case.persons if p.id == person_id), None) if person_id else case.principal
    if person is None:
        errors.setdefault("person_id", []).append(_("Choose a person of this case."))
    if starts_at is None or starts_at.tzinfo is None or starts_at.utcoffset() is None:
        errors.setdefault("starts_at", []).append(_("Give the date and time (UTC)."))
    elif starts_at <= now:
        errors.setdefault("starts_at", []).append(_("The interview must be in the future."))
    if not isinstance(duration_minutes, int) or not MIN_INTERVIEW_MINUTES <= duration_minutes <= MAX_INTERVIEW_MINUTES:
        errors.setdefault("duration_minutes", []).append(
            _("Between %(low)d and %(high)d minutes.", low=MIN_INTERVIEW_MINUTES, high=MAX_INTERVIEW_MINUTES))
    place = (place or "").strip() or None
    if remote and place:
        errors.setdefault("place", []).append(_("A remote interview has no place: leave it empty."))
    if not remote and not place:
        errors.setdefault("place", []).append(_("Give the place, or choose a remote interview."))
    if place and len(place) > MAX_SHORT:
        errors.setdefault("place", []).append(_("At most %(n)d characters.", n=MAX_SHORT))
    needs = (person.language or {}) if person is not None else {}
    language = (interpreter_language or "").strip().lower() or (
        needs.get("preferred_language") if needs.get("interpreter_needed") else None)
    if language and not _valid_language(language):
        errors.setdefault("interpreter_language", []).append(_("Use an ISO 639-3 language code (e.g. ara, fas, tir)."))
    if needs.get("interpreter_needed") and not language:
        errors.setdefault("interpreter_language", []).append(_("This person needs an interpreter: give the language."))
    gender = interpreter_gender or needs.get("interpreter_gender") or "any"
    if gender not in INTERPRETER_GENDERS:
        errors.setdefault("interpreter_gender", []).append(_("Choose one of the listed options."))
    name = _optional_text(interpreter_name, "interpreter_name", errors, limit=MAX_SHORT)
    if name and not language:
        errors.setdefault("interpreter_language", []).append(_("Give the interpreter's language."))
    interviewer = db.session.get(User, interviewer_id) if interviewer_id else acting_user
    if interviewer is None or interviewer.office_id != case.office_id or not interviewer.active or not any(
            interviewer.can(p) for p in CASEWORK):
        errors.setdefault("interviewer_id", []).append(_("Choose a caseworker of this office."))
    if errors:
        _rollback_and_raise(InvalidInput(errors))

    ends_at = starts_at + timedelta(minutes=duration_minutes)
    interpreter_bidx = crypto.blind_index(name, BIDX_INTERPRETER) if name else None
    _lock_bookings([f"interviewer:{interviewer.id}", *([f"interpreter:{interpreter_bidx.hex()}"] if name else [])])
    clashes = db.session.execute(select(Interview.interviewer_id, Interview.interpreter_bidx).where(
        Interview.status != "cancelled", Interview.starts_at < ends_at, Interview.ends_at > starts_at,
        or_(Interview.interviewer_id == interviewer.id,
            Interview.interpreter_bidx == interpreter_bidx if interpreter_bidx else false()))).all()
    if any(row.interviewer_id == interviewer.id for row in clashes):
        errors.setdefault("starts_at", []).append(_("The interviewer already has an interview at that time."))
    if interpreter_bidx and any(row.interpreter_bidx is not None and bytes(row.interpreter_bidx) == interpreter_bidx
                                for row in clashes):
        errors.setdefault("interpreter_name", []).append(_("This interpreter is already booked at that time."))
    if errors:
        _rollback_and_raise(InvalidInput(errors))

    interview = Interview(case_id=case.id, person_id=person.id, interviewer_id=interviewer.id,
                          round=working_round(case), starts_at=starts_at, ends_at=ends_at,
                          duration_minutes=duration_minutes, remote=bool(remote), place=place,
                          interpreter_language=language, interpreter_gender=gender, status="scheduled",
                          scheduled_by_id=acting_user.id)
    interview.interpreter_name = name
    interview.interpreter_bidx = interpreter_bidx
    db.session.add(interview)
    _touch(case, now)
    db.session.flush()
    record(EventCode.INTERVIEW_SCHEDULED, actor=acting_user, subject=("case", case.id),
           details={"interview_id": interview.id, "person_id": person.id, "starts_at": starts_at.isoformat(),
                    "duration_minutes": duration_minutes, "remote": bool(remote), "interviewer_id": interviewer.id,
                    "interpreter_language": language, "interpreter_gender": gender,
                    "interpreter_booked": bool(name)})
    if catching_up:
        _apply_transition(case, lifecycle.ASSIGNED, acting_user=acting_user, now=now, automatic=True)
    if case.status == lifecycle.ASSIGNED:
        db.session.flush()
        _apply_transition(case, lifecycle.INTERVIEW_SCHEDULED, acting_user=acting_user, now=now)
    return interview


def _scoped_interview(interview_id: str, acting_user) -> Interview:
    interview = db.session.get(Interview, interview_id) if interview_id and len(interview_id) <= 32 else None
    if interview is None:
        raise CaseNotFound("no such interview")
    _scoped_case(interview.case_id, acting_user)
    return interview


def record_interview(interview_id: str, *, acting_user, attendance: str, notes: str | None,
                     expected_version: int | None = None, now: datetime | None = None) -> Interview:
    """Record a scheduled interview once it has started: attendance and (when the applicant
    attended) the notes, encrypted (S3). A recorded interview is not recorded again. When the
    applicant attended, the interview is ``recorded`` and ``interview_scheduled`` moves to
    ``interviewed`` (INTERVIEW_RECORDED: attendance, never the notes). When they did not appear
    (with or without good reason) the interview is ``missed`` (INTERVIEW_MISSED) and, when no
    other interview is scheduled, ``interview_scheduled`` moves back to ``assigned``: a new one
    can be scheduled, or, after a failure to appear without good reason, the omission of the
    interview recorded so the decision is taken on the file. Commits once."""
    now = _now(now)
    submitted = {"attendance": attendance, "notes": notes}
    _require_any(acting_user, CASEWORK, "recording an interview")
    interview = _scoped_interview(interview_id, acting_user)
    case = _lock_case(interview.case_id, acting_user, expected_version, submitted)
    db.session.refresh(interview)
    errors: dict[str, list[str]] = {}
    if interview.status != "scheduled":
        errors.setdefault("__all__", []).append(_("This interview is not waiting to be recorded."))
    elif interview.starts_at > now:
        errors.setdefault("__all__", []).append(_("An interview is recorded once it has started."))
    if attendance not in ATTENDANCE:
        errors.setdefault("attendance", []).append(_("Choose one of the listed options."))
    notes = _optional_text(notes, "notes", errors, limit=MAX_NOTES, required=attendance == "attended",
                           message=_("Write the interview notes."))
    if errors:
        _rollback_and_raise(InvalidInput(errors))
    attended = attendance == "attended"
    interview.status = "recorded" if attended else "missed"
    interview.attendance = attendance
    interview.notes = notes
    interview.recorded_by_id = acting_user.id
    interview.recorded_at = now
    _touch(case, now)
    record(EventCode.INTERVIEW_RECORDED if attended else EventCode.INTERVIEW_MISSED, actor=acting_user,
           subject=("case", case.id),
           details={"interview_id": interview.id, "attendance": attendance, "notes_written": bool(notes)})
    if case.status == lifecycle.INTERVIEW_SCHEDULED:
        db.session.flush()
        if attended:
            _apply_transition(case, lifecycle.INTERVIEWED, acting_user=acting_user, now=now)
        else:
            _try_transition(case, lifecycle.ASSIGNED, acting_user=acting_user, now=now)
    _commit(case.id, submitted)
    return interview


def _may_manage_interviews(case: Case, acting_user) -> bool:
    """The caseworker assigned to the case, or a supervisor of its office (the office is
    checked by the case lock)."""
    return acting_user.can(Permission.DECISION_REVIEW) or (
        case.assigned_to_id is not None and case.assigned_to_id == acting_user.id)


def cancel_interview(interview_id: str, *, acting_user, reason: str | None, details: str | None = None,
                     expected_version: int | None = None, now: datetime | None = None) -> Interview:
    """Cancel a scheduled interview (claimant ill, interpreter or caseworker unavailable, at the
    applicant's request, or another reason written out): by the caseworker assigned to the case
    or a supervisor of its office, only while it is scheduled (not once recorded or missed). The
    interview is kept, status ``cancelled`` with the reason (free text encrypted, S3), who and
    when; it no longer counts for double bookings. When no other interview of the case is
    scheduled, ``interview_scheduled`` moves back to ``assigned`` so a new one can be booked
    (rescheduling is cancelling and booking again). Refused with InvalidInput (every failure).
    Audited (INTERVIEW_CANCELLED: the reason code and whether details were written, never the
    text), commits once."""
    now = _now(now)
    submitted = {"reason": reason, "details": details}
    _require_any(acting_user, CASEWORK, "cancelling an interview")
    interview = _scoped_interview(interview_id, acting_user)
    case = _lock_case(interview.case_id, acting_user, expected_version, submitted)
    db.session.refresh(interview)
    errors, details = _cancel_errors(case, interview, acting_user, reason, details)
    if errors:
        _rollback_and_raise(InvalidInput(errors))
    _cancel(case, interview, acting_user=acting_user, reason=reason, details=details, now=now)
    if case.status == lifecycle.INTERVIEW_SCHEDULED:
        db.session.flush()
        _try_transition(case, lifecycle.ASSIGNED, acting_user=acting_user, now=now)
    _commit(case.id, submitted)
    return interview


def _cancel_errors(case: Case, interview: Interview, acting_user, reason: str | None,
                   details: str | None) -> tuple[dict[str, list[str]], str | None]:
    """Every reason ``interview`` may not be cancelled with this reason, and the details cleaned."""
    errors: dict[str, list[str]] = {}
    if not _may_manage_interviews(case, acting_user):
        errors.setdefault("__all__", []).append(
            _("Only the caseworker assigned to the case or a supervisor may cancel its interviews."))
    if interview.status != "scheduled":
        errors.setdefault("__all__", []).append(_("Only a scheduled interview can be cancelled."))
    if reason not in CANCEL_REASONS:
        errors.setdefault("reason", []).append(_("Choose one of the listed options."))
    details = _optional_text(details, "details", errors, limit=MAX_DETAILS, required=reason == "other",
                             message=_("Say why the interview is cancelled."))
    return errors, details


def _cancel(case: Case, interview: Interview, *, acting_user, reason: str, details: str | None, now: datetime,
            rescheduled_as: str | None = None) -> None:
    interview.status = "cancelled"
    interview.cancel_reason = reason
    interview.cancel_details = details
    interview.cancelled_by_id = acting_user.id
    interview.cancelled_at = now
    _touch(case, now)
    event = {"interview_id": interview.id, "reason": reason, "details_written": details is not None,
             "starts_at": interview.starts_at.isoformat()}
    if rescheduled_as:
        event["rescheduled_as"] = rescheduled_as
    record(EventCode.INTERVIEW_CANCELLED, actor=acting_user, subject=("case", case.id), details=event)


def reschedule_interview(interview_id: str, *, acting_user, reason: str | None, details: str | None = None,
                         starts_at: datetime, expected_version: int | None = None,
                         now: datetime | None = None) -> Interview:
    """Cancel + schedule in one transaction: the scheduled interview is cancelled with its reason
    (``cancel_interview``'s rules) and a new one booked at ``starts_at`` for the same person,
    interviewer, duration, place or remote, and interpreter (``schedule_interview``'s rules,
    the double-booking check ignoring the interview being replaced). Either both happen or
    nothing does; the case stays ``interview_scheduled``. Audited (INTERVIEW_SCHEDULED, then
    INTERVIEW_CANCELLED naming the new interview), commits once; returns the new interview."""
    now = _now(now)
    submitted = {"reason": reason, "details": details, "starts_at": starts_at}
    _require_any(acting_user, CASEWORK, "rescheduling an interview")
    old = _scoped_interview(interview_id, acting_user)
    case = _lock_case(old.case_id, acting_user, expected_version, submitted)
    db.session.refresh(old)
    errors, details = _cancel_errors(case, old, acting_user, reason, details)
    if errors:
        _rollback_and_raise(InvalidInput(errors))
    old.status = "cancelled"  # first, so the new booking does not clash with it
    db.session.flush()
    new = _book(case, acting_user=acting_user, person_id=old.person_id, starts_at=starts_at,
                duration_minutes=old.duration_minutes, remote=old.remote, place=old.place,
                interpreter_language=old.interpreter_language, interpreter_gender=old.interpreter_gender,
                interpreter_name=old.interpreter_name, interviewer_id=old.interviewer_id, now=now)
    _cancel(case, old, acting_user=acting_user, reason=reason, details=details, now=now, rescheduled_as=new.id)
    _commit(case.id, submitted)
    return new


def record_interview_omission(case_id: str, *, acting_user, ground: str | None,
                              medical_opinion_on: date | None = None, medical_opinion_reference: str | None = None,
                              details: str | None = None, expected_version: int | None = None,
                              now: datetime | None = None) -> InterviewOmission:
    """Record that the personal interview is omitted in this examination round (APR Art 13; APD
    Art 14(2)), on one ground: a positive decision is possible on the evidence available; the
    applicant is unfit or unable to be interviewed owing to enduring circumstances beyond their
    control (the date and reference of the medical opinion are required, and the applicant or a
    dependant must be given the chance to submit further information: the workspace says so);
    the applicant failed to appear without good reason (a missed interview recorded as absent
    without good reason is required: the decision is taken on the file); or another ground of
    national law, written out. By the caseworker assigned to the case or a supervisor, only
    while the case is ``assigned`` with no interview scheduled (cancel it first) and none held
    in this round; once per round. Moves ``assigned`` to ``interviewed``, where a decision can be
    drafted. Refused with InvalidInput (every failure). Audited (INTERVIEW_OMITTED: the ground,
    whether a reference or details were written, never their text), commits once."""
    now = _now(now)
    submitted = {"ground": ground, "medical_opinion_on": medical_opinion_on.isoformat() if medical_opinion_on else None,
                 "medical_opinion_reference": medical_opinion_reference, "details": details}
    _require_any(acting_user, CASEWORK, "recording the omission of the interview")
    case = _lock_case(case_id, acting_user, expected_version, submitted)
    round_ = working_round(case)
    errors: dict[str, list[str]] = {}
    if not _may_manage_interviews(case, acting_user):
        errors.setdefault("__all__", []).append(
            _("Only the caseworker assigned to the case or a supervisor may record the omission of the interview."))
    interviews = db.session.execute(select(Interview.status, Interview.attendance).where(
        Interview.case_id == case.id, Interview.round == round_)).all()
    if any(s == "recorded" and a == "attended" for s, a in interviews):
        errors.setdefault("__all__", []).append(
            _("An interview has been held: the omission of the interview can no longer be recorded."))
    elif any(s == "scheduled" for s, _a in interviews):
        errors.setdefault("__all__", []).append(
            _("An interview is scheduled: cancel it before recording the omission of the interview."))
    elif case.status != lifecycle.ASSIGNED:
        errors.setdefault("__all__", []).append(
            _("The omission of the interview is recorded once the case is assigned and before a decision is "
              "drafted."))
    if db.session.scalar(select(InterviewOmission.id).where(InterviewOmission.case_id == case.id,
                                                            InterviewOmission.round == round_)) is not None:
        errors.setdefault("__all__", []).append(_("The omission of the interview is already recorded."))
    if ground not in OMISSION_GROUNDS:
        errors.setdefault("ground", []).append(_("Choose one of the listed options."))
    reference = (medical_opinion_reference or "").strip() or None
    if ground == "unfit":
        if medical_opinion_on is None:
            errors.setdefault("medical_opinion_on", []).append(_("Give the date of the medical opinion."))
        elif medical_opinion_on > now.date():
            errors.setdefault("medical_opinion_on", []).append(_("The date cannot be in the future."))
        if not reference:
            errors.setdefault("medical_opinion_reference", []).append(_("Give the reference of the medical opinion."))
    elif medical_opinion_on is not None or reference:
        errors.setdefault("medical_opinion_on", []).append(
            _("A medical opinion is given only when the applicant is unfit to be interviewed."))
    if reference and len(reference) > MAX_REFERENCE:
        errors.setdefault("medical_opinion_reference", []).append(_("At most %(n)d characters.", n=MAX_REFERENCE))
    if ground == "failed_to_appear" and not any(
            s == "missed" and a == "absent_unexcused" for s, a in interviews):
        errors.setdefault("ground", []).append(
            _("Record first the interview the applicant did not attend without good reason."))
    details = _optional_text(details, "details", errors, limit=MAX_DETAILS, required=ground == "other",
                             message=_("Give the ground under national law."))
    if errors:
        _rollback_and_raise(InvalidInput(errors))
    omission = InterviewOmission(case_id=case.id, round=round_, ground=ground,
                                 medical_opinion_on=medical_opinion_on if ground == "unfit" else None,
                                 recorded_by_id=acting_user.id, created_at=now)
    omission.medical_opinion_reference = reference
    omission.details = details
    db.session.add(omission)
    _touch(case, now)
    db.session.flush()
    record(EventCode.INTERVIEW_OMITTED, actor=acting_user, subject=("case", case.id),
           details={"omission_id": omission.id, "round": round_, "ground": ground,
                    "medical_opinion_on": omission.medical_opinion_on.isoformat()
                    if omission.medical_opinion_on else None,
                    "reference_written": reference is not None, "details_written": details is not None})
    try:
        _apply_transition(case, lifecycle.INTERVIEWED, acting_user=acting_user, now=now)
    except TransitionRefused:
        db.session.rollback()
        raise
    _commit(case.id, submitted)
    return omission


# -- drafting ------------------------------------------------------------------------------------

def _validate_draft(outcome: str | None, legal_basis: Iterable[str] | None, reasons: str | None) -> dict:
    errors: dict[str, list[str]] = {}
    if outcome not in settings.OUTCOMES:
        errors["outcome"] = [_("Choose the outcome.")]
    basis = list(dict.fromkeys(legal_basis or ()))
    unknown = [code for code in basis if code not in settings.LEGAL_BASIS]
    if unknown:
        errors["legal_basis"] = [_("Unknown legal basis code.")]
    elif len(basis) > MAX_LEGAL_BASIS:
        errors["legal_basis"] = [_("At most %(n)d codes.", n=MAX_LEGAL_BASIS)]
    if reasons and len(reasons) > MAX_REASONS:
        errors["reasons"] = [_("At most %(n)d characters.", n=MAX_REASONS)]
    return errors


# Drafting's statements (workload W5), built once on the tables: Core, so executing them on the
# session's connection costs no ORM compile or load step, and a statement object built once
# keeps its cache key instead of being built and keyed again on every call.
_CASE, _PERSON, _DECISION = Case.__table__, Person.__table__, Decision.__table__
_DRAFTING_LOCK = (
    select(_CASE.c.id, _CASE.c.office_id, _CASE.c.status, _CASE.c.version,
           select(_PERSON.c.id).where(_PERSON.c.id == bindparam("person_id"), _PERSON.c.case_id == _CASE.c.id)
           .scalar_subquery().label("person_id"))
    .where(_CASE.c.id == bindparam("case_id")).with_for_update(of=_CASE))
_CASE_DECISIONS = select(_DECISION.c.person_id, _DECISION.c.round, _DECISION.c.status,
                         _DECISION.c.corrects_decision_id).where(_DECISION.c.case_id == bindparam("case_id"))
_INSERT_DECISION = insert(_DECISION)
# (attribute, column) of every mapped column: the encrypted ``reasons`` is the attribute
# ``_reasons_ciphertext`` of the column ``reasons``.
_DECISION_COLUMNS = tuple((prop.key, prop.columns[0].key) for prop in Decision.__mapper__.column_attrs)
_VERSION_BUMP = (update(_CASE).where(_CASE.c.id == bindparam("case_id"), _CASE.c.version == bindparam("seen"))
                 .values(version=bindparam("next"), updated_at=bindparam("now")))


def _lock_for_drafting(connection, case_id: str, person_id, acting_user, expected_version: int | None,
                       submitted: Mapping | None) -> Row:
    """Drafting's lock point, in one statement: the case row locked (FOR UPDATE; SQLite: the
    transaction is BEGIN IMMEDIATE) with only what drafting needs (id, office, status, version)
    and whether ``person_id`` is a person of it (their id only, never the encrypted sections).
    The same refusals as ``_lock_case``: CaseNotFound (audited) outside the user's office,
    DecisionConflict when the version is not the one the user saw."""
    row = None
    if case_id and isinstance(case_id, str) and len(case_id) <= 32:
        wanted = person_id if isinstance(person_id, str) and len(person_id) <= 32 else None
        row = connection.execute(_DRAFTING_LOCK, {"case_id": case_id, "person_id": wanted}).first()
    if row is None or row.office_id != acting_user.office_id:
        _scoped_case(case_id, acting_user)  # raises
        raise CaseNotFound("no such case")  # not reached: _scoped_case refuses what we refuse
    if expected_version is not None and row.version != expected_version:
        db.session.rollback()
        raise DecisionConflict(submitted, row.version)
    return row


def _drafting_state(connection, case_id: str, status: str, person_id: str | None) -> tuple[int, bool]:
    """(working round, whether ``person_id`` already has an original decision in it): both
    from one read of the case's decisions (a few rows, four plain columns), where
    ``working_round`` and ``_current_decisions`` would read full rows in two or three."""
    rows = connection.execute(_CASE_DECISIONS, {"case_id": case_id}).all()
    round_ = _round_after(status, max((r.round for r in rows if r.status == "issued"), default=0))
    taken = any(r.person_id == person_id and r.round == round_ and r.corrects_decision_id is None for r in rows)
    return round_, taken


def _insert_new_draft(connection, case: Row, person_id: str, round_: int, acting_user, outcome: str | None,
                      basis: list[str], reasons: str | None) -> Decision:
    """A new draft written with one Core INSERT, then attached to the session as the persistent
    entity it is, holding exactly what was written (for the caller; no reload, nothing left for
    the commit's flush). The service owns the row: nothing else in the transaction has seen it.
    The entity is built first, as everywhere: its id is set before ``reasons`` is encrypted
    (bound to the row id, by the model's encrypted column); a column not set here gets its
    model default from the INSERT and is read from the database if ever used."""
    stamp = utcnow()
    decision = Decision(case_id=case.id, person_id=person_id, office_id=case.office_id, corrects_decision_id=None,
                        round=round_, status="draft", outcome=outcome, legal_basis=basis, reasons=reasons,
                        drafted_by_id=acting_user.id, last_edited_by_id=acting_user.id, submitted_at=None,
                        approved_by_id=None, approved_at=None, issued_by_id=None, issued_at=None,
                        procedure_track=None, created_at=stamp, updated_at=stamp, version=1)
    written = decision.__dict__
    connection.execute(_INSERT_DECISION, {column: written[attribute] for attribute, column in _DECISION_COLUMNS
                                          if attribute in written})
    make_transient_to_detached(decision)
    db.session.add(decision)
    return decision


def _bump_version(connection, case: Row, now: datetime, submitted: Mapping | None) -> None:
    """The case's version moves on, as the mapper's version counter would move it: under the
    row lock taken by ``_lock_for_drafting`` the guard on the old version always holds, and it
    stays as a belt. Core on the session's connection: the session does not flush first (the
    new decision is written with the commit)."""
    done = connection.execute(_VERSION_BUMP, {"case_id": case.id, "seen": case.version,
                                              "next": case.version + 1, "now": now})
    if done.rowcount != 1:
        _rollback_and_raise(DecisionConflict(submitted, case.version))


def save_draft(case_id: str, *, acting_user, person_id: str, outcome: str | None,
               legal_basis: Iterable[str] | None, reasons: str | None, decision_id: str | None = None,
               expected_version: int | None = None, now: datetime | None = None) -> Decision:
    """Create or edit the draft decision of one person (or a draft correction). Drafts may be
    incomplete (reasons are required at submission and issue, for negative outcomes); a draft
    with a reviewer, approved or issued cannot be edited. The first draft moves ``interviewed``
    to ``decision_drafted``. Audited (DECISION_DRAFTED: outcome and codes, never the reasons),
    bumps the case version, commits.

    Concurrency as everywhere here: the case row is locked and its version compared with the
    one the user saw; two drafts at once, one commits and the other gets DecisionConflict.
    Lean on purpose (this is workload W5): the case is read as a row of four columns, not as an
    entity; its version is bumped with one UPDATE; a new decision is written with one INSERT
    (all Core statements built once, on the session's connection: the commit has nothing left
    to flush). The first draft of an interviewed case, which also takes a lifecycle step, loads
    the case; an edit loads the decision and writes it through the mapper (its version checked)."""
    now = _now(now)
    basis = list(dict.fromkeys(legal_basis or ()))
    submitted = {"person_id": person_id, "outcome": outcome, "legal_basis": basis, "reasons": reasons,
                 "decision_id": decision_id}
    _require_any(acting_user, CASEWORK, "drafting a decision")
    # The transaction's connection, taken once: drafting's Core statements all run on it.
    connection = db.session.connection()
    case = _lock_for_drafting(connection, case_id, person_id, acting_user, expected_version, submitted)
    errors = _validate_draft(outcome, basis, reasons)
    person_found = case.person_id is not None
    if not person_found:
        errors.setdefault("person_id", []).append(_("Choose a person of this case."))
    decision = None
    round_ = None
    if decision_id:
        decision = db.session.get(Decision, decision_id) if len(decision_id) <= 32 else None
        if decision is None or decision.case_id != case.id or (person_found and decision.person_id != person_id):
            _rollback_and_raise(CaseNotFound("no such decision"))
        if decision.status not in ("draft", "returned"):
            errors.setdefault("__all__", []).append(
                _("This decision is with a reviewer, approved or issued: it cannot be edited."))
    elif person_found:
        if case.status not in lifecycle.DRAFTING_STATUSES:
            errors.setdefault("__all__", []).append(
                _("Decisions are drafted after the interview and before the review."))
        round_, taken = _drafting_state(connection, case.id, case.status, person_id)
        if taken:
            errors.setdefault("__all__", []).append(_("This person already has a draft: edit it."))
    editing_original = (decision is not None and decision.corrects_decision_id is None
                        and decision.status in ("draft", "returned"))
    if editing_original and case.status not in lifecycle.DRAFTING_STATUSES:
        errors.setdefault("__all__", []).append(_("Decisions are drafted after the interview and before the review."))
    if errors:
        _rollback_and_raise(InvalidInput(errors))
    created = decision is None
    written_reasons = (reasons or "").strip() or None
    if created:
        decision = _insert_new_draft(connection, case, person_id, round_, acting_user, outcome, basis, written_reasons)
    else:
        decision.outcome = outcome
        decision.legal_basis = basis
        decision.reasons = written_reasons
        decision.last_edited_by_id = acting_user.id
        decision.status = "draft"
        decision.approved_by_id = None
        decision.approved_at = None
    details = {"decision_id": decision.id, "person_id": decision.person_id, "created": created,
               "outcome": outcome, "legal_basis": basis, "reasons_written": written_reasons is not None}
    if decision.corrects_decision_id:
        details["corrects_decision_id"] = decision.corrects_decision_id
    record(EventCode.DECISION_DRAFTED, actor=acting_user, subject=("case", case.id), details=details)
    if case.status == lifecycle.INTERVIEWED:
        # The lifecycle step works on the entity (its guards read the case's facts); the
        # mapper bumps the version with it.
        entity = db.session.get(Case, case.id, populate_existing=True)
        _touch(entity, now)
        try:
            # Guarded: an interview the applicant attended, or a recorded omission of it.
            _apply_transition(entity, lifecycle.DECISION_DRAFTED, acting_user=acting_user, now=now)
        except TransitionRefused:
            db.session.rollback()  # nothing half-saved: the new draft goes with the refused step
            raise
    else:
        _bump_version(connection, case, now, submitted)
    _commit_keeping_loaded(case.id, submitted, acting_user, decision)
    return decision


def _submit(decision: Decision, *, acting_user, now: datetime) -> None:
    decision.status = "submitted"
    decision.submitted_at = now
    record(EventCode.DECISION_SUBMITTED, actor=acting_user, subject=("case", decision.case_id),
           details={"decision_id": decision.id, "outcome": decision.outcome})


def submit_for_review(case_id: str, *, acting_user, decision_id: str | None = None,
                      expected_version: int | None = None, now: datetime | None = None) -> list[Decision]:
    """Send the drafts to a supervisor. Without ``decision_id``: every draft of the case, moving
    ``decision_drafted`` to ``under_review`` (guards: a complete draft for every person, reasons
    for negative outcomes). With the id of a draft correction: that correction only, the case
    status unchanged. Audited (DECISION_SUBMITTED, CASE_TRANSITION), commits."""
    now = _now(now)
    submitted = {"decision_id": decision_id}
    _require_any(acting_user, CASEWORK, "submitting a decision")
    case = _lock_case(case_id, acting_user, expected_version, submitted)
    if decision_id:
        decision = db.session.get(Decision, decision_id) if len(decision_id) <= 32 else None
        if decision is None or decision.case_id != case.id:
            _rollback_and_raise(CaseNotFound("no such decision"))
        if decision.corrects_decision_id is None:
            _rollback_and_raise(InvalidInput({"__all__": [_("Submit the case's drafts together.")]}))
        if decision.status not in ("draft", "returned"):
            _rollback_and_raise(InvalidInput({"__all__": [_("This correction is not a draft.")]}))
        if not _is_complete(decision):
            _rollback_and_raise(InvalidInput({"__all__": [
                _("A complete draft needs an outcome, a legal basis, and written reasons for a negative decision.")]}))
        _submit(decision, acting_user=acting_user, now=now)
        _touch(case, now)
        _commit(case.id, submitted)
        return [decision]
    try:
        _apply_transition(case, lifecycle.UNDER_REVIEW, acting_user=acting_user, now=now)
    except TransitionRefused:
        db.session.rollback()
        raise
    drafts = [d for d in _current_decisions(case, working_round(case)) if d.status in ("draft", "returned")]
    for decision in drafts:
        _submit(decision, acting_user=acting_user, now=now)
    _commit(case.id, submitted)
    return drafts


def review_decision(decision_id: str, *, acting_user, action: str, comments: str | None = None,
                    expected_version: int | None = None, now: datetime | None = None) -> Decision:
    """Four eyes: a supervisor who neither drafted nor edited the decision approves it, or
    returns it with comments (encrypted). The drafter's own attempt is refused and audited as
    denied. A return moves ``under_review`` back to ``decision_drafted``. Audited
    (DECISION_APPROVED / DECISION_RETURNED), commits."""
    now = _now(now)
    submitted = {"action": action, "comments": comments}
    if not acting_user.can(Permission.DECISION_REVIEW):
        raise DecisionForbidden("reviewing needs the decision.review permission")
    decision = db.session.get(Decision, decision_id) if decision_id and len(decision_id) <= 32 else None
    if decision is None:
        raise CaseNotFound("no such decision")
    case = _lock_case(decision.case_id, acting_user, expected_version, submitted)
    db.session.refresh(decision)
    errors: dict[str, list[str]] = {}
    if action not in ("approve", "return"):
        errors["action"] = [_("Choose approve or return.")]
    comments = _optional_text(comments, "comments", errors, limit=MAX_COMMENTS, required=action == "return",
                              message=_("Say what must change: a draft is returned with comments."))
    if decision.status != "submitted":
        errors.setdefault("__all__", []).append(_("This decision is not waiting for review."))
    if errors:
        _rollback_and_raise(InvalidInput(errors))
    if acting_user.id in (decision.drafted_by_id, decision.last_edited_by_id):
        db.session.rollback()
        record_and_commit(EventCode.DECISION_APPROVED if action == "approve" else EventCode.DECISION_RETURNED,
                          actor=acting_user, subject=("case", case.id), outcome="denied",
                          details={"decision_id": decision.id, "reason": "reviewer drafted or edited the decision"})
        raise InvalidInput({"__all__": [_("You drafted or edited this decision: another supervisor must review it.")]})
    review = DecisionReview(decision_id=decision.id, reviewer_id=acting_user.id, action=action)
    review.comments = comments
    db.session.add(review)
    _touch(case, now)
    if action == "approve":
        decision.status = "approved"
        decision.approved_by_id = acting_user.id
        decision.approved_at = now
        record(EventCode.DECISION_APPROVED, actor=acting_user, subject=("case", case.id),
               details={"decision_id": decision.id, "outcome": decision.outcome})
    else:
        decision.status = "returned"
        decision.approved_by_id = None
        decision.approved_at = None
        record(EventCode.DECISION_RETURNED, actor=acting_user, subject=("case", case.id),
               details={"decision_id": decision.id, "comments_written": True})
        if decision.corrects_decision_id is None and case.status == lifecycle.UNDER_REVIEW:
            db.session.flush()
            _apply_transition(case, lifecycle.DECISION_DRAFTED, acting_user=acting_user, now=now)
    _commit(case.id, submitted)
    return decision


def start_correction(decision_id: str, *, acting_user, expected_version: int | None = None,
                     now: datetime | None = None) -> Decision:
    """An issued decision is never edited: this makes a new draft, a copy linked to it
    (``corrects_decision_id``), to be reviewed and issued like any decision. Audited
    (DECISION_CORRECTION_STARTED), commits."""
    now = _now(now)
    _require_any(acting_user, CASEWORK, "correcting a decision")
    original = db.session.get(Decision, decision_id) if decision_id and len(decision_id) <= 32 else None
    if original is None:
        raise CaseNotFound("no such decision")
    case = _lock_case(original.case_id, acting_user, expected_version, {})
    if original.status != "issued":
        _rollback_and_raise(InvalidInput({"__all__": [_("Only an issued decision is corrected.")]}))
    pending = db.session.scalar(select(func.count()).select_from(Decision).where(
        Decision.corrects_decision_id == original.id, Decision.status != "issued"))
    if pending:
        _rollback_and_raise(InvalidInput({"__all__": [_("A correction of this decision is already in progress.")]}))
    correction = Decision(case_id=case.id, person_id=original.person_id, office_id=original.office_id,
                          round=original.round, corrects_decision_id=original.id, drafted_by_id=acting_user.id,
                          last_edited_by_id=acting_user.id, status="draft", outcome=original.outcome,
                          legal_basis=list(original.legal_basis or []))
    correction.reasons = original.reasons
    db.session.add(correction)
    _touch(case, now)
    db.session.flush()
    record(EventCode.DECISION_CORRECTION_STARTED, actor=acting_user, subject=("case", case.id),
           details={"decision_id": correction.id, "corrects_decision_id": original.id})
    _commit(case.id, {})
    return correction


# -- issue and letters ---------------------------------------------------------------------------

def _terms(track: str | None, outcome: str) -> settings.AppealTerms:
    config = current_app.config
    return settings.appeal_terms(track, outcome, appeal_rules=config.get("DECISION_APPEAL_RULES"),
                                 suspensive_rules=config.get("DECISION_SUSPENSIVE_RULES"))


def _letter(case: Case, decision: Decision, person: Person, *, issued_on: date, service_date: date,
            office: Office) -> DecisionLetter:
    language = letters.letter_language((person.language or {}).get("preferred_language"))
    terms = _terms(case.track, decision.outcome)
    corrects = db.session.get(Decision, decision.corrects_decision_id) if decision.corrects_decision_id else None
    content = letters.LetterContent(
        name=person_name(person), original_script_name=(person.identity or {}).get("original_script_name"),
        reference=case.reference, office_name=office.name, issued_on=issued_on, outcome=decision.outcome,
        legal_basis=tuple(decision.legal_basis or ()), reasons=decision.reasons, appeal_days=terms.days,
        appeal_months=terms.months, service_date=service_date,
        appeal_deadline=settings.appeal_deadline(service_date, terms), suspensive=terms.suspensive,
        corrects_issued_on=corrects.issued_at.date() if corrects and corrects.issued_at else None)
    pdf = letters.render_pdf(language, content)
    letter = DecisionLetter(decision_id=decision.id, language=language, sha256=hashlib.sha256(pdf).hexdigest(),
                            size_bytes=len(pdf))
    letter.pdf = pdf
    return letter


def issue_decisions(case_id: str, *, acting_user, expected_version: int | None = None,
                    service_date: date | None = None, now: datetime | None = None) -> list[Decision]:
    """Issue what is approved: the case's decisions (``under_review -> decision_issued``; guards:
    complete drafts, reasons for every negative outcome, each approved by a supervisor other than
    its drafter) and any approved corrections. Each gets its letter, in the person's preferred
    language when supported, as an encrypted PDF; the letter gives the appeal deadline counted
    from ``service_date`` (default: the day of issue). Audited (DECISION_ISSUED per decision,
    CASE_TRANSITION), bumps the version, commits. Two people issuing at once: one wins, the
    other gets DecisionConflict (or TransitionRefused when they had not seen any version)."""
    now = _now(now)
    submitted = {"service_date": service_date.isoformat() if service_date else None}
    _require_any(acting_user, CASEWORK, "issuing decisions")
    case = _lock_case(case_id, acting_user, expected_version, submitted)
    today = now.date()
    if service_date is not None and service_date < today:
        _rollback_and_raise(InvalidInput({"service_date": [_("The planned service date cannot be in the past.")]}))
    to_issue: list[Decision] = []
    if case.status == lifecycle.UNDER_REVIEW:
        facts = case_facts(case, today=today)
        verdict = lifecycle.check(case.status, lifecycle.DECISION_ISSUED, facts, permission_values(acting_user))
        if not verdict.allowed:
            db.session.rollback()
            raise TransitionRefused(case.status, lifecycle.DECISION_ISSUED, _translate(verdict))
        to_issue.extend(d for d in _current_decisions(case, working_round(case)) if d.status == "approved")
    corrections = db.session.scalars(select(Decision).where(
        Decision.case_id == case.id, Decision.corrects_decision_id.is_not(None), Decision.status == "approved")).all()
    for correction in corrections:
        if _approved_by_other(correction) and _is_complete(correction):
            to_issue.append(correction)
    if not to_issue:
        db.session.rollback()
        raise TransitionRefused(case.status, lifecycle.DECISION_ISSUED, [
            _("Nothing is ready to issue: a decision is issued once a supervisor other than its drafter "
              "approved it.")])
    office = db.session.get(Office, case.office_id)
    persons = {p.id: p for p in case.persons}
    # The letters are rendered before anything is written: the audit chain head is locked only
    # at the first record(), so slow PDF rendering does not hold up other writers.
    made = [(decision, _letter(case, decision, persons[decision.person_id], issued_on=today,
                               service_date=service_date or today, office=office)) for decision in to_issue]
    if case.status == lifecycle.UNDER_REVIEW:
        _apply_transition(case, lifecycle.DECISION_ISSUED, acting_user=acting_user, now=now)
    for decision, letter in made:
        decision.status = "issued"
        decision.issued_at = now
        decision.issued_by_id = acting_user.id
        decision.procedure_track = case.track
        db.session.add(letter)
        record(EventCode.DECISION_ISSUED, actor=acting_user, subject=("case", case.id),
               details={"decision_id": decision.id, "person_id": decision.person_id, "outcome": decision.outcome,
                        "letter_id": letter.id, "letter_language": letter.language, "letter_sha256": letter.sha256,
                        **({"corrects_decision_id": decision.corrects_decision_id}
                           if decision.corrects_decision_id else {})})
    _touch(case, now)
    _commit(case.id, submitted)
    return [decision for decision, _letter_row in made]


@dataclass(frozen=True)
class LetterDownload:
    pdf: bytes
    filename: str


def download_letter(letter_id: str, *, acting_user) -> LetterDownload:
    """The letter's PDF for a user who may work on the case; every download is audited
    (DOCUMENT_PRINTED) and committed before the bytes are handed out."""
    _require_any(acting_user, CASEWORK, "downloading a letter")
    letter = db.session.get(DecisionLetter, letter_id) if letter_id and len(letter_id) <= 32 else None
    if letter is None:
        raise CaseNotFound("no such letter")
    decision = db.session.get(Decision, letter.decision_id)
    case = _scoped_case(decision.case_id, acting_user)
    pdf = letter.pdf
    record_and_commit(EventCode.DOCUMENT_PRINTED, actor=acting_user, subject=("decision_letter", letter.id),
                      details={"case_id": case.id, "decision_id": decision.id, "language": letter.language,
                               "sha256": letter.sha256})
    return LetterDownload(pdf=pdf, filename=f"decision-{case.reference}-{letter.language}-{letter.id[:8]}.pdf")


# -- notification and appeals --------------------------------------------------------------------

def record_service(case_id: str, *, acting_user, served_on: date | None, method: str,
                   expected_version: int | None = None, now: datetime | None = None) -> list[Notification]:
    """Record the date the issued decisions (not yet served) were served: this starts the appeal
    clock. Each gets its deadline and suspensive effect from the settings table (per track and
    outcome). Moves ``decision_issued`` to ``notified``. Audited (DECISION_NOTIFIED), commits."""
    now = _now(now)
    submitted = {"served_on": served_on.isoformat() if served_on else None, "method": method}
    _require_any(acting_user, CASEWORK, "recording service")
    case = _lock_case(case_id, acting_user, expected_version, submitted)
    waiting = db.session.scalars(select(Decision).where(
        Decision.case_id == case.id, Decision.status == "issued",
        ~select(Notification.id).where(Notification.decision_id == Decision.id).exists())
        .order_by(Decision.issued_at)).all()
    errors: dict[str, list[str]] = {}
    if not waiting:
        errors["__all__"] = [_("No issued decision is waiting to be served.")]
    if served_on is None:
        errors["served_on"] = [_("Give the date served.")]
    elif served_on > now.date():
        errors["served_on"] = [_("The date served cannot be in the future.")]
    elif waiting and served_on < min(d.issued_at for d in waiting).date():
        errors["served_on"] = [_("A decision is served on or after the day it was issued.")]
    if method not in SERVICE_METHODS:
        errors["method"] = [_("Choose one of the listed options.")]
    if errors:
        _rollback_and_raise(InvalidInput(errors))
    made = []
    for decision in waiting:
        terms = _terms(decision.procedure_track, decision.outcome)
        notification = Notification(decision_id=decision.id, served_on=served_on, method=method,
                                    appeal_deadline=settings.appeal_deadline(served_on, terms),
                                    suspensive_effect=terms.suspensive, recorded_by_id=acting_user.id)
        db.session.add(notification)
        made.append(notification)
        record(EventCode.DECISION_NOTIFIED, actor=acting_user, subject=("case", case.id),
               details={"decision_id": decision.id, "served_on": served_on.isoformat(), "method": method,
                        "appeal_deadline": notification.appeal_deadline.isoformat(),
                        "suspensive_effect": terms.suspensive})
    _touch(case, now)
    db.session.flush()
    if case.status == lifecycle.DECISION_ISSUED:
        _apply_transition(case, lifecycle.NOTIFIED, acting_user=acting_user, now=now)
    _commit(case.id, submitted)
    return made


def lodge_appeal(decision_id: str, *, acting_user, lodged_on: date | None, court_reference: str | None = None,
                 suspension_requested: bool = False, expected_version: int | None = None,
                 now: datetime | None = None) -> Appeal:
    """Record an appeal against an issued decision that has been served (never before: the
    case must be notified). An appeal lodged after the deadline is kept and flagged late (the
    court decides on it), with the number of days. Moves ``notified`` to ``appeal_lodged``.
    Audited (APPEAL_LODGED with the late flag), commits."""
    now = _now(now)
    submitted = {"decision_id": decision_id, "lodged_on": lodged_on.isoformat() if lodged_on else None,
                 "court_reference": court_reference, "suspension_requested": suspension_requested}
    _require_any(acting_user, CASEWORK, "recording an appeal")
    decision = db.session.get(Decision, decision_id) if decision_id and len(decision_id) <= 32 else None
    if decision is None:
        raise CaseNotFound("no such decision")
    case = _lock_case(decision.case_id, acting_user, expected_version, submitted)
    notification = db.session.scalar(select(Notification).where(Notification.decision_id == decision.id))
    errors: dict[str, list[str]] = {}
    if decision.status != "issued" or notification is None or case.status not in (
            lifecycle.NOTIFIED, lifecycle.APPEAL_LODGED):
        errors["__all__"] = [_("An appeal is recorded only against a decision that has been served.")]
    elif db.session.scalar(select(func.count()).select_from(Appeal).where(
            Appeal.decision_id == decision.id, Appeal.outcome.is_(None))):
        errors["__all__"] = [_("An appeal against this decision is already pending.")]
    if lodged_on is None:
        errors["lodged_on"] = [_("Give the date the appeal was lodged.")]
    elif lodged_on > now.date():
        errors["lodged_on"] = [_("The date cannot be in the future.")]
    elif notification is not None and lodged_on < notification.served_on:
        errors["lodged_on"] = [_("An appeal is lodged on or after the day the decision was served.")]
    reference = _optional_text(court_reference, "court_reference", errors, limit=64)
    if errors:
        _rollback_and_raise(InvalidInput(errors))
    days_late = max((lodged_on - notification.appeal_deadline).days, 0)
    appeal = Appeal(decision_id=decision.id, case_id=case.id, lodged_on=lodged_on, late=days_late > 0,
                    days_late=days_late, court_reference=reference, suspension_requested=bool(suspension_requested),
                    lodged_recorded_by_id=acting_user.id)
    db.session.add(appeal)
    _touch(case, now)
    db.session.flush()
    record(EventCode.APPEAL_LODGED, actor=acting_user, subject=("case", case.id),
           details={"appeal_id": appeal.id, "decision_id": decision.id, "lodged_on": lodged_on.isoformat(),
                    "appeal_deadline": notification.appeal_deadline.isoformat(), "late": appeal.late,
                    "days_late": days_late, "suspension_requested": appeal.suspension_requested})
    if case.status == lifecycle.NOTIFIED:
        _apply_transition(case, lifecycle.APPEAL_LODGED, acting_user=acting_user, now=now)
    _commit(case.id, submitted)
    return appeal


def record_appeal_outcome(appeal_id: str, *, acting_user, outcome: str, decided_on: date | None,
                          expected_version: int | None = None, now: datetime | None = None) -> Appeal:
    """Record the appeal body's outcome: upheld, overturned or remitted. When no appeal is left
    pending the case moves to ``appeal_decided``, then on to ``triaged`` (a remitted case goes
    back to the queue of its track, unassigned) or to ``closed`` when the guards allow. Audited
    (APPEAL_DECIDED, CASE_TRANSITION), commits."""
    now = _now(now)
    submitted = {"outcome": outcome, "decided_on": decided_on.isoformat() if decided_on else None}
    _require_any(acting_user, CASEWORK, "recording an appeal outcome")
    appeal = db.session.get(Appeal, appeal_id) if appeal_id and len(appeal_id) <= 32 else None
    if appeal is None:
        raise CaseNotFound("no such appeal")
    case = _lock_case(appeal.case_id, acting_user, expected_version, submitted)
    db.session.refresh(appeal)
    errors: dict[str, list[str]] = {}
    if appeal.outcome is not None:
        errors["__all__"] = [_("This appeal already has its outcome.")]
    if outcome not in APPEAL_OUTCOMES:
        errors["outcome"] = [_("Choose one of the listed options.")]
    if decided_on is None:
        errors["decided_on"] = [_("Give the date of the appeal decision.")]
    elif decided_on > now.date():
        errors["decided_on"] = [_("The date cannot be in the future.")]
    elif decided_on < appeal.lodged_on:
        errors["decided_on"] = [_("An appeal is decided on or after the day it was lodged.")]
    if errors:
        _rollback_and_raise(InvalidInput(errors))
    appeal.outcome = outcome
    appeal.decided_on = decided_on
    appeal.decided_recorded_by_id = acting_user.id
    _touch(case, now)
    db.session.flush()
    record(EventCode.APPEAL_DECIDED, actor=acting_user, subject=("case", case.id),
           details={"appeal_id": appeal.id, "decision_id": appeal.decision_id, "outcome": outcome,
                    "decided_on": decided_on.isoformat()})
    if case.status == lifecycle.APPEAL_LODGED and _try_transition(
            case, lifecycle.APPEAL_DECIDED, acting_user=acting_user, now=now):
        db.session.flush()
        if not _try_transition(case, lifecycle.TRIAGED, acting_user=acting_user, now=now):
            _try_transition(case, lifecycle.CLOSED, acting_user=acting_user, now=now)
    _commit(case.id, submitted)
    return appeal


# -- reading -------------------------------------------------------------------------------------

@dataclass
class PersonRow:
    id: str
    name: str
    principal: bool
    preferred_language: str | None
    letter_language: str
    interpreter_needed: bool
    interpreter_gender: str


@dataclass
class DecisionRow:
    decision: Decision
    person_name: str
    reasons: str | None
    reviews: list[tuple[DecisionReview, str | None]]
    letters: list[DecisionLetter]
    notification: Notification | None
    appeals: list[Appeal]
    corrected_by: list[str] = field(default_factory=list)


@dataclass
class OmissionRow:
    omission: InterviewOmission
    medical_opinion_reference: str | None
    details: str | None
    current: bool  # of the round being worked on


@dataclass
class Workspace:
    case: Case
    status_label: str
    round: int
    persons: list[PersonRow]
    steps: list[lifecycle.Verdict]
    interviews: list[tuple[Interview, str | None, str | None]]  # interview, interpreter name, notes
    omissions: list[OmissionRow]
    decisions: list[DecisionRow]
    can_draft: bool
    can_review: bool
    user_id: int
    usernames: dict[int, str]


def _person_rows(case: Case) -> list[PersonRow]:
    rows = []
    for person in case.persons:
        language = person.language or {}
        rows.append(PersonRow(id=person.id, name=person_name(person), principal=person.is_principal,
                              preferred_language=language.get("preferred_language"),
                              letter_language=letters.letter_language(language.get("preferred_language")),
                              interpreter_needed=bool(language.get("interpreter_needed")),
                              interpreter_gender=language.get("interpreter_gender") or "any"))
    return rows


def workspace(case_id: str, *, acting_user, now: datetime | None = None) -> Workspace:
    """Everything the decision workspace shows, decrypted for a user who works on decisions;
    the read is audited (RECORD_VIEWED) and committed."""
    now = _now(now)
    _require_any(acting_user, CASEWORK, "the decision workspace")
    case = _scoped_case(case_id, acting_user)
    persons = _person_rows(case)
    names = {p.id: p.name for p in persons}
    interviews = db.session.scalars(select(Interview).where(Interview.case_id == case.id)
                                    .order_by(Interview.starts_at.desc())).all()
    decisions = db.session.scalars(select(Decision).where(Decision.case_id == case.id)
                                   .order_by(Decision.round.desc(), Decision.created_at)).all()
    ids = [d.id for d in decisions]
    reviews = db.session.scalars(select(DecisionReview).where(DecisionReview.decision_id.in_(ids))
                                 .order_by(DecisionReview.created_at)).all() if ids else []
    letter_rows = db.session.scalars(select(DecisionLetter).where(DecisionLetter.decision_id.in_(ids))
                                     .order_by(DecisionLetter.created_at)).all() if ids else []
    notifications = {n.decision_id: n for n in db.session.scalars(
        select(Notification).where(Notification.decision_id.in_(ids)))} if ids else {}
    appeals = db.session.scalars(select(Appeal).where(Appeal.case_id == case.id).order_by(Appeal.lodged_on)).all()
    omissions = db.session.scalars(select(InterviewOmission).where(InterviewOmission.case_id == case.id)
                                   .order_by(InterviewOmission.round.desc())).all()
    # The working round and the lifecycle facts from the rows just loaded for the page (the
    # same reads case_facts would make again, seven queries' worth).
    round_ = _round_after(case.status, max((d.round for d in decisions if d.status == "issued"), default=0))
    issued_ids = [d.id for d in decisions if d.round == round_ and d.status == "issued"]
    facts = _facts_of(
        case, [(i.status, i.attendance) for i in interviews if i.round == round_],
        any(o.round == round_ for o in omissions),
        sorted((d for d in decisions if d.round == round_ and d.corrects_decision_id is None),
               key=lambda d: d.created_at),
        issued_ids, [notifications[i] for i in issued_ids if i in notifications],
        [a for a in appeals if a.decision_id in issued_ids], reason_given=True, today=now.date())
    user_ids = {i.interviewer_id for i in interviews} | {i.cancelled_by_id for i in interviews if i.cancelled_by_id} | {
        o.recorded_by_id for o in omissions} | {r.reviewer_id for r in reviews} | {
        uid for d in decisions for uid in (d.drafted_by_id, d.last_edited_by_id, d.approved_by_id, d.issued_by_id)
        if uid}
    usernames = dict(db.session.execute(select(User.id, User.full_name).where(User.id.in_(user_ids))).all()) \
        if user_ids else {}
    rows = []
    for decision in decisions:
        rows.append(DecisionRow(
            decision=decision, person_name=names.get(decision.person_id, "-"), reasons=decision.reasons,
            reviews=[(r, r.comments) for r in reviews if r.decision_id == decision.id],
            letters=[letter for letter in letter_rows if letter.decision_id == decision.id],
            notification=notifications.get(decision.id),
            appeals=[a for a in appeals if a.decision_id == decision.id],
            corrected_by=[d.id for d in decisions if d.corrects_decision_id == decision.id]))
    view = Workspace(
        case=case, status_label=_(lifecycle.STATUS_LABELS.get(case.status, case.status)), round=round_,
        persons=persons, steps=lifecycle.next_steps(case.status, facts, permission_values(acting_user)),
        interviews=[(i, i.interpreter_name, i.notes) for i in interviews], decisions=rows,
        omissions=[OmissionRow(o, o.medical_opinion_reference, o.details, o.round == round_) for o in omissions],
        can_draft=any(acting_user.can(p) for p in CASEWORK), can_review=acting_user.can(Permission.DECISION_REVIEW),
        user_id=acting_user.id, usernames=usernames)
    record(EventCode.RECORD_VIEWED, actor=acting_user, subject=("case", case.id),
           details={"view": "decision_workspace", "special_category_shown": True})
    commit_after_read()
    return view


def workspace_persons(case_id: str, *, acting_user) -> list[PersonRow]:
    """The people of a case in scope (for form choices; the page itself is read with ``workspace``)."""
    _require_any(acting_user, CASEWORK, "the decision workspace")
    return _person_rows(_scoped_case(case_id, acting_user))


_OWNED = {"interview": Interview, "appeal": Appeal, "decision": Decision}


def case_id_of(kind: str, row_id: str, *, acting_user) -> str:
    """The case an interview, appeal or decision belongs to, in the user's scope (CaseNotFound
    otherwise, exactly like a missing row)."""
    row = db.session.get(_OWNED[kind], row_id) if row_id and len(row_id) <= 32 else None
    if row is None:
        raise CaseNotFound(f"no such {kind}")
    return _scoped_case(row.case_id, acting_user).id


def decision_owner(decision_id: str, *, acting_user) -> tuple[str, str]:
    """(case id, person id) of a decision in the user's scope."""
    case_id = case_id_of("decision", decision_id, acting_user=acting_user)
    return case_id, db.session.get(Decision, decision_id).person_id


@dataclass(frozen=True)
class ReviewItem:
    decision_id: str
    case_id: str
    reference: str
    outcome: str | None
    is_correction: bool
    drafted_by: str
    submitted_at: datetime | None
    own: bool


def reviews_waiting(*, acting_user, limit: int = 200) -> list[ReviewItem]:
    """Decisions of the supervisor's office waiting for review, oldest first (no claimant
    names: reference and outcome are enough to pick one)."""
    if not acting_user.can(Permission.DECISION_REVIEW):
        raise DecisionForbidden("the review list needs the decision.review permission")
    rows = db.session.execute(
        select(Decision.id, Decision.case_id, Case.reference, Decision.outcome, Decision.corrects_decision_id,
               User.full_name, Decision.submitted_at, Decision.drafted_by_id, Decision.last_edited_by_id)
        .join(Case, Case.id == Decision.case_id).join(User, User.id == Decision.drafted_by_id)
        .where(Decision.status == "submitted", Case.office_id == acting_user.office_id)
        .order_by(Decision.submitted_at).limit(limit)).all()
    return [ReviewItem(decision_id=r[0], case_id=r[1], reference=r[2], outcome=r[3], is_correction=r[4] is not None,
                       drafted_by=r[5], submitted_at=r[6], own=acting_user.id in (r[7], r[8])) for r in rows]
