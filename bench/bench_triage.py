"""W3: throughput of the triage engine on one core (PERFORMANCE.md).

Generates a realistic, varied caseload of claim facts (nationality mix and rates from
shared/domain/STATISTICS.md, border arrivals, Eurodac hits, subsequent applications,
unaccompanied minors, vulnerabilities...), then measures claims/s of ``Ruleset.evaluate`` with
the full default ruleset, beside a baseline measured in the same run on the same facts: a bare
dict-copy loop (the least any per-claim step costs in Python). Prints a table: workload, figure,
baseline, ratio, target, pass/fail. A report, never a test: machines are noisy.

    .venv/bin/python bench/bench_triage.py [--claims 20000] [--repeat 5] [--seed 7]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.triage.rules import shipped_ruleset, validate_facts  # noqa: E402

TARGET_CLAIMS_PER_SECOND = 20_000     # W3, one core
RETRIAGE_CASES, RETRIAGE_LIMIT_S = 1_000_000, 120  # W3, re-triage dry run over 1M cases

# Share of applications and EU recognition rate (refugee + subsidiary, %), STATISTICS.md where
# given; the remaining countries carry illustrative rates so every branch of the ruleset is hit.
NATIONALITIES = [
    ("SYR", 16, 90.0), ("VEN", 8, 4.0), ("AFG", 8, 63.0), ("TUR", 6, 15.0), ("COL", 5, 6.0),
    ("BGD", 4, 3.0), ("PAK", 4, 12.0), ("GIN", 3, 30.0), ("SDN", 3, 70.0), ("UKR", 2, 80.0),
    ("EGY", 3, 5.0), ("MAR", 3, 3.0), ("IRQ", 4, 35.0), ("NGA", 3, 10.0), ("SOM", 3, 55.0),
    ("ERI", 2, 75.0), ("IRN", 3, 40.0), ("GEO", 2, 4.0), ("PER", 3, 8.0), ("TUN", 2, 2.0),
]
VULNERABILITIES = ["pregnant", "disability", "serious_illness", "mental_disorder_ptsd",
                   "torture_rape_serious_violence", "trafficking_victim", "lgbtiq", "elderly"]
BORDER_LOCATIONS = ["border_crossing_point", "transit_zone", "apprehended_irregular_crossing",
                    "disembarkation_sar", "relocation"]
CONTEXT = {
    "decision_date": "2026-09-01", "minor_status_reference_date": "application_made",
    "ms_applies_first_country_of_asylum": True, "ms_applies_safe_third_country": True,
    "ms_applies_optional_border_procedure": True, "border_capacity_reached_art48": False,
    "annual_border_maximum_reached_art50": False, "postponed_nationalities": ["SDN"],
    "likely_well_founded_rate_pct": 50,
    "eu_safe_countries_of_origin": ["BGD", "COL", "EGY", "IND", "XKX", "MAR", "TUN"],
    "recognition_rates": {code: rate for code, _, rate in NATIONALITIES},
}


def make_claim(rng: random.Random) -> dict:
    """One claim's facts, shaped like a registration record mapped onto the triage vocabulary."""
    codes, weights = zip(*[(code, share) for code, share, _ in NATIONALITIES], strict=True)
    nationality = rng.choices(codes, weights)[0]
    made = date(2026, 6, 12) + timedelta(days=rng.randrange(70))
    registered = made + timedelta(days=rng.choice([0, 1, 2, 3, 5, 8]))
    lodged = rng.random() > 0.05
    unaccompanied = rng.random() < 0.04
    age = rng.choice([16, 17, 15]) if unaccompanied else rng.randrange(18, 65)
    at_border = rng.random() < 0.3
    stateless = rng.random() < 0.01
    facts = {
        "nationality": None if stateless else nationality,
        "stateless": stateless,
        "former_habitual_residence": nationality if stateless else None,
        "date_of_birth": (made - timedelta(days=365 * age + rng.randrange(365))).isoformat(),
        "age_disputed": unaccompanied and rng.random() < 0.3,
        "sex": rng.choice("MMMF"),
        "unaccompanied_minor": unaccompanied,
        "family_with_minor_children": rng.random() < 0.2,
        "children_ages": [],
        "application_made_date": made.isoformat(),
        "registration_date": registered.isoformat(),
        "lodged": lodged,
        "lodging_date": (registered + timedelta(days=rng.randrange(1, 15))).isoformat() if lodged else None,
        "good_cause_for_not_lodging": None if lodged else rng.random() < 0.3,
        "location_context": rng.choice(BORDER_LOCATIONS) if at_border else "inland",
        "applied_at_border": at_border,
        "fulfils_entry_conditions": False if at_border else None,
        "authorised_to_enter": False if at_border else None,
        "vulnerabilities": rng.sample(VULNERABILITIES, 1) if rng.random() < 0.2 else [],
        "special_procedural_guarantees_needed": rng.random() < 0.1,
        "adequate_support_available": {"border_location": rng.random() > 0.2,
                                       "accelerated_procedure": rng.random() > 0.1},
        "special_reception_needs_support_at_border": rng.random() > 0.1,
        "medical_reasons_against_border": rng.random() < 0.03,
        "detention_guarantees_met": rng.random() > 0.05,
        "previous_application": None,
        "eurodac_hit": None,
        "family_member_in_other_member_state": None,
        "international_protection_granted_by_member_state": "DEU" if rng.random() < 0.01 else None,
        "first_country_of_asylum": None,
        "safe_third_country": None,
        "return_decision": None,
        "security_flag": rng.random() < 0.005,
        "documents_withheld_or_false": rng.random() < 0.05,
        "good_cause_shown": None,
        "biometrics_refused": rng.random() < 0.01,
        "irregular_entry_date": (made - timedelta(days=rng.randrange(200))).isoformat() if rng.random() < 0.3 else None,
        "presented_without_delay": rng.random() > 0.2,
        "only_irrelevant_issues": rng.random() < 0.03,
        "claim_grounds": rng.sample(["political_opinion", "religion", "race", "particular_social_group",
                                     "generalised_violence", "economic_hardship"], rng.randint(1, 2)),
        "safe_country_of_origin_designation": None,
        "sco_individual_rebuttal_elements": rng.random() < 0.1,
        "significant_change_since_eurostat": False,
        "category_not_representative": rng.random() < 0.02,
    }
    if rng.random() < 0.5:  # half the records carry the rate, the rest rely on the context table
        facts["recognition_rate_for_nationality"] = CONTEXT["recognition_rates"][nationality]
    if rng.random() < 0.15:
        facts["eurodac_hit"] = {"member_state": rng.choice(["ITA", "GRC", "ESP", "DEU"]),
                                "category": rng.choice(["applicant", "irregular_entry", "irregular_entry"]),
                                "hit_date": registered.isoformat()}
    if rng.random() < 0.10:
        facts["previous_application"] = {"member_state": "SAME", "decision": "rejected_unfounded",
                                         "final": rng.random() < 0.8, "new_elements": rng.random() < 0.4}
    if rng.random() < 0.03:
        facts["family_member_in_other_member_state"] = {"member_state": "SWE", "relation": "spouse",
                                                        "legally_present": True,
                                                        "reunification_in_best_interests": True}
    if rng.random() < 0.03:
        facts["return_decision"] = {"received_date": (made - timedelta(days=rng.randrange(3, 40))).isoformat(),
                                    "informed_of_consequences": True}
    if rng.random() < 0.03:
        facts["safe_third_country"] = {"country": "SRB", "basis": rng.choice(["transit", "agreement"]),
                                       "assessed_safe_for_applicant": True, "effective_protection_possible": True,
                                       "readmission_possible": rng.random() < 0.5}
    if rng.random() < 0.02:
        facts["first_country_of_asylum"] = {"country": "TUR", "effective_protection_still_available": True,
                                            "readmission_possible": True, "guarantee_for_uam": False}
    return facts


