"""Triage pages through the browser: the case panel, overrides, assessment facts, settings,
reference data with CSV upload, replay and activation; permissions, office scope and bad input."""

from __future__ import annotations

import copy
import html
import io
import re
from datetime import date, timedelta

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.extensions import db, limiter
from app.intake import services as intake
from app.intake.models import Case
from app.triage import rules, services
from app.triage.models import RecognitionRate, RulesetVersion, TrackOverride

MADE = date.today() - timedelta(days=10)


def register(make_user, nationality="PAK", family_name="Haddad", office_id=None) -> Case:
    officer = make_user("registration_officer", office_id=office_id)
    payload = {"made_on": MADE.isoformat(), "registered_on": MADE.isoformat(), "lodged_on": MADE.isoformat(),
               "persons": [{"principal": True, "identity": {"family_name": family_name, "given_names": "Rania"},
                            "birth": {"date_of_birth": "1990-03-05", "sex": "F"},
                            "nationality": {"nationalities": [nationality]}}]}
    return intake.register_claim(payload, acting_user=officer, duplicate_decisions={0: "new"}).case


def with_rates(make_user):
    services.import_recognition_rates("nationality,rate_pct,source,as_of\nPAK,15,Eurostat 2025,2026-03-01\n"
                                      "AFG,25,Eurostat 2025,2026-03-01\n", acting_user=make_user("supervisor"))


def text(response) -> str:
    return response.get_data(as_text=True)


def count(model) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model))


def upload(browser, path, token_from, content: bytes, name: str, **fields):
    return browser.post(path, {"file": (io.BytesIO(content), name), **fields}, token_from=token_from,
                        content_type="multipart/form-data")


def test_case_panel_shows_track_grounds_deadline_and_history(signed_in, make_user):
    """A caseworker sees the track with its label, each ground with reason code and legal basis,
    the ruleset, the deadline with its description and the history; no override form. The read
    is audited."""
    with_rates(make_user)
    case = register(make_user)
    browser, user = signed_in("caseworker")
    response = browser.get(f"/triage/case/{case.id}")
    page = text(response)
    assert response.status_code == 200
    assert "Accelerated examination procedure" in page and "<code>accelerated</code>" in page
    assert "LOW_RECOGNITION_RATE" in page and "APR 42(1)(j)" in page
    assert "eu-apr-2026@2026.1.0" in page
    assert case.statutory_deadline.isoformat() in page and "3 months from lodging" in page
    assert "registration" in page  # the history's trigger
    assert "Override the track" not in page
    assert f"/triage/case/{case.id}/assessment" in page
    db.session.rollback()
    viewed = db.session.scalars(select(AuditEvent).where(AuditEvent.code == int(EventCode.RECORD_VIEWED),
                                                         AuditEvent.subject_id == case.id)).one()
    assert viewed.actor_id == user.id and viewed.details == {"view": "triage"}


def test_another_offices_case_answers_404(signed_in, make_user, other_office):
    """A case of another office, a missing one and a malformed id all answer 404."""
    case = register(make_user, office_id=other_office.id)
    browser, _user = signed_in("supervisor")
    assert browser.get(f"/triage/case/{case.id}").status_code == 404
    assert browser.get(f"/triage/case/{'0' * 32}").status_code == 404
    assert browser.get("/triage/case/x%00y").status_code == 404
    assert browser.post(f"/triage/case/{case.id}/override", {"track": "regular", "reason": "x"},
                        token_from="/auth/account").status_code == 404
    assert browser.get(f"/triage/case/{case.id}/assessment").status_code == 404


