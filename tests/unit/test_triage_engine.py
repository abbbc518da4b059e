"""The triage engine itself: ruleset loading and its errors, the condition/value language,
date arithmetic, fact validation, the batch format and the module's purity."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import yaml

from app.triage import rules
from app.triage.rules import (
    FACT_DEFAULTS,
    ContextError,
    FactError,
    RulesetError,
    evaluate_batch,
    load_ruleset,
    load_ruleset_file,
    recognition_rate_pct,
    shipped_ruleset,
    shipped_ruleset_names,
    validate_facts,
)

RULES_SOURCE = Path(rules.__file__)
RATE = "recognition_rate_for_nationality"
EXAMPLES = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "triage-examples.json")
                      .read_text(encoding="utf-8"))


def tiny_ruleset(when, *, derived=None, context=None, time_limit=None, extra_rules=()):
    """A two-track ruleset whose only ground rule ``hit`` has condition ``when``."""
    return load_ruleset({
        "id": "tiny", "version": "1", "default_track": "miss",
        "tracks": [{"code": "hit", "precedence": 1, "time_limit": time_limit},
                   {"code": "miss", "precedence": 2}],
        "context": context or {}, "derived": derived or {},
        "rules": [{"id": "hit", "legal_basis": "Test 1", "reason_code": "HIT", "ground": "hit", "track": "hit",
                   "when": when},
                  {"id": "route-hit", "legal_basis": "Test 2", "reason_code": "ROUTE", "track": "hit",
                   "when": {"any_ground": "hit"}},
                  *extra_rules],
    })


def matches(ruleset, facts=None, context=None):
    return ruleset.evaluate(facts or {}, context).track == "hit"


# ---- shipped rulesets ---------------------------------------------------------------------------
def test_both_shipped_rulesets_load_with_their_tracks():
    """eu-apr-2026 and unhcr-dcp load, compile and declare the tracks TRIAGE.md names."""
    assert shipped_ruleset_names() == ("eu-apr-2026", "unhcr-dcp")
    eu, unhcr = shipped_ruleset("eu-apr-2026"), shipped_ruleset("unhcr-dcp")
    assert [t.code for t in eu.tracks] == ["implicit_withdrawal", "responsibility", "inadmissibility", "border",
                                           "border_optional", "accelerated", "regular_prioritised", "regular"]
    assert {t.code for t in unhcr.tracks} == {"prioritised", "accelerated", "simplified", "merged_registration_rsd",
                                              "group_based_prima_facie", "regular"}
    assert eu.label == "eu-apr-2026@2026.1.0"


@pytest.mark.parametrize("name", ["eu-apr-2026", "unhcr-dcp"])
def test_every_shipped_rule_has_legal_basis_and_reason_code(name):
    """Every rule of a shipped ruleset carries a legal basis and an upper-case reason code."""
    ruleset = shipped_ruleset(name)
    for rule in ruleset.rules:
        assert rule.legal_basis.strip(), rule.id
        assert rule.reason_code.isupper() and " " not in rule.reason_code, rule.id


def test_shipped_ruleset_is_compiled_once():
    """shipped_ruleset returns the same compiled object on every call."""
    assert shipped_ruleset("eu-apr-2026") is shipped_ruleset("eu-apr-2026")


@pytest.mark.parametrize("name", ["eu-apr-2027", "../rulesets/eu-apr-2026", ""])
def test_unknown_or_path_like_ruleset_name_is_refused(name):
    """Only shipped names resolve; anything path-like is refused."""
    with pytest.raises(RulesetError, match="no shipped ruleset"):
        shipped_ruleset(name)


def test_json_ruleset_file_behaves_like_yaml(tmp_path):
    """The same document as JSON routes every worked example like the shipped YAML."""
    document = yaml.safe_load((rules.RULESETS_DIR / "eu-apr-2026.yaml").read_text(encoding="utf-8"))
    path = tmp_path / "eu.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    from_json = load_ruleset_file(path)
    assert evaluate_batch(EXAMPLES, from_json) == evaluate_batch(EXAMPLES, "eu-apr-2026")


def test_invalid_yaml_file_is_a_ruleset_error(tmp_path):
    """A YAML syntax error is reported as RulesetError naming the file."""
    path = tmp_path / "broken.yaml"
    path.write_text("id: x\nrules: [\n", encoding="utf-8")
    with pytest.raises(RulesetError, match="broken.yaml"):
        load_ruleset_file(path)


# ---- ruleset document errors ---------------------------------------------------------------------
@pytest.mark.parametrize("when, message", [
    ({"fact": "favourite_colour", "op": "eq", "value": "red"}, "unknown fact 'favourite_colour'"),
    ({"fact": "eurodac_hit.colour"}, "fact 'eurodac_hit' has no key 'colour'"),
    ({"fact": "security_flag", "op": "roughly", "value": 1}, "unknown op 'roughly'"),
    ({"fact": "security_flag", "op": "eq"}, "needs exactly one of value, ref"),
    ({"fact": "security_flag", "op": "truthy", "value": True}, "takes no value"),
    ({"ctx": "no_such_setting"}, "unknown context setting 'no_such_setting'"),
    ({"derived": "no_such_value"}, "unknown derived value 'no_such_value'"),
    ({"rule": "no-such-rule"}, "unknown rule 'no-such-rule'"),
    ({"any_ground": "no_such_track"}, "unknown track 'no_such_track'"),
    ({"all": []}, "non-empty list"),
    ({"all": [True], "any": [True]}, "must be the only key"),
    ({"fact": "security_flag", "color": 1}, "unknown keys"),
    ("security_flag", "a condition is true, false or a mapping"),
    ({"left": {"eval": "1+1"}, "op": "truthy"}, "unknown value form 'eval'"),
])
def test_malformed_conditions_are_rejected_at_load_naming_the_place(when, message):
    """Bad names, ops and shapes fail at load time with a message naming the rule and problem."""
    with pytest.raises(RulesetError, match="rules\\[hit\\]") as error:
        tiny_ruleset(when)
    assert message in str(error.value)


def test_membership_test_on_a_list_fact_is_rejected_at_load():
    """'in' on a list-valued fact is a ruleset mistake caught at load, pointing to contains/intersects."""
    with pytest.raises(RulesetError, match="use contains, intersects or subset_of"):
        tiny_ruleset({"fact": "vulnerabilities", "op": "in", "value": ["fgm"]})


def test_context_defaults_cannot_be_mutated_by_callers():
    """context_defaults hands out immutable lists and tables, so no caller can change the ruleset."""
    ruleset = shipped_ruleset("eu-apr-2026")
    defaults = ruleset.context_defaults
    defaults["likely_well_founded_rate_pct"] = 0
    assert ruleset.context_defaults["likely_well_founded_rate_pct"] == 50
    with pytest.raises(AttributeError):
        defaults["eu_safe_countries_of_origin"].append("SYR")
    with pytest.raises(TypeError):
        defaults["recognition_rates"]["SYR"] = 1


def test_reference_cycles_between_rules_are_rejected():
    """Rules reading each other in a cycle are refused at load."""
    with pytest.raises(RulesetError, match="cycle"):
        tiny_ruleset({"rule": "other"}, extra_rules=[
            {"id": "other", "legal_basis": "x", "reason_code": "X", "when": {"rule": "hit"}}])


def test_reference_cycles_between_derived_values_are_rejected():
    """Derived values defined in terms of each other are refused at load."""
    with pytest.raises(RulesetError, match="derived: cycle"):
        tiny_ruleset({"derived": "a"}, derived={"a": {"derived": "b"}, "b": {"derived": "a"}})


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["rules"][0].pop("legal_basis"), "missing legal_basis"),
    (lambda d: d["rules"][0].pop("track"), "a ground names the track it supports"),
    (lambda d: d["rules"].append(dict(d["rules"][0])), "duplicate rule id"),
    (lambda d: d.update(version=2026.1), "quote it as a string"),
    (lambda d: d.update(default_track="nowhere"), "default_track: unknown track"),
    (lambda d: d["tracks"][1].update(precedence=1), "duplicate code or precedence"),
    (lambda d: d.update(colour="red"), "unknown keys colour"),
    (lambda d: d["context"].update(x={"type": "colour", "default": 1}), "context.x.type"),
    (lambda d: d["context"].update(x={"type": "bool", "default": "yes"}), "context.x.default"),
    (lambda d: d["tracks"][0].update(time_limit={"from": {"fact": "lodging_date"}, "description": "d"}),
     "exactly one of"),
])
def test_malformed_documents_are_rejected(mutate, message):
    """Missing legal basis, groundless tracks, duplicates, numeric versions etc. fail at load."""
    document = {
        "id": "tiny", "version": "1", "default_track": "miss", "context": {},
        "tracks": [{"code": "hit", "precedence": 1}, {"code": "miss", "precedence": 2}],
        "rules": [{"id": "hit", "legal_basis": "Test", "reason_code": "HIT", "ground": "g", "track": "hit",
                   "when": True}],
    }
    mutate(document)
    with pytest.raises(RulesetError, match=message.replace("(", "\\(")):
        load_ruleset(document)


# ---- the condition and value language -------------------------------------------------------------
@pytest.mark.parametrize("condition, facts, expected", [
    ({"fact": "nationality", "op": "eq", "value": "SYR"}, {"nationality": "SYR"}, True),
    ({"fact": "nationality", "op": "ne", "value": "SYR"}, {"nationality": "SYR"}, False),
    ({"fact": "nationality", "op": "in", "value": ["SYR", "AFG"]}, {"nationality": "AFG"}, True),
    ({"fact": "nationality", "op": "in", "value": ["SYR", "AFG"]}, {}, False),
    ({"fact": RATE, "op": "lt", "value": 20}, {RATE: 20}, False),
    ({"fact": RATE, "op": "le", "value": 20}, {RATE: 20}, True),
    ({"fact": RATE, "op": "gt", "value": 20}, {RATE: 21}, True),
    ({"fact": RATE, "op": "ge", "value": 20}, {RATE: 19}, False),
    ({"fact": RATE, "op": "le", "value": 20}, {}, False),
    ({"not": {"fact": RATE, "op": "gt", "value": 20}}, {}, True),
    ({"fact": "vulnerabilities", "op": "contains", "value": "fgm"}, {"vulnerabilities": ["fgm"]}, True),
    ({"fact": "vulnerabilities", "op": "intersects", "value": ["fgm", "elderly"]}, {"vulnerabilities": ["elderly"]},
     True),
    ({"fact": "vulnerabilities", "op": "intersects", "value": ["fgm"]}, {"vulnerabilities": ["elderly"]}, False),
    ({"fact": "claim_grounds", "op": "subset_of", "value": ["economic_hardship"]}, {"claim_grounds": []}, False),
    ({"fact": "claim_grounds", "op": "subset_of", "value": ["economic_hardship", "race"]},
     {"claim_grounds": ["race"]}, True),
    ({"fact": "eurodac_hit.category", "op": "eq", "value": "applicant"}, {"eurodac_hit": None}, False),
    ({"fact": "eurodac_hit.hit_date", "op": "is_null"}, {"eurodac_hit": {"category": "applicant"}}, True),
    ({"not": {"fact": "eurodac_hit.category", "op": "in", "value": ["applicant"]}}, {}, True),
    ({"fact": "lodged", "op": "eq", "value": False}, {}, False),
    ({"fact": "security_flag", "op": "eq", "value": False}, {}, True),
    ({"fact": "security_flag"}, {"security_flag": True}, True),
    ({"fact": "vulnerabilities"}, {}, False),
    ({"any": [False, {"fact": "security_flag"}]}, {"security_flag": True}, True),
    ({"all": [True, {"not": {"fact": "security_flag"}}]}, {"security_flag": True}, False),
    ({"left": {"days_between": {"from": {"fact": "registration_date"}, "to": {"fact": "lodging_date"}}},
      "op": "eq", "value": 31}, {"registration_date": "2026-01-31", "lodging_date": "2026-03-03"}, True),
    ({"left": {"coalesce": [{"fact": "nationality"}, {"value": "XXX"}]}, "op": "eq", "value": "XXX"}, {}, True),
    ({"left": {"if": {"fact": "stateless"}, "then": {"value": 1}, "else": {"value": 2}}, "op": "eq", "value": 1},
     {"stateless": True}, True),
])
def test_condition_operators(condition, facts, expected):
    """Each operator, negation and value form evaluates as documented; unknown (null) sides are false."""
    assert matches(tiny_ruleset(condition), facts) is expected


def test_date_facts_compare_as_dates_whether_given_as_strings_or_dates():
    """Date facts may arrive as ISO strings or datetime.date; comparisons see the same dates."""
    ruleset = tiny_ruleset({"fact": "lodging_date", "op": "ge", "ref": {"fact": "registration_date"}})
    assert matches(ruleset, {"lodging_date": "2026-07-03", "registration_date": date(2026, 7, 2)})
    assert not matches(ruleset, {"lodging_date": date(2026, 7, 1), "registration_date": "2026-07-02"})


def test_context_reference_and_lookup():
    """ref reads a context setting; lookup reads a context table by a computed key."""
    ruleset = tiny_ruleset(
        {"left": {"lookup": {"in": {"ctx": "table"}, "key": {"fact": "nationality"}}}, "op": "ge",
         "ref": {"ctx": "threshold"}},
        context={"table": {"type": "rate_table", "default": {"SYR": 90}},
                 "threshold": {"type": "number", "default": 50}})
    assert matches(ruleset, {"nationality": "SYR"})
    assert not matches(ruleset, {"nationality": "SYR"}, {"threshold": 95})
    assert not matches(ruleset, {"nationality": "AFG"})


class CountingFacts(dict):
    """Facts that count how often each one is read."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reads = {}

    def get(self, key, default=None):
        self.reads[key] = self.reads.get(key, 0) + 1
        return super().get(key, default)


