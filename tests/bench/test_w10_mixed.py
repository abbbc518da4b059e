"""The accounting of the W10 load generator (bench/w10_mixed.py): what counts as an error, the
percentiles per class, the warm-up, the memory slope, and the form reading that builds the
POSTs. No server, no timing assertions."""

from __future__ import annotations

import os
import random
import threading
import time

import pytest

from bench import w10_mixed as w


def sample(kind="read", status=200, seconds=0.01, at=10.0, outcome=None, operation="op"):
    return w.Sample(at, kind, operation, status, seconds, outcome or w.outcome_of(status, (200, 302), (409,)))


def test_outcomes_expected_refusals_are_not_errors():
    assert w.outcome_of(302, (302,), (409,)) == "ok"
    assert w.outcome_of(409, (302,), (409,)) == "refused"
    assert w.outcome_of(422, (302,), (409,)) == "error"
    assert w.outcome_of(500, (200,)) == "error"
    assert w.outcome_of(0, (200,)) == "error"  # the connection failed
    assert w.outcome_of(302, (200,)) == "error"  # a page that redirects (to the sign-in page) failed


def test_summary_counts_every_request_and_times_only_after_the_warm_up():
    samples = [sample(seconds=n / 1000, at=10.0) for n in range(1, 101)]
    samples += [sample(seconds=5.0, at=1.0)]  # warm-up: counted, not timed
    samples += [sample(kind="update", status=409, seconds=0.02), sample(kind="update", status=500, seconds=0.03)]
    summary = w.summarise(samples, seconds=10.0, warmup=5.0)
    assert summary.requests == 103
    assert summary.errors == 1 and summary.refused == 1
    assert summary.error_kinds == {("op", 500): 1}
    assert summary.per_class["read"]["count"] == 101
    assert summary.per_class["read"]["p50"] == pytest.approx(51.0)
    assert summary.per_class["read"]["p95"] == pytest.approx(96.0)
    assert summary.per_class["read"]["p99"] == pytest.approx(100.0)
    assert summary.per_class["update"] == {"count": 2, "errors": 1, "refused": 1, "p50": pytest.approx(30.0),
                                           "p95": pytest.approx(30.0), "p99": pytest.approx(30.0)}
    assert summary.per_class["intake"]["count"] == 0
    assert summary.per_second == pytest.approx(10.3)
    assert summary.overall["p99"] == pytest.approx(99.0)  # 102 timed: reads 1..100 ms, updates 20 and 30


def test_memory_slope_and_figures():
    assert w.slope_per_minute([]) == 0.0
    assert w.slope_per_minute([(t, 120.0) for t in range(0, 600, 3)]) == pytest.approx(0.0)
    assert w.slope_per_minute([(t, 100 + t / 60) for t in range(0, 600, 3)]) == pytest.approx(1.0)
    worker = w.WorkerMemory(1, [(0.0, 90.0), (10.0, 130.0), (20.0, 131.0), (30.0, 130.0)])
    figures = worker.figures(after=10.0)
    assert (figures["start"], figures["max"], figures["end"]) == (130.0, 131.0, 130.0)
    assert figures["slope"] == pytest.approx(0.0)
    # Caches fill early, then the line is flat: only the second half's trend says "growing".
    warming = w.WorkerMemory(2, [(t, min(150.0, 120 + t / 10)) for t in range(0, 600, 3)])
    figures = warming.figures(after=15.0, trend_from=300.0)
    assert figures["slope"] > 1.0
    assert figures["trend"] == pytest.approx(0.0)


PAGE = """
<form method="post" action="/auth/logout"><input type="hidden" name="csrf_token" value="t&amp;1"></form>
<form method="post" action="/cases/abc/edit">
  <input type="hidden" name="csrf_token" value="t&amp;1">
  <input name="made_place" value="Airport">
  <input type="checkbox" name="persons-0-principal" value="y" checked>
  <input type="checkbox" name="flags" value="a">
  <input type="radio" name="sex" value="M"><input type="radio" name="sex" value="F" checked>
  <input name="ignored" value="x" disabled>
  <select name="track"><option value="">Choose</option><option value="border">Border</option></select>
  <select name="country"><option value="SYR">Syria</option><option value="AFG" selected>Afghanistan</option></select>
  <select name="basis" multiple><option value="A" selected>A</option><option value="B">B</option></select>
  <textarea name="statement">
Line one &amp; two</textarea>
  <button type="submit" name="action" value="save">Save</button>
  <button type="submit" name="add" value="persons">Add a person</button>
</form>
"""


