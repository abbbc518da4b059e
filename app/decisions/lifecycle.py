"""The case lifecycle as an explicit state machine. Pure: standard library only (no Flask, no
SQLAlchemy, no application package), so it can be read, reviewed and tested on its own.

The main line::

    registered -> triaged -> assigned -> interview_scheduled -> interviewed -> decision_drafted
      -> under_review -> decision_issued -> notified -> closed
                                              \\-> appeal_lodged -> appeal_decided -> closed
                                                                                  \\-> triaged (remitted)

Around the interview: ``interview_scheduled -> assigned`` when the last scheduled interview is
cancelled or the applicant did not appear (to be scheduled again), and ``assigned -> interviewed``
when the personal interview is omitted on a legal ground (then a decision can be drafted without
one); plus the procedural endings ``withdrawn``, ``implicitly_withdrawn`` and ``transferred``.

Each ``Transition`` names who may take it (any one of its permissions, as the permission strings
of app/auth/permissions.py, so this module stays free of application imports) and its guards:
small named checks over ``CaseFacts`` that say, in words a caseworker understands, what must
exist first. ``check`` answers with every reason a step is refused, never just the first.

Intake creates cases as ``registered`` and triage does not (yet) move the status, so assignment
accepts ``registered`` as well as ``triaged`` (``registered -> assigned``); ``mark_triaged`` in
the services takes the explicit ``registered -> triaged`` step when a track is set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


def N_(message: str) -> str:
    """Marks a message for translation (extracted by pybabel -k N_); translated where shown."""
    return message


# -- statuses ------------------------------------------------------------------------------------

REGISTERED = "registered"
TRIAGED = "triaged"
ASSIGNED = "assigned"
INTERVIEW_SCHEDULED = "interview_scheduled"
INTERVIEWED = "interviewed"
DECISION_DRAFTED = "decision_drafted"
UNDER_REVIEW = "under_review"
DECISION_ISSUED = "decision_issued"
NOTIFIED = "notified"
APPEAL_LODGED = "appeal_lodged"
APPEAL_DECIDED = "appeal_decided"
CLOSED = "closed"
WITHDRAWN = "withdrawn"
IMPLICITLY_WITHDRAWN = "implicitly_withdrawn"
TRANSFERRED = "transferred"

STATUSES: tuple[str, ...] = (
    REGISTERED, TRIAGED, ASSIGNED, INTERVIEW_SCHEDULED, INTERVIEWED, DECISION_DRAFTED, UNDER_REVIEW,
    DECISION_ISSUED, NOTIFIED, APPEAL_LODGED, APPEAL_DECIDED, CLOSED, WITHDRAWN, IMPLICITLY_WITHDRAWN,
    TRANSFERRED,
)

STATUS_LABELS: dict[str, str] = {
    REGISTERED: N_("Registered"),
    TRIAGED: N_("Triaged"),
    ASSIGNED: N_("Assigned"),
    INTERVIEW_SCHEDULED: N_("Interview scheduled"),
    INTERVIEWED: N_("Interviewed"),
    DECISION_DRAFTED: N_("Decision drafted"),
    UNDER_REVIEW: N_("Under review"),
    DECISION_ISSUED: N_("Decision issued"),
    NOTIFIED: N_("Notified"),
    APPEAL_LODGED: N_("Appeal lodged"),
    APPEAL_DECIDED: N_("Appeal decided"),
    CLOSED: N_("Closed"),
    WITHDRAWN: N_("Withdrawn"),
    IMPLICITLY_WITHDRAWN: N_("Implicitly withdrawn"),
    TRANSFERRED: N_("Transferred"),
}

# Statuses in which the case is not examined any more (first instance): the same set the queues
# use (app/triage/queues.py) to leave cases out of the work queues.
OUT_OF_QUEUE_STATUSES = frozenset({DECISION_ISSUED, NOTIFIED, CLOSED, WITHDRAWN, IMPLICITLY_WITHDRAWN, TRANSFERRED})
# Statuses with no way out in this lifecycle.
FINAL_STATUSES = frozenset({CLOSED, WITHDRAWN, IMPLICITLY_WITHDRAWN, TRANSFERRED})
# Before a first-instance decision is issued: the procedural endings are possible from here.
OPEN_STATUSES = (REGISTERED, TRIAGED, ASSIGNED, INTERVIEW_SCHEDULED, INTERVIEWED, DECISION_DRAFTED, UNDER_REVIEW)
# Statuses in which decisions may be drafted or edited.
DRAFTING_STATUSES = frozenset({INTERVIEWED, DECISION_DRAFTED})

# Permission strings (the values of app.auth.permissions.Permission).
QUEUE_WORK = "queue.work"
QUEUE_ASSIGN = "queue.assign"
DECISION_DRAFT = "decision.draft"
DECISION_REVIEW = "decision.review"
PERMISSION_VALUES = frozenset({QUEUE_WORK, QUEUE_ASSIGN, DECISION_DRAFT, DECISION_REVIEW})


# -- facts the guards read -----------------------------------------------------------------------

@dataclass(frozen=True)
class CaseFacts:
    """What exists on a case, as counts and flags; built by the services from the database.

    "Current" decisions are the first-instance decisions of the case, one per person, not the
    corrections of issued ones (those never move the case status).
    """

    persons: int = 1
    has_track: bool = False
    has_assignee: bool = False
    scheduled_interviews: int = 0
    attended_interviews: int = 0
    interview_omitted: bool = False      # an omission of the personal interview is recorded (this round)
    drafts: int = 0                      # current decisions that exist (any status)
    complete_drafts: int = 0             # ... with an outcome, a legal basis, reasons when negative
    negative_without_reasons: int = 0    # ... negative outcome and no written reasons
    approved_by_other: int = 0           # ... approved by a supervisor who neither drafted nor edited it
    returned_with_comments: int = 0      # ... returned by a reviewer with comments, not resubmitted
    issued: int = 0                      # ... issued
    notified: int = 0                    # ... issued, with the date served recorded
    appeals_pending: int = 0             # appeals lodged, no outcome yet
    appeals_decided: int = 0
    appeals_remitted: int = 0
    appeal_period_over: bool = False     # every appeal deadline has passed
    issued_outcomes: frozenset[str] = frozenset()
    reason_given: bool = False           # a reason for a procedural ending was entered


@dataclass(frozen=True)
class Guard:
    """A named precondition: ``test(facts)`` is True when the step may be taken; ``message`` says
    what is missing (translatable)."""

    name: str
    message: str
    test: Callable[[CaseFacts], bool]


def _guard(name: str, message: str, test: Callable[[CaseFacts], bool]) -> Guard:
    return Guard(name, message, test)


HAS_TRACK = _guard("has_track", N_("The case has no procedure track yet: triage it first."),
                   lambda f: f.has_track)
HAS_ASSIGNEE = _guard("has_assignee", N_("Nobody is assigned to the case."), lambda f: f.has_assignee)
INTERVIEW_SCHEDULED_EXISTS = _guard(
    "interview_scheduled", N_("No interview is scheduled."), lambda f: f.scheduled_interviews > 0)
INTERVIEW_RECORDED = _guard(
    "interview_recorded", N_("No interview the applicant attended has been recorded."),
    lambda f: f.attended_interviews > 0)
NO_INTERVIEW_SCHEDULED = _guard(
    "no_interview_scheduled", N_("An interview is still scheduled."), lambda f: f.scheduled_interviews == 0)
INTERVIEW_OMITTED = _guard(
    "interview_omitted", N_("No omission of the personal interview has been recorded."),
    lambda f: f.interview_omitted)
INTERVIEW_HELD_OR_OMITTED = _guard(
    "interview_held_or_omitted",
    N_("A decision is drafted after an interview the applicant attended, or once the omission of the "
       "interview is recorded."),
    lambda f: f.attended_interviews > 0 or f.interview_omitted)
DRAFT_EXISTS = _guard("draft_exists", N_("No decision has been drafted."), lambda f: f.drafts > 0)
DRAFTS_COMPLETE = _guard(
    "drafts_complete",
    N_("Every person of the case needs a complete draft: an outcome, a legal basis, and written "
       "reasons for a negative decision."),
    lambda f: f.complete_drafts >= f.persons and f.persons > 0)
NEGATIVE_HAVE_REASONS = _guard(
    "negative_have_reasons", N_("A negative decision cannot be issued without written reasons."),
    lambda f: f.negative_without_reasons == 0)
APPROVED_BY_OTHER = _guard(
    "approved_by_other",
    N_("Every decision must be approved by a supervisor other than the one who drafted it."),
    lambda f: f.approved_by_other >= f.persons and f.persons > 0)
RETURNED_WITH_COMMENTS = _guard(
    "returned_with_comments", N_("A reviewer must return the draft with comments."),
    lambda f: f.returned_with_comments > 0)
SERVED_DATE_RECORDED = _guard(
    "served_date_recorded", N_("The date the decision was served on the applicant is not recorded."),
    lambda f: f.issued > 0 and f.notified >= f.issued)
APPEAL_RECORDED = _guard("appeal_recorded", N_("No appeal has been recorded."),
                         lambda f: f.appeals_pending + f.appeals_decided > 0)
APPEALS_DECIDED = _guard("appeals_decided", N_("An appeal is still waiting for its outcome."),
                         lambda f: f.appeals_decided > 0 and f.appeals_pending == 0)
NO_PENDING_APPEAL = _guard("no_pending_appeal", N_("An appeal is still pending."),
                           lambda f: f.appeals_pending == 0)
APPEAL_PERIOD_OVER = _guard("appeal_period_over", N_("The time limit for an appeal has not passed yet."),
                            lambda f: f.appeal_period_over)
NOTHING_REMITTED = _guard("nothing_remitted", N_("An appeal remitted the case: it goes back to a queue."),
                          lambda f: f.appeals_remitted == 0)
REMITTED = _guard("remitted", N_("No appeal remitted the case."), lambda f: f.appeals_remitted > 0)
REASON_GIVEN = _guard("reason_given", N_("Give the reason."), lambda f: f.reason_given)
TRANSFER_DECISION_ISSUED = _guard(
    "transfer_decision_issued", N_("No transfer decision has been issued."),
    lambda f: "transfer_decision" in f.issued_outcomes)
IMPLICIT_WITHDRAWAL_ISSUED = _guard(
    "implicit_withdrawal_issued", N_("No decision on implicit withdrawal has been issued."),
    lambda f: "implicit_withdrawal" in f.issued_outcomes)


# -- the table -----------------------------------------------------------------------------------

# How a step is started from the workspace: a plain button, a button with a reason, or it
# happens as part of another action (scheduling an interview, recording a served date...).
BUTTON = "button"
WITH_REASON = "with_reason"
AUTOMATIC = "automatic"


@dataclass(frozen=True)
class Transition:
    source: str
    target: str
    permissions: frozenset[str]           # any one of them
    guards: tuple[Guard, ...] = ()
    trigger: str = AUTOMATIC
    label: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.target)


def _t(source: str, target: str, permissions: Iterable[str], guards: Iterable[Guard] = (), *,
       trigger: str = AUTOMATIC, label: str = "") -> Transition:
    return Transition(source, target, frozenset(permissions), tuple(guards), trigger, label)


CASEWORK = (DECISION_DRAFT, DECISION_REVIEW)
ASSIGNING = (QUEUE_WORK, QUEUE_ASSIGN)

TRANSITIONS: tuple[Transition, ...] = (
    _t(REGISTERED, TRIAGED, ASSIGNING, [HAS_TRACK], trigger=BUTTON, label=N_("Mark as triaged")),
    # Accepted while triage does not move the status itself (see the module docstring).
    # The queues (app/triage/queues.py) move "registered" to "assigned" when a case is taken and
    # leave any other status as it is, so a "triaged" case (back from a remittal) keeps its
    # status when taken: this step (a button, and taken automatically when an interview is
    # scheduled) catches up.
    _t(REGISTERED, ASSIGNED, ASSIGNING, [HAS_ASSIGNEE], trigger=BUTTON, label=N_("Confirm the assignment")),
    _t(TRIAGED, ASSIGNED, ASSIGNING, [HAS_ASSIGNEE], trigger=BUTTON, label=N_("Confirm the assignment")),
    _t(ASSIGNED, INTERVIEW_SCHEDULED, CASEWORK, [INTERVIEW_SCHEDULED_EXISTS]),
    _t(INTERVIEW_SCHEDULED, INTERVIEWED, CASEWORK, [INTERVIEW_RECORDED]),
    # Back to be scheduled again: taken when the last scheduled interview is cancelled or the
    # applicant did not appear (services.cancel_interview, services.record_interview).
    _t(INTERVIEW_SCHEDULED, ASSIGNED, CASEWORK, [NO_INTERVIEW_SCHEDULED]),
    # The personal interview omitted on a legal ground (APR Art 13; APD Art 14(2)): the case goes
    # straight to the stage where a decision is drafted (services.record_interview_omission).
    _t(ASSIGNED, INTERVIEWED, CASEWORK, [INTERVIEW_OMITTED]),
    _t(INTERVIEWED, DECISION_DRAFTED, CASEWORK, [INTERVIEW_HELD_OR_OMITTED, DRAFT_EXISTS]),
    _t(DECISION_DRAFTED, UNDER_REVIEW, CASEWORK, [DRAFTS_COMPLETE, NEGATIVE_HAVE_REASONS],
       trigger=BUTTON, label=N_("Submit for review")),
    _t(UNDER_REVIEW, DECISION_DRAFTED, (DECISION_REVIEW,), [RETURNED_WITH_COMMENTS]),
    _t(UNDER_REVIEW, DECISION_ISSUED, CASEWORK, [DRAFTS_COMPLETE, NEGATIVE_HAVE_REASONS, APPROVED_BY_OTHER],
       trigger=BUTTON, label=N_("Issue the decisions")),
    _t(DECISION_ISSUED, NOTIFIED, CASEWORK, [SERVED_DATE_RECORDED]),
    _t(NOTIFIED, APPEAL_LODGED, CASEWORK, [SERVED_DATE_RECORDED, APPEAL_RECORDED]),
    _t(NOTIFIED, CLOSED, CASEWORK, [APPEAL_PERIOD_OVER, NO_PENDING_APPEAL], trigger=BUTTON,
       label=N_("Close the case")),
    _t(APPEAL_LODGED, APPEAL_DECIDED, CASEWORK, [APPEALS_DECIDED]),
    _t(APPEAL_DECIDED, CLOSED, CASEWORK, [NOTHING_REMITTED, NO_PENDING_APPEAL], trigger=BUTTON,
       label=N_("Close the case")),
    # Remitted by the appeal body: examined again, back to the queue of its track.
    _t(APPEAL_DECIDED, TRIAGED, CASEWORK, [REMITTED], trigger=BUTTON, label=N_("Return to the queue")),
    # Procedural endings before a decision is issued.
    *(_t(source, WITHDRAWN, CASEWORK, [REASON_GIVEN], trigger=WITH_REASON,
         label=N_("Record explicit withdrawal")) for source in OPEN_STATUSES),
    *(_t(source, IMPLICITLY_WITHDRAWN, (DECISION_REVIEW,), [REASON_GIVEN], trigger=WITH_REASON,
         label=N_("Record implicit withdrawal")) for source in OPEN_STATUSES),
    *(_t(source, TRANSFERRED, (DECISION_REVIEW,), [REASON_GIVEN], trigger=WITH_REASON,
         label=N_("Record transfer to another State")) for source in OPEN_STATUSES),
    # After an issued transfer or implicit-withdrawal decision was served.
    _t(NOTIFIED, TRANSFERRED, (DECISION_REVIEW,), [TRANSFER_DECISION_ISSUED, APPEAL_PERIOD_OVER, NO_PENDING_APPEAL],
       trigger=BUTTON, label=N_("Record the transfer")),
    _t(NOTIFIED, IMPLICITLY_WITHDRAWN, (DECISION_REVIEW,),
       [IMPLICIT_WITHDRAWAL_ISSUED, APPEAL_PERIOD_OVER, NO_PENDING_APPEAL], trigger=BUTTON,
       label=N_("Close as implicitly withdrawn")),
)

TRANSITION_TABLE: dict[tuple[str, str], Transition] = {t.key: t for t in TRANSITIONS}
if len(TRANSITION_TABLE) != len(TRANSITIONS):
    raise RuntimeError("a (source, target) pair appears twice in the lifecycle table")


# -- checking ------------------------------------------------------------------------------------

NOT_A_NEXT_STEP = N_("A case in status “%(source)s” cannot move to “%(target)s”.")
UNKNOWN_STATUS = N_("Unknown status “%(status)s”.")
NO_PERMISSION = N_("Your role may not take this step.")


@dataclass(frozen=True)
class Verdict:
    """The answer of ``check``: allowed, or every reason it is not (messages and their
    parameters, translated where shown)."""

    source: str
    target: str
    transition: Transition | None
    reasons: tuple[tuple[str, dict], ...] = field(default_factory=tuple)

    @property
    def allowed(self) -> bool:
        return self.transition is not None and not self.reasons


def check(source: str, target: str, facts: CaseFacts, permissions: Iterable[str]) -> Verdict:
    """May a case in ``source`` move to ``target`` for someone holding ``permissions``, given
    ``facts``? Collects every failing reason (permission first, then each guard)."""
    for status in (source, target):
        if status not in STATUSES:
            return Verdict(source, target, None, ((UNKNOWN_STATUS, {"status": status}),))
    transition = TRANSITION_TABLE.get((source, target))
    if transition is None:
        return Verdict(source, target, None, ((NOT_A_NEXT_STEP, {"source": source, "target": target}),))
    reasons: list[tuple[str, dict]] = []
    if not transition.permissions & frozenset(permissions):
        reasons.append((NO_PERMISSION, {}))
    reasons.extend((guard.message, {}) for guard in transition.guards if not guard.test(facts))
    return Verdict(source, target, transition, tuple(reasons))


def transitions_from(source: str) -> list[Transition]:
    """Every step the table offers from ``source``, in table order."""
    return [t for t in TRANSITIONS if t.source == source]


def next_steps(source: str, facts: CaseFacts, permissions: Iterable[str]) -> list[Verdict]:
    """Every step from ``source`` with its verdict (allowed or why not), for the workspace."""
    held = frozenset(permissions)
    return [check(source, t.target, facts, held) for t in transitions_from(source)]


def reachable(start: str = REGISTERED) -> set[str]:
    """Statuses reachable from ``start`` through the table (ignoring guards)."""
    seen, frontier = {start}, [start]
    while frontier:
        current = frontier.pop()
        for transition in transitions_from(current):
            if transition.target not in seen:
                seen.add(transition.target)
                frontier.append(transition.target)
    return seen