def best_rate(run, items, repeat: int) -> float:
    """Items per second of the fastest of ``repeat`` timed runs (after one warm-up)."""
    run(items)
    fastest = min(_timed(run, items) for _ in range(repeat))
    return len(items) / fastest


def _timed(run, items) -> float:
    started = time.perf_counter()
    run(items)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):  # one core, as W3 states
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    rng = random.Random(args.seed)
    claims = [make_claim(rng) for _ in range(args.claims)]
    for facts in claims:
        validate_facts(facts)  # the generator must produce valid records

    def baseline(items):
        for facts in items:
            dict(facts)

    rows = []
    baseline_rate = best_rate(baseline, claims, args.repeat)
    for name in ("eu-apr-2026", "unhcr-dcp"):
        ruleset = shipped_ruleset(name)

        def evaluate(items, ruleset=ruleset):
            for facts in items:
                ruleset.evaluate(facts, CONTEXT if ruleset.id == "eu-apr-2026" else None)
        rows.append((f"W3 evaluate, {name}", best_rate(evaluate, claims, args.repeat)))

    eu = shipped_ruleset("eu-apr-2026")

    def validate_and_evaluate(items):
        for facts in items:
            validate_facts(facts)
            eu.evaluate(facts, CONTEXT)
    rows.append(("W3 validate + evaluate, eu-apr-2026", best_rate(validate_and_evaluate, claims, args.repeat)))

    tracks: dict[str, int] = {}
    for facts in claims:
        track = eu.evaluate(facts, CONTEXT).track
        tracks[track] = tracks.get(track, 0) + 1

    print(f"{args.claims} varied claims, best of {args.repeat}, Python {sys.version.split()[0]}, one core")
    print("track mix: " + ", ".join(f"{t} {100 * n / args.claims:.1f}%" for t, n in sorted(tracks.items())))
    row = "{:40} {:>10} {:>11} {:>7} {:>10}  {}"
    header = row.format("workload", "claims/s", "baseline/s", "ratio", "target", "result")
    print(header)
    print("-" * len(header))
    for workload, rate in rows:
        verdict = "pass" if rate >= TARGET_CLAIMS_PER_SECOND else "FAIL"
        print(row.format(workload, f"{rate:,.0f}", f"{baseline_rate:,.0f}", f"{rate / baseline_rate:.4f}",
                         f"{TARGET_CLAIMS_PER_SECOND:,}", verdict))
    retriage_s = RETRIAGE_CASES / rows[0][1]
    verdict = "pass" if retriage_s <= RETRIAGE_LIMIT_S else "FAIL"
    print(row.format("W3 re-triage dry run, 1M cases (s)", f"{retriage_s:,.1f}", "", "", RETRIAGE_LIMIT_S, verdict))
    print("ratio = engine claims/s / dict-copy claims/s over the same facts, same run")


if __name__ == "__main__":
    main()