def test_override_needs_a_reason_then_is_shown_and_withdrawn(signed_in, make_user):
    """Without a reason: 422 and the message next to the field, nothing saved. With one: the case
    shows the override, its reason, who and when; withdrawing brings the rules' track back."""
    with_rates(make_user)
    case = register(make_user)
    browser, supervisor = signed_in("supervisor")
    path = f"/triage/case/{case.id}"
    assert "Override the track" in text(browser.get(path))
    response = browser.post(f"{path}/override", {"track": "regular", "reason": "  "}, token_from=path)
    assert response.status_code == 422
    assert re.search(r'id="override-reason-error"><li>Give the reason for the override.', text(response))
    assert count(TrackOverride) == 0
    response = browser.post(f"{path}/override", {"track": "fast_lane", "reason": "x"}, token_from=path)
    assert response.status_code == 422 and count(TrackOverride) == 0

    response = browser.post(f"{path}/override", {"track": "regular", "reason": "Awaiting country guidance."},
                            token_from=path)
    assert response.status_code == 302
    page = text(browser.get(path))
    assert "overridden by a supervisor" in page and "Awaiting country guidance." in page
    assert supervisor.full_name in page and "The rules route this case to Accelerated" in page
    assert db.session.get(Case, case.id).track == "regular"

    assert browser.post(f"{path}/override/withdraw", {}, token_from=path).status_code == 302
    db.session.rollback()
    assert db.session.get(Case, case.id).track == "accelerated"
    assert "Withdrawn overrides" in text(browser.get(path))


def test_caseworker_cannot_override(signed_in, make_user):
    """The override route needs TRIAGE_OVERRIDE: a caseworker gets 403."""
    case = register(make_user)
    browser, _user = signed_in("caseworker")
    response = browser.post(f"/triage/case/{case.id}/override", {"track": "regular", "reason": "x"},
                            token_from=f"/triage/case/{case.id}")
    assert response.status_code == 403 and count(TrackOverride) == 0


def test_assessment_form_retriages(signed_in, make_user):
    """A caseworker records "applied merely to delay removal": the case is accelerated; a value
    outside the choices answers 422 and saves nothing."""
    with_rates(make_user)
    case = register(make_user, nationality="AFG")
    assert case.track == "regular"
    browser, _user = signed_in("caseworker")
    path = f"/triage/case/{case.id}/assessment"
    response = browser.post(path, {"applied_merely_to_delay_removal": "maybe", "version": case.version})
    assert response.status_code == 422 and "Not a valid choice" in text(response)
    response = browser.post(path, {"applied_merely_to_delay_removal": "yes", "version": case.version})
    assert response.status_code == 302
    db.session.rollback()
    case = db.session.get(Case, case.id)
    assert case.assessment == {"applied_merely_to_delay_removal": True} and case.track == "accelerated"
    page = text(browser.get(path))
    assert '<option selected value="yes">' in page
    officer, _officer = signed_in("registration_officer")
    assert officer.get(path).status_code == 403  # case work, not registration
    stale = browser.post(path, {"only_irrelevant_issues": "yes", "version": case.version - 1})
    assert stale.status_code == 409 and "Someone saved this case meanwhile" in text(stale)


def test_settings_page_for_administrators(signed_in):
    """An administrator sees and edits the settings: a bad number answers 422 next to the field;
    a good change is saved and audited; a supervisor gets 403."""
    browser, admin = signed_in("admin")
    page = text(browser.get("/triage/settings"))
    assert "likely_well_founded_rate_pct" in page and "recognition_rates" in page
    assert 'value="50"' in page
    form = {"likely_well_founded_rate_pct": "lots", "minor_status_reference_date": "application_made",
            "ms_applies_first_country_of_asylum": "no", "ms_applies_safe_third_country": "no",
            "ms_applies_optional_border_procedure": "no", "border_capacity_reached_art48": "no",
            "annual_border_maximum_reached_art50": "no", "postponed_nationalities": "",
            "eu_safe_countries_of_origin": "BGD, COL, EGY, IND, XKX, MAR, TUN"}
    response = browser.post("/triage/settings", form)
    assert response.status_code == 422 and "Enter a number" in text(response)
    response = browser.post("/triage/settings", {**form, "likely_well_founded_rate_pct": "60",
                                                 "postponed_nationalities": "eri, SDN",
                                                 "eu_safe_countries_of_origin": "BGD, XYZ1"})
    assert response.status_code == 422 and "bad codes" in text(response)
    response = browser.post("/triage/settings", {**form, "likely_well_founded_rate_pct": "60",
                                                 "postponed_nationalities": "eri, SDN"})
    assert response.status_code == 302
    db.session.rollback()
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.code == int(EventCode.SETTINGS_CHANGED))).one()
    assert event.details["changes"] == {"likely_well_founded_rate_pct": {"old": 50, "new": 60},
                                        "postponed_nationalities": {"old": [], "new": ["ERI", "SDN"]}}
    assert event.actor_id == admin.id
    supervisor, _user = signed_in("supervisor")
    assert supervisor.get("/triage/settings").status_code == 403


