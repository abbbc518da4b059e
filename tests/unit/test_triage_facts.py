"""Mapping a registration (principal, dependants, arrival), assessment facts and reference data
onto the flat facts vocabulary of TRIAGE.md. Pure: no app, no database."""

from __future__ import annotations

import copy
from datetime import date

import pytest

from app.triage.facts import (ASSESSMENT_FACTS, ReferenceData, apply_reference_data, case_facts, changed_facts,
                              country_of_origin)
from app.triage.rules import FACT_DEFAULTS, shipped_ruleset, validate_facts

PRINCIPAL = {
    "principal": True, "relationship": None,
    "identity": {"family_name": "Haddad", "given_names": "Rania"},
    "birth": {"date_of_birth": "1990-03-05", "precision": "day", "estimated": False, "sex": "F"},
    "nationality": {"nationalities": ["PAK", "AFG"], "stateless": False, "former_habitual_residence": None},
    "documents": [], "biometrics": {"record_ref": None, "eurodac_hits": [], "refused": False},
    "history": {"previous_applications": [], "return_decision": None, "protection_granted_by": None,
                "first_country_of_asylum": None, "safe_third_country": None},
    "family": {"unaccompanied_minor": False, "age_disputed": False, "members_elsewhere": []},
    "special_needs": {"vulnerabilities": [], "special_procedural_guarantees_needed": False,
                      "adequate_support": {"border_location": True, "accelerated_procedure": True}},
    "claim": {"grounds": ["political_opinion"], "statement": "..."},
    "security": {"flag": False, "basis": None},
}
PAYLOAD = {
    "made_on": "2026-07-01", "made_place": "Airport", "registered_on": "2026-07-02", "lodged_on": "2026-07-03",
    "good_cause_for_not_lodging": False,
    "arrival": {"location_context": "inland", "entry_date": None, "authorised_to_enter": None,
                "fulfils_entry_conditions": None, "transit_countries": [], "irregular_entry_date": None,
                "presented_without_delay": True},
    "persons": [PRINCIPAL],
}
REFERENCE = ReferenceData({"PAK": 12.0, "SYR": 80.5}, {"BGD": "EU_list", "PAK": "national_list"})


def payload(**changes):
    """PAYLOAD with top-level keys replaced and ``principal__section`` keys merged into the principal."""
    data = copy.deepcopy(PAYLOAD)
    for key, value in changes.items():
        if key.startswith("principal__"):
            section = key.removeprefix("principal__")
            current = data["persons"][0].get(section)
            data["persons"][0][section] = {**current, **value} if isinstance(current, dict) else value
        else:
            data[key] = value
    return data


def person(relationship, dob, **extra):
    return {**copy.deepcopy(PRINCIPAL), "principal": False, "relationship": relationship,
            "birth": {"date_of_birth": dob, "sex": "M"}, **extra}


def test_every_fact_of_the_vocabulary_is_present_and_valid():
    """The mapping yields exactly the vocabulary's facts, and they pass the engine's validation."""
    facts = case_facts(PAYLOAD, {}, REFERENCE)
    assert set(facts) == set(FACT_DEFAULTS)
    assert validate_facts(facts) == facts


def test_basic_facts_of_an_inland_adult():
    """Principal's nationality (first listed), birth, dates, lodging, location and claim grounds."""
    facts = case_facts(PAYLOAD, {}, REFERENCE)
    assert {k: facts[k] for k in ("nationality", "stateless", "former_habitual_residence", "date_of_birth",
                                  "sex", "application_made_date", "registration_date", "lodged", "lodging_date",
                                  "good_cause_for_not_lodging", "location_context", "applied_at_border",
                                  "claim_grounds", "unaccompanied_minor", "age_disputed")} == {
        "nationality": "PAK", "stateless": False, "former_habitual_residence": None,
        "date_of_birth": "1990-03-05", "sex": "F", "application_made_date": "2026-07-01",
        "registration_date": "2026-07-02", "lodged": True, "lodging_date": "2026-07-03",
        "good_cause_for_not_lodging": None, "location_context": "inland", "applied_at_border": False,
        "claim_grounds": ["political_opinion"], "unaccompanied_minor": False, "age_disputed": False}


