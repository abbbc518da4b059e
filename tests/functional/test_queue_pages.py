"""Queue pages through the browser: queues and "take next", my cases, deadlines, supervisors'
bulk assignment and workload; permissions, office scoping, CSRF, 400 on bad input, and a bounded
number of SQL statements per page whatever the number of cases."""

from __future__ import annotations

import itertools
import re
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.db_types import utcnow
from app.extensions import db
from app.intake.models import Case
from conftest import captured_statements

_numbers = itertools.count(1)
CASE_LINK = re.compile(r'href="/cases/[0-9a-f]{32}"')


@pytest.fixture
def new_case(app, office, make_user):
    """new_case(**fields) -> Case (HQ office unless ``office_id``), created directly."""
    registrar = make_user("registration_officer")

    def make(*, office_id=None, track="regular", priority=0, deadline=None, registered_on=date(2026, 7, 1),
             status="registered", assigned_to=None, reference=None, commit=True):
        case = Case(reference=reference or f"Q-{next(_numbers):06d}", office_id=office_id or office.id,
                    made_on=registered_on, registered_on=registered_on, received_by_id=registrar.id,
                    track=track, priority=priority, statutory_deadline=deadline, status=status,
                    assigned_to_id=assigned_to.id if assigned_to else None)
        db.session.add(case)
        if commit:
            db.session.commit()
        return case

    return make


def text_of(response) -> str:
    return response.get_data(as_text=True)


def order_in(page: str, *needles: str) -> list[int]:
    return [page.index(n) for n in needles]


def reload(case_id: str) -> Case:
    db.session.rollback()
    db.session.expire_all()
    return db.session.get(Case, case_id)


def today() -> date:
    return utcnow().date()


# -- caseworkers ---------------------------------------------------------------------------------------

def test_queue_page_shows_counts_and_cases_of_the_office_in_order(signed_in, new_case, other_office):
    """The queue page shows per-track counts and the office's cases in queue order, linked."""
    browser, _user = signed_in("caseworker")
    low = new_case(reference="LOW-ONE", priority=0)
    high = new_case(reference="HIGH-ONE", priority=3, deadline=today() + timedelta(days=10))
    new_case(reference="BORDER-ONE", track="border", priority=1)
    new_case(reference="NORTH-ONE", office_id=other_office.id, priority=9)
    response = browser.get("/triage/queue")
    page = text_of(response)
    assert response.status_code == 200
    assert re.search(r"<code>border</code></a></td>\s*<td>1</td>", page)
    assert re.search(r"<code>regular</code></a></td>\s*<td>2</td>", page)
    positions = order_in(page, "HIGH-ONE", "BORDER-ONE", "LOW-ONE")
    assert positions == sorted(positions)
    assert "NORTH-ONE" not in page
    assert f'href="/cases/{high.id}"' in page and f'href="/cases/{low.id}"' in page
    assert "10 days" in page
    for label in ("Queues", "My cases", "Deadlines"):
        assert f">{label}</a>" in page
    assert ">Workload</a>" not in page
    regular_only = text_of(browser.get("/triage/queue?track=regular"))
    assert "HIGH-ONE" in regular_only and "BORDER-ONE</a>" not in regular_only


def test_queue_page_pages_by_fifty(signed_in, new_case):
    """55 waiting cases: 50 on the first page and a link to the next, which shows the other 5."""
    browser, _user = signed_in("caseworker")
    for n in range(55):
        new_case(reference=f"PG-{n:02d}", registered_on=date(2026, 1, 1) + timedelta(days=n), commit=False)
    db.session.commit()
    first = text_of(browser.get("/triage/queue?track=regular"))
    assert len(CASE_LINK.findall(first)) == 50
    assert "PG-00" in first and "PG-49" in first and "PG-50" not in first
    next_link = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = text_of(browser.get(next_link))
    assert len(CASE_LINK.findall(second)) == 5
    assert "PG-50" in second and "PG-54" in second and "PG-49<" not in second


