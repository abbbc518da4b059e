"""Nansen configuration classes.

Each class is read by ``create_app(config_class=...)``. Nothing here touches the disk or the
environment at import time: secrets are resolved in ``init_app`` when an application is built,
so importing this module is always safe (tests, CLI, gunicorn).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent

# A SECRET_KEY shorter than this (or one of these well-known placeholders) is refused in production.
MIN_SECRET_KEY_LENGTH = 32
KNOWN_WEAK_SECRETS = {"dev", "secret", "changeme", "change-me", "development", "test", "nansen"}
# A generated key of that length (token_urlsafe, token_hex) shows far more distinct characters;
# fewer means a typed or patterned value.
MIN_SECRET_KEY_DISTINCT_CHARACTERS = 8


class ConfigurationError(RuntimeError):
    """Raised when the application must not start with the configuration it was given."""


class Config:
    """Settings shared by every environment. Values that differ per deployment come from the
    environment in ProductionConfig."""

    ENVIRONMENT = "base"
    DEBUG = False
    TESTING = False
    SECRET_KEY: str | None = None
    SQLALCHEMY_DATABASE_URI: str | None = None
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}

    # Server-side sessions (app/auth/sessions.py): the cookie only carries a random token.
    SESSION_COOKIE_NAME = "nansen_session"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SECURE = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_IDLE_TIMEOUT = timedelta(minutes=15)
    SESSION_ABSOLUTE_TIMEOUT = timedelta(hours=10)
    # last_seen is written at most this often, so a page view does not always cost a write.
    SESSION_TOUCH_INTERVAL = timedelta(seconds=60)

    # The form size a registration needs is a few kilobytes; uploads get their own limit later.
    MAX_CONTENT_LENGTH = 16 * 1024 * 1024
    WTF_CSRF_ENABLED = True
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the (server-side) session
    # Flask-WTF's strict check wants a same-origin Referer on every HTTPS post, but SECURITY.md
    # sets Referrer-Policy: no-referrer, so browsers send none: behind TLS every form, sign-in
    # included, would be refused. The token check stays, and the SameSite=Lax session cookie
    # is not sent on cross-site posts at all.
    WTF_CSRF_SSL_STRICT = False

    # Flask-Limiter. Memory storage is per process: fine for one development server only.
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_HEADERS_ENABLED = False

    # Dashboard figures kept for a few minutes (app/reports/figures.py): at a million cases they
    # take seconds to compute. Memory is per process; production keeps them in Redis.
    REPORT_FIGURES_STORE = "memory://"
    REPORT_FIGURES_MAX_AGE = 300
    # Every report query is stopped after this long (app/reports/queries.py, read_only_snapshot):
    # the largest office's dashboard takes about 5 s at a million cases; a query the planner got
    # wrong must not hold a core for hours.
    REPORT_QUERY_TIMEOUT_SECONDS = 60.0
    LOGIN_LIMIT_PER_ACCOUNT = "5 per minute;20 per hour"
    LOGIN_LIMIT_PER_ADDRESS = "20 per minute;200 per hour"

    # Argon2id parameters. None means argon2-cffi's defaults (RFC 9106 low-memory profile).
    ARGON2_TIME_COST: int | None = None
    ARGON2_MEMORY_COST: int | None = None
    ARGON2_PARALLELISM: int | None = None
    PASSWORD_MIN_LENGTH = 15
    PASSWORD_MAX_LENGTH = 128
    # Roles that must use a second factor.
    MFA_REQUIRED_ROLES = ("supervisor", "admin")
    TOTP_ISSUER = "Nansen"

    LANGUAGES = {"en": "English", "fr": "Français", "es": "Español", "ar": "العربية"}
    RTL_LANGUAGES = ("ar",)
    BABEL_DEFAULT_LOCALE = "en"
    BABEL_DEFAULT_TIMEZONE = "UTC"

    # Number of reverse proxies in front of the app whose X-Forwarded-For we trust (0: none).
    TRUSTED_PROXY_COUNT = 0
    # Key-encryption key (base64 of 32 bytes) that wraps the data keys kept in the database.
    NANSEN_KEK: str | None = None
    AUDIT_CHECKPOINT_DIR: str | None = None
    # A signed checkpoint of the audit chain is written after a request once the last one is
    # older than this (and events were added since); None or 0 turns the in-app trigger off
    # (then schedule `flask audit checkpoint --if-due`). See docs/operations.md.
    AUDIT_CHECKPOINT_INTERVAL: timedelta | None = timedelta(minutes=5)
    # The shipped triage ruleset (app/triage/rulesets/<name>.yaml) this deployment starts with:
    # eu-apr-2026 (EU Pact) or unhcr-dcp (states outside the EU). Stored and activated on first
    # use; after that the active ruleset is changed with `flask triage activate` (docs/triage.md).
    TRIAGE_RULESET = "eu-apr-2026"

    @classmethod
    def init_app(cls, app) -> None:
        """Resolve settings that need the filesystem or environment; called by create_app."""


def _instance_secrets(instance_path: str) -> dict:
    """Development secrets live in instance/dev-secrets.json, created on first run (never
    committed: instance/ is ignored by git)."""
    path = Path(instance_path) / "dev-secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    generated = {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "NANSEN_KEK": base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(generated, handle)
    return generated


class DevelopmentConfig(Config):
    """A single developer's machine: SQLite under instance/, generated secrets, plain HTTP."""

    ENVIRONMENT = "development"
    DEBUG = True
    SESSION_COOKIE_SECURE = False  # served on http://127.0.0.1:5000

    @classmethod
    def init_app(cls, app) -> None:
        stored = _instance_secrets(app.instance_path)
        app.config.setdefault("SECRET_KEY", None)
        app.config["SECRET_KEY"] = app.config["SECRET_KEY"] or stored["SECRET_KEY"]
        app.config["NANSEN_KEK"] = app.config.get("NANSEN_KEK") or stored["NANSEN_KEK"]
        if not app.config.get("SQLALCHEMY_DATABASE_URI"):
            app.config["SQLALCHEMY_DATABASE_URI"] = os.environ.get(
                "DATABASE_URL", f"sqlite:///{Path(app.instance_path) / 'nansen.db'}"
            )
        if not app.config.get("AUDIT_CHECKPOINT_DIR"):
            app.config["AUDIT_CHECKPOINT_DIR"] = str(Path(app.instance_path) / "audit-checkpoints")