def test_derived_values_are_computed_once_per_evaluation():
    """A derived value read by several rules is computed once per evaluation, not per read."""
    ruleset = tiny_ruleset({"all": [{"derived": "adult"}, {"not": {"derived": "adult", "op": "is_null"}}]},
                           derived={"adult": {"left": {"age_on": {"birth": {"fact": "date_of_birth"},
                                                                  "at": {"value": "2026-01-01"}}},
                                              "op": "ge", "value": 18}},
                           extra_rules=[{"id": "again", "legal_basis": "x", "reason_code": "X",
                                         "when": {"derived": "adult"}}])
    facts = CountingFacts(date_of_birth="2000-01-01")
    result = ruleset.evaluate(facts)
    assert result.rules == ("hit", "route-hit", "again")
    assert facts.reads == {"date_of_birth": 1}


@pytest.mark.parametrize("unit, amount, start, expected", [
    ("days", 10, "2026-07-03", "2026-07-13"),
    ("weeks", 12, "2026-07-02", "2026-09-24"),
    ("months", 1, "2026-01-31", "2026-02-28"),
    ("months", 6, "2027-08-31", "2028-02-29"),
    ("working_days", 1, "2026-07-03", "2026-07-06"),
    ("working_days", 10, "2026-07-03", "2026-07-17"),
])
def test_time_limit_units(unit, amount, start, expected):
    """Deadlines add days, weeks, months (clamped to month end) and working days (no weekends)."""
    ruleset = tiny_ruleset(True, time_limit={"from": {"fact": "lodging_date"}, unit: amount, "description": "d"})
    deadline = ruleset.evaluate({"lodging_date": start}).deadline
    assert (deadline.date, deadline.description) == (expected, "d")


