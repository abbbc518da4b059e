"""Deny by default: every endpoint declares who may call it, and one hook enforces it.

Views are marked with ``@requires(Permission.X)`` or ``@public`` (the short reviewed list:
login, second factor, health, static files). The ``before_request`` hook refuses any endpoint
that declares nothing, so forgetting a decorator locks a page instead of opening it. The
decorators only declare; enforcement lives here in one place.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, abort, g, redirect, request, url_for
from flask_login import current_user

from app.auth.permissions import Permission

PUBLIC = "public"
PERMISSION_ATTRIBUTE = "_nansen_permission"
# Flask's own static endpoint cannot carry a decorator; it is public by review.
PUBLIC_ENDPOINTS = frozenset({"static"})


def requires(*permissions: Permission) -> Callable:
    """Declare that a view needs every one of ``permissions``."""
    if not permissions:
        raise ValueError("requires() needs at least one permission; use @public for open pages")

    def mark(view):
        setattr(view, PERMISSION_ATTRIBUTE, frozenset(permissions))
        return view

    return mark


def public(view):
    """Declare that a view is open to anonymous visitors (keep this list short and reviewed)."""
    setattr(view, PERMISSION_ATTRIBUTE, PUBLIC)
    return view


def declared_permission(app: Flask, endpoint: str):
    """What an endpoint declares: a frozenset of permissions, PUBLIC, or None (nothing)."""
    if endpoint in PUBLIC_ENDPOINTS:
        return PUBLIC
    view = app.view_functions.get(endpoint)
    return getattr(view, PERMISSION_ATTRIBUTE, None)


def init_access_control(app: Flask) -> None:
    @app.before_request
    def enforce_declared_permission():
        if request.endpoint is None:  # no route matched: let the 404/405 handler answer
            return None
        declared = declared_permission(app, request.endpoint)
        if declared is None:
            app.logger.error("endpoint %s declares no permission: refused", request.endpoint)
            g.denial_reason = "undeclared endpoint"
            abort(403)
        if declared == PUBLIC:
            return None
        if not current_user.is_authenticated:
            if request.method == "GET":
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            abort(401)
        missing = [p for p in declared if not current_user.can(p)]
        if missing:
            g.denial_reason = "missing permission"
            abort(403)
        return None
