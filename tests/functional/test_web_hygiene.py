"""Web hygiene: CSRF on every POST, security headers on every response, the request size limit,
and error pages that show a reference (the request id, also in the log) but never a traceback."""

from __future__ import annotations

import logging
import re

import pytest
from sqlalchemy import func, select

from app.auth.access import public
from app.auth.models import Office, User, WebSession
from app.extensions import db
from conftest import STRONG_PASSWORD, Browser

REFERENCE_PATTERN = re.compile(r"<code>([0-9a-f]{16})</code>")


def post_routes(app) -> list[str]:
    """Every URL rule that accepts POST, with placeholder ids."""
    rules = []
    for rule in app.url_map.iter_rules():
        if "POST" in rule.methods:
            path = rule.rule.replace("<int:user_id>", "1")
            path = re.sub(r"<any\(([^,)]+)[^>]*>", lambda m: m.group(1).strip("'"), path)
            path = re.sub(r"<[^>]+>", "1", path)
            rules.append(path)
    return sorted(rules)


def count(model) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model))


def test_every_post_without_a_token_is_refused(app, signed_in):
    """Every POST route, for an anonymous visitor and for a signed-in administrator, answers 400
    without a CSRF token (with a wrong one too), before any other check."""
    admin, _user = signed_in("admin")
    anonymous = app.test_client()
    refused = []
    for path in post_routes(app):
        for client in (anonymous, admin.client):
            for data in ({}, {"csrf_token": "forged"}):
                response = client.post(path, data=data)
                if response.status_code != 400:
                    refused.append((path, data, response.status_code))
    assert len(post_routes(app)) >= 10
    assert refused == []


def test_a_post_without_a_token_changes_nothing(app, signed_in, make_user):
    """Without a token: no account created, no office created, no deactivation, no new password,
    no language saved, no sign-out."""
    admin, admin_user = signed_in("admin")
    target = make_user("caseworker")
    users, offices, sessions = count(User), count(Office), count(WebSession)
    before = (target.password_hash, target.role, target.active)
    posts = [
        ("/admin/users/new", {"username": "intruder.x", "full_name": "X", "role": "admin",
                              "office_id": str(target.office_id), "password": "velvet ocean drum parade"}),
        ("/admin/offices", {"code": "EVIL", "name": "Evil office"}),
        (f"/admin/users/{target.id}/deactivate", {}),
        (f"/admin/users/{target.id}", {"role": "admin", "office_id": str(target.office_id)}),
        ("/auth/password", {"current_password": STRONG_PASSWORD, "new_password": "velvet ocean drum parade",
                            "confirm_password": "velvet ocean drum parade"}),
        ("/auth/language", {"locale": "ar"}),
        ("/auth/logout", {}),
    ]
    for path, data in posts:
        assert admin.client.post(path, data=data).status_code == 400, path
    db.session.refresh(target)
    db.session.refresh(admin_user)
    assert (count(User), count(Office), count(WebSession)) == (users, offices, sessions)
    assert (target.password_hash, target.role, target.active) == before
    assert admin_user.locale is None
    assert admin.get("/auth/account").status_code == 200


def test_posts_behind_a_tls_proxy_need_no_referer(app_factory):
    """Behind the production TLS proxy, browsers send no Referer (Referrer-Policy: no-referrer):
    a sign-in with a valid token is answered on its merits (401 for a wrong password), not
    refused as a CSRF failure; without the token it is still refused."""
    app = app_factory(TRUSTED_PROXY_COUNT=1)
    with app.app_context():
        client = app.test_client()
        https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}
        page = client.get("/auth/login", headers=https)
        assert page.status_code == 200
        token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page.get_data(as_text=True)).group(1)
        form = {"username": "nobody.here", "password": "wrong password, long enough"}
        assert client.post("/auth/login", data={**form, "csrf_token": token}, headers=https).status_code == 401
        assert client.post("/auth/login", data=form, headers=https).status_code == 400


