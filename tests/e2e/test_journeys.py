"""The three users' journeys in a real browser, from sign-in to the end, one after another on the
same running application: a registration officer registers a family claim that is a possible
duplicate; a caseworker takes it from the queue, interviews and drafts; a supervisor returns it
once, approves the revision and the decision is issued with its letter; the supervisor exports
the report; an auditor finds it all in the audit trail.

Each journey leaves what the next needs in ``live_server.state``; when an earlier one failed,
the later ones are skipped (the failure is already reported). Every page on the way is
screenshotted (test-artifacts/e2e/) and scanned with axe-core: no serious or critical violation.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .journey_helpers import (DEPENDANT, PRINCIPAL, REGISTERED_ON, confirm_new_people, fill_family_claim, nav,
                             sign_in)

# Under pytest-xdist the journeys must stay on one worker: --dist loadfile (see needs()).
pytestmark = pytest.mark.e2e

CASE_URL = re.compile(r"/cases/([0-9a-f]{32})$")


def needs(live_server, journey: str, *keys: str) -> dict:
    """What the earlier journeys left. Missing because one of them failed: skipped (that failure
    is reported already). Missing because none of them ran in this process: a failure, since a
    journey that silently never runs proves nothing (under pytest-xdist, use --dist loadfile)."""
    state = live_server.state
    started = state.setdefault("started", set())
    missing = [key for key in keys if key not in state]
    if missing and not started:
        pytest.fail(f"journey ({journey}) needs the earlier journeys, which did not run in this process "
                    "(run the whole module; with pytest-xdist: --dist loadfile)", pytrace=False)
    started.add(journey)
    if missing:
        pytest.skip(f"an earlier journey did not get this far (missing: {', '.join(missing)})")
    return state


def signed_in_page(people, live_server, username: str, checkpoint):
    page, new = people.page_of(username)
    if new:
        sign_in(page, live_server.accounts[username], checkpoint)
    return page


def add_months(day, months: int):
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


# -- (a) registration ------------------------------------------------------------------------------

def test_a_registration_officer_registers_a_family_claim_with_a_possible_duplicate(people, live_server, checkpoint):
    """The officer types a family claim whose principal is "Muhammad Al Hasan" born 1990-03-05:
    the duplicate check shows "Mohammed Al-Hassan" (registered in the northern office) and saves
    nothing; the officer confirms a new person; the case page shows both people and the triage:
    track, the grounds the rules found and the statutory deadline."""
    live_server.state.setdefault("started", set()).add("a")
    page = signed_in_page(people, live_server, "registrar", checkpoint)
    checkpoint(page, "registration officer home")
    nav(page, "Register a claim")
    fill_family_claim(page, checkpoint)
    page.get_by_role("button", name="Check and register", exact=True).click()

    duplicates = page.get_by_role("region", name="Possible duplicates: nothing is saved yet")
    expect(duplicates).to_be_visible()
    principal_choice = duplicates.get_by_role("group", name=re.compile(r"^Person 1: principal applicant"))
    expect(principal_choice).to_contain_text("Al-Hassan, Mohammed")
    expect(principal_choice).to_contain_text("1990-03-05")
    expect(principal_choice).to_contain_text("NORTH")
    expect(principal_choice.get_by_role("radio", name=re.compile(r"^This is the same person: link to NORTH-")))\
        .to_be_visible()
    asked = confirm_new_people(page, checkpoint)
    assert asked[0].startswith("Person 1: principal applicant: Al Hasan, Muhammad"), asked

    expect(page).to_have_url(CASE_URL)
    case_id = CASE_URL.search(page.url).group(1)
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text(re.compile(r"^Case HQ-"))
    reference = heading.inner_text().removeprefix("Case ").strip()
    expect(page.get_by_role("status")).to_contain_text(f"Case {reference} registered.")
    expect(page.get_by_role("heading", name=f"Person 1: principal applicant: {PRINCIPAL['family']}, "
                                             f"{PRINCIPAL['given']}")).to_be_visible()
    expect(page.get_by_role("heading", name=f"Person 2: dependant: {DEPENDANT['family']}, "
                                             f"{DEPENDANT['given']}")).to_be_visible()

    triage = page.get_by_role("region", name="Triage", exact=True)
    expect(triage).to_contain_text("Regular procedure, examined first")
    expect(triage).to_contain_text("regular_prioritised")
    # SYR: 90 % recognition in the imported EU rates, so likely well-founded (APR 34).
    grounds = triage.get_by_role("table").first
    expect(grounds).to_contain_text("PRIORITY_LIKELY_WELL_FOUNDED")
    expect(grounds).to_contain_text("APR 34")
    deadline = add_months(datetime.fromisoformat(REGISTERED_ON).date(), 6)
    expect(triage).to_contain_text(f"Statutory deadline {deadline.isoformat()}")
    history = page.get_by_role("region", name="Case history")
    for event in ("Claim registered", "Confirmed as a new person (not a duplicate)", "Triaged"):
        expect(history.get_by_role("cell", name=event, exact=True).first).to_be_visible()
    checkpoint(page, "case page after registration")

    live_server.state.update(case_id=case_id, reference=reference, deadline=deadline.isoformat())
    checkpoint.assert_accessible()


# -- (b) caseworker ---------------------------------------------------------------------------------

def status_is(page, label: str):
    expect(page.get_by_role("main")).to_contain_text(re.compile(rf"Status\s*{re.escape(label)}"))


def form_under(heading):
    """The form that follows a heading (the workspace's draft forms are introduced by one)."""
    return heading.locator("xpath=following-sibling::form[1]")


def decision_of(page, given_names: str):
    """The decision (an article) of one person, found by its heading."""
    return page.get_by_role("article").filter(
        has=page.get_by_role("heading", name=re.compile(rf"^{re.escape(given_names)} ")))


def flash(page, text: str):
    expect(page.get_by_role("status")).to_contain_text(text)


def test_b_caseworker_takes_the_next_case_interviews_and_drafts(people, live_server, checkpoint, server_clock):
    """The caseworker takes the next case from the queues (the family claim: the only one of
    the office), schedules the interview, records it once it has taken place, drafts a decision
    for each person and submits them for review."""
    state = needs(live_server, "b", "case_id", "reference")
    page = signed_in_page(people, live_server, "caseworker", checkpoint)
    checkpoint(page, "caseworker home")
    nav(page, "Queues")
    expect(page.get_by_role("heading", level=1)).to_have_text("Queues")
    checkpoint(page, "queues")
    page.get_by_role("button", name="Take next case (all tracks)").click()
    flash(page, f"Case {state['reference']} is now yours.")
    expect(page).to_have_url(re.compile(rf"/cases/{state['case_id']}$"))
    checkpoint(page, "case taken")

    page.get_by_role("link", name="Interviews and decisions").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Decisions · {state['reference']}")
    status_is(page, "Assigned")
    checkpoint(page, "decision workspace")

    # Schedule the interview a few minutes from now (the form takes UTC, to the minute).
    starts = (datetime.now(UTC) + timedelta(minutes=3)).replace(second=0, microsecond=0)
    schedule = form_under(page.get_by_role("heading", name="Schedule an interview"))
    expect(schedule.get_by_label("Person interviewed")).to_have_value(re.compile(r"[0-9a-f]{32}"))
    expect(schedule.get_by_label("Interpreter language (ISO 639-3)")).to_have_value("ara")
    schedule.get_by_label("Date", exact=True).fill(starts.date().isoformat())
    schedule.get_by_label("Time (UTC)").fill(starts.strftime("%H:%M"))
    schedule.get_by_label("Duration (minutes)").fill("90")
    schedule.get_by_label("Place", exact=True).fill("Interview room 2")
    schedule.get_by_label("Interpreter name").fill("Samira Interpreter")
    schedule.get_by_role("button", name="Schedule the interview").click()
    flash(page, "Interview scheduled.")
    status_is(page, "Interview scheduled")
    checkpoint(page, "interview scheduled")

    # The interview takes place: the decision service's clock moves past its start (an
    # interview is recorded once it has started; the test cannot wait for it in real time).
    interviews = page.get_by_role("region", name="Interviews")
    interviews.get_by_label("Attendance").select_option(label="Attended")
    interviews.get_by_label("Interview notes").fill("Consistent account of two arrests in 2024; "
                                                    "summons of 2025 shown in original.")
    with server_clock.advanced(timedelta(minutes=15)), \
            page.expect_response(re.compile(r"/decisions/interviews/[0-9a-f]+/record$")):
        interviews.get_by_role("button", name="Record the interview").click()
    flash(page, "Interview recorded.")
    status_is(page, "Interviewed")
    checkpoint(page, "interview recorded")

    for given, family in ((PRINCIPAL["given"], PRINCIPAL["family"]), (DEPENDANT["given"], DEPENDANT["family"])):
        draft = form_under(page.get_by_role("heading", name=f"New draft for {given} {family}"))
        draft.get_by_label("Outcome").select_option(label="Refugee status granted")
        draft.get_by_label("Legal basis").select_option(label="QR-REFUGEE — QR: refugee status (Arts 9, 10, 13)")
        draft.get_by_label("Written reasons").fill(f"Well-founded fear of persecution ({given}): "
                                                   "political opinion, credible and consistent account.")
        draft.get_by_role("button", name="Save the draft").click()
        flash(page, "Draft saved.")
    status_is(page, "Decision drafted")
    checkpoint(page, "decisions drafted")

    page.get_by_role("region", name="Next steps").get_by_role("button", name="Submit for review").click()
    flash(page, "Case moved to “Under review”.")
    status_is(page, "Under review")
    checkpoint(page, "submitted for review")
    state["workspace"] = page.url.split("#")[0]
    checkpoint.assert_accessible()


# -- (c) review, revision, approval, issue ----------------------------------------------------------

def review(page, given_names: str, action: str, comments: str = "") -> None:
    decision = decision_of(page, given_names)
    decision.get_by_label(action, exact=True).check()
    if comments:
        decision.get_by_label("Comments", exact=True).fill(comments)
    decision.get_by_role("button", name="Record the review").click()
    flash(page, "Review recorded.")


def open_from_reviews(page, reference: str, checkpoint, step: str, waiting: int) -> None:
    """"Reviews" lists one row per decision waiting: open the case from the first."""
    nav(page, "Reviews")
    expect(page.get_by_role("heading", level=1)).to_have_text("Reviews waiting")
    checkpoint(page, step, once="reviews")
    rows = page.get_by_role("link", name=reference, exact=True)
    expect(rows).to_have_count(waiting)
    rows.first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Decisions · {reference}")


def test_c_supervisor_returns_once_then_approves_and_the_decisions_are_issued(people, live_server, checkpoint):
    """The supervisor (second factor: a TOTP code) finds the case in "Reviews" and returns the
    principal's draft with a comment; the caseworker revises it and submits again; the supervisor,
    who drafted nothing, approves both and issues them; each letter downloads as a PDF."""
    state = needs(live_server, "c", "case_id", "reference", "workspace")
    supervisor = signed_in_page(people, live_server, "supervisor", checkpoint)
    checkpoint(supervisor, "supervisor home")
    open_from_reviews(supervisor, state["reference"], checkpoint, "reviews waiting", waiting=2)
    checkpoint(supervisor, "workspace for review")
    comment = "Say how the 2025 summons was verified before approval."
    review(supervisor, PRINCIPAL["given"], "Return with comments", comment)
    status_is(supervisor, "Decision drafted")
    checkpoint(supervisor, "returned with comments", scan=False)  # the page as scanned before

    caseworker = signed_in_page(people, live_server, "caseworker", checkpoint)
    caseworker.goto(state["workspace"])
    principal = decision_of(caseworker, PRINCIPAL["given"])
    expect(principal).to_contain_text("Returned")
    expect(principal.get_by_role("listitem").filter(has_text="returned")).to_contain_text(comment)
    checkpoint(caseworker, "returned draft seen by the caseworker")
    principal.get_by_label("Written reasons").fill(
        "Well-founded fear of persecution: political opinion. The 2025 summons was verified with the "
        "issuing court's register (original seen at the interview).")
    principal.get_by_role("button", name="Save the draft").click()
    flash(caseworker, "Draft saved.")
    caseworker.get_by_role("region", name="Next steps").get_by_role("button", name="Submit for review").click()
    status_is(caseworker, "Under review")
    checkpoint(caseworker, "resubmitted", scan=False)  # the page as scanned in (b)

    open_from_reviews(supervisor, state["reference"], checkpoint, "reviews waiting again", waiting=2)
    review(supervisor, PRINCIPAL["given"], "Approve")
    review(supervisor, DEPENDANT["given"], "Approve")
    for given in (PRINCIPAL["given"], DEPENDANT["given"]):
        decision = decision_of(supervisor, given)
        # Four eyes: drafted by the caseworker, approved by the supervisor (demo full names).
        expect(decision).to_contain_text(re.compile(r"Drafted by\s*Camille Martin"))
        expect(decision).to_contain_text(re.compile(r"Approved by\s*Sipho Dlamini"))
    checkpoint(supervisor, "approved")
    supervisor.get_by_role("region", name="Next steps").get_by_role("button", name="Issue the decisions").click()
    flash(supervisor, "Decisions issued; the letters are ready.")
    status_is(supervisor, "Decision issued")
    checkpoint(supervisor, "issued")

    letters = supervisor.get_by_role("link", name=re.compile(r"^Download the letter"))
    expect(letters).to_have_count(2)
    for index in range(2):
        with supervisor.expect_download() as download_info:
            letters.nth(index).click()
        download = download_info.value
        assert download.suggested_filename.endswith(".pdf"), download.suggested_filename
        content = Path(download.path()).read_bytes()
        assert content.startswith(b"%PDF"), content[:20]
        download.save_as(checkpoint.artifacts / f"{checkpoint.name}-letter-{index + 1}.pdf")
    state["issued"] = True
    checkpoint.assert_accessible()


# -- (d) reports ------------------------------------------------------------------------------------

def test_d_supervisor_opens_the_dashboard_and_exports_the_pdf_report(people, live_server, checkpoint):
    """The supervisor opens "Reports" and downloads the summary report as a PDF."""
    needs(live_server, "d", "issued")
    page = signed_in_page(people, live_server, "supervisor", checkpoint)
    nav(page, "Reports")
    expect(page.get_by_role("heading", level=1)).to_have_text("Reports")
    checkpoint(page, "reports dashboard")
    exports = page.get_by_role("region", name="Exports")
    with page.expect_download() as download_info:
        exports.get_by_role("button", name="Summary report (PDF)").click()
    download = download_info.value
    content = Path(download.path()).read_bytes()
    assert content.startswith(b"%PDF"), content[:20]
    download.save_as(checkpoint.artifacts / f"{checkpoint.name}-{download.suggested_filename}")
    live_server.state["report_exported"] = True
    checkpoint.assert_accessible()


# -- (e) audit ------------------------------------------------------------------------------------

def test_e_auditor_finds_the_whole_story_in_the_audit_trail(people, live_server, checkpoint):
    """The auditor filters the trail by the case and finds its registration, the duplicate
    decision, triage, assignment, the interview, every decision step and the issue; and the
    report export under the supervisor's name."""
    state = needs(live_server, "e", "case_id", "issued")
    page = signed_in_page(people, live_server, "auditor", checkpoint)
    checkpoint(page, "auditor home")
    nav(page, "Audit trail")
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit trail")
    checkpoint(page, "audit trail")
    page.get_by_text("Filter events", exact=True).click()
    page.get_by_label("Subject type").fill("case")
    page.get_by_label("Subject id").fill(state["case_id"])
    page.get_by_role("button", name="Show events").click()
    checkpoint(page, "audit trail filtered by the case")

    seen: set[str] = set()
    while True:
        table = page.get_by_role("table")
        for text in table.get_by_role("code").all_inner_texts():
            seen.add(text.strip())
        subjects = set(table.locator("tbody tr td:nth-child(5)").all_inner_texts())
        assert subjects == {f"case {state['case_id']}"}, subjects
        older = page.get_by_role("link", name="Older events")
        if older.count() == 0:
            break
        older.click()
        checkpoint(page, "older events", scan=False)
    expected = {"CASE_REGISTERED", "DUPLICATE_CONFIRMED_NEW", "CASE_TRIAGED", "CASE_ASSIGNED",
                "INTERVIEW_SCHEDULED", "INTERVIEW_RECORDED", "DECISION_DRAFTED", "DECISION_SUBMITTED",
                "DECISION_RETURNED", "DECISION_APPROVED", "DECISION_ISSUED", "CASE_TRANSITION", "RECORD_VIEWED"}
    assert expected <= seen, f"missing: {sorted(expected - seen)}; seen: {sorted(seen)}"

    if live_server.state.get("report_exported"):
        page.get_by_role("link", name="Clear filters").click()
        page.get_by_text("Filter events", exact=True).click()
        page.get_by_label("Actor (username)").fill("supervisor")
        page.get_by_label("Event", exact=True).select_option(label="408 REPORT_EXPORTED")
        page.get_by_role("button", name="Show events").click()
        expect(page.get_by_role("table").get_by_role("code").filter(has_text="REPORT_EXPORTED")).to_have_count(1)
        checkpoint(page, "audit trail: report export")
    checkpoint.assert_accessible()
