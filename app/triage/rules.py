"""Triage rules engine: routes a claim's facts into a procedure track. Pure Python.

This module imports only the standard library and PyYAML: no Flask, no SQLAlchemy, nothing
from ``app``. Services call it; it never calls them. It knows no article numbers either: the
law lives in versioned ruleset documents (``app/triage/rulesets/*.yaml``), selected per
deployment, compiled ONCE at load into Python closures. Nothing is ever passed to eval/exec.

Ruleset document (YAML or JSON)
-------------------------------
``id``, ``version`` (strings), optional ``title``/``description``, and:

``tracks``: list of ``{code, precedence, label, legal_basis, time_limit}``. Lower precedence
    wins. ``time_limit`` is null (no fixed date) or a list of options tried in order; the first
    whose ``when`` holds decides: ``{when?, from: <value>, months|weeks|days|working_days: n,
    description}`` or ``{when?, none: true, description}``. When the decisive option's anchor
    date is unknown the deadline is None.
``default_track``: the track when no routing rule matches.
``context``: the settings a caller may pass, ``{name: {type, default, choices?, description?}}``
    with type ``date`` (default ``today`` = the evaluation day), ``bool``, ``number``,
    ``choice``, ``alpha3_list``, ``code_list`` or ``rate_table``.
``derived``: named values computed at most once per evaluation, ``{name: <value or condition>}``.
``rules``: list of ``{id, legal_basis, reason_code, when: <condition>, ground?, track?,
    description?}``. A rule with ``ground`` (which needs ``track``: the track the ground
    supports) is a legal ground, reported in ``TriageResult.grounds``. A rule with only
    ``track`` is a routing decision: the matched routing rule whose track has the best
    precedence wins. A rule with neither is a finding (an exemption, a block) that other rules
    read. Every matched rule is listed in ``TriageResult.rules``.

Conditions: ``true``/``false``; ``{all: [..]}``, ``{any: [..]}``, ``{not: c}``;
``{rule: id}`` (that rule matched), ``{any_rule: [ids]}``, ``{any_ground: track}`` (a ground
rule supporting that track matched); comparisons ``{<left>, op, value|ref}`` where ``<left>`` is
``fact: "a.b"``, ``ctx: name``, ``derived: name`` or ``left: <value>``; ``value`` is a literal,
``ref`` a value expression; ``op`` (default ``truthy``) is one of eq ne lt le gt ge in contains
intersects subset_of is_null truthy. Comparisons with an unknown (null) side are false, so
"not established" never satisfies a condition by accident.

Values: ``{fact: path}``, ``{ctx: name}``, ``{derived: name}``, ``{value: literal}``,
``{coalesce: [..]}``, ``{if: c, then: v, else: v}``, ``{age_on: {birth: v, at: v}}`` (whole
years), ``{days_between: {from: v, to: v}}``, ``{working_days_between: {from: v, to: v}}``
(Monday-Friday days after ``from`` up to and including ``to``), ``{lookup: {in: v, key: v}}``,
``{recognition_rate_pct: v}`` (a rate-table entry as a percentage), or any condition (a bool).
"""

from __future__ import annotations

import calendar
import json
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from itertools import compress
from operator import itemgetter
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

__all__ = [
    "FACT_DEFAULTS",
    "VULNERABILITY_CODES",
    "ContextError",
    "Deadline",
    "FactError",
    "Ground",
    "Rule",
    "Ruleset",
    "RulesetError",
    "Track",
    "TriageResult",
    "evaluate_batch",
    "load_ruleset",
    "load_ruleset_file",
    "recognition_rate_pct",
    "shipped_ruleset",
    "shipped_ruleset_names",
    "validate_facts",
]

RULESETS_DIR = Path(__file__).with_name("rulesets")


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------
class RulesetError(ValueError):
    """A ruleset document is malformed; the message names the place (e.g. ``rules[3].when``)."""


class FactError(ValueError):
    """Claim facts are invalid. ``field`` names the first bad fact (``eurodac_hit.category``,
    ``vulnerabilities[1]``); ``errors`` holds every ``(field, message)`` found, so a form can
    show them all at once."""

    def __init__(self, field: str, message: str, errors: list[tuple[str, str]] | None = None):
        self.field = field
        self.errors = tuple(errors) if errors else ((field, message),)
        text = f"{field}: {message}"
        if len(self.errors) > 1:
            text += f" (and {len(self.errors) - 1} more: {', '.join(f for f, _ in self.errors[1:])})"
        super().__init__(text)


