"""The queue pages cost the same few SQL statements whatever their page size (no N+1): one list
query of the listed columns, the per-track counts on the queue page, nothing per row."""

from __future__ import annotations

import itertools
import re
from datetime import date, timedelta

import pytest

from app.db_types import utcnow
from app.extensions import db
from app.intake.models import Case
from app.triage import queues
from conftest import captured_statements

_numbers = itertools.count(1)
CASE_LINK = re.compile(r'href="/cases/[0-9a-f]{32}"')
SIGN_IN = re.compile(r"SELECT user_account\.id AS user_account_id, .* WHERE user_account\.id = \S+$")


def page_statements(browser, path: str) -> tuple[list[str], str]:
    """(the page's own statements, the page): without transaction control and the session store's
    bookkeeping and the user's sign-in, which every page has whatever it shows."""
    with captured_statements() as captured:
        response = browser.get(path)
    seen = [" ".join(statement.split()) for statement in captured]
    assert response.status_code == 200, path
    # The signed-in user's row is read or not depending on whether the session store's own
    # bookkeeping committed (and so expired it) since the last request: not the page's doing.
    own = [s for s in seen if not s.upper().startswith(("BEGIN", "PRAGMA"))
           and "web_session" not in s and not SIGN_IN.match(s)]
    return own, response.get_data(as_text=True)


def add_caseload(office_id: int, registrar_id: int, worker_id: int) -> None:
    """60 cases waiting in the office's queue (40 regular, 20 border) and 60 assigned to the worker."""
    today = utcnow().date()
    for n in range(120):
        mine = n % 2 == 0
        db.session.add(Case(reference=f"S-{next(_numbers):06d}", office_id=office_id, made_on=date(2026, 7, 1),
                            registered_on=date(2026, 7, 1) + timedelta(days=n % 30), received_by_id=registrar_id,
                            track="border" if (n // 2) % 3 == 0 else "regular", priority=n % 4,
                            statutory_deadline=today + timedelta(days=n % 40 - 10) if n % 5 else None,
                            status="assigned" if mine else "registered", assigned_to_id=worker_id if mine else None))
    db.session.commit()


@pytest.mark.parametrize("path, listed", [("/triage/queue", 60), ("/triage/queue?track=regular", 40),
                                          ("/triage/my-cases", 60)])
def test_statements_per_page_do_not_grow_with_the_page_size(app, office, make_user, signed_in, monkeypatch,
                                                             path, listed):
    """Pages of 1, 7, 50 and 200 rows issue the same statements (one list query; on the queue
    page also the per-track counts) and nothing else, never one per row, and show min(size,
    waiting) cases."""
    browser, worker = signed_in("caseworker")
    add_caseload(office.id, make_user("registration_officer").id, worker.id)
    app.config["QUEUE_COUNTS_MAX_AGE"] = 0  # count on every page: the kept copy would hide a statement
    shapes = []
    for size in (1, 7, 50, 200):
        monkeypatch.setattr(queues, "PAGE_SIZE", size)
        statements, page = page_statements(browser, path)
        assert len(CASE_LINK.findall(page)) == min(size, listed)
        shapes.append([s.split(" WHERE ")[0] for s in statements])
    assert all(shape == shapes[0] for shape in shapes), shapes
    case_reads = [s for s in shapes[0] if "FROM asylum_case" in s]
    assert len(case_reads) == (2 if path.startswith("/triage/queue") else 1), shapes[0]
    assert len(shapes[0]) == len(case_reads), shapes[0]


@pytest.mark.parametrize("path", ["/triage/queue", "/triage/my-cases"])
def test_list_queries_read_plain_columns_only(app, office, make_user, signed_in, path):
    """The list query selects the plain columns a row shows, never an encrypted section."""
    browser, worker = signed_in("caseworker")
    add_caseload(office.id, make_user("registration_officer").id, worker.id)
    statements, _page = page_statements(browser, path)
    listing = [s for s in statements if "FROM asylum_case" in s and "count(" not in s]
    assert len(listing) == 1
    selected = listing[0].split(" FROM ")[0]
    assert "arrival" not in selected and "assessment" not in selected and "person" not in selected
