"""bench/run.py writes its table into docs/performance.md: a run with --only replaces the rows of
the workloads it measured and carries the others over from the section's earlier run, marked
with that run's date (never dropping a measured row)."""

from __future__ import annotations

import pytest

from bench import run
from bench.common import Row

EARLIER = """# Performance: measured

<!-- bench:postgresql-1m -->
## postgresql-1m

`bench/run.py --database postgresql`

- date: 2026-11-20 10:00 UTC; database: postgresql; 1,000,000 cases

| workload | figure | baseline | ratio | target | result | absolute figures, notes |
|---|---|---|---|---|---|---|
| W1 intake claims/s | 20/s | 100/s | 0.20 | >=0.50 | FAIL | old W1 |
| W3 triage | 30,000/s |  |  | >=20000 | pass | carried over from the run of 2026-11-01 09:00 UTC |
| W9 audit verify | 14.5 s | 13.0 s | 1.11 | <=3x | pass |  |
| M1 RSS max (MB) | 151 |  |  | <=150 MB | FAIL | old M1 |
<!-- /bench:postgresql-1m -->

<!-- bench:sqlite -->
## sqlite
untouched
<!-- /bench:sqlite -->
"""


@pytest.fixture
def doc(tmp_path, monkeypatch):
    path = tmp_path / "performance.md"
    path.write_text(EARLIER, encoding="utf-8")
    monkeypatch.setattr(run, "DOC", path)
    return path


def table_lines(text: str, section: str) -> list[str]:
    body = text.split(f"<!-- bench:{section} -->", 1)[1].split(f"<!-- /bench:{section} -->", 1)[0]
    return [line for line in body.splitlines() if line.startswith("| ") and not line.startswith("| workload")]


def test_a_partial_run_replaces_its_rows_and_carries_the_others_with_their_date(doc):
    new = [Row("M1 RSS max (MB)", "140", "", "", "<=150 MB", "pass", "new M1"),
           Row("W1 intake claims/s", "60/s", "100/s", "0.60", ">=0.50", "pass", "new W1")]
    run.write_doc("postgresql-1m", "bench/run.py --only W1,M1", ["- date: 2026-11-23 12:00 UTC"], new, ["W1", "M1"])
    text = doc.read_text(encoding="utf-8")
    assert table_lines(text, "postgresql-1m") == [
        "| W1 intake claims/s | 60/s | 100/s | 0.60 | >=0.50 | pass | new W1 |",
        "| W3 triage | 30,000/s |  |  | >=20000 | pass | carried over from the run of 2026-11-01 09:00 UTC |",
        "| W9 audit verify | 14.5 s | 13.0 s | 1.11 | <=3x | pass "
        "| carried over from the run of 2026-11-20 10:00 UTC |",
        "| M1 RSS max (MB) | 140 |  |  | <=150 MB | pass | new M1 |",
    ]
    assert "old W1" not in text and "old M1" not in text
    assert "<!-- bench:sqlite -->\n## sqlite\nuntouched\n<!-- /bench:sqlite -->" in text


def test_a_full_run_carries_nothing(doc):
    run.write_doc("postgresql-1m", "bench/run.py", ["- date: 2026-11-23 12:00 UTC"],
                  [Row("W1 intake claims/s", "60/s", "100/s", "0.60", ">=0.50", "pass", "new W1")])
    assert table_lines(doc.read_text(encoding="utf-8"), "postgresql-1m") == [
        "| W1 intake claims/s | 60/s | 100/s | 0.60 | >=0.50 | pass | new W1 |"]


def test_rows_a_step_measured_beyond_what_was_asked_are_not_doubled(doc):
    """W6, W7 and W8 are one step: asked for W6 only, it measures all three."""
    run.write_doc("postgresql-1m", "bench/run.py --only W9", [], [Row("W9 audit verify", "13 s"),
                                                                  Row("W1 intake claims/s", "61/s")], ["W9"])
    lines = table_lines(doc.read_text(encoding="utf-8"), "postgresql-1m")
    assert [line.split(" | ")[0] for line in lines] == ["| W1 intake claims/s", "| W3 triage", "| W9 audit verify",
                                                        "| M1 RSS max (MB)"]


def test_a_new_section_is_appended(doc):
    run.write_doc("sqlite-100k", "bench/run.py", [], [Row("W1 intake claims/s", "60/s")], ["W1"])
    text = doc.read_text(encoding="utf-8")
    assert text.endswith("| W1 intake claims/s | 60/s |  |  |  |  |  |\n<!-- /bench:sqlite-100k -->\n")
