"""Triage services: the active ruleset, its context (settings and reference data), triaging a
case, assessment facts, overrides, settings, reference data, replay and activation.

Every public function that changes something owns its transaction (records the audit event in
it and commits once) and takes the actor as ``acting_user=`` -- except ``triage_case``, which
runs inside the registration's (or another service's) transaction and never commits.
``acting_user=None`` means the system (first use, or an operator's CLI command without ``--as``).

State and caching. The active ruleset is the active ``RulesetVersion`` row; with none yet, the
shipped ruleset the deployment names in ``TRIAGE_RULESET`` is used, and stored and activated
(audited, actor None) the first time something is written. Compiled rulesets are cached per
process by checksum. The context (settings + reference data) is cached per application and
keyed by a generation token: every service that changes the active ruleset, a setting or
reference data writes a new random token in the ``_generation`` row of ``triage_setting`` in
the same transaction, so each triage costs one primary-key read to know its cache is current,
in every worker. (Edits made with SQL behind Nansen's back need a restart.)

Context precedence: ruleset defaults < ``TriageSetting`` rows (admins) < reference data
(supervisors): the recognition-rate table becomes ``recognition_rates``, and once the
safe-country list holds any row its ``EU_list`` rows ARE ``eu_safe_countries_of_origin``.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import yaml
from flask import current_app
from sqlalchemy import any_, func, select, type_coerce
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.types import NullType

from app import crypto
from app.audit.codes import EventCode
from app.audit.services import record, record_and_commit
from app.auth.models import User
from app.auth.permissions import Permission
from app.db_types import utcnow
from app.extensions import db
from app.intake.models import Case
from app.intake.reference import country_codes
from app.intake.services import CaseNotFound, registration_payload
from app.triage import rules
from app.triage.facts import (ASSESSMENT_FACTS, REFERENCE_FACTS, ReferenceData, apply_reference_data, case_facts,
                              changed_facts)
# The module, not the name: "open" is defined once, beside the queues, and queues imports intake,
# whose views import this module; a name imported here would not exist yet in that cycle.
from app.triage import queues
from app.triage.models import RecognitionRate, RulesetVersion, SafeCountry, TrackOverride, TriageRecord, TriageSetting

log = logging.getLogger(__name__)

__all__ = [
    "CaseNotFound", "ImportRejected", "TriageConflict", "TriageInvalid", "activate_ruleset", "active_ruleset",
    "delete_recognition_rate", "delete_safe_country", "import_recognition_rates", "import_safe_countries",
    "open_triage", "override_track", "priority_for", "replay", "retriage_open_cases", "set_assessment_facts",
    "set_recognition_rate", "set_safe_country", "settings_overview", "triage_case", "triage_panel",
    "update_settings", "withdraw_override",
]

GENERATION_SETTING = "_generation"  # internal row of triage_setting: the cache token (see above)
TRIGGERS = ("registration", "facts_changed", "manual", "ruleset")
MAX_RULESET_BYTES = 512 * 1024
MAX_CSV_BYTES = 1024 * 1024
MAX_CSV_ROWS = 5000
MAX_REASON_LENGTH = 2000
REPLAY_EXAMPLES = 5
SAFE_COUNTRY_DESIGNATIONS = ("EU_list", "national_list")
RATES_HEADER = ("nationality", "rate_pct", "source", "as_of")
SAFE_COUNTRIES_HEADER = ("country", "designation", "source", "as_of")
#: Context settings kept as reference data, and the setting type the settings page never edits.
REFERENCE_SETTINGS = {"recognition_rates": "recognition rates", "eu_safe_countries_of_origin": "safe countries"}

# -- priority --------------------------------------------------------------------------------------
#: Queue priority (higher first), documented in docs/triage.md: an unaccompanied minor +100, a
#: vulnerable applicant (any RCD Art 24 code, or special procedural guarantees) +50, plus the
#: urgency of the track: short statutory limits first. Codes of both shipped rulesets.
TRACK_URGENCY: Mapping[str, int] = {
    "border": 40, "border_optional": 40, "responsibility": 35, "accelerated": 30, "inadmissibility": 25,
    "regular_prioritised": 20, "implicit_withdrawal": 5, "regular": 0,
    # unhcr-dcp
    "prioritised": 20, "simplified": 15, "merged_registration_rsd": 15, "group_based_prima_facie": 10,
}
PRIORITY_UNACCOMPANIED_MINOR = 100
PRIORITY_VULNERABLE = 50


def priority_for(track: str | None, facts: Mapping[str, Any]) -> int:
    """The queue priority of a case on ``track`` with ``facts`` (higher is served first)."""
    vulnerabilities = facts.get("vulnerabilities") or ()
    priority = TRACK_URGENCY.get(track or "", 0)
    if facts.get("unaccompanied_minor") or "unaccompanied_minor" in vulnerabilities:
        priority += PRIORITY_UNACCOMPANIED_MINOR
    if vulnerabilities or facts.get("special_procedural_guarantees_needed"):
        priority += PRIORITY_VULNERABLE
    return priority


# -- errors ----------------------------------------------------------------------------------------

class TriageError(Exception):
    """Base class of refusals a user can act on."""


class TriageInvalid(TriageError):
    """Input refused; ``errors`` maps field names to messages (every failure, not only the first)."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("triage input refused: " + ", ".join(sorted(errors)))
        self.errors = errors


class TriageConflict(TriageError):
    """Someone saved the case after this user opened it; nothing was written."""


class ImportRejected(TriageError):
    """A CSV file was refused as a whole; ``problems`` lists ``(line number, message)``."""

    def __init__(self, problems: list[tuple[int, str]]):
        super().__init__(f"import refused: {len(problems)} problem(s)")
        self.problems = problems


def _require(acting_user, permission: Permission) -> None:
    if acting_user is not None and not acting_user.can(permission):
        raise PermissionError(f"this needs the {permission.value} permission")


# -- the active ruleset and its context -------------------------------------------------------------

@dataclass(frozen=True)
class ActiveRuleset:
    """A compiled ruleset with its source ``text``, parsed ``document`` and ``checksum``; ``row_id``
    is its RulesetVersion row (None: the shipped default, not stored yet)."""

    ruleset: rules.Ruleset
    document: Mapping[str, Any]
    text: str
    checksum: str
    row_id: int | None

    @property
    def label(self) -> str:
        return self.ruleset.label

    def track(self, code: str | None) -> rules.Track | None:
        return next((t for t in self.ruleset.tracks if t.code == code), None)

    def track_label(self, code: str | None) -> str:
        track = self.track(code)
        return track.label if track else (code or "")

    @property
    def context_specs(self) -> Mapping[str, Mapping[str, Any]]:
        return self.document.get("context") or {}


@dataclass(frozen=True)
class TriageState:
    """Everything a triage reads besides the case: the active ruleset, the stored settings, the
    reference data and the evaluation context built from them."""

    active: ActiveRuleset
    settings: Mapping[str, Any]
    reference: ReferenceData
    context: Mapping[str, Any]
    rate_rows: tuple = ()
    safe_rows: tuple = ()


