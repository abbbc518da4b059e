"""Shared helpers of the benchmark suite (bench/run.py): the row every workload returns, the run's
context, timing and percentiles, and a generator of realistic registration payloads (the shape of
docs/import-format.md) for the workloads that go through the intake service.

A report, never a test: machines are noisy, so nothing here asserts a wall-clock time.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PASSWORD = "correct horse battery staple glacier"  # noqa: S105 - the bench's throwaway accounts


@dataclass
class Row:
    """One line of the table. ``figure`` and ``baseline`` are already formatted with their unit;
    ``ratio`` is figure over baseline in the workload's own sense (said in ``target``)."""

    workload: str
    figure: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    result: str = ""  # pass, FAIL, info, not run
    sanity: str = ""  # absolute figures beside the ratio, and what the baseline is


def verdict(ok: bool) -> str:
    return "pass" if ok else "FAIL"


@dataclass
class Context:
    """What every workload module gets: the database filled by the runner and how to build apps."""

    url: str
    dialect: str
    cases: int
    seed: int
    workdir: Path
    today: date
    make_app: object  # () -> a new Flask app on the run's database (fresh: routes may still be added)
    app: object  # the runner's app (an app context is pushed by the workload when it needs one)
    quick: bool = True
    info: dict = field(default_factory=dict)  # what the fill reported: counts, seconds


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def timed_each(operation, items) -> tuple[float, list[float]]:
    """Total seconds and per-item latencies of ``operation(item)`` over ``items``."""
    samples = []
    started = time.perf_counter()
    for item in items:
        t0 = time.perf_counter()
        operation(item)
        samples.append(time.perf_counter() - t0)
    return time.perf_counter() - started, samples


@dataclass(frozen=True)
class Comparison:
    """Throughput (operations/s) and p95 latency (ms) of ours against the baseline."""
    our_rate: float
    bare_rate: float
    our_p95_ms: float
    bare_p95_ms: float


def interleaved(ours, our_items, bare, bare_items) -> Comparison:
    """Time ``bare`` then ``ours`` over the first halves of their items, then again over the
    second halves, so drift on a shared machine hits both sides alike."""
    half = len(our_items) // 2
    b1, bare_samples1 = timed_each(bare, bare_items[:half])
    o1, our_samples1 = timed_each(ours, our_items[:half])
    b2, bare_samples2 = timed_each(bare, bare_items[half:])
    o2, our_samples2 = timed_each(ours, our_items[half:])
    return Comparison(len(our_items) / (o1 + o2), len(bare_items) / (b1 + b2),
                      percentile(our_samples1 + our_samples2, 0.95) * 1000,
                      percentile(bare_samples1 + bare_samples2, 0.95) * 1000)


# -- registration payloads --------------------------------------------------------------------------

def _pools():
    from bench.duplicate_precision_recall import NATIONALITY_WEIGHTS, POOLS

    return ({nat: (given.split(), family.split()) for nat, (given, family) in POOLS.items()},
            list(NATIONALITY_WEIGHTS), list(NATIONALITY_WEIGHTS.values()))


def _person(rng: random.Random, pools, nat: str, principal: bool, relationship: str | None, dob: date,
            sex: str, family_name: str) -> dict:
    given_pool, _family_pool = pools[nat]
    given = rng.choice(given_pool)
    if rng.random() < 0.3:
        given = f"{given} {rng.choice(given_pool)}"
    person = {
        "principal": principal, "relationship": relationship,
        "identity": {"family_name": family_name, "given_names": given},
        "birth": {"date_of_birth": dob.isoformat(), "precision": "day", "estimated": False, "sex": sex},
        "nationality": {"nationalities": [nat], "stateless": False, "former_habitual_residence": None},
    }
    if principal:
        person.update({
            "documents": ([{"type": "passport", "number": f"N{rng.randrange(10**8):08d}", "issuing_country": nat,
                            "valid_until": None, "authenticity": "not_assessed", "withheld": False}]
                          if rng.random() < 0.4 else []),
            "biometrics": {"record_ref": None, "eurodac_hits": [], "refused": False},
            "history": {"previous_applications": [], "return_decision": None, "protection_granted_by": None,
                        "first_country_of_asylum": None, "safe_third_country": None},
            "family": {"unaccompanied_minor": False, "age_disputed": False, "members_elsewhere": []},
            "special_needs": {"vulnerabilities": rng.sample(["pregnant", "disability", "serious_illness"], 1)
                              if rng.random() < 0.15 else [],
                              "special_procedural_guarantees_needed": False,
                              "adequate_support": {"border_location": True, "accelerated_procedure": True}},
            "claim": {"grounds": [rng.choice(["political_opinion", "religion", "race", "particular_social_group"])],
                      "statement": "Statement taken at registration."},
            "security": {"flag": False, "basis": None},
        })
    return person


