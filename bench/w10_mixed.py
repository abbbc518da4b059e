"""W10: mixed load under gunicorn, and M1: the memory of one worker under it (PERFORMANCE.md).

Starts Nansen under gunicorn exactly as README.md deploys it (``gunicorn --workers 2*cores+1
wsgi:app``, ``NANSEN_ENV=production``: secrets from the environment, rate limits in Redis,
production Argon2) on a database the runner filled with ``app.demo_data.generate_caseload``,
signs in the accounts the mix needs once (a password, plus a TOTP code computed with pyotp for
supervisors, whose role requires a second factor), then drives the mix with concurrent clients
for the given duration, reusing the session cookies (Argon2 stays out of the loop):

* 70% reads: queue pages, my cases, the case page, the decision workspace, search (a POST:
  search terms never travel in URLs), the auditor's trail and the admin's user list;
* 20% updates, each a real form POST built from the page just fetched (CSRF token, version and
  every field read from the HTML, as a browser submits it): edit a registration, bulk-assign
  cases, schedule an interview, save a decision draft;
* 8% intake: the registration form POST (a realistic family, see bench/common.py); when the
  duplicate check asks, the officer's answer "new person" is posted again;
* 2% reports: the supervisor's dashboard and a CSV export.

The page an update or a registration is made from is fetched first (as a user would) and counts
as a read: the weights of the pure reads are lowered by as much, so the requests themselves are
70/20/8/2. Redirects after a POST are not followed (a 303/302 is the answer).

Baseline, same run: the same mix, the same client and the same gunicorn settings against
bench/bare_app.py: a minimal Flask + SQLAlchemy app on the same database doing the equivalent
get-by-key (reads), read-then-update by key (updates), insert of the case and person rows
(intake) and a GROUP BY (reports). It runs for a fifth of the soak (30 s to 120 s), half before
and half after Nansen's soak so drift on the shared machine hits both; its inserted rows are
deleted after each half.

Errors: any answer other than the one the operation expects (200 for a page, a redirect for a
POST that succeeds) is an error, except the expected refusals listed per operation (409: an
optimistic-locking conflict between two clients, or the duplicate step of a registration).
Both are counted and printed; W10 needs 0 errors. The server's error log is scanned too (its
exception lines are printed: the application logs no personal data).

M1: the resident set size (VmRSS in /proc/<pid>/status) of every gunicorn worker, every few
seconds during Nansen's soak: start, max, end and the slope of a least-squares line over the
soak after the warm-up. A report, never a test: machines are noisy.

    .venv/bin/python bench/run.py --only W10,M1 --w10-seconds 600 [--database postgresql] --no-write
"""

from __future__ import annotations

import base64
import html
import http.client
import itertools
import json
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import BARE_REFERENCE_PREFIXES, PASSWORD, Row, percentile, verdict  # noqa: E402

CLASSES = ("read", "update", "intake", "report")
P95_RATIO_TARGET = 2.0          # W10: p95 <= 2x the same mix on bare endpoints
P95_SANITY_MS = 200.0           # W10: p95 <= 200 ms (this machine)
RSS_TARGET_MB = 150.0           # M1
RSS_SAMPLE_SECONDS = 3.0
FLAT_MB_PER_10_MIN = 5.0        # M1: "flat" = the fitted line grows less than this over 10 minutes

# The operations and their weights (per 100 requests): an operation that posts a form first
# fetches its page, which is a read, so the pure reads weigh 70 - 20 - 8 = 42.
OPERATIONS = {
    # pure reads (42)
    "queue_page": 9, "my_cases": 6, "case_page": 11, "workspace": 5, "search": 8, "audit_trail": 2,
    "admin_users": 1,
    # updates (20): page (read) + POST (update)
    "edit_registration": 7, "assign": 4, "schedule_interview": 5, "save_draft": 4,
    # intake (8): form page (read) + POST (intake)
    "register": 8,
    # reports (2)
    "dashboard": 1.5, "export_csv": 0.5,
}
WORKERS = 2 * (os.cpu_count() or 1) + 1

# The KEK of config.TestingConfig: the runner fills the database with it, so production reads it.
RUNNER_KEK = base64.b64encode(b"\x01" * 32).decode()


def default_clients() -> int:
    """One closed-loop client per worker: every worker has a request to serve, no queue builds up
    in front of them, so latencies are service times under full load."""
    return WORKERS


# -- accounting (pure: tested in tests/bench/test_w10_mixed.py) ------------------------------------

@dataclass(frozen=True, slots=True)
class Sample:
    at: float           # seconds since the soak started
    kind: str           # read, update, intake, report
    operation: str
    status: int         # HTTP status, 0 when the connection failed
    seconds: float
    outcome: str        # ok, refused (an expected refusal), error


def outcome_of(status: int, ok: tuple[int, ...], refusals: tuple[int, ...] = ()) -> str:
    if status in ok:
        return "ok"
    if status in refusals:
        return "refused"
    return "error"


@dataclass
class Summary:
    requests: int = 0
    errors: int = 0
    refused: int = 0
    seconds: float = 0.0
    per_class: dict = field(default_factory=dict)      # kind -> {count, errors, refused, p50, p95, p99}
    overall: dict = field(default_factory=dict)        # {p50, p95, p99} (ms)
    error_kinds: Counter = field(default_factory=Counter)   # (operation, status) -> n
    refusal_kinds: Counter = field(default_factory=Counter)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _percentiles(latencies: list[float]) -> dict:
    return {name: percentile(latencies, p) * 1000 for name, p in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))}


def summarise(samples: list[Sample], seconds: float, warmup: float = 0.0) -> Summary:
    """Counts every request (errors during the warm-up too); latencies only after ``warmup``."""
    summary = Summary(seconds=seconds)
    latencies: dict[str, list[float]] = defaultdict(list)
    counts: dict[str, Counter] = defaultdict(Counter)
    for s in samples:
        summary.requests += 1
        counts[s.kind][s.outcome] += 1
        if s.outcome == "error":
            summary.errors += 1
            summary.error_kinds[(s.operation, s.status)] += 1
        elif s.outcome == "refused":
            summary.refused += 1
            summary.refusal_kinds[(s.operation, s.status)] += 1
        if s.at >= warmup:
            latencies[s.kind].append(s.seconds)
    for kind in CLASSES:
        summary.per_class[kind] = {"count": sum(counts[kind].values()), "errors": counts[kind]["error"],
                                   "refused": counts[kind]["refused"], **_percentiles(latencies[kind])}
    summary.overall = _percentiles([x for kind in CLASSES for x in latencies[kind]])
    return summary


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per minute (0 with fewer than 2 points)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return sum((t - mx) * (v - my) for t, v in points) / var * 60


