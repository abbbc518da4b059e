"""Request plumbing shared by every page: request ids, the client address from the trusted
proxy only, security headers, and log lines that carry the request id (never personal data)."""

from __future__ import annotations

import logging
import secrets

from flask import Flask, g, request
from flask_login import current_user
from werkzeug.middleware.proxy_fix import ProxyFix

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every log record so a log line can be matched to an error page."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            record.request_id = g.get("request_id", "-")
        except RuntimeError:  # outside a request or app context
            record.request_id = "-"
        return True


def current_request_id() -> str | None:
    try:
        return g.get("request_id")
    except RuntimeError:
        return None


def current_client_address() -> str | None:
    """The client's address as seen through ProxyFix, which only trusts TRUSTED_PROXY_COUNT hops."""
    try:
        return request.remote_addr
    except RuntimeError:
        return None


def init_web(app: Flask) -> None:
    proxies = int(app.config.get("TRUSTED_PROXY_COUNT") or 0)
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"))
    handler.addFilter(RequestIdFilter())
    app.logger.handlers[:] = [handler]
    # On the logger too, so every record of it carries the id, whichever handler receives it.
    app.logger.filters[:] = [RequestIdFilter()]
    app.logger.setLevel(logging.INFO)

    def start_request():
        # An id from our own proxy is kept only when proxies are trusted; otherwise ours.
        incoming = request.headers.get("X-Request-Id", "") if proxies else ""
        g.request_id = incoming if incoming.isalnum() and len(incoming) <= 64 else secrets.token_hex(8)

    # First of all before_request hooks: the CSRF check and the rate limiter (registered by their
    # extensions earlier) may refuse the request, and their error pages need the request id too.
    app.before_request_funcs.setdefault(None, []).insert(0, start_request)

    @app.after_request
    def security_headers(response):
        headers = response.headers
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "no-referrer"
        headers["X-Frame-Options"] = "DENY"
        headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if g.get("request_id"):
            headers["X-Request-Id"] = g.request_id
        if request.endpoint != "static" and (current_user.is_authenticated or response.mimetype != "text/css"):
            # Pages with personal data must not be kept by browsers or shared caches.
            headers["Cache-Control"] = "no-store"
            headers["Pragma"] = "no-cache"
        return response
