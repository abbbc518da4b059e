"""Reports: read-only queries, charts, PDF and CSV exports (issue: Supervisor reports)."""

from flask import Blueprint

bp = Blueprint("reports", __name__, template_folder="templates")

from app.reports import views  # noqa: E402,F401  (routes register on import)