_CASE_ID = re.compile(r"[0-9a-f]{32}")  # random row ids (uuid4 hex): anything else is no case
_CODE = re.compile(r"[A-Za-z]{3}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_COMPILED: dict[str, tuple[Mapping[str, Any], rules.Ruleset]] = {}
_VARIANTS: dict[tuple[str, str], rules.Ruleset] = {}
_CACHE_KEY = "nansen.triage_state"


def checksum_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalise_newlines(text: str) -> str:
    """LF line ends: a document that went through an HTML form comes back with CRLF (browsers
    normalise form values), and must keep the checksum it had when it was replayed."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_ruleset_text(text: str | bytes) -> Mapping[str, Any]:
    """A ruleset document from YAML or JSON text (safe loader, size-limited); RulesetError
    says what is wrong."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise rules.RulesetError("the file is not UTF-8 text") from None
    if len(text.encode("utf-8")) > MAX_RULESET_BYTES:
        raise rules.RulesetError(f"the document is larger than {MAX_RULESET_BYTES // 1024} KB")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise rules.RulesetError(f"not valid YAML or JSON{where}") from None
    if not isinstance(document, Mapping):
        raise rules.RulesetError("a ruleset document is a mapping (id, version, tracks, rules, ...)")
    _check_size_expanded(document)
    return document


MAX_RULESET_NODES = 200_000  # the shipped rulesets have a few thousand


def _check_size_expanded(document: Any) -> None:
    """Refuse documents whose YAML aliases expand to a huge tree ("billion laughs"): compiling
    walks the expanded tree. The count stops at the limit, so this check is cheap either way."""
    pending, seen = [document], 0
    while pending:
        node = pending.pop()
        seen += 1
        if seen > MAX_RULESET_NODES:
            raise rules.RulesetError("the document is too large once its aliases are expanded")
        if isinstance(node, Mapping):
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)


def compile_ruleset_text(text: str) -> tuple[Mapping[str, Any], rules.Ruleset]:
    """Parse and compile, once per process per checksum (rulesets are immutable)."""
    key = checksum_of(text)
    if key not in _COMPILED:
        document = parse_ruleset_text(text)
        _COMPILED[key] = (document, rules.load_ruleset(document))
    return _COMPILED[key]


def _shipped_text() -> str:
    name = current_app.config.get("TRIAGE_RULESET") or "eu-apr-2026"
    if name not in rules.shipped_ruleset_names():
        raise rules.RulesetError(f"TRIAGE_RULESET names no shipped ruleset: {name!r} "
                                 f"(available: {', '.join(rules.shipped_ruleset_names())})")
    return (rules.RULESETS_DIR / f"{name}.yaml").read_text(encoding="utf-8")


def _generation() -> str | None:
    return db.session.scalar(select(TriageSetting.value).where(TriageSetting.name == GENERATION_SETTING))


def _bump_generation(acting_user=None) -> None:
    """A new cache token, written in the caller's transaction: every worker reloads its state."""
    token = uuid.uuid4().hex
    row = db.session.get(TriageSetting, GENERATION_SETTING, populate_existing=True)
    if row is None:
        try:
            with db.session.begin_nested():
                db.session.add(TriageSetting(name=GENERATION_SETTING, value=token))
            return
        except IntegrityError:  # another transaction created it meanwhile
            row = db.session.get(TriageSetting, GENERATION_SETTING, populate_existing=True)
    row.value = token
    row.updated_by_id = getattr(acting_user, "id", None)
    db.session.flush()


def _load_state() -> TriageState:
    row = db.session.scalars(select(RulesetVersion).where(RulesetVersion.active.is_(True))
                             .order_by(RulesetVersion.activated_at.desc(), RulesetVersion.id.desc()).limit(1)).first()
    text = row.document if row is not None else _shipped_text()
    checksum = row.checksum if row is not None else checksum_of(text)
    document, ruleset = compile_ruleset_text(text)
    active = ActiveRuleset(ruleset, document, text, checksum, row.id if row is not None else None)
    settings = {s.name: s.value for s in db.session.scalars(select(TriageSetting))
                if not s.name.startswith("_")}
    rate_rows = tuple(db.session.scalars(select(RecognitionRate).order_by(RecognitionRate.nationality)))
    safe_rows = tuple(db.session.scalars(select(SafeCountry).order_by(SafeCountry.country)))
    reference = ReferenceData({r.nationality: float(r.rate_pct) for r in rate_rows},
                              {r.country: r.designation for r in safe_rows})
    context = build_context(active, settings, reference)
    return TriageState(active, settings, reference, context, rate_rows, safe_rows)


def build_context(active: ActiveRuleset, settings: Mapping[str, Any], reference: ReferenceData) -> dict[str, Any]:
    """The evaluation context for ``active`` (see the module docstring for the precedence).
    A stored setting the ruleset does not declare, or whose type no longer fits (after a switch
    of ruleset), is left out and logged, never fatal: the ruleset's default applies."""
    specs = active.context_specs
    context: dict[str, Any] = {}
    for name, value in settings.items():
        if name not in specs or name in REFERENCE_SETTINGS and _backed_by_reference(name, reference):
            continue
        try:
            active.ruleset.validate_context({name: value})
        except rules.ContextError as error:
            log.warning("triage setting %s ignored for %s: %s", name, active.label, error)
            continue
        context[name] = value
    if "recognition_rates" in specs:
        context["recognition_rates"] = dict(reference.recognition_rates)
    if "eu_safe_countries_of_origin" in specs and reference.safe_countries:
        context["eu_safe_countries_of_origin"] = sorted(
            country for country, designation in reference.safe_countries.items() if designation == "EU_list")
    return context


def _backed_by_reference(name: str, reference: ReferenceData) -> bool:
    if name == "recognition_rates":
        return True
    return name == "eu_safe_countries_of_origin" and bool(reference.safe_countries)


def current_state() -> TriageState:
    """The cached state, current as of this transaction (one primary-key read). Read-only: when
    no ruleset is stored yet, the shipped default is used without storing it."""
    generation = _generation()
    cached = current_app.extensions.get(_CACHE_KEY)
    if cached is not None and cached[0] == generation:
        return cached[1]
    state = _load_state()
    current_app.extensions[_CACHE_KEY] = (generation, state)
    return state


def writable_state() -> TriageState:
    """The state, with the shipped default stored and activated first if no ruleset is stored
    yet (audited RULESET_ACTIVATED, actor None), in the caller's transaction."""
    state = current_state()
    if state.active.row_id is not None:
        return state
    active = state.active
    row = db.session.scalar(select(RulesetVersion).where(RulesetVersion.ruleset_id == active.ruleset.id,
                                                         RulesetVersion.version == active.ruleset.version))
    if row is None:
        try:
            with db.session.begin_nested():
                row = RulesetVersion(ruleset_id=active.ruleset.id, version=active.ruleset.version,
                                     document=active.text, checksum=active.checksum)
                db.session.add(row)
        except IntegrityError:  # a concurrent first use stored it: use theirs
            return _reload()
    elif row.active:
        return _reload()
    row.active, row.activated_at = True, utcnow()
    db.session.flush()
    record(EventCode.RULESET_ACTIVATED, actor=None, subject=("triage_ruleset", row.id),
           details={"ruleset": active.label, "checksum": row.checksum,
                    "reason": "first use: the shipped ruleset named by TRIAGE_RULESET"})
    _bump_generation()
    return _reload()


def _reload() -> TriageState:
    current_app.extensions.pop(_CACHE_KEY, None)
    return current_state()


def active_ruleset() -> ActiveRuleset:
    """The ruleset triage uses now (read-only; see ``current_state``)."""
    return current_state().active


def _variant_for_track(active: ActiveRuleset, track: str) -> rules.Ruleset:
    """The active ruleset with ``track`` forced to win: evaluating it gives that track's deadline
    for a case's facts (used for an override's deadline). Built from the document, cached."""
    key = (active.checksum, track)
    if key not in _VARIANTS:
        document = copy.deepcopy(dict(active.document))
        best = min(t["precedence"] for t in document["tracks"])
        document["tracks"] = [dict(t, precedence=best - 1) if t["code"] == track else t for t in document["tracks"]]
        document["rules"] = [*document["rules"], {
            "id": "nansen-override", "legal_basis": "override", "reason_code": "TRACK_OVERRIDDEN",
            "track": track, "when": True}]
        _VARIANTS[key] = rules.load_ruleset(document)
    return _VARIANTS[key]


