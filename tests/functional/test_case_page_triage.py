"""The case page shows the triage outcome to roles that may see it, and links onward."""

from datetime import date, timedelta

from pathlib import Path

from app.intake import services
from app.triage import services as triage_services

RATES_CSV = Path(__file__).resolve().parents[2] / "data" / "recognition-rates-eu-2024.csv"


def register(user, nationality="PAK"):
    made = date.today() - timedelta(days=3)
    payload = {
        "made_on": made.isoformat(), "registered_on": made.isoformat(), "lodged_on": made.isoformat(),
        "persons": [{"principal": True, "identity": {"family_name": "Testcase", "given_names": "Panel"},
                     "birth": {"date_of_birth": "1990-01-01", "sex": "M"},
                     "nationality": {"nationalities": [nationality]}}],
    }
    return services.register_claim(payload, acting_user=user).case


def test_caseworker_sees_track_and_deadline_on_case_page(signed_in, make_user):
    """A registered claim's page shows its track label, its statutory deadline and the decision link."""
    officer = make_user("registration_officer")
    triage_services.import_recognition_rates(RATES_CSV.read_bytes(), acting_user=make_user("supervisor"))
    case = register(officer)
    browser, _ = signed_in("caseworker")
    page = browser.get(f"/cases/{case.id}").get_data(as_text=True)
    assert case.track == "accelerated"  # Pakistan: recognition rate 12% (shipped CSV) -> APR 42(1)(j)
    assert "Triage" in page
    assert "accelerated" in page
    assert case.statutory_deadline.isoformat() in page
    assert f"/decisions/case/{case.id}" in page
    assert f"/triage/case/{case.id}" in page


def test_registration_officer_sees_panel_but_no_decision_link(signed_in):
    """The registering officer sees the triage outcome but not the caseworker's decision workspace."""
    browser, officer = signed_in("registration_officer")
    case = register(officer)
    page = browser.get(f"/cases/{case.id}").get_data(as_text=True)
    assert case.statutory_deadline.isoformat() in page
    assert f"/decisions/case/{case.id}" not in page