def test_forms_are_read_as_a_browser_submits_them():
    forms = w.page_forms(PAGE)
    assert [f["action"] for f in forms] == ["/auth/logout", "/cases/abc/edit"]
    edit = w.form_posting_to(PAGE, r"/edit$")
    assert [tuple(f) for f in edit["fields"]] == [
        ("csrf_token", "t&1"), ("made_place", "Airport"), ("persons-0-principal", "y"), ("sex", "F"),
        ("track", ""), ("country", "AFG"), ("basis", "A"), ("statement", "Line one & two")]
    assert edit["buttons"] == [("action", "save"), ("add", "persons")]
    assert [v for v, _t in edit["options"]["track"]] == ["", "border"]
    w.set_field(edit, "made_place", "Reception centre")
    assert w.field_value(edit, "made_place") == "Reception centre"
    assert w.csrf_of(PAGE) == "t&1"


class FakeTarget(w.Target):
    """Answers every operation without a server: a page, then a POST refused or not."""

    def __init__(self):
        self.calls = 0
        self.lock = threading.Lock()

    def run(self, operation, rng, record):
        with self.lock:
            self.calls += 1
            n = self.calls
        if n % 7 == 0:
            raise w.Skip("nothing to do")
        if n % 11 == 0:
            raise ValueError("a client bug")
        record("read", operation, w.Response(200, {}, b"", 0.001), (200,))
        record("update", operation, w.Response(409 if n % 2 else 302, {}, b"", 0.002), (302,), (409,))


def test_drive_accounts_for_every_operation():
    target = FakeTarget()
    record = w.drive(target, clients=3, seconds=0.05, seed=1)
    skipped = sum(record.skips.values())
    failed = sum(record.client_errors.values())
    assert target.calls == skipped + failed + len(record.samples) // 2
    assert all(s.outcome in ("ok", "refused") for s in record.samples)
    summary = w.summarise(record.samples, seconds=0.05)
    assert summary.errors == 0
    assert summary.per_class["update"]["refused"] + summary.per_class["update"]["errors"] <= summary.requests


def test_operation_weights_make_the_stated_mix():
    pure_reads = ("queue_page", "my_cases", "case_page", "workspace", "search", "audit_trail", "admin_users")
    updates = ("edit_registration", "assign", "schedule_interview", "save_draft")
    weights = w.OPERATIONS
    assert sum(weights.values()) == pytest.approx(72)  # 100 requests: every update and registration reads a page
    requests = {"read": sum(weights[o] for o in pure_reads) + sum(weights[o] for o in updates) + weights["register"],
                "update": sum(weights[o] for o in updates), "intake": weights["register"],
                "report": weights["dashboard"] + weights["export_csv"]}
    assert requests == {"read": 70, "update": 20, "intake": 8, "report": 2}
    assert set(weights) == {name.removeprefix("op_") for name in dir(w.NansenTarget) if name.startswith("op_")}
    assert set(weights) <= {name.removeprefix("op_") for name in dir(w.BareTarget) if name.startswith("op_")}


def test_pool_hands_each_account_to_one_client_at_a_time():
    accounts = [w.Account(f"u{n}", "caseworker", n, 1) for n in range(2)]
    pool = w.Pool(accounts)
    rng = random.Random(1)
    first, second = pool.take(rng), pool.take(rng)
    assert {first.username, second.username} == {"u0", "u1"}
    pool.give(first)
    assert pool.take(rng) is first


def test_cpu_note_gives_cpu_per_request_of_server_and_client():
    found = {"cpu": w.CpuUse(server=30.0, client=2.0), "bare_cpu": w.CpuUse(3.0, 1.0) + w.CpuUse(1.0, 1.0),
             "all_requests": 1000, "all_bare_requests": 2000}
    assert w.cpu_note(found) == ("; CPU per request: server 30.0 ms (bare 2.0), this client 2.0 ms (bare 1.0)")
    assert w.cpu_note({}) == ""


def test_cpu_seconds_reads_the_processes_own_accounting():
    spent = time.process_time()
    while time.process_time() - spent < 0.05:
        pass
    assert w.cpu_seconds([os.getpid()]) >= 0.05
    assert w.cpu_seconds([2 ** 22 + 1]) == 0.0  # no such process: nothing counted, no error
