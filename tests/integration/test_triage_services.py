"""Triage through the services and the database: registration triggers it, edits re-triage
only when a fact the rules read changes, overrides survive re-triage, settings and reference
data are audited, CSV imports are all or nothing, replay writes nothing, activation is audited."""

from __future__ import annotations

import copy
from datetime import date, timedelta

import pytest
import yaml
from sqlalchemy import delete, func, select

from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.extensions import db
from app.intake import services as intake
from app.intake.models import Case
from app.triage import rules, services
from app.triage.models import RecognitionRate, RulesetVersion, SafeCountry, TrackOverride, TriageRecord, TriageSetting

TODAY = date.today()


def days_ago(n: int) -> str:
    return (TODAY - timedelta(days=n)).isoformat()


NAMES = iter([("Haddad", "Rania", "1990-03-05"), ("Okafor", "Chidi", "1985-11-20"), ("Tesfay", "Abeba", "1979-01-14"),
              ("Nowak", "Anna", "1995-07-30"), ("Kowalczyk", "Piotr", "1968-02-02"), ("Rahimi", "Farid", "2001-09-09"),
              ("Mensah", "Kwame", "1988-04-18"), ("Ivanova", "Olga", "1975-12-01")] * 50)


def claim(nationality: str = "SYR", *, lodged: bool = True, **principal) -> dict:
    """A registration payload for an adult inland applicant, made 10 days ago, lodged 8 days ago."""
    family_name, given_names, dob = next(NAMES)
    person = {"principal": True, "identity": {"family_name": family_name, "given_names": given_names},
              "birth": {"date_of_birth": dob, "sex": "F"}, "nationality": {"nationalities": [nationality]}}
    person.update(principal)
    return {"made_on": days_ago(10), "registered_on": days_ago(9), "lodged_on": days_ago(8) if lodged else None,
            "persons": [person]}


@pytest.fixture
def officer(make_user):
    return make_user("registration_officer")


@pytest.fixture
def supervisor(make_user):
    return make_user("supervisor")


@pytest.fixture
def rates(supervisor):
    """PAK 15% (low: accelerated), AFG 25% (middling: regular), SYR 60% (likely well-founded)."""
    services.import_recognition_rates(
        "nationality,rate_pct,source,as_of\nPAK,15,Eurostat 2025,2026-03-01\nAFG,25,Eurostat 2025,2026-03-01\n"
        "SYR,60,Eurostat 2025,2026-03-01\n", acting_user=supervisor)


def register(officer, payload) -> Case:
    return intake.register_claim(payload, acting_user=officer, duplicate_decisions={0: "new"}).case


def events(code: EventCode, case_id: str | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.code == int(code)).order_by(AuditEvent.id)
    if case_id:
        query = query.where(AuditEvent.subject_id == case_id)
    return db.session.scalars(query).all()


def records(case_id: str) -> list[TriageRecord]:
    return db.session.scalars(select(TriageRecord).where(TriageRecord.case_id == case_id)
                              .order_by(TriageRecord.created_at)).all()


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def edit(case: Case, officer, change) -> Case:
    payload = intake.registration_payload(case)
    change(payload)
    return intake.update_registration(case.id, payload, expected_version=case.version, acting_user=officer)


def modified_ruleset(threshold: int = 30, version: str = "2026.1.1-test") -> str:
    """The shipped default with the low-recognition-rate ground at ``threshold``% instead of 20%."""
    document = yaml.safe_load((rules.RULESETS_DIR / "eu-apr-2026.yaml").read_text(encoding="utf-8"))
    document = copy.deepcopy(document)
    document["version"] = version
    rule = next(r for r in document["rules"] if r["id"] == "apr-42-1-j")
    rule["when"]["all"][0]["value"] = threshold
    return yaml.safe_dump(document, sort_keys=False)


# -- registration --------------------------------------------------------------------------------