class ContextError(ValueError):
    """A context setting is unknown to the ruleset or has the wrong type; ``field`` names it."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"context.{field}: {message}")


# --------------------------------------------------------------------------------------------
# The facts vocabulary (TRIAGE.md "Facts the rules read"), with validation and defaults
# --------------------------------------------------------------------------------------------
VULNERABILITY_CODES = frozenset({
    "minor", "unaccompanied_minor", "disability", "elderly", "pregnant", "lgbtiq",
    "single_parent_with_minor_children", "trafficking_victim", "serious_illness",
    "mental_disorder_ptsd", "torture_rape_serious_violence", "gender_based_violence",
    "fgm", "forced_marriage",
})
LOCATION_CONTEXTS = frozenset({
    "inland", "border_crossing_point", "transit_zone", "apprehended_irregular_crossing",
    "disembarkation_sar", "relocation",
})
_ALPHA3 = re.compile(r"[A-Z]{3}")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SNAKE_CODE = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True, slots=True)
class _FactSpec:
    """How one fact is checked. ``default`` is what the rules see when the fact is absent."""

    kind: str  # bool, date, alpha3, member_state, choice, code_list, int_list, percent, text, object
    nullable: bool = True
    default: Any = None
    choices: frozenset | None = None
    fields: Mapping[str, _FactSpec] | None = None


def _flag() -> _FactSpec:
    """A flag whose absence means "no": it only ever triggers something when true."""
    return _FactSpec("bool", default=False)


def _tristate() -> _FactSpec:
    """A bool whose explicit false triggers a consequence, so absence must mean "unknown"."""
    return _FactSpec("bool")


_DATE = _FactSpec("date")
_ALPHA3_SPEC = _FactSpec("alpha3")

FACT_SCHEMA: Mapping[str, _FactSpec] = {
    "nationality": _ALPHA3_SPEC,
    "stateless": _flag(),
    "former_habitual_residence": _ALPHA3_SPEC,
    "date_of_birth": _DATE,
    "age_disputed": _flag(),
    "sex": _FactSpec("choice", choices=frozenset({"F", "M", "X"})),
    "unaccompanied_minor": _flag(),
    "family_with_minor_children": _flag(),
    "children_ages": _FactSpec("int_list", nullable=False, default=()),
    "application_made_date": _DATE,
    "registration_date": _DATE,
    "lodged": _tristate(),
    "lodging_date": _DATE,
    "good_cause_for_not_lodging": _tristate(),
    "location_context": _FactSpec("choice", choices=LOCATION_CONTEXTS),
    "applied_at_border": _tristate(),
    "fulfils_entry_conditions": _tristate(),
    "authorised_to_enter": _tristate(),
    "vulnerabilities": _FactSpec("code_list", nullable=False, default=(), choices=VULNERABILITY_CODES),
    "special_procedural_guarantees_needed": _flag(),
    "adequate_support_available": _FactSpec("object", fields={
        "border_location": _tristate(), "accelerated_procedure": _tristate()}),
    "special_reception_needs_support_at_border": _tristate(),
    "medical_reasons_against_border": _flag(),
    "detention_guarantees_met": _tristate(),
    "previous_application": _FactSpec("object", fields={
        "member_state": _FactSpec("member_state"), "decision": _FactSpec("text"),
        "final": _tristate(), "new_elements": _tristate()}),
    "eurodac_hit": _FactSpec("object", fields={
        "member_state": _ALPHA3_SPEC,
        "category": _FactSpec("choice", choices=frozenset({
            "applicant", "irregular_entry", "beneficiary_of_international_protection"})),
        "hit_date": _DATE}),
    "family_member_in_other_member_state": _FactSpec("object", fields={
        "member_state": _ALPHA3_SPEC, "relation": _FactSpec("text"),
        "legally_present": _tristate(), "reunification_in_best_interests": _tristate()}),
    "international_protection_granted_by_member_state": _ALPHA3_SPEC,
    "first_country_of_asylum": _FactSpec("object", fields={
        "country": _ALPHA3_SPEC, "effective_protection_still_available": _tristate(),
        "readmission_possible": _tristate(), "guarantee_for_uam": _tristate()}),
    "safe_third_country": _FactSpec("object", fields={
        "country": _ALPHA3_SPEC,
        "basis": _FactSpec("choice", choices=frozenset({"transit", "connection", "agreement"})),
        "assessed_safe_for_applicant": _tristate(), "effective_protection_possible": _tristate(),
        "readmission_possible": _tristate()}),
    "return_decision": _FactSpec("object", fields={
        "received_date": _DATE, "informed_of_consequences": _tristate()}),
    "security_flag": _flag(),
    "documents_withheld_or_false": _flag(),
    "good_cause_shown": _tristate(),
    "biometrics_refused": _flag(),
    "irregular_entry_date": _DATE,
    "presented_without_delay": _tristate(),
    "only_irrelevant_issues": _flag(),
    # Nansen extensions, not in TRIAGE.md's table: APR 42(1)(b) and (d) need a fact to read.
    "inconsistent_or_improbable_statements": _flag(),
    "applied_merely_to_delay_removal": _flag(),
    "claim_grounds": _FactSpec("code_list", nullable=False, default=()),
    "safe_country_of_origin_designation": _FactSpec(
        "choice", choices=frozenset({"EU_list", "national_list"})),
    "sco_individual_rebuttal_elements": _flag(),
    "recognition_rate_for_nationality": _FactSpec("percent"),
    "significant_change_since_eurostat": _flag(),
    "category_not_representative": _flag(),
}

#: What each fact reads as when absent: false for flags that only trigger when true; null
#: ("not established") for dates, codes, objects and for bools whose *false* has consequences
#: (lodged, authorised_to_enter, presented_without_delay, detention_guarantees_met...);
#: an empty list for list facts. Keys missing inside a given object read as null.
FACT_DEFAULTS: Mapping[str, Any] = {name: spec.default for name, spec in FACT_SCHEMA.items()}


def _fact_problem(spec: _FactSpec, value: Any) -> str | None:
    """Why ``value`` does not fit ``spec`` (None when it does). Nested errors are handled by
    the caller, which knows the field path."""
    if value is None:
        return None if spec.nullable else "must not be null"
    kind = spec.kind
    if kind == "bool":
        return None if type(value) is bool else f"must be true, false or null, not {value!r}"
    if kind == "date":
        if type(value) is date:
            return None
        if isinstance(value, str) and _ISO_DATE.fullmatch(value):
            try:
                date.fromisoformat(value)
                return None
            except ValueError:
                pass
        return f"must be an ISO date YYYY-MM-DD, not {value!r}"
    if kind == "alpha3":
        if isinstance(value, str) and _ALPHA3.fullmatch(value):
            return None
        return f"must be an ISO 3166-1 alpha-3 code (3 uppercase letters), not {value!r}"
    if kind == "member_state":
        if isinstance(value, str) and (value == "SAME" or _ALPHA3.fullmatch(value)):
            return None
        return f"must be an alpha-3 code or SAME (this state), not {value!r}"
    if kind == "choice":
        if value in spec.choices:
            return None
        return f"must be one of {', '.join(sorted(spec.choices))}, not {value!r}"
    if kind == "text":
        return None if isinstance(value, str) and value.strip() else f"must be a non-empty string, not {value!r}"
    if kind == "percent":
        if isinstance(value, (int, float)) and type(value) is not bool and 0 <= value <= 100:
            return None
        return f"must be a percentage between 0 and 100, not {value!r}"
    raise AssertionError(f"unhandled fact kind {kind}")  # lists and objects: see validate_facts


def validate_facts(facts: Mapping[str, Any]) -> dict[str, Any]:
    """Check claim facts against the vocabulary and return a complete copy with defaults filled.

    Raises FactError naming the field for: unknown facts (also unknown keys inside objects),
    wrong types (bools must be real bools, numbers real numbers), malformed dates (ISO
    ``YYYY-MM-DD``, or ``datetime.date``), bad codes (alpha-3 = 3 uppercase letters;
    ``location_context``, ``sex``, Eurodac category, safe-third-country basis and safe-country
    designation from their lists; vulnerabilities from REGISTRATION.md; claim grounds as
    snake_case codes), percentages outside 0-100 and negative ages. Every problem is collected
    (``FactError.errors``); ``field`` is the first. Missing facts are allowed: see
    ``FACT_DEFAULTS``. Cross-field plausibility (made <= registered <= lodged) is intake's
    validation, not triage's: triage must still run on imperfect records.
    """
    if not isinstance(facts, Mapping):
        raise FactError("facts", f"must be a mapping of fact names to values, not {type(facts).__name__}")
    errors: list[tuple[str, str]] = []
    for name, value in facts.items():
        spec = FACT_SCHEMA.get(name)
        if spec is None:
            errors.append((str(name), "unknown fact (see TRIAGE.md 'Facts the rules read')"))
            continue
        errors.extend(_check_fact(name, spec, value))
    if errors:
        raise FactError(errors[0][0], errors[0][1], errors)
    complete = dict(FACT_DEFAULTS)
    complete.update(facts)
    return complete


def _check_fact(field: str, spec: _FactSpec, value: Any) -> list[tuple[str, str]]:
    """Every problem with one (possibly nested or list) fact value, as (field, message)."""
    if value is None or spec.kind not in ("object", "code_list", "int_list"):
        problem = _fact_problem(spec, value)
        return [(field, problem)] if problem else []
    if spec.kind == "object":
        if not isinstance(value, Mapping):
            return [(field, f"must be an object or null, not {value!r}")]
        errors = []
        for key, item in value.items():
            sub = spec.fields.get(key)
            if sub is None:
                errors.append((f"{field}.{key}", f"unknown key (expected {', '.join(spec.fields)})"))
            else:
                errors.extend(_check_fact(f"{field}.{key}", sub, item))
        return errors
    if not isinstance(value, (list, tuple)):
        return [(field, f"must be a list, not {value!r}")]
    errors = []
    for position, item in enumerate(value):
        where = f"{field}[{position}]"
        if spec.kind == "int_list":
            if type(item) is not int or not 0 <= item <= 120:
                errors.append((where, f"must be an age in whole years (0-120), not {item!r}"))
        elif spec.choices is not None:
            if item not in spec.choices:
                errors.append((where, f"unknown code {item!r} (expected one of {', '.join(sorted(spec.choices))})"))
        elif not (isinstance(item, str) and _SNAKE_CODE.fullmatch(item)):
            errors.append((where, f"must be a snake_case code, not {item!r}"))
    return errors


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Ground:
    """A legal ground that matched: stable ``code`` and ``reason_code``, the ``legal_basis``
    text, the ``rule_id`` that found it and the ``track`` it supports (not necessarily the
    track that won)."""

    code: str
    reason_code: str
    legal_basis: str
    rule_id: str
    track: str


@dataclass(frozen=True, slots=True)
class Deadline:
    """A statutory time limit: ``date`` (ISO) and how it was counted, e.g. "3 months from lodging"."""

    date: str
    description: str


@dataclass(frozen=True, slots=True)
class TriageResult:
    """The outcome of one evaluation. ``grounds`` lists EVERY matching ground (document
    order), ``rules`` every matched rule id; ``deadline`` is None where no fixed date applies
    or its anchor date is unknown; ``facts_used`` names the facts the result depends on: those
    every rule reads (all rules run on every claim) plus those the deadline reads."""

    track: str
    grounds: tuple[Ground, ...]
    rules: tuple[str, ...]
    ruleset_id: str
    ruleset_version: str
    deadline: Deadline | None
    facts_used: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The ``flask triage evaluate`` shape without ``id``: track, grounds (code,
        reason_code, legal_basis), rules, ruleset ("id@version"), deadline (ISO or None)."""
        return {
            "track": self.track,
            "grounds": [{"code": g.code, "reason_code": g.reason_code, "legal_basis": g.legal_basis}
                        for g in self.grounds],
            "rules": list(self.rules),
            "ruleset": f"{self.ruleset_id}@{self.ruleset_version}",
            "deadline": self.deadline.date if self.deadline else None,
        }


_RESULT_SETTERS = tuple(getattr(TriageResult, name).__set__ for name in TriageResult.__slots__)


