"""End-to-end fixtures: the application served on a free local port, Debian's Chromium driven by
Playwright, and a per-step checkpoint (screenshot + axe-core accessibility scan).

The server is the real application (`create_app`) on its own migrated SQLite file, served by
werkzeug in a thread, with CSRF on and production-like pages. Only two things differ from a
deployment, both here and both said aloud:
- the login rate limits are raised, so a full run of journeys never meets a 429;
- the decision service's clock can be moved forward (``server_clock``): an interview can only be
  recorded once it has started, and a test cannot wait for it in real time.

Chromium: Debian's /usr/bin/chromium (scripts/ensure-chromium.sh installs it); no browser is ever
downloaded. Without it, the e2e tests are skipped on a developer machine and fail in CI.
axe-core: pinned in tests/e2e/vendor/package.json, installed with
``npm ci --prefix tests/e2e/vendor`` (node_modules stays out of git).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pyotp
import pytest

E2E_DIR = Path(__file__).resolve().parent
TESTS_DIR = E2E_DIR.parent
REPO_DIR = TESTS_DIR.parent
ARTIFACTS = REPO_DIR / "test-artifacts" / "e2e"
CHROMIUM = Path(os.environ.get("NANSEN_E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
AXE_JS = E2E_DIR / "vendor" / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.0/2.1/2.2 A and AA, plus axe's best practices (landmarks, heading order, ...).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
BLOCKING_IMPACTS = ("serious", "critical")
RECOGNITION_RATES_CSV = REPO_DIR / "data" / "recognition-rates-eu-2024.csv"
IN_CI = bool(os.environ.get("CI"))


def root_conftest(config):
    """tests/conftest.py, as pytest loaded it: its helpers (make_config, migrate_and_initialise)
    build the e2e database the way the rest of the suite builds its own. Taken from the plugin
    manager, never imported again: every conftest.py is the module "conftest" to pytest, and
    running that one twice would redo its import-time work (the per-worker database)."""
    wanted = (TESTS_DIR / "conftest.py").resolve()
    for plugin in config.pluginmanager.get_plugins():
        if Path(getattr(plugin, "__file__", None) or "/").resolve() == wanted:
            return plugin
    raise RuntimeError(f"{wanted} is not loaded: run the e2e tests from the repository root")


def pytest_configure(config):
    # Also registered in pytest.ini; repeated here so `--strict-markers` holds either way.
    config.addinivalue_line("markers", "e2e: end-to-end journeys in a real browser (Chromium + Playwright)")


def _unavailable(reason: str):
    """Skip on a developer machine; in CI a missing browser is a failure, never a silent skip."""
    if IN_CI:
        pytest.fail(f"{reason} (CI is set: the e2e tests must run here)", pytrace=False)
    pytest.skip(reason)


# -- the browser -----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def playwright_instance():
    if not (CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _unavailable("playwright is not installed: pip install -r requirements-dev.txt")
    # Generous waits: on a busy 2-core machine a page of the registration form takes seconds.
    expect.set_options(timeout=15_000)
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_instance):
    browser = playwright_instance.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def axe_source(playwright_instance) -> str:
    if not AXE_JS.exists():
        pytest.fail(f"{AXE_JS.relative_to(REPO_DIR)} is missing: npm ci --prefix tests/e2e/vendor", pytrace=False)
    return AXE_JS.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def artifacts(playwright_instance) -> Path:
    """test-artifacts/e2e/, emptied at the start of a run (screenshots, axe results, downloads);
    not under pytest-xdist, where another worker may be writing there already."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        shutil.rmtree(ARTIFACTS, ignore_errors=True)
    (ARTIFACTS / "axe").mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


# -- the application ---------------------------------------------------------------------------------

@dataclass
class Account:
    username: str
    password: str
    role: str
    totp_secret: str | None = None

    def totp_code(self) -> str:
        return pyotp.TOTP(self.totp_secret).now()


@dataclass
class LiveServer:
    url: str
    app: object
    accounts: dict[str, Account]
    state: dict = field(default_factory=dict)  # what one journey leaves for the next