def test_take_next_button_gives_the_first_case_and_opens_it(signed_in, new_case):
    """Take next assigns the first case and opens it; an empty queue comes back with a message."""
    browser, user = signed_in("caseworker")
    new_case(reference="SECOND", priority=1)
    first = new_case(reference="FIRST", priority=2)
    response = browser.post("/triage/queue/take", {"track": "regular"}, token_from="/triage/queue")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/cases/{first.id}"
    case = reload(first.id)
    assert (case.assigned_to_id, case.status) == (user.id, "assigned")
    event_row = db.session.scalars(select(AuditEvent).where(AuditEvent.code == EventCode.CASE_ASSIGNED)).one()
    assert (event_row.actor_id, event_row.subject_id, event_row.details["how"]) == (user.id, first.id, "take_next")
    assert browser.post("/triage/queue/take", {}, token_from="/triage/queue").status_code == 302  # SECOND
    empty = browser.post("/triage/queue/take", {"track": "regular"}, token_from="/triage/queue")
    assert empty.headers["Location"] == "/triage/queue?track=regular"
    assert "No case is waiting in this queue." in text_of(browser.get(empty.headers["Location"]))


def test_take_next_needs_a_csrf_token(signed_in, new_case):
    """A POST without the token is refused (400) and assigns nothing."""
    browser, _user = signed_in("caseworker")
    case = new_case()
    assert browser.client.post("/triage/queue/take", data={"track": "regular"}).status_code == 400
    assert reload(case.id).assigned_to_id is None


@pytest.mark.parametrize("method, path, data, message", [
    ("GET", "/triage/queue?track=Robert%27);DROP", None, "Unknown track."),
    ("GET", "/triage/queue?after=garbage", None, "This link is no longer valid"),
    ("GET", "/triage/queue?after=" + "x" * 500, None, "This link is no longer valid"),
    ("GET", "/triage/my-cases?after=1~~2026-01-01~" + "a" * 32, None, "This link is no longer valid"),
    ("GET", "/triage/deadlines?days=0", None, "Enter a number of days from 1 to 365."),
    ("GET", "/triage/deadlines?days=366", None, "Enter a number of days from 1 to 365."),
    ("GET", "/triage/deadlines?days=abc", None, "Not a valid integer value."),
    ("GET", "/triage/deadlines?due_after=%00", None, "This link is no longer valid"),
    ("POST", "/triage/queue/take", {"track": "x\x00y"}, "Bad request"),
])
def test_bad_input_answers_400_with_a_message(signed_in, method, path, data, message):
    """Malformed parameters give 400 and say what is wrong, never a server error."""
    browser, _user = signed_in("caseworker")
    if method == "GET":
        response = browser.get(path)
    else:
        response = browser.post(path, data, token_from="/triage/queue")
    assert response.status_code == 400
    assert message in text_of(response)


NASTY = st.one_of(st.text(max_size=60), st.sampled_from(["\x00", "0", "-1", "365", "366", "1e9", "regular",
                                                        "1~~2026-07-01~" + "a" * 32, "~~~", "%00", "é" * 50]))


def test_random_parameters_never_cause_a_server_error(signed_in, new_case):
    """Random text in every query parameter of the queue pages: 200, 400 or 404, never a 500."""
    new_case()
    browser, _user = signed_in("supervisor")

    @settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(track=NASTY, after=NASTY, days=NASTY)
    def check(track, after, days):
        for path, params in [("/triage/queue", {"track": track, "after": after}),
                             ("/triage/my-cases", {"after": after}),
                             ("/triage/deadlines", {"days": days, "due_after": after, "overdue_after": track}),
                             ("/triage/assign", {"track": track, "after": after, "from_user": days})]:
            status = browser.client.get(path, query_string=params).status_code
            assert status in (200, 400, 404), (path, params, status)

    check()


def test_my_cases_page_lists_own_open_cases(signed_in, new_case, make_user):
    """Only the caseworker's own open cases, nearest deadline first."""
    browser, user = signed_in("caseworker")
    other = make_user("caseworker")
    new_case(reference="MINE-LATER", status="assigned", assigned_to=user, deadline=today() + timedelta(days=40))
    new_case(reference="MINE-SOONER", status="assigned", assigned_to=user, deadline=today() + timedelta(days=3))
    new_case(reference="MINE-CLOSED", status="closed", assigned_to=user)
    new_case(reference="NOT-MINE", status="assigned", assigned_to=other)
    page = text_of(browser.get("/triage/my-cases"))
    assert order_in(page, "MINE-SOONER", "MINE-LATER") == sorted(order_in(page, "MINE-SOONER", "MINE-LATER"))
    assert "MINE-CLOSED" not in page and "NOT-MINE" not in page