class TestingConfig(Config):
    """The test suite: the database URL comes from the fixture; fast (weak) Argon2 parameters so
    hundreds of logins stay quick; the production parameters are tested separately."""

    ENVIRONMENT = "testing"
    TESTING = True
    SECRET_KEY = "testing-secret-key-that-is-long-enough-0123456789"  # noqa: S105 - tests only
    NANSEN_KEK = base64.b64encode(b"\x01" * 32).decode()
    SESSION_COOKIE_SECURE = False
    ARGON2_TIME_COST = 1
    ARGON2_MEMORY_COST = 1024
    ARGON2_PARALLELISM = 1
    SERVER_NAME = None
    # Tests change the data between two looks at the dashboard: figures are never kept, except
    # in the tests of keeping them (tests/integration/test_report_figures.py).
    REPORT_FIGURES_MAX_AGE = 0


def _require_env(name: str, problems: list[str], hint: str) -> str | None:
    value = os.environ.get(name)
    if not value:
        problems.append(f"{name} is not set: {hint}")
    return value


class ProductionConfig(Config):
    """A real deployment: everything secret comes from the environment, and the application
    refuses to start when something is missing or unsafe, saying what to set."""

    ENVIRONMENT = "production"

    @classmethod
    def init_app(cls, app) -> None:
        problems: list[str] = []
        secret = _require_env("SECRET_KEY", problems, "set it to at least 32 random characters "
                              "(python -c 'import secrets; print(secrets.token_urlsafe(48))')")
        if secret and _is_weak_secret(secret):
            problems.append(f"SECRET_KEY is too weak: use at least {MIN_SECRET_KEY_LENGTH} random characters")
        database_url = _require_env("DATABASE_URL", problems,
                                    "e.g. postgresql+psycopg://nansen@db-host/nansen")
        kek = os.environ.get("NANSEN_KEK")
        kek_file = os.environ.get("NANSEN_KEK_FILE")
        if kek_file and not kek:
            try:
                kek = Path(kek_file).read_text().strip()
            except OSError:
                problems.append("NANSEN_KEK_FILE cannot be read: check the path and its permissions")
        if not kek:
            problems.append("NANSEN_KEK (or NANSEN_KEK_FILE) is not set: the key-encryption key, "
                            "base64 of 32 random bytes (flask crypto generate-kek prints one)")
        elif not _is_valid_kek(kek):
            problems.append("NANSEN_KEK is not base64 of exactly 32 bytes")
        ratelimit = _require_env("RATELIMIT_STORAGE_URI", problems,
                                 "shared limiter storage so limits hold across workers, "
                                 "e.g. redis://127.0.0.1:6379/0")
        if app.debug or os.environ.get("FLASK_DEBUG", "").lower() in {"1", "true", "yes"}:
            problems.append("debug mode is on: unset FLASK_DEBUG; never run production in debug")
        checkpoint_dir = os.environ.get("AUDIT_CHECKPOINT_DIR")
        report_timeout = _positive_seconds(os.environ.get("REPORT_QUERY_TIMEOUT_SECONDS"),
                                           cls.REPORT_QUERY_TIMEOUT_SECONDS)
        if report_timeout is None:
            problems.append("REPORT_QUERY_TIMEOUT_SECONDS must be a number of seconds above 0, e.g. 60")
        if problems:
            raise ConfigurationError("Nansen refuses to start in production:\n- " + "\n- ".join(problems))
        app.config.update(
            SECRET_KEY=secret,
            SQLALCHEMY_DATABASE_URI=database_url,
            NANSEN_KEK=kek,
            RATELIMIT_STORAGE_URI=ratelimit,
            REPORT_FIGURES_STORE=os.environ.get("REPORT_FIGURES_STORE") or ratelimit,
            AUDIT_CHECKPOINT_DIR=checkpoint_dir or str(Path(app.instance_path) / "audit-checkpoints"),
            TRUSTED_PROXY_COUNT=int(os.environ.get("TRUSTED_PROXY_COUNT", "1")),
            REPORT_QUERY_TIMEOUT_SECONDS=report_timeout,
        )