@dataclass
class WorkerMemory:
    pid: int
    points: list[tuple[float, float]] = field(default_factory=list)   # (seconds, MB)

    def figures(self, after: float = 0.0, trend_from: float | None = None) -> dict:
        """Start (first sample after the warm-up), max, end; ``slope`` over everything after the
        warm-up, ``trend`` over the points from ``trend_from`` on (the soak's second half: caches
        fill early, so only growth that goes on there is a trend)."""
        kept = [p for p in self.points if p[0] >= after] or self.points
        late = [p for p in self.points if p[0] >= (trend_from if trend_from is not None else after)] or kept
        values = [v for _, v in self.points]
        return {"start": kept[0][1], "max": max(values), "end": self.points[-1][1],
                "slope": slope_per_minute(kept), "trend": slope_per_minute(late), "samples": len(self.points)}


# -- processes ----------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def shared_and_private_mb(pid: int) -> tuple[float, float] | None:
    """(PSS, USS) from /proc/<pid>/smaps_rollup: the worker's share of pages it shares with the
    others, and what it alone holds (what one more worker costs)."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _sep, rest = line.partition(":")
            if name in ("Pss", "Private_Clean", "Private_Dirty"):
                values[name] = int(rest.split()[0]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    if "Pss" not in values:
        return None
    return values["Pss"], values.get("Private_Clean", 0.0) + values.get("Private_Dirty", 0.0)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes ``pids`` have used so far (/proc/<pid>/stat)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        except (OSError, ValueError, IndexError):
            continue
    return total / ticks


@dataclass
class CpuUse:
    """CPU seconds the server's workers and this client process used while a phase was driven."""

    server: float = 0.0
    client: float = 0.0

    def __add__(self, other: CpuUse) -> CpuUse:
        return CpuUse(self.server + other.server, self.client + other.client)


def driven(server: Gunicorn, drive_it) -> tuple[object, float, CpuUse]:
    """Run ``drive_it()`` against ``server``: (its result, wall seconds, CPU used)."""
    server_before, client_before = cpu_seconds(server.worker_pids()), time.process_time()
    started = time.perf_counter()
    result = drive_it()
    elapsed = time.perf_counter() - started
    used = CpuUse(cpu_seconds(server.worker_pids()) - server_before, time.process_time() - client_before)
    return result, elapsed, used


def children(pid: int) -> list[int]:
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return sorted(found)


class Gunicorn:
    """One gunicorn (its own process group, killed as a group), logs in ``workdir``."""

    def __init__(self, name: str, target: str, env: dict, workdir: Path, workers: int = WORKERS):
        self.port = free_port()
        self.name = name
        # gunicorn's own log and the application's (a StreamHandler on stderr) in one file; in
        # W10_LOG_DIR when set, to keep it after the run (it holds no personal data).
        logs = Path(os.environ.get("W10_LOG_DIR") or workdir)
        logs.mkdir(parents=True, exist_ok=True)
        self.log = logs / f"gunicorn-{name}.log"
        command = [str(Path(sys.executable).parent / "gunicorn"), "--workers", str(workers),
                   "--bind", f"127.0.0.1:{self.port}", "--timeout", "120",
                   "--no-control-socket",  # gunicorn's default socket path is one per machine: not ours to take
                   target]
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True,
                                            stdout=out, stderr=subprocess.STDOUT)
        self.workers = workers

    def wait_ready(self, path: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn ({self.name}) exited with {self.process.returncode}: see {self.log}")
            if len(children(self.process.pid)) >= self.workers:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                    conn.request("GET", path)
                    status = conn.getresponse().status
                    conn.close()
                    if status == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.3)
        raise RuntimeError(f"gunicorn ({self.name}) not ready after {timeout:.0f} s: see {self.log}")

    def worker_pids(self) -> list[int]:
        return children(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout=10)

    def problems(self) -> Counter:
        """Exception lines, worker timeouts and errors in gunicorn's log (no personal data is logged)."""
        found: Counter = Counter()
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return found
        for i, line in enumerate(lines):
            if "WORKER TIMEOUT" in line or "was sent SIGKILL" in line or "Worker exited with" in line:
                found[re.sub(r"\(pid:\d+\)|pid \d+|\d+", "#", line.split("] ", 2)[-1])[:160]] += 1
            elif re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Warning|Violation|Timeout)\b", line) and i and (
                    lines[i - 1].startswith(" ")):
                found[line[:200]] += 1
            elif " ERROR " in line:
                found[re.sub(r"\[[0-9a-f]{16}\]", "[id]", line.split(" ", 2)[-1])[:160]] += 1
        return found


def production_env(database_url: str, workdir: Path, redis_db: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NANSEN_", "FLASK_"))}
    env.update(NANSEN_ENV="production", SECRET_KEY=secrets.token_urlsafe(48), DATABASE_URL=database_url,
               NANSEN_KEK=RUNNER_KEK, RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:6379/{redis_db}",
               AUDIT_CHECKPOINT_DIR=str(workdir / "checkpoints"), TRUSTED_PROXY_COUNT="1",
               PYTHONPATH=str(ROOT))
    return env


# -- the client ----------------------------------------------------------------------------------------

@dataclass
class Response:
    status: int
    headers: dict
    body: bytes
    seconds: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def location(self) -> str:
        return self.headers.get("location", "")


class Browser:
    """Cookies and one new connection per request (gunicorn's sync workers close every
    connection). ``address`` goes in X-Forwarded-For: the trusted proxy of a deployment sets it,
    and the login rate limit counts per address."""

    def __init__(self, port: int, address: str):
        self.port = port
        self.address = address
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form=None, timeout: float = 120.0) -> Response:
        headers = {"Host": f"127.0.0.1:{self.port}", "X-Forwarded-For": self.address, "Connection": "close",
                   "Accept-Language": "en"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form, doseq=True)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
            status = answer.status
            got = {k.lower(): v for k, v in answer.getheaders() if k.lower() != "set-cookie"}
            cookies = answer.headers.get_all("Set-Cookie") or []
        except (OSError, http.client.HTTPException):
            return Response(0, {}, b"", time.perf_counter() - started)
        finally:
            conn.close()
        seconds = time.perf_counter() - started
        for line in cookies:
            pair, _sep, attributes = line.partition(";")
            name, _eq, value = pair.strip().partition("=")
            if "max-age=0" in attributes.lower() or "expires=thu, 01 jan 1970" in attributes.lower():
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return Response(status, got, data, seconds)