def test_registration_triages_the_claim(officer, rates):
    """A registered low-rate claim is accelerated at once: track, 3-month deadline from lodging,
    priority, ruleset label, a TriageRecord with grounds and facts, and a CASE_TRIAGED event."""
    case = register(officer, claim("PAK"))
    db.session.expire_all()
    case = db.session.get(Case, case.id)
    assert case.track == "accelerated"
    assert case.statutory_deadline == rules._add_months(TODAY - timedelta(days=8), 3)
    assert case.priority == services.TRACK_URGENCY["accelerated"]
    assert case.ruleset_label == "eu-apr-2026@2026.1.0"
    assert case.triaged_at is not None and case.track_overridden is False
    [triage_record] = records(case.id)
    assert (triage_record.track, triage_record.trigger, triage_record.created_by_id) == (
        "accelerated", "registration", officer.id)
    grounds, matched = services.record_grounds(triage_record)
    assert [g["code"] for g in grounds] == ["low_recognition_rate"]
    assert grounds[0]["legal_basis"] == "APR 42(1)(j)" and "track-accelerated" in matched
    assert triage_record.facts["nationality"] == "PAK"
    assert triage_record.facts["recognition_rate_for_nationality"] == 15.0
    assert triage_record.deadline_description == "3 months from lodging"
    [event] = events(EventCode.CASE_TRIAGED, case.id)
    assert event.details["track"] == "accelerated" and event.details["trigger"] == "registration"
    assert event.details["grounds"] == ["low_recognition_rate"] and event.actor_id == officer.id
    assert events(EventCode.TRACK_CHANGED, case.id) == []


def test_first_use_stores_and_activates_the_configured_ruleset(officer):
    """With no ruleset stored, the first triage stores the shipped TRIAGE_RULESET document and
    activates it, audited with no actor; later triages reuse it."""
    assert count(RulesetVersion) == 0
    register(officer, claim())
    register(officer, claim())
    [row] = db.session.scalars(select(RulesetVersion)).all()
    assert (row.ruleset_id, row.version, row.active, row.activated_by_id) == ("eu-apr-2026", "2026.1.0", True, None)
    assert row.checksum == services.checksum_of((rules.RULESETS_DIR / "eu-apr-2026.yaml").read_text())
    [event] = events(EventCode.RULESET_ACTIVATED)
    assert event.actor_id is None and event.details["ruleset"] == "eu-apr-2026@2026.1.0"


def test_a_deployment_can_start_with_the_unhcr_ruleset(app_factory, make_user):
    """TRIAGE_RULESET=unhcr-dcp: the first case is triaged with the UNHCR modalities."""
    application = app_factory(TRIAGE_RULESET="unhcr-dcp")
    with application.app_context():
        from app.auth.models import Office

        office = Office(code="HQ2", name="Head office")
        db.session.add(office)
        db.session.commit()
        user = make_user("registration_officer", office_id=office.id)
        case = register(user, claim("SYR"))
        assert case.ruleset_label == "unhcr-dcp@2020.1.0"
        assert case.track == "regular" and case.statutory_deadline is None


def test_unaccompanied_minor_and_vulnerability_come_first(officer, rates):
    """An unaccompanied minor with a vulnerability gets the highest priority on the prioritised track."""
    minor = register(officer, claim(
        "AFG", birth={"date_of_birth": (TODAY - timedelta(days=15 * 365)).isoformat(), "sex": "M"},
        family={"unaccompanied_minor": True, "representative_name": "Guardian"},
        special_needs={"vulnerabilities": ["unaccompanied_minor"]}))
    adult = register(officer, claim("AFG"))
    assert minor.track == "regular_prioritised" and adult.track == "regular"
    assert minor.priority == 100 + 50 + 20 and adult.priority == 0


# -- re-triage on edits --------------------------------------------------------------------------

def test_editing_a_fact_that_matters_retriages_and_audits_the_track_change(officer, rates):
    """Changing the nationality from AFG (25%) to PAK (15%) moves the case regular -> accelerated:
    a second TriageRecord (facts_changed) and TRACK_CHANGED with old and new."""
    case = register(officer, claim("AFG"))
    assert case.track == "regular"
    case = edit(case, officer, lambda p: p["persons"][0]["nationality"].update(nationalities=["PAK"]))
    assert case.track == "accelerated"
    assert [r.trigger for r in records(case.id)] == ["registration", "facts_changed"]
    [changed] = events(EventCode.TRACK_CHANGED, case.id)
    assert (changed.details["old"], changed.details["new"], changed.actor_id) == ("regular", "accelerated", officer.id)
    assert events(EventCode.CASE_TRIAGED, case.id)[-1].details["facts_changed"] == ["nationality"]