def test_unknown_facts_stay_null():
    """What registration does not know stays null: entry conditions, return decision, assessment."""
    facts = case_facts(PAYLOAD)
    for name in ("fulfils_entry_conditions", "authorised_to_enter", "previous_application", "eurodac_hit",
                 "return_decision", "first_country_of_asylum", "safe_third_country",
                 "international_protection_granted_by_member_state", "irregular_entry_date",
                 "recognition_rate_for_nationality", "safe_country_of_origin_designation", *ASSESSMENT_FACTS):
        assert facts[name] is None, name


def test_not_lodged_keeps_good_cause():
    """Without a lodging date the claim is not lodged, and the recorded good cause is kept."""
    facts = case_facts(payload(lodged_on=None, good_cause_for_not_lodging=True))
    assert (facts["lodged"], facts["lodging_date"], facts["good_cause_for_not_lodging"]) == (False, None, True)


def test_dates_given_as_date_objects_become_iso_text():
    """A parsed payload (dates as ``date``) maps the same as a stored one (ISO text)."""
    facts = case_facts(payload(made_on=date(2026, 7, 1), registered_on=date(2026, 7, 2), lodged_on=date(2026, 7, 3)))
    assert (facts["application_made_date"], facts["registration_date"], facts["lodging_date"]) == (
        "2026-07-01", "2026-07-02", "2026-07-03")


def test_border_arrival_facts():
    """Arrival at the border: location, entry conditions, irregular entry, presented without delay."""
    facts = case_facts(payload(arrival={"location_context": "disembarkation_sar", "authorised_to_enter": False,
                                        "fulfils_entry_conditions": False, "irregular_entry_date": "2026-06-20",
                                        "presented_without_delay": False}))
    assert {k: facts[k] for k in ("location_context", "applied_at_border", "authorised_to_enter",
                                  "fulfils_entry_conditions", "irregular_entry_date", "presented_without_delay")} == {
        "location_context": "disembarkation_sar", "applied_at_border": True, "authorised_to_enter": False,
        "fulfils_entry_conditions": False, "irregular_entry_date": "2026-06-20", "presented_without_delay": False}


def test_stateless_applicant_uses_former_habitual_residence_for_reference_data():
    """A stateless person has no nationality; rates and safe-country designation follow the
    country of former habitual residence."""
    facts = case_facts(payload(principal__nationality={"nationalities": [], "stateless": True,
                                                       "former_habitual_residence": "SYR"}), {}, REFERENCE)
    assert (facts["nationality"], facts["stateless"], facts["former_habitual_residence"]) == (None, True, "SYR")
    assert country_of_origin(facts) == "SYR"
    assert facts["recognition_rate_for_nationality"] == 80.5
    assert facts["safe_country_of_origin_designation"] is None


def test_reference_data_for_the_nationality():
    """The rate and the designation of the principal's (first) nationality come from reference data."""
    facts = case_facts(PAYLOAD, {}, REFERENCE)
    assert (facts["recognition_rate_for_nationality"], facts["safe_country_of_origin_designation"]) == (
        12.0, "national_list")
    refreshed = apply_reference_data(facts, ReferenceData({"PAK": 25.0}, {}))
    assert (refreshed["recognition_rate_for_nationality"], refreshed["safe_country_of_origin_designation"]) == (
        25.0, None)
    assert facts["recognition_rate_for_nationality"] == 12.0  # the original is not changed


