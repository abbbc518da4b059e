"""The eu-apr-2026 ruleset against TRIAGE.md: worked examples, precedence, grounds, exemptions,
boundaries and deadlines. Pure unit tests: no Flask app, no database."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError
from datetime import date, timedelta
from pathlib import Path

import pytest

from app.triage.rules import ContextError, evaluate_batch, shipped_ruleset

EXAMPLES_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "triage-examples.json"
EXAMPLES = json.loads(EXAMPLES_PATH.read_text(encoding="utf-8"))
EU = shipped_ruleset("eu-apr-2026")

# An adult applying inland whose nationality has a middling rate (35%): no ground at all.
BASE_FACTS = {
    "nationality": "IRQ", "stateless": False, "former_habitual_residence": None,
    "date_of_birth": "1990-05-20", "age_disputed": False, "sex": "M",
    "unaccompanied_minor": False, "family_with_minor_children": False, "children_ages": [],
    "application_made_date": "2026-07-01", "registration_date": "2026-07-02",
    "lodged": True, "lodging_date": "2026-07-03", "good_cause_for_not_lodging": None,
    "location_context": "inland", "applied_at_border": False,
    "fulfils_entry_conditions": None, "authorised_to_enter": None,
    "vulnerabilities": [], "special_procedural_guarantees_needed": False,
    "adequate_support_available": {"border_location": True, "accelerated_procedure": True},
    "special_reception_needs_support_at_border": True, "medical_reasons_against_border": False,
    "detention_guarantees_met": True, "previous_application": None, "eurodac_hit": None,
    "family_member_in_other_member_state": None,
    "international_protection_granted_by_member_state": None,
    "first_country_of_asylum": None, "safe_third_country": None, "return_decision": None,
    "security_flag": False, "documents_withheld_or_false": False, "good_cause_shown": None,
    "biometrics_refused": False, "irregular_entry_date": None, "presented_without_delay": True,
    "only_irrelevant_issues": False, "claim_grounds": ["political_opinion"],
    "safe_country_of_origin_designation": None, "sco_individual_rebuttal_elements": False,
    "recognition_rate_for_nationality": 35.0, "significant_change_since_eurostat": False,
    "category_not_representative": False,
}
BASE_CONTEXT = {
    "decision_date": "2026-07-15", "minor_status_reference_date": "application_made",
    "ms_applies_first_country_of_asylum": True, "ms_applies_safe_third_country": True,
    "ms_applies_optional_border_procedure": False, "border_capacity_reached_art48": False,
    "annual_border_maximum_reached_art50": False, "postponed_nationalities": [],
    "likely_well_founded_rate_pct": 50,
    "eu_safe_countries_of_origin": ["BGD", "COL", "EGY", "IND", "XKX", "MAR", "TUN"],
}
AT_BORDER = {"location_context": "apprehended_irregular_crossing", "applied_at_border": True,
             "authorised_to_enter": False, "fulfils_entry_conditions": False}
LOW_RATE = {"recognition_rate_for_nationality": 15.0}
UAM = {"unaccompanied_minor": True, "date_of_birth": "2010-03-01", "vulnerabilities": ["unaccompanied_minor"]}


def triage(context=None, **facts):
    """Evaluate BASE_FACTS with overrides under BASE_CONTEXT with overrides."""
    return EU.evaluate({**BASE_FACTS, **facts}, {**BASE_CONTEXT, **(context or {})})


def codes(result):
    return [ground.code for ground in result.grounds]


# ---- worked examples (shared/domain/triage-examples.json) ------------------------------------
@pytest.mark.parametrize("example", EXAMPLES, ids=[example["id"] for example in EXAMPLES])
def test_worked_example_yields_expected_track(example):
    """Every worked example in triage-examples.json is routed to its expected_track."""
    assert EU.evaluate(example["facts"], example["context"]).track == example["expected_track"]
    if "expected_grounds" in example:  # not in the current file; honoured if added
        assert {g.code for g in EU.evaluate(example["facts"], example["context"]).grounds} >= set(
            example["expected_grounds"])


EXPECTED_DETAILS = {
    # id: (ground codes in document order, deadline)
    "TC01": (["not_lodged_within_21_days", "low_recognition_rate"], None),
    "TC02": (["eurodac_hit_applicant", "likely_well_founded"], "2026-07-16"),
    "TC05": (["subsequent_application_without_new_elements", "low_recognition_rate"], "2026-09-03"),
    "TC12": (["low_recognition_rate"], "2026-09-24"),
    "TC13": ([], "2027-01-03"),
    "TC19": (["low_recognition_rate", "vulnerable_applicant"], "2026-10-03"),
    "TC28": (["safe_country_of_origin", "low_recognition_rate"], "2026-10-03"),
    "TC36": (["unaccompanied_minor", "vulnerable_applicant", "likely_well_founded"], "2027-01-03"),
}


@pytest.mark.parametrize("example", EXAMPLES, ids=[example["id"] for example in EXAMPLES])
def test_worked_example_grounds_and_deadline(example):
    """Each worked example reports all its grounds and the statutory deadline of its track."""
    grounds, deadline = EXPECTED_DETAILS[example["id"]]
    result = EU.evaluate(example["facts"], example["context"])
    assert codes(result) == grounds
    assert (result.deadline.date if result.deadline else None) == deadline


def test_batch_output_matches_the_evaluate_format_for_examples():
    """evaluate_batch returns exactly id/track/grounds/rules/ruleset/deadline per example."""
    output = evaluate_batch(EXAMPLES, EU)
    assert [row["id"] for row in output] == [example["id"] for example in EXAMPLES]
    assert [row["track"] for row in output] == [example["expected_track"] for example in EXAMPLES]
    tc12 = output[3]
    assert set(tc12) == {"id", "track", "grounds", "rules", "ruleset", "deadline"}
    assert tc12["ruleset"] == "eu-apr-2026@2026.1.0"
    assert tc12["deadline"] == "2026-09-24"
    assert tc12["grounds"] == [{"code": "low_recognition_rate", "reason_code": "LOW_RECOGNITION_RATE",
                                "legal_basis": "APR 42(1)(j)"}]
    assert "track-border" in tc12["rules"]
    assert json.loads(json.dumps(output)) == output


# ---- 1. lodging ---------------------------------------------------------------------------------
def test_not_lodged_more_than_21_days_after_registration_is_implicit_withdrawal():
    """Not lodged 22 days after registration without good cause -> implicit_withdrawal, no deadline."""
    result = triage({"decision_date": "2026-07-24"}, lodged=False, lodging_date=None)
    assert result.track == "implicit_withdrawal"
    assert codes(result) == ["not_lodged_within_21_days"]
    assert result.grounds[0].legal_basis == "APR 28(1), 41(1)(a)"
    assert result.deadline is None


def test_not_lodged_exactly_21_days_after_registration_is_still_in_time():
    """Day 21 after registration is within the lodging limit: no implicit withdrawal."""
    result = triage({"decision_date": "2026-07-23"}, lodged=False, lodging_date=None)
    assert result.track == "regular"
    assert result.deadline is None  # no lodging date to count from yet


@pytest.mark.parametrize("facts", [
    {"lodged": False, "lodging_date": None, "good_cause_for_not_lodging": True},
    {"lodged": None, "lodging_date": None},
], ids=["good-cause", "lodging-unknown"])
def test_no_implicit_withdrawal_with_good_cause_or_unknown_lodging(facts):
    """Good cause, or a lodging status that is simply unknown, never triggers implicit withdrawal."""
    assert triage({"decision_date": "2026-09-01"}, **facts).track == "regular"


def test_decision_date_defaults_to_today():
    """Without a decision_date the lodging delay is counted to today."""
    today = date.today()
    late = {**BASE_FACTS, "lodged": False, "lodging_date": None,
            "registration_date": (today - timedelta(days=30)).isoformat()}
    recent = {**late, "registration_date": (today - timedelta(days=5)).isoformat()}
    assert EU.evaluate(late).track == "implicit_withdrawal"
    assert EU.evaluate(recent).track == "regular"


# ---- 2. responsibility --------------------------------------------------------------------------
def test_eurodac_applicant_hit_is_take_back_with_two_week_deadline():
    """A Eurodac 'applicant' hit -> responsibility, take-back notification 2 weeks after the hit."""
    result = triage(eurodac_hit={"member_state": "ITA", "category": "applicant", "hit_date": "2026-07-06"})
    assert result.track == "responsibility"
    assert result.deadline.date == "2026-07-20"
    assert "2 weeks after the Eurodac hit" in result.deadline.description


def test_eurodac_irregular_entry_hit_is_take_charge_one_month_after_hit():
    """A Eurodac 'irregular_entry' hit -> responsibility, take-charge request 1 month after the hit."""
    result = triage(eurodac_hit={"member_state": "GRC", "category": "irregular_entry", "hit_date": "2026-07-06"})
    assert result.track == "responsibility"
    assert codes(result) == ["eurodac_hit_irregular_entry"]
    assert result.deadline.date == "2026-08-06"


def test_family_member_in_best_interests_is_take_charge_two_months_from_registration():
    """Family in another Member State with reunification in the best interests -> responsibility."""
    family = {"member_state": "DEU", "relation": "spouse", "legally_present": True,
              "reunification_in_best_interests": True}
    result = triage(family_member_in_other_member_state=family)
    assert result.track == "responsibility"
    assert result.deadline.date == "2026-09-02"
    not_best = triage(family_member_in_other_member_state={**family, "reunification_in_best_interests": False})
    assert not_best.track == "regular"


def test_security_flag_blocks_the_responsibility_track():
    """With security_flag the determining state stays responsible; the hit is still reported."""
    result = triage(security_flag=True,
                    eurodac_hit={"member_state": "ITA", "category": "applicant", "hit_date": "2026-07-02"})
    assert result.track == "accelerated"
    assert codes(result) == ["eurodac_hit_applicant", "security_threat"]
    assert "ammr-security-keeps-responsibility" in result.rules
    assert "track-responsibility" not in result.rules


def test_lodging_beats_responsibility_beats_admissibility():
    """Precedence: implicit withdrawal over responsibility over inadmissibility, all grounds kept."""
    hit = {"member_state": "ITA", "category": "applicant", "hit_date": "2026-07-02"}
    previous = {"member_state": "SAME", "decision": "rejected", "final": True, "new_elements": False}
    both = triage(eurodac_hit=hit, previous_application=previous)
    assert both.track == "responsibility"
    assert codes(both) == ["eurodac_hit_applicant", "subsequent_application_without_new_elements"]
    unlodged = triage({"decision_date": "2026-08-30"}, eurodac_hit=hit, previous_application=previous,
                      lodged=False, lodging_date=None)
    assert unlodged.track == "implicit_withdrawal"
    assert codes(unlodged)[0] == "not_lodged_within_21_days"


# ---- 3. admissibility ---------------------------------------------------------------------------
def test_subsequent_application_without_new_elements_is_always_inadmissible():
    """Final previous decision, no new elements -> inadmissibility even where no concept is applied."""
    previous = {"member_state": "SAME", "decision": "rejected", "final": True, "new_elements": False}
    result = triage({"ms_applies_first_country_of_asylum": False, "ms_applies_safe_third_country": False},
                    previous_application=previous)
    assert result.track == "inadmissibility"
    assert result.deadline.date == "2026-09-03"
    assert result.deadline.description.startswith("2 months from lodging")


def test_subsequent_application_with_new_elements_is_accelerated_ground_g():
    """With new elements the subsequent application is admissible and ground 42(1)(g) applies."""
    previous = {"member_state": "SAME", "decision": "rejected", "final": True, "new_elements": True}
    result = triage(previous_application=previous)
    assert result.track == "accelerated"
    assert codes(result) == ["admissible_subsequent_application"]


def test_protection_granted_by_another_member_state_is_inadmissible():
    """Protection granted elsewhere in the EU (fact or Eurodac beneficiary hit) -> inadmissibility."""
    assert triage(international_protection_granted_by_member_state="DEU").track == "inadmissibility"
    hit = {"member_state": "DEU", "category": "beneficiary_of_international_protection", "hit_date": "2026-07-02"}
    result = triage(eurodac_hit=hit)
    assert result.track == "inadmissibility"
    assert codes(result) == ["protection_granted_by_other_member_state"]


FIRST_COUNTRY = {"country": "TUR", "effective_protection_still_available": True,
                 "readmission_possible": True, "guarantee_for_uam": False}


def test_first_country_of_asylum_needs_the_concept_protection_and_readmission():
    """First country of asylum applies only if the state uses it, protection persists, readmission possible."""
    assert triage(first_country_of_asylum=FIRST_COUNTRY).track == "inadmissibility"
    assert triage({"ms_applies_first_country_of_asylum": False},
                  first_country_of_asylum=FIRST_COUNTRY).track == "regular"
    assert triage(first_country_of_asylum={**FIRST_COUNTRY, "readmission_possible": False}).track == "regular"
    assert triage(first_country_of_asylum={**FIRST_COUNTRY,
                                           "effective_protection_still_available": None}).track == "regular"


def test_first_country_of_asylum_for_unaccompanied_minor_needs_a_guarantee():
    """For an unaccompanied minor, first country of asylum applies only with that country's guarantee."""
    assert triage(first_country_of_asylum=FIRST_COUNTRY, **UAM).track == "regular_prioritised"
    guaranteed = triage(first_country_of_asylum={**FIRST_COUNTRY, "guarantee_for_uam": True}, **UAM)
    assert guaranteed.track == "inadmissibility"


