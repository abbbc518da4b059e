"""Home page per role, and the health check for load balancers."""

from flask import jsonify, render_template
from flask_login import current_user
from sqlalchemy import text

from app.auth.access import public, requires
from app.auth.permissions import Permission
from app.extensions import db
from app.main import bp


@bp.route("/")
@requires(Permission.ACCOUNT_SELF)
def index():
    return render_template(f"main/home_{current_user.role}.html")


@bp.route("/health")
@public
def health():
    """Liveness and database reachability; says nothing else about the deployment."""
    try:
        db.session.execute(text("SELECT 1"))
        return jsonify(status="ok")
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        db.session.rollback()
        return jsonify(status="unavailable"), 503
