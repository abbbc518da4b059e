"""CSV and PDF renderings of the reports. Pure formatting: the numbers come from queries.py.

CSV: one file per table, UTF-8 with a byte-order mark (spreadsheets then read accents right),
machine-stable column names, and formula injection neutralised: a text cell that starts with
``= + - @``, a tab or a carriage return gets a leading apostrophe, so a spreadsheet shows it as
text instead of evaluating it (OWASP "CSV Injection"). Numbers are written as numbers.

PDF: WeasyPrint over our own HTML, fetching nothing from anywhere (the only URL scheme allowed
is ``data:``, for the charts embedded in the HTML itself; the stylesheet is passed in). Laid out
for speed: every table, in the summary and the listing, is a block of fixed-width text lines
(``text_table``): WeasyPrint shapes each table cell as its own box, about ten times the cost of
the same figures as lines of one ``<pre>`` (measured: 88 ms against 9 ms for a 22 x 9 table).
"""

from __future__ import annotations

import csv
import io
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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

# The CSV exports that are one section of the dashboard: export kind -> Dashboard field.
DASHBOARD_SECTIONS = {"backlog": "backlog", "ageing": "ageing", "weekly_flow": "flow",
                      "decision_times": "decision_times", "within_limit": "within_limit", "deadlines": "deadlines",
                      "workload": "workload", "throughput": "throughput", "recognition": "recognition",
                      "late_registrations": "late_registrations"}


def table_rows(kind: str, f: queries.ReportFilters,
               shown: queries.Dashboard | None = None) -> tuple[list[str], list[list]]:
    """(header, rows) of one CSV export. A section of the dashboard is taken from ``shown`` (the
    figures the page showed for ``f``, when they are kept) rather than queried again."""
    field = DASHBOARD_SECTIONS.get(kind)
    kept = getattr(shown, field) if shown is not None and field else None

    def rows_of(query):
        return kept if kept is not None else query(f)

    match kind:
        case "backlog":
            return ["track", "status", "cases"], [[r.track, r.status, r.cases] for r in rows_of(queries.backlog)]
        case "ageing":
            return ["track", "age_months", "cases"], [[r.track, r.bucket, r.cases] for r in rows_of(queries.ageing)]
        case "weekly_flow":
            return (["iso_week", "week_start", "registered", "decisions_issued", "cases_closed"],
                    [[r.iso_week, r.week_start.isoformat(), r.registered, r.decisions_issued, r.cases_closed]
                     for r in rows_of(queries.weekly_flow)])
        case "decision_times":
            return (["track", "decisions", "median_days", "p90_days"],
                    [[r.track, r.decisions, _num(r.median_days), _num(r.p90_days)]
                     for r in rows_of(queries.decision_times)])
        case "within_limit":
            return (["track", "decisions", "with_deadline", "within_limit", "share_pct"],
                    [[r.track, r.decisions, r.with_deadline, r.within_limit, _num(r.share_pct)]
                     for r in rows_of(queries.within_limit)])
        case "deadlines":
            return (["track", f"due_within_{queries.DUE_WITHIN_DAYS}_days", "overdue"],
                    [[r.track, r.due_soon, r.overdue] for r in rows_of(queries.deadlines)])
        case "workload":
            return (["caseworker", "open_assigned", "overdue", "decisions_issued", "decisions_per_week"],
                    [[r.caseworker, r.open_assigned, r.overdue, r.decisions_issued, _num(r.per_week, 2)]
                     for r in rows_of(queries.workload)])
        case "throughput":
            return (["caseworker", "iso_week", "week_start", "decisions"],
                    [[r.caseworker, r.iso_week, r.week_start.isoformat(), r.decisions]
                     for r in rows_of(queries.throughput)])
        case "recognition":
            return (["nationality", "decisions", "refugee", "subsidiary", "humanitarian", "rejected", "other",
                     "recognition_pct", "humanitarian_pct"],
                    [[r.nationality, r.decisions, r.refugee, r.subsidiary, r.humanitarian, r.rejected, r.other,
                      _num(r.recognition_pct), _num(r.humanitarian_pct)] for r in rows_of(queries.recognition)])
        case "late_registrations":
            return (["iso_week", "week_start", "registered", "late", "share_pct"],
                    [[r.iso_week, r.week_start.isoformat(), r.registered, r.late, _num(r.share_pct)]
                     for r in rows_of(queries.late_registrations)])
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