class _Forms(HTMLParser):
    """The forms of a page as a browser would submit them: inputs with their values, checked
    boxes only, the selected options (the first one when none is), textareas; submit buttons
    apart (a browser sends only the one clicked)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._select = None
        self._option = None
        self._textarea = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action") or "", "method": (a.get("method") or "get").lower(),
                               "id": a.get("id"), "fields": [], "buttons": [], "boxes": [], "options": {}})
            return
        if not self.forms or "disabled" in a:
            return
        form = self.forms[-1]
        name = a.get("name")
        if tag == "input" and name:
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "button", "image", "reset"):
                form["buttons"].append((name, a.get("value", "")))
            elif kind in ("checkbox", "radio"):
                form["boxes"].append((name, a.get("value", "on"), "checked" in a))
                if "checked" in a:
                    form["fields"].append([name, a.get("value", "on")])
            elif kind != "file":
                form["fields"].append([name, a.get("value", "")])
        elif tag == "button" and name:
            form["buttons"].append((name, a.get("value", "")))
        elif tag == "select" and name:
            self._select = {"name": name, "multiple": "multiple" in a, "options": [], "selected": []}
            self.forms[-1]["options"][name] = self._select["options"]
        elif tag == "option" and self._select is not None:
            self._option = [a.get("value"), ""]
            if "selected" in a:
                self._select["selected"].append(self._option)
            self._select["options"].append(self._option)
        elif tag == "textarea" and name:
            self._textarea = [name, ""]

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data
        elif self._option is not None:
            self._option[1] += data

    def handle_endtag(self, tag):
        if tag == "option":
            self._option = None
        elif tag == "select" and self._select is not None:
            s = self._select
            chosen = s["selected"] or ([] if s["multiple"] or not s["options"] else [s["options"][0]])
            for value, text in chosen:
                self.forms[-1]["fields"].append([s["name"], value if value is not None else text.strip()])
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            name, text = self._textarea
            self.forms[-1]["fields"].append([name, text[1:] if text.startswith("\n") else text])
            self._textarea = None


def page_forms(page: str) -> list[dict]:
    parser = _Forms()
    parser.feed(page)
    parser.close()
    return parser.forms


def form_posting_to(page: str, pattern: str) -> dict | None:
    return next((f for f in page_forms(page) if f["method"] == "post" and re.search(pattern, f["action"])), None)


def field_value(form: dict, name: str) -> str | None:
    return next((value for key, value in form["fields"] if key == name), None)


def set_field(form: dict, name: str, value: str) -> None:
    for entry in form["fields"]:
        if entry[0] == name:
            entry[1] = value
            return
    form["fields"].append([name, value])


CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
CASE_LINK = re.compile(r'href="/cases/([0-9a-f]{32})"')


def csrf_of(page: str) -> str | None:
    found = CSRF.search(page)
    return html.unescape(found.group(1)) if found else None


# -- accounts and the data the clients pick from (prepared in the runner, before gunicorn starts) ------

@dataclass
class Account:
    username: str
    role: str
    user_id: int
    office_id: int
    totp_secret: str | None = None
    address: str = "10.0.0.1"
    browser: Browser | None = None
    token: str | None = None                                  # the session's CSRF token, read from a page
    interviewable: list[str] = field(default_factory=list)    # own cases where an interview can be booked
    draftable: list[str] = field(default_factory=list)        # own cases where a decision can be drafted
    slot: itertools.count = field(default_factory=itertools.count)


class Pool:
    """Accounts of one role, each used by one client at a time (one browser, one session)."""

    def __init__(self, accounts: list[Account]):
        self.accounts = list(accounts)
        self._free = list(accounts)
        self._cond = threading.Condition()

    def take(self, rng: random.Random) -> Account:
        with self._cond:
            while not self._free:
                self._cond.wait()
            return self._free.pop(rng.randrange(len(self._free)))

    def give(self, account: Account) -> None:
        with self._cond:
            self._free.append(account)
            self._cond.notify()


@dataclass
class World:
    """What the clients pick from: per office, case ids and references (no personal data), the
    caseworkers not driven by the bench (bulk assignment moves cases between them), a
    registration officer (the bare app's received_by)."""

    offices: list[int]
    cases: dict[int, list[str]]
    references: dict[int, list[str]]
    others: dict[int, list[int]]
    registrar: dict[int, int]
    tracks: list[str]
    accounts: dict[str, list[Account]] = field(default_factory=dict)


def prepare(app, clients: int, seed: int) -> World:
    """Bench accounts: existing caseworkers with the most open cases (given a password), new
    registration officers, supervisors (with a confirmed TOTP secret), an auditor and an
    administrator (TOTP too). Created directly, like tests/conftest.py's make_user: the bench's
    own accounts, never audited journeys."""
    import pyotp
    from sqlalchemy import func, select

    from app.auth.models import User
    from app.auth.passwords import hash_password
    from app.db_types import utcnow
    from app.decisions.models import Interview
    from app.extensions import db
    from app.intake.models import Case

    rng = random.Random(seed)
    with app.app_context():
        password_hash = hash_password(PASSWORD)
        open_statuses = ("assigned", "interview_scheduled", "interviewed", "decision_drafted")
        counts = db.session.execute(
            select(Case.assigned_to_id, Case.office_id, func.count()).where(
                Case.assigned_to_id.is_not(None), Case.status.in_(open_statuses))
            .group_by(Case.assigned_to_id, Case.office_id).order_by(func.count().desc())).all()
        offices = sorted({office for _, office, _ in counts})
        workers = db.session.scalars(select(User).where(
            User.role == "caseworker", User.active.is_(True), User.id.in_([u for u, _, _ in counts]))).all()
        by_id = {u.id: u for u in workers}
        ranked = [by_id[u] for u, _, _ in counts if u in by_id]
        # The clients' caseworkers, spread over the offices, busiest first.
        chosen: list[User] = []
        for i in range(clients):
            office = offices[i % len(offices)]
            pick = next((u for u in ranked if u.office_id == office and u not in chosen), None)
            if pick is not None:
                chosen.append(pick)
        world = World(offices=offices, cases={}, references={}, others={}, registrar={}, tracks=[])
        for office in offices:
            # Not the bare rows the W1/W2 baselines insert into a kept database: their people have
            # no sections, which no registration can make, so an edit of one is refused (422) as
            # the incomplete record it is.
            not_bare = [Case.reference.not_like(f"{prefix}%") for prefix in BARE_REFERENCE_PREFIXES]
            rows = db.session.execute(select(Case.id, Case.reference).where(Case.office_id == office, *not_bare)
                                      .order_by(Case.id).limit(20_000)).all()
            rng.shuffle(rows)
            world.cases[office] = [r.id for r in rows[:3000]]
            world.references[office] = [r.reference for r in rows[:3000]]
            world.others[office] = [u.id for u in ranked if u.office_id == office and u not in chosen]
        world.tracks = sorted(t for t, in db.session.execute(
            select(Case.track).where(Case.track.is_not(None)).distinct()))
        accounts: dict[str, list[Account]] = defaultdict(list)
        address = itertools.count(10)
        for user in chosen:
            user.password_hash = hash_password(PASSWORD) if user is chosen[0] else password_hash
            own = db.session.execute(select(Case.id, Case.status).where(
                Case.assigned_to_id == user.id, Case.status.in_(open_statuses))).all()
            # Slots after the caseworker's latest interview: a kept database holds an earlier
            # soak's bookings, and booking one of those times again is rightly refused (422).
            latest = db.session.scalar(select(func.max(Interview.starts_at)).where(Interview.interviewer_id == user.id))
            days_booked = 0 if latest is None else (latest.date() - date.today()).days - SLOT_DAYS_AHEAD + 1
            first_slot = max(0, days_booked * 3)
            accounts["caseworker"].append(Account(
                user.username, "caseworker", user.id, user.office_id,
                interviewable=[c.id for c in own if c.status in open_statuses[:3]],
                draftable=[c.id for c in own if c.status in open_statuses[2:]], slot=itertools.count(first_slot)))
        made = [("registration_officer", "reg", clients, False), ("supervisor", "sup", max(2, clients // 2), True),
                ("auditor", "aud", 1, False), ("admin", "adm", 1, True)]
        for role, short, count, mfa in made:
            for n in range(count):
                office = offices[n % len(offices)]
                username = f"w10.{short}{n:02d}"
                user = db.session.scalar(select(User).where(User.username == username))
                if user is None:
                    user = User(username=username, full_name=f"Bench {role} {n}", role=role, office_id=office,
                                password_hash=password_hash, active=True)
                    db.session.add(user)
                    db.session.flush()
                user.password_hash = password_hash
                secret = None
                if mfa:
                    secret = pyotp.random_base32()
                    user.totp_secret = secret
                    user.totp_confirmed_at = utcnow()
                    user.totp_last_step = None
                accounts[role].append(Account(username, role, user.id, office, totp_secret=secret))
        for office in offices:
            world.registrar[office] = next(a.user_id for a in accounts["registration_officer"]
                                           if a.office_id == office)
        for role_accounts in accounts.values():
            for account in role_accounts:
                n = next(address)
                account.address = f"10.0.{n // 250}.{n % 250 + 1}"
        world.accounts = dict(accounts)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return world


class SignInFailed(RuntimeError):
    pass


def sign_in(account: Account, port: int) -> None:
    """Password, then the TOTP code where the role needs one; the session cookie is kept."""
    import pyotp

    browser = Browser(port, account.address)
    page = browser.request("GET", "/auth/login")
    answer = browser.request("POST", "/auth/login", [("username", account.username), ("password", PASSWORD),
                                                     ("csrf_token", csrf_of(page.text) or "")])
    if answer.status != 302:
        raise SignInFailed(f"{account.role} sign-in answered {answer.status}")
    if "/auth/second-factor" in answer.location:
        page = browser.request("GET", "/auth/second-factor")
        code = pyotp.TOTP(account.totp_secret).now()
        answer = browser.request("POST", "/auth/second-factor", [("code", code), ("csrf_token", csrf_of(page.text))])
        if answer.status != 302:
            raise SignInFailed(f"{account.role} second factor answered {answer.status}")
    home = browser.request("GET", "/")
    if home.status != 200 or csrf_of(home.text) is None:
        raise SignInFailed(f"{account.role} home page answered {home.status} after sign-in")
    account.browser = browser
    account.token = csrf_of(home.text)


# -- the mix -----------------------------------------------------------------------------------------------

class Skip(Exception):  # noqa: N818 - not an error: the page offered nothing to do (counted, printed)
    """The operation found nothing to act on (e.g. the queue emptied); the client draws again."""


class Recorder:
    """Collects samples from every client thread (list.append is atomic under the GIL)."""

    def __init__(self):
        self.samples: list[Sample] = []
        self.skips: Counter = Counter()
        self.client_errors: Counter = Counter()
        self.started = time.perf_counter()

    def __call__(self, kind: str, operation: str, response: Response, ok: tuple[int, ...],
                 refusals: tuple[int, ...] = ()) -> str:
        outcome = outcome_of(response.status, ok, refusals)
        at = time.perf_counter() - response.seconds - self.started
        self.samples.append(Sample(at, kind, operation, response.status, response.seconds, outcome))
        return outcome


class Target:
    """One side of the comparison: ``run(operation, rng, record)`` performs one operation."""

    def run(self, operation: str, rng: random.Random, record: Recorder) -> None:
        getattr(self, "op_" + operation)(rng, record)


SLOT_DAYS_AHEAD = 200


def _interview_slot(account: Account) -> tuple[str, str]:
    """A time nobody else books: each caseworker's own interviews, three a day, months ahead."""
    n = next(account.slot)
    day = date.today() + timedelta(days=SLOT_DAYS_AHEAD + n // 3)
    return day.isoformat(), f"{8 + 3 * (n % 3):02d}:00"


class NansenTarget(Target):
    def __init__(self, port: int, world: World, registrations: list[list[tuple[str, str]]]):
        self.port = port
        self.world = world
        self.pools = {role: Pool(accounts) for role, accounts in world.accounts.items()}
        self.registrations = registrations
        self._next_registration = itertools.count()
        self._lock = threading.Lock()

    class _Using:
        def __init__(self, pool: Pool, rng: random.Random):
            self.pool, self.rng = pool, rng

        def __enter__(self) -> Account:
            self.account = self.pool.take(self.rng)
            return self.account

        def __exit__(self, *exc):
            self.pool.give(self.account)

    def using(self, role: str, rng: random.Random):
        return self._Using(self.pools[role], rng)

    def page(self, account: Account, path: str, record: Recorder, operation: str, kind: str = "read") -> Response:
        answer = account.browser.request("GET", path)
        if record(kind, operation, answer, (200,)) == "ok":
            account.token = csrf_of(answer.text) or account.token
        return answer

    def case_of(self, account: Account, rng: random.Random) -> str:
        return rng.choice(self.world.cases[account.office_id])

    # reads
    def op_queue_page(self, rng, record):
        with self.using("caseworker", rng) as a:
            track = rng.choice(self.world.tracks) if rng.random() < 0.5 else None
            self.page(a, "/triage/queue" + (f"?track={track}" if track else ""), record, "queue_page")

    def op_my_cases(self, rng, record):
        with self.using("caseworker", rng) as a:
            self.page(a, "/triage/my-cases", record, "my_cases")

    def op_case_page(self, rng, record):
        with self.using("caseworker" if rng.random() < 0.7 else "registration_officer", rng) as a:
            self.page(a, f"/cases/{self.case_of(a, rng)}", record, "case_page")

    def op_workspace(self, rng, record):
        with self.using("caseworker", rng) as a:
            own = a.interviewable + a.draftable
            case = rng.choice(own) if own and rng.random() < 0.5 else self.case_of(a, rng)
            self.page(a, f"/decisions/case/{case}", record, "workspace")

    def op_search(self, rng, record):
        with self.using("caseworker" if rng.random() < 0.5 else "registration_officer", rng) as a:
            form = [("csrf_token", a.token), ("reference", rng.choice(self.world.references[a.office_id])),
                    ("document_number", ""), ("family_name", ""), ("given_names", ""), ("date_of_birth", "")]
            answer = a.browser.request("POST", "/cases/search", form)
            record("read", "search", answer, (200,))

    def op_audit_trail(self, rng, record):
        with self.using("auditor", rng) as a:
            self.page(a, "/audit/", record, "audit_trail")

    def op_admin_users(self, rng, record):
        with self.using("admin", rng) as a:
            self.page(a, "/admin/users", record, "admin_users")

    # updates: the page first (a read), then the form it shows, as a browser submits it
    def op_edit_registration(self, rng, record):
        with self.using("caseworker" if rng.random() < 0.6 else "registration_officer", rng) as a:
            case = self.case_of(a, rng)
            page = self.page(a, f"/cases/{case}/edit", record, "edit_registration")
            if page.status != 200:
                return
            form = form_posting_to(page.text, r"/edit$")
            if form is None:
                raise Skip("no edit form")
            place = field_value(form, "made_place") or ""
            set_field(form, "made_place", "Reception centre" if place != "Reception centre" else "Regional office")
            answer = a.browser.request("POST", form["action"], [*map(tuple, form["fields"]), ("action", "save")])
            record("update", "edit_registration", answer, (302,), (409,))

    def op_assign(self, rng, record):
        with self.using("supervisor", rng) as a:
            others = self.world.others.get(a.office_id, [])
            from_user = rng.choice(others) if len(others) >= 2 and rng.random() < 0.5 else None
            path = "/triage/assign" + (f"?from_user={from_user}" if from_user else "")
            page = self.page(a, path, record, "assign")
            if page.status != 200:
                return
            form = form_posting_to(page.text, r"/triage/assign")
            boxes = [value for name, value, _checked in (form or {}).get("boxes", []) if name == "case"]
            people = [v for v, _t in (form or {}).get("options", {}).get("assignee", []) if v and v != "0"]
            targets = [p for p in people if int(p) != from_user and (from_user is None or int(p) in others)]
            if not boxes or not targets:
                raise Skip("nothing to assign")
            chosen = rng.sample(boxes, min(len(boxes), rng.randint(1, 3)))
            set_field(form, "assignee", rng.choice(targets))
            answer = a.browser.request("POST", "/triage/assign", [*map(tuple, form["fields"]),
                                                                  *(("case", c) for c in chosen)])
            record("update", "assign", answer, (302,), (409,))

    def op_schedule_interview(self, rng, record):
        with self.using("caseworker", rng) as a:
            if not a.interviewable:
                raise Skip("no case to interview")
            case = rng.choice(a.interviewable)
            page = self.page(a, f"/decisions/case/{case}", record, "schedule_interview")
            if page.status != 200:
                return
            form = form_posting_to(page.text, r"/interviews$")
            if form is None:  # a draft was saved meanwhile: the case is past its interviews
                a.interviewable.remove(case)
                raise Skip("no interview form (case drafted meanwhile)")
            day, at = _interview_slot(a)
            set_field(form, "interview-date", day)
            set_field(form, "interview-time", at)
            set_field(form, "interview-place", "Interview room 2")
            answer = a.browser.request("POST", form["action"], [*map(tuple, form["fields"])])
            record("update", "schedule_interview", answer, (302,), (409,))

    def op_save_draft(self, rng, record):
        with self.using("caseworker", rng) as a:
            if not a.draftable:
                raise Skip("no case to draft")
            case = rng.choice(a.draftable)
            page = self.page(a, f"/decisions/case/{case}", record, "save_draft")
            if page.status != 200:
                return
            form = form_posting_to(page.text, r"/(draft|edit)$")
            if form is None:
                a.draftable.remove(case)
                raise Skip("no draft form")
            prefix = next(name for name, _v in form["fields"] if name.endswith("-expected_version"))
            prefix = prefix.removesuffix("expected_version")
            outcomes = [v for v, _t in form["options"].get(prefix + "outcome", []) if v]
            if not field_value(form, prefix + "outcome") and outcomes:
                set_field(form, prefix + "outcome", rng.choice(outcomes))
            set_field(form, prefix + "reasons", f"Reasons drafted under load, version {rng.randrange(10**6)}.")
            answer = a.browser.request("POST", form["action"], [*map(tuple, form["fields"])])
            record("update", "save_draft", answer, (302,), (409,))

    # intake
    def op_register(self, rng, record):
        with self.using("registration_officer", rng) as a:
            page = self.page(a, "/cases/register", record, "register")
            if page.status != 200:
                return
            with self._lock:
                fields = self.registrations[next(self._next_registration) % len(self.registrations)]
            form = [("csrf_token", csrf_of(page.text)), *fields, ("action", "register")]
            answer = a.browser.request("POST", "/cases/register", form)
            if record("intake", "register", answer, (302,), (409,)) == "refused":
                # The duplicate step: the officer answers "a new person" for everyone asked about.
                again = form_posting_to(answer.text, r"/cases/register$")
                if again is None:
                    raise Skip("no duplicate step form")
                asked = {name for name, _v, _c in again["boxes"] if name.startswith("duplicate-")}
                fields = [tuple(f) for f in again["fields"] if f[0] not in asked]
                fields += [(name, "new") for name in sorted(asked)]
                answer = a.browser.request("POST", "/cases/register", [*fields, ("action", "register")])
                record("intake", "register_duplicate_step", answer, (302,))

    # reports
    def op_dashboard(self, rng, record):
        with self.using("supervisor", rng) as a:
            self.page(a, "/reports/", record, "dashboard", kind="report")

    def op_export_csv(self, rng, record):
        with self.using("supervisor", rng) as a:
            kind = rng.choice(["backlog", "ageing", "weekly_flow", "decision_times", "deadlines", "workload",
                               "recognition"])
            from app.reports.forms import default_period

            # The dashboard's own filters (its default period), as its export buttons post them.
            date_from, date_to = default_period(date.today())
            query = urllib.parse.urlencode({"date_from": date_from.isoformat(), "date_to": date_to.isoformat(),
                                            "office": a.office_id})
            answer = a.browser.request("POST", f"/reports/export/{kind}?{query}", [("csrf_token", a.token)])
            record("report", "export_csv", answer, (200,))


class BareTarget(Target):
    """The same operations against bench/bare_app.py: get-by-key, read-then-update by key, insert,
    GROUP BY. No session, no CSRF, no templates, no audit."""

    def __init__(self, port: int, world: World, payloads: list[dict]):
        self.world = world
        self.browser = Browser(port, "10.1.0.1")
        self.payloads = payloads
        self._next = itertools.count()

    def _office(self, rng):
        return rng.choice(self.world.offices)

    def _read(self, rng, record, operation):
        office = self._office(rng)
        record("read", operation, self.browser.request("GET", f"/bare/case/{rng.choice(self.world.cases[office])}"),
               (200,))

    op_queue_page = op_my_cases = op_case_page = op_workspace = op_audit_trail = op_admin_users = (
        lambda self, rng, record: self._read(rng, record, "get_by_key"))

    def op_search(self, rng, record):
        office = self._office(rng)
        answer = self.browser.request("POST", "/bare/search",
                                      [("reference", rng.choice(self.world.references[office]))])
        record("read", "search", answer, (200,))

    def _update(self, rng, record):
        office = self._office(rng)
        case = rng.choice(self.world.cases[office])
        page = self.browser.request("GET", f"/bare/case/{case}/form")
        if record("read", "form", page, (200,)) != "ok":
            return
        version = page.text.strip().rpartition(" ")[2]
        record("update", "update_by_key", self.browser.request("POST", f"/bare/case/{case}", [("version", version)]),
               (303,), (409,))

    op_edit_registration = op_assign = op_schedule_interview = op_save_draft = (
        lambda self, rng, record: self._update(rng, record))

    def op_register(self, rng, record):
        office = self._office(rng)
        page = self.browser.request("GET", "/bare/register")
        if record("read", "form", page, (200,)) != "ok":
            return
        payload = self.payloads[next(self._next) % len(self.payloads)]
        answer = self.browser.request("POST", "/bare/register", [
            ("payload", json.dumps(payload)), ("office_id", office), ("received_by_id", self.world.registrar[office])])
        record("intake", "insert", answer, (303,))

    def op_dashboard(self, rng, record):
        record("report", "aggregate", self.browser.request("GET", f"/bare/report?office={self._office(rng)}"), (200,))

    def op_export_csv(self, rng, record):
        record("report", "aggregate_csv",
               self.browser.request("POST", f"/bare/export?office={self._office(rng)}", []), (200,))


def drive(target: Target, clients: int, seconds: float, seed: int, record: Recorder | None = None) -> Recorder:
    """``clients`` closed-loop clients drawing operations by weight for ``seconds``."""
    record = record or Recorder()
    names, weights = list(OPERATIONS), list(OPERATIONS.values())
    deadline = time.perf_counter() + seconds

    def client(n: int):
        rng = random.Random(seed * 1000 + n)
        while time.perf_counter() < deadline:
            operation = rng.choices(names, weights)[0]
            try:
                target.run(operation, rng, record)
            except Skip as skipped:
                record.skips[f"{operation}: {skipped}"] += 1
            except Exception as exc:  # noqa: BLE001 - a client bug must show, not stop the soak
                record.client_errors[f"{operation}: {type(exc).__name__}: {exc}"[:200]] += 1

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return record


class MemorySampler(threading.Thread):
    """VmRSS of every worker of ``server`` every ``interval`` seconds until stopped."""

    def __init__(self, server: Gunicorn, interval: float = RSS_SAMPLE_SECONDS):
        super().__init__(daemon=True)
        self.server, self.interval = server, interval
        self.workers: dict[int, WorkerMemory] = {}
        self.started = time.perf_counter()
        self._stop_event = threading.Event()
        self.final: dict[int, tuple[float, float] | None] = {}

    def sample(self) -> None:
        now = time.perf_counter() - self.started
        for pid in self.server.worker_pids():
            value = rss_mb(pid)
            if value is not None:
                self.workers.setdefault(pid, WorkerMemory(pid)).points.append((now, value))

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        self.sample()
        self.final = {pid: shared_and_private_mb(pid) for pid in self.server.worker_pids()}


# -- the run -----------------------------------------------------------------------------------------------

REDIS_DB = 13  # the bench's own Redis database for the login rate limits


def registration_forms(count: int, seed: int) -> tuple[list[dict], list[list[tuple[str, str]]]]:
    """Payloads (bench/common.py) and the registration form fields a browser posts for each."""
    from app.intake.forms import payload_to_formdata
    from bench.common import payloads

    made = payloads(count, seed, date.today())
    return made, [list(payload_to_formdata(p).items(multi=True)) for p in made]


def delete_bare_rows(url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM person WHERE case_id IN "
                          "(SELECT id FROM asylum_case WHERE reference LIKE 'W10B-%')"))
        deleted = conn.execute(text("DELETE FROM asylum_case WHERE reference LIKE 'W10B-%'")).rowcount
    engine.dispose()
    return deleted


def bare_phase(url: str, workdir: Path, world: World, payloads: list[dict], clients: int, seconds: float,
               seed: int, name: str) -> tuple[Recorder, float, Counter, CpuUse]:
    env = {**os.environ, "BARE_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    server = Gunicorn(name, "bench.bare_app:app", env, workdir)
    try:
        server.wait_ready("/bare/ping")
        record, elapsed, cpu = driven(server, lambda: drive(BareTarget(server.port, world, payloads), clients,
                                                            seconds, seed))
    finally:
        server.stop()
        delete_bare_rows(url)
    return record, elapsed, server.problems(), cpu


def measure(url: str, workdir: Path, make_app, seconds: float, clients: int, seed: int,
            log=print) -> dict:
    """Bare (first half), Nansen with the memory sampler, bare (second half). Returns the raw results."""
    app = make_app()
    world = prepare(app, clients, seed)
    payloads, forms = registration_forms(4000, seed)
    bare_seconds = max(30.0, min(120.0, seconds / 5))
    warmup = min(15.0, seconds / 10)
    log(f"  W10: {clients} clients, {WORKERS} gunicorn workers; bare {bare_seconds / 2:.0f} s, "
        f"Nansen {seconds:.0f} s, bare {bare_seconds / 2:.0f} s")
    bare_a, elapsed_a, problems_a, cpu_a = bare_phase(url, workdir, world, payloads, clients, bare_seconds / 2,
                                                      seed, "bare-a")
    server = Gunicorn("nansen", "wsgi:app", production_env(url, workdir, REDIS_DB), workdir)
    sampler = MemorySampler(server)
    try:
        server.wait_ready("/auth/login")
        idle = {pid: rss_mb(pid) for pid in server.worker_pids()}
        for accounts in world.accounts.values():
            for account in accounts:
                sign_in(account, server.port)
        log(f"  signed in {sum(len(a) for a in world.accounts.values())} accounts; soak...")
        sampler.started = time.perf_counter()
        sampler.start()
        record = Recorder()
        _record, elapsed, cpu = driven(server, lambda: drive(NansenTarget(server.port, world, forms), clients,
                                                             seconds, seed, record))
        sampler.stop()
    finally:
        server.stop()
    nansen_problems = server.problems()
    bare_b, elapsed_b, problems_b, cpu_b = bare_phase(url, workdir, world, payloads, clients, bare_seconds / 2,
                                                      seed + 1, "bare-b")
    # Each half's times count from its own start: one warm-up threshold serves both.
    bare = summarise(bare_a.samples + bare_b.samples, elapsed_a + elapsed_b, min(15.0, bare_seconds / 20))
    return {"nansen": summarise(record.samples, elapsed, warmup), "bare": bare, "record": record,
            "bare_records": (bare_a, bare_b), "memory": sampler.workers, "pss_uss": sampler.final,
            "warmup": warmup, "seconds": seconds, "bare_seconds": bare_seconds, "clients": clients,
            "problems": nansen_problems, "bare_problems": problems_a + problems_b, "idle": idle,
            "cpu": cpu, "bare_cpu": cpu_a + cpu_b, "all_requests": len(record.samples),
            "all_bare_requests": len(bare_a.samples) + len(bare_b.samples)}


def _ms(value: float) -> str:
    return f"{value:.1f}"


def cpu_note(found: dict) -> str:
    """CPU per request of the server's workers and of this client, Nansen and bare: with every
    worker busy, latency follows the CPU a request costs, so this says where a p95 ratio comes from."""
    if "cpu" not in found:
        return ""

    def per_request(seconds: float, requests: int) -> str:
        return f"{seconds * 1000 / requests:.1f}" if requests else "?"

    ours, bare = found["cpu"], found["bare_cpu"]
    n, b = found["all_requests"], found["all_bare_requests"]
    return (f"; CPU per request: server {per_request(ours.server, n)} ms (bare {per_request(bare.server, b)}), "
            f"this client {per_request(ours.client, n)} ms (bare {per_request(bare.client, b)})")


def rows(found: dict) -> list[Row]:
    nansen, bare = found["nansen"], found["bare"]
    record = found["record"]
    minutes = found["seconds"] / 60
    ratio = nansen.overall["p95"] / bare.overall["p95"] if bare.overall["p95"] else float("nan")
    errors = nansen.errors + sum(record.client_errors.values())
    ok = errors == 0 and ratio <= P95_RATIO_TARGET
    note = (f"{nansen.requests:,} requests in {minutes:.0f} min ({nansen.per_second:.1f}/s) vs bare "
            f"{bare.requests:,} ({bare.per_second:.0f}/s); {found['clients']} closed-loop clients, {WORKERS} sync "
            f"workers; p50 {_ms(nansen.overall['p50'])} / p99 {_ms(nansen.overall['p99'])} ms "
            f"(bare {_ms(bare.overall['p50'])} / {_ms(bare.overall['p99'])}); sanity p95 <= {P95_SANITY_MS:g} ms: "
            f"{'met' if nansen.overall['p95'] <= P95_SANITY_MS else 'not met'}; {nansen.refused} expected refusals "
            f"(409: edit conflict or duplicate step); latencies after a {found['warmup']:.0f} s warm-up"
            + cpu_note(found))
    out = [Row(f"W10 mixed load under gunicorn, {minutes:.0f} min: p95 (ms)", _ms(nansen.overall["p95"]),
               _ms(bare.overall["p95"]), f"{ratio:.1f}", f"0 errors; p95<={P95_RATIO_TARGET:g}x bare", verdict(ok),
               note)]
    error_note = ", ".join(f"{op} {status}: {n}" for (op, status), n in nansen.error_kinds.most_common(6))
    log_note = "; ".join(f"{line} x{n}" for line, n in found["problems"].most_common(4))
    client_note = ", ".join(f"{k} x{n}" for k, n in record.client_errors.most_common(3))
    out.append(Row("W10 errors (not 2xx/3xx, not an expected refusal)", f"{nansen.errors:,}",
                   f"{bare.errors:,}", "", "0", verdict(nansen.errors == 0 and not record.client_errors),
                   "; ".join(part for part in (error_note and f"by operation: {error_note}",
                                               log_note and f"server log: {log_note}",
                                               client_note and f"client: {client_note}") if part)
                   or "none; server log clean"))
    for kind in CLASSES:
        n, b = nansen.per_class[kind], bare.per_class[kind]
        r = n["p95"] / b["p95"] if b["p95"] else float("nan")
        out.append(Row(f"W10 {kind}s p95 (ms)", _ms(n["p95"]), _ms(b["p95"]), f"{r:.1f}", "", "info",
                       f"{n['count']:,} requests, {n['errors']} errors, {n['refused']} refused; p50 {_ms(n['p50'])}, "
                       f"p99 {_ms(n['p99'])} ms (bare p50 {_ms(b['p50'])}, p99 {_ms(b['p99'])})"))
    memory = found["memory"]
    idle = [v for v in found.get("idle", {}).values() if v is not None] or [float("nan")]
    if memory:
        warm = found["warmup"]
        figures = {pid: w.figures(after=warm, trend_from=found["seconds"] / 2) for pid, w in memory.items()}
        worst = max(figures.values(), key=lambda f: f["max"])
        steepest = max(f["slope"] for f in figures.values())
        trend = max(f["trend"] for f in figures.values())
        flat = trend * 10 <= FLAT_MB_PER_10_MIN
        restarted = max(0, len(memory) - WORKERS)
        shares = [v for v in found.get("pss_uss", {}).values() if v]
        pss = "/".join(f"{p:.0f}" for p, _u in shares) or "?"
        uss = "/".join(f"{u:.0f}" for _p, u in shares) or "?"
        out.append(Row("M1 RSS of one worker under the mixed load, max (MB)", f"{worst['max']:.0f}", "", "",
                       f"<={RSS_TARGET_MB:g} MB", verdict(worst["max"] <= RSS_TARGET_MB and restarted == 0),
                       f"worst worker: start {worst['start']:.0f}, max {worst['max']:.0f}, end {worst['end']:.0f} MB; "
                       f"steepest slope {steepest:+.2f} MB/min after the warm-up, {trend:+.2f} MB/min over the "
                       f"second half ({'flat' if flat else 'GROWING'}: limit {FLAT_MB_PER_10_MIN:g} MB per 10 min); "
                       "all workers: "
                       + ", ".join(f"{f['start']:.0f}/{f['max']:.0f}/{f['end']:.0f}" for f in figures.values())
                       + f" MB (start/max/end); idle before sign-in {min(idle):.0f}-{max(idle):.0f} MB; "
                       f"at the end PSS {pss} MB, private (USS) {uss} MB per worker; "
                       f"VmRSS every {RSS_SAMPLE_SECONDS:g} s; "
                       f"{'no worker restarted' if not restarted else f'{restarted} worker(s) replaced'}"))
    else:
        out.append(Row("M1 RSS of one worker under the mixed load", "", "", "", f"<={RSS_TARGET_MB:g} MB", "error",
                       "no worker memory sampled"))
    return out


def report_details(found: dict) -> None:
    """What the table cannot hold: per operation, skips, refusals (printed, no personal data)."""
    record = found["record"]
    by_op: dict[str, list[float]] = defaultdict(list)
    for s in record.samples:
        if s.at >= found["warmup"]:
            by_op[f"{s.kind}/{s.operation}"].append(s.seconds)
    print("  per operation (Nansen): requests, p50, p95 ms")
    for name in sorted(by_op):
        values = by_op[name]
        p50, p95 = percentile(values, 0.5) * 1000, percentile(values, 0.95) * 1000
        print(f"    {name:36} {len(values):7,} {p50:8.1f} {p95:8.1f}")
    for label, counter in (("refusals", found["nansen"].refusal_kinds), ("errors", found["nansen"].error_kinds),
                           ("skips", record.skips), ("client errors", record.client_errors),
                           ("server log", found["problems"]), ("bare server log", found["bare_problems"])):
        if counter:
            print(f"  {label}: " + "; ".join(f"{k} x{n}" for k, n in counter.most_common(10)))


def keep_series(found: dict, directory: str | None) -> None:
    """With W10_LOG_DIR set: the memory series and the latency samples as JSON (no personal data)."""
    if not directory:
        return
    path = Path(directory) / "w10-series.json"
    path.write_text(json.dumps({
        "memory": {str(pid): worker.points for pid, worker in found["memory"].items()},
        "idle": found["idle"], "pss_uss": {str(k): v for k, v in found["pss_uss"].items()},
        "samples": [[round(s.at, 3), s.kind, s.operation, s.status, round(s.seconds, 4), s.outcome]
                    for s in found["record"].samples]}))


def run(context) -> list[Row]:
    """bench/run.py's W10 and M1 step: ``context.info['w10_seconds']`` (default 600)."""
    seconds = float(context.info.get("w10_seconds") or 600)
    clients = int(context.info.get("w10_clients") or default_clients())
    found = measure(context.url, context.workdir, context.make_app, seconds, clients, context.seed,
                    log=lambda line: print(line, flush=True))
    report_details(found)
    keep_series(found, os.environ.get("W10_LOG_DIR"))
    return rows(found)