def test_editing_an_irrelevant_field_does_not_retriage(officer, rates):
    """A new phone number or a corrected spelling changes no fact: no record, no triage event."""
    case = register(officer, claim("AFG"))
    case = edit(case, officer, lambda p: p["persons"][0].update(
        contact={"phone": "+49 30 1234567"}, identity={"family_name": "Haddad-Smith", "given_names": "Rania"}))
    assert len(records(case.id)) == 1
    assert len(events(EventCode.CASE_TRIAGED, case.id)) == 1
    assert len(events(EventCode.CASE_UPDATED, case.id)) == 1


def test_a_relevant_edit_without_a_track_change_is_recorded_without_track_changed(officer, rates):
    """A vulnerability added to a likely well-founded claim: re-triaged, same track, no TRACK_CHANGED."""
    case = register(officer, claim("SYR"))
    assert case.track == "regular_prioritised"
    case = edit(case, officer, lambda p: p["persons"][0].update(special_needs={"vulnerabilities": ["pregnant"]}))
    assert case.track == "regular_prioritised" and case.priority == 50 + 20
    assert len(records(case.id)) == 2
    assert events(EventCode.TRACK_CHANGED, case.id) == []


def test_assessment_facts_retriage_and_are_audited(officer, make_user, rates):
    """A caseworker records "only irrelevant issues": audited with old/new, the case is accelerated."""
    caseworker = make_user("caseworker")
    case = register(officer, claim("AFG"))
    case = services.set_assessment_facts(case.id, {"only_irrelevant_issues": True, "good_cause_shown": None},
                                         acting_user=caseworker)
    assert case.assessment == {"only_irrelevant_issues": True}
    assert case.track == "accelerated"
    [updated] = events(EventCode.CASE_UPDATED, case.id)
    assert updated.details == {"assessment": {"only_irrelevant_issues": {"old": None, "new": True}}}
    assert events(EventCode.TRACK_CHANGED, case.id)[0].details["new"] == "accelerated"


def test_assessment_facts_are_checked_against_the_vocabulary(officer, make_user):
    """Unknown facts and wrong types are refused, every one named, and nothing is saved."""
    caseworker = make_user("caseworker")
    case = register(officer, claim())
    with pytest.raises(services.TriageInvalid) as refused:
        services.set_assessment_facts(case.id, {"nationality": "PAK", "security_threat": True}, acting_user=caseworker)
    assert set(refused.value.errors) == {"nationality", "security_threat"}
    with pytest.raises(services.TriageInvalid) as refused:
        services.set_assessment_facts(case.id, {"only_irrelevant_issues": "yes"}, acting_user=caseworker)
    assert list(refused.value.errors) == ["only_irrelevant_issues"]
    assert db.session.get(Case, case.id).assessment is None


def test_another_offices_case_is_not_found(officer, make_user, other_office):
    """A user of another office gets CaseNotFound (and the refusal is audited), like a missing case."""
    case = register(officer, claim())
    stranger = make_user("supervisor", office_id=other_office.id)
    with pytest.raises(services.CaseNotFound):
        services.override_track(case.id, "regular", "reason", acting_user=stranger)
    with pytest.raises(services.CaseNotFound):
        services.open_triage("0" * 32, acting_user=stranger)
    assert events(EventCode.ACCESS_DENIED, case.id)[0].details == {"reason": "other office"}


# -- overrides -----------------------------------------------------------------------------------