SAFE_THIRD = {"country": "SRB", "basis": "agreement", "assessed_safe_for_applicant": True,
              "effective_protection_possible": True, "readmission_possible": True}


def test_safe_third_country_on_agreement_basis_never_for_unaccompanied_minor():
    """Safe third country on the agreement-only basis applies to adults but never to an unaccompanied minor."""
    assert triage(safe_third_country=SAFE_THIRD).track == "inadmissibility"
    assert triage(safe_third_country=SAFE_THIRD, **UAM).track == "regular_prioritised"
    transit = triage(safe_third_country={**SAFE_THIRD, "basis": "transit"}, **UAM)
    assert transit.track == "inadmissibility"


def test_safe_third_country_needs_the_concept_and_an_individual_assessment():
    """Safe third country needs the state's concept, an individual safety assessment and readmission."""
    assert triage({"ms_applies_safe_third_country": False}, safe_third_country=SAFE_THIRD).track == "regular"
    assert triage(safe_third_country={**SAFE_THIRD, "assessed_safe_for_applicant": False}).track == "regular"
    assert triage(safe_third_country={**SAFE_THIRD, "readmission_possible": None}).track == "regular"


def test_return_decision_ground_counts_working_days_excluding_weekends():
    """Received Friday: application the 2nd Tuesday after is 7 working days (in time), Wednesday is 8."""
    decision = {"received_date": "2026-07-03", "informed_of_consequences": True}  # a Friday
    in_time = triage(return_decision=decision, application_made_date="2026-07-14",  # 11 calendar days
                     registration_date="2026-07-14", lodging_date="2026-07-15")
    assert in_time.track == "regular"
    late = triage(return_decision=decision, application_made_date="2026-07-15",
                  registration_date="2026-07-15", lodging_date="2026-07-17")
    assert late.track == "inadmissibility"
    assert codes(late) == ["application_after_return_decision"]
    # 10 working days from lodging on Friday 17 July: over two weekends to Friday 31 July.
    assert late.deadline.date == "2026-07-31"


