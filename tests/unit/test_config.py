"""Configuration: development makes its own secrets under instance/, production refuses to start
unless it was given everything it needs (SECURITY.md: production refuses debug, weak secrets and
missing keys)."""

from __future__ import annotations

import base64
import json
import secrets
import stat
from pathlib import Path

import pytest
from flask import Flask

import config as config_module
from config import (ConfigurationError, DevelopmentConfig, ProductionConfig, TestingConfig,
                    config_from_environment)

GOOD_KEK = base64.b64encode(bytes(range(32))).decode()
PRODUCTION_ENVIRONMENT = {
    "SECRET_KEY": "Zk3q9-vT0pX_8mWcR2yLbN5sHdJ7eGu4aQiKoV1fE6",
    "DATABASE_URL": "postgresql+psycopg://nansen@db.internal/nansen",
    "NANSEN_KEK": GOOD_KEK,
    "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
}
ENVIRONMENT_NAMES = (*PRODUCTION_ENVIRONMENT, "NANSEN_KEK_FILE", "FLASK_DEBUG", "AUDIT_CHECKPOINT_DIR",
                     "TRUSTED_PROXY_COUNT", "NANSEN_ENV", "REPORT_QUERY_TIMEOUT_SECONDS")


@pytest.fixture
def environment(monkeypatch):
    """A process environment without any Nansen variable; tests set what they need."""
    for name in ENVIRONMENT_NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def production_environment(environment):
    for name, value in PRODUCTION_ENVIRONMENT.items():
        environment.setenv(name, value)
    return environment


def bare_app(config_class, instance_path: Path) -> Flask:
    """A plain Flask object configured like create_app does it, without any extension."""
    app = Flask("nansen_config_test", instance_path=str(instance_path))
    app.config.from_object(config_class)
    return app


def start(config_class, instance_path: Path) -> Flask:
    app = bare_app(config_class, instance_path)
    config_class.init_app(app)
    return app


# -- development ---------------------------------------------------------------------------------

def test_development_uses_sqlite_under_instance(environment, tmp_path):
    """Development keeps its database in instance/nansen.db."""
    app = start(DevelopmentConfig, tmp_path / "instance")
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'instance' / 'nansen.db'}"
    assert app.config["DEBUG"] is True
    assert app.config["SESSION_COOKIE_SECURE"] is False


def test_development_generates_secrets_on_first_run_and_keeps_them(environment, tmp_path):
    """The first run writes random secrets to instance/dev-secrets.json (owner-only); later runs
    reuse them, so sessions and encrypted values survive a restart."""
    first = start(DevelopmentConfig, tmp_path / "instance")
    stored_file = tmp_path / "instance" / "dev-secrets.json"
    stored = json.loads(stored_file.read_text())
    assert stat.S_IMODE(stored_file.stat().st_mode) == 0o600
    assert first.config["SECRET_KEY"] == stored["SECRET_KEY"]
    assert len(first.config["SECRET_KEY"]) >= config_module.MIN_SECRET_KEY_LENGTH
    assert len(base64.b64decode(first.config["NANSEN_KEK"])) == 32
    again = start(DevelopmentConfig, tmp_path / "instance")
    assert (again.config["SECRET_KEY"], again.config["NANSEN_KEK"]) == (stored["SECRET_KEY"], stored["NANSEN_KEK"])
    other = start(DevelopmentConfig, tmp_path / "elsewhere")
    assert other.config["SECRET_KEY"] != first.config["SECRET_KEY"]


def test_create_app_in_development_puts_everything_under_its_instance_folder(environment, tmp_path, monkeypatch):
    """Through the real factory, development needs no environment at all: its database, secrets
    and audit checkpoints all live in the instance folder."""
    from app import create_app

    instance = tmp_path / "instance"
    monkeypatch.setattr(Flask, "auto_find_instance_path", lambda self: str(instance))
    app = create_app(DevelopmentConfig)
    assert app.instance_path == str(instance)
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance / 'nansen.db'}"
    assert app.config["AUDIT_CHECKPOINT_DIR"] == str(instance / "audit-checkpoints")
    assert (instance / "dev-secrets.json").exists()
    with app.app_context():
        from app.extensions import db
        db.engine.dispose()


# -- production ------------------------------------------------------------------------------------

def test_production_reads_everything_from_the_environment(production_environment, tmp_path):
    """With every variable set, production starts and uses exactly what the environment says."""
    app = start(ProductionConfig, tmp_path)
    assert app.config["SECRET_KEY"] == PRODUCTION_ENVIRONMENT["SECRET_KEY"]
    assert app.config["SQLALCHEMY_DATABASE_URI"] == PRODUCTION_ENVIRONMENT["DATABASE_URL"]
    assert app.config["NANSEN_KEK"] == GOOD_KEK
    assert app.config["RATELIMIT_STORAGE_URI"] == PRODUCTION_ENVIRONMENT["RATELIMIT_STORAGE_URI"]
    assert app.config["DEBUG"] is False
    assert not (tmp_path / "dev-secrets.json").exists()


def test_production_cookies_are_secure_httponly_and_samesite():
    """Production session cookies are sent over HTTPS only, hidden from scripts, not cross-site."""
    assert ProductionConfig.SESSION_COOKIE_SECURE is True
    assert ProductionConfig.SESSION_COOKIE_HTTPONLY is True
    assert ProductionConfig.SESSION_COOKIE_SAMESITE in {"Lax", "Strict"}