def _new_result(track, grounds, rules, ruleset_id, ruleset_version, deadline, facts_used) -> TriageResult:
    """``TriageResult(...)`` in positional field order, at half the cost: the frozen dataclass's
    ``__init__`` goes through ``object.__setattr__`` per field, which showed in every profile.
    Same object, same equality, still frozen for everyone else."""
    result = object.__new__(TriageResult)
    set_track, set_grounds, set_rules, set_id, set_version, set_deadline, set_facts = _RESULT_SETTERS
    set_track(result, track)
    set_grounds(result, grounds)
    set_rules(result, rules)
    set_id(result, ruleset_id)
    set_version(result, ruleset_version)
    set_deadline(result, deadline)
    set_facts(result, facts_used)
    return result


@dataclass(frozen=True, slots=True)
class Track:
    """A procedure track of a ruleset: ``code``, ``precedence`` (lower wins), a ``label``,
    its ``legal_basis`` and the time-limit ``descriptions`` its options can produce."""

    code: str
    precedence: int
    label: str
    legal_basis: str
    time_limit_descriptions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule as written in the document (for display and audit): ``kind`` is ``ground``,
    ``routing`` or ``finding``."""

    id: str
    kind: str
    legal_basis: str
    reason_code: str
    ground: str | None
    track: str | None
    description: str


# --------------------------------------------------------------------------------------------
# Date helpers (pure, exact)
# --------------------------------------------------------------------------------------------
_PARSED_DATES: dict[str, date] = {}  # ISO text -> date: a caseload has a few thousand distinct days
_PARSED_DATES_MAX = 100_000


def _as_date(value: Any) -> date | None:
    """A ``date`` from a date, datetime or ISO string; None stays None."""
    if value is None or type(value) is date:
        return value
    if type(value) is str:
        # Every claim carries several ISO dates and the context one more; parsing the same few
        # thousand days over and over was a measurable share of an evaluation.
        parsed = _PARSED_DATES.get(value)
        if parsed is None:
            parsed = date.fromisoformat(value)
            if len(_PARSED_DATES) >= _PARSED_DATES_MAX:
                _PARSED_DATES.clear()
            _PARSED_DATES[value] = parsed
        return parsed
    if isinstance(value, str):
        return date.fromisoformat(value)
    if isinstance(value, datetime):
        return value.date()
    raise TypeError(f"not a date: {value!r}")


def _age_in_years(birth: date, on: date) -> int:
    """Whole years: someone is 18 from the morning of their 18th birthday (29 Feb -> 1 Mar)."""
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _working_days_between(start: date, end: date) -> int:
    """Monday-Friday days after ``start`` up to and including ``end`` (negative if reversed).
    Public holidays are not known to the engine and are not excluded."""
    if end < start:
        return -_working_days_between(end, start)
    full_weeks, rest = divmod((end - start).days, 7)
    weekday = start.weekday()
    return full_weeks * 5 + sum(1 for step in range(1, rest + 1) if (weekday + step) % 7 < 5)


_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February in a leap year: 29


def _add_months(start: date, months: int) -> date:
    """Same day ``months`` later, clamped to the month's last day (31 Aug + 6 months = 28/29 Feb)."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    last_day = 29 if month == 2 and calendar.isleap(year) else _DAYS_IN_MONTH[month]
    return start.replace(year=year, month=month, day=min(start.day, last_day))


def _add_working_days(start: date, count: int) -> date:
    """The ``count``-th Monday-Friday day after ``start``."""
    current = start
    while count > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            count -= 1
    return current


_ADD_PERIOD: Mapping[str, Callable[[date, int], date]] = {
    "days": lambda start, n: start + timedelta(days=n),
    "weeks": lambda start, n: start + timedelta(weeks=n),
    "months": _add_months,
    "working_days": _add_working_days,
}


def recognition_rate_pct(entry: Any) -> float | None:
    """A recognition rate in percent from a rate-table entry: a number (already a percentage),
    ``{"rate_pct": n}``, or decision counts ``{"refugee_status", "subsidiary_protection",
    "total_decisions", ...}``. Only refugee + subsidiary protection count as recognition, over
    ALL decisions; ``humanitarian_status`` (national status) is never counted, whatever the
    entry says. Extra keys (``source``, ``as_of``) are ignored. None when unknown."""
    if entry is None:
        return None
    if isinstance(entry, (int, float)) and type(entry) is not bool:
        return float(entry)
    if isinstance(entry, Mapping):
        if entry.get("rate_pct") is not None:
            return float(entry["rate_pct"])
        total = entry.get("total_decisions")
        if not total:
            return None
        recognised = (entry.get("refugee_status") or 0) + (entry.get("subsidiary_protection") or 0)
        # 100 * n / total (not n / total * 100) keeps exact percentages exact: 200/1000 -> 20.0.
        return 100 * recognised / total
    raise ContextError("recognition_rates", f"entry must be a percentage or decision counts, not {entry!r}")


# --------------------------------------------------------------------------------------------
# Compilation of conditions and values into closures
# --------------------------------------------------------------------------------------------
_UNSET = object()


class _Evaluation:
    """Per-call state handed to every compiled closure."""

    __slots__ = ("facts", "get", "context", "derived", "matched")

    def __init__(self, facts, context, derived_count, rule_count):
        self.facts = facts
        self.get = facts.get  # bound once: every fact read goes through it
        self.context = context
        self.derived = [_UNSET] * derived_count
        self.matched = [False] * rule_count


Closure = Callable[[_Evaluation], Any]