def test_return_decision_ground_needs_information_and_no_new_elements():
    """No return-decision ground if the applicant was not informed, or new elements were presented."""
    decision = {"received_date": "2026-06-01", "informed_of_consequences": False}
    assert triage(return_decision=decision).track == "regular"
    informed = {**decision, "informed_of_consequences": True}
    previous = {"member_state": "SAME", "decision": "rejected", "final": False, "new_elements": True}
    assert triage(return_decision=informed).track == "inadmissibility"
    assert triage(return_decision=informed, previous_application=previous).track == "regular"


# ---- 4. border procedure ------------------------------------------------------------------------
@pytest.mark.parametrize("location", ["border_crossing_point", "transit_zone", "apprehended_irregular_crossing",
                                      "disembarkation_sar", "relocation"])
def test_low_rate_at_every_border_location_is_mandatory_border(location):
    """Ground (j) at any border location, without entry rights, is the mandatory border procedure."""
    assert triage(**{**AT_BORDER, **LOW_RATE, "location_context": location}).track == "border"


def test_border_needs_border_location_and_no_entry_rights():
    """Inland, authorised to enter, or entry status unknown: no border procedure, accelerated instead."""
    assert triage(**{**AT_BORDER, **LOW_RATE, "location_context": "inland"}).track == "accelerated"
    assert triage(**{**AT_BORDER, **LOW_RATE, "authorised_to_enter": True}).track == "accelerated"
    assert triage(**{**AT_BORDER, **LOW_RATE, "fulfils_entry_conditions": None}).track == "accelerated"