def test_override_is_kept_across_retriage_and_withdrawn(officer, supervisor, rates):
    """A supervisor moves an accelerated case to regular with a reason; a re-triage (edit) records
    the rules' result but the override's track stays; withdrawing re-applies the rules' result."""
    case = register(officer, claim("PAK"))
    override = services.override_track(case.id, "regular", "Country situation worsened since the data.",
                                       acting_user=supervisor)
    case = db.session.get(Case, case.id)
    assert (case.track, case.track_overridden) == ("regular", True)
    assert case.statutory_deadline == rules._add_months(TODAY - timedelta(days=8), 6)
    assert case.priority == services.TRACK_URGENCY["regular"]
    [event] = events(EventCode.TRACK_OVERRIDDEN, case.id)
    assert event.details["old"] == "accelerated" and event.details["new"] == "regular"
    assert event.details["reason"] == "Country situation worsened since the data."
    assert db.session.get(TrackOverride, override.id).reason == "Country situation worsened since the data."

    case = edit(case, officer, lambda p: p["persons"][0].update(biometrics={"refused": True}))
    assert (case.track, case.track_overridden) == ("regular", True)
    latest = records(case.id)[-1]
    assert latest.track == "accelerated"
    assert "biometrics_refused" in [g["code"] for g in services.record_grounds(latest)[0]]
    assert events(EventCode.TRACK_CHANGED, case.id) == []
    assert events(EventCode.CASE_TRIAGED, case.id)[-1].details["overridden"] is True

    panel = services.open_triage(case.id, acting_user=supervisor)
    assert panel.override.reason == "Country situation worsened since the data."
    assert panel.override.by == supervisor.full_name and panel.latest.track == "accelerated"

    case = services.withdraw_override(case.id, acting_user=supervisor)
    assert (case.track, case.track_overridden) == ("accelerated", False)
    assert case.statutory_deadline == latest.deadline
    [withdrawn] = events(EventCode.TRACK_OVERRIDE_WITHDRAWN, case.id)
    assert (withdrawn.details["old"], withdrawn.details["new"]) == ("regular", "accelerated")
    assert db.session.get(TrackOverride, override.id).withdrawn_by_id == supervisor.id
    with pytest.raises(services.TriageInvalid):
        services.withdraw_override(case.id, acting_user=supervisor)


def test_override_without_a_reason_is_refused(officer, supervisor):
    """No reason (or only spaces), or a track the ruleset does not have: refused, nothing written."""
    case = register(officer, claim())
    for track, reason in (("regular", ""), ("regular", "   "), ("fast_lane", "because")):
        with pytest.raises(services.TriageInvalid) as refused:
            services.override_track(case.id, track, reason, acting_user=supervisor)
        assert set(refused.value.errors) <= {"reason", "track"} and refused.value.errors
    assert count(TrackOverride) == 0 and events(EventCode.TRACK_OVERRIDDEN) == []


def test_only_supervisors_override(officer, make_user):
    """A caseworker has no TRIAGE_OVERRIDE permission."""
    case = register(officer, claim())
    with pytest.raises(PermissionError):
        services.override_track(case.id, "regular", "reason", acting_user=make_user("caseworker"))


# -- settings ------------------------------------------------------------------------------------

def test_settings_changes_are_type_checked_and_audited(officer, make_user, rates):
    """An administrator raises the likely-well-founded threshold to 70: SETTINGS_CHANGED with old
    and new, and the next triage uses it (SYR 60% is no longer prioritised)."""
    admin = make_user("admin")
    assert register(officer, claim("SYR")).track == "regular_prioritised"
    changes = services.update_settings({"likely_well_founded_rate_pct": 70, "postponed_nationalities": ["ERI"]},
                                       acting_user=admin)
    assert changes == {"likely_well_founded_rate_pct": {"old": 50, "new": 70},
                       "postponed_nationalities": {"old": [], "new": ["ERI"]}}
    [event] = events(EventCode.SETTINGS_CHANGED)
    assert event.details["changes"] == changes and event.actor_id == admin.id
    assert register(officer, claim("SYR")).track == "regular"
    view = {s.name: s for s in services.settings_overview()}
    assert view["likely_well_founded_rate_pct"].value == 70 and view["likely_well_founded_rate_pct"].stored

    services.update_settings({}, acting_user=admin, reset=("likely_well_founded_rate_pct",))
    assert events(EventCode.SETTINGS_CHANGED)[-1].details["changes"] == {
        "likely_well_founded_rate_pct": {"old": 70, "new": 50}}
    assert db.session.get(TriageSetting, "likely_well_founded_rate_pct") is None


