"""Sign-in throttling in shared storage (Redis), as production runs it: the counters live outside
the worker, so a limit reached through one worker holds in every other and survives a restart.

With memory storage each gunicorn worker would count on its own, multiplying the allowed guesses
by the number of workers: SECURITY.md asks for limits that hold across workers."""

from __future__ import annotations

import os
import secrets

import pytest
import redis

from app import create_app
from app.extensions import db
from conftest import STRONG_PASSWORD, Browser, make_config
from functional.test_auth_login import add_user, attempt

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def redis_reachable() -> bool:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except (redis.RedisError, OSError):
        return False
    return True


pytestmark = pytest.mark.skipif(not redis_reachable(), reason=f"no Redis reachable at {REDIS_URL} (TEST_REDIS_URL)")


@pytest.fixture
def redis_prefix():
    """A key prefix of this test's own, so parallel test workers never share counters; its keys
    are deleted afterwards."""
    prefix = f"nansen-test-{secrets.token_hex(6)}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def another_worker(database_url, tmp_path, **overrides):
    """A second application, as a second gunicorn worker would build it. Not through
    `app_factory`, whose `limiter.reset()` would wipe the shared counters this test is about."""
    return create_app(make_config(database_url, tmp_path, **overrides))


def test_account_limit_holds_in_another_worker(app_factory, database_url, tmp_path, redis_prefix):
    """Three wrong passwords through one worker: a second worker, built afterwards with its own
    Redis connection, refuses the fourth attempt even with the right password; the counter is in
    Redis under the configured prefix."""
    overrides = {"RATELIMIT_STORAGE_URI": REDIS_URL, "RATELIMIT_STORAGE_OPTIONS": {"key_prefix": redis_prefix},
                 "LOGIN_LIMIT_PER_ACCOUNT": "3 per minute"}
    first_worker = app_factory(**overrides)
    with first_worker.app_context():
        user = add_user("shared.limit")
        browser = Browser(first_worker.test_client())
        statuses = [attempt(browser, user.username, "wrong password, long enough", f"10.1.0.{i}").status_code
                    for i in range(3)]
        assert statuses == [401, 401, 401]
        db.session.remove()

    second_worker = another_worker(database_url, tmp_path, **overrides)
    with second_worker.app_context():
        response = attempt(Browser(second_worker.test_client()), "shared.limit", STRONG_PASSWORD, "10.1.0.50")
        assert response.status_code == 429
        db.session.remove()
        db.engine.dispose()

    assert any(redis.Redis.from_url(REDIS_URL).scan_iter(f"{redis_prefix}:*"))


def test_memory_storage_would_not_hold_across_workers(app_factory, database_url, tmp_path):
    """The control for the test above: with memory storage a new worker starts from zero, which
    is why production refuses to start without RATELIMIT_STORAGE_URI."""
    overrides = {"RATELIMIT_STORAGE_URI": "memory://", "LOGIN_LIMIT_PER_ACCOUNT": "3 per minute"}
    first_worker = app_factory(**overrides)
    with first_worker.app_context():
        add_user("memory.limit")
        browser = Browser(first_worker.test_client())
        for i in range(3):
            attempt(browser, "memory.limit", "wrong password, long enough", f"10.2.0.{i}")
        assert attempt(browser, "memory.limit", STRONG_PASSWORD, "10.2.0.9").status_code == 429
        db.session.remove()

    second_worker = another_worker(database_url, tmp_path, **overrides)
    with second_worker.app_context():
        response = attempt(Browser(second_worker.test_client()), "memory.limit", STRONG_PASSWORD, "10.2.0.10")
        assert response.status_code == 302  # signed in: the count did not follow
        db.session.remove()
        db.engine.dispose()