class ServerClock:
    """Moves the decision service's clock forward, for the length of a ``with`` block. Only
    app.decisions.services reads it: sessions, audit times and everything else keep the real
    time, and so does every other test in the process (under pytest-xdist a worker runs other
    files too)."""

    def __init__(self):
        import app.decisions.services as decision_services
        from app.db_types import utcnow

        self._module = decision_services
        self._real = utcnow

    @contextmanager
    def advanced(self, delta: timedelta):
        real = self._real
        self._module.utcnow = lambda: real() + delta
        try:
            yield
        finally:
            self.reset()

    def reset(self) -> None:
        self._module.utcnow = self._real


@pytest.fixture
def server_clock():
    clock = ServerClock()
    yield clock
    clock.reset()


E2E_PASSWORD = "e2e journeys through a real browser"  # noqa: S105 - test accounts only


def _seed(application) -> dict[str, Account]:
    """The demo offices and accounts (supervisors and the administrator enrolled in TOTP), the EU
    recognition rates, and one person already registered, in the northern office so that the
    HQ queue holds only what the journeys register. The demo passwords are random: each account
    gets a known one here."""
    from sqlalchemy import select

    from app.auth.models import User
    from app.auth.passwords import hash_password
    from app.demo import DEMO_ACCOUNTS, create_demo_users
    from app.extensions import db
    from app.intake.services import register_claim
    from app.triage.services import import_recognition_rates

    with application.app_context():
        create_demo_users()
        users = {user.username: user for user in db.session.scalars(
            select(User).where(User.username.in_([account[0] for account in DEMO_ACCOUNTS])))}
        accounts = {}
        for username, _name, role, _office in DEMO_ACCOUNTS:
            users[username].password_hash = hash_password(E2E_PASSWORD)
            accounts[username] = Account(username, E2E_PASSWORD, str(role), users[username].totp_secret)
        db.session.commit()
        import_recognition_rates(RECOGNITION_RATES_CSV.read_bytes(), acting_user=users["supervisor"])
        register_claim(existing_claim(), acting_user=users["registrar.north"])
        db.session.remove()
    return accounts


def existing_claim() -> dict:
    """Mohammed Al-Hassan, born 1990-03-05, Syrian: registered a few weeks ago."""
    made = date.today() - timedelta(days=40)
    return {
        "made_on": made.isoformat(), "registered_on": (made + timedelta(days=2)).isoformat(),
        "lodged_on": (made + timedelta(days=2)).isoformat(),
        "persons": [{"principal": True, "identity": {"family_name": "Al-Hassan", "given_names": "Mohammed"},
                     "birth": {"date_of_birth": "1990-03-05", "sex": "M"},
                     "nationality": {"nationalities": ["SYR"]}}],
    }


@pytest.fixture(scope="session")
def live_server(request, tmp_path_factory, playwright_instance) -> LiveServer:
    """The application on 127.0.0.1:<free port>, in a thread, on its own migrated database.

    Always SQLite, even when TEST_DATABASE_URL points the rest of the suite at PostgreSQL: the
    journeys keep their data for the whole session, and the PostgreSQL fixtures truncate the
    shared database after each test, so sharing it would make both sides flaky. (Depends on
    playwright_instance so nothing is built when the tests are skipped.)
    """
    from werkzeug.serving import WSGIRequestHandler, make_server

    from app import create_app
    from app.extensions import db, limiter

    helpers = root_conftest(request.config)
    base = tmp_path_factory.mktemp("e2e")
    # Raised login limits: a run signs in a handful of times per account within a minute.
    config = helpers.make_config(f"sqlite:///{base / 'e2e.db'}", base, LOGIN_LIMIT_PER_ACCOUNT="1000 per minute",
                                 LOGIN_LIMIT_PER_ADDRESS="1000 per minute")
    application = create_app(config)
    helpers.migrate_and_initialise(application)
    with application.app_context():
        limiter.reset()
    accounts = _seed(application)

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args, **kwargs):  # errors are still logged
            pass

    server = make_server("127.0.0.1", 0, application, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="nansen-e2e-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", application, accounts)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        with application.app_context():
            db.session.remove()
            db.engine.dispose()


# -- checkpoints: a screenshot and an accessibility scan per step ----------------------------------

AXE_RUN = """
;(async () => {
  const results = await axe.run(document, {
    runOnly: {type: "tag", values: %s},
    resultTypes: ["violations"],
  });
  return results.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map(n => ({target: n.target.join(" "), html: n.html.slice(0, 300),
                              summary: n.failureSummary})),
  }));
})()
"""