def test_reference_pages_edit_and_import(signed_in):
    """A supervisor adds a rate (bad input: 422 next to the field), uploads a CSV with a bad line
    (422, the line listed, nothing imported) and then a good one."""
    browser, _user = signed_in("supervisor")
    path = "/triage/reference/rates"
    assert browser.get(path).status_code == 200
    row = {"nationality": "PAK", "source": "Eurostat", "as_of": "2026-03-01"}
    response = browser.post(path, {**row, "rate_pct": "150"})
    assert response.status_code == 422 and "between 0 and 100" in text(response)
    response = browser.post(path, {**row, "rate_pct": "15.5"})
    assert response.status_code == 302
    assert "15.50" in text(browser.get(path))

    bad = b"nationality,rate_pct,source,as_of\nAFG,25,Eurostat,2026-03-01\nSYR,60,Eurostat,03/2026\n"
    response = upload(browser, f"{path}/import", path, bad, "rates.csv")
    assert response.status_code == 422
    assert "Line 3: as_of: Enter the date of the data as YYYY-MM-DD." in text(response)
    assert count(RecognitionRate) == 1
    response = upload(browser, f"{path}/import", path, b"x" * (services.MAX_CSV_BYTES + 1), "big.csv")
    assert response.status_code == 422 and "larger than" in text(response)
    good = b"nationality,rate_pct,source,as_of\nAFG,25,Eurostat,2026-03-01\n"
    assert upload(browser, f"{path}/import", path, good, "rates.csv").status_code == 302
    assert count(RecognitionRate) == 2
    assert browser.post(f"{path}/AFG/delete", {}, token_from=path).status_code == 302
    assert browser.post(f"{path}/AFG/delete", {}, token_from=path).status_code == 404
    assert count(RecognitionRate) == 1

    safe = "/triage/reference/safe-countries"
    response = upload(browser, f"{safe}/import", safe, b"country,designation,source,as_of\nALB,friendly,x,2026-01-01\n",
                      "safe.csv")
    assert response.status_code == 422 and "Line 2: designation" in text(response)
    assert browser.post(safe, {"country": "ALB", "designation": "national_list", "source": "Decree",
                               "as_of": "2026-01-01"}).status_code == 302
    assert "national_list" in text(browser.get(safe))


def test_caseworker_cannot_edit_reference_data(signed_in):
    """Reference data and replay need REFERENCE_DATA_EDIT."""
    browser, _user = signed_in("caseworker")
    assert browser.get("/triage/reference/rates").status_code == 403
    assert browser.get("/triage/replay").status_code == 403


def candidate_document(threshold=30, version="2026.1.1-page") -> bytes:
    document = copy.deepcopy(yaml.safe_load((rules.RULESETS_DIR / "eu-apr-2026.yaml").read_text(encoding="utf-8")))
    document["version"] = version
    next(r for r in document["rules"] if r["id"] == "apr-42-1-j")["when"]["all"][0]["value"] = threshold
    return yaml.safe_dump(document, sort_keys=False).encode()