def test_security_headers_on_every_kind_of_response(app, signed_in):
    """Pages, redirects, error pages and static files all carry the security headers; the CSP
    allows no inline script or style and no framing."""
    browser, _user = signed_in("caseworker")
    anonymous = app.test_client()
    responses = {
        "page": browser.get("/"), "login": anonymous.get("/auth/login"), "redirect": anonymous.get("/"),
        "404": browser.get("/no/such/page"), "403": browser.get("/admin/users"),
        "static": anonymous.get("/static/css/nansen.css"), "health": anonymous.get("/health"),
    }
    for name, response in responses.items():
        headers = response.headers
        csp = headers["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, name
        assert directives["frame-ancestors"] == "'none'", name
        assert directives["base-uri"] == "'none'", name
        assert directives["script-src"] == "'self'", name
        assert directives["object-src"] == "'none'", name
        assert headers["Strict-Transport-Security"].startswith("max-age=") and \
            int(headers["Strict-Transport-Security"].split("=")[1].split(";")[0]) >= 31_536_000, name
        assert headers["X-Content-Type-Options"] == "nosniff", name
        assert headers["Referrer-Policy"] == "no-referrer", name
        assert headers["X-Frame-Options"] == "DENY", name
        assert re.fullmatch(r"[0-9a-f]{16}", headers["X-Request-Id"]), name


def test_authenticated_pages_are_not_cached(app, signed_in):
    """Every page a signed-in user sees is Cache-Control: no-store."""
    browser, _user = signed_in("admin")
    for path in ("/", "/auth/account", "/auth/password", "/admin/users", "/admin/offices", "/admin/users/new",
                 "/no/such/page"):
        assert browser.get(path).headers["Cache-Control"] == "no-store", path


def test_templates_use_no_inline_script_or_style(app, signed_in):
    """The CSP forbids inline code, so no page may rely on it."""
    browser, _user = signed_in("admin")
    for path in ("/", "/auth/account", "/admin/users", "/admin/offices", "/auth/login"):
        page = browser.get(path).get_data(as_text=True)
        assert "<script" not in page and "<style" not in page and " style=" not in page, path
        assert " onclick=" not in page and "javascript:" not in page, path


def test_request_larger_than_the_limit_gets_the_413_page(app_factory, caplog):
    """A body over MAX_CONTENT_LENGTH is refused with the 413 page (and nothing is read)."""
    app = app_factory(MAX_CONTENT_LENGTH=2048)
    with app.app_context():
        client = app.test_client()
        response = client.post("/auth/login", data={"username": "x" * 4096, "password": "y"})
        assert response.status_code == 413
        assert "Too large" in response.get_data(as_text=True)
        assert_reference_matches(response, caplog)


def assert_reference_matches(response, caplog) -> None:
    """The reference on the page is the X-Request-Id header and appears on a log line."""
    page = response.get_data(as_text=True)
    assert "Traceback" not in page and 'File "' not in page
    shown = REFERENCE_PATTERN.search(page)
    assert shown, page[:300]
    assert shown.group(1) == response.headers["X-Request-Id"]
    assert shown.group(1) in [getattr(r, "request_id", None) for r in caplog.records]


def test_error_pages_show_the_request_id_that_the_log_carries(app_factory, caplog):
    """The 400, 403, 404 and 429 pages show a reference equal to X-Request-Id and to the request
    id of a log line; none shows a traceback."""
    app = app_factory(LOGIN_LIMIT_PER_ADDRESS="1 per minute")
    caplog.set_level(logging.INFO)
    with app.app_context():
        office = Office(code="HQ", name="Headquarters")
        db.session.add(office)
        db.session.flush()
        from app.auth.passwords import hash_password
        user = User(username="case.worker", full_name="Case Worker", role="caseworker", office_id=office.id,
                    password_hash=hash_password(STRONG_PASSWORD), active=True)
        db.session.add(user)
        db.session.commit()
        browser = Browser(app.test_client())
        browser.login(user)
        cases = {
            400: browser.client.post("/auth/password", data={}),
            403: browser.get("/admin/users"),
            404: browser.get("/no/such/page"),
        }
        anonymous = Browser(app.test_client())
        anonymous.post("/auth/login", {"username": "a", "password": "b"})
        cases[429] = anonymous.post("/auth/login", {"username": "a", "password": "b"})
        for status, response in cases.items():
            assert response.status_code == status
            assert f"(error {status})" in response.get_data(as_text=True)
            assert_reference_matches(response, caplog)
        references = {r.headers["X-Request-Id"] for r in cases.values()}
        assert len(references) == len(cases)


def test_an_unexpected_exception_gives_the_500_page(app_factory, caplog):
    """A view that raises gives the 500 page with a reference and nothing of the exception; the
    log line has the same request id and the exception type, not its message."""
    app = app_factory()

    @public
    def explode():
        raise RuntimeError(f"secret detail {4700 + 11} that must not leak")

    app.add_url_rule("/explode", "explode", explode)
    with app.app_context():
        response = app.test_client().get("/explode")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "Something went wrong" in page and "(error 500)" in page
    assert "4711" not in page and "RuntimeError" not in page
    assert_reference_matches(response, caplog)
    line = next(r for r in caplog.records if getattr(r, "request_id", None) == response.headers["X-Request-Id"]
                and r.levelno == logging.ERROR)
    assert "RuntimeError" in line.getMessage()
    assert "4711" not in line.getMessage()


def test_an_unexpected_exception_saves_nothing(app_factory):
    """A view that fails after changing the session's objects leaves the database unchanged."""
    app = app_factory()

    @public
    def half_done():
        db.session.add(Office(code="HALF", name="Half-saved office"))
        db.session.flush()
        raise RuntimeError("boom")

    app.add_url_rule("/half-done", "half_done", half_done)
    with app.app_context():
        assert app.test_client().get("/half-done").status_code == 500
        db.session.rollback()
        assert db.session.scalar(select(Office).where(Office.code == "HALF")) is None


@pytest.mark.parametrize("path", ["/auth/login?next=%0d%0aSet-Cookie:x=1", "/auth/login?next=javascript:alert(1)"])
def test_odd_query_strings_do_not_break_pages(browser, path):
    """Strange `next` values are carried as data, never as headers or script."""
    response = browser.get(path)
    assert response.status_code == 200
    assert "Set-Cookie" not in {k for k, v in response.headers.items() if v == "x=1"}
