"""Password hashing (Argon2id through argon2-cffi) and the password policy.

Policy (SECURITY.md, NIST SP 800-63B): 15 to 128 characters, no composition rules, refused when
on the list of common or breached passwords or easy to guess (zxcvbn, which also catches
repetitions, keyboard walks and dates), or when it contains the username.
"""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app
from flask_babel import gettext as _


def hasher() -> PasswordHasher:
    """The configured hasher; None settings mean argon2-cffi's defaults (RFC 9106 profile)."""
    config = current_app.config
    defaults = PasswordHasher()
    return PasswordHasher(
        time_cost=config.get("ARGON2_TIME_COST") or defaults.time_cost,
        memory_cost=config.get("ARGON2_MEMORY_COST") or defaults.memory_cost,
        parallelism=config.get("ARGON2_PARALLELISM") or defaults.parallelism,
    )


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return hasher().verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when the stored hash is weaker than the configuration: another Argon2 type, or a
    lower memory or time cost, or a shorter salt or hash. argon2-cffi's own check_needs_rehash
    answers True for any difference, which would also rewrite a *stronger* hash (made before a
    cost was lowered) into a weaker one."""
    wanted = hasher()
    try:
        stored = extract_parameters(stored_hash)
    except InvalidHashError:
        return True
    return (stored.type is not wanted.type
            or stored.memory_cost < wanted.memory_cost
            or stored.time_cost < wanted.time_cost
            or stored.salt_len < wanted.salt_len
            or stored.hash_len < wanted.hash_len)


_DUMMY_HASH: dict[tuple, str] = {}


def burn_equivalent_time(password: str) -> None:
    """Verify against a throwaway hash so an unknown username costs as long as a known one."""
    h = hasher()
    key = (h.time_cost, h.memory_cost, h.parallelism)
    if key not in _DUMMY_HASH:
        _DUMMY_HASH[key] = h.hash("not-a-real-password-for-timing-only")
    verify_password(_DUMMY_HASH[key], password)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords that zxcvbn ships (from leaked password corpora)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # imported lazily: see _guessability_score

    return frozenset(p.casefold() for p in FREQUENCY_LISTS["passwords"])


# zxcvbn's cost grows with length; its verdict is settled well within this many characters.
_GUESSABILITY_WINDOW = 64
MIN_ZXCVBN_SCORE = 3  # "safely unguessable: moderate protection from offline slow-hash scenario"


def _guessability_score(password: str, username: str | None) -> int:
    # zxcvbn and its dictionaries weigh about 12 MB: imported when a password is first set,
    # not at start-up, so web workers that only sign people in stay small (PERFORMANCE.md M1).
    from zxcvbn import zxcvbn

    return zxcvbn(password[:_GUESSABILITY_WINDOW], user_inputs=[username or ""])["score"]


def password_problems(password: str, *, username: str | None = None) -> list[str]:
    """Every reason ``password`` is refused (empty when acceptable), in the user's language."""
    config = current_app.config
    low, high = config["PASSWORD_MIN_LENGTH"], config["PASSWORD_MAX_LENGTH"]
    problems = []
    if len(password) < low:
        problems.append(_("Use at least %(n)d characters. A few unrelated words make a good password.", n=low))
    if len(password) > high:
        problems.append(_("Use at most %(n)d characters.", n=high))
    folded = password.casefold()
    if folded in common_passwords() or _guessability_score(password, username) < MIN_ZXCVBN_SCORE:
        problems.append(_("This password is too common or too easy to guess. Choose another."))
    if username and username.casefold() in folded:
        problems.append(_("The password must not contain your username."))
    return problems
