"""Human labels for the codes reports carry (tracks, statuses, age buckets, outcomes)."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app.decisions.lifecycle import STATUS_LABELS
from app.intake.reference import country_choices
from app.reports.queries import STATELESS, UNKNOWN

BUCKET_LABELS = {
    "lt1": _l("Under 1 month"),
    "1to3": _l("1 to 3 months"),
    "3to6": _l("3 to 6 months"),
    "6to12": _l("6 to 12 months"),
    "gt12": _l("Over 12 months"),
}


def track_label(code: str | None) -> str:
    """The active ruleset's name for a track (the code itself for tracks it does not know)."""
    if not code:
        return _("Not triaged")
    from app.triage.services import active_ruleset  # triage's service: read-only, cached

    return active_ruleset().track_label(code)


def track_labeller() -> Callable[[str | None], str]:
    """``track_label`` bound to one read of the active ruleset, for one page or file. Each
    ``track_label`` call asks triage whether its cache is current (a query): a report names
    tracks dozens of times (charts, tables), so it reads the ruleset once and reuses it."""
    from app.triage.services import active_ruleset

    ruleset = active_ruleset()

    def label(code: str | None) -> str:
        return ruleset.track_label(code) if code else _("Not triaged")
    return label


def status_label(code: str) -> str:
    return _(STATUS_LABELS[code]) if code in STATUS_LABELS else code


def bucket_label(code: str) -> str:
    return str(BUCKET_LABELS.get(code, code))


def nationality_label(code: str) -> str:
    if code == STATELESS:
        return _("Stateless")
    if code == UNKNOWN:
        return _("Unknown")
    return _country_names(str(get_locale() or "en")).get(code, code)


@lru_cache(maxsize=8)
def _country_names(locale: str) -> dict[str, str]:
    return dict(country_choices(locale))


def nationality_choices() -> tuple[tuple[str, str], ...]:
    return country_choices(str(get_locale() or "en"))


def track_choices() -> list[tuple[str, str]]:
    """Every track code a filter accepts: the active ruleset's, then the other shipped ruleset's."""
    from app.triage.services import TRACK_URGENCY, active_ruleset

    active = [t.code for t in active_ruleset().ruleset.tracks]
    codes = active + sorted(code for code in TRACK_URGENCY if code not in active)
    label = track_labeller()
    return [(code, label(code)) for code in codes]