def test_time_limit_options_and_unknown_anchor():
    """The first option whose condition holds decides; 'none' or an unknown anchor gives no deadline."""
    ruleset = tiny_ruleset(True, time_limit=[
        {"when": {"fact": "security_flag"}, "none": True, "description": "none"},
        {"from": {"fact": "lodging_date"}, "days": 1, "description": "one day"}])
    assert ruleset.evaluate({"lodging_date": "2026-07-03"}).deadline.date == "2026-07-04"
    assert ruleset.evaluate({"lodging_date": "2026-07-03", "security_flag": True}).deadline is None
    assert ruleset.evaluate({}).deadline is None


@pytest.mark.parametrize("start, end, expected", [
    ("2026-07-03", "2026-07-06", 1),   # Friday -> Monday
    ("2026-07-03", "2026-07-04", 0),   # Friday -> Saturday
    ("2026-07-03", "2026-07-14", 7),
    ("2026-07-03", "2026-07-15", 8),
    ("2026-07-06", "2026-07-03", -1),
    ("2026-07-01", "2026-07-01", 0),
])
def test_working_days_between_excludes_weekends(start, end, expected):
    """Working days count Monday-Friday days after the start up to and including the end."""
    ruleset = tiny_ruleset({"left": {"working_days_between": {"from": {"fact": "registration_date"},
                                                              "to": {"fact": "lodging_date"}}},
                            "op": "eq", "value": expected})
    assert matches(ruleset, {"registration_date": start, "lodging_date": end})