def test_border_deadline_is_12_weeks_from_registration_or_16_after_relocation():
    """Border deadline: 12 weeks from registration; 16 weeks after relocation."""
    assert triage(**AT_BORDER, **LOW_RATE).deadline.date == "2026-09-24"
    relocated = triage(**{**AT_BORDER, **LOW_RATE, "location_context": "relocation"})
    assert relocated.deadline.date == "2026-10-22"
    assert relocated.deadline.description == "16 weeks from registration (after relocation)"


@pytest.mark.parametrize("ground", [
    {"documents_withheld_or_false": True},
    {"security_flag": True},
    {"recognition_rate_for_nationality": 20.0},
], ids=["c-misled", "f-security", "j-rate"])
def test_grounds_c_f_j_make_the_border_procedure_mandatory(ground):
    """Grounds (c), (f) and (j) at the border -> mandatory border procedure."""
    assert triage(**AT_BORDER, **ground).track == "border"


def test_other_grounds_at_border_are_optional_only_when_the_state_applies_it():
    """Safe country of origin at the border: accelerated unless the state applies the optional border procedure."""
    sco = {"nationality": "MAR", "safe_country_of_origin_designation": "EU_list"}
    assert triage(**AT_BORDER, **sco).track == "accelerated"
    optional = triage({"ms_applies_optional_border_procedure": True}, **AT_BORDER, **sco)
    assert optional.track == "border_optional"
    assert optional.deadline.date == "2026-09-24"


