"""What keeps the reports fast, checked by its values, never by timings: statements built once
per filter shape that still answer each filter's own numbers; the PDF summary's layout for
WeasyPrint (charts as SVG images, tables as fixed-width text with the same figures); the summary
leaving out the per-caseworker queries and reading the triage ruleset once."""
# ruff: noqa: F811 (the caseload fixtures of test_report_queries, imported, are parameters here)

from __future__ import annotations

import base64
import re

from sqlalchemy import event

from app.extensions import db
from app.reports import charts, exports, queries, services
from tests.integration.test_report_queries import as_tuples, hq, pdf_text, staff, world  # noqa: F401


def figures(line: str) -> list[str]:
    """The figures at the end of a text-table line (the label may hold spaces)."""
    return re.findall(r"\s(\S+)", line)[-4:]


# -- text tables ------------------------------------------------------------------------------------

def test_text_table_right_aligns_figures_and_wraps_long_labels_and_headers():
    """Figures end at their column's right edge, a label too long for the line goes on to the
    next line, a header too wide for its column wraps by word, sitting on the bottom line."""
    table = exports.text_table("Cap", ["Track", "Decisions", "Share (%)"],
                               [["Short", "7", "12.5"], ["A rather long track name indeed", "1234", "–"]],
                               empty="None.", width=40)
    assert table.caption == "Cap"
    assert table.head == ["                                   Share",
                          "Track                   Decisions    (%)"]
    assert table.lines == ["Short                           7   12.5",
                           "A rather long track          1234      –",
                           "name indeed"]


def test_text_table_without_rows_says_so():
    assert exports.text_table("Cap", ["Track", "Cases"], [], empty="No pending case.").lines == ["No pending case."]


def test_cells_print_a_dash_for_nothing_and_one_decimal_for_floats():
    assert [exports.cell(None), exports.cell(3), exports.cell(2.26), exports.cell(0.126, 2)] == ["–", "3", "2.3",
                                                                                               "0.13"]


# -- statements built once per shape ----------------------------------------------------------------

def test_one_statement_per_shape_answers_each_filters_own_numbers(world, office, other_office):
    """The same statement object serves two offices (same shape), and each call still gets its own
    office's and track's figures: no filter value is baked into a memoised statement."""
    assert queries._backlog(hq(office)) is queries._backlog(hq(other_office))
    assert queries._backlog(hq(office)) is not queries._backlog(hq(office, track="accelerated"))
    assert as_tuples(queries.backlog(hq(office))) == [
        ("accelerated", "assigned", 1), ("accelerated", "registered", 1), ("border", "under_review", 1),
        ("regular", "assigned", 1), ("regular", "interviewed", 1), ("regular", "registered", 2)]
    assert as_tuples(queries.backlog(hq(other_office))) == [("regular", "registered", 1)]
    assert as_tuples(queries.backlog(hq(office, track="accelerated"))) == [
        ("accelerated", "assigned", 1), ("accelerated", "registered", 1)]
    assert as_tuples(queries.backlog(hq(office))) == as_tuples(queries.backlog(hq(office)))


def test_time_to_decision_and_limits_come_from_one_statement_with_both_answers(world, office):
    """decision_times and within_limit read the same statement; each keeps its own figures."""
    times, limits = queries._times_and_limits(hq(office))
    assert as_tuples(times) == as_tuples(queries.decision_times(hq(office)))
    assert as_tuples(limits) == as_tuples(queries.within_limit(hq(office)))
    assert [(r.track, r.decisions, r.with_deadline, r.within_limit) for r in limits] == [
        ("accelerated", 2, 1, 1), ("border", 1, 1, 1), ("regular", 3, 3, 2)]


# -- the summary PDF --------------------------------------------------------------------------------

def test_summary_embeds_charts_as_svg_images_and_tables_as_text_with_the_figures(world, office):
    """Three charts as <img> of accessible, class-free SVG with their text alternative; no inline
    SVG and no HTML table; the backlog lines carry the hand-computed figures, in the PDF too."""
    html = services.report_html("summary", hq(office))
    images = re.findall(r'<img src="data:image/svg\+xml;base64,([^"]+)" alt="([^"]+)">', html)
    assert len(images) == 3
    assert "<svg" not in html and "<table" not in html
    for encoded, alt in images:
        svg = base64.b64decode(encoded).decode("utf-8")
        assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"') and 'role="img"' in svg
        assert " class=" not in svg and "<style" not in svg and "<script" not in svg and "<g>" not in svg
        title = re.search(r"<title [^>]*>([^<]+)</title>", svg).group(1)
        assert alt.startswith(title + ". ")
    # Pending by track and status (registered, assigned, interviewed, under review): see world.
    backlog = re.search(r"<pre>(.*?)</pre>", html, re.S).group(1)  # the first table
    lines = {line.split("  ")[0]: figures(line) for line in backlog.splitlines()}
    assert lines["Accelerated examination procedure"] == ["1", "1", "0", "0"]
    assert lines["Border procedure (mandatory)"] == ["0", "0", "0", "1"]
    assert lines["Regular procedure"] == ["2", "1", "1", "0"]
    text = pdf_text(exports.html_to_pdf(html))
    assert "Backlog by track and status" in text and "Recognition rate by nationality" in text
    assert re.search(r"Regular procedure\s+2\s+1\s+1\s+0", text)


def test_summary_skips_caseworker_queries_and_reads_the_ruleset_once(world, office):
    """The summary shows no per-caseworker table, so it queries none (no staff table read); its
    track names come from one read of the triage ruleset's generation, not one per name."""
    services.report_html("summary", hq(office))  # triage's cache warm, as in a running application
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        services.report_html("summary", hq(office))
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert not any("user_account" in s for s in statements)
    assert sum("triage_setting" in s for s in statements) == 1
    dashboard = queries.dashboard(hq(office), caseworkers=False)
    assert dashboard.workload is None and dashboard.throughput is None


def test_chart_value_axis_has_at_most_max_scale_graduations():
    """Each graduation is a text layout in the PDF: pygal is told to draw at most MAX_SCALE."""
    chart = charts.stacked_bar_chart("t", "T", "D", ["a", "b"], [("s", [997, 3])])
    labels = re.findall(r">(\d+)</text>", str(chart.svg))
    assert 2 <= len(labels) <= charts.MAX_SCALE + 1