def test_deadlines_page_defaults_to_14_days_and_lists_overdue(signed_in, new_case, make_user):
    """Deadlines: 14 days by default (day 14 in, 15 out), overdue listed, assignee named."""
    browser, _user = signed_in("caseworker")
    worker = make_user("caseworker", username="walter")
    new_case(reference="DUE-TODAY", deadline=today())
    new_case(reference="DUE-DAY14", deadline=today() + timedelta(days=14), status="assigned", assigned_to=worker)
    new_case(reference="DUE-DAY15", deadline=today() + timedelta(days=15))
    new_case(reference="LATE-ONE", deadline=today() - timedelta(days=1))
    response = browser.get("/triage/deadlines")
    page = text_of(response)
    assert response.status_code == 200
    assert "Due within 14 days" in page
    overdue_part, due_part = page.split("Due within 14 days")
    assert "LATE-ONE" in overdue_part and "DUE-TODAY" not in overdue_part
    assert "DUE-TODAY" in due_part and "DUE-DAY14" in due_part and "DUE-DAY15" not in due_part
    assert "Due today" in due_part and "(walter)" in due_part
    assert "DUE-DAY15" in text_of(browser.get("/triage/deadlines?days=30"))


# -- supervisors -------------------------------------------------------------------------------------------

def assigned_count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(Case).where(Case.assigned_to_id.is_not(None)))


def test_supervisor_bulk_assigns_the_selected_cases(signed_in, new_case, make_user):
    """Tick two cases, choose a caseworker, submit: both are theirs, the page says so."""
    browser, supervisor = signed_in("supervisor")
    worker = make_user("caseworker", username="carla")
    a, b, c = new_case(reference="BA-1"), new_case(reference="BA-2"), new_case(reference="BA-3")
    form = text_of(browser.get("/triage/assign"))
    assert f'value="{a.id}:1"' in form and "carla" in form
    response = browser.post("/triage/assign", {"case": [f"{a.id}:1", f"{b.id}:1"], "assignee": str(worker.id),
                                                "track": "", "from_user": ""})
    assert response.status_code == 302
    assert [reload(x.id).assigned_to_id for x in (a, b, c)] == [worker.id, worker.id, None]
    assert "2 cases assigned." in text_of(browser.get(response.headers["Location"]))


def test_bulk_assign_with_a_case_of_another_office_changes_nothing(signed_in, new_case, make_user, other_office):
    """A forged selection including another office's case: 422 with the reason, none assigned."""
    browser, _supervisor = signed_in("supervisor")
    worker = make_user("caseworker")
    mine = new_case()
    foreign = new_case(office_id=other_office.id)
    response = browser.post("/triage/assign", {"case": [f"{mine.id}:1", f"{foreign.id}:1"],
                                                "assignee": str(worker.id)})
    assert response.status_code == 422
    assert "1 selected case is not a case of your office." in text_of(response)
    assert assigned_count() == 0


def test_bulk_assign_refuses_a_case_taken_meanwhile(signed_in, new_case, make_user):
    """The page showed version 1; the case was taken since: 409, nothing changes."""
    browser, _supervisor = signed_in("supervisor")
    worker, taker = make_user("caseworker"), make_user("caseworker")
    case, other = new_case(reference="RACED", priority=3), new_case(reference="CALM")
    from app.triage.queues import take_next
    take_next(acting_user=taker)
    response = browser.post("/triage/assign", {"case": [f"{case.id}:1", f"{other.id}:1"], "assignee": str(worker.id)})
    assert response.status_code == 409
    assert "Case RACED changed since you opened the page." in text_of(response)
    assert reload(case.id).assigned_to_id == taker.id and reload(other.id).assigned_to_id is None


@pytest.mark.parametrize("data, message", [
    ({"case": ["not-a-case"], "assignee": "1"}, "The selection could not be read."),
    ({"assignee": "1"}, "Select at least one case."),
    ({"case": ["a" * 32 + ":1"], "assignee": "abc"}, "Choose who gets the cases."),
    ({"case": ["a" * 32 + ":1"], "assignee": "0"}, "Choose who gets the cases."),
])
def test_bulk_assign_malformed_input_is_400(signed_in, new_case, data, message):
    """Unreadable selections or no assignee: 400 with the reason, nothing assigned."""
    browser, _supervisor = signed_in("supervisor")
    new_case()
    response = browser.post("/triage/assign", data)
    assert response.status_code == 400
    assert message in text_of(response)
    assert assigned_count() == 0