def test_optional_border_excludes_grounds_h_and_i():
    """APR 44(1)(b): irregular stay (h) or refused biometrics (i) alone never lead to the border procedure."""
    context = {"ms_applies_optional_border_procedure": True}
    assert triage(context, **AT_BORDER, biometrics_refused=True).track == "accelerated"
    assert triage(context, **AT_BORDER, irregular_entry_date="2026-06-01",
                  presented_without_delay=False).track == "accelerated"


def test_no_accelerated_ground_at_border_exempts_from_border_procedure():
    """At the border with no accelerated ground (20.1%): regular, exemption 53(2)(a) recorded."""
    result = triage(**AT_BORDER, recognition_rate_for_nationality=20.1)
    assert result.track == "regular"
    assert "border-exemption-no-ground" in result.rules


@pytest.mark.parametrize("exemption, rule_id", [
    ({"family_with_minor_children": True, "children_ages": [4, 9],
      "special_reception_needs_support_at_border": False}, "border-exemption-special-reception-needs"),
    ({"special_procedural_guarantees_needed": True,
      "adequate_support_available": {"border_location": False, "accelerated_procedure": True}},
     "border-exemption-special-procedural-guarantees"),
    ({"medical_reasons_against_border": True}, "border-exemption-medical"),
    ({"detention_guarantees_met": False}, "border-exemption-detention"),
], ids=["family-reception", "procedural-support", "medical", "detention"])
def test_border_exemptions_send_the_claim_to_the_accelerated_procedure(exemption, rule_id):
    """Each APR 53(2) exemption takes a mandatory border case out of the border procedure."""
    result = triage(**AT_BORDER, **LOW_RATE, **exemption)
    assert result.track == "accelerated"
    assert rule_id in result.rules
    assert "low_recognition_rate" in codes(result)


def test_vulnerability_alone_does_not_exempt_from_border_or_accelerated():
    """Vulnerable applicants with adequate support stay in the border / accelerated procedure."""
    vulnerable = {"vulnerabilities": ["torture_rape_serious_violence"], "special_procedural_guarantees_needed": True}
    assert triage(**AT_BORDER, **LOW_RATE, **vulnerable).track == "border"
    assert triage(**LOW_RATE, **vulnerable).track == "accelerated"


def test_capacity_reached_art48_relieves_only_ground_j():
    """Art 48 capacity reached: (j) no longer mandatory at the border, (c) still is."""
    context = {"border_capacity_reached_art48": True}
    relieved = triage(context, **AT_BORDER, **LOW_RATE)
    assert relieved.track == "accelerated"
    assert "border-capacity-relief-art48" in relieved.rules
    assert triage(context, **AT_BORDER, documents_withheld_or_false=True).track == "border"
    optional = {**context, "ms_applies_optional_border_procedure": True}
    assert triage(optional, **AT_BORDER, **LOW_RATE).track == "border_optional"


def test_annual_maximum_art50_relieves_c_and_j_but_not_security():
    """Art 50 annual maximum: (c) and (j) no longer mandatory, (f) still mandatory."""
    context = {"annual_border_maximum_reached_art50": True}
    assert triage(context, **AT_BORDER, **LOW_RATE).track == "accelerated"
    assert triage(context, **AT_BORDER, documents_withheld_or_false=True).track == "accelerated"
    assert triage(context, **AT_BORDER, security_flag=True).track == "border"