_LOGIC_KEYS = frozenset({"all", "any", "not", "rule", "any_rule", "any_ground"})
_LEFT_KEYS = ("fact", "ctx", "derived", "left")
_COMPARISON_KEYS = frozenset({*_LEFT_KEYS, "op", "value", "ref"})
_UNARY_OPS = frozenset({"is_null", "truthy"})
_BINARY_OPS = frozenset({"eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "intersects", "subset_of"})
_CONTEXT_TYPES = frozenset({"date", "bool", "number", "choice", "alpha3_list", "code_list", "rate_table"})


class _References:
    """What one compiled unit (rule, derived value, time limit) refers to."""

    __slots__ = ("derived", "rules", "ground_tracks", "facts")

    def __init__(self):
        self.derived: set[str] = set()
        self.rules: set[str] = set()
        self.ground_tracks: set[str] = set()
        self.facts: set[str] = set()


def _always_true(ev):
    return True


def _always_false(ev):
    return False


def _constant(value):
    return lambda ev: value


class _Compiler:
    """Turns condition/value trees into closures, checking every name against the facts
    vocabulary, the ruleset's context, derived values, rules and tracks."""

    def __init__(self, context_specs, derived_names, rule_index, ground_rules_by_track, track_codes):
        self.context_specs = context_specs
        self.derived_index = {name: position for position, name in enumerate(derived_names)}
        self.derived_functions: list[Closure] = [None] * len(derived_names)
        self.rule_index = rule_index
        self.ground_rules_by_track = ground_rules_by_track
        self.track_codes = track_codes
        self.references = _References()

    # -- conditions ---------------------------------------------------------------------------
    def condition(self, node: Any, where: str) -> Closure:
        if node is True:
            return _always_true
        if node is False:
            return _always_false
        if not isinstance(node, Mapping) or not node:
            raise RulesetError(f"{where}: a condition is true, false or a mapping, not {node!r}")
        logic = _LOGIC_KEYS.intersection(node)
        if logic:
            if len(node) != 1:
                raise RulesetError(f"{where}: '{next(iter(logic))}' must be the only key, got {sorted(node)}")
            key, argument = next(iter(node.items()))
            return getattr(self, f"_logic_{key}")(argument, f"{where}.{key}")
        return self._comparison(node, where)

    def _logic_all(self, items, where):
        parts = self._condition_list(items, where)
        # Rule references are list lookups: check them inline, before any other part.
        rule_tests = [part._rule_test for part in parts if hasattr(part, "_rule_test")]
        if rule_tests:
            must = tuple(index for index, wanted in rule_tests if wanted)
            must_not = tuple(index for index, wanted in rule_tests if not wanted)
            others = [p for p in parts if not hasattr(p, "_rule_test")]
            rest = self._all_parts(others) if others else _always_true
            if len(must) == 1 and not must_not:
                index = must[0]

                def one_rule_then_rest(ev):
                    if not ev.matched[index]:
                        return False
                    return rest(ev)
                one_rule_then_rest._must = must
                return one_rule_then_rest

            def all_of_rules_then_rest(ev):
                matched = ev.matched
                for index in must:
                    if not matched[index]:
                        return False
                for index in must_not:
                    if matched[index]:
                        return False
                return rest(ev)
            all_of_rules_then_rest._must = must  # lets the ruleset skip rules behind one guard
            return all_of_rules_then_rest
        return self._all_parts(parts)

    @staticmethod
    def _all_parts(parts):
        if len(parts) == 1:
            return parts[0]
        if all(hasattr(part, "_then") for part in parts[:-1]):
            # Leaves fused with what follows them: the commonest shape, one call per part.
            chain = parts[-1]
            for part in reversed(parts[:-1]):
                chain = part._then(chain)
            return chain
        if len(parts) == 2:
            first, second = parts
            return lambda ev: first(ev) and second(ev)
        if len(parts) == 3:
            first, second, third = parts
            return lambda ev: first(ev) and second(ev) and third(ev)

        def all_of(ev, parts=tuple(parts)):
            for part in parts:
                if not part(ev):
                    return False
            return True
        return all_of

    def _logic_any(self, items, where):
        parts = self._condition_list(items, where)
        if len(parts) == 1:
            return parts[0]
        if len(parts) == 2:
            first, second = parts
            return lambda ev: first(ev) or second(ev)

        def any_of(ev, parts=tuple(parts)):
            for part in parts:
                if part(ev):
                    return True
            return False
        return any_of

    def _logic_not(self, item, where):
        if isinstance(item, Mapping) and item and not _LOGIC_KEYS.intersection(item):
            return self._comparison(item, where, negate=True)
        inner = self.condition(item, where)
        rule_test = getattr(inner, "_rule_test", None)
        if rule_test:
            index = rule_test[0]
            test = lambda ev: not ev.matched[index]
            test._rule_test = (index, False)
            return test
        return lambda ev: not inner(ev)

    def _logic_rule(self, rule_id, where):
        index = self._rule_position(rule_id, where)
        test = lambda ev: ev.matched[index]
        test._rule_test = (index, True)  # lets `all` check it inline
        return test

    def _logic_any_rule(self, rule_ids, where):
        if not isinstance(rule_ids, list) or not rule_ids:
            raise RulesetError(f"{where}: expected a non-empty list of rule ids")
        return self._any_matched(tuple(self._rule_position(r, where) for r in rule_ids))

    def _logic_any_ground(self, track, where):
        if track not in self.track_codes:
            raise RulesetError(f"{where}: unknown track {track!r}")
        self.references.ground_tracks.add(track)
        return self._any_matched(tuple(self.rule_index[r] for r in self.ground_rules_by_track.get(track, ())))

    @staticmethod
    def _any_matched(indices):
        if len(indices) == 1:
            index = indices[0]
            test = lambda ev: bool(ev.matched[index])  # noqa: E731
            test._then = lambda rest: lambda ev: bool(ev.matched[index]) and rest(ev)
            return test
        if not indices:
            return _always_false
        pick = itemgetter(*indices)  # any() over a C-built tuple: no Python loop per index
        test = lambda ev: any(pick(ev.matched))  # noqa: E731
        test._then = lambda rest: lambda ev: any(pick(ev.matched)) and rest(ev)
        return test

    def _rule_position(self, rule_id, where):
        if rule_id not in self.rule_index:
            raise RulesetError(f"{where}: unknown rule {rule_id!r}")
        self.references.rules.add(rule_id)
        return self.rule_index[rule_id]

    def _condition_list(self, items, where):
        if not isinstance(items, list) or not items:
            raise RulesetError(f"{where}: expected a non-empty list of conditions")
        return [self.condition(item, f"{where}[{i}]") for i, item in enumerate(items)]

    def _comparison(self, node, where, negate=False):
        test = self._plain_comparison(node, where, negate)
        if test is not None:
            return test
        test = self._comparison_closure(node, where)
        return (lambda ev: not test(ev)) if negate else test

    def _plain_comparison(self, node, where, negate):
        """The commonest leaves (a fact or derived value tested against a literal) as ONE
        closure, negation folded in: half the Python calls on the hot path. None when the
        leaf does not have that shape."""
        op = node.get("op", "truthy")
        if op not in _FUSABLE_OPS or "ref" in node or ("value" in node) == (op in _UNARY_OPS):
            return None
        if negate:
            op = _NEGATED_OP[op]
        literal = node.get("value")
        if op in ("in", "not_in"):
            if not isinstance(literal, list):
                raise RulesetError(f"{where}: op in needs a list value")
            literal = frozenset(literal)
        if set(node) - {"fact", "op", "value"} == set() and isinstance(node.get("fact"), str):
            self._value_fact(node["fact"], f"{where}.fact")  # validates the path, records it
            top, _, sub = node["fact"].partition(".")
            spec = FACT_SCHEMA[top].fields[sub] if sub else FACT_SCHEMA[top]
            if spec.kind in ("code_list", "int_list") and op in ("in", "not_in"):
                raise RulesetError(f"{where}: {node['fact']} is a list; use contains, intersects or subset_of")
            if spec.kind == "date" and op not in ("is_null", "not_null"):
                return None  # dates need parsing first: the general path does it
            return _fact_test(top, sub, FACT_SCHEMA[top].default, op, literal)
        if set(node) - {"derived", "op"} == set() and op in ("truthy", "falsy"):
            self._value_derived(node["derived"], f"{where}.derived")  # validates, records
            return _derived_test(self.derived_index[node["derived"]], self.derived_functions, op == "truthy")
        return None

    def _comparison_closure(self, node, where):
        unknown = set(node) - _COMPARISON_KEYS
        if unknown:
            raise RulesetError(f"{where}: unknown keys {sorted(unknown)}")
        lefts = [key for key in _LEFT_KEYS if key in node]
        if len(lefts) != 1:
            raise RulesetError(f"{where}: a comparison needs exactly one of {', '.join(_LEFT_KEYS)}")
        left_key = lefts[0]
        left_node = node[left_key] if left_key == "left" else {left_key: node[left_key]}
        left = self.value(left_node, f"{where}.{left_key}")
        op = node.get("op", "truthy")
        if op in _UNARY_OPS:
            if "value" in node or "ref" in node:
                raise RulesetError(f"{where}: op {op} takes no value or ref")
            if op == "is_null":
                return lambda ev: left(ev) is None
            return lambda ev: bool(left(ev))
        if op not in _BINARY_OPS:
            raise RulesetError(f"{where}: unknown op {op!r}")
        if ("value" in node) == ("ref" in node):
            raise RulesetError(f"{where}: op {op} needs exactly one of value, ref")
        derived = getattr(left, "_derived", None)
        if "value" in node:
            literal = node["value"]
            if derived and op in _ORDERED and literal is not None:
                return _derived_vs_literal(*derived, _ORDERED[op], literal)
            return _compare_with_literal(op, left, literal, where)
        right = self.value(node["ref"], f"{where}.ref")
        if derived and hasattr(right, "_ctx") and (op in _ORDERED or op == "in"):
            return _derived_vs_ctx(*derived, op, right._ctx)
        return _compare_with_value(op, left, right)

    # -- values -------------------------------------------------------------------------------
    def value(self, node: Any, where: str) -> Closure:
        if node is True or node is False:
            return self.condition(node, where)
        if not isinstance(node, Mapping) or not node:
            raise RulesetError(f"{where}: a value is a mapping such as {{fact: ...}} or {{value: ...}}, not {node!r}")
        if _LOGIC_KEYS.intersection(node) or "op" in node:
            return self.condition(node, where)
        if "if" in node:
            return self._conditional(node, where)
        if len(node) != 1:
            raise RulesetError(f"{where}: a value has exactly one key, got {sorted(node)}")
        key, argument = next(iter(node.items()))
        handler = getattr(self, f"_value_{key}", None)
        if handler is None:
            raise RulesetError(f"{where}: unknown value form {key!r}")
        return handler(argument, f"{where}.{key}")

    def _value_value(self, literal, where):
        return _constant(literal)

    def _value_fact(self, path, where):
        if not isinstance(path, str):
            raise RulesetError(f"{where}: a fact path is a string")
        top, _, sub = path.partition(".")
        spec = FACT_SCHEMA.get(top)
        if spec is None:
            raise RulesetError(f"{where}: unknown fact {top!r}")
        if sub and (spec.kind != "object" or sub not in spec.fields):
            raise RulesetError(f"{where}: fact {top!r} has no key {sub!r}")
        self.references.facts.add(top)
        if sub:
            if spec.fields[sub].kind == "date":
                return lambda ev: _as_date((ev.get(top) or _NO_OBJECT).get(sub))
            return lambda ev: (ev.get(top) or _NO_OBJECT).get(sub)
        if spec.kind == "date":
            return lambda ev: _as_date(ev.get(top))
        default = spec.default
        return lambda ev: ev.get(top, default)

    def _value_ctx(self, name, where):
        spec = self.context_specs.get(name)
        if spec is None:
            raise RulesetError(f"{where}: unknown context setting {name!r} (declare it under 'context')")
        if spec["type"] == "date":
            return lambda ev: _as_date(ev.context[name])
        read = lambda ev: ev.context[name]  # noqa: E731
        read._ctx = name  # lets a comparison read the setting inline
        return read

    def _value_derived(self, name, where):
        if name not in self.derived_index:
            raise RulesetError(f"{where}: unknown derived value {name!r}")
        self.references.derived.add(name)
        position, functions = self.derived_index[name], self.derived_functions

        def derived(ev):
            slots = ev.derived
            value = slots[position]
            if value is _UNSET:
                value = slots[position] = functions[position](ev)
            return value
        derived._derived = (position, functions)  # lets a comparison inline the memo lookup
        return derived

    def _value_coalesce(self, items, where):
        if not isinstance(items, list) or not items:
            raise RulesetError(f"{where}: expected a non-empty list of values")
        parts = tuple(self.value(item, f"{where}[{i}]") for i, item in enumerate(items))

        def coalesce(ev):
            for part in parts:
                value = part(ev)
                if value is not None:
                    return value
            return None
        return coalesce

    def _arguments(self, argument, names, where):
        if not isinstance(argument, Mapping) or set(argument) != set(names):
            raise RulesetError(f"{where}: expected keys {', '.join(names)}")
        return [self.value(argument[name], f"{where}.{name}") for name in names]

    def _value_age_on(self, argument, where):
        birth, at = self._arguments(argument, ("birth", "at"), where)

        def age_on(ev):
            born, day = _as_date(birth(ev)), _as_date(at(ev))
            return None if born is None or day is None else _age_in_years(born, day)
        return age_on

    def _value_days_between(self, argument, where):
        start, end = self._arguments(argument, ("from", "to"), where)

        def days_between(ev):
            first, last = _as_date(start(ev)), _as_date(end(ev))
            return None if first is None or last is None else (last - first).days
        return days_between

    def _value_working_days_between(self, argument, where):
        start, end = self._arguments(argument, ("from", "to"), where)

        def working_days_between(ev):
            first, last = _as_date(start(ev)), _as_date(end(ev))
            return None if first is None or last is None else _working_days_between(first, last)
        return working_days_between

    def _value_lookup(self, argument, where):
        table, key = self._arguments(argument, ("in", "key"), where)

        def lookup(ev):
            mapping, wanted = table(ev), key(ev)
            return None if mapping is None or wanted is None else mapping.get(wanted)
        return lookup

    def _value_recognition_rate_pct(self, argument, where):
        entry = self.value(argument, where)
        return lambda ev: recognition_rate_pct(entry(ev))

    def _conditional(self, node, where):
        if set(node) != {"if", "then", "else"}:
            raise RulesetError(f"{where}: expected keys if, then, else")
        test = self.condition(node["if"], f"{where}.if")
        then, otherwise = self.value(node["then"], f"{where}.then"), self.value(node["else"], f"{where}.else")
        return lambda ev: then(ev) if test(ev) else otherwise(ev)


_NO_OBJECT: Mapping[str, Any] = {}  # stands in for an absent object fact: every key reads None
_FUSABLE_OPS = frozenset({"truthy", "is_null", "eq", "ne", "in"})
_NEGATED_OP = {"truthy": "falsy", "is_null": "not_null", "eq": "ne", "ne": "eq", "in": "not_in"}


def _fact_test(top, sub, default, op, literal):
    """One closure reading fact ``top`` (or ``top.sub``) and applying ``op``. It carries
    ``_then``: the same test fused with the rest of an ``all`` (see ``_fact_test_then``)."""
    test = _fact_test_alone(top, sub, default, op, literal)
    test._then = lambda rest: _fact_test_then(top, sub, default, op, literal, rest)
    return test


def _fact_test_alone(top, sub, default, op, literal):
    if sub:
        tests = {
            "truthy": lambda ev: bool((ev.get(top) or _NO_OBJECT).get(sub)),
            "falsy": lambda ev: not (ev.get(top) or _NO_OBJECT).get(sub),
            "is_null": lambda ev: (ev.get(top) or _NO_OBJECT).get(sub) is None,
            "not_null": lambda ev: (ev.get(top) or _NO_OBJECT).get(sub) is not None,
            "eq": lambda ev: (ev.get(top) or _NO_OBJECT).get(sub) == literal,
            "ne": lambda ev: (ev.get(top) or _NO_OBJECT).get(sub) != literal,
            "in": lambda ev: (ev.get(top) or _NO_OBJECT).get(sub) in literal,
            "not_in": lambda ev: (ev.get(top) or _NO_OBJECT).get(sub) not in literal,
        }
    else:
        tests = {
            "truthy": lambda ev: bool(ev.get(top, default)),
            "falsy": lambda ev: not ev.get(top, default),
            "is_null": lambda ev: ev.get(top, default) is None,
            "not_null": lambda ev: ev.get(top, default) is not None,
            "eq": lambda ev: ev.get(top, default) == literal,
            "ne": lambda ev: ev.get(top, default) != literal,
            "in": lambda ev: ev.get(top, default) in literal,
            "not_in": lambda ev: ev.get(top, default) not in literal,
        }
    return tests[op]


def _fact_test_then(top, sub, default, op, literal, rest):
    """``test(ev) and rest(ev)`` in ONE closure, ``test`` being ``_fact_test_alone(...)``:
    an ``all`` of n leaves costs n calls instead of n + 1. The value is the same as the
    unfused form's: the test's own (False) when it fails, else whatever ``rest`` returns."""
    if sub:
        tests = {
            "truthy": lambda ev: bool((ev.get(top) or _NO_OBJECT).get(sub)) and rest(ev),
            "falsy": lambda ev: not (ev.get(top) or _NO_OBJECT).get(sub) and rest(ev),
            "is_null": lambda ev: (ev.get(top) or _NO_OBJECT).get(sub) is None and rest(ev),
            "not_null": lambda ev: (ev.get(top) or _NO_OBJECT).get(sub) is not None and rest(ev),
            "eq": lambda ev: (ev.get(top) or _NO_OBJECT).get(sub) == literal and rest(ev),
            "ne": lambda ev: (ev.get(top) or _NO_OBJECT).get(sub) != literal and rest(ev),
            "in": lambda ev: (ev.get(top) or _NO_OBJECT).get(sub) in literal and rest(ev),
            "not_in": lambda ev: (ev.get(top) or _NO_OBJECT).get(sub) not in literal and rest(ev),
        }
    else:
        tests = {
            "truthy": lambda ev: bool(ev.get(top, default)) and rest(ev),
            "falsy": lambda ev: not ev.get(top, default) and rest(ev),
            "is_null": lambda ev: ev.get(top, default) is None and rest(ev),
            "not_null": lambda ev: ev.get(top, default) is not None and rest(ev),
            "eq": lambda ev: ev.get(top, default) == literal and rest(ev),
            "ne": lambda ev: ev.get(top, default) != literal and rest(ev),
            "in": lambda ev: ev.get(top, default) in literal and rest(ev),
            "not_in": lambda ev: ev.get(top, default) not in literal and rest(ev),
        }
    return tests[op]


def _derived_test(position, functions, wanted):
    """Truthiness (``wanted``) or falsiness of a derived value, memo lookup inlined; with
    ``_then`` like a fact test."""
    def derived_test(ev):
        slots = ev.derived
        value = slots[position]
        if value is _UNSET:
            value = slots[position] = functions[position](ev)
        return bool(value) is wanted

    def then(rest):
        def derived_test_then(ev):
            slots = ev.derived
            value = slots[position]
            if value is _UNSET:
                value = slots[position] = functions[position](ev)
            return bool(value) is wanted and rest(ev)
        return derived_test_then
    derived_test._then = then
    return derived_test


_ORDERED = {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge}


def _derived_vs_literal(position, functions, compare, literal):
    """``{derived: X, op: lt|le|gt|ge, value: literal}`` as one closure (memo lookup inlined);
    an unknown (None) value is false. Carries ``_then`` like a fact test."""
    def build(rest):
        def derived_vs_literal(ev):
            slots = ev.derived
            value = slots[position]
            if value is _UNSET:
                value = slots[position] = functions[position](ev)
            if value is None or not compare(value, literal):
                return False
            return True if rest is None else rest(ev)
        return derived_vs_literal
    test = build(None)
    test._then = build
    return test


def _derived_vs_ctx(position, functions, op, name):
    """``{derived: X, op: lt|le|gt|ge|in, ref: {ctx: name}}`` as one closure; an unknown (None)
    side is false. Carries ``_then`` like a fact test."""
    compare = _ORDERED.get(op)

    def build(rest):
        def derived_vs_ctx(ev):
            slots = ev.derived
            value = slots[position]
            if value is _UNSET:
                value = slots[position] = functions[position](ev)
            if value is None:
                return False
            other = ev.context[name]
            if other is None or not (value in other if compare is None else compare(value, other)):
                return False
            return True if rest is None else rest(ev)
        return derived_vs_ctx
    test = build(None)
    test._then = build
    return test


def _compare_with_literal(op, left, literal, where):
    """A comparison against a constant, specialised so the hot path is one call and one test."""
    if op in ("in", "intersects", "subset_of"):
        if not isinstance(literal, list):
            raise RulesetError(f"{where}: op {op} needs a list value")
        literal = frozenset(literal)
    if op == "eq":
        return lambda ev: left(ev) == literal
    if op == "ne":
        return lambda ev: left(ev) != literal
    if op == "in":
        return lambda ev: left(ev) in literal
    if op == "contains":
        return lambda ev: literal in (left(ev) or ())
    if literal is not None and op in ("lt", "le", "gt", "ge"):
        # An unknown (None) left side makes the comparison false.
        return {
            "lt": lambda ev: (value := left(ev)) is not None and value < literal,
            "le": lambda ev: (value := left(ev)) is not None and value <= literal,
            "gt": lambda ev: (value := left(ev)) is not None and value > literal,
            "ge": lambda ev: (value := left(ev)) is not None and value >= literal,
        }[op]
    return _compare_with_value(op, left, _constant(literal))


def _compare_with_value(op, left, right):
    """A comparison of two computed values; an unknown (None) side makes it false."""
    def ordered(compare):
        def comparison(ev):
            first, second = left(ev), right(ev)
            return first is not None and second is not None and compare(first, second)
        return comparison

    if op == "eq":
        return lambda ev: left(ev) == right(ev)
    if op == "ne":
        return lambda ev: left(ev) != right(ev)
    if op == "lt":
        return ordered(lambda a, b: a < b)
    if op == "le":
        return ordered(lambda a, b: a <= b)
    if op == "gt":
        return ordered(lambda a, b: a > b)
    if op == "ge":
        return ordered(lambda a, b: a >= b)
    if op == "in":
        return ordered(lambda a, b: a in b)
    if op == "contains":
        return ordered(lambda a, b: b in a)
    if op == "intersects":
        return ordered(lambda a, b: not set(a).isdisjoint(b))
    # subset_of: a non-empty list whose every element is in the other
    return ordered(lambda a, b: bool(a) and set(a).issubset(b))


# --------------------------------------------------------------------------------------------
# Ruleset
# --------------------------------------------------------------------------------------------
class Ruleset:
    """A compiled, immutable ruleset. Build it with ``load_ruleset``/``load_ruleset_file``/
    ``shipped_ruleset``; evaluate claims with ``evaluate``. Safe to share between threads."""

    def __init__(self, document: Mapping[str, Any]):
        _check_keys(document, "ruleset", required={"id", "version", "tracks", "rules", "default_track"},
                    optional={"title", "description", "context", "derived"})
        self.id = _text(document["id"], "id")
        self.version = _text(document["version"], "version")
        self.label = f"{self.id}@{self.version}"
        self.title = document.get("title", "")
        self._context_specs, self._context_defaults, self._today_settings = _compile_context(
            document.get("context") or {})
        self._context_names = frozenset(self._context_specs)

        tracks = _read_tracks(document["tracks"])
        self._precedence = {code: precedence for code, precedence, _ in tracks}
        self.default_track = document["default_track"]
        if self.default_track not in self._precedence:
            raise RulesetError(f"default_track: unknown track {self.default_track!r}")

        raw_rules = _read_rules(document["rules"], self._precedence)
        self.rules = tuple(rule for rule, _ in raw_rules)
        rule_index = {rule.id: position for position, rule in enumerate(self.rules)}
        ground_rules_by_track: dict[str, list[str]] = {}
        for rule in self.rules:
            if rule.kind == "ground":
                ground_rules_by_track.setdefault(rule.track, []).append(rule.id)

        derived_nodes = document.get("derived") or {}
        if not isinstance(derived_nodes, Mapping):
            raise RulesetError("derived: expected a mapping of name to value")
        compiler = _Compiler(self._context_specs, list(derived_nodes), rule_index,
                             ground_rules_by_track, frozenset(self._precedence))

        derived_references = {}
        for position, (name, node) in enumerate(derived_nodes.items()):
            compiler.references = _References()
            compiler.derived_functions[position] = compiler.value(node, f"derived.{name}")
            derived_references[name] = compiler.references
        _reject_derived_cycles(derived_references)

        conditions, rule_references = [], {}
        for rule, node in raw_rules:
            compiler.references = _References()
            conditions.append(compiler.condition(node, f"rules[{rule.id}].when"))
            rule_references[rule.id] = compiler.references

        order = _evaluation_order(self.rules, rule_references, derived_references, ground_rules_by_track)
        self._evaluation_order = tuple((rule_index[rule_id], conditions[rule_index[rule_id]]) for rule_id in order)
        self._derived_count = len(derived_nodes)
        self._rule_count = len(self.rules)
        self._rule_ids = tuple(rule.id for rule in self.rules)
        # Routing rules sorted by their track's precedence: the first that matched decides.
        self._routing = tuple(sorted(
            ((rule_index[rule.id], rule.track) for rule in self.rules if rule.kind == "routing"),
            key=lambda entry: self._precedence[entry[1]]))
        self._grounds = tuple(
            (rule_index[rule.id], Ground(rule.ground, rule.reason_code, rule.legal_basis, rule.id, rule.track))
            for rule in self.rules if rule.kind == "ground")
        self._ground_positions = tuple(position for position, _ in self._grounds)
        self._ground_objects = tuple(ground for _, ground in self._grounds)
        self._ground_flags = _picker(self._ground_positions)
        self._steps = _guarded_groups(self._evaluation_order)

        # Every rule runs on every claim, so the facts a result depends on are those all the
        # rules read plus those the winning track's deadline reads: known at load, free per call.
        facts_of_rules = set().union(*(_facts_read(refs, derived_references) for refs in rule_references.values()))
        self._deadline_of_track, self._facts_used_by_track = {}, {}
        track_objects = []
        for code, precedence, node in tracks:
            compiler.references = _References()
            deadline_fn, descriptions = _compile_time_limit(
                compiler, node.get("time_limit"), f"tracks[{code}].time_limit")
            self._deadline_of_track[code] = deadline_fn
            self._facts_used_by_track[code] = tuple(sorted(
                facts_of_rules | _facts_read(compiler.references, derived_references)))
            track_objects.append(Track(code, precedence, node.get("label", code), node.get("legal_basis", ""),
                                       descriptions))
        self.tracks = tuple(sorted(track_objects, key=lambda track: track.precedence))

    def __repr__(self) -> str:
        return f"<Ruleset {self.label}: {len(self.tracks)} tracks, {len(self.rules)} rules>"

    @property
    def context_defaults(self) -> dict[str, Any]:
        """The default settings (a copy; lists as tuples); a ``today`` date default reads None."""
        return dict(self._context_defaults)

    def evaluate(self, facts: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> TriageResult:
        """Route one claim. ``facts`` use the TRIAGE.md vocabulary (absent facts read as
        ``FACT_DEFAULTS``); they are NOT validated here (call ``validate_facts`` on untrusted
        input: this is the hot path). ``context`` overrides the ruleset's defaults; an unknown
        setting raises ContextError. ``decision_date`` defaults to today.

        Every rule is evaluated (so all grounds are reported); the winning track is the matched
        routing rule with the best precedence, else ``default_track``; the deadline comes from
        the winning track's time limit.
        """
        ev = _Evaluation(facts, self._context_for(context), self._derived_count, self._rule_count)
        matched = ev.matched
        for position, condition in self._steps:
            matched[position] = condition(ev)
        track = self.default_track
        for position, code in self._routing:
            if matched[position]:
                track = code
                break
        return _new_result(track, tuple(compress(self._ground_objects, self._ground_flags(matched))),
                           tuple(compress(self._rule_ids, matched)), self.id, self.version,
                           self._deadline_of_track[track](ev), self._facts_used_by_track[track])

    def prepare_context(self, context: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
        """The complete context ``evaluate`` builds from ``context`` (the ruleset's defaults
        overlaid with it, a ``today`` date resolved NOW), for evaluating many claims with the
        same settings: pass the returned mapping to ``evaluate`` as ``context`` and the
        per-claim merge is skipped. Same results as passing ``context`` itself, except that
        "today" is fixed once for the whole run (a replay crossing midnight stays consistent).
        Raises ContextError for an unknown setting, like ``evaluate``. Treat it as read-only."""
        prepared = _PreparedContext(self._context_for(context))
        prepared.ruleset = self
        return prepared

    def _context_for(self, context):
        """Defaults overlaid with the caller's settings, with "today" resolved."""
        if type(context) is _PreparedContext and context.ruleset is self:
            return context
        if context:
            if not self._context_names.issuperset(context):
                name = sorted(context.keys() - self._context_names)[0]
                raise ContextError(name, f"unknown setting for ruleset {self.label} "
                                         f"(known: {', '.join(sorted(self._context_names))})")
            merged = {**self._context_defaults, **context}
        else:
            merged = self._context_defaults
        for name in self._today_settings:
            if merged[name] is None:
                if merged is self._context_defaults:
                    merged = dict(merged)
                merged[name] = date.today()
        return merged

    def validate_context(self, context: Mapping[str, Any] | None) -> None:
        """Check a context against the ruleset's declared settings; raises ContextError naming
        the setting (unknown name, wrong type, value outside ``choices``, malformed date,
        bad alpha-3 code, bad rate-table entry). Call once per configuration change."""
        for name, value in (context or {}).items():
            spec = self._context_specs.get(name)
            if spec is None:
                raise ContextError(name, f"unknown setting for ruleset {self.label}")
            problem = _context_problem(spec, value)
            if problem:
                raise ContextError(name, problem)


class _PreparedContext(dict):
    """A context already merged and resolved by ``Ruleset.prepare_context`` for ``ruleset``."""

    __slots__ = ("ruleset",)


def _picker(positions):
    """A C-speed function returning ``tuple(matched[p] for p in positions)``."""
    if len(positions) > 1:
        return itemgetter(*positions)
    if positions:
        position = positions[0]
        return lambda matched: (matched[position],)
    return lambda matched: ()


_MIN_GROUP = 3


def _guarded_groups(order):
    """The evaluation steps: ``order`` with each run of consecutive rules that all require the
    same earlier rule (``{all: [{rule: X}, ...]}``, e.g. the dozen border rules behind
    ``border-situation``) folded into one step. When X did not match, none of them can, and the
    step leaves them all False (their value before evaluation) without calling each of them:
    the same outcome for a fraction of the calls. The step stands at the run's first rule and
    returns that rule's value, which the evaluation loop stores again."""
    steps, start = [], 0
    while start < len(order):
        guard = _guard_of(order[start][1])
        end = start + 1
        while guard is not None and end < len(order) and _guard_of(order[end][1]) == guard:
            end += 1
        if guard is None or end - start < _MIN_GROUP:
            steps.append(order[start])
            start += 1
            continue
        members, first = tuple(order[start:end]), order[start][0]

        def group(ev, guard=guard, members=members, first=first):
            matched = ev.matched
            if not matched[guard]:
                return False
            for position, condition in members:
                matched[position] = condition(ev)
            return matched[first]
        steps.append((first, group))
        start = end
    return tuple(steps)


def _guard_of(condition):
    """The first rule a compiled ``all`` condition requires to have matched, else None."""
    must = getattr(condition, "_must", None)
    return must[0] if must else None


def _text(value, where):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise RulesetError(f"{where}: quote it as a string (YAML read {value!r} as a number)")
    if not isinstance(value, str) or not value.strip():
        raise RulesetError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _check_keys(node, where, required, optional=frozenset()):
    if not isinstance(node, Mapping):
        raise RulesetError(f"{where}: expected a mapping, got {type(node).__name__}")
    missing = set(required) - set(node)
    if missing:
        raise RulesetError(f"{where}: missing {', '.join(sorted(missing))}")
    unknown = set(node) - set(required) - set(optional)
    if unknown:
        raise RulesetError(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))}")


def _compile_context(specs):
    """Context declarations -> (specs, defaults, names whose default is "today")."""
    if not isinstance(specs, Mapping):
        raise RulesetError("context: expected a mapping of setting name to {type, default}")
    checked, defaults, today = {}, {}, []
    for name, spec in specs.items():
        where = f"context.{name}"
        _check_keys(spec, where, required={"type", "default"}, optional={"choices", "description"})
        if spec["type"] not in _CONTEXT_TYPES:
            raise RulesetError(f"{where}.type: expected one of {', '.join(sorted(_CONTEXT_TYPES))}")
        if spec["type"] == "choice" and not spec.get("choices"):
            raise RulesetError(f"{where}: a choice needs choices")
        default = spec["default"]
        if spec["type"] == "date" and default == "today":
            default = None
            today.append(name)
        problem = _context_problem(spec, default)
        if problem:
            raise RulesetError(f"{where}.default: {problem}")
        if spec["type"] == "date":
            default = _as_date(default)
        elif isinstance(default, list):
            default = tuple(default)  # defaults are shared by every evaluation: keep them immutable
        elif isinstance(default, Mapping):
            default = MappingProxyType(dict(default))
        checked[name] = dict(spec)
        defaults[name] = default
    return checked, defaults, tuple(today)


def _context_problem(spec, value) -> str | None:
    kind = spec["type"]
    if value is None:
        return None if kind in ("date", "number") else "must not be null"
    if kind == "bool":
        return None if type(value) is bool else f"must be true or false, not {value!r}"
    if kind == "number":
        ok = isinstance(value, (int, float)) and type(value) is not bool and math.isfinite(value)
        return None if ok else f"must be a number, not {value!r}"
    if kind == "date":
        if type(value) is date or (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
            try:
                _as_date(value)
                return None
            except ValueError:
                pass
        return f"must be an ISO date YYYY-MM-DD, not {value!r}"
    if kind == "choice":
        return None if value in spec["choices"] else f"must be one of {', '.join(spec['choices'])}, not {value!r}"
    if kind in ("alpha3_list", "code_list"):
        pattern = _ALPHA3 if kind == "alpha3_list" else _SNAKE_CODE
        if not isinstance(value, (list, tuple, set, frozenset)):
            return f"must be a list, not {value!r}"
        bad = [item for item in value if not (isinstance(item, str) and pattern.fullmatch(item))]
        return f"bad codes {bad!r}" if bad else None
    # rate_table: {alpha-3: percentage or decision counts}
    if not isinstance(value, Mapping):
        return f"must be a mapping of alpha-3 code to rate, not {value!r}"
    for country, entry in value.items():
        if not (isinstance(country, str) and _ALPHA3.fullmatch(country)):
            return f"bad country code {country!r}"
        try:
            rate = recognition_rate_pct(entry)
        except ContextError:
            return f"entry for {country} must be a percentage or decision counts"
        if rate is not None and not 0 <= rate <= 100:
            return f"rate for {country} must be between 0 and 100, got {rate}"
    return None


def _read_tracks(nodes):
    if not isinstance(nodes, list) or not nodes:
        raise RulesetError("tracks: expected a non-empty list")
    tracks, seen_codes, seen_precedence = [], set(), set()
    for i, node in enumerate(nodes):
        where = f"tracks[{i}]"
        _check_keys(node, where, required={"code", "precedence"},
                    optional={"label", "legal_basis", "time_limit", "description"})
        code, precedence = _text(node["code"], f"{where}.code"), node["precedence"]
        if type(precedence) is not int:
            raise RulesetError(f"{where}.precedence: expected an integer")
        if code in seen_codes or precedence in seen_precedence:
            raise RulesetError(f"{where}: duplicate code or precedence ({code}, {precedence})")
        seen_codes.add(code)
        seen_precedence.add(precedence)
        tracks.append((code, precedence, node))
    return tracks


def _read_rules(nodes, precedence):
    if not isinstance(nodes, list) or not nodes:
        raise RulesetError("rules: expected a non-empty list")
    rules, seen = [], set()
    for i, node in enumerate(nodes):
        where = f"rules[{i}]"
        _check_keys(node, where, required={"id", "legal_basis", "reason_code", "when"},
                    optional={"ground", "track", "description"})
        rule_id = _text(node["id"], f"{where}.id")
        if rule_id in seen:
            raise RulesetError(f"{where}: duplicate rule id {rule_id!r}")
        seen.add(rule_id)
        where = f"rules[{rule_id}]"
        ground, track = node.get("ground"), node.get("track")
        if track is not None and track not in precedence:
            raise RulesetError(f"{where}.track: unknown track {track!r}")
        if ground is not None and track is None:
            raise RulesetError(f"{where}: a ground names the track it supports")
        kind = "ground" if ground is not None else "routing" if track is not None else "finding"
        rules.append((Rule(rule_id, kind, _text(node["legal_basis"], f"{where}.legal_basis"),
                           _text(node["reason_code"], f"{where}.reason_code"),
                           ground, track, node.get("description", "")), node["when"]))
    return rules


def _facts_read(references, derived_references):
    """Facts read by a compiled unit, directly or through derived values (acyclic by now)."""
    found, pending, seen = set(references.facts), list(references.derived), set()
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            found |= derived_references[name].facts
            pending.extend(derived_references[name].derived)
    return found


def _reject_derived_cycles(references):
    state = {}

    def visit(name, path):
        if state.get(name) == "done":
            return
        if state.get(name) == "active":
            raise RulesetError(f"derived: cycle {' -> '.join([*path, name])}")
        state[name] = "active"
        for other in references[name].derived:
            visit(other, [*path, name])
        state[name] = "done"

    for name in references:
        visit(name, [])


def _evaluation_order(rules, rule_references, derived_references, ground_rules_by_track):
    """Rule ids ordered so every rule runs after the rules it reads (directly, through
    ``any_ground``, or through derived values); a cycle is a RulesetError."""
    derived_rules: dict[str, set[str]] = {}

    def rules_read_by_derived(name):
        if name not in derived_rules:
            refs = derived_references[name]
            found = set(refs.rules)
            for track in refs.ground_tracks:
                found.update(ground_rules_by_track.get(track, ()))
            for other in refs.derived:
                found.update(rules_read_by_derived(other))
            derived_rules[name] = found
        return derived_rules[name]

    dependencies = {}
    for rule in rules:
        refs = rule_references[rule.id]
        needed = set(refs.rules)
        for track in refs.ground_tracks:
            needed.update(ground_rules_by_track.get(track, ()))
        for name in refs.derived:
            needed.update(rules_read_by_derived(name))
        dependencies[rule.id] = needed

    order, state = [], {}

    def visit(rule_id, path):
        if state.get(rule_id) == "done":
            return
        if state.get(rule_id) == "active":
            raise RulesetError(f"rules: cycle {' -> '.join([*path, rule_id])}")
        state[rule_id] = "active"
        for other in sorted(dependencies[rule_id]):
            visit(other, [*path, rule_id])
        state[rule_id] = "done"
        order.append(rule_id)

    for rule in rules:
        visit(rule.id, [])
    return order


def _compile_time_limit(compiler, node, where):
    """A track's time limit -> (function of the evaluation returning Deadline | None,
    the descriptions it can produce)."""
    if node is None:
        return (lambda ev: None), ()
    options = node if isinstance(node, list) else [node]
    compiled, descriptions = [], []
    for i, option in enumerate(options):
        spot = f"{where}[{i}]"
        units = [unit for unit in _ADD_PERIOD if unit in option]
        _check_keys(option, spot, required={"description"},
                    optional={"when", "from", "none", *_ADD_PERIOD})
        description = _text(option["description"], f"{spot}.description")
        when = compiler.condition(option["when"], f"{spot}.when") if "when" in option else None
        if option.get("none") is True:
            if units or "from" in option:
                raise RulesetError(f"{spot}: 'none' takes no period or anchor")
            compiled.append((when, None, None, 0, description))
        else:
            if len(units) != 1 or "from" not in option:
                raise RulesetError(f"{spot}: needs 'from' and exactly one of {', '.join(_ADD_PERIOD)}")
            amount = option[units[0]]
            if type(amount) is not int or amount < 0:
                raise RulesetError(f"{spot}.{units[0]}: expected a non-negative integer")
            anchor = compiler.value(option["from"], f"{spot}.from")
            compiled.append((when, anchor, _ADD_PERIOD[units[0]], amount, description))
        descriptions.append(description)
    # One Deadline per option and start day, built once: a caseload has a few thousand distinct
    # anchor days, and the date arithmetic cost more than all of a claim's rules together.
    compiled = tuple((when, anchor, add, amount, description, {}) for when, anchor, add, amount, description
                     in compiled)

    def deadline(ev):
        for when, anchor, add, amount, description, known in compiled:
            if when is None or when(ev):
                if anchor is None:
                    return None
                start = _as_date(anchor(ev))
                if start is None:
                    return None
                found = known.get(start)
                if found is None:
                    found = Deadline(add(start, amount).isoformat(), description)
                    if len(known) >= _DEADLINES_PER_OPTION_MAX:
                        known.clear()
                    known[start] = found
                return found
        return None
    return deadline, tuple(descriptions)


_DEADLINES_PER_OPTION_MAX = 20_000


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def load_ruleset(document: Mapping[str, Any]) -> Ruleset:
    """Compile a ruleset document (already parsed) into a Ruleset. Raises RulesetError naming
    the place of the first problem: unknown keys, facts, context settings, derived values,
    rules, tracks or ops; missing legal basis or reason code; reference cycles."""
    return Ruleset(document)


def load_ruleset_file(path: str | Path) -> Ruleset:
    """Read a ``.yaml``/``.yml`` (safe loader) or ``.json`` ruleset file and compile it."""
    path = Path(path)
    if path.suffix not in (".yaml", ".yml", ".json"):
        raise RulesetError(f"{path.name}: expected a .yaml, .yml or .json file")
    with path.open(encoding="utf-8") as handle:
        try:
            document = json.load(handle) if path.suffix == ".json" else yaml.safe_load(handle)
        except (yaml.YAMLError, json.JSONDecodeError) as error:
            raise RulesetError(f"{path.name}: not valid {path.suffix[1:].upper()}: {error}") from None
    try:
        return load_ruleset(document)
    except RulesetError as error:
        raise RulesetError(f"{path.name}: {error}") from None


def shipped_ruleset_names() -> tuple[str, ...]:
    """Names of the rulesets shipped under ``app/triage/rulesets/`` (e.g. ``eu-apr-2026``)."""
    return tuple(sorted(path.stem for path in RULESETS_DIR.glob("*.yaml")))


@cache
def shipped_ruleset(name: str) -> Ruleset:
    """A shipped ruleset by name, compiled once per process (rulesets are immutable)."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name or "") or not (RULESETS_DIR / f"{name}.yaml").is_file():
        raise RulesetError(f"no shipped ruleset {name!r} (available: {', '.join(shipped_ruleset_names())})")
    return load_ruleset_file(RULESETS_DIR / f"{name}.yaml")


# --------------------------------------------------------------------------------------------
# Batch evaluation (the `flask triage evaluate` format)
# --------------------------------------------------------------------------------------------
def evaluate_batch(items: list[Mapping[str, Any]], ruleset: Ruleset | str) -> list[dict[str, Any]]:
    """Evaluate items ``{"id", "facts", "context"?}`` (the triage-examples.json shape; other
    keys are ignored) and return ``[{"id", "track", "grounds", "rules", "ruleset",
    "deadline"}]`` in input order. ``ruleset`` is a Ruleset or a shipped ruleset name. Facts
    and context are validated; the first invalid item raises FactError/ContextError whose
    message starts with the item id and whose ``field`` names the fact or setting."""
    if isinstance(ruleset, str):
        ruleset = shipped_ruleset(ruleset)
    output = []
    for position, item in enumerate(items):
        item_id = item.get("id", position) if isinstance(item, Mapping) else position
        if not isinstance(item, Mapping) or "facts" not in item:
            raise FactError("facts", f"item {item_id!r}: each item needs 'facts'")
        try:
            validate_facts(item["facts"])
        except FactError as error:
            raise FactError(error.field, f"item {item_id!r}: {error.errors[0][1]}", list(error.errors)) from None
        context = item.get("context")
        try:
            ruleset.validate_context(context)
        except ContextError as error:
            raise ContextError(error.field, f"item {item_id!r}: {error}") from None
        output.append({"id": item_id, **ruleset.evaluate(item["facts"], context).to_dict()})
    return output