def test_children_ages_on_the_day_the_application_was_made():
    """Dependants who are children give their ages on the day made (17th birthday the next day:
    16; 18th birthday that day: 18); a spouse and a child without a date of birth are left out."""
    data = payload(persons=[PRINCIPAL, person("child", "2009-07-02"), person("child", "2008-07-01"),
                            person("spouse", "1991-01-01"), person("child", None), person("child", "2026-08-01")])
    facts = case_facts(data)
    assert facts["children_ages"] == [16, 18, 0]
    assert facts["family_with_minor_children"] is True
    adults_only = case_facts(payload(persons=[PRINCIPAL, person("child", "2000-01-01")]))
    assert (adults_only["children_ages"], adults_only["family_with_minor_children"]) == ([26], False)


def test_family_flags_and_special_needs_come_from_the_principal():
    """Unaccompanied minor, disputed age, vulnerabilities, procedural guarantees and support."""
    facts = case_facts(payload(
        principal__family={"unaccompanied_minor": True, "age_disputed": True},
        principal__special_needs={"vulnerabilities": ["unaccompanied_minor", "trafficking_victim"],
                                  "special_procedural_guarantees_needed": True,
                                  "adequate_support": {"border_location": False, "accelerated_procedure": True}}))
    assert {k: facts[k] for k in ("unaccompanied_minor", "age_disputed", "vulnerabilities",
                                  "special_procedural_guarantees_needed", "adequate_support_available")} == {
        "unaccompanied_minor": True, "age_disputed": True,
        "vulnerabilities": ["unaccompanied_minor", "trafficking_victim"],
        "special_procedural_guarantees_needed": True,
        "adequate_support_available": {"border_location": False, "accelerated_procedure": True}}


def test_most_recent_previous_application_and_return_decision():
    """The last previous application recorded is the most recent; the return decision's date."""
    facts = case_facts(payload(principal__history={
        "previous_applications": [
            {"member_state": "DEU", "decision": "rejected", "final": True, "new_elements": False},
            {"member_state": "FRA", "decision": "pending", "final": False, "new_elements": True}],
        "return_decision": {"received_on": "2026-05-04", "informed_of_consequences": True},
        "protection_granted_by": "ITA",
        "first_country_of_asylum": {"country": "TUR", "effective_protection_still_available": True,
                                    "readmission_possible": False, "guarantee_for_uam": False},
        "safe_third_country": {"country": "ALB", "basis": "transit", "assessed_safe_for_applicant": True,
                               "effective_protection_possible": True, "readmission_possible": True}}))
    assert facts["previous_application"] == {"member_state": "FRA", "decision": "pending", "final": False,
                                             "new_elements": True}
    assert facts["return_decision"] == {"received_date": "2026-05-04", "informed_of_consequences": True}
    assert facts["international_protection_granted_by_member_state"] == "ITA"
    assert facts["first_country_of_asylum"]["country"] == "TUR"
    assert facts["safe_third_country"] == {"country": "ALB", "basis": "transit", "assessed_safe_for_applicant": True,
                                           "effective_protection_possible": True, "readmission_possible": True}


@pytest.mark.parametrize(("hits", "expected"), [
    ([], None),
    ([{"member_state": "ITA", "category": "irregular_entry", "hit_date": "2026-06-01"},
      {"member_state": "GRC", "category": "applicant", "hit_date": "2026-05-01"}],
     {"member_state": "GRC", "category": "applicant", "hit_date": "2026-05-01"}),
    ([{"member_state": "ITA", "category": "applicant", "hit_date": "2026-04-01"},
      {"member_state": "DEU", "category": "applicant", "hit_date": "2026-06-10"}],
     {"member_state": "DEU", "category": "applicant", "hit_date": "2026-06-10"}),
    ([{"member_state": "ITA", "category": "applicant", "hit_date": "2026-06-01"},
      {"member_state": "SWE", "category": "beneficiary_of_international_protection", "hit_date": "2025-01-01"}],
     {"member_state": "SWE", "category": "beneficiary_of_international_protection", "hit_date": "2025-01-01"}),
    ([{"member_state": "GBR", "category": "applicant", "hit_date": "2026-06-01"}], None),
])
def test_most_relevant_eurodac_hit(hits, expected):
    """Protection status beats an applicant hit, which beats irregular entry; the latest within a
    category; a state outside the AMMR does not count."""
    facts = case_facts(payload(principal__biometrics={"eurodac_hits": hits, "refused": False}))
    assert facts["eurodac_hit"] == expected