def test_unaccompanied_minor_goes_to_border_only_on_security_ground():
    """Unaccompanied minor at the border: misleading documents -> accelerated; security -> border."""
    misled = triage(**AT_BORDER, **UAM, documents_withheld_or_false=True)
    assert misled.track == "accelerated"
    assert "border-unaccompanied-minor-security-only" in misled.rules
    assert triage(**AT_BORDER, **UAM, security_flag=True).track == "border"
    assert triage({"ms_applies_optional_border_procedure": True}, **AT_BORDER, **UAM,
                  safe_country_of_origin_designation="EU_list").track == "accelerated"


# ---- 5. accelerated grounds ---------------------------------------------------------------------
ACCELERATED_GROUNDS = {
    "a": ({"only_irrelevant_issues": True}, "only_irrelevant_issues"),
    "b": ({"inconsistent_or_improbable_statements": True}, "inconsistent_or_improbable_statements"),
    "c": ({"documents_withheld_or_false": True}, "misled_authorities"),
    "d": ({"applied_merely_to_delay_removal": True}, "merely_to_delay_removal"),
    "e": ({"safe_country_of_origin_designation": "national_list"}, "safe_country_of_origin"),
    "f": ({"security_flag": True}, "security_threat"),
    "g": ({"previous_application": {"member_state": "FRA", "decision": "rejected", "final": True,
                                    "new_elements": True}}, "admissible_subsequent_application"),
    "h": ({"irregular_entry_date": "2026-05-01", "presented_without_delay": False},
          "irregular_entry_not_presented_without_delay"),
    "i": ({"biometrics_refused": True}, "biometrics_refused"),
    "j": ({"recognition_rate_for_nationality": 8.0}, "low_recognition_rate"),
}


@pytest.mark.parametrize("letter", sorted(ACCELERATED_GROUNDS))
def test_each_apr_42_1_ground_routes_an_adult_to_accelerated(letter):
    """Every APR 42(1) ground on its own sends an adult inland claim to the accelerated procedure."""
    facts, code = ACCELERATED_GROUNDS[letter]
    result = triage(**facts)
    assert result.track == "accelerated"
    assert codes(result) == [code]
    assert result.grounds[0].legal_basis.startswith(f"APR 42(1)({letter})")
    assert result.deadline.date == "2026-10-03"


@pytest.mark.parametrize("letter", sorted(ACCELERATED_GROUNDS))
def test_unaccompanied_minors_only_get_the_42_3_subset(letter):
    """For unaccompanied minors only (c), (e), (f), (g) are grounds; the others do not apply."""
    facts, code = ACCELERATED_GROUNDS[letter]
    result = triage(**UAM, **facts)
    if letter in "cefg":
        assert result.track == "accelerated"
        assert code in codes(result)
    else:
        assert result.track == "regular_prioritised"
        assert code not in codes(result)


def test_good_cause_for_documents_removes_ground_c():
    """Withheld documents with good cause shown are not ground (c)."""
    assert triage(documents_withheld_or_false=True, good_cause_shown=True).track == "regular"


def test_accelerated_exemption_when_no_adequate_support_for_special_guarantees():
    """APR 21(2): special procedural guarantees without adequate support -> not accelerated."""
    lacking = {"special_procedural_guarantees_needed": True,
               "adequate_support_available": {"border_location": True, "accelerated_procedure": False}}
    result = triage(**LOW_RATE, **lacking)
    assert result.track == "regular"
    assert "accelerated-exemption-special-procedural-guarantees" in result.rules
    assert codes(result) == ["low_recognition_rate"]


@pytest.mark.parametrize("rate, track", [(20.0, "accelerated"), (20.1, "regular"), (19.9, "accelerated")])
def test_recognition_rate_20_percent_or_lower_is_inclusive(rate, track):
    """Ground (j) applies at 20.0% and below, not at 20.1%."""
    assert triage(recognition_rate_for_nationality=rate).track == track


@pytest.mark.parametrize("disabling_fact", ["significant_change_since_eurostat", "category_not_representative"])
def test_ground_j_disabled_by_significant_change_or_unrepresentative_rate(disabling_fact):
    """A recorded significant change or a non-representative category disables ground (j)."""
    result = triage(**AT_BORDER, **LOW_RATE, **{disabling_fact: True})
    assert result.track == "regular"
    assert codes(result) == []


