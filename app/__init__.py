"""Nansen application factory: reads like a table of contents."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask


def create_app(config_class=None) -> Flask:
    """Build a Nansen application. ``config_class`` defaults to the one NANSEN_ENV names
    (production when unset, which refuses to start without its secrets)."""
    from config import config_from_environment

    app = Flask(__name__, instance_relative_config=True)
    config_class = config_class or config_from_environment()
    app.config.from_object(config_class)
    config_class.init_app(app)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        **app.config["SQLALCHEMY_ENGINE_OPTIONS"], "hide_parameters": True}

    _init_extensions(app)
    _init_request_handling(app)
    _register_blueprints(app)
    _register_cli(app)
    return app


def enable_migrations(app: Flask) -> None:
    """Set up Flask-Migrate (Alembic) on ``app``: the ``flask db`` commands, and flask_migrate's
    upgrade() and downgrade() for the callers that migrate (the test suite, the bench). The flask
    command gets it from create_app. Web workers never migrate (it is a deployment step), and
    loading Alembic would cost each of them 8.6 MB of resident memory (M1), so they go without."""
    if "migrate" in app.extensions:
        return
    from flask_migrate import Migrate

    from app.extensions import db

    Migrate(app, db, directory=str(Path(app.root_path).parent / "migrations"), render_as_batch=True,
            compare_type=True)


def _init_extensions(app: Flask) -> None:
    from app.auth.sessions import ServerSideSessionInterface
    from app.database import init_database
    from app.extensions import babel, csrf, db, limiter, login_manager
    from app.i18n import select_locale

    _import_models()
    db.init_app(app)
    init_database(app)
    if os.environ.get("FLASK_RUN_FROM_CLI") == "true":  # set by the flask command (flask db upgrade)
        enable_migrations(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    app.config.setdefault("RATELIMIT_ENABLED", True)
    limiter.init_app(app)
    login_manager.init_app(app)
    app.session_interface = ServerSideSessionInterface()


def _import_models() -> None:
    """Every table must be known to the metadata (migrations compare against it)."""
    import app.audit.models  # noqa: F401
    import app.auth.models  # noqa: F401
    import app.crypto  # noqa: F401
    import app.decisions.models  # noqa: F401
    import app.intake.models  # noqa: F401
    import app.triage.models  # noqa: F401


def _init_request_handling(app: Flask) -> None:
    from app.auth.access import init_access_control
    from app.errors import init_errors
    from app.i18n import init_i18n
    from app.navigation import init_navigation
    from app.web import init_web

    init_web(app)
    init_access_control(app)
    init_errors(app)
    init_i18n(app)
    init_navigation(app)


def _register_blueprints(app: Flask) -> None:
    from app.admin import bp as admin_bp
    from app.audit import bp as audit_bp
    from app.auth import bp as auth_bp
    from app.decisions import bp as decisions_bp
    from app.intake import bp as intake_bp
    from app.reports import bp as reports_bp
    from app.triage import bp as triage_bp
    from app.main import bp as main_bp

    app.register_blueprint(main_bp)
    app.register_blueprint(auth_bp, url_prefix="/auth")
    app.register_blueprint(admin_bp, url_prefix="/admin")
    app.register_blueprint(audit_bp, url_prefix="/audit")
    app.register_blueprint(intake_bp, url_prefix="/cases")
    app.register_blueprint(decisions_bp, url_prefix="/decisions")
    app.register_blueprint(triage_bp, url_prefix="/triage")
    app.register_blueprint(reports_bp, url_prefix="/reports")


def _register_cli(app: Flask) -> None:
    from app.audit.cli import audit_cli
    from app.auth.cli import users_cli
    from app.cli import crypto_cli, demo_cli
    from app.intake.cli import intake_cli
    from app.triage.cli import triage_cli

    app.cli.add_command(users_cli)
    app.cli.add_command(crypto_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(audit_cli)
    app.cli.add_command(intake_cli)
    app.cli.add_command(triage_cli)
