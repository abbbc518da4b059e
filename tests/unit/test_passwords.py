"""Password hashing (Argon2id) and the password policy (SECURITY.md, authentication)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type, extract_parameters
from argon2.profiles import RFC_9106_LOW_MEMORY
from flask import Flask
from flask_babel import Babel

from app.auth import passwords
from config import ProductionConfig, TestingConfig


def bare_app(config_class) -> Flask:
    app = Flask("nansen_password_test")
    app.config.from_object(config_class)
    Babel(app)  # the policy's messages are translated
    return app


@pytest.fixture
def production():
    with bare_app(ProductionConfig).app_context() as context:
        yield context.app


@pytest.fixture
def testing():
    with bare_app(TestingConfig).app_context() as context:
        yield context.app


def test_production_hashes_are_argon2id_with_library_defaults_or_stronger(production):
    """A hash made with the production settings is Argon2id, and its memory, time and
    parallelism are at least argon2-cffi's defaults (the RFC 9106 low-memory profile)."""
    stored = passwords.hash_password("velvet ocean drum parade")
    params = extract_parameters(stored)
    assert stored.startswith("$argon2id$")
    assert params.type is Type.ID
    assert params.memory_cost >= RFC_9106_LOW_MEMORY.memory_cost == PasswordHasher().memory_cost
    assert params.time_cost >= RFC_9106_LOW_MEMORY.time_cost == PasswordHasher().time_cost
    assert params.parallelism >= RFC_9106_LOW_MEMORY.parallelism
    assert params.hash_len >= RFC_9106_LOW_MEMORY.hash_len
    assert params.salt_len >= RFC_9106_LOW_MEMORY.salt_len
    assert passwords.verify_password(stored, "velvet ocean drum parade") is True
    assert passwords.verify_password(stored, "velvet ocean drum parades") is False


def test_production_configuration_does_not_weaken_argon2():
    """Only the test configuration lowers the Argon2 cost; production leaves the defaults."""
    assert (ProductionConfig.ARGON2_TIME_COST, ProductionConfig.ARGON2_MEMORY_COST,
            ProductionConfig.ARGON2_PARALLELISM) == (None, None, None)


def test_weaker_hash_needs_rehash(testing):
    """A hash below the configured memory or time cost, or of another Argon2 type, is rehashed."""
    weaker_memory = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1).hash("pw")
    argon2i = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.I).hash("pw")
    assert passwords.needs_rehash(weaker_memory) is True
    assert passwords.needs_rehash(argon2i) is True
    assert passwords.needs_rehash(passwords.hash_password("pw")) is False


def test_stronger_hash_is_not_downgraded(testing):
    """A hash stronger than the configuration (made before a cost was lowered) is kept: rehashing
    it would weaken it."""
    stronger = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1).hash("pw")
    assert passwords.needs_rehash(stronger) is False


def test_verify_refuses_garbage_hashes(testing):
    """A malformed stored hash never verifies (and never raises)."""
    assert passwords.verify_password("not a hash", "anything") is False
    assert passwords.verify_password("$argon2id$v=19$m=1024,t=1,p=1$broken", "anything") is False


@pytest.mark.parametrize("password", ["amber kiwi oslo", "zebra quilt mop", "velvet ocean drum parade"])
def test_policy_accepts_long_passphrases_without_composition_rules(testing, password):
    """Lower-case words with spaces are fine: no digits, capitals or symbols are demanded."""
    assert passwords.password_problems(password, username="alice") == []


def test_policy_minimum_is_fifteen_characters(testing):
    """14 characters are refused with the length message; 15 are accepted."""
    assert passwords.password_problems("amber kiwi osl", username="alice") == [
        "Use at least 15 characters. A few unrelated words make a good password."]
    assert passwords.password_problems("amber kiwi oslo", username="alice") == []


def test_policy_maximum_is_128_characters(testing):
    """128 characters are accepted, 129 refused with the length message."""
    long_one = ("velvet ocean drum parade " * 6)[:128]
    assert len(long_one) == 128
    assert passwords.password_problems(long_one, username="alice") == []
    assert passwords.password_problems(long_one + "x", username="alice") == ["Use at most 128 characters."]


@pytest.mark.parametrize("common", ["mailcreated5240", "MailCreated5240", "1qaz2wsx3edc4rfv",
                                    "123456789987654321"])
def test_policy_refuses_common_passwords(testing, common):
    """Passwords from the common-password list are refused whatever their length or case."""
    assert passwords.common_passwords() >= {common.casefold()}
    assert passwords.password_problems(common, username="alice") == [
        "This password is too common or too easy to guess. Choose another."]


def test_policy_refuses_a_password_containing_the_username(testing):
    """The username inside the password (any case) is refused."""
    problems = passwords.password_problems("the Marguerite.Dubois velvet ocean", username="marguerite.dubois")
    assert "The password must not contain your username." in problems
