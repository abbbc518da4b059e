"""Administration: user accounts (create, deactivate, re-role). Settings join it with triage."""

from flask import Blueprint

bp = Blueprint("admin", __name__, template_folder="templates")

from app.admin import views  # noqa: E402,F401
