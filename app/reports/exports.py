"""CSV and PDF renderings of the reports. Pure formatting: the numbers come from queries.py.

CSV: one file per table, UTF-8 with a byte-order mark (spreadsheets then read accents right),
machine-stable column names, and formula injection neutralised: a text cell that starts with
``= + - @``, a tab or a carriage return gets a leading apostrophe, so a spreadsheet shows it as
text instead of evaluating it (OWASP "CSV Injection"). Numbers are written as numbers.

PDF: WeasyPrint over our own HTML, fetching nothing (no URL fetcher protocol is allowed: charts
are inline SVG, the stylesheet is passed in). Laid out for speed: a summary of small tables, and
listings as one block of ``div`` rows per group instead of one giant table (WeasyPrint lays a
table out as a whole; blocks it can paginate as it goes).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import groupby
from pathlib import Path

import pycountry

from app.reports import queries

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
PDF_STYLESHEET = Path(__file__).resolve().parent / "pdf.css"


def safe_cell(value) -> object:
    """A CSV cell that no spreadsheet evaluates as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def to_csv(header: Sequence[str], rows: Iterable[Sequence]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return buffer.getvalue().encode("utf-8-sig")


def _num(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


# -- the tables -------------------------------------------------------------------------------------

def table_rows(kind: str, f: queries.ReportFilters) -> tuple[list[str], list[list]]:
    """(header, rows) of one CSV export."""
    match kind:
        case "backlog":
            return ["track", "status", "cases"], [[r.track, r.status, r.cases] for r in queries.backlog(f)]
        case "ageing":
            return ["track", "age_months", "cases"], [[r.track, r.bucket, r.cases] for r in queries.ageing(f)]
        case "weekly_flow":
            return (["iso_week", "week_start", "registered", "decisions_issued", "cases_closed"],
                    [[r.iso_week, r.week_start.isoformat(), r.registered, r.decisions_issued, r.cases_closed]
                     for r in queries.weekly_flow(f)])
        case "decision_times":
            return (["track", "decisions", "median_days", "p90_days"],
                    [[r.track, r.decisions, _num(r.median_days), _num(r.p90_days)] for r in queries.decision_times(f)])
        case "within_limit":
            return (["track", "decisions", "with_deadline", "within_limit", "share_pct"],
                    [[r.track, r.decisions, r.with_deadline, r.within_limit, _num(r.share_pct)]
                     for r in queries.within_limit(f)])
        case "deadlines":
            return (["track", f"due_within_{queries.DUE_WITHIN_DAYS}_days", "overdue"],
                    [[r.track, r.due_soon, r.overdue] for r in queries.deadlines(f)])
        case "workload":
            return (["caseworker", "open_assigned", "overdue", "decisions_issued", "decisions_per_week"],
                    [[r.caseworker, r.open_assigned, r.overdue, r.decisions_issued, _num(r.per_week, 2)]
                     for r in queries.workload(f)])
        case "throughput":
            return (["caseworker", "iso_week", "week_start", "decisions"],
                    [[r.caseworker, r.iso_week, r.week_start.isoformat(), r.decisions] for r in queries.throughput(f)])
        case "recognition":
            return (["nationality", "decisions", "refugee", "subsidiary", "humanitarian", "rejected", "other",
                     "recognition_pct", "humanitarian_pct"],
                    [[r.nationality, r.decisions, r.refugee, r.subsidiary, r.humanitarian, r.rejected, r.other,
                      _num(r.recognition_pct), _num(r.humanitarian_pct)] for r in queries.recognition(f)])
        case "late_registrations":
            return (["iso_week", "week_start", "registered", "late", "share_pct"],
                    [[r.iso_week, r.week_start.isoformat(), r.registered, r.late, _num(r.share_pct)]
                     for r in queries.late_registrations(f)])
        case "eurostat_applicants":
            return (["time", "citizen", "citizen_iso3", "sex", "age", "ASY_APP", "NASY_APP", "SASY_APP"],
                    [[r.month, eurostat_citizen(r.citizen), r.citizen, eurostat_sex(r.sex), r.age_group, r.applicants,
                      r.first_time, r.subsequent] for r in queries.eurostat_applicants(f)])
        case "eurostat_decisions":
            return (["time", "citizen", "citizen_iso3", "sex", "age", "TOTAL", "TOTAL_POS", "GENCONV", "SUB_PROT",
                     "HUMSTAT", "REJECTED"],
                    [[r.quarter, eurostat_citizen(r.citizen), r.citizen, eurostat_sex(r.sex), r.age_group, r.total,
                      r.positive, r.geneva_convention, r.subsidiary_protection, r.humanitarian, r.rejected]
                     for r in queries.eurostat_decisions(f)])
    raise KeyError(kind)


# Eurostat codes: ISO 3166 alpha-2, except Greece (EL) and the United Kingdom (UK); Kosovo XK.
_EUROSTAT_EXCEPTIONS = {"GRC": "EL", "GBR": "UK", "XKX": "XK", queries.STATELESS: "STLS", queries.UNKNOWN: "UNK"}


@lru_cache(maxsize=512)
def eurostat_citizen(alpha3: str) -> str:
    if alpha3 in _EUROSTAT_EXCEPTIONS:
        return _EUROSTAT_EXCEPTIONS[alpha3]
    country = pycountry.countries.get(alpha_3=alpha3)
    return country.alpha_2 if country else queries.UNKNOWN


def eurostat_sex(sex: str) -> str:
    """Eurostat knows F, M and UNK: a third sex marker (X) is reported as UNK."""
    return sex if sex in ("F", "M") else "UNK"


# -- listings (PDF) ---------------------------------------------------------------------------------

def grouped(rows: Iterable, key: str) -> list[tuple[object, list]]:
    """Consecutive rows sharing ``key`` (rows come sorted from SQL): layout only."""
    return [(value, list(group)) for value, group in groupby(rows, key=lambda r: getattr(r, key))]


# -- PDF ----------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _stylesheet():
    from weasyprint import CSS

    return CSS(string=PDF_STYLESHEET.read_text(encoding="utf-8"))


def html_to_pdf(html: str) -> bytes:
    """WeasyPrint over ``html``, fetching nothing from anywhere."""
    from weasyprint import HTML, URLFetcher  # heavy: loaded when a PDF is first made

    fetcher = URLFetcher(allowed_protocols=frozenset())
    return HTML(string=html, url_fetcher=fetcher).write_pdf(stylesheets=[_stylesheet()])