def test_rate_is_looked_up_in_context_table_when_the_fact_is_absent():
    """Without recognition_rate_for_nationality the context table (by nationality) is used."""
    facts = {**BASE_FACTS, "nationality": "PAK"}
    del facts["recognition_rate_for_nationality"]
    assert EU.evaluate(facts, {**BASE_CONTEXT, "recognition_rates": {"PAK": 12.0}}).track == "accelerated"
    assert EU.evaluate(facts, {**BASE_CONTEXT, "recognition_rates": {"PAK": 63.0}}).track == "regular_prioritised"
    assert EU.evaluate(facts, BASE_CONTEXT).track == "regular"  # unknown rate: no (j), no priority


def test_humanitarian_status_is_never_counted_in_the_rate():
    """Venezuela: 4% refugee + subsidiary protection although 89% positive with humanitarian status."""
    venezuela = {"refugee_status": 30, "subsidiary_protection": 10, "humanitarian_status": 850,
                 "total_decisions": 1000, "source": "Eurostat migr_asydcfsta", "as_of": "2025-12-31"}
    facts = {**BASE_FACTS, "nationality": "VEN"}
    del facts["recognition_rate_for_nationality"]
    result = EU.evaluate(facts, {**BASE_CONTEXT, "recognition_rates": {"VEN": venezuela}})
    assert result.track == "accelerated"
    assert codes(result) == ["low_recognition_rate"]


def test_stateless_applicant_is_assessed_on_former_habitual_residence():
    """Stateless: rates and safe-country lists use the country of former habitual residence."""
    facts = {**BASE_FACTS, "nationality": None, "stateless": True, "former_habitual_residence": "SYR"}
    del facts["recognition_rate_for_nationality"]
    rates = {**BASE_CONTEXT, "recognition_rates": {"SYR": 90.0, "MAR": 3.0}}
    assert EU.evaluate(facts, rates).track == "regular_prioritised"
    moroccan_residence = EU.evaluate({**facts, "former_habitual_residence": "MAR"}, rates)
    assert codes(moroccan_residence) == ["safe_country_of_origin", "low_recognition_rate"]
    # Nationality is ignored for a stateless applicant, even if one is recorded.
    assert EU.evaluate({**facts, "nationality": "MAR"}, rates).track == "regular_prioritised"


def test_safe_country_of_origin_from_eu_list_and_rebuttal():
    """A nationality on the EU list is ground (e) unless rebutted with individual elements."""
    assert codes(triage(nationality="TUN")) == ["safe_country_of_origin"]
    assert triage(nationality="TUN", sco_individual_rebuttal_elements=True).track == "regular"
    assert triage({"eu_safe_countries_of_origin": []}, nationality="TUN").track == "regular"


# ---- minority ------------------------------------------------------------------------------------
def test_18th_birthday_on_the_day_the_application_is_made_is_an_adult():
    """Born 1 July 2008, applying 1 July 2026: adult, so ground (j) applies; a day younger is a minor."""
    unaccompanied = {**LOW_RATE, "unaccompanied_minor": True, "vulnerabilities": []}
    adult = triage(date_of_birth="2008-07-01", **unaccompanied)
    assert adult.track == "accelerated"
    assert "unaccompanied_minor" not in codes(adult)
    minor = triage(date_of_birth="2008-07-02", **unaccompanied)
    assert minor.track == "regular_prioritised"
    assert codes(minor) == ["unaccompanied_minor"]


def test_minority_reference_date_setting_uses_the_decision_date():
    """With minor_status_reference_date=decision_date a 17-year-old turning 18 before triage is an adult."""
    facts = {**LOW_RATE, "unaccompanied_minor": True, "date_of_birth": "2008-07-10"}
    assert triage(**facts).track == "regular_prioritised"
    assert triage({"minor_status_reference_date": "decision_date"}, **facts).track == "accelerated"


def test_disputed_age_is_treated_as_minor_until_assessed():
    """Unaccompanied with a disputed age counts as a minor even if the recorded birth date says adult."""
    result = triage(**LOW_RATE, unaccompanied_minor=True, age_disputed=True, date_of_birth="2000-01-01")
    assert result.track == "regular_prioritised"
    assert codes(result) == ["unaccompanied_minor"]


