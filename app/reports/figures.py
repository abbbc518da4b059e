"""The dashboard's figures, computed once and kept for a few minutes, shared by every worker.

Why: at a million cases the dashboard's aggregates take seconds (about 5 s for the largest
office's half year on a 2-core machine), and a supervisor who opens the dashboard, then exports
its PDF summary, or several supervisors of one office opening the same dashboard, would each pay
for them again. Kept figures also make the PDF show exactly the numbers that were on the screen.
The page says when its figures were computed and offers to compute them again at once.

Only aggregates are kept (counts, medians and shares per track, status, week, nationality and,
on the page, per caseworker account name): no claimant data, no case reference. A key names the
filters (office, period, as-of day, track, nationality), hashed, so nothing readable is in it.

Where: ``REPORT_FIGURES_STORE``: ``memory://`` (one process: development and tests) or a
``redis://`` URL (production: every gunicorn worker sees the same figures; defaults to the
limiter's Redis there). ``REPORT_FIGURES_MAX_AGE`` seconds (0: never kept). A store that fails
(Redis down) is a miss: the figures are computed as if nothing were kept, never an error page.
Stored as JSON, never pickle: whoever can write to the store must not be able to run code here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
import time
import typing
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache

from flask import current_app

from app.db_types import utcnow
from app.reports import queries

log = logging.getLogger(__name__)

FORMAT = 2  # bump when a row's fields change: kept figures of another format are ignored
_MEMORY_ENTRIES = 256
CASEWORKER_SECTIONS = frozenset({"workload", "throughput"})  # what ``caseworkers=False`` leaves out
CASEWORKERS_PART = ":caseworkers"  # the key suffix their rows are kept under


@dataclass(frozen=True)
class Figures:
    """A dashboard and when its figures were computed (UTC)."""

    dashboard: queries.Dashboard
    computed_at: datetime


def dashboard(f: queries.ReportFilters, *, caseworkers: bool = True, fresh: bool = False) -> Figures:
    """The dashboard for ``f`` (``queries.dashboard``), as kept if it was computed for the same
    filters less than ``REPORT_FIGURES_MAX_AGE`` seconds ago, else computed now and kept.
    ``fresh`` computes it now whatever is kept (the page's "compute again"). With
    ``caseworkers=False`` (the PDF summary) kept figures with the caseworker sections serve too.
    Read-only towards the database; the caller checks the user may see ``f``'s office."""
    max_age = current_app.config.get("REPORT_FIGURES_MAX_AGE", 0)
    if not fresh:
        found = kept(f, caseworkers=caseworkers)
        if found is not None:
            return found
    figures = Figures(queries.dashboard(f, caseworkers=caseworkers), utcnow())
    if max_age > 0:
        store, key = _store(), _key(f, caseworkers)
        main, per_caseworker = _dump(figures)
        if per_caseworker is not None:  # first: whoever finds the main part finds this one too
            store.set(key + CASEWORKERS_PART, per_caseworker, max_age)
        store.set(key, main, max_age)
    return figures


def kept(f: queries.ReportFilters, *, caseworkers: bool = True) -> Figures | None:
    """The figures kept for ``f`` if any (never computed here): with ``caseworkers`` only those
    holding the per-caseworker sections (the page's), else those or the PDF summary's."""
    if current_app.config.get("REPORT_FIGURES_MAX_AGE", 0) <= 0:
        return None
    store = _store()
    for key in [_key(f, True)] + ([] if caseworkers else [_key(f, False)]):
        main = store.get(key)
        per_caseworker = store.get(key + CASEWORKERS_PART) if caseworkers and main is not None else None
        found = _load(main, per_caseworker, f, caseworkers=caseworkers)
        if found is not None:
            return found
    return None


def _key(f: queries.ReportFilters, caseworkers: bool) -> str:
    shape = json.dumps({**f.as_dict(), "caseworkers": caseworkers, "format": FORMAT}, sort_keys=True)
    return "nansen:report-figures:" + hashlib.sha256(shape.encode()).hexdigest()


# -- JSON, section by section ------------------------------------------------------------------------

@cache
def _section_types() -> dict[str, type]:
    """Dashboard field -> its row dataclass (from the annotations: ``list[Row]`` or ``list[Row] | None``)."""
    hints = typing.get_type_hints(queries.Dashboard, vars(queries))
    found = {}
    for name, hint in hints.items():
        for candidate in (hint, *typing.get_args(hint)):
            if typing.get_origin(candidate) is list:
                found[name] = typing.get_args(candidate)[0]
    return found


def _dump(figures: Figures) -> tuple[str, str | None]:
    """(the sections but the per-caseworker ones, the per-caseworker ones or None), as JSON: kept
    apart, because the PDF summary does not show the per-caseworker rows, and at a million cases
    the weeks of 400 caseworkers are most of the rows (reading them cost a third of its time)."""
    main, per_caseworker = {}, {}
    for name in _section_types():
        rows = getattr(figures.dashboard, name)
        (per_caseworker if name in CASEWORKER_SECTIONS else main)[name] = None if rows is None else [
            [value.isoformat() if isinstance(value, date) else value for value in dataclasses.astuple(row)]
            for row in rows]
    computed_at = figures.computed_at.isoformat()

    def document(sections: dict) -> str:
        return json.dumps({"format": FORMAT, "computed_at": computed_at, "sections": sections})

    with_caseworkers = any(rows is not None for rows in per_caseworker.values())
    return document(main), document(per_caseworker) if with_caseworkers else None


def _load(main: str | bytes | None, per_caseworker: str | bytes | None, f: queries.ReportFilters, *,
          caseworkers: bool = True) -> Figures | None:
    """Kept figures back as a Figures, or None when there are none or they cannot be read (another
    format, damaged, or a per-caseworker part missing or of another computation: then they are
    computed again, as if nothing were kept). Without ``caseworkers`` the per-caseworker sections
    are left out (None, as ``queries.dashboard`` leaves them) and their part is not read."""
    if main is None or (caseworkers and per_caseworker is None):
        return None
    try:
        documents = [json.loads(main)] + ([json.loads(per_caseworker)] if caseworkers else [])
        if any(d.get("format") != FORMAT or d["computed_at"] != documents[0]["computed_at"] for d in documents):
            return None
        stored = {name: rows for d in documents for name, rows in d["sections"].items()}
        sections = {}
        for name, row_type in _section_types().items():
            if not caseworkers and name in CASEWORKER_SECTIONS:
                sections[name] = None
                continue
            rows = stored[name]
            sections[name] = None if rows is None else [_row(row_type, values) for values in rows]
        return Figures(queries.Dashboard(filters=f, **sections), datetime.fromisoformat(documents[0]["computed_at"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("kept report figures could not be read (%s); computing them again", type(exc).__name__)
        return None


@cache
def _date_columns(row_type: type) -> tuple[bool, ...]:
    """For each field of ``row_type``, whether it holds a date (read once per type, not per row)."""
    hints = typing.get_type_hints(row_type)
    return tuple(hints[field.name] is date for field in dataclasses.fields(row_type))


def _row(row_type: type, values: list):
    dates = _date_columns(row_type)
    if len(values) != len(dates):
        raise ValueError("kept row has another shape")
    if not any(dates):
        return row_type(*values)
    return row_type(*(date.fromisoformat(value) if is_date else value
                      for is_date, value in zip(dates, values, strict=True)))


# -- where they are kept -----------------------------------------------------------------------------

class MemoryStore:
    """Kept figures in this process (development, tests, a single worker): at most
    ``_MEMORY_ENTRIES``, the oldest dropped first, each until its expiry."""

    def __init__(self) -> None:
        self._entries: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= time.monotonic():
                self._entries.pop(key, None)
                return None
            return entry[1]

    def set(self, key: str, value: str, max_age: int) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic() + max_age, value)
            self._entries.move_to_end(key)
            while len(self._entries) > _MEMORY_ENTRIES:
                self._entries.popitem(last=False)


class RedisStore:
    """Kept figures in Redis, shared by every worker; each key expires by itself. An unreachable
    Redis is a miss (get) or a no-op (set), logged without the key's content."""

    def __init__(self, url: str) -> None:
        import redis  # noqa: PLC0415 - only deployments that keep figures in Redis need it

        self._errors = (redis.RedisError, OSError)
        self._client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)

    def get(self, key: str) -> bytes | None:
        try:
            return self._client.get(key)
        except self._errors as exc:
            log.warning("report figures store unavailable (%s): computing the figures", type(exc).__name__)
            return None

    def set(self, key: str, value: str, max_age: int) -> None:
        try:
            self._client.set(key, value, ex=max_age)
        except self._errors as exc:
            log.warning("report figures store unavailable (%s): figures not kept", type(exc).__name__)


def _store():
    """The application's store, made on first use from ``REPORT_FIGURES_STORE``."""
    store = current_app.extensions.get("nansen.report_figures")
    if store is None:
        uri = current_app.config.get("REPORT_FIGURES_STORE", "memory://")
        store = RedisStore(uri) if uri.startswith(("redis://", "rediss://", "unix://")) else MemoryStore()
        current_app.extensions["nansen.report_figures"] = store
    return store
