"""Password hashing (argon2id, CONTRACT D2) and Django-compatible password validators (CONTRACT §8.2).

Hashing and verification cost ~50 ms of CPU each, so they run in eventlet's OS thread pool: argon2's C
code releases the GIL, and the service's other greenthreads keep running meanwhile.

``common-passwords.txt.gz`` beside this file is Django's ``django/contrib/auth/common-passwords.txt.gz``
(Django 5.2.19; 20,000 passwords compiled by Royce Williams, lower-cased and deduplicated), BSD-licensed:
see ``common-passwords.LICENSE``. The validators below reproduce those of
``django/contrib/auth/password_validation.py`` with their default options and messages.
"""

from __future__ import annotations

import functools
import gzip
import re
import secrets
from difflib import SequenceMatcher
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from eventlet import tpool

COMMON_PASSWORDS_PATH = Path(__file__).resolve().parent / "common-passwords.txt.gz"

MIN_LENGTH = 8
MAX_SIMILARITY = 0.7

TOO_SIMILAR = "The password is too similar to the {}."
TOO_SHORT = f"This password is too short. It must contain at least {MIN_LENGTH} characters."
TOO_COMMON = "This password is too common."
ENTIRELY_NUMERIC = "This password is entirely numeric."

# argon2id with OWASP's first recommended parameter set (Password Storage Cheat Sheet: m=46 MiB, t=1,
# p=1): ~50 ms on a 2-core machine, where argon2-cffi's default profile (m=64 MiB, t=3, p=4) takes
# ~350 ms. Hashes made with other parameters are upgraded at the next successful login (needs_rehash).
_hasher = PasswordHasher(time_cost=1, memory_cost=47104, parallelism=1)


def _secret(password: str) -> bytes:
    # surrogatepass: a lone surrogate (valid in JSON) must hash, not crash the worker.
    return password.encode("utf-8", "surrogatepass")


def hash_password(password: str) -> str:
    """The argon2id hash (``$argon2id$v=19$...``) of ``password``, computed off the event loop."""
    return tpool.execute(_hasher.hash, _secret(password))


def verify_password(password_hash: str | None, password: object) -> bool:
    """Whether ``password`` matches ``password_hash``. With no hash (unknown account) a dummy hash is
    verified instead, so the answer takes as long as for a real account."""
    if not isinstance(password, str):
        password = ""
    return tpool.execute(_verify, password_hash, _secret(password))


def needs_rehash(password_hash: str) -> bool:
    """Whether a stored hash was made with other parameters than the current ones."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return False


def _verify(password_hash: str | None, secret: bytes) -> bool:
    if password_hash is None:
        _safe_verify(_dummy_hash(), secret)
        return False
    return _safe_verify(password_hash, secret)


def _safe_verify(password_hash: str, secret: bytes) -> bool:
    try:
        return _hasher.verify(password_hash, secret)
    except (VerificationError, InvalidHashError):
        # A mismatch, or an unusable / foreign hash (e.g. a fixture user's "!..."): never a match.
        return False


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


@functools.cache
def common_passwords() -> frozenset[str]:
    with gzip.open(COMMON_PASSWORDS_PATH, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines)


def _exceeds_maximum_length_ratio(password: str, value: str) -> bool:
    # Django's shortcut: a part this much shorter than the password can never reach the ratio.
    return len(password) >= 10 * len(value) and len(value) < MAX_SIMILARITY / 2 * len(password)


def _too_similar(password: str, value: str) -> bool:
    value = value.lower()
    for part in [*re.split(r"\W+", value), value]:
        if _exceeds_maximum_length_ratio(password, part):
            continue
        if SequenceMatcher(a=password, b=part).quick_ratio() >= MAX_SIMILARITY:
            return True
    return False


def password_errors(password: str, *, username: str | None = None, email: str | None = None) -> list[str]:
    """The messages of Django's four default validators, in their order: similarity to the username,
    then the email (at most one message), minimum length 8, the common-passwords list, all digits."""
    errors = []
    lowered = password.lower()
    for verbose_name, value in (("username", username), ("email", email)):
        if value and _too_similar(lowered, value):
            errors.append(TOO_SIMILAR.format(verbose_name))
            break
    if len(password) < MIN_LENGTH:
        errors.append(TOO_SHORT)
    if password.lower().strip() in common_passwords():
        errors.append(TOO_COMMON)
    if password.isdigit():
        errors.append(ENTIRELY_NUMERIC)
    return errors