@dataclass
class Finding:
    step: str
    url: str
    rule: str
    impact: str
    help: str
    targets: list[str]


class Checkpoints:
    """``check(page, "step name")``: a full-page screenshot in test-artifacts/e2e/ and an axe-core
    scan of the page as it stands. axe runs through ``page.evaluate``: DevTools evaluation is not
    subject to the page's Content-Security-Policy, so the application keeps its real CSP (no
    inline script) during the whole journey and a CSP regression still breaks the test, where
    ``bypass_csp=True`` would have hidden it. Findings are collected so a journey runs to its end;
    ``assert_accessible()`` fails on any serious or critical one."""

    def __init__(self, name: str, artifacts: Path, axe_source: str, scanned_once: set[str]):
        self.name = name
        self.scanned_once = scanned_once
        self.artifacts = artifacts
        self.script = axe_source + AXE_RUN % json.dumps(AXE_TAGS)
        self.count = 0
        self.findings: list[Finding] = []
        self.pages: list[str] = []

    def __call__(self, page, step: str, *, scan: bool = True, once: str | None = None,
                 full_page: bool = True) -> None:
        """``once``: a key for pages that look the same every time (the sign-in page): scanned
        the first time in the run only (each scan of a page costs up to a few seconds).
        ``full_page=False``: the visible part only (for the longest pages, shown whole elsewhere)."""
        self.count += 1
        slug = f"{self.name}-{self.count:02d}-{re.sub(r'[^a-z0-9]+', '-', step.lower()).strip('-')}"
        page.wait_for_load_state("load")
        # JPEG: a full-page PNG of the registration form (two people, ~10 000 px) takes seconds.
        page.screenshot(path=str(self.artifacts / f"{slug}.jpg"), full_page=full_page, type="jpeg", quality=80)
        if not scan or (once is not None and once in self.scanned_once):
            return
        if once is not None:
            self.scanned_once.add(once)
        violations = page.evaluate(self.script)
        (self.artifacts / "axe" / f"{slug}.json").write_text(
            json.dumps({"url": page.url, "step": step, "violations": violations}, indent=2, ensure_ascii=False))
        self.pages.append(f"{step} ({page.url})")
        for v in violations:
            self.findings.append(Finding(step, page.url, v["id"], v["impact"] or "unknown", v["help"],
                                         [n["target"] for n in v["nodes"]]))

    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.impact in BLOCKING_IMPACTS]

    def assert_accessible(self) -> None:
        problems = self.blocking()
        assert not problems, "serious or critical accessibility violations:\n" + "\n".join(
            f"- [{f.impact}] {f.rule} on '{f.step}' ({f.url}): {f.help}; {', '.join(f.targets[:5])}"
            for f in problems)


@pytest.fixture(scope="session")
def scanned_once() -> set[str]:
    return set()


@pytest.fixture
def checkpoint(request, artifacts, axe_source, scanned_once) -> Checkpoints:
    """Artefacts are named <module>-<first words of the test>-<nn>-<step>."""
    module = request.module.__name__.rpartition(".")[2].removeprefix("test_")
    words = request.node.name.removeprefix("test_").split("_")
    return Checkpoints("-".join([module, *words[:5]]), artifacts, axe_source, scanned_once)


# -- people at their browsers ---------------------------------------------------------------------

class People:
    """One browser context (its own cookies: its own session) per account, opened on first use
    and kept for the module, so a person stays signed in from one journey to the next like at
    their desk (a TOTP code works only once: signing in twice within 30 seconds would fail)."""

    def __init__(self, browser, server: LiveServer):
        self.browser = browser
        self.server = server
        self.pages: dict[str, object] = {}
        self.contexts = []

    def page_of(self, username: str, *, locale: str = "en-GB"):
        """(page, new): the page of ``username``; ``new`` when it was just opened (not signed in
        yet: the journey signs in through the form)."""
        if username in self.pages:
            return self.pages[username], False
        context = self.browser.new_context(base_url=self.server.url, locale=locale, accept_downloads=True,
                                           viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        self.contexts.append(context)
        page = context.new_page()
        self.pages[username] = page
        return page, True

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        self.contexts.clear()
        self.pages.clear()


@pytest.fixture(scope="module")
def people(browser, live_server):
    crowd = People(browser, live_server)
    yield crowd
    crowd.close()