def test_bad_settings_are_refused_as_a_whole(make_user):
    """A wrong type, a value outside the choices, an unknown or non-editable setting: each named,
    nothing saved."""
    admin = make_user("admin")
    with pytest.raises(services.TriageInvalid) as refused:
        services.update_settings({"likely_well_founded_rate_pct": "fifty", "minor_status_reference_date": "birthday",
                                  "ms_applies_safe_third_country": True, "no_such_setting": 1,
                                  "decision_date": "2026-01-01", "recognition_rates": {}}, acting_user=admin)
    assert set(refused.value.errors) == {"likely_well_founded_rate_pct", "minor_status_reference_date",
                                         "no_such_setting", "decision_date", "recognition_rates"}
    assert db.session.scalar(select(func.count()).select_from(TriageSetting).where(
        TriageSetting.name != services.GENERATION_SETTING)) == 0
    with pytest.raises(PermissionError):
        services.update_settings({"ms_applies_safe_third_country": True}, acting_user=make_user("supervisor"))


# -- reference data ------------------------------------------------------------------------------

def test_reference_data_edits_are_audited_with_old_and_new_values(supervisor):
    """Create, change and remove a rate and a safe country: REFERENCE_DATA_CHANGED each time."""
    services.set_recognition_rate("pak", "12.345", "Eurostat 2025", "2026-03-01", acting_user=supervisor)
    services.set_recognition_rate("PAK", "14", "Eurostat 2025 Q4", date(2026, 4, 1), acting_user=supervisor)
    assert services.set_recognition_rate("PAK", "14.00", "Eurostat 2025 Q4", "2026-04-01", acting_user=supervisor) == {}
    services.delete_recognition_rate("PAK", acting_user=supervisor)
    services.set_safe_country("BGD", "EU_list", "Reg. (EU) 2026/464", "2026-02-01", acting_user=supervisor)
    changes = [e.details for e in events(EventCode.REFERENCE_DATA_CHANGED)]
    assert changes[0] == {"table": "recognition_rate", "changes": {"PAK": {"old": None, "new": {
        "rate_pct": "12.35", "source": "Eurostat 2025", "as_of": "2026-03-01"}}}}
    assert changes[1]["changes"]["PAK"] == {
        "old": {"rate_pct": "12.35", "source": "Eurostat 2025", "as_of": "2026-03-01"},
        "new": {"rate_pct": "14.00", "source": "Eurostat 2025 Q4", "as_of": "2026-04-01"}}
    assert changes[2]["changes"]["PAK"]["new"] is None
    assert changes[3]["changes"] == {"BGD": {"old": None, "new": {
        "designation": "EU_list", "source": "Reg. (EU) 2026/464", "as_of": "2026-02-01"}}}
    assert len(changes) == 4 and count(RecognitionRate) == 0 and count(SafeCountry) == 1


def test_bad_reference_values_are_refused(supervisor, make_user):
    """Unknown country, rate over 100, empty source, future date: all named, nothing saved."""
    with pytest.raises(services.TriageInvalid) as refused:
        services.set_recognition_rate("ZZZ", "101", " ", (TODAY + timedelta(days=1)).isoformat(),
                                      acting_user=supervisor)
    assert set(refused.value.errors) == {"nationality", "rate_pct", "source", "as_of"}
    with pytest.raises(services.TriageInvalid) as refused:
        services.set_safe_country("BGD", "friendly", "Reg\x00", "2026-01-01", acting_user=supervisor)
    assert set(refused.value.errors) == {"designation", "source"}
    with pytest.raises(PermissionError):
        services.set_recognition_rate("PAK", "10", "x", "2026-01-01", acting_user=make_user("caseworker"))
    assert count(RecognitionRate) == 0 and count(SafeCountry) == 0


