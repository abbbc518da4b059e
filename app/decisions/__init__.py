"""Decisions: interviews, decisions, four-eyes review, letters and appeals (issue: Decisions)."""

from flask import Blueprint

bp = Blueprint("decisions", __name__, template_folder="templates")

from app.decisions import views  # noqa: E402,F401  (routes register on import)
