"""Error pages: a short message, the request id, never a traceback. The same id is in the log."""

from __future__ import annotations

import logging
import traceback

from flask import Flask, g, render_template, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.exceptions import HTTPException, InternalServerError

MESSAGES = {
    400: (_l("Bad request"), _l("The request could not be understood. Check the form and try again.")),
    401: (_l("Sign in required"), _l("Please sign in to continue.")),
    403: (_l("Access denied"), _l("You do not have permission to open this page.")),
    404: (_l("Not found"), _l("The page you asked for does not exist, or you may not see it.")),
    405: (_l("Not allowed"), _l("This page cannot be used that way.")),
    409: (_l("Conflict"), _l("Someone else changed this record meanwhile. Nothing was overwritten.")),
    413: (_l("Too large"), _l("What you sent is larger than the system accepts.")),
    422: (_l("Check the form"), _l("Some fields need correcting.")),
    429: (_l("Too many attempts"), _l("Too many attempts. Wait a minute and try again.")),
    500: (_l("Something went wrong"), _l("The system could not complete the request. Nothing was saved. "
                                          "If it happens again, give the reference below to support.")),
}


def render_error(status: int):
    title, message = MESSAGES.get(status, MESSAGES[500])
    return render_template("errors/error.html", status=status, title=title, message=message,
                           request_id=g.get("request_id", "-")), status


def init_errors(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        # One line per refused request, so the reference on the error page can be found in the
        # log (the formatter adds the request id). Endpoint and method only: paths and query
        # strings can carry personal data.
        app.logger.log(logging.WARNING if exc.code in (403, 429) else logging.INFO,
                       "HTTP %s for %s %s", exc.code, request.method, request.endpoint or "-")
        if exc.code == 403:
            from app.auth.services import record_access_denied
            actor = current_user._get_current_object() if current_user.is_authenticated else None
            record_access_denied(acting_user=actor, endpoint=request.endpoint,
                                 reason=g.get("denial_reason", "forbidden"))
        elif exc.code == 429:
            from app.auth.services import record_throttled
            record_throttled()
        if exc.code == 405 or exc.code in MESSAGES:
            return render_error(exc.code)
        return render_error(exc.code if exc.code and exc.code < 500 else 500)

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception):
        # Exception type only: messages of database errors could quote values. The engine is
        # created with hide_parameters=True for the same reason.
        frames = "".join(traceback.format_tb(exc.__traceback__))
        app.logger.error("unhandled %s on %s\n%s", type(exc).__name__, request.endpoint, frames)
        from app.extensions import db
        db.session.rollback()
        return render_error(InternalServerError.code)
