"""Intake: registration of claims, people, documents and the duplicate check."""

from flask import Blueprint

bp = Blueprint("intake", __name__, template_folder="templates")

from app.intake import views  # noqa: E402,F401  (routes register on import)