def deadline_for_track(state: TriageState, facts: Mapping[str, Any], track: str) -> rules.Deadline | None:
    """The statutory deadline ``track`` would have for these facts (None: no fixed date)."""
    if state.active.track(track) is None:
        return None
    return _variant_for_track(state.active, track).evaluate(facts, state.context).deadline


# -- triaging a case -------------------------------------------------------------------------------

def scoped_case(case_id: str, acting_user) -> Case:
    """A case of the user's office, or CaseNotFound (another office's case answers exactly like
    a missing one; the refusal is audited in a transaction of its own, like intake's)."""
    case = db.session.get(Case, case_id) if isinstance(case_id, str) and _CASE_ID.fullmatch(case_id) else None
    if case is None or (acting_user is not None and case.office_id != acting_user.office_id):
        if case is not None:
            record_and_commit(EventCode.ACCESS_DENIED, actor=acting_user, subject=("case", case.id),
                              outcome="denied", details={"reason": "other office"})
        raise CaseNotFound("no such case")
    return case


def facts_of_case(case: Case, state: TriageState | None = None) -> dict[str, Any]:
    """The case's facts in the TRIAGE.md vocabulary, with today's reference data."""
    state = state or current_state()
    return case_facts(registration_payload(case), case.assessment, state.reference)


def latest_record(case_id: str) -> TriageRecord | None:
    return db.session.scalars(select(TriageRecord).where(TriageRecord.case_id == case_id)
                              .order_by(TriageRecord.created_at.desc(), TriageRecord.id.desc()).limit(1)).first()


def active_override(case_id: str) -> TrackOverride | None:
    return db.session.scalars(select(TrackOverride).where(TrackOverride.case_id == case_id,
                                                          TrackOverride.withdrawn_at.is_(None))
                              .order_by(TrackOverride.created_at.desc()).limit(1)).first()


def grounds_blob(result: rules.TriageResult) -> dict:
    """What a TriageRecord stores (encrypted) of the result: every ground and the matched rules."""
    return {"grounds": [{"code": g.code, "reason_code": g.reason_code, "legal_basis": g.legal_basis,
                         "rule_id": g.rule_id, "track": g.track} for g in result.grounds],
            "rules": list(result.rules)}


def record_grounds(triage_record: TriageRecord) -> tuple[list[dict], list[str]]:
    """(grounds, matched rule ids) of a stored triage record."""
    blob = triage_record.grounds or {}
    if isinstance(blob, list):
        return blob, []
    return list(blob.get("grounds") or []), list(blob.get("rules") or [])


def _same_outcome(previous: TriageRecord, result: rules.TriageResult, facts: Mapping[str, Any]) -> bool:
    deadline = result.deadline.date if result.deadline else None
    return (previous.ruleset_label == result.ruleset_id + "@" + result.ruleset_version
            and previous.track == result.track
            and (previous.deadline.isoformat() if previous.deadline else None) == deadline
            and (previous.grounds or {}) == grounds_blob(result)
            and not changed_facts(previous.facts, facts))


@dataclass(frozen=True)
class NewCaseTriage:
    """Triage of a case not stored yet, as ``triage_case`` does it (the engine's result for the
    case's facts under the active ruleset), as row values for a bulk insert: the TriageRecord,
    the case's triage columns and the CASE_TRIAGED details. A new case has no override and no
    previous track, so there is no TRACK_CHANGED. The bulk import uses it; kept equal to
    triage_case by tests/integration/test_import_batch.py (the same claim both ways gives the
    same rows)."""

    label: str
    result: Any
    facts: dict
    priority: int

    @classmethod
    def of(cls, case_view, state: TriageState) -> NewCaseTriage:
        """``case_view``: anything with the attributes of a stored Case that facts_of_case reads;
        ``state``: from writable_state(), read once per batch."""
        facts = facts_of_case(case_view, state)
        result = state.active.ruleset.evaluate(facts, state.context)
        return cls(state.active.label, result, facts, priority_for(result.track, facts))

    @property
    def deadline(self) -> date | None:
        return date.fromisoformat(self.result.deadline.date) if self.result.deadline else None

    def record_fields(self) -> dict:
        deadline = self.result.deadline
        return {"ruleset_label": self.label, "track": self.result.track, "deadline": self.deadline,
                "deadline_description": deadline.description[:200] if deadline else None, "trigger": "registration"}

    def sealed_fields(self) -> dict:
        return {"grounds": grounds_blob(self.result), "facts": self.facts}

    def case_fields(self, now) -> dict:
        return {"track": self.result.track, "track_overridden": False, "statutory_deadline": self.deadline,
                "priority": self.priority, "triaged_at": now, "ruleset_label": self.label}

    def event_details(self, record_id: str) -> dict:
        return {"trigger": "registration", "ruleset": self.label, "track": self.result.track,
                "grounds": [g.code for g in self.result.grounds],
                "deadline": self.result.deadline.date if self.result.deadline else None,
                "record": record_id, "overridden": False}


def triage_case(case: Case, *, acting_user, trigger: str, facts: Mapping[str, Any] | None = None,
                only_if_changed: bool = False, changed: list[str] | None = None) -> TriageRecord | None:
    """Evaluate the case with the active ruleset, inside the caller's transaction (no commit).

    Stores a TriageRecord (the rules' track, every ground, the matched rules, the deadline and
    the facts used, grounds and facts encrypted) and sets the case's track, statutory deadline,
    priority, triaged_at and ruleset label -- unless an override is active: the override's track
    stays (with that track's deadline), the rules' result is still recorded. Audits
    CASE_TRIAGED, and TRACK_CHANGED (old/new) when the case's track changes. ``only_if_changed``
    (re-triage runs): when the latest record has the same ruleset, outcome and facts, nothing is
    written and None is returned.
    """
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown triage trigger {trigger!r}")
    state = writable_state()
    facts = dict(facts) if facts is not None else facts_of_case(case, state)
    result = state.active.ruleset.evaluate(facts, state.context)
    if only_if_changed and case.triaged_at is not None:
        previous = latest_record(case.id)
        if previous is not None and _same_outcome(previous, result, facts):
            return None
    triage_record = TriageRecord(case_id=case.id, ruleset_label=state.active.label, track=result.track,
                                 deadline=date.fromisoformat(result.deadline.date) if result.deadline else None,
                                 deadline_description=result.deadline.description[:200] if result.deadline else None,
                                 trigger=trigger, created_by_id=getattr(acting_user, "id", None))
    triage_record.grounds = grounds_blob(result)
    triage_record.facts = facts
    db.session.add(triage_record)

    old_track = case.track
    override = active_override(case.id) if case.track_overridden else None
    if override is not None:
        track, deadline = override.track, deadline_for_track(state, facts, override.track)
    else:
        track, deadline = result.track, result.deadline
        case.track_overridden = False
    case.track = track
    case.statutory_deadline = date.fromisoformat(deadline.date) if deadline else None
    case.priority = priority_for(track, facts)
    case.triaged_at = utcnow()
    case.ruleset_label = state.active.label
    db.session.flush()
    details = {"trigger": trigger, "ruleset": state.active.label, "track": result.track,
               "grounds": [g.code for g in result.grounds],
               "deadline": result.deadline.date if result.deadline else None,
               "record": triage_record.id, "overridden": override is not None}
    if changed:
        details["facts_changed"] = changed
    record(EventCode.CASE_TRIAGED, actor=acting_user, subject=("case", case.id), details=details)
    if old_track is not None and old_track != track:
        record(EventCode.TRACK_CHANGED, actor=acting_user, subject=("case", case.id),
               details={"old": old_track, "new": track, "trigger": trigger, "ruleset": state.active.label})
    return triage_record