@pytest.mark.parametrize("birth, on, age", [
    ("2008-07-01", "2026-07-01", 18), ("2008-07-02", "2026-07-01", 17),
    ("2008-02-29", "2026-02-28", 17), ("2008-02-29", "2026-03-01", 18),
])
def test_age_in_whole_years_including_leap_day_birthdays(birth, on, age):
    """Age turns on the birthday itself; a 29 February birthday turns on 1 March."""
    ruleset = tiny_ruleset({"left": {"age_on": {"birth": {"fact": "date_of_birth"},
                                                "at": {"fact": "application_made_date"}}},
                            "op": "eq", "value": age})
    assert matches(ruleset, {"date_of_birth": birth, "application_made_date": on})


@pytest.mark.parametrize("entry, rate", [
    (12.5, 12.5), ({"rate_pct": 63}, 63.0),
    ({"refugee_status": 150, "subsidiary_protection": 50, "total_decisions": 1000}, 20.0),
    ({"refugee_status": 30, "subsidiary_protection": 10, "humanitarian_status": 850, "total_decisions": 1000}, 4.0),
    ({"total_decisions": 0}, None), (None, None),
])
def test_recognition_rate_counts_refugee_and_subsidiary_only(entry, rate):
    """Rates count refugee + subsidiary protection over all decisions, never humanitarian status."""
    assert recognition_rate_pct(entry) == rate