def payloads(count: int, seed: int, today: date) -> list[dict]:
    """``count`` registration payloads: one to four people (names from the duplicate bench's
    pools of seven nationalities), dates in the last 60 days, a third at the border."""
    rng = random.Random(seed)
    pools, nationalities, weights = _pools()
    out = []
    for _ in range(count):
        nat = rng.choices(nationalities, weights)[0]
        family_name = rng.choice(pools[nat][1])
        made = today - timedelta(days=rng.randrange(6, 60))
        registered = made + timedelta(days=rng.choice((0, 0, 1, 2, 3)))
        border = rng.random() < 0.3
        sex = "M" if rng.random() < 0.7 else "F"
        people = [_person(rng, pools, nat, True, None, made - timedelta(days=rng.randrange(18 * 365, 60 * 365)),
                          sex, family_name)]
        if rng.random() < 0.3:
            for n in range(rng.randint(1, 3)):
                relationship = "spouse" if n == 0 and rng.random() < 0.6 else "child"
                age = rng.randrange(18 * 365, 55 * 365) if relationship == "spouse" else rng.randrange(0, 17 * 365)
                people.append(_person(rng, pools, nat, False, relationship, made - timedelta(days=age),
                                      rng.choice("MF"), family_name))
        out.append({
            "made_on": made.isoformat(), "made_place": "Airport" if border else "Reception centre",
            "registered_on": registered.isoformat(), "lodged_on": (registered + timedelta(days=1)).isoformat(),
            "good_cause_for_not_lodging": False,
            "arrival": {"location_context": "border_crossing_point" if border else "inland",
                        "entry_date": made.isoformat() if border else None,
                        "authorised_to_enter": False if border else None,
                        "fulfils_entry_conditions": False if border else None,
                        "transit_countries": [], "irregular_entry_date": None, "presented_without_delay": True},
            "persons": people,
        })
    return out


# Stamped per run: a kept database (--reuse) already holds the bare rows of earlier runs, and a
# reference must be unique. Prefix (3) + "-" + stamp (6) + serial (10) = 20, the column's length.
_RUN_STAMP = f"{int(time.time()) % 1_000_000:06d}"
BARE_REFERENCE_PREFIXES = ("BW1-", "BH1-", "BW2-")


def bare_references(prefix: str) -> Iterator[str]:
    """References for the bare rows a baseline inserts (``prefix`` one of BARE_REFERENCE_PREFIXES),
    unique across runs on one kept database."""
    assert prefix in BARE_REFERENCE_PREFIXES
    return (f"{prefix}{_RUN_STAMP}{n:010d}" for n in range(10**10))


def bare_case_rows(payload: dict, office_id: int, received_by_id: int, reference: str) -> tuple[dict, list[dict]]:
    """The case row and person rows a registration stores, as plain column values, without any of
    the service's work: no validation, encryption, blind index, match key, triage or audit."""
    from datetime import UTC, datetime
    from uuid import uuid4

    now = datetime.now(UTC)
    made, registered = date.fromisoformat(payload["made_on"]), date.fromisoformat(payload["registered_on"])
    case_id = uuid4().hex
    case = {"id": case_id, "reference": reference, "office_id": office_id, "status": "registered",
            "made_on": made, "made_place": payload["made_place"], "registered_on": registered,
            "lodged_on": date.fromisoformat(payload["lodged_on"]), "good_cause_for_not_lodging": False,
            "received_by_id": received_by_id, "location_context": payload["arrival"]["location_context"],
            "presented_without_delay": True, "principal_nationality": payload["persons"][0]["nationality"]
            ["nationalities"][0], "registration_delay_days": (registered - made).days, "late_registration": False,
            "created_at": now, "updated_at": now, "version": 1}
    people = []
    for position, person in enumerate(payload["persons"]):
        born = date.fromisoformat(person["birth"]["date_of_birth"])
        age = (made - born).days // 365
        people.append({"id": uuid4().hex, "case_id": case_id, "position": position,
                       "is_principal": person["principal"],
                       "nationalities": person["nationality"]["nationalities"], "stateless": False,
                       "stat_sex": person["birth"]["sex"],
                       "stat_age_group": "Y_LT14" if age < 14 else "Y14-17" if age < 18 else "Y18-34",
                       "minor_at_application": age < 18, "created_at": now, "version": 1})
    return case, people


def registrar_of(office_id: int | None = None):
    """A registration officer (the first one, or the first of ``office_id``)."""
    from sqlalchemy import select

    from app.auth.models import User
    from app.extensions import db

    query = select(User).where(User.role == "registration_officer", User.active.is_(True)).order_by(User.id)
    if office_id is not None:
        query = query.where(User.office_id == office_id)
    return db.session.scalars(query).first()