# -- tables as text (PDF) -----------------------------------------------------------------------------

#: Characters on a line of a PDF text table: pdf.css sets DejaVu Sans Mono 7.5 pt (0.6 em a
#: character) on A4 less two 14 mm margins, 114 characters; a few are left spare.
TEXT_LINE_WIDTH = 110
GAP = "  "


@dataclass(frozen=True)
class TextTable:
    """A table as fixed-width lines: ``head`` (the column headers, wrapped) and ``lines``."""

    caption: str
    head: list[str]
    lines: list[str]


def cell(value, digits: int = 1) -> str:
    """A figure as the tables print it: a dash for none, floats with ``digits`` decimals."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def text_table(caption: str, headers: Sequence[str], rows: Sequence[Sequence[str]], *, empty: str,
               width: int = TEXT_LINE_WIDTH) -> TextTable:
    """Lay already formatted cells out as text lines (pure layout). The first column is the row
    label, left-aligned, wrapped onto further lines when the line is too short for it; the others
    are right-aligned, as wide as their longest value or header word, wider when the line has
    room for a header on one line (headers wrap by word).
    No rows: one line saying ``empty``."""
    values = [[len(row[i]) for row in rows] for i in range(1, len(headers))]
    widths = [max([*lengths, *(len(word) for word in header.split())], default=1)
              for lengths, header in zip(values, headers[1:], strict=True)]
    room = width - sum(widths) - len(GAP) * len(widths)
    label_width = max(10, min(room, max([len(row[0]) for row in rows] + [len(w) for w in headers[0].split()],
                                        default=10)))
    spare = room - label_width
    for index, header in enumerate(headers[1:]):  # room left: headers on fewer lines
        grow = min(spare, max(0, len(header) - widths[index]))
        widths[index] += grow
        spare -= grow
    widths = [label_width, *widths]
    wrapped = [textwrap.wrap(h, w, break_long_words=True) or [""] for h, w in zip(headers, widths, strict=True)]
    depth = max(len(w) for w in wrapped)
    head = []
    for index in range(depth):  # headers sit on the bottom line, as in a spreadsheet
        parts = [(w[index - depth + len(w)] if index >= depth - len(w) else "") for w in wrapped]
        head.append(_line(parts, widths))
    lines = []
    for row in rows:
        label = textwrap.wrap(row[0], label_width, break_long_words=True) or [""]
        lines.append(_line([label[0], *row[1:]], widths))
        lines.extend(label[1:])  # the rest of a long label, on lines of its own
    return TextTable(caption, head, lines or [empty])


def _line(parts: Sequence[str], widths: Sequence[int]) -> str:
    first = parts[0].ljust(widths[0])
    return (first + "".join(GAP + part.rjust(w) for part, w in zip(parts[1:], widths[1:], strict=True))).rstrip()


# -- PDF ----------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _stylesheet():
    from weasyprint import CSS

    return CSS(string=PDF_STYLESHEET.read_text(encoding="utf-8"))


def html_to_pdf(html: str) -> bytes:
    """WeasyPrint over ``html``, fetching nothing from anywhere (``data:`` URLs only: they are
    part of the HTML)."""
    from weasyprint import HTML, URLFetcher  # heavy: loaded when a PDF is first made

    fetcher = URLFetcher(allowed_protocols=frozenset({"data"}))  # the charts inside the HTML itself
    return HTML(string=html, url_fetcher=fetcher).write_pdf(stylesheets=[_stylesheet()])