def test_workload_page_and_a_persons_cases(signed_in, new_case, make_user, other_office):
    """Workload numbers per person; their cases can be put back in the queue; other offices 404."""
    browser, _supervisor = signed_in("supervisor")
    worker = make_user("caseworker", username="wilma")
    idle = make_user("caseworker", username="ivan")
    late = new_case(reference="W-LATE", status="assigned", assigned_to=worker, deadline=today() - timedelta(days=2))
    new_case(reference="W-SOON", status="assigned", assigned_to=worker, deadline=today() + timedelta(days=3))
    page = text_of(browser.get("/triage/workload"))
    assert re.search(r"\(wilma\)</td>\s*<td>[^<]*</td>\s*<td>2</td>\s*<td><strong>1</strong></td>\s*<td>1</td>", page)
    assert re.search(r"\(ivan\)</td>\s*<td>[^<]*</td>\s*<td>0</td>\s*<td>0</td>\s*<td>0</td>", page)
    assert ">Workload</a>" in page
    cases_page = text_of(browser.get(f"/triage/assign?from_user={worker.id}"))
    assert "W-LATE" in cases_page and "W-SOON" in cases_page and "Back to the queue" in cases_page
    response = browser.post(f"/triage/cases/{late.id}/unassign", {"version": "1"},
                            token_from=f"/triage/assign?from_user={worker.id}")
    assert response.status_code == 302
    assert (reload(late.id).assigned_to_id, reload(late.id).status) == (None, "registered")
    stranger = make_user("caseworker", office_id=other_office.id)
    assert browser.get(f"/triage/assign?from_user={stranger.id}").status_code == 404
    foreign = new_case(office_id=other_office.id, status="assigned", assigned_to=stranger)
    assert browser.post(f"/triage/cases/{foreign.id}/unassign", {"version": "1"},
                        token_from="/triage/assign").status_code == 404
    assert idle.id  # listed above with zeros


@pytest.mark.parametrize("role, path, expected", [
    ("caseworker", "/triage/workload", 403),
    ("caseworker", "/triage/assign", 403),
    ("registration_officer", "/triage/queue", 403),
    ("registration_officer", "/triage/my-cases", 403),
    ("auditor", "/triage/deadlines", 403),
    ("admin", "/triage/queue", 403),
    ("supervisor", "/triage/queue", 200),
    ("supervisor", "/triage/workload", 200),
])
def test_queue_pages_need_their_permission(signed_in, role, path, expected):
    """Queue pages for caseworkers and supervisors, assignment and workload for supervisors only."""
    browser, _user = signed_in(role)
    assert browser.get(path).status_code == expected


def test_anonymous_visitors_are_sent_to_sign_in(app):
    """Signed out: GET pages redirect to sign-in, POSTs are refused."""
    client = app.test_client()
    assert client.get("/triage/queue").status_code == 302
    assert client.post("/triage/queue/take").status_code in (400, 401)


# -- no N+1 ----------------------------------------------------------------------------------------------

def statements_for(app, browser, path: str) -> int:
    with captured_statements() as counted:
        assert browser.get(path).status_code == 200
    # The page's own statements: not transaction control, not the session store's bookkeeping
    # (it writes last_seen_at now and then, whatever the page).
    return len([s for s in counted if not s.lstrip().upper().startswith(("BEGIN", "PRAGMA"))
                and "web_session" not in s])


@pytest.mark.parametrize("path", ["/triage/queue", "/triage/queue?track=regular", "/triage/my-cases",
                                  "/triage/deadlines", "/triage/assign", "/triage/workload"])
def test_pages_issue_the_same_few_statements_for_3_or_60_cases(app, signed_in, new_case, make_user, path):
    """A page issues the same few SQL statements for 3 or 60 cases (no N+1)."""
    browser, user = signed_in("supervisor")
    helper = make_user("caseworker")
    app.config["QUEUE_COUNTS_MAX_AGE"] = 0  # count every time: the cache would hide a statement

    def add(n: int) -> None:
        for i in range(n):
            owner = None if i % 2 else (user if i % 4 == 0 else helper)
            new_case(priority=i % 3, deadline=today() + timedelta(days=i % 20 - 5), commit=False,
                     status="assigned" if owner else "registered", assigned_to=owner)
        db.session.commit()

    add(3)
    few = statements_for(app, browser, path)
    add(57)
    many = statements_for(app, browser, path)
    assert few == many
    assert many <= 8
