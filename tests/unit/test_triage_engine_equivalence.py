"""The triage engine's outcomes are pinned: thousands of generated, deliberately varied claims
(both shipped rulesets, varied settings, boundary dates and rates, absent facts, dates given as
strings or as ``date``) evaluate to exactly the results the engine gave when the snapshot was
taken (``tests/fixtures/triage_engine_reference.json.gz``): track, every ground with all its
fields, every matched rule in order, the deadline's date and description, the facts used and the
ruleset label. A speed-up of the engine must leave every one of them unchanged.

The snapshot was written by the engine BEFORE it was optimised, by running this module as a
script (``.venv/bin/python tests/unit/test_triage_engine_equivalence.py --write``). Rewrite it
only for a deliberate change of outcomes (a new ruleset version), never to make this test pass.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import sys
from datetime import date, timedelta
from pathlib import Path

if __name__ == "__main__":  # run as a script to (re)write the snapshot
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import app.intake  # noqa: F401  (loads the packages in the application's order, as pytest does)

import pytest

from app.triage.rules import ContextError, shipped_ruleset, validate_facts

REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "triage_engine_reference.json.gz"
GENERATOR_VERSION = 1
CLAIMS_PER_RULESET = {"eu-apr-2026": 3000, "unhcr-dcp": 1500}

COUNTRIES = ["SYR", "VEN", "AFG", "TUR", "COL", "BGD", "PAK", "GIN", "SDN", "UKR", "EGY", "MAR", "IRQ",
             "NGA", "SOM", "ERI", "IRN", "GEO", "PER", "TUN", "IND", "XKX", "CUB", "HTI"]
VULNERABILITIES = ["minor", "unaccompanied_minor", "disability", "elderly", "pregnant", "lgbtiq",
                   "single_parent_with_minor_children", "trafficking_victim", "serious_illness",
                   "mental_disorder_ptsd", "torture_rape_serious_violence", "gender_based_violence",
                   "fgm", "forced_marriage"]
LOCATIONS = ["inland", "border_crossing_point", "transit_zone", "apprehended_irregular_crossing",
             "disembarkation_sar", "relocation"]
CLAIM_GROUNDS = ["race", "religion", "nationality", "political_opinion", "particular_social_group",
                 "sexual_orientation_gender_identity", "generalised_violence", "economic_hardship"]
ALWAYS_TRUE_RULES = {"eu-apr-2026": {"track-regular"}, "unhcr-dcp": {"track-regular"}}  # `when: true`
MEMBER_STATES = ["ITA", "GRC", "ESP", "DEU", "SWE"]


def _maybe(rng: random.Random, value, p_none: float = 0.3):
    return None if rng.random() < p_none else value


def _tristate(rng: random.Random, p_true: float = 0.5):
    roll = rng.random()
    return None if roll < 0.2 else roll < 0.2 + 0.8 * p_true


def _day(rng: random.Random, value: date):
    """A date fact as the ISO string intake stores, or now and then as a ``date``."""
    return value if rng.random() < 0.15 else value.isoformat()


def _rate_entry(rng: random.Random):
    """A rate-table entry in one of the shapes the engine accepts, boundaries included."""
    shape = rng.random()
    if shape < 0.5:
        return rng.choice([0, 2.0, 4, 19.9, 20, 20.0, 20.1, 35.5, 49.9, 50, 50.1, 63, 89.9, 90, 100])
    if shape < 0.7:
        return {"rate_pct": rng.choice([5, 20, 20.1, 50, 90]), "source": "EUAA", "as_of": "2026-03-31"}
    total = rng.choice([0, 10, 1000, 2500])
    refugee = rng.randrange(0, total + 1) if total else 0
    subsidiary = rng.randrange(0, total - refugee + 1) if total else 0
    entry = {"refugee_status": refugee, "subsidiary_protection": subsidiary, "total_decisions": total}
    if rng.random() < 0.5:
        entry["humanitarian_status"] = total - refugee - subsidiary
    if rng.random() < 0.2 and total:  # exactly 20% and exactly 50%
        entry = {"refugee_status": total // 5, "subsidiary_protection": 0, "total_decisions": total}
    if rng.random() < 0.1 and total:
        entry = {"refugee_status": total // 4, "subsidiary_protection": total // 4, "total_decisions": total}
    return entry


def make_facts(rng: random.Random, decision_day: date) -> dict:
    """One valid, varied claim; roughly a third of the facts are left out (they read as defaults)."""
    made = decision_day - timedelta(days=rng.choice([0, 1, 5, 10, 20, 21, 22, 23, 30, 45, 90, 200]))
    registered = made + timedelta(days=rng.choice([0, 0, 1, 2, 3, 8]))
    nationality = rng.choice(COUNTRIES)
    stateless = rng.random() < 0.06
    age_roll = rng.random()
    if age_roll < 0.1:  # 18th birthday on the day the application was made, or the day after
        born = made.replace(year=made.year - 18) + timedelta(days=rng.choice([0, 1, -1]))
    elif age_roll < 0.13:
        born = date(rng.choice([2008, 2004, 2000]), 2, 29 if rng.random() < 0.5 else 28)
    elif age_roll < 0.3:
        born = made - timedelta(days=365 * rng.randrange(10, 18) + rng.randrange(365))
    else:
        born = made - timedelta(days=365 * rng.randrange(18, 80) + rng.randrange(365))
    lodged = _tristate(rng, 0.85)
    location = _maybe(rng, rng.choice(LOCATIONS), 0.15)
    facts = {
        "nationality": _maybe(rng, nationality, 0.05),
        "stateless": stateless,
        "former_habitual_residence": _maybe(rng, rng.choice(COUNTRIES), 0.2) if stateless else None,
        "date_of_birth": _maybe(rng, _day(rng, born), 0.08),
        "age_disputed": rng.random() < 0.08,
        "sex": rng.choice(["F", "M", "X", None]),
        "unaccompanied_minor": rng.random() < 0.12,
        "family_with_minor_children": rng.random() < 0.2,
        "children_ages": rng.sample(range(0, 18), rng.choice([0, 0, 1, 2])),
        "application_made_date": _maybe(rng, _day(rng, made), 0.05),
        "registration_date": _maybe(rng, _day(rng, registered), 0.05),
        "lodged": lodged,
        "lodging_date": _day(rng, registered + timedelta(days=rng.randrange(0, 30))) if lodged else None,
        "good_cause_for_not_lodging": _tristate(rng, 0.3),
        "location_context": location,
        "applied_at_border": _tristate(rng, 0.4),
        "fulfils_entry_conditions": _tristate(rng, 0.2),
        "authorised_to_enter": _tristate(rng, 0.2),
        "vulnerabilities": rng.sample(VULNERABILITIES, rng.choice([0, 0, 0, 1, 1, 2])),
        "special_procedural_guarantees_needed": rng.random() < 0.2,
        "adequate_support_available": _maybe(rng, {"border_location": _tristate(rng, 0.6),
                                                   "accelerated_procedure": _tristate(rng, 0.6)}, 0.2),
        "special_reception_needs_support_at_border": _tristate(rng, 0.8),
        "medical_reasons_against_border": rng.random() < 0.08,
        "detention_guarantees_met": _tristate(rng, 0.8),
        "previous_application": _maybe(rng, {"member_state": rng.choice(["SAME", "ITA"]),
                                             "decision": "rejected_unfounded", "final": _tristate(rng, 0.7),
                                             "new_elements": _tristate(rng, 0.4)}, 0.8),
        "eurodac_hit": _maybe(rng, {"member_state": rng.choice(MEMBER_STATES),
                                    "category": rng.choice(["applicant", "irregular_entry",
                                                            "beneficiary_of_international_protection"]),
                                    "hit_date": _maybe(
                                        rng, _day(rng, registered - timedelta(days=rng.randrange(0, 40))), 0.2)},
                             0.75),
        "family_member_in_other_member_state": _maybe(rng, {
            "member_state": rng.choice(MEMBER_STATES), "relation": "spouse", "legally_present": _tristate(rng),
            "reunification_in_best_interests": _tristate(rng, 0.6)}, 0.85),
        "international_protection_granted_by_member_state": _maybe(rng, rng.choice(MEMBER_STATES), 0.95),
        "first_country_of_asylum": _maybe(rng, {"country": "TUR",
                                                "effective_protection_still_available": _tristate(rng, 0.7),
                                                "readmission_possible": _tristate(rng, 0.7),
                                                "guarantee_for_uam": _tristate(rng, 0.3)}, 0.85),
        "safe_third_country": _maybe(rng, {"country": "SRB",
                                           "basis": rng.choice(["transit", "connection", "agreement"]),
                                           "assessed_safe_for_applicant": _tristate(rng, 0.7),
                                           "effective_protection_possible": _tristate(rng, 0.7),
                                           "readmission_possible": _tristate(rng, 0.7)}, 0.85),
        "return_decision": _maybe(rng, {
            "received_date": _maybe(rng, _day(rng, made - timedelta(days=rng.randrange(0, 20))), 0.1),
            "informed_of_consequences": _tristate(rng, 0.8)}, 0.85),
        "security_flag": rng.random() < 0.05,
        "documents_withheld_or_false": rng.random() < 0.12,
        "good_cause_shown": _tristate(rng, 0.3),
        "biometrics_refused": rng.random() < 0.05,
        "irregular_entry_date": _maybe(rng, _day(rng, made - timedelta(days=rng.randrange(0, 300))), 0.6),
        "presented_without_delay": _tristate(rng, 0.6),
        "only_irrelevant_issues": rng.random() < 0.06,
        "inconsistent_or_improbable_statements": rng.random() < 0.06,
        "applied_merely_to_delay_removal": rng.random() < 0.04,
        "claim_grounds": rng.sample(CLAIM_GROUNDS, rng.choice([0, 1, 1, 2, 3])),
        "safe_country_of_origin_designation": _maybe(rng, rng.choice(["EU_list", "national_list"]), 0.9),
        "sco_individual_rebuttal_elements": rng.random() < 0.15,
        "recognition_rate_for_nationality": rng.choice([0, 3.5, 19.99, 20, 20.0, 20.01, 49.9, 50, 75, 90, 100]),
        "significant_change_since_eurostat": rng.random() < 0.06,
        "category_not_representative": rng.random() < 0.06,
    }
    if rng.random() < 0.1:
        facts["claim_grounds"] = ["economic_hardship"]
    return {name: value for name, value in facts.items() if rng.random() > 0.3}


def make_context(rng: random.Random, ruleset_id: str, decision_day: date) -> dict:
    """Varied settings for one claim; ``decision_date`` is always given so results never depend
    on the day the test runs."""
    context = {"decision_date": _day(rng, decision_day)}
    if rng.random() < 0.4:
        context["minor_status_reference_date"] = rng.choice(["application_made", "decision_date"])
    if rng.random() < 0.7:
        context["recognition_rates"] = {code: _rate_entry(rng) for code in rng.sample(COUNTRIES, 12)}
    if ruleset_id == "eu-apr-2026":
        for flag in ("ms_applies_first_country_of_asylum", "ms_applies_safe_third_country",
                     "ms_applies_optional_border_procedure", "border_capacity_reached_art48",
                     "annual_border_maximum_reached_art50"):
            if rng.random() < 0.6:
                context[flag] = rng.random() < 0.5
        if rng.random() < 0.5:
            context["postponed_nationalities"] = rng.sample(COUNTRIES, rng.choice([0, 1, 3]))
        if rng.random() < 0.4:
            context["likely_well_founded_rate_pct"] = rng.choice([20, 49.9, 50, 60, 90])
        if rng.random() < 0.3:
            context["eu_safe_countries_of_origin"] = rng.sample(COUNTRIES, rng.choice([0, 3, 7]))
    else:
        for name in ("prima_facie_nationalities", "merged_registration_rsd_nationalities",
                     "simplified_nationalities"):
            if rng.random() < 0.6:
                context[name] = rng.sample(COUNTRIES, rng.choice([0, 2, 5]))
        if rng.random() < 0.5:
            context["simplified_recognition_rate_pct"] = rng.choice([None, 50, 90, 100])
        if rng.random() < 0.4:
            context["manifestly_unfounded_claim_grounds"] = rng.choice(
                [[], ["economic_hardship"], ["economic_hardship", "generalised_violence"]])
        if rng.random() < 0.4:
            context["prioritised_vulnerabilities"] = rng.sample(VULNERABILITIES, rng.choice([0, 3, 8]))
    return context


def generated_cases(ruleset_id: str, count: int, seed: int = 20261122):
    """``count`` (facts, context) pairs for ``ruleset_id``, the same on every run."""
    rng = random.Random(f"{seed}:{ruleset_id}:{GENERATOR_VERSION}")
    ruleset = shipped_ruleset(ruleset_id)
    cases = []
    for _ in range(count):
        decision_day = date(2026, 6, 12) + timedelta(days=rng.randrange(0, 500))
        facts = make_facts(rng, decision_day)
        context = make_context(rng, ruleset_id, decision_day)
        validate_facts(facts)  # the generator must only produce valid claims
        ruleset.validate_context(context)
        cases.append((facts, context))
    return cases


def _digest(facts: dict, context: dict) -> str:
    """A short fingerprint of one generated input: tells a changed generator from a changed engine."""
    text = json.dumps([facts, context], sort_keys=True, default=lambda d: f"date:{d.isoformat()}")
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def result_record(result) -> dict:
    """Everything a TriageResult carries, as plain JSON."""
    return {
        "track": result.track,
        "grounds": [[g.code, g.reason_code, g.legal_basis, g.rule_id, g.track] for g in result.grounds],
        "rules": list(result.rules),
        "ruleset": [result.ruleset_id, result.ruleset_version],
        "deadline": [result.deadline.date, result.deadline.description] if result.deadline else None,
        "facts_used": list(result.facts_used),
        "as_dict": result.to_dict(),
    }


def snapshot() -> dict:
    """The reference document: per ruleset, per generated claim, its fingerprint and result.
    Repeated values (a result's rule list, facts used...) are stored once in ``values``."""
    values: list = []
    index: dict[str, int] = {}

    def intern(value) -> int:
        key = json.dumps(value, sort_keys=True)
        if key not in index:
            index[key] = len(values)
            values.append(value)
        return index[key]

    document = {"generator_version": GENERATOR_VERSION, "values": values, "rulesets": {}}
    for ruleset_id, count in CLAIMS_PER_RULESET.items():
        ruleset = shipped_ruleset(ruleset_id)
        rows = []
        for facts, context in generated_cases(ruleset_id, count):
            record = result_record(ruleset.evaluate(facts, context))
            rows.append([_digest(facts, context)] + [intern(record[key]) for key in sorted(record)])
        document["rulesets"][ruleset_id] = rows
    return document


def _load_reference() -> dict:
    with gzip.open(REFERENCE, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def test_generated_claims_give_exactly_the_reference_results():
    """Every generated claim, on both shipped rulesets, gives the snapshot's track, grounds,
    rules, deadline, facts used, ruleset label and evaluate-format dictionary."""
    reference = _load_reference()
    assert reference["generator_version"] == GENERATOR_VERSION
    values = reference["values"]
    keys = sorted(result_record(shipped_ruleset("unhcr-dcp").evaluate({}, {"decision_date": "2026-07-01"})))
    for ruleset_id, count in CLAIMS_PER_RULESET.items():
        ruleset = shipped_ruleset(ruleset_id)
        rows = reference["rulesets"][ruleset_id]
        cases = generated_cases(ruleset_id, count)
        assert len(rows) == len(cases) == count
        differences = []
        for position, ((facts, context), row) in enumerate(zip(cases, rows, strict=True)):
            assert row[0] == _digest(facts, context), f"{ruleset_id}[{position}]: the generator changed"
            expected = {key: values[i] for key, i in zip(keys, row[1:], strict=True)}
            actual = json.loads(json.dumps(result_record(ruleset.evaluate(facts, context))))
            if actual != expected:
                differences.append((position, expected, actual))
        assert not differences, f"{ruleset_id}: {len(differences)} results differ, first: {differences[0]}"


def test_a_prepared_context_gives_the_same_results_as_the_plain_one():
    """``prepare_context`` (used by the replay and the re-triage dry run) changes nothing: every
    generated claim gives exactly the snapshot's result with its context prepared once."""
    reference = _load_reference()
    values = reference["values"]
    keys = sorted(result_record(shipped_ruleset("unhcr-dcp").evaluate({}, {"decision_date": "2026-07-01"})))
    for ruleset_id, count in CLAIMS_PER_RULESET.items():
        ruleset = shipped_ruleset(ruleset_id)
        for (facts, context), row in zip(generated_cases(ruleset_id, count), reference["rulesets"][ruleset_id],
                                         strict=True):
            prepared = ruleset.prepare_context(context)
            expected = {key: values[i] for key, i in zip(keys, row[1:], strict=True)}
            assert json.loads(json.dumps(result_record(ruleset.evaluate(facts, prepared)))) == expected


def test_a_prepared_context_belongs_to_its_ruleset():
    """An unknown setting is refused when preparing; a context prepared for one ruleset is, for
    another, an ordinary context (so its unknown settings are refused there too); "today" is
    fixed when preparing."""
    eu, unhcr = shipped_ruleset("eu-apr-2026"), shipped_ruleset("unhcr-dcp")
    with pytest.raises(ContextError) as error:
        eu.prepare_context({"prima_facie_nationalities": ["SYR"]})
    assert error.value.field == "prima_facie_nationalities"
    prepared = eu.prepare_context({"decision_date": "2026-07-01"})
    with pytest.raises(ContextError):
        unhcr.evaluate({}, prepared)
    assert eu.prepare_context()["decision_date"] == date.today()
    assert eu.evaluate({"lodged": False, "registration_date": "2026-06-01"}, prepared).track == "implicit_withdrawal"


def test_reference_exercises_every_rule_track_and_deadline_option():
    """The generated claims are varied enough to mean something: every rule of both rulesets
    matches at least once and fails to match at least once, every track wins at least once, and
    every deadline description of the default ruleset is produced."""
    reference = _load_reference()
    values = reference["values"]
    keys = sorted(result_record(shipped_ruleset("unhcr-dcp").evaluate({}, {"decision_date": "2026-07-01"})))
    for ruleset_id in CLAIMS_PER_RULESET:
        ruleset = shipped_ruleset(ruleset_id)
        records = [{key: values[i] for key, i in zip(keys, row[1:], strict=True)}
                   for row in reference["rulesets"][ruleset_id]]
        matched_somewhere = {rule for record in records for rule in record["rules"]}
        always = {rule.id for rule in ruleset.rules if all(rule.id in r["rules"] for r in records)}
        assert matched_somewhere == {rule.id for rule in ruleset.rules}
        assert always <= ALWAYS_TRUE_RULES[ruleset_id]
        assert {record["track"] for record in records} == {track.code for track in ruleset.tracks}
        if ruleset_id == "eu-apr-2026":
            produced = {record["deadline"][1] for record in records if record["deadline"]}
            described = {d for track in ruleset.tracks for d in track.time_limit_descriptions}
            postponed = {d for d in described if "postponed" in d}  # a "none" option: no deadline
            assert produced == described - postponed


if __name__ == "__main__":
    if "--write" not in sys.argv:
        sys.exit("usage: test_triage_engine_equivalence.py --write   (rewrites the reference snapshot)")
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(REFERENCE, "wt", encoding="utf-8", compresslevel=9) as handle:
        json.dump(snapshot(), handle, separators=(",", ":"))
    print(f"wrote {REFERENCE} ({REFERENCE.stat().st_size:,} bytes)")
