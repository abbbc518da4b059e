"""What a web worker loads at start (M1: one worker's memory): Alembic, through Flask-Migrate, is
set up only for the flask command and for the callers that migrate, never in a web worker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from app import create_app, enable_migrations
from config import TestingConfig

ROOT = Path(__file__).resolve().parents[2]


def config_for(tmp_path: Path) -> type[TestingConfig]:
    return type("StartupConfig", (TestingConfig,), {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}",
                                                     "AUDIT_CHECKPOINT_DIR": str(tmp_path / "checkpoints")})


def test_a_web_worker_does_not_load_alembic(tmp_path):
    """In a fresh interpreter, as gunicorn builds the app: nothing of Alembic is imported."""
    script = (
        "import sys\n"
        "from app import create_app\n"
        "from config import TestingConfig\n"
        f"config = type('C', (TestingConfig,), {{'SQLALCHEMY_DATABASE_URI': 'sqlite:///{tmp_path / 'w.db'}'}})\n"
        "app = create_app(config)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'alembic', 'flask_migrate', 'mako'}),"
        " 'db' in app.cli.commands)\n")
    found = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True,
                           env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert found.stdout.strip() == "[] False"


def test_the_flask_command_gets_the_db_commands(tmp_path, monkeypatch):
    monkeypatch.setenv("FLASK_RUN_FROM_CLI", "true")  # what the flask command sets before loading the app
    app = create_app(config_for(tmp_path))
    assert "migrate" in app.extensions
    assert {"upgrade", "downgrade", "current"} <= set(app.cli.commands["db"].commands)


def test_enable_migrations_sets_them_up_once(tmp_path, monkeypatch):
    monkeypatch.delenv("FLASK_RUN_FROM_CLI", raising=False)
    app = create_app(config_for(tmp_path))
    assert "migrate" not in app.extensions
    enable_migrations(app)
    first = app.extensions["migrate"]
    enable_migrations(app)
    assert app.extensions["migrate"] is first
    assert first.directory == str(ROOT / "migrations")