def test_family_member_in_another_member_state():
    """A member whose reunification is in the best interests is chosen; one outside the AMMR is not."""
    def member(relationship, state, best_interests):
        return {"relationship": relationship, "member_state": state, "legally_present": True,
                "reunification_in_best_interests": best_interests}

    members = [member("sibling", "CAN", True), member("parent", "BEL", False), member("spouse", "NLD", True)]
    facts = case_facts(payload(principal__family={"members_elsewhere": members}))
    assert facts["family_member_in_other_member_state"] == {
        "member_state": "NLD", "relation": "spouse", "legally_present": True, "reunification_in_best_interests": True}
    assert case_facts(payload(principal__family={"members_elsewhere": members[:1]}))[
        "family_member_in_other_member_state"] is None


@pytest.mark.parametrize(("documents", "expected"), [
    ([], False),
    ([{"type": "passport", "authenticity": "genuine", "withheld": False}], False),
    ([{"type": "passport", "authenticity": "not_assessed", "withheld": True}], True),
    ([{"type": "passport", "authenticity": "genuine"}, {"type": "national_id", "authenticity": "false"}], True),
])
def test_documents_withheld_or_false(documents, expected):
    """A document withheld, or one judged false, sets documents_withheld_or_false."""
    assert case_facts(payload(principal__documents=documents))["documents_withheld_or_false"] is expected


def test_security_biometrics_and_assessment_facts():
    """Security flag, refused biometrics, and the caseworker's assessment (only its known facts)."""
    facts = case_facts(payload(principal__security={"flag": True, "basis": "x"},
                               principal__biometrics={"eurodac_hits": [], "refused": True}),
                       {"only_irrelevant_issues": True, "detention_guarantees_met": False, "not_a_fact": True})
    assert (facts["security_flag"], facts["biometrics_refused"]) == (True, True)
    assert (facts["only_irrelevant_issues"], facts["detention_guarantees_met"], facts["good_cause_shown"]) == (
        True, False, None)
    assert "not_a_fact" not in facts


def test_dependants_do_not_change_the_principals_facts():
    """A dependant's security flag or vulnerability is not the principal's (the case is triaged on
    the principal)."""
    dependant = person("spouse", "1991-01-01", security={"flag": True, "basis": "x"},
                       special_needs={"vulnerabilities": ["disability"]})
    facts = case_facts(payload(persons=[PRINCIPAL, dependant]))
    assert (facts["security_flag"], facts["vulnerabilities"]) == (False, [])


def test_changed_facts_compares_as_the_rules_read():
    """A null flag equals false, a tuple equals a list; real differences are named."""
    before = case_facts(PAYLOAD)
    after = dict(before, only_irrelevant_issues=False, children_ages=(), nationality="SYR")
    assert changed_facts(before, after) == ["nationality"]
    assert changed_facts(before, after, names={"sex"}) == []


def test_mapped_facts_route_through_the_default_ruleset():
    """End to end: a mapped low-rate claim is accelerated, and with a recognised family member in
    another Member State it goes to the responsibility procedure."""
    eu = shipped_ruleset("eu-apr-2026")
    context = {"decision_date": "2026-07-15"}
    assert eu.evaluate(case_facts(PAYLOAD, {}, REFERENCE), context).track == "accelerated"
    members = [{"relationship": "spouse", "member_state": "NLD", "legally_present": True,
                "reunification_in_best_interests": True}]
    assert eu.evaluate(case_facts(payload(principal__family={"members_elsewhere": members}), {}, REFERENCE),
                       context).track == "responsibility"
