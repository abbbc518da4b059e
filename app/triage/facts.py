"""From a case to the flat facts vocabulary of TRIAGE.md ("Facts the rules read").

Pure: no Flask, no database. The service hands in the case's registration payload (the shape
of ``app.intake.services.registration_payload``: case data, ``arrival`` and ``persons``), the
caseworker's procedural assessment (``Case.assessment``) and the reference data it loaded
(recognition rates, safe countries of origin); this module returns one dict holding EVERY fact
of the vocabulary, so two triages of one case can be compared key by key.

How the registration maps (decisions a domain expert may want to revisit are marked *):
* The case is triaged on its principal applicant*: nationality, birth, family flags, special
  needs, biometrics, history, documents, claim and security come from the principal. Dependants
  contribute ``children_ages`` (dependants whose relationship is ``child``, age in whole years on
  the day the application was made; a child without a date of birth is not counted) and
  ``family_with_minor_children`` (one of those ages is under 18).
* ``nationality`` is the first nationality recorded; a stateless person has none, and
  ``former_habitual_residence`` stands in for it (here and in the rulesets).
* ``lodged`` is known at registration: false until a lodging date is recorded.
* ``applied_at_border`` is true for every location context except ``inland``.
* ``previous_application``: the most recent one, i.e. the last recorded (the form lists them
  oldest first).
* ``eurodac_hit``: the most relevant hit: a beneficiary of international protection first (the
  status is established), then an applicant hit (take back), then irregular entry (take charge);
  the latest hit within a category. Only hits and family members in a state bound by the AMMR
  count (EU Member States, Iceland, Liechtenstein, Norway, Switzerland)*.
* ``family_member_in_other_member_state``: one whose reunification is in the best interests
  first, then one legally present, else the first recorded.
* ``documents_withheld_or_false``: a document of the principal withheld, or judged false.
* ``safe_country_of_origin_designation`` and ``recognition_rate_for_nationality`` come from the
  reference data, for the country of origin (former habitual residence when stateless).
* The assessment facts (``ASSESSMENT_FACTS``) are what a caseworker establishes after
  registration; until then they are null ("not established"), which triggers nothing.
Facts the registration does not know stay null.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from app.intake.schemas import age_on
from app.triage.rules import FACT_DEFAULTS

#: Facts a caseworker or supervisor records after registration (``Case.assessment``).
ASSESSMENT_FACTS: tuple[str, ...] = (
    "only_irrelevant_issues",
    "inconsistent_or_improbable_statements",
    "applied_merely_to_delay_removal",
    "good_cause_shown",
    "special_reception_needs_support_at_border",
    "medical_reasons_against_border",
    "detention_guarantees_met",
    "sco_individual_rebuttal_elements",
    "significant_change_since_eurostat",
    "category_not_representative",
)

#: Facts taken from reference data rather than from the claim: refreshed when the data change.
REFERENCE_FACTS: tuple[str, ...] = ("recognition_rate_for_nationality", "safe_country_of_origin_designation")

#: States bound by the AMMR (EU Member States plus the four associated states), alpha-3.
AMMR_STATES = frozenset({
    "AUT", "BEL", "BGR", "HRV", "CYP", "CZE", "DNK", "EST", "FIN", "FRA", "DEU", "GRC", "HUN",
    "IRL", "ITA", "LVA", "LTU", "LUX", "MLT", "NLD", "POL", "PRT", "ROU", "SVK", "SVN", "ESP",
    "SWE", "ISL", "LIE", "NOR", "CHE",
})

_EURODAC_RANK = {"beneficiary_of_international_protection": 0, "applicant": 1, "irregular_entry": 2}


@dataclass(frozen=True)
class ReferenceData:
    """What the mapping reads from reference data: ``recognition_rates`` {alpha-3: percent} and
    ``safe_countries`` {alpha-3: "EU_list" | "national_list"}."""

    recognition_rates: Mapping[str, float] = field(default_factory=dict)
    safe_countries: Mapping[str, str] = field(default_factory=dict)


NO_REFERENCE_DATA = ReferenceData()


def _iso(value: Any) -> str | None:
    """A date as ISO text (stored sections hold strings; parsed input holds dates)."""
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _as_date(value: Any) -> date | None:
    text = _iso(value)
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _bool_or_none(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _section(person: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = person.get(name)
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else []


def principal_of(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """The principal applicant of a registration payload (the first person if none is marked)."""
    persons = [p for p in _list(payload.get("persons")) if isinstance(p, Mapping)]
    if not persons:
        return {}
    return next((p for p in persons if p.get("principal")), persons[0])


def country_of_origin(facts: Mapping[str, Any]) -> str | None:
    """The country a claim is assessed against: former habitual residence when stateless."""
    return facts.get("former_habitual_residence") if facts.get("stateless") else facts.get("nationality")


def _children(payload: Mapping[str, Any], principal: Mapping[str, Any], made_on: date | None) -> list[int]:
    ages = []
    for person in _list(payload.get("persons")):
        if person is principal or not isinstance(person, Mapping) or person.get("relationship") != "child":
            continue
        born = _as_date(_section(person, "birth").get("date_of_birth"))
        if born is not None and made_on is not None:
            # A child born after the application was made counts as a baby, never a negative age.
            ages.append(max(0, age_on(born, made_on)))
    return ages


def _previous_application(history: Mapping[str, Any]) -> dict | None:
    entries = [e for e in _list(history.get("previous_applications")) if isinstance(e, Mapping)]
    if not entries:
        return None
    latest = entries[-1]
    return {"member_state": latest.get("member_state"), "decision": latest.get("decision") or "unknown",
            "final": _bool_or_none(latest.get("final")), "new_elements": _bool_or_none(latest.get("new_elements"))}


def _eurodac_hit(biometrics: Mapping[str, Any]) -> dict | None:
    hits = [h for h in _list(biometrics.get("eurodac_hits"))
            if isinstance(h, Mapping) and h.get("category") in _EURODAC_RANK and h.get("member_state") in AMMR_STATES]
    if not hits:
        return None
    # Latest first (ISO dates sort as text; unknown dates last), then the best category: min()
    # keeps the first of equals, so it picks the latest hit of the best category.
    hits.sort(key=lambda h: _iso(h.get("hit_date")) or "", reverse=True)
    best = min(hits, key=lambda h: _EURODAC_RANK[h["category"]])
    return {"member_state": best["member_state"], "category": best["category"], "hit_date": _iso(best.get("hit_date"))}


def _family_member(family: Mapping[str, Any]) -> dict | None:
    members = [m for m in _list(family.get("members_elsewhere"))
               if isinstance(m, Mapping) and m.get("member_state") in AMMR_STATES]
    if not members:
        return None
    chosen = min(members, key=lambda m: (not m.get("reunification_in_best_interests"), not m.get("legally_present")))
    return {"member_state": chosen["member_state"], "relation": chosen.get("relationship") or "other",
            "legally_present": _bool_or_none(chosen.get("legally_present")),
            "reunification_in_best_interests": _bool_or_none(chosen.get("reunification_in_best_interests"))}


def _object(value: Any, keys: tuple[str, ...]) -> dict | None:
    if not isinstance(value, Mapping):
        return None
    return {key: value.get(key) for key in keys}


def _return_decision(history: Mapping[str, Any]) -> dict | None:
    decision = history.get("return_decision")
    if not isinstance(decision, Mapping):
        return None
    return {"received_date": _iso(decision.get("received_on")),
            "informed_of_consequences": _bool_or_none(decision.get("informed_of_consequences"))}


def _documents_withheld_or_false(documents: list) -> bool:
    return any(isinstance(d, Mapping) and (d.get("withheld") is True or d.get("authenticity") == "false")
               for d in documents)


def case_facts(payload: Mapping[str, Any], assessment: Mapping[str, Any] | None = None,
               reference: ReferenceData = NO_REFERENCE_DATA) -> dict[str, Any]:
    """Every fact of the vocabulary for one case (see the module docstring for the mapping).

    ``payload`` is a registration payload (dates as ISO text or ``date``), ``assessment`` the
    case's assessment facts (only ``ASSESSMENT_FACTS`` are read; anything else is ignored),
    ``reference`` the reference data. Unknown facts are null; list facts are lists. The result
    passes ``rules.validate_facts`` for any payload that passed registration's validation.
    """
    principal = principal_of(payload)
    birth = _section(principal, "birth")
    nationality = _section(principal, "nationality")
    family = _section(principal, "family")
    needs = _section(principal, "special_needs")
    support = needs.get("adequate_support") if isinstance(needs.get("adequate_support"), Mapping) else None
    biometrics = _section(principal, "biometrics")
    history = _section(principal, "history")
    arrival = payload.get("arrival") if isinstance(payload.get("arrival"), Mapping) else {}
    made_on = _as_date(payload.get("made_on"))
    lodged_on = _iso(payload.get("lodged_on"))
    stateless = nationality.get("stateless") is True
    nationalities = [n for n in _list(nationality.get("nationalities")) if isinstance(n, str)]
    location = arrival.get("location_context") or "inland"
    children = _children(payload, principal, made_on)

    facts: dict[str, Any] = dict.fromkeys(FACT_DEFAULTS)
    facts.update({
        "nationality": None if stateless or not nationalities else nationalities[0],
        "stateless": stateless,
        "former_habitual_residence": nationality.get("former_habitual_residence") or None,
        "date_of_birth": _iso(birth.get("date_of_birth")),
        "age_disputed": family.get("age_disputed") is True,
        "sex": birth.get("sex") or None,
        "unaccompanied_minor": family.get("unaccompanied_minor") is True,
        "family_with_minor_children": any(age < 18 for age in children),
        "children_ages": children,
        "application_made_date": _iso(payload.get("made_on")),
        "registration_date": _iso(payload.get("registered_on")),
        "lodged": lodged_on is not None,
        "lodging_date": lodged_on,
        "good_cause_for_not_lodging": None if lodged_on else payload.get("good_cause_for_not_lodging") is True,
        "location_context": location,
        "applied_at_border": location != "inland",
        "fulfils_entry_conditions": _bool_or_none(arrival.get("fulfils_entry_conditions")),
        "authorised_to_enter": _bool_or_none(arrival.get("authorised_to_enter")),
        "vulnerabilities": [v for v in _list(needs.get("vulnerabilities")) if isinstance(v, str)],
        "special_procedural_guarantees_needed": needs.get("special_procedural_guarantees_needed") is True,
        "adequate_support_available": None if support is None else {
            "border_location": _bool_or_none(support.get("border_location")),
            "accelerated_procedure": _bool_or_none(support.get("accelerated_procedure"))},
        "previous_application": _previous_application(history),
        "eurodac_hit": _eurodac_hit(biometrics),
        "family_member_in_other_member_state": _family_member(family),
        "international_protection_granted_by_member_state": history.get("protection_granted_by") or None,
        "first_country_of_asylum": _object(history.get("first_country_of_asylum"), (
            "country", "effective_protection_still_available", "readmission_possible", "guarantee_for_uam")),
        "safe_third_country": _object(history.get("safe_third_country"), (
            "country", "basis", "assessed_safe_for_applicant", "effective_protection_possible",
            "readmission_possible")),
        "return_decision": _return_decision(history),
        "security_flag": _section(principal, "security").get("flag") is True,
        "documents_withheld_or_false": _documents_withheld_or_false(_list(principal.get("documents"))),
        "biometrics_refused": biometrics.get("refused") is True,
        "irregular_entry_date": _iso(arrival.get("irregular_entry_date")),
        "presented_without_delay": _bool_or_none(arrival.get("presented_without_delay")),
        "claim_grounds": [g for g in _list(_section(principal, "claim").get("grounds")) if isinstance(g, str)],
    })
    for name in ASSESSMENT_FACTS:
        facts[name] = _bool_or_none((assessment or {}).get(name))
    return apply_reference_data(facts, reference)


def apply_reference_data(facts: Mapping[str, Any], reference: ReferenceData, *,
                         in_place: bool = False) -> dict[str, Any]:
    """A copy of ``facts`` with the reference-data facts (``REFERENCE_FACTS``) taken from
    ``reference`` for the country of origin: used when a case is triaged, and by a replay to
    bring stored facts up to today's reference data. ``in_place=True`` updates and returns
    ``facts`` itself (a dict the caller owns, e.g. just decoded): a replay does it per case."""
    updated = facts if in_place else dict(facts)
    origin = country_of_origin(facts)
    rate = reference.recognition_rates.get(origin) if origin else None
    updated["recognition_rate_for_nationality"] = None if rate is None else float(rate)
    updated["safe_country_of_origin_designation"] = reference.safe_countries.get(origin) if origin else None
    return updated


def _as_read(name: str, value: Any) -> Any:
    """A fact as the rules read it: absent or null is the default (false for flags), and a
    tuple compares like a list."""
    if value is None:
        value = FACT_DEFAULTS.get(name)
    return list(value) if isinstance(value, tuple) else value


def changed_facts(before: Mapping[str, Any] | None, after: Mapping[str, Any], names=None) -> list[str]:
    """Names of the facts (among ``names``, default all) whose value differs as the rules read
    it: an absent fact and a null flag read as their default, so they are no change."""
    before = before or {}
    keys = set(names) if names is not None else set(before) | set(after)
    return sorted(k for k in keys if _as_read(k, before.get(k)) != _as_read(k, after.get(k)))