def test_csv_import_with_bad_lines_is_rejected_as_a_whole(supervisor):
    """Bad lines are each reported with their line number and nothing is imported; a good file
    then imports, audited once with every change."""
    bad = ("nationality,rate_pct,source,as_of\n"
           "PAK,15,Eurostat,2026-03-01\n"
           "AFG,abc,Eurostat,2026-03-01\n"
           "XYZ,10,Eurostat,2026-03-01\n"
           "\n"
           "SYR,60,Eurostat\n"
           "PAK,16,Eurostat,2026-03-01\n")
    with pytest.raises(services.ImportRejected) as rejected:
        services.import_recognition_rates(bad, acting_user=supervisor)
    assert [line for line, _ in rejected.value.problems] == [3, 4, 6, 7]
    messages = dict(rejected.value.problems)
    assert messages[3].startswith("rate_pct:") and messages[4].startswith("nationality:")
    assert "expected 4 columns" in messages[6] and messages[7] == "PAK is already on line 2"
    assert count(RecognitionRate) == 0 and events(EventCode.REFERENCE_DATA_CHANGED) == []

    with pytest.raises(services.ImportRejected) as rejected:
        services.import_safe_countries(b"country;designation\nBGD;EU_list\n", acting_user=supervisor)
    assert rejected.value.problems == [(1, "the first line must be the header country,designation,source,as_of")]

    report = services.import_recognition_rates(
        "\ufeffnationality,rate_pct,source,as_of\r\nPAK,15,\"Eurostat, 2025\",2026-03-01\r\n"
        "AFG,25,Eurostat,2026-03-01\r\n",
        acting_user=supervisor)
    assert (report.rows, report.created, report.updated) == (2, 2, 0)
    [event] = events(EventCode.REFERENCE_DATA_CHANGED)
    assert sorted(event.details["changes"]) == ["AFG", "PAK"] and event.details["imported"] is True
    report = services.import_recognition_rates("nationality,rate_pct,source,as_of\nPAK,15,\"Eurostat, 2025\","
                                               "2026-03-01\n", acting_user=supervisor, replace=True)
    assert (report.unchanged, report.removed) == (1, 1)
    assert db.session.scalars(select(RecognitionRate.nationality)).all() == ["PAK"]


def test_safe_country_list_replaces_the_eu_list_and_sets_the_designation(officer, supervisor):
    """Once the list holds a country, only its EU-list entries are the EU list; a national-list
    country gets the safe-country ground through the designation fact."""
    assert register(officer, claim("BGD")).track == "accelerated"  # on the ruleset's default EU list
    services.set_safe_country("ALB", "national_list", "National decree 12/2026", "2026-01-10", acting_user=supervisor)
    assert register(officer, claim("BGD")).track == "regular"
    albanian = register(officer, claim("ALB"))
    assert albanian.track == "accelerated"
    assert records(albanian.id)[0].facts["safe_country_of_origin_designation"] == "national_list"


# -- replay, activation, re-triage ----------------------------------------------------------------

@pytest.fixture
def caseload(officer, supervisor, rates):
    """PAK (accelerated), AFG (regular), SYR (prioritised), a PAK case overridden to regular, and an
    AFG case whose triage records are gone (registered before triage existed)."""
    cases = {name: register(officer, claim(nationality)) for name, nationality in (
        ("pak", "PAK"), ("afg", "AFG"), ("syr", "SYR"), ("pak_overridden", "PAK"), ("afg_untriaged", "AFG"))}
    services.override_track(cases["pak_overridden"].id, "regular", "Pending country guidance.", acting_user=supervisor)
    db.session.execute(delete(TriageRecord).where(TriageRecord.case_id == cases["afg_untriaged"].id))
    db.session.commit()
    return {name: db.session.get(Case, case.id) for name, case in cases.items()}


def snapshot():
    db.session.expire_all()
    return (count(TriageRecord), count(AuditEvent), count(RulesetVersion), count(TriageSetting),
            sorted(db.session.execute(select(Case.id, Case.track, Case.statutory_deadline, Case.priority)).all()))