# ---- fact validation ----------------------------------------------------------------------------
@pytest.mark.parametrize("example", EXAMPLES, ids=[example["id"] for example in EXAMPLES])
def test_worked_example_facts_are_valid(example):
    """Every worked example passes validate_facts unchanged."""
    assert validate_facts(example["facts"]) == {**FACT_DEFAULTS, **example["facts"]}


@pytest.mark.parametrize("facts, field, message", [
    ({"favourite_colour": "red"}, "favourite_colour", "unknown fact"),
    ({"nationality": "tur"}, "nationality", "3 uppercase letters"),
    ({"nationality": "TURK"}, "nationality", "3 uppercase letters"),
    ({"former_habitual_residence": 12}, "former_habitual_residence", "alpha-3"),
    ({"date_of_birth": "01/07/2008"}, "date_of_birth", "ISO date"),
    ({"lodging_date": "2026-02-30"}, "lodging_date", "ISO date"),
    ({"registration_date": "20260701"}, "registration_date", "ISO date"),
    ({"sex": "male"}, "sex", "one of F, M, X"),
    ({"location_context": "airport"}, "location_context", "one of"),
    ({"vulnerabilities": ["minor", "sad"]}, "vulnerabilities[1]", "unknown code 'sad'"),
    ({"vulnerabilities": "minor"}, "vulnerabilities", "must be a list"),
    ({"claim_grounds": ["Political Opinion"]}, "claim_grounds[0]", "snake_case"),
    ({"children_ages": [4, -1]}, "children_ages[1]", "age in whole years"),
    ({"children_ages": [True]}, "children_ages[0]", "age in whole years"),
    ({"security_flag": "yes"}, "security_flag", "true, false or null"),
    ({"lodged": 1}, "lodged", "true, false or null"),
    ({"recognition_rate_for_nationality": 120}, "recognition_rate_for_nationality", "between 0 and 100"),
    ({"recognition_rate_for_nationality": True}, "recognition_rate_for_nationality", "percentage"),
    ({"eurodac_hit": {"category": "tourist"}}, "eurodac_hit.category", "one of applicant"),
    ({"eurodac_hit": {"member_state": "IT"}}, "eurodac_hit.member_state", "alpha-3"),
    ({"eurodac_hit": {"colour": "red"}}, "eurodac_hit.colour", "unknown key"),
    ({"eurodac_hit": "ITA"}, "eurodac_hit", "object or null"),
    ({"safe_third_country": {"basis": "treaty"}}, "safe_third_country.basis", "agreement, connection, transit"),
    ({"safe_country_of_origin_designation": "eu_list"}, "safe_country_of_origin_designation", "EU_list"),
    ({"previous_application": {"member_state": "same"}}, "previous_application.member_state", "SAME"),
    ({"return_decision": {"received_date": "yesterday"}}, "return_decision.received_date", "ISO date"),
    ({"adequate_support_available": {"border_location": "no"}}, "adequate_support_available.border_location",
     "true, false or null"),
    ({"vulnerabilities": None}, "vulnerabilities", "must not be null"),
])
def test_invalid_facts_raise_fact_error_naming_the_field(facts, field, message):
    """validate_facts rejects unknown facts, wrong types, bad dates and bad codes, naming the field."""
    with pytest.raises(FactError) as error:
        validate_facts(facts)
    assert error.value.field == field
    assert message in str(error.value)
    assert isinstance(error.value, ValueError)