def retriage_if_facts_changed(case: Case, *, acting_user, trigger: str = "facts_changed") -> TriageRecord | None:
    """Re-triage the case (in the caller's transaction) only when a fact the rules read differs
    from the facts of its latest triage. Reference-data facts are left out of the comparison:
    they follow the nationality, and a change of reference data alone is for a re-triage run.
    Returns the new record, or None when nothing that matters changed."""
    state = writable_state()
    previous = latest_record(case.id) if case.triaged_at is not None else None
    facts = facts_of_case(case, state)
    if previous is None:
        return triage_case(case, acting_user=acting_user, trigger=trigger, facts=facts)
    before = previous.facts or {}
    ruleset = state.active.ruleset
    read = (set(ruleset.evaluate(facts, state.context).facts_used)
            | set(ruleset.evaluate(before, state.context).facts_used)) - set(REFERENCE_FACTS)
    changed = changed_facts(before, facts, read)
    if not changed:
        return None
    return triage_case(case, acting_user=acting_user, trigger=trigger, facts=facts, changed=changed)


# -- assessment facts ------------------------------------------------------------------------------

def set_assessment_facts(case_id: str, facts: Mapping[str, Any], *, acting_user,
                         expected_version: int | None = None) -> Case:
    """Record procedural assessment facts (``ASSESSMENT_FACTS``: yes / no / null = not
    established) for a case of the user's office. Values are checked against
    the vocabulary (every failure reported); given keys replace the stored ones, null removes
    one. Audited CASE_UPDATED with old/new values; re-triages when a fact the rules read
    changed; commits. ``expected_version``: the case version the user opened (TriageConflict
    when someone saved since). Needs CASE_EDIT and QUEUE_WORK (case work: caseworkers and
    supervisors, not registration officers)."""
    _require(acting_user, Permission.CASE_EDIT)
    _require(acting_user, Permission.QUEUE_WORK)
    case = scoped_case(case_id, acting_user)
    errors: dict[str, list[str]] = {}
    for name in facts:
        if name not in ASSESSMENT_FACTS:
            errors.setdefault(str(name), []).append("Not an assessment fact.")
    if not errors:
        try:
            rules.validate_facts(dict(facts))
        except rules.FactError as error:
            for name, message in error.errors:
                errors.setdefault(name, []).append(message)
    if errors:
        raise TriageInvalid(errors)
    if expected_version is not None and case.version != expected_version:
        raise TriageConflict("the case was saved by someone else meanwhile")
    old = dict(case.assessment or {})
    new = {k: v for k, v in {**old, **facts}.items() if v is not None}
    changes = {k: {"old": old.get(k), "new": new.get(k)}
               for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)}
    if not changes:
        db.session.rollback()
        return case
    case.assessment = new or None
    record(EventCode.CASE_UPDATED, actor=acting_user, subject=("case", case.id), details={"assessment": changes})
    retriage_if_facts_changed(case, acting_user=acting_user)
    try:
        db.session.commit()
    except StaleDataError:
        db.session.rollback()
        raise TriageConflict("the case was saved by someone else meanwhile") from None
    return case


# -- overrides -------------------------------------------------------------------------------------

def _facts_for_case_now(case: Case, state: TriageState) -> dict[str, Any]:
    previous = latest_record(case.id)
    return dict(previous.facts) if previous is not None and previous.facts else facts_of_case(case, state)


def override_track(case_id: str, track: str, reason: str, *, acting_user) -> TrackOverride:
    """Put a case of the user's office on ``track`` against the rules (TRIAGE_OVERRIDE). The
    reason is mandatory (up to 2000 characters; kept encrypted). A previous active override is
    superseded. The case takes the track, that track's deadline and priority; the override is
    kept across re-triage until withdrawn. Audited TRACK_OVERRIDDEN (old, new, reason); commits."""
    _require(acting_user, Permission.TRIAGE_OVERRIDE)
    case = scoped_case(case_id, acting_user)
    state = writable_state()
    reason = (reason or "").strip()
    errors: dict[str, list[str]] = {}
    if state.active.track(track) is None:
        errors["track"] = ["Choose one of the tracks of the active ruleset."]
    if not reason:
        errors["reason"] = ["Give the reason for the override."]
    elif len(reason) > MAX_REASON_LENGTH:
        errors["reason"] = [f"Keep the reason under {MAX_REASON_LENGTH} characters."]
    if errors:
        db.session.rollback()
        raise TriageInvalid(errors)
    now = utcnow()
    previous = active_override(case.id)
    if previous is not None:
        previous.withdrawn_at, previous.withdrawn_by_id = now, acting_user.id
    override = TrackOverride(case_id=case.id, track=track, created_by_id=acting_user.id, created_at=now)
    override.reason = reason
    db.session.add(override)
    facts = _facts_for_case_now(case, state)
    deadline = deadline_for_track(state, facts, track)
    old_track = case.track
    case.track, case.track_overridden = track, True
    case.statutory_deadline = date.fromisoformat(deadline.date) if deadline else None
    case.priority = priority_for(track, facts)
    db.session.flush()
    record(EventCode.TRACK_OVERRIDDEN, actor=acting_user, subject=("case", case.id),
           details={"old": old_track, "new": track, "reason": reason, "override": override.id,
                    **({"supersedes": previous.id} if previous is not None else {})})
    db.session.commit()
    return override


def withdraw_override(case_id: str, *, acting_user) -> Case:
    """Withdraw the active override of a case of the user's office (TRIAGE_OVERRIDE) and
    re-apply the rules' latest result (track, deadline, priority; triaged anew if it was never
    triaged). Audited TRACK_OVERRIDE_WITHDRAWN (old, new); commits."""
    _require(acting_user, Permission.TRIAGE_OVERRIDE)
    case = scoped_case(case_id, acting_user)
    override = active_override(case.id)
    if override is None:
        db.session.rollback()
        raise TriageInvalid({"override": ["This case has no active override."]})
    override.withdrawn_at, override.withdrawn_by_id = utcnow(), acting_user.id
    case.track_overridden = False
    previous = latest_record(case.id)
    if previous is None:
        triage_case(case, acting_user=acting_user, trigger="manual")
    else:
        case.track = previous.track
        case.statutory_deadline = previous.deadline
        case.priority = priority_for(previous.track, previous.facts or {})
    db.session.flush()
    record(EventCode.TRACK_OVERRIDE_WITHDRAWN, actor=acting_user, subject=("case", case.id),
           details={"old": override.track, "new": case.track, "override": override.id})
    db.session.commit()
    return case


# -- what the case page shows ----------------------------------------------------------------------

@dataclass(frozen=True)
class GroundView:
    code: str
    reason_code: str
    legal_basis: str
    track: str
    track_label: str


@dataclass(frozen=True)
class RecordView:
    id: str
    created_at: datetime
    trigger: str
    track: str
    track_label: str
    deadline: date | None
    deadline_description: str | None
    ruleset_label: str
    grounds: list[GroundView]
    rules: list[str]
    by: str | None


@dataclass(frozen=True)
class OverrideView:
    id: str
    track: str
    track_label: str
    reason: str
    by: str
    at: datetime


@dataclass
class TriagePanel:
    """What the triage panel of a case shows (``triage/_case_panel.html``)."""

    case: Case
    ruleset_label: str
    track: str | None
    track_label: str
    deadline: date | None
    deadline_description: str | None
    latest: RecordView | None
    override: OverrideView | None
    history: list[RecordView]
    track_choices: list[tuple[str, str]]
    assessment: dict[str, Any]
    active_ruleset_label: str
    past_overrides: list[OverrideView] = field(default_factory=list)