def test_replay_counts_moves_and_writes_nothing(caseload, supervisor):
    """Raising the low-rate threshold to 30% moves both AFG cases regular -> accelerated; the
    overridden case stays; the matrix, examples and totals are exact, and nothing is written."""
    before = snapshot()
    report = services.replay(modified_ruleset(30), acting_user=supervisor, batch_size=2)
    assert snapshot() == before
    assert report.matrix == {("accelerated", "accelerated"): 1, ("regular", "accelerated"): 2,
                             ("regular_prioritised", "regular_prioritised"): 1, ("regular", "regular"): 1}
    assert (report.total, report.moved, report.overridden, report.from_registration, report.failed) == (5, 2, 1, 1, 0)
    assert sorted(report.examples[("regular", "accelerated")]) == sorted(
        [caseload["afg"].reference, caseload["afg_untriaged"].reference])
    assert report.examples[("regular", "regular")] == [caseload["pak_overridden"].reference]
    assert report.candidate == "eu-apr-2026@2026.1.1-test" and report.current == "eu-apr-2026@2026.1.0"
    assert report.moves() == [("regular", "accelerated", 2, report.examples[("regular", "accelerated")])]


def test_replay_with_the_active_ruleset_moves_nothing(caseload, supervisor, other_office):
    """The active ruleset replayed against itself: every case stays; examples are limited to the
    office asked for."""
    report = services.replay((rules.RULESETS_DIR / "eu-apr-2026.yaml").read_text(), acting_user=supervisor,
                             example_office_id=other_office.id)
    assert report.moved == 0 and report.total == 5 and report.examples == {}


def test_replay_of_an_invalid_document_is_refused(supervisor):
    """A document that is not a ruleset: RulesetError naming the problem."""
    with pytest.raises(rules.RulesetError, match="tracks"):
        services.replay("id: x\nversion: '1'\ntracks: []\nrules: []\ndefault_track: regular\n", acting_user=supervisor)
    with pytest.raises(rules.RulesetError, match="YAML"):
        services.replay("id: [unclosed", acting_user=supervisor)


def test_activation_is_audited_and_retriages_nothing_until_retriage(caseload, supervisor):
    """Activation stores and switches the ruleset (RULESET_ACTIVATED); tracks stay until the
    re-triage run, which moves the AFG cases and keeps the override."""
    before = snapshot()[4]
    row = services.activate_ruleset(modified_ruleset(30), acting_user=supervisor)
    assert (row.version, row.active, row.activated_by_id) == ("2026.1.1-test", True, supervisor.id)
    assert db.session.scalars(select(RulesetVersion.version).where(RulesetVersion.active.is_(True))).all() == [
        "2026.1.1-test"]
    [event] = events(EventCode.RULESET_ACTIVATED)[-1:]
    assert event.details["ruleset"] == "eu-apr-2026@2026.1.1-test"
    assert event.details["previous"] == "eu-apr-2026@2026.1.0"
    assert event.actor_id == supervisor.id
    assert snapshot()[4] == before
    with pytest.raises(services.TriageInvalid):
        services.activate_ruleset(modified_ruleset(30), acting_user=supervisor)
    with pytest.raises(services.TriageInvalid):
        services.activate_ruleset(modified_ruleset(35), acting_user=supervisor)

    report = services.retriage_open_cases(acting_user=supervisor, batch_size=2)
    assert (report.examined, report.retriaged, report.moved) == (5, 5, 2)
    tracks = {name: db.session.get(Case, case.id).track for name, case in caseload.items()}
    assert tracks == {"pak": "accelerated", "afg": "accelerated", "syr": "regular_prioritised",
                      "pak_overridden": "regular", "afg_untriaged": "accelerated"}
    moved = {e.subject_id for e in events(EventCode.TRACK_CHANGED)}
    assert moved == {caseload["afg"].id, caseload["afg_untriaged"].id}
    assert services.retriage_open_cases(acting_user=supervisor).retriaged == 0  # nothing new the second time


def test_alias_bombs_and_oversized_documents_are_refused(supervisor):
    """A YAML document whose aliases expand enormously, or one over the size limit, is refused
    before it is compiled."""
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(6))
    with pytest.raises(rules.RulesetError, match="too large once its aliases are expanded"):
        services.replay(bomb, acting_user=supervisor)
    with pytest.raises(rules.RulesetError, match="larger than"):
        services.replay("# " + "x" * services.MAX_RULESET_BYTES, acting_user=supervisor)