def _positive_seconds(value: str | None, default: float) -> float | None:
    """``value`` (from the environment) as seconds above 0, ``default`` when unset, None when it is
    not such a number."""
    if value is None or not value.strip():
        return default
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 < seconds < float("inf") else None


def _is_weak_secret(secret: str) -> bool:
    """Too short, a well-known placeholder, too few distinct characters, or one short pattern
    repeated ("abab...", "0123456789" * 4): none of these came from a random generator."""
    if len(secret) < MIN_SECRET_KEY_LENGTH or secret.lower() in KNOWN_WEAK_SECRETS:
        return True
    if len(set(secret)) < MIN_SECRET_KEY_DISTINCT_CHARACTERS:
        return True
    return any(secret == (secret[:period] * (len(secret) // period + 1))[:len(secret)]
               for period in range(1, len(secret) // 2 + 1))


def _is_valid_kek(value: str) -> bool:
    try:
        return len(base64.b64decode(value, validate=True)) == 32
    except ValueError:
        return False


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def config_from_environment() -> type[Config]:
    """NANSEN_ENV chooses the configuration; production is the default so that a forgotten
    variable fails closed (refuses to start) instead of running with development secrets."""
    name = os.environ.get("NANSEN_ENV", "production").lower()
    if name not in CONFIGS:
        raise ConfigurationError(f"NANSEN_ENV must be one of {', '.join(CONFIGS)}")
    return CONFIGS[name]
