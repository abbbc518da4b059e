"""Decision settings as data: outcomes, legal basis codes, appeal time limits and the suspensive
effect of an appeal. Like a triage ruleset, these tables are reviewed by legal staff and may be
replaced per deployment (``DECISION_APPEAL_RULES`` and ``DECISION_SUSPENSIVE_RULES`` in the
application config, same shape); the engine here knows no article numbers beyond the comments.

Article numbers refer to the Asylum Procedures Regulation (EU) 2024/1348 ("APR"), the Asylum and
Migration Management Regulation (EU) 2024/1351 ("AMMR") and the Qualification Regulation (EU)
2024/1347 ("QR"). Check them against the Official Journal before quoting them to users.

Pure: standard library only.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from app.decisions.lifecycle import N_

# -- outcomes ------------------------------------------------------------------------------------

OUTCOMES: dict[str, str] = {
    "refugee_status": N_("Refugee status granted"),
    "subsidiary_protection": N_("Subsidiary protection granted"),
    "humanitarian_status": N_("Humanitarian status granted (national law)"),
    "rejected_unfounded": N_("Application rejected as unfounded"),
    "rejected_manifestly_unfounded": N_("Application rejected as manifestly unfounded"),
    "inadmissible": N_("Application inadmissible"),
    "implicit_withdrawal": N_("Application implicitly withdrawn"),
    "discontinued": N_("Examination discontinued"),
    "transfer_decision": N_("Transfer to the responsible Member State"),
}
POSITIVE_OUTCOMES = frozenset({"refugee_status", "subsidiary_protection", "humanitarian_status"})
# Negative decisions are never issued without written reasons (APR Art 35(3): reasons in fact
# and in law for a rejection, and information on how to challenge it).
NEGATIVE_OUTCOMES = frozenset({"rejected_unfounded", "rejected_manifestly_unfounded", "inadmissible",
                               "implicit_withdrawal", "transfer_decision"})

# -- legal basis codes ---------------------------------------------------------------------------

LEGAL_BASIS: dict[str, str] = {
    "QR-REFUGEE": N_("QR: refugee status (Arts 9, 10, 13)"),
    "QR-SUBSIDIARY": N_("QR: subsidiary protection, serious harm (Arts 15, 16, 18)"),
    "QR-IPA": N_("QR: internal protection alternative (Art 8)"),
    "QR-EXCL-REFUGEE": N_("QR: exclusion from refugee status (Art 12)"),
    "QR-EXCL-SUBSIDIARY": N_("QR: exclusion from subsidiary protection (Art 17)"),
    "NAT-HUMANITARIAN": N_("National law: humanitarian status"),
    "APR-38": N_("APR: inadmissible application (Art 38)"),
    "APR-39": N_("APR: unfounded application (Art 39)"),
    "APR-39-MANIFEST": N_("APR: manifestly unfounded application (Art 39(3))"),
    "APR-40": N_("APR: explicit withdrawal, examination discontinued (Art 40)"),
    "APR-41": N_("APR: implicit withdrawal (Art 41)"),
    "APR-42": N_("APR: accelerated examination ground (Art 42)"),
    "APR-44": N_("APR: border procedure (Arts 43-45)"),
    "AMMR-TRANSFER": N_("AMMR: transfer decision (Art 42)"),
}

# -- appeal time limits --------------------------------------------------------------------------

ANY = "*"

# APR Art 67(7): appeals within (a) 5 to 10 days of notification for decisions rejecting an
# application as inadmissible, as implicitly withdrawn, or as (manifestly) unfounded where an
# Art 42 ground applies (accelerated procedure) or in the border procedure; (b) two weeks to one
# month in all other cases. AMMR Art 43(2): one to three weeks against a transfer decision.
# First matching rule wins. Periods run from the day after the date served; the last day is the
# deadline (public holidays and weekends do not extend it here: adjust per national law).
DEFAULT_APPEAL_RULES: tuple[Mapping, ...] = (
    {"tracks": ("accelerated", "border", "border_optional"), "outcomes": ANY, "days": 10,
     "cite": "APR Art 67(7)(a)"},
    {"tracks": ANY, "outcomes": ("inadmissible", "implicit_withdrawal"), "days": 10, "cite": "APR Art 67(7)(a)"},
    {"tracks": ANY, "outcomes": ("transfer_decision",), "days": 14, "cite": "AMMR Art 43(2)"},
    {"tracks": ANY, "outcomes": ANY, "months": 1, "cite": "APR Art 67(7)(b)"},
)

# APR Art 68: an appeal suspends removal automatically (the applicant may remain until the time
# limit has passed and, if an appeal is lodged, until it is decided), except for the decisions
# listed in Art 68(3), where the applicant must ask the court to be allowed to remain (Art 68(4)):
# (manifestly) unfounded where an Art 42 ground applies or in the border procedure, the
# inadmissibility grounds it lists, implicit (and explicit) withdrawal. Transfer decisions: AMMR
# Art 43(3) lets each State choose; the default here is "on request". Positive decisions order no
# removal, so suspension does not apply. Review this table for the national rules: where an
# inadmissibility ground is not among those Art 68(3) lists, add a rule making it automatic.
AUTOMATIC = "automatic"
ON_REQUEST = "on_request"
NOT_APPLICABLE = "not_applicable"
SUSPENSIVE_LABELS = {
    AUTOMATIC: N_("An appeal suspends removal automatically."),
    ON_REQUEST: N_("An appeal does not suspend removal by itself: ask the court to be allowed to remain."),
    NOT_APPLICABLE: N_("The decision orders no removal."),
}
DEFAULT_SUSPENSIVE_RULES: tuple[Mapping, ...] = (
    {"tracks": ANY, "outcomes": tuple(sorted(POSITIVE_OUTCOMES)), "effect": NOT_APPLICABLE},
    {"tracks": ("accelerated", "border", "border_optional"),
     "outcomes": ("rejected_unfounded", "rejected_manifestly_unfounded"), "effect": ON_REQUEST,
     "cite": "APR Art 68(3)(a)"},
    {"tracks": ANY, "outcomes": ("rejected_manifestly_unfounded",), "effect": ON_REQUEST, "cite": "APR Art 68(3)(a)"},
    {"tracks": ANY, "outcomes": ("inadmissible",), "effect": ON_REQUEST, "cite": "APR Art 68(3)(b)"},
    {"tracks": ANY, "outcomes": ("implicit_withdrawal", "discontinued"), "effect": ON_REQUEST,
     "cite": "APR Art 68(3)(c)"},
    {"tracks": ANY, "outcomes": ("transfer_decision",), "effect": ON_REQUEST, "cite": "AMMR Art 43(3)"},
    {"tracks": ANY, "outcomes": ANY, "effect": AUTOMATIC, "cite": "APR Art 68(2)"},
)


@dataclass(frozen=True)
class AppealTerms:
    """What the letter and the workspace say about an appeal against one decision."""

    days: int | None
    months: int | None
    suspensive: str
    cite: str


def _matches(rule: Mapping, track: str | None, outcome: str) -> bool:
    tracks, outcomes = rule.get("tracks", ANY), rule.get("outcomes", ANY)
    return (tracks == ANY or track in tracks) and (outcomes == ANY or outcome in outcomes)


def _first(rules: Sequence[Mapping], track: str | None, outcome: str) -> Mapping:
    for rule in rules:
        if _matches(rule, track, outcome):
            return rule
    raise LookupError(f"no rule for track {track!r} and outcome {outcome!r}: the table needs a catch-all")


def appeal_terms(track: str | None, outcome: str, *, appeal_rules: Sequence[Mapping] | None = None,
                 suspensive_rules: Sequence[Mapping] | None = None) -> AppealTerms:
    """The appeal period and suspensive effect for a decision of ``outcome`` in ``track``."""
    period = _first(appeal_rules or DEFAULT_APPEAL_RULES, track, outcome)
    suspensive = _first(suspensive_rules or DEFAULT_SUSPENSIVE_RULES, track, outcome)
    return AppealTerms(days=period.get("days"), months=period.get("months"),
                       suspensive=suspensive["effect"], cite=period.get("cite", ""))


def add_months(start: date, months: int) -> date:
    """The same day ``months`` later, or the month's last day when it has fewer days."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def appeal_deadline(served_on: date, terms: AppealTerms) -> date:
    """The last day an appeal may be lodged, for a decision served on ``served_on``."""
    if terms.months:
        return add_months(served_on, terms.months)
    return served_on + timedelta(days=terms.days or 0)