def _names(user_ids) -> dict[int, str]:
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    return {u.id: u.full_name for u in db.session.scalars(select(User).where(User.id.in_(ids)))}


def triage_panel(case: Case, *, acting_user) -> TriagePanel:
    """The triage panel of a case the caller already opened (scope checked and the read audited
    by the caller, e.g. the intake case page): no audit, no commit."""
    state = current_state()
    active = state.active
    records = db.session.scalars(select(TriageRecord).where(TriageRecord.case_id == case.id)
                                 .order_by(TriageRecord.created_at.desc(), TriageRecord.id.desc())).all()
    overrides = db.session.scalars(select(TrackOverride).where(TrackOverride.case_id == case.id)
                                   .order_by(TrackOverride.created_at.desc())).all()
    names = _names([r.created_by_id for r in records] + [o.created_by_id for o in overrides])
    history = []
    for item in records:
        grounds, matched = record_grounds(item)
        history.append(RecordView(
            id=item.id, created_at=item.created_at, trigger=item.trigger, track=item.track,
            track_label=active.track_label(item.track), deadline=item.deadline,
            deadline_description=item.deadline_description, ruleset_label=item.ruleset_label,
            grounds=[GroundView(g.get("code", ""), g.get("reason_code", ""), g.get("legal_basis", ""),
                                g.get("track", ""), active.track_label(g.get("track"))) for g in grounds],
            rules=matched, by=names.get(item.created_by_id)))
    views = [OverrideView(o.id, o.track, active.track_label(o.track), o.reason or "", names.get(o.created_by_id, ""),
                          o.created_at) for o in overrides]
    current = next((v for v, o in zip(views, overrides, strict=True) if o.withdrawn_at is None), None)
    latest = history[0] if history else None
    description = latest.deadline_description if latest else None
    if current is not None and latest is not None and latest.track != current.track:
        deadline = deadline_for_track(state, records[0].facts or {}, current.track)
        description = deadline.description if deadline else None
    return TriagePanel(
        case=case, ruleset_label=case.ruleset_label or "", track=case.track, track_label=active.track_label(case.track),
        deadline=case.statutory_deadline, deadline_description=description, latest=latest, override=current,
        history=history, track_choices=[(t.code, t.label) for t in active.ruleset.tracks],
        assessment=dict(case.assessment or {}), active_ruleset_label=active.label,
        past_overrides=[v for v, o in zip(views, overrides, strict=True) if o.withdrawn_at is not None])


def open_triage(case_id: str, *, acting_user) -> TriagePanel:
    """Open the triage panel of a case of the user's office (CASE_VIEW and, since grounds can
    reveal special-category data, CASE_VIEW_SPECIAL_CATEGORY). The read is audited
    (RECORD_VIEWED, view "triage"); commits."""
    _require(acting_user, Permission.CASE_VIEW)
    _require(acting_user, Permission.CASE_VIEW_SPECIAL_CATEGORY)
    case = scoped_case(case_id, acting_user)
    panel = triage_panel(case, acting_user=acting_user)
    record(EventCode.RECORD_VIEWED, actor=acting_user, subject=("case", case.id), details={"view": "triage"})
    db.session.commit()
    return panel


# -- settings --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SettingView:
    """One context setting of the active ruleset as the settings page shows it."""

    name: str
    type: str
    description: str
    choices: tuple[str, ...]
    default: Any
    value: Any  # effective value
    stored: bool  # an administrator set it (otherwise the ruleset's default applies)
    editable: bool
    note: str = ""


def _is_editable(name: str, spec: Mapping[str, Any], reference: ReferenceData) -> tuple[bool, str]:
    if spec.get("type") == "rate_table" or name == "recognition_rates":
        return False, "Reference data: maintained by supervisors under Recognition rates."
    if name in REFERENCE_SETTINGS and _backed_by_reference(name, reference):
        return False, "Reference data: the safe-country list maintained by supervisors applies."
    if spec.get("type") == "date" and spec.get("default") == "today":
        return False, "The day of each triage."
    return True, ""


def settings_overview() -> list[SettingView]:
    """Every context setting of the active ruleset with its effective value (read-only)."""
    state = current_state()
    specs = state.active.context_specs
    defaults = state.active.ruleset.context_defaults
    views = []
    for name, spec in specs.items():
        editable, note = _is_editable(name, spec, state.reference)
        default = defaults.get(name)
        value = state.context.get(name, default)
        views.append(SettingView(
            name=name, type=spec.get("type", ""), description=str(spec.get("description") or ""),
            choices=tuple(spec.get("choices") or ()), default=_plain(default), value=_plain(value),
            stored=name in state.settings and name in state.context, editable=editable, note=note))
    return views


