"""Notification and appeals: the date served starts the appeal clock; the deadline and the
suspensive effect follow the track and the outcome (settings table, APR Arts 67-68); an appeal
only after service; a late appeal is kept and flagged."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from app.audit.codes import EventCode
from app.decisions import services, settings
from app.decisions.models import Appeal, Notification
from app.extensions import db
from test_decisions_support import (TODAY, approve_all, assign, events, fresh, later, register, staff_of, to_issued,
                                    to_notified, to_under_review)


@pytest.mark.parametrize(("track", "outcome", "deadline", "suspensive"), [
    ("accelerated", "rejected_unfounded", date(2026, 7, 11), "on_request"),
    ("border", "rejected_manifestly_unfounded", date(2026, 7, 11), "on_request"),
    ("border_optional", "refugee_status", date(2026, 7, 11), "not_applicable"),
    ("regular", "rejected_unfounded", date(2026, 8, 1), "automatic"),
    ("regular_prioritised", "subsidiary_protection", date(2026, 8, 1), "not_applicable"),
    ("regular", "rejected_manifestly_unfounded", date(2026, 8, 1), "on_request"),
    ("inadmissibility", "inadmissible", date(2026, 7, 11), "on_request"),
    ("implicit_withdrawal", "implicit_withdrawal", date(2026, 7, 11), "on_request"),
    ("responsibility", "transfer_decision", date(2026, 7, 15), "on_request"),
    (None, "rejected_unfounded", date(2026, 8, 1), "automatic"),
])
def test_appeal_terms_per_track_and_outcome(track, outcome, deadline, suspensive):
    """Ten days after accelerated or border decisions (and inadmissibility, implicit withdrawal),
    two weeks against a transfer, one month otherwise; suspension per APR Art 68."""
    terms = settings.appeal_terms(track, outcome)
    assert settings.appeal_deadline(date(2026, 7, 1), terms) == deadline
    assert terms.suspensive == suspensive


def test_one_month_is_a_calendar_month_clamped_to_the_last_day():
    """31 January + one month is the last day of February."""
    assert settings.add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert settings.add_months(date(2026, 12, 15), 1) == date(2027, 1, 15)


def test_rules_can_be_replaced_by_configuration(app, make_user):
    """DECISION_APPEAL_RULES in the config replaces the default table for new notifications."""
    app.config["DECISION_APPEAL_RULES"] = ({"tracks": "*", "outcomes": "*", "days": 21},)
    officer, caseworker, supervisor = staff_of(make_user)
    case = register(officer)
    assign(case.id, caseworker, track="accelerated")
    to_notified(case.id, caseworker, supervisor, served_on=TODAY)
    assert db.session.query(Notification).one().appeal_deadline == TODAY + timedelta(days=21)


@pytest.mark.parametrize(("track", "days"), [("accelerated", 10), ("regular", None)])
def test_service_starts_the_clock_per_track(app, make_user, track, days):
    """Recording the date served gives each decision its deadline from that date (per the track
    the decision was issued in) and moves the case to notified, audited."""
    officer, caseworker, supervisor = staff_of(make_user)
    case = register(officer)
    assign(case.id, caseworker, track=track)
    served = TODAY - timedelta(days=1)
    [decision] = to_issued(case.id, caseworker, supervisor, outcome="rejected_unfounded", legal_basis=("APR-39",),
                           reasons="Not credible.")
    with pytest.raises(services.InvalidInput) as refused:
        services.record_service(case.id, acting_user=caseworker, served_on=served, method="in_person")
    assert refused.value.errors == {"served_on": ["A decision is served on or after the day it was issued."]}
    services.record_service(case.id, acting_user=caseworker, served_on=TODAY, method="post")
    notification = db.session.query(Notification).one()
    expected = TODAY + timedelta(days=days) if days else settings.add_months(TODAY, 1)
    assert (notification.decision_id, notification.appeal_deadline) == (decision.id, expected)
    assert notification.suspensive_effect == ("on_request" if track == "accelerated" else "automatic")
    assert fresh(case.id).status == "notified"
    [event] = events(EventCode.DECISION_NOTIFIED, case.id)
    assert event.details["appeal_deadline"] == expected.isoformat()
    with pytest.raises(services.InvalidInput) as refused:
        services.record_service(case.id, acting_user=caseworker, served_on=TODAY, method="post")
    assert refused.value.errors == {"__all__": ["No issued decision is waiting to be served."]}


def test_service_date_cannot_be_in_the_future(app, make_user):
    """A date served tomorrow is refused, with an unknown method."""
    officer, caseworker, supervisor = staff_of(make_user)
    case = register(officer)
    assign(case.id, caseworker)
    to_issued(case.id, caseworker, supervisor)
    with pytest.raises(services.InvalidInput) as refused:
        services.record_service(case.id, acting_user=caseworker, served_on=TODAY + timedelta(days=1), method="pigeon")
    assert refused.value.errors == {"served_on": ["The date served cannot be in the future."],
                                    "method": ["Choose one of the listed options."]}


def test_appeal_only_after_notification(app, make_user):
    """An issued decision not yet served cannot be appealed (the case is not notified)."""
    officer, caseworker, supervisor = staff_of(make_user)
    case = register(officer)
    assign(case.id, caseworker)
    [decision] = to_issued(case.id, caseworker, supervisor)
    with pytest.raises(services.InvalidInput) as refused:
        services.lodge_appeal(decision.id, acting_user=caseworker, lodged_on=TODAY)
    assert refused.value.errors == {"__all__": ["An appeal is recorded only against a decision that has been served."]}
    assert db.session.query(Appeal).count() == 0


def test_late_appeal_is_kept_and_flagged(app, make_user):
    """An appeal lodged after the deadline is recorded, flagged late with the days, audited."""
    officer, caseworker, supervisor = staff_of(make_user)
    case = register(officer)
    assign(case.id, caseworker, track="accelerated")
    served = TODAY - timedelta(days=14)
    to_under_review(case.id, caseworker, outcome="rejected_unfounded", legal_basis=("APR-39",), reasons="Not credible.")
    approve_all(case.id, supervisor)
    [decision] = services.issue_decisions(case.id, acting_user=caseworker, now=later(days=-14))
    services.record_service(case.id, acting_user=caseworker, served_on=served, method="in_person")
    appeal = services.lodge_appeal(decision.id, acting_user=caseworker, lodged_on=TODAY, court_reference="AC-7",
                                   suspension_requested=True)
    assert (appeal.late, appeal.days_late) == (True, 4)
    assert fresh(case.id).status == "appeal_lodged"
    [event] = events(EventCode.APPEAL_LODGED, case.id)
    assert (event.details["late"], event.details["days_late"]) == (True, 4)


def test_timely_appeal_is_not_late_and_only_one_pending(app, make_user):
    """On the last day it is in time; a second pending appeal on the same decision is refused."""
    officer, caseworker, supervisor = staff_of(make_user)
    case = register(officer)
    assign(case.id, caseworker)
    [decision] = to_notified(case.id, caseworker, supervisor, served_on=TODAY)
    appeal = services.lodge_appeal(decision.id, acting_user=caseworker, lodged_on=TODAY)
    assert (appeal.late, appeal.days_late) == (False, 0)
    with pytest.raises(services.InvalidInput) as refused:
        services.lodge_appeal(decision.id, acting_user=caseworker, lodged_on=TODAY)
    assert refused.value.errors == {"__all__": ["An appeal against this decision is already pending."]}
