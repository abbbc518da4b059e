"""The unhcr-dcp ruleset: UNHCR differentiated case processing modalities and their precedence."""

from __future__ import annotations

import pytest

from app.triage.rules import shipped_ruleset

DCP = shipped_ruleset("unhcr-dcp")

ADULT = {"nationality": "VEN", "date_of_birth": "1990-04-01", "application_made_date": "2026-07-01",
         "registration_date": "2026-07-01", "lodging_date": "2026-07-01", "claim_grounds": ["political_opinion"],
         "vulnerabilities": []}
CONTEXT = {"decision_date": "2026-07-15"}


def triage(context=None, **facts):
    """Evaluate ADULT with overrides under CONTEXT with overrides."""
    return DCP.evaluate({**ADULT, **facts}, {**CONTEXT, **(context or {})})


def codes(result):
    return [ground.code for ground in result.grounds]


def test_claim_without_any_indicator_is_regular_without_deadline():
    """No designation, need or indicator: regular processing; UNHCR modalities have no statutory date."""
    result = triage()
    assert result.track == "regular"
    assert result.grounds == ()
    assert result.deadline is None


@pytest.mark.parametrize("setting, track", [
    ("prima_facie_nationalities", "group_based_prima_facie"),
    ("merged_registration_rsd_nationalities", "merged_registration_rsd"),
    ("simplified_nationalities", "simplified"),
])
def test_designated_profiles_get_their_modality(setting, track):
    """A country of origin designated for a modality is processed in that modality."""
    assert triage({setting: ["VEN"]}).track == track
    assert triage({setting: ["NIC"]}).track == "regular"


def test_designations_follow_precedence_and_all_are_reported():
    """Designated for prima facie, merged and simplified at once: prima facie wins, all three reported."""
    context = {"prima_facie_nationalities": ["VEN"], "merged_registration_rsd_nationalities": ["VEN"],
               "simplified_nationalities": ["VEN"]}
    result = triage(context)
    assert result.track == "group_based_prima_facie"
    assert codes(result) == ["prima_facie_designated_group", "merged_designated_profile",
                             "simplified_designated_profile"]


def test_exclusion_indicator_requires_full_individual_examination():
    """security_flag blocks prima facie, merged, simplified and accelerated processing."""
    context = {"prima_facie_nationalities": ["VEN"], "simplified_nationalities": ["VEN"]}
    result = triage(context, security_flag=True, claim_grounds=["economic_hardship"])
    assert result.track == "regular"
    assert "dcp-exclusion-indicator" in result.rules
    assert "prima_facie_designated_group" in codes(result)


@pytest.mark.parametrize("rate, track", [(90.0, "simplified"), (89.9, "regular")])
def test_high_recognition_rate_profile_is_simplified(rate, track):
    """A recognition rate at or above the simplified threshold (90% by default) means simplified."""
    assert triage(recognition_rate_for_nationality=rate).track == track


def test_simplified_threshold_uses_the_rate_table_and_former_habitual_residence():
    """Stateless applicants are matched on former habitual residence, rates from the context table."""
    stateless = {"nationality": None, "stateless": True, "former_habitual_residence": "SYR"}
    assert triage({"recognition_rates": {"SYR": 95.0}}, **stateless).track == "simplified"
    assert triage({"prima_facie_nationalities": ["SYR"]}, **stateless).track == "group_based_prima_facie"


def test_unaccompanied_child_is_prioritised_not_merged():
    """An unaccompanied child of a merged-designated profile is prioritised instead."""
    child = {"unaccompanied_minor": True, "date_of_birth": "2011-05-05"}
    result = triage({"merged_registration_rsd_nationalities": ["VEN"]}, **child)
    assert result.track == "prioritised"
    assert codes(result) == ["merged_designated_profile", "unaccompanied_minor"]


@pytest.mark.parametrize("vulnerabilities, track", [
    (["torture_rape_serious_violence"], "prioritised"),
    (["trafficking_victim", "minor"], "prioritised"),
    (["minor"], "regular"),
])
def test_specific_needs_are_prioritised_but_an_accompanied_child_alone_is_not(vulnerabilities, track):
    """Specific needs in prioritised_vulnerabilities put a claim first; the plain 'minor' code does not."""
    assert triage(vulnerabilities=vulnerabilities).track == track


@pytest.mark.parametrize("facts, code", [
    ({"claim_grounds": ["economic_hardship"]}, "claim_outside_refugee_criteria"),
    ({"only_irrelevant_issues": True}, "only_irrelevant_issues"),
    ({"inconsistent_or_improbable_statements": True}, "inconsistent_or_improbable_statements"),
    ({"previous_application": {"member_state": "SAME", "decision": "rejected", "final": True,
                               "new_elements": False}}, "repeat_application_without_new_elements"),
])
def test_manifestly_unfounded_indicators_are_accelerated(facts, code):
    """Each manifestly-unfounded indicator sends an adult without specific needs to accelerated processing."""
    result = triage(**facts)
    assert result.track == "accelerated"
    assert codes(result) == [code]


def test_claim_with_a_convention_ground_is_not_manifestly_unfounded():
    """Economic hardship alongside a Convention ground is not a claim outside the refugee criteria."""
    assert triage(claim_grounds=["economic_hardship", "political_opinion"]).track == "regular"
    assert triage(claim_grounds=[]).track == "regular"


def test_accelerated_never_applies_to_children_or_persons_with_specific_needs():
    """Manifestly-unfounded indicators do not accelerate unaccompanied children or persons with specific needs."""
    indicator = {"claim_grounds": ["economic_hardship"]}
    assert triage(**indicator, vulnerabilities=["serious_illness"]).track == "prioritised"
    assert triage(**indicator, unaccompanied_minor=True, age_disputed=True).track == "prioritised"