def test_fact_errors_are_all_collected():
    """Every invalid fact is reported at once, the first one in ``field``."""
    with pytest.raises(FactError) as error:
        validate_facts({"nationality": "x", "sex": "male", "lodging_date": "soon"})
    assert error.value.field == "nationality"
    assert [field for field, _ in error.value.errors] == ["nationality", "sex", "lodging_date"]


def test_missing_facts_are_filled_with_documented_defaults():
    """Absent facts default to false (flags), null (dates, codes, tri-state bools) or [] (lists)."""
    complete = validate_facts({"nationality": "SYR", "date_of_birth": date(1990, 1, 1)})
    assert complete["nationality"] == "SYR"
    assert complete["security_flag"] is False and complete["stateless"] is False
    assert complete["lodged"] is None and complete["authorised_to_enter"] is None
    assert complete["presented_without_delay"] is None and complete["detention_guarantees_met"] is None
    assert complete["vulnerabilities"] == () and complete["claim_grounds"] == ()
    assert complete["eurodac_hit"] is None and complete["recognition_rate_for_nationality"] is None
    assert set(complete) == set(FACT_DEFAULTS)


def test_not_a_mapping_is_a_fact_error():
    """Facts must be a mapping."""
    with pytest.raises(FactError) as error:
        validate_facts(["nationality", "SYR"])
    assert error.value.field == "facts"


