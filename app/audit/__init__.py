"""Audit trail: append-only, hash-chained, encrypted events; signed checkpoints; verification
(`flask audit verify`); the viewer for auditors and supervisors.

Registering the blueprint also installs the after-request hook that writes a signed checkpoint
when one is due (app/audit/services.py, ``checkpoint_when_due``, explains the choice).
"""

from flask import Blueprint

bp = Blueprint("audit", __name__, template_folder="templates")


@bp.record_once
def _start_checkpoint_schedule(state):
    from app.audit.services import start_checkpoint_schedule

    start_checkpoint_schedule(state.app)


@bp.after_app_request
def _checkpoint_when_due(response):
    from app.audit.services import checkpoint_when_due

    checkpoint_when_due()
    return response


from app.audit import views  # noqa: E402,F401  (routes register on import)