def test_unaccompanied_flag_without_birth_date_is_a_minor():
    """An unaccompanied minor with no recorded birth date is not presumed adult."""
    assert triage(unaccompanied_minor=True, date_of_birth=None, **LOW_RATE).track == "regular_prioritised"


# ---- 6. regular ----------------------------------------------------------------------------------
@pytest.mark.parametrize("facts, code", [
    ({"vulnerabilities": ["pregnant"]}, "vulnerable_applicant"),
    ({"recognition_rate_for_nationality": 50.0}, "likely_well_founded"),
    ({"unaccompanied_minor": True, "date_of_birth": "2011-01-01"}, "unaccompanied_minor"),
], ids=["vulnerable", "well-founded-at-threshold", "unaccompanied"])
def test_regular_prioritised_grounds(facts, code):
    """Vulnerable, rate at or above the threshold, or unaccompanied minor -> regular_prioritised."""
    result = triage(**facts)
    assert result.track == "regular_prioritised"
    assert codes(result) == [code]
    assert result.deadline.date == "2027-01-03"


def test_likely_well_founded_threshold_is_a_setting():
    """49.9% is not prioritised at the default 50% threshold, but is at a 45% threshold."""
    assert triage(recognition_rate_for_nationality=49.9).track == "regular"
    assert triage({"likely_well_founded_rate_pct": 45}, recognition_rate_for_nationality=49.9).track == (
        "regular_prioritised")


def test_postponed_nationality_has_no_fixed_deadline():
    """A nationality in postponed_nationalities stays regular, with the postponement ground and no date."""
    result = triage({"postponed_nationalities": ["IRQ"]})
    assert result.track == "regular"
    assert codes(result) == ["postponed_uncertain_country_situation"]
    assert result.deadline is None


def test_regular_deadline_is_six_months_from_lodging_clamped_to_month_end():
    """Regular deadline: 6 months from lodging; lodged 31 August -> 28 February."""
    result = triage(lodging_date="2026-08-31")
    assert result.deadline.date == "2027-02-28"
    assert result.deadline.description == "6 months from lodging (extendable by 6 months)"


def test_every_matching_ground_is_reported_not_only_the_winner():
    """One claim with responsibility, admissibility, accelerated and priority grounds reports them all."""
    result = triage(
        **LOW_RATE, vulnerabilities=["disability"],
        eurodac_hit={"member_state": "ITA", "category": "irregular_entry", "hit_date": "2026-07-02"},
        previous_application={"member_state": "SAME", "decision": "rejected", "final": True, "new_elements": False},
        biometrics_refused=True)
    assert result.track == "responsibility"
    assert codes(result) == ["eurodac_hit_irregular_entry", "subsequent_application_without_new_elements",
                             "biometrics_refused", "low_recognition_rate", "vulnerable_applicant"]
    assert {g.track for g in result.grounds} == {"responsibility", "inadmissibility", "accelerated",
                                                 "regular_prioritised"}
    assert result.grounds[0].rule_id == "ammr-take-charge-eurodac-irregular-entry"
    assert result.grounds[0].reason_code == "EURODAC_HIT_IRREGULAR_ENTRY_TAKE_CHARGE"


def test_partly_known_facts_still_triage():
    """A claim with only a few facts known is triaged with defaults (null / false / [])."""
    result = EU.evaluate({"nationality": "BGD", "lodging_date": "2026-07-03"}, {"decision_date": "2026-07-15"})
    assert result.track == "accelerated"
    assert codes(result) == ["safe_country_of_origin"]
    assert EU.evaluate({}).track == "regular"


def test_result_is_immutable_and_names_its_ruleset_and_facts():
    """TriageResult is frozen and carries ruleset id/version and the facts the result depends on."""
    result = triage()
    with pytest.raises(FrozenInstanceError):
        result.track = "border"
    assert (result.ruleset_id, result.ruleset_version) == ("eu-apr-2026", "2026.1.0")
    assert {"nationality", "recognition_rate_for_nationality", "lodging_date"} <= set(result.facts_used)
    assert "sex" not in result.facts_used
    withdrawn = triage({"decision_date": "2026-08-30"}, lodged=False, lodging_date=None)
    assert "lodging_date" not in withdrawn.facts_used  # no deadline to count


def test_unknown_context_setting_is_rejected():
    """A misspelt context setting raises ContextError naming it, instead of being silently ignored."""
    with pytest.raises(ContextError) as error:
        triage({"ms_applies_safe_third_countries": True})
    assert error.value.field == "ms_applies_safe_third_countries"
