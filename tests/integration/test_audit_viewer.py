"""The audit viewer through the real pages: who may read it, what each role sees, filters,
keyset paging, bad input, and that reading the trail is itself audited."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.audit.services import record_and_commit
from app.extensions import db

ROW = re.compile(r'<tr id="event-(\d+)">')
SECRET_DETAIL = "canary-detail-7f3e"


def seqs(response) -> list[int]:
    return [int(s) for s in ROW.findall(response.get_data(as_text=True))]


def link(response, rel: str) -> str | None:
    match = re.search(rf'<a rel="{rel}" href="([^"]+)"', response.get_data(as_text=True))
    return match.group(1).replace("&amp;", "&") if match else None


def audit_views(user) -> list[AuditEvent]:
    db.session.expire_all()
    return db.session.scalars(select(AuditEvent).where(AuditEvent.code == EventCode.AUDIT_VIEWED,
                                                       AuditEvent.actor_id == user.id)
                              .order_by(AuditEvent.id)).all()


def seq_of(subject_id: str) -> int:
    return db.session.scalar(select(AuditEvent.id).where(AuditEvent.subject_id == subject_id))


@pytest.fixture
def events(app, make_user):
    """A few events by a known actor with encrypted details."""
    actor = make_user("caseworker", username="actor.one")
    record_and_commit(EventCode.CASE_UPDATED, actor=actor, subject=("case", "case-a"),
                      details={"field": "status", "note": SECRET_DETAIL})
    record_and_commit(EventCode.RECORD_VIEWED, actor=actor, subject=("case", "case-b"))
    record_and_commit(EventCode.ACCESS_DENIED, actor=actor, subject=("case", "case-c"), outcome="denied")
    return actor


def test_auditor_sees_events_with_decrypted_details(signed_in, events):
    """An auditor sees code names and the decrypted details."""
    browser, _auditor = signed_in("auditor")
    page = browser.get("/audit/?subject_type=case")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "CASE_UPDATED" in body and "RECORD_VIEWED" in body and "ACCESS_DENIED" in body
    assert SECRET_DETAIL in body and "actor.one" in body
    assert page.headers["Cache-Control"] == "no-store"


def test_supervisor_sees_events_without_details(signed_in, events):
    """A supervisor sees the same events but never the decrypted details."""
    browser, _supervisor = signed_in("supervisor")
    page = browser.get("/audit/?subject_type=case")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert seqs(page) == [seq_of("case-c"), seq_of("case-b"), seq_of("case-a")]
    assert SECRET_DETAIL not in body and "Details" not in body


@pytest.mark.parametrize("role", ["caseworker", "registration_officer", "admin"])
def test_other_roles_are_refused(signed_in, events, role):
    """Roles without AUDIT_VIEW get 403 and no audit page."""
    browser, _user = signed_in(role)
    page = browser.get("/audit/")
    assert page.status_code == 403
    assert "CASE_UPDATED" not in page.get_data(as_text=True)


def test_navigation_links_the_viewer_for_auditors_only(signed_in):
    """The main navigation offers the audit trail to an auditor, not to a caseworker."""
    auditor_browser, _ = signed_in("auditor")
    caseworker_browser, _ = signed_in("caseworker")
    assert 'href="/audit/"' in auditor_browser.get("/").get_data(as_text=True)
    assert 'href="/audit/"' not in caseworker_browser.get("/").get_data(as_text=True)


def test_viewing_is_audited(signed_in, events):
    """Each page shown records AUDIT_VIEWED with the filters, range and whether details showed."""
    browser, auditor = signed_in("auditor")
    browser.get("/audit/?subject_type=case&outcome=denied")
    [viewed] = audit_views(auditor)
    assert viewed.actor_role == "auditor" and viewed.subject_type == "audit_trail"
    assert viewed.details == {"filters": {"subject_type": "case", "outcome": "denied"}, "count": 1,
                              "newest_seq": seq_of("case-c"), "oldest_seq": seq_of("case-c"),
                              "details_shown": True}
    supervisor_browser, supervisor = signed_in("supervisor")
    supervisor_browser.get("/audit/")
    assert audit_views(supervisor)[0].details["details_shown"] is False


@pytest.mark.parametrize("query, expected", [
    ("code=102", ["case-a"]),
    ("outcome=denied", ["case-c"]),
    ("subject_type=case&subject_id=case-b", ["case-b"]),
    ("actor=actor.one", ["case-c", "case-b", "case-a"]),
    ("actor=ACTOR.ONE&code=401", ["case-b"]),
    ("subject_type=case&since=2000-01-01T00:00", ["case-c", "case-b", "case-a"]),
    ("subject_type=case&until=2000-01-01T00:00", []),
    ("subject_type=case&since=2999-01-01T00:00:00", []),
])
def test_filters(signed_in, events, query, expected):
    """Each filter narrows the list to the matching events only."""
    browser, _auditor = signed_in("auditor")
    page = browser.get(f"/audit/?{query}")
    assert page.status_code == 200
    assert seqs(page) == [seq_of(s) for s in expected]
    if not expected:
        assert "No events match these filters." in page.get_data(as_text=True)


def test_keyset_paging(signed_in, make_user):
    """120 matching events page 50, 50, 20 (newest first) and 'newer' leads back exactly."""
    actor = make_user("caseworker", username="bulk")
    for i in range(120):
        record_and_commit(EventCode.RECORD_VIEWED, actor=actor, subject=("bulk", str(i)))
    expected = sorted(db.session.scalars(select(AuditEvent.id).where(AuditEvent.subject_type == "bulk")),
                      reverse=True)
    browser, _auditor = signed_in("auditor")
    first = browser.get("/audit/?subject_type=bulk")
    assert seqs(first) == expected[:50] and link(first, "prev") is None
    second = browser.get(link(first, "next"))
    assert seqs(second) == expected[50:100]
    third = browser.get(link(second, "next"))
    assert seqs(third) == expected[100:] and link(third, "next") is None
    back = browser.get(link(third, "prev"))
    assert seqs(back) == expected[50:100]
    assert seqs(browser.get(link(back, "prev"))) == expected[:50]
    assert "subject_type=bulk" in link(second, "next")


@pytest.mark.parametrize("query, field_id, message", [
    ("since=yesterday", "since", "Not a valid datetime value."),
    ("since=2026-02-01T00:00&until=2026-01-01T00:00", "until", "must not be before its start"),
    ("code=99999", "code", "Not a valid choice"),
    ("outcome=maybe", "outcome", "Not a valid choice"),
    ("actor=nobody.here", "actor", "No account has this username."),
    ("subject_id=" + "x" * 65, "subject_id", "Field cannot be longer than 64 characters."),
    ("subject_type=a%00b", "subject_type", "Remove the control characters."),
])
def test_bad_filter_is_400_with_message_at_the_field(signed_in, query, field_id, message):
    """Bad filter input answers 400 with the message next to its field, and nothing is audited."""
    browser, auditor = signed_in("auditor")
    page = browser.get(f"/audit/?{query}")
    body = page.get_data(as_text=True)
    assert page.status_code == 400
    assert re.search(rf'<ul class="errors" id="{field_id}-error"><li>[^<]*{re.escape(message)}', body), body
    assert audit_views(auditor) == []


@pytest.mark.parametrize("query", ["before=-1", "before=abc", "after=99999999999999999999999", "before=5&after=2"])
def test_bad_paging_cursor_is_400(signed_in, query):
    """A tampered paging cursor is refused with 400, never a 500."""
    browser, _auditor = signed_in("auditor")
    page = browser.get(f"/audit/?{query}")
    assert page.status_code == 400
    assert '<ul class="errors">' in page.get_data(as_text=True)


def test_undecryptable_details_do_not_break_the_page(signed_in, events, caplog):
    """Details that no longer decrypt (ciphertext moved from another event by someone with
    database rights) are marked as unreadable on a 200 page; the others still show."""
    browser, _auditor = signed_in("auditor")
    target = seq_of("case-b")
    stored = db.session.scalar(select(AuditEvent._details_ciphertext).where(AuditEvent.subject_id == "case-a"))
    db.session.remove()
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_event_no_update")
        conn.execute(AuditEvent.__table__.update().where(AuditEvent.__table__.c.seq == target)
                     .values(details=stored))
    page = browser.get("/audit/?subject_type=case")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Details cannot be decrypted" in body and SECRET_DETAIL in body
    assert f"audit_event.details:{target}" in caplog.text