# ---- context validation and batch ---------------------------------------------------------------
@pytest.mark.parametrize("context, field", [
    ({"decision_date": "15/07/2026"}, "decision_date"),
    ({"likely_well_founded_rate_pct": "50"}, "likely_well_founded_rate_pct"),
    ({"minor_status_reference_date": "registration"}, "minor_status_reference_date"),
    ({"eu_safe_countries_of_origin": ["bgd"]}, "eu_safe_countries_of_origin"),
    ({"recognition_rates": {"SYR": 190}}, "recognition_rates"),
    ({"recognition_rates": {"Syria": 90}}, "recognition_rates"),
    ({"ms_applies_safe_third_country": "true"}, "ms_applies_safe_third_country"),
    ({"border_capacity": True}, "border_capacity"),
])
def test_invalid_context_raises_context_error_naming_the_setting(context, field):
    """validate_context rejects unknown settings, wrong types and bad codes, naming the setting."""
    with pytest.raises(ContextError) as error:
        shipped_ruleset("eu-apr-2026").validate_context(context)
    assert error.value.field == field


def test_batch_accepts_a_ruleset_name_and_reports_the_bad_item():
    """evaluate_batch takes a shipped name; an invalid item raises FactError naming item and field."""
    items = [{"id": "ok", "facts": {"nationality": "SYR"}},
             {"id": "bad", "facts": {"nationality": "Syria"}}]
    with pytest.raises(FactError) as error:
        evaluate_batch(items, "eu-apr-2026")
    assert error.value.field == "nationality"
    assert "item 'bad'" in str(error.value)
    output = evaluate_batch(items[:1], "unhcr-dcp")
    assert output == [{"id": "ok", "track": "regular", "grounds": [], "rules": ["track-regular"],
                       "ruleset": "unhcr-dcp@2020.1.0", "deadline": None}]


def test_batch_reports_a_bad_context_with_item_id():
    """An item with an invalid context raises ContextError naming the item and the setting."""
    with pytest.raises(ContextError) as error:
        evaluate_batch([{"id": "c1", "facts": {}, "context": {"decision_date": "tomorrow"}}], "eu-apr-2026")
    assert error.value.field == "decision_date"
    assert "item 'c1'" in str(error.value)


# ---- purity ---------------------------------------------------------------------------------------
def _imported_modules(source: str) -> set[str]:
    tree = ast.parse(source)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add("." if node.level else node.module.split(".")[0])
    return found


def test_rules_module_imports_only_the_standard_library_and_yaml():
    """rules.py imports nothing but the standard library and PyYAML: no Flask, SQLAlchemy or app."""
    imported = _imported_modules(RULES_SOURCE.read_text(encoding="utf-8"))
    third_party = {name for name in imported if name not in sys.stdlib_module_names and name != "__future__"}
    assert third_party == {"yaml"}
    assert not imported & {"flask", "sqlalchemy", "app", "."}


def test_rules_module_never_calls_eval_exec_or_compile():
    """Conditions are compiled to closures: the module never calls eval, exec or compile."""
    tree = ast.parse(RULES_SOURCE.read_text(encoding="utf-8"))
    called = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert not called & {"eval", "exec", "compile", "__import__"}


def test_rules_module_runs_with_flask_and_sqlalchemy_unimportable():
    """Loaded on its own with flask/sqlalchemy blocked, rules.py still triages a worked example."""
    script = f"""
import importlib.abc, importlib.util, json, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('flask', 'sqlalchemy', 'app'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
spec = importlib.util.spec_from_file_location('standalone_rules', {str(RULES_SOURCE)!r})
module = importlib.util.module_from_spec(spec)
sys.modules['standalone_rules'] = module
spec.loader.exec_module(module)
example = json.loads({json.dumps(json.dumps(EXAMPLES[3]))})
print(module.shipped_ruleset('eu-apr-2026').evaluate(example['facts'], example['context']).track)
assert not any(m.split('.')[0] in ('flask', 'sqlalchemy') for m in sys.modules)
"""
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == EXAMPLES[3]["expected_track"]