@pytest.mark.parametrize("missing", sorted(PRODUCTION_ENVIRONMENT))
def test_production_refuses_to_start_without_a_required_variable(production_environment, tmp_path, missing):
    """Each required variable, when missing, stops the start with a message naming it."""
    production_environment.delenv(missing)
    with pytest.raises(ConfigurationError) as refused:
        start(ProductionConfig, tmp_path)
    assert f"{missing} is not set" in str(refused.value) or f"{missing} (or" in str(refused.value)


def test_production_names_every_missing_variable_at_once(environment, tmp_path):
    """An empty environment is refused with one message listing all four variables."""
    with pytest.raises(ConfigurationError) as refused:
        start(ProductionConfig, tmp_path)
    message = str(refused.value)
    for name in PRODUCTION_ENVIRONMENT:
        assert name in message


@pytest.mark.parametrize("weak", ["changeme", "short-secret", "dev", "a" * 64, "ab" * 32,
                                  "0123456789" * 4])
def test_production_refuses_a_weak_secret_key(production_environment, tmp_path, weak):
    """Short, placeholder and low-variety secret keys are refused."""
    production_environment.setenv("SECRET_KEY", weak)
    with pytest.raises(ConfigurationError, match="SECRET_KEY is too weak"):
        start(ProductionConfig, tmp_path)


def test_production_accepts_generated_secret_keys(production_environment, tmp_path):
    """The secrets the error message recommends are accepted (urlsafe and hex forms)."""
    for value in (secrets.token_urlsafe(48), secrets.token_hex(32)):
        production_environment.setenv("SECRET_KEY", value)
        assert start(ProductionConfig, tmp_path).config["SECRET_KEY"] == value


@pytest.mark.parametrize("kek", ["not base64!", base64.b64encode(b"\x00" * 16).decode()])
def test_production_refuses_a_malformed_key_encryption_key(production_environment, tmp_path, kek):
    """NANSEN_KEK must be base64 of exactly 32 bytes."""
    production_environment.setenv("NANSEN_KEK", kek)
    with pytest.raises(ConfigurationError, match="NANSEN_KEK is not base64 of exactly 32 bytes"):
        start(ProductionConfig, tmp_path)


def test_production_reads_the_key_encryption_key_from_a_file(production_environment, tmp_path):
    """NANSEN_KEK_FILE names a file (outside the database) holding the key."""
    key_file = tmp_path / "kek"
    key_file.write_text(GOOD_KEK + "\n")
    production_environment.delenv("NANSEN_KEK")
    production_environment.setenv("NANSEN_KEK_FILE", str(key_file))
    assert start(ProductionConfig, tmp_path).config["NANSEN_KEK"] == GOOD_KEK
    production_environment.setenv("NANSEN_KEK_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match="NANSEN_KEK_FILE cannot be read"):
        start(ProductionConfig, tmp_path)


def test_production_report_query_limit_defaults_and_reads_the_environment(production_environment, tmp_path):
    """Report queries are stopped after 60 s unless REPORT_QUERY_TIMEOUT_SECONDS says otherwise."""
    assert start(ProductionConfig, tmp_path).config["REPORT_QUERY_TIMEOUT_SECONDS"] == 60.0
    production_environment.setenv("REPORT_QUERY_TIMEOUT_SECONDS", "12.5")
    assert start(ProductionConfig, tmp_path).config["REPORT_QUERY_TIMEOUT_SECONDS"] == 12.5


@pytest.mark.parametrize("value", ["0", "-5", "soon", "inf", "nan"])
def test_production_refuses_a_report_query_limit_that_is_not_positive_seconds(production_environment, tmp_path,
                                                                             value):
    production_environment.setenv("REPORT_QUERY_TIMEOUT_SECONDS", value)
    with pytest.raises(ConfigurationError, match="REPORT_QUERY_TIMEOUT_SECONDS must be a number of seconds"):
        start(ProductionConfig, tmp_path)


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_production_refuses_flask_debug(production_environment, tmp_path, value):
    """FLASK_DEBUG (what `flask run --debug` sets) stops a production start."""
    production_environment.setenv("FLASK_DEBUG", value)
    with pytest.raises(ConfigurationError, match="debug mode is on"):
        start(ProductionConfig, tmp_path)


def test_production_refuses_debug_in_configuration(production_environment, tmp_path):
    """A production configuration with DEBUG switched on is refused too."""
    debugging = type("DebuggingProduction", (ProductionConfig,), {"DEBUG": True})
    with pytest.raises(ConfigurationError, match="debug mode is on"):
        start(debugging, tmp_path)


def test_the_factory_fails_closed_without_any_environment(environment):
    """With NANSEN_ENV unset the factory builds production, which refuses to start."""
    from app import create_app

    assert config_from_environment() is ProductionConfig
    with pytest.raises(ConfigurationError, match="refuses to start in production"):
        create_app()


def test_nansen_env_chooses_the_configuration(environment):
    """NANSEN_ENV names the configuration; an unknown name is an error, not a silent default."""
    environment.setenv("NANSEN_ENV", "Development")
    assert config_from_environment() is DevelopmentConfig
    environment.setenv("NANSEN_ENV", "testing")
    assert config_from_environment() is TestingConfig
    environment.setenv("NANSEN_ENV", "staging")
    with pytest.raises(ConfigurationError, match="NANSEN_ENV must be one of"):
        config_from_environment()


def test_importing_config_touches_neither_disk_nor_environment():
    """Secrets are resolved in init_app only: the classes carry no production secret."""
    assert ProductionConfig.SECRET_KEY is None
    assert ProductionConfig.NANSEN_KEK is None
    assert DevelopmentConfig.SECRET_KEY is None