def _plain(value: Any) -> Any:
    """JSON-friendly copy of a context value (tuples to lists, dates to ISO text)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, date):
        return value.isoformat()
    return value


def update_settings(values: Mapping[str, Any], *, acting_user, reset: tuple[str, ...] = ()) -> dict[str, dict]:
    """Change context settings of the active ruleset (SETTINGS_MANAGE). Every value is type
    checked by the ruleset (``validate_context``); every failure is reported and nothing is
    saved. ``reset`` names settings to return to the ruleset's default. Audited SETTINGS_CHANGED
    with old and new values (only actual changes); commits. Returns the changes."""
    _require(acting_user, Permission.SETTINGS_MANAGE)
    state = writable_state()
    specs = state.active.context_specs
    errors: dict[str, list[str]] = {}
    for name in [*values, *reset]:
        spec = specs.get(name)
        if spec is None or not _is_editable(name, spec, state.reference)[0]:
            errors.setdefault(str(name), []).append("Not a setting that can be edited here.")
    for name, value in values.items():
        if name in errors:
            continue
        try:
            state.active.ruleset.validate_context({name: value})
        except rules.ContextError as error:
            errors.setdefault(name, []).append(str(error).split(": ", 1)[-1])
    if errors:
        db.session.rollback()
        raise TriageInvalid(errors)
    defaults = state.active.ruleset.context_defaults
    changes: dict[str, dict] = {}
    for name in reset:
        row = db.session.get(TriageSetting, name)
        if row is not None:
            changes[name] = {"old": _plain(row.value), "new": _plain(defaults.get(name))}
            db.session.delete(row)
    for name, value in values.items():
        old = _plain(state.context.get(name, defaults.get(name)))
        new = _plain(value)
        if old == new and name in state.settings:
            continue
        row = db.session.get(TriageSetting, name)
        if row is None:
            row = TriageSetting(name=name)
            db.session.add(row)
        row.value, row.updated_by_id = new, getattr(acting_user, "id", None)
        if old != new:
            changes[name] = {"old": old, "new": new}
    if not changes:
        db.session.rollback()
        return {}
    db.session.flush()
    record(EventCode.SETTINGS_CHANGED, actor=acting_user, subject=("triage_settings", state.active.ruleset.id),
           details={"area": "triage", "ruleset": state.active.label, "changes": changes})
    _bump_generation(acting_user)
    db.session.commit()
    return changes


# -- reference data --------------------------------------------------------------------------------

def _check_country(value: Any, errors: dict, name: str) -> str | None:
    code = str(value or "").strip().upper()
    if code not in country_codes():
        errors.setdefault(name, []).append("Enter an ISO 3166-1 alpha-3 country code (XKX for Kosovo).")
        return None
    return code


def _check_source(value: Any, errors: dict) -> str | None:
    text = str(value or "").strip()
    if not text:
        errors.setdefault("source", []).append("Name the source (e.g. Eurostat migr_asydcfsta, 2025).")
        return None
    if len(text) > 200:
        errors.setdefault("source", []).append("Keep the source under 200 characters.")
        return None
    if _CONTROL.search(text):
        errors.setdefault("source", []).append("Remove the control characters.")
        return None
    return text


def _check_as_of(value: Any, errors: dict) -> date | None:
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date):
        try:
            value = date.fromisoformat(str(value or "").strip())
        except ValueError:
            errors.setdefault("as_of", []).append("Enter the date of the data as YYYY-MM-DD.")
            return None
    if value > date.today():
        errors.setdefault("as_of", []).append("The date of the data cannot be in the future.")
        return None
    return value


def _check_rate(value: Any, errors: dict) -> Decimal | None:
    try:
        rate = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        rate = None
    if rate is None or not rate.is_finite() or not Decimal(0) <= rate <= Decimal(100):
        errors.setdefault("rate_pct", []).append("Enter a percentage between 0 and 100 (e.g. 12.5).")
        return None
    return rate.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _check_designation(value: Any, errors: dict) -> str | None:
    text = str(value or "").strip()
    if text not in SAFE_COUNTRY_DESIGNATIONS:
        errors.setdefault("designation", []).append("Choose EU_list or national_list.")
        return None
    return text


def _rate_values(row: RecognitionRate | None) -> dict | None:
    if row is None:
        return None
    return {"rate_pct": f"{Decimal(row.rate_pct):.2f}", "source": row.source, "as_of": row.as_of.isoformat()}


def _safe_values(row: SafeCountry | None) -> dict | None:
    if row is None:
        return None
    return {"designation": row.designation, "source": row.source, "as_of": row.as_of.isoformat()}


def _valid_rate(nationality, rate_pct, source, as_of) -> dict:
    errors: dict[str, list[str]] = {}
    values = {"nationality": _check_country(nationality, errors, "nationality"),
              "rate_pct": _check_rate(rate_pct, errors),
              "source": _check_source(source, errors), "as_of": _check_as_of(as_of, errors)}
    if errors:
        raise TriageInvalid(errors)
    return values


def _valid_safe_country(country, designation, source, as_of) -> dict:
    errors: dict[str, list[str]] = {}
    values = {"country": _check_country(country, errors, "country"),
              "designation": _check_designation(designation, errors),
              "source": _check_source(source, errors), "as_of": _check_as_of(as_of, errors)}
    if errors:
        raise TriageInvalid(errors)
    return values


@dataclass(frozen=True)
class _Table:
    """How one reference table is edited: its model, key, columns, checks and audit shape."""

    name: str
    model: type
    key: str
    header: tuple[str, ...]
    validate: Callable[..., dict]
    values: Callable[[Any], dict | None]


RATES = _Table("recognition_rate", RecognitionRate, "nationality", RATES_HEADER, _valid_rate, _rate_values)
SAFE_COUNTRIES = _Table("safe_country", SafeCountry, "country", SAFE_COUNTRIES_HEADER, _valid_safe_country,
                        _safe_values)


def _apply_row(table: _Table, values: dict, acting_user) -> tuple[dict | None, dict | None]:
    row = db.session.get(table.model, values[table.key])
    old = table.values(row)
    if row is None:
        row = table.model(**{table.key: values[table.key]})
        db.session.add(row)
    for column in table.header[1:]:
        setattr(row, column, values[column])
    row.updated_by_id = getattr(acting_user, "id", None)
    new = {c: (f"{values[c]:.2f}" if isinstance(values[c], Decimal) else
               values[c].isoformat() if isinstance(values[c], date) else values[c]) for c in table.header[1:]}
    return old, new


def _audit_reference(table: _Table, changes: dict, acting_user, **extra) -> None:
    db.session.flush()
    record(EventCode.REFERENCE_DATA_CHANGED, actor=acting_user, subject=("reference_data", table.name),
           details={"table": table.name, "changes": changes, **extra})
    _bump_generation(acting_user)
    db.session.commit()


def _set_one(table: _Table, values: dict, acting_user) -> dict:
    old, new = _apply_row(table, values, acting_user)
    if old == new:
        db.session.rollback()
        return {}
    changes = {values[table.key]: {"old": old, "new": new}}
    _audit_reference(table, changes, acting_user)
    return changes


def _delete_one(table: _Table, key: str, acting_user) -> dict:
    key = str(key or "").strip()
    row = db.session.get(table.model, key.upper()) if _CODE.fullmatch(key) else None
    if row is None:
        db.session.rollback()
        raise TriageInvalid({table.key: ["No such entry."]})
    changes = {getattr(row, table.key): {"old": table.values(row), "new": None}}
    db.session.delete(row)
    _audit_reference(table, changes, acting_user)
    return changes


def set_recognition_rate(nationality: str, rate_pct, source: str, as_of, *, acting_user) -> dict:
    """Create or change the recognition rate of one nationality (REFERENCE_DATA_EDIT): alpha-3
    code, percentage 0-100 (two decimals), source, date of the data (not in the future). Every
    failure is reported (TriageInvalid). Audited REFERENCE_DATA_CHANGED with old/new; commits.
    Returns the changes (empty when nothing changed)."""
    _require(acting_user, Permission.REFERENCE_DATA_EDIT)
    return _set_one(RATES, _valid_rate(nationality, rate_pct, source, as_of), acting_user)


def delete_recognition_rate(nationality: str, *, acting_user) -> dict:
    """Remove the rate of one nationality (REFERENCE_DATA_EDIT); audited with its old values."""
    _require(acting_user, Permission.REFERENCE_DATA_EDIT)
    return _delete_one(RATES, nationality, acting_user)


def set_safe_country(country: str, designation: str, source: str, as_of, *, acting_user) -> dict:
    """Create or change a safe country of origin (REFERENCE_DATA_EDIT): alpha-3 code,
    ``EU_list`` or ``national_list``, source and date. Audited with old/new; commits."""
    _require(acting_user, Permission.REFERENCE_DATA_EDIT)
    return _set_one(SAFE_COUNTRIES, _valid_safe_country(country, designation, source, as_of), acting_user)


def delete_safe_country(country: str, *, acting_user) -> dict:
    """Remove a country from the safe-country list (REFERENCE_DATA_EDIT); audited."""
    _require(acting_user, Permission.REFERENCE_DATA_EDIT)
    return _delete_one(SAFE_COUNTRIES, country, acting_user)


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0


def parse_reference_csv(data: bytes | str, header: tuple[str, ...]) -> tuple[list[tuple[int, list[str]]],
                                                                               list[tuple[int, str]]]:
    """CSV text -> ([(line number, cells)], [(line number, problem)]). Size-limited, UTF-8 (a
    byte-order mark is allowed), the first line must be exactly ``header``; blank lines are
    skipped; line numbers are those of the file (a quoted line break counts)."""
    if isinstance(data, bytes):
        if len(data) > MAX_CSV_BYTES:
            return [], [(0, f"the file is larger than {MAX_CSV_BYTES // 1024} KB")]
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return [], [(0, "the file is not UTF-8 text")]
    elif len(data.encode("utf-8")) > MAX_CSV_BYTES:
        return [], [(0, f"the file is larger than {MAX_CSV_BYTES // 1024} KB")]
    data = data.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(data, newline=""), strict=True)
    rows, problems, seen_header = [], [], False
    try:
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if not seen_header:
                seen_header = True
                if tuple(cell.strip().lower() for cell in cells) != header:
                    problems.append((line, f"the first line must be the header {','.join(header)}"))
                    return [], problems
                continue
            if len(rows) >= MAX_CSV_ROWS:
                problems.append((line, f"more than {MAX_CSV_ROWS} rows: split the file"))
                break
            if len(cells) != len(header):
                problems.append((line, f"expected {len(header)} columns ({','.join(header)}), found {len(cells)}"))
                continue
            rows.append((line, cells))
    except csv.Error as error:
        problems.append((reader.line_num, f"malformed CSV ({error})"))
    if not seen_header and not problems:
        problems.append((1, f"the file is empty: the first line must be the header {','.join(header)}"))
    return rows, problems


def _import(table: _Table, data: bytes | str, acting_user, replace: bool) -> ImportReport:
    rows, problems = parse_reference_csv(data, table.header)
    checked, first_line = [], {}
    for line, cells in rows:
        try:
            values = table.validate(*cells)
        except TriageInvalid as invalid:
            for name, messages in invalid.errors.items():
                problems.append((line, f"{name}: {' '.join(messages)}"))
            continue
        key = values[table.key]
        if key in first_line:
            problems.append((line, f"{key} is already on line {first_line[key]}"))
            continue
        first_line[key] = line
        checked.append(values)
    if problems:
        db.session.rollback()
        raise ImportRejected(sorted(problems))
    report, changes = ImportReport(rows=len(checked)), {}
    for values in checked:
        old, new = _apply_row(table, values, acting_user)
        if old == new:
            report.unchanged += 1
            continue
        report.created += old is None
        report.updated += old is not None
        changes[values[table.key]] = {"old": old, "new": new}
    if replace:
        key_column = getattr(table.model, table.key)
        for row in db.session.scalars(select(table.model).where(key_column.notin_(list(first_line) or [""]))):
            changes[getattr(row, table.key)] = {"old": table.values(row), "new": None}
            db.session.delete(row)
            report.removed += 1
    if not changes:
        db.session.rollback()
        return report
    _audit_reference(table, changes, acting_user, imported=True, replace=replace)
    return report


def import_recognition_rates(data: bytes | str, *, acting_user, replace: bool = False) -> ImportReport:
    """Import recognition rates from CSV ``nationality,rate_pct,source,as_of`` (REFERENCE_DATA_EDIT).
    All or nothing: every bad line is reported with its number (ImportRejected) and nothing is
    written. Rows are created or updated; ``replace`` also removes nationalities absent from the
    file. One REFERENCE_DATA_CHANGED event lists every change (old/new); commits."""
    _require(acting_user, Permission.REFERENCE_DATA_EDIT)
    return _import(RATES, data, acting_user, replace)


def import_safe_countries(data: bytes | str, *, acting_user, replace: bool = False) -> ImportReport:
    """Import the safe-country list from CSV ``country,designation,source,as_of``, all or
    nothing, like ``import_recognition_rates``."""
    _require(acting_user, Permission.REFERENCE_DATA_EDIT)
    return _import(SAFE_COUNTRIES, data, acting_user, replace)


def reference_rows() -> tuple[tuple[RecognitionRate, ...], tuple[SafeCountry, ...]]:
    """The rows of both reference tables, current as of this transaction."""
    state = current_state()
    return state.rate_rows, state.safe_rows


# -- replay and activation -------------------------------------------------------------------------

NO_TRACK = "(none)"


@dataclass
class ReplayReport:
    """Where the open caseload would go under a candidate ruleset. ``matrix[(from, to)]`` counts
    cases (``from`` is the case's track today, NO_TRACK if never triaged); ``examples`` holds up
    to five case references per cell. Overridden cases keep their track (counted in
    ``overridden``); ``failed`` counts cases whose facts could not be read."""

    candidate: str
    current: str
    checksum: str
    total: int = 0
    moved: int = 0
    overridden: int = 0
    from_registration: int = 0
    failed: int = 0
    matrix: dict[tuple[str, str], int] = field(default_factory=dict)
    examples: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    candidate_tracks: list[tuple[str, str]] = field(default_factory=list)

    def add(self, source: str | None, target: str, reference: str, show_example: bool) -> None:
        cell = (source or NO_TRACK, target)
        self.total += 1
        self.moved += cell[0] != target
        self.matrix[cell] = self.matrix.get(cell, 0) + 1
        if show_example:
            shown = self.examples.setdefault(cell, [])
            if len(shown) < REPLAY_EXAMPLES:
                shown.append(reference)

    @property
    def sources(self) -> list[str]:
        return sorted({s for s, _ in self.matrix}, key=self._order)

    @property
    def targets(self) -> list[str]:
        return sorted({t for _, t in self.matrix}, key=self._order)

    def _order(self, code: str) -> tuple:
        codes = [c for c, _ in self.candidate_tracks]
        return (codes.index(code), code) if code in codes else (len(codes), code)

    def moves(self) -> list[tuple[str, str, int, list[str]]]:
        """(from, to, count, examples) of the cells whose track changes, largest first."""
        return sorted(((s, t, n, self.examples.get((s, t), [])) for (s, t), n in self.matrix.items() if s != t),
                      key=lambda item: (-item[2], item[0], item[1]))


def _candidate(document: str | bytes | Mapping[str, Any]) -> tuple[str, Mapping[str, Any], rules.Ruleset]:
    if isinstance(document, Mapping):
        text = json.dumps(document, indent=2, sort_keys=False, default=str)
    else:
        text = document.decode("utf-8-sig") if isinstance(document, bytes) else document
    text = normalise_newlines(text.removeprefix("\ufeff"))
    parsed = parse_ruleset_text(text)
    return text, parsed, rules.load_ruleset(parsed)


def _open_cases(query):
    return query.where(Case.status.notin_(queues.CLOSED_STATUSES))


def replay(ruleset_document: str | bytes | Mapping[str, Any], *, acting_user=None, batch_size: int = 2000,
           example_office_id: int | None = None) -> ReplayReport:
    """Evaluate the whole open caseload with a candidate ruleset, writing nothing (the work runs
    on a read-only connection of its own). This is also the re-triage dry run (``flask triage
    retriage --dry-run`` replays the active ruleset). Open cases are read ``batch_size`` at a
    time in reference order (keyset pagination: each batch is one indexed range read, whatever
    the caseload's size), with only the columns needed; each case's latest TriageRecord facts
    are decrypted and brought up to today's reference data; cases never triaged are mapped from
    their registration, in batches. The candidate gets today's settings and reference data,
    prepared once. Examples are case references, from ``example_office_id`` only when given
    (the acting user's office in the UI). Needs REFERENCE_DATA_EDIT. RulesetError when the
    document is not a valid ruleset."""
    _require(acting_user, Permission.REFERENCE_DATA_EDIT)
    text, document, candidate = _candidate(ruleset_document)
    state = current_state()
    db.session.rollback()  # end the session's transaction: the replay reads on its own connection
    active = ActiveRuleset(candidate, document, text, checksum_of(text), None)
    context = candidate.prepare_context(build_context(active, state.settings, state.reference))
    report = ReplayReport(candidate=candidate.label, current=state.active.label, checksum=active.checksum,
                          candidate_tracks=[(t.code, t.label) for t in candidate.tracks])
    untriaged: list[tuple] = []
    options = {"read_only": True}
    if db.engine.dialect.name == "postgresql":
        options["postgresql_readonly"] = True
    decrypt, evaluate, reference_data = crypto.keyring().decrypt, candidate.evaluate, state.reference
    context_prefix = f"{TriageRecord.__tablename__}.facts:"
    with db.engine.connect().execution_options(**options) as connection:
        for cases, latest in _open_case_batches(connection, batch_size):
            for case_id, reference, office_id, track, overridden in cases:
                found = latest.get(case_id)
                if found is None:
                    untriaged.append((case_id, reference, office_id, track, overridden))
                    continue
                record_id, blob = found
                try:
                    facts = json.loads(decrypt(blob, context_prefix + record_id))
                    target = track if overridden else evaluate(
                        apply_reference_data(facts, reference_data, in_place=True), context).track
                except Exception:  # noqa: BLE001 - one unreadable case must not stop the replay
                    report.failed += 1
                    continue
                report.overridden += bool(overridden)
                report.add(track, target, reference, example_office_id in (None, office_id))
        _replay_untriaged(connection, untriaged, candidate, context, state, report, batch_size, example_office_id)
    return report


def _open_case_batches(connection, batch_size: int):
    """Yield ``(cases, latest)`` for the open caseload, ``batch_size`` cases at a time in
    reference order: ``cases`` are ``(id, reference, office_id, track, track_overridden)`` rows,
    ``latest`` maps a case id to its newest TriageRecord's ``(id, encrypted facts)`` (newest by
    ``created_at``, then id; a case without one is absent).

    Two indexed reads per batch, each with two bound values: the next ``batch_size`` open cases
    on the unique reference index, then the triage records of the open cases in that reference
    range through the record table's case index. What it replaces measured 125 us a case on
    PostgreSQL: a correlated "latest record" subquery per case (the planner hashed the whole
    record table and sorted the blobs on disk). An IN list of the batch's ids was re-parsed by
    the driver every batch, and a plain join let a stale estimate pick a sequential scan of the
    record table per batch; PostgreSQL gets the ids as one array (``= ANY``), which always
    probes the index."""
    table = TriageRecord.__table__
    cases_query = _open_cases(select(Case.id, Case.reference, Case.office_id, Case.track, Case.track_overridden)
                              .order_by(Case.reference).limit(batch_size))
    # created_at raw from the driver: it is only compared with its own kind, and the same
    # ordering as ORDER BY created_at holds for SQLite's ISO text and PostgreSQL's timestamps.
    records_query = select(table.c.case_id, type_coerce(table.c.created_at, NullType()), table.c.id, table.c.facts)
    postgresql = connection.dialect.name == "postgresql"
    last_reference = None
    while True:
        query = cases_query if last_reference is None else cases_query.where(Case.reference > last_reference)
        cases = connection.execute(query).all()
        if not cases:
            return
        in_range = [Case.reference <= cases[-1][1]]
        if last_reference is not None:
            in_range.append(Case.reference > last_reference)
        if postgresql:
            ids = _open_cases(select(Case.id)).where(*in_range).scalar_subquery()
            records = records_query.where(table.c.case_id == any_(func.array(ids)))  # = ANY (ARRAY(SELECT ...))
        else:
            records = records_query.where(table.c.case_id.in_(_open_cases(select(Case.id)).where(*in_range)))
        latest: dict[str, tuple] = {}
        for case_id, created_at, record_id, blob in connection.execute(records):
            newest = latest.get(case_id)
            if newest is None or (created_at, record_id) > newest[:2]:
                latest[case_id] = (created_at, record_id, blob)
        yield cases, {case_id: (record_id, blob) for case_id, (_, record_id, blob) in latest.items()}
        last_reference = cases[-1][1]


def _replay_untriaged(connection, untriaged, candidate, context, state, report, batch_size,
                      example_office_id) -> None:
    """Cases without a triage record (registered before triage existed): mapped from their
    registration, loaded ``batch_size`` at a time on the replay's read-only connection."""
    with Session(bind=connection) as session:
        for start in range(0, len(untriaged), batch_size):
            chunk = untriaged[start:start + batch_size]
            cases = {c.id: c for c in session.scalars(select(Case).where(Case.id.in_([row[0] for row in chunk]))
                                                      .options(selectinload(Case.persons)))}
            for case_id, reference, office_id, track, overridden in chunk:
                try:
                    case = cases[case_id]
                    facts = case_facts(registration_payload(case), case.assessment, state.reference)
                    target = track if overridden else candidate.evaluate(facts, context).track
                except Exception:  # noqa: BLE001
                    report.failed += 1
                    continue
                report.overridden += bool(overridden)
                report.from_registration += 1
                report.add(track, target, reference, example_office_id in (None, office_id))
            session.expunge_all()


def activate_ruleset(document: str | bytes | Mapping[str, Any], *, acting_user) -> RulesetVersion:
    """Store a ruleset document (exactly as given) and make it the active one
    (REFERENCE_DATA_EDIT; ``acting_user=None`` for an operator's CLI). The document must compile
    (RulesetError). A version already stored is re-activated only if its content is the same;
    otherwise the new document needs a new version (TriageInvalid). Audited RULESET_ACTIVATED
    (ruleset, checksum, previous ruleset, stored settings it does not declare); commits.
    Re-triages nothing: run ``flask triage retriage`` for that."""
    _require(acting_user, Permission.REFERENCE_DATA_EDIT)
    text, parsed, ruleset = _candidate(document)
    checksum = checksum_of(text)
    state = current_state()
    row = db.session.scalar(select(RulesetVersion).where(RulesetVersion.ruleset_id == ruleset.id,
                                                         RulesetVersion.version == ruleset.version))
    if row is not None and row.checksum != checksum:
        db.session.rollback()
        raise TriageInvalid({"document": [f"{ruleset.label} is already stored with other content: "
                                          "give the changed document a new version."]})
    if row is not None and row.active:
        db.session.rollback()
        raise TriageInvalid({"document": [f"{ruleset.label} is already the active ruleset."]})
    previous = db.session.scalars(select(RulesetVersion).where(RulesetVersion.active.is_(True))).all()
    for old in previous:
        old.active = False
    if row is None:
        row = RulesetVersion(ruleset_id=ruleset.id, version=ruleset.version, document=text, checksum=checksum)
        db.session.add(row)
    row.active, row.activated_at, row.activated_by_id = True, utcnow(), getattr(acting_user, "id", None)
    db.session.flush()
    declared = set(parsed.get("context") or {})
    record(EventCode.RULESET_ACTIVATED, actor=acting_user, subject=("triage_ruleset", row.id),
           details={"ruleset": ruleset.label, "checksum": checksum,
                    "previous": previous[0].ruleset_id + "@" + previous[0].version if previous else state.active.label,
                    "settings_not_declared": sorted(set(state.settings) - declared)})
    _bump_generation(acting_user)
    db.session.commit()
    return row


@dataclass
class RetriageReport:
    examined: int = 0
    retriaged: int = 0
    moved: int = 0


def retriage_open_cases(*, acting_user=None, batch_size: int = 500,
                        on_batch: Callable[[int], None] | None = None) -> RetriageReport:
    """Re-triage every open case with the active ruleset, ``batch_size`` cases per transaction
    (committed batch by batch, so it can be interrupted and run again). A case whose outcome,
    ruleset and facts are unchanged gets nothing new; the others get a TriageRecord and the
    usual CASE_TRIAGED / TRACK_CHANGED events (trigger "ruleset"). Overrides are kept."""
    _require(acting_user, Permission.REFERENCE_DATA_EDIT)
    report, last_id = RetriageReport(), ""
    writable_state()
    db.session.commit()
    while True:
        ids = db.session.scalars(_open_cases(select(Case.id)).where(Case.id > last_id)
                                 .order_by(Case.id).limit(batch_size)).all()
        if not ids:
            break
        cases = db.session.scalars(select(Case).where(Case.id.in_(ids)).options(selectinload(Case.persons))).all()
        for case in cases:
            before = case.track
            if triage_case(case, acting_user=acting_user, trigger="ruleset", only_if_changed=True) is not None:
                report.retriaged += 1
                report.moved += case.track != before
        db.session.commit()  # committed objects are only weakly held by the session: memory stays flat
        report.examined += len(ids)
        last_id = ids[-1]
        if on_batch:
            on_batch(len(ids))
    return report