def test_replay_then_activate_with_confirmation(signed_in, make_user):
    """Upload a candidate: the page shows the matrix and the example case; activating needs the
    box ticked (422 without) and an unchanged document; then the ruleset is active and audited,
    and the case keeps its track."""
    with_rates(make_user)
    case = register(make_user, nationality="AFG")
    browser, supervisor = signed_in("supervisor")
    response = upload(browser, "/triage/replay", "/triage/replay", b"id: [oops", "broken.yaml")
    assert response.status_code == 422 and "not a valid ruleset" in text(response)
    response = upload(browser, "/triage/replay", "/triage/replay", candidate_document(), "candidate.yaml")
    page = text(response)
    assert response.status_code == 200
    assert "Replay of eu-apr-2026@2026.1.1-page" in page and case.reference in page
    assert "1 open cases: 1 would change track" in page and "re-triages nothing by itself" in page
    document = re.search(r'name="document" type="hidden" value="([^"]*)"', page)
    checksum = re.search(r'name="checksum" type="hidden" value="([^"]*)"', page).group(1)
    text_document = html.unescape(document.group(1))

    response = browser.post("/triage/replay/activate", {"document": text_document, "checksum": checksum},
                            token_from="/triage/replay")
    assert response.status_code == 422 and "Tick the box to confirm." in text(response)
    response = browser.post("/triage/replay/activate", {"document": text_document + "\n# changed", "checksum": checksum,
                                                        "confirm": "y"}, token_from="/triage/replay")
    assert response.status_code == 422 and "replay it again" in text(response)
    assert count(RulesetVersion) == 1

    # Browsers send form values with CRLF line ends: the checksum still matches.
    response = browser.post("/triage/replay/activate", {"document": text_document.replace("\n", "\r\n"),
                                                        "checksum": checksum, "confirm": "y"},
                            token_from="/triage/replay")
    assert response.status_code == 302
    db.session.rollback()
    assert db.session.scalars(select(RulesetVersion.version).where(RulesetVersion.active.is_(True))).one() == \
        "2026.1.1-page"
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.code == int(EventCode.RULESET_ACTIVATED),
                                                        AuditEvent.actor_id == supervisor.id)).one()
    assert event.details["ruleset"] == "eu-apr-2026@2026.1.1-page"
    assert db.session.get(Case, case.id).track == "regular"
    assert "The active ruleset is eu-apr-2026@2026.1.1-page" in text(browser.get("/triage/replay"))


def test_navigation_shows_the_triage_pages_by_role(signed_in):
    """Supervisors see reference data and replay; administrators see the triage settings."""
    supervisor, _user = signed_in("supervisor")
    page = text(supervisor.get("/"))
    assert "/triage/reference/rates" in page and "/triage/replay" in page and "/triage/settings" not in page
    admin, _user = signed_in("admin")
    page = text(admin.get("/"))
    assert "/triage/settings" in page and "/triage/replay" not in page


def test_random_input_in_the_rate_form_never_breaks(signed_in):
    """Random text in every field of the rate form: 302 or 422, never a server error, and a rate
    is only stored when every field was valid."""
    browser, _user = signed_in("supervisor")
    token = browser.csrf("/triage/reference/rates")
    nasty = st.one_of(st.text(max_size=30), st.sampled_from(["", "\x00", "PAK", "1e400", "NaN", "-0", "100.001",
                                                             "2026-02-30", "9999-12-31", "'; --"]))

    @settings(max_examples=25, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(nationality=nasty, rate=nasty, source=nasty, as_of=nasty)
    def check(nationality, rate, source, as_of):
        limiter.reset()
        response = browser.client.post("/triage/reference/rates", data={
            "nationality": nationality, "rate_pct": rate, "source": source, "as_of": as_of, "csrf_token": token})
        assert response.status_code in (302, 422), response.status_code

    check()
