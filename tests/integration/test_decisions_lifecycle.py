"""The lifecycle state machine: the table is exactly the one specified, every allowed step needs its
permission and each of its guards, every other step is refused (pure and through the service), and a
hypothesis state machine drives random actions and steps without ever breaking the invariants."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from app.auth.permissions import ROLE_PERMISSIONS, Permission, Role
from app.decisions import lifecycle, services
from app.decisions.lifecycle import CaseFacts, check
from app.extensions import db
from test_decisions_support import staff_of, assign, fresh, register, transitions

ASSIGNING = {"queue.work", "queue.assign"}
CASEWORK = {"decision.draft", "decision.review"}
REVIEW = {"decision.review"}
OPEN = ("registered", "triaged", "assigned", "interview_scheduled", "interviewed", "decision_drafted", "under_review")
# The specification, written out independently of app/decisions/lifecycle.py.
EXPECTED: dict[tuple[str, str], set[str]] = {
    ("registered", "triaged"): ASSIGNING,
    ("registered", "assigned"): ASSIGNING,
    ("triaged", "assigned"): ASSIGNING,
    ("assigned", "interview_scheduled"): CASEWORK,
    ("interview_scheduled", "interviewed"): CASEWORK,
    ("interview_scheduled", "assigned"): CASEWORK,  # the last scheduled interview cancelled or missed
    ("assigned", "interviewed"): CASEWORK,  # the personal interview omitted
    ("interviewed", "decision_drafted"): CASEWORK,
    ("decision_drafted", "under_review"): CASEWORK,
    ("under_review", "decision_drafted"): REVIEW,
    ("under_review", "decision_issued"): CASEWORK,
    ("decision_issued", "notified"): CASEWORK,
    ("notified", "appeal_lodged"): CASEWORK,
    ("notified", "closed"): CASEWORK,
    ("appeal_lodged", "appeal_decided"): CASEWORK,
    ("appeal_decided", "closed"): CASEWORK,
    ("appeal_decided", "triaged"): CASEWORK,
    ("notified", "transferred"): REVIEW,
    ("notified", "implicitly_withdrawn"): REVIEW,
    **{(source, "withdrawn"): CASEWORK for source in OPEN},
    **{(source, "implicitly_withdrawn"): REVIEW for source in OPEN},
    **{(source, "transferred"): REVIEW for source in OPEN},
}
ALL_PERMISSIONS = ASSIGNING | CASEWORK
GOOD = CaseFacts(persons=2, has_track=True, has_assignee=True, scheduled_interviews=1, attended_interviews=1,
                 interview_omitted=True,
                 drafts=2, complete_drafts=2, negative_without_reasons=0, approved_by_other=2,
                 returned_with_comments=1, issued=2, notified=2, appeals_pending=0, appeals_decided=1,
                 appeals_remitted=0, appeal_period_over=True,
                 issued_outcomes=frozenset({"transfer_decision", "implicit_withdrawal"}), reason_given=True)
# For each guard: facts that make it fail (and leave the other guards of its steps passing).
BREAKERS = {
    "has_track": {"has_track": False},
    "has_assignee": {"has_assignee": False},
    "interview_scheduled": {"scheduled_interviews": 0},
    "interview_recorded": {"attended_interviews": 0},
    "no_interview_scheduled": {"scheduled_interviews": 1},
    "interview_omitted": {"interview_omitted": False},
    "interview_held_or_omitted": {"attended_interviews": 0, "interview_omitted": False},
    "draft_exists": {"drafts": 0},
    "drafts_complete": {"complete_drafts": 1},
    "negative_have_reasons": {"negative_without_reasons": 1},
    "approved_by_other": {"approved_by_other": 1},
    "returned_with_comments": {"returned_with_comments": 0},
    "served_date_recorded": {"notified": 1},
    "appeal_recorded": {"appeals_pending": 0, "appeals_decided": 0},
    "appeals_decided": {"appeals_pending": 1},
    "no_pending_appeal": {"appeals_pending": 1},
    "appeal_period_over": {"appeal_period_over": False},
    "nothing_remitted": {"appeals_remitted": 1},
    "remitted": {"appeals_remitted": 0},
    "reason_given": {"reason_given": False},
    "transfer_decision_issued": {"issued_outcomes": frozenset({"rejected_unfounded"})},
    "implicit_withdrawal_issued": {"issued_outcomes": frozenset({"rejected_unfounded"})},
}


def satisfying(transition: lifecycle.Transition) -> CaseFacts:
    names = {g.name for g in transition.guards}
    if "no_interview_scheduled" in names:
        return dataclasses.replace(GOOD, scheduled_interviews=0)
    return dataclasses.replace(GOOD, appeals_remitted=1) if "remitted" in names else GOOD


def test_table_is_exactly_the_specified_one():
    """Every (from, to) pair of the table and its permissions match the specification, no more, no less."""
    assert {t.key: set(t.permissions) for t in lifecycle.TRANSITIONS} == EXPECTED
    assert set(lifecycle.STATUSES) == {s for pair in EXPECTED for s in pair}
    assert lifecycle.PERMISSION_VALUES <= {p.value for p in Permission}


def test_every_status_is_reachable_and_final_ones_have_no_way_out():
    """From registered every status can be reached; closed, withdrawn, implicitly_withdrawn and
    transferred lead nowhere."""
    assert lifecycle.reachable("registered") == set(lifecycle.STATUSES)
    for status in lifecycle.FINAL_STATUSES:
        assert lifecycle.transitions_from(status) == []


def test_queue_closed_set_matches_the_queues():
    """The statuses the queues leave out are the ones the lifecycle calls out of queue."""
    from app.triage.queues import CLOSED_STATUSES

    assert set(CLOSED_STATUSES) == lifecycle.OUT_OF_QUEUE_STATUSES


@pytest.mark.parametrize(("source", "target"), list(itertools.product(lifecycle.STATUSES, repeat=2)))
def test_every_pair_is_allowed_exactly_when_the_table_has_it(source, target):
    """With every guard satisfied and every permission held, a step is allowed iff it is in the
    table; any other pair is refused, saying the case cannot move there."""
    transition = lifecycle.TRANSITION_TABLE.get((source, target))
    facts = satisfying(transition) if transition else GOOD
    verdict = check(source, target, facts, ALL_PERMISSIONS)
    assert verdict.allowed is ((source, target) in EXPECTED)
    if (source, target) not in EXPECTED:
        assert verdict.reasons == ((lifecycle.NOT_A_NEXT_STEP, {"source": source, "target": target}),)


@pytest.mark.parametrize("transition", lifecycle.TRANSITIONS, ids=lambda t: f"{t.source}->{t.target}")
def test_each_guard_and_the_permission_refuse_on_their_own(transition):
    """Breaking one guard refuses the step with that guard's message; holding none of the step's
    permissions refuses it with the permission message; holding just one of them is enough."""
    good = satisfying(transition)
    for guard in transition.guards:
        broken = dataclasses.replace(good, **BREAKERS[guard.name])
        verdict = check(transition.source, transition.target, broken, ALL_PERMISSIONS)
        assert not verdict.allowed
        assert (guard.message, {}) in verdict.reasons
    others = ALL_PERMISSIONS - transition.permissions
    assert check(transition.source, transition.target, good, others).reasons == ((lifecycle.NO_PERMISSION, {}),)
    for permission in transition.permissions:
        assert check(transition.source, transition.target, good, {permission}).allowed


def test_refusal_collects_every_reason():
    """A step failing on permission and on two guards says all three."""
    facts = dataclasses.replace(GOOD, approved_by_other=0, negative_without_reasons=1)
    verdict = check("under_review", "decision_issued", facts, {"queue.work"})
    assert [message for message, _params in verdict.reasons] == [
        lifecycle.NO_PERMISSION, lifecycle.NEGATIVE_HAVE_REASONS.message, lifecycle.APPROVED_BY_OTHER.message]


def test_unknown_status_is_refused():
    """A status outside the lifecycle is refused by name."""
    assert check("registered", "teleported", GOOD, ALL_PERMISSIONS).reasons == (
        (lifecycle.UNKNOWN_STATUS, {"status": "teleported"}),)


# -- the service ---------------------------------------------------------------------------------

def test_service_refuses_every_pair_outside_the_table(app, make_user):
    """For every status, each target the table does not offer is refused by the service with the
    reason, the status unchanged and nothing audited."""
    officer, supervisor = make_user("registration_officer"), make_user("supervisor")
    case = register(officer)
    for source in lifecycle.STATUSES:
        row = fresh(case.id)
        row.status = source
        db.session.commit()
        for target in lifecycle.STATUSES:
            if (source, target) in EXPECTED:
                continue
            with pytest.raises(services.TransitionRefused) as refused:
                services.transition(case.id, target, acting_user=supervisor, reason="r")
            assert refused.value.messages == [f"A case in status “{source}” cannot move to “{target}”."]
            assert fresh(case.id).status == source
    assert transitions(case.id) == []


def test_service_checks_guards_and_permissions(app, make_user):
    """Through the service: assignment needs an assignee, a caseworker may not record an implicit
    withdrawal (a supervisor may, with a reason), a registration officer may take no step."""
    officer, caseworker, supervisor = staff_of(make_user)
    case = register(officer)
    with pytest.raises(services.TransitionRefused) as refused:
        services.transition(case.id, "assigned", acting_user=caseworker)
    assert refused.value.messages == ["Nobody is assigned to the case."]
    with pytest.raises(services.TransitionRefused) as refused:
        services.transition(case.id, "withdrawn", acting_user=officer, reason="asked in writing")
    assert refused.value.messages == ["Your role may not take this step."]
    with pytest.raises(services.TransitionRefused) as refused:
        services.transition(case.id, "implicitly_withdrawn", acting_user=caseworker, reason="absconded")
    assert refused.value.messages == ["Your role may not take this step."]
    with pytest.raises(services.TransitionRefused) as refused:
        services.transition(case.id, "implicitly_withdrawn", acting_user=supervisor, reason="  ")
    assert refused.value.messages == ["Give the reason."]
    version = fresh(case.id).version
    services.transition(case.id, "implicitly_withdrawn", acting_user=supervisor, reason="Did not appear twice.")
    after = fresh(case.id)
    assert (after.status, after.version) == ("implicitly_withdrawn", version + 1)
    assert transitions(case.id) == [("registered", "implicitly_withdrawn")]


def test_mark_triaged_needs_a_track(app, make_user):
    """registered -> triaged is refused without a track and taken once triage set one."""
    officer, caseworker = make_user("registration_officer"), make_user("caseworker")
    case = register(officer)
    row = fresh(case.id)
    row.track = None
    db.session.commit()
    with pytest.raises(services.TransitionRefused) as refused:
        services.mark_triaged(case.id, acting_user=caseworker)
    assert refused.value.messages == ["The case has no procedure track yet: triage it first."]
    row = fresh(case.id)
    row.track = "regular"
    db.session.commit()
    assert services.mark_triaged(case.id, acting_user=caseworker).status == "triaged"
    assign(case.id, caseworker)
    assert transitions(case.id) == [("registered", "triaged"), ("triaged", "assigned")]


# -- a hypothesis state machine over the pure lifecycle -------------------------------------------

ROLE_SETS = [frozenset(p.value for p in ROLE_PERMISSIONS[role]) for role in Role]


class LifecycleMachine(RuleBasedStateMachine):
    """Random actions change what exists on a two-person case; random steps are attempted by
    random roles. Whatever happens, a step is taken only when the table and its guards allow it."""

    def __init__(self):
        super().__init__()
        self.status = "registered"
        self.facts = CaseFacts(persons=2)
        self.history: list[tuple[str, str, CaseFacts]] = []

    def _set(self, **changes):
        self.facts = dataclasses.replace(self.facts, **changes)

    ACTIONS = {
        "triage": lambda f: {"has_track": True},
        "assign": lambda f: {"has_assignee": True},
        "schedule": lambda f: {"scheduled_interviews": f.scheduled_interviews + 1},
        "record_attended": lambda f: {"attended_interviews": f.attended_interviews + 1},
        "cancel_or_miss": lambda f: {"scheduled_interviews": max(f.scheduled_interviews - 1, 0)},
        "omit_interview": lambda f: {"interview_omitted": True},
        "draft_complete": lambda f: {"drafts": 2, "complete_drafts": 2, "negative_without_reasons": 0},
        "draft_one_incomplete": lambda f: {"drafts": 2, "complete_drafts": 1},
        "draft_negative_without_reasons": lambda f: {"drafts": 2, "negative_without_reasons": 1},
        "approve_both": lambda f: {"approved_by_other": 2},
        "approve_one": lambda f: {"approved_by_other": 1},
        "return_with_comments": lambda f: {"returned_with_comments": 1, "approved_by_other": 0},
        "issue": lambda f: {"issued": 2},
        "serve": lambda f: {"notified": f.issued},
        "appeal": lambda f: {"appeals_pending": f.appeals_pending + 1},
        "appeal_upheld": lambda f: {"appeals_pending": max(f.appeals_pending - 1, 0),
                                    "appeals_decided": f.appeals_decided + 1},
        "appeal_remitted": lambda f: {"appeals_pending": max(f.appeals_pending - 1, 0),
                                      "appeals_decided": f.appeals_decided + 1,
                                      "appeals_remitted": f.appeals_remitted + 1},
        "time_passes": lambda f: {"appeal_period_over": True},
        "reason_typed": lambda f: {"reason_given": True},
        "reason_cleared": lambda f: {"reason_given": False},
    }

    @rule(action=st.sampled_from(sorted(ACTIONS)))
    def act(self, action):
        self._set(**self.ACTIONS[action](self.facts))

    @rule(goal=st.sampled_from(lifecycle.STATUSES), permissions=st.sampled_from(ROLE_SETS))
    def attempt(self, goal, permissions):
        verdict = check(self.status, goal, self.facts, permissions)
        if verdict.allowed:
            self.history.append((self.status, goal, self.facts))
            self.status = goal
        else:
            assert verdict.reasons  # a refusal always says why

    @precondition(lambda self: lifecycle.transitions_from(self.status))
    @rule(data=st.data(), permissions=st.sampled_from(ROLE_SETS))
    def advance(self, data, permissions):
        """Mostly try the steps the table offers, so runs get deep into the lifecycle."""
        targets = [t.target for t in lifecycle.transitions_from(self.status)]
        main_line = [t for t in targets if t not in lifecycle.FINAL_STATUSES] or targets
        goal = data.draw(st.sampled_from(main_line if data.draw(st.integers(0, 9)) else targets))
        self.attempt(goal, permissions)

    @precondition(lambda self: self.history)
    @invariant()
    def every_step_was_in_the_table_with_its_guards(self):
        source, target, facts = self.history[-1]
        assert (source, target) in EXPECTED
        if target == "decision_issued":
            assert facts.approved_by_other >= facts.persons and facts.negative_without_reasons == 0
        if target == "appeal_lodged":
            assert source == "notified" and facts.notified >= facts.issued > 0
        if target == "interviewed":
            assert facts.attended_interviews > 0 or (source == "assigned" and facts.interview_omitted)
        if source == "interviewed" and target == "decision_drafted":
            assert facts.attended_interviews > 0 or facts.interview_omitted
        if (source, target) == ("interview_scheduled", "assigned"):
            assert facts.scheduled_interviews == 0
        if target == "under_review":
            assert facts.complete_drafts >= facts.persons

    @invariant()
    def final_statuses_stay_final(self):
        for index, (source, _target, _facts) in enumerate(self.history):
            assert source not in lifecycle.FINAL_STATUSES, self.history[: index + 1]


LifecycleMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=150, deadline=None,
                                              database=None, suppress_health_check=[HealthCheck.too_slow])
TestLifecycleMachine = LifecycleMachine.TestCase
