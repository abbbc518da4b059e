"""Triage: versioned, explainable rules routing claims into procedure tracks; queues and deadlines."""

from flask import Blueprint

bp = Blueprint("triage", __name__, template_folder="templates")

from app.triage import queue_views, views  # noqa: E402,F401  (routes register on import)
