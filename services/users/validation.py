"""Input rules of the users context (CONTRACT §8.1–8.3), as pure functions.

The registration rules reproduce what the reference implementation's Django form did: each field is
cleaned (stripped unless it is a password), checked for presence, then every validator of the field runs
and all their messages are kept, in Django's order; uniqueness is only checked for a field that passed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from common.errors import ValidationFailed
from common.validation import BLANK, NULL_CHARACTERS, REQUIRED, as_text, slugify, text_errors
from services.users import passwords
from services.users.models import (
    AVATAR_MAX_LENGTH,
    BIO_MAX_LENGTH,
    EMAIL_MAX_LENGTH,
    NAME_MAX_LENGTH,
    USERNAME_MAX_LENGTH,
)

INVALID_SLUG = "Enter a valid “slug” consisting of letters, numbers, underscores or hyphens."
INVALID_EMAIL = "Enter a valid email address."
USERNAME_TAKEN = "User with this Username already exists."
EMAIL_TAKEN = "User with this Email already exists."
PASSWORD_MISMATCH = "The two password fields didn’t match."
INCORRECT_PASSWORD = "Incorrect password."

PROFILE_FIELDS = ("name", "bio", "avatar")

# Longest account key kept for rate limiting: longer than any storable email (254), so real accounts
# keep distinct keys, while a megabyte of "email" cannot bloat the attempts table.
ACCOUNT_KEY_MAX_LENGTH = 320
ADDRESS_MAX_LENGTH = 100


# ---------------------------------------------------------------------------------------------------
# slugs and emails

_SLUG_RE = re.compile(r"^[-a-zA-Z0-9_]+\Z")


def is_slug(value: str) -> bool:
    """Django's ``validate_slug``: ASCII letters, digits, ``_`` and ``-``."""
    return bool(_SLUG_RE.match(value))


# The email rules are those of Django 5.2's django.core.validators.EmailValidator (with the host name
# patterns of DomainNameValidator it reuses, and its "localhost" allow-list), copied regex for regex so
# that exactly the addresses the reference implementation accepted are accepted. Django is BSD-licensed.
_UL = "\u00a1-\uffff"  # Unicode letters range (must not be a raw string)
_HOSTNAME_RE = r"[a-z" + _UL + r"0-9](?:[a-z" + _UL + r"0-9-]{0,61}[a-z" + _UL + r"0-9])?"
_DOMAIN_RE = r"(?:\.(?!-)[a-z" + _UL + r"0-9-]{1,63}(?<!-))*"
_TLD_NO_FQDN_RE = (
    r"\."  # dot
    r"(?!-)"  # can't start with a dash
    r"(?:[a-z" + _UL + "-]{2,63}"  # domain label
    r"|xn--[a-z0-9]{1,59})"  # or punycode label
    r"(?<!-)"  # can't end with a dash
)
_EMAIL_USER_RE = re.compile(
    # dot-atom
    r"(^[-!#$%&'*+/=?^_`{}|~0-9A-Z]+(\.[-!#$%&'*+/=?^_`{}|~0-9A-Z]+)*\Z"
    # quoted-string
    r'|^"([\001-\010\013\014\016-\037!#-\[\]-\177]|\\[\001-\011\013\014\016-\177])'
    r'*"\Z)',
    re.IGNORECASE,
)
_EMAIL_DOMAIN_RE = re.compile(r"^" + _HOSTNAME_RE + _DOMAIN_RE + _TLD_NO_FQDN_RE + r"\Z", re.IGNORECASE)
_EMAIL_LITERAL_RE = re.compile(r"\[([A-F0-9:.]+)\]\Z", re.IGNORECASE)  # [ipv4] or [ipv6] (SMTP 4.1.3)
_EMAIL_DOMAIN_ALLOWLIST = ("localhost",)
_EMAIL_MAX_LENGTH_RFC = 320  # RFC 3696 section 3; Django rejects longer values outright
_IPV6_MAX_LENGTH = 39


def is_valid_email(value: str) -> bool:
    """Django's ``validate_email``."""
    if not value or "@" not in value or len(value) > _EMAIL_MAX_LENGTH_RFC:
        return False
    user_part, domain_part = value.rsplit("@", 1)
    if not _EMAIL_USER_RE.match(user_part):
        return False
    if domain_part in _EMAIL_DOMAIN_ALLOWLIST or _EMAIL_DOMAIN_RE.match(domain_part):
        return True
    literal = _EMAIL_LITERAL_RE.match(domain_part)
    return bool(literal) and _is_ip_address(literal[1])


def _is_ip_address(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
        return True
    except ValueError:
        pass
    if len(value) > _IPV6_MAX_LENGTH:
        return False
    try:
        ipaddress.IPv6Address(value)
        return True
    except ValueError:
        return False


# ---------------------------------------------------------------------------------------------------
# registration (§8.2)


@dataclass(frozen=True)
class Registration:
    """A registration that passed the form: values as they will be stored (username not yet slugified)."""

    username: str
    name: str
    email: str
    password: str


def check_registration(
    username: Any,
    name: Any,
    email: Any,
    password1: Any,
    password2: Any,
    *,
    username_taken: Callable[[str], bool],
    email_taken: Callable[[str], bool],
) -> Registration:
    """Run the registration form. ``username_taken`` / ``email_taken`` answer the case-insensitive
    duplicate checks; they are asked only about a value that passed its other rules.

    Raises ``ValidationFailed`` (form style) with the errors in the order username, name, email,
    password1, password2.
    """
    errors: dict[str, list[str]] = {}
    username = as_text(username, strip=True)
    name = as_text(name, strip=True)
    email = as_text(email, strip=True)
    password1 = as_text(password1)
    password2 = as_text(password2)

    # The unsaved user the password is compared with holds the username and email that passed their
    # field rules; a duplicate still counts (Django checks uniqueness after building the instance).
    user_username = user_email = None

    if not username:
        errors["username"] = [REQUIRED]
    else:
        messages = ([] if is_slug(username) else [INVALID_SLUG]) + text_errors(username, USERNAME_MAX_LENGTH)
        if messages:
            errors["username"] = messages
        else:
            user_username = username
            if username_taken(username):
                errors["username"] = [USERNAME_TAKEN]

    if not name:
        errors["name"] = [REQUIRED]
    elif messages := text_errors(name, NAME_MAX_LENGTH):
        errors["name"] = messages

    if not email:
        errors["email"] = [REQUIRED]
    else:
        messages = ([] if is_valid_email(email) else [INVALID_EMAIL]) + text_errors(email, EMAIL_MAX_LENGTH)
        if messages:
            errors["email"] = messages
        else:
            user_email = email
            if email_taken(email):
                errors["email"] = [EMAIL_TAKEN]

    password1_ok = password2_ok = False
    if not password1:
        errors["password1"] = [REQUIRED]
    elif "\x00" in password1:
        errors["password1"] = [NULL_CHARACTERS]
    else:
        password1_ok = True
    if not password2:
        errors["password2"] = [REQUIRED]
    elif "\x00" in password2:
        errors["password2"] = [NULL_CHARACTERS]
    elif password1_ok and password1 != password2:
        errors["password2"] = [PASSWORD_MISMATCH]
    else:
        password2_ok = True
    if password2_ok:
        # Django validates password2 (the confirmation), even when password1 itself was missing.
        messages = passwords.password_errors(password2, username=user_username, email=user_email)
        if messages:
            errors["password2"] = messages
            password2_ok = False

    if errors:
        raise ValidationFailed(errors)
    return Registration(username=username, name=name, email=email, password=password1)


def username_slug(username: str) -> str:
    """The stored username: the slug of the accepted one. Raises the contract's raw error when nothing
    is left of it (``---``)."""
    slug = slugify(username)
    if not slug:
        raise ValidationFailed({"username": [BLANK]}, raw=True)
    return slug


def username_taken_error(username: str, slug: str) -> ValidationFailed:
    """The error for a registration whose slug is taken by ``slug``'s owner, in the style a sequential
    duplicate gets: the form's case-insensitive check catches it when the typed username *is* the slug
    (``Alice`` after ``alice``); otherwise only the slug collides (``-alice-``), a raw error."""
    raw = username.lower() != slug
    return ValidationFailed({"username": [USERNAME_TAKEN]}, raw=raw)


# ---------------------------------------------------------------------------------------------------
# profile updates (§8.3)


def check_profile_changes(
    changes: Mapping[str, Any], extra_errors: Mapping[str, list[str]] | None = None
) -> dict[str, str]:
    """Clean the present keys of ``changes`` (``name``, ``bio``, ``avatar``); an explicit ``None``
    counts as present. ``extra_errors`` (the gateway's findings about an uploaded file) are merged in
    field order. Raises ``ValidationFailed`` (form style) on any error; returns the values to store."""
    unknown = [key for key in changes if key not in PROFILE_FIELDS]
    if unknown:
        raise ValueError(f"update_profile cannot change {unknown!r}; allowed: {PROFILE_FIELDS!r}")

    errors: dict[str, list[str]] = {}
    cleaned: dict[str, str] = {}

    if "name" in changes:
        name = as_text(changes["name"], strip=True)
        if not name:
            errors["name"] = [REQUIRED]
        elif messages := text_errors(name, NAME_MAX_LENGTH):
            errors["name"] = messages
        else:
            cleaned["name"] = name
    if "bio" in changes:
        bio = as_text(changes["bio"])
        if messages := text_errors(bio, BIO_MAX_LENGTH):
            errors["bio"] = messages
        else:
            cleaned["bio"] = bio
    if "avatar" in changes:
        avatar = as_text(changes["avatar"])
        if messages := text_errors(avatar, AVATAR_MAX_LENGTH):
            errors["avatar"] = messages
        else:
            cleaned["avatar"] = avatar

    for field, messages in (extra_errors or {}).items():
        if messages:
            errors.setdefault(field, []).extend(messages)
    if errors:
        order = {field: index for index, field in enumerate(PROFILE_FIELDS)}
        raise ValidationFailed(dict(sorted(errors.items(), key=lambda item: order.get(item[0], len(order)))))
    return cleaned


# ---------------------------------------------------------------------------------------------------
# rate-limit keys


def login_account(email: Any) -> str:
    """The rate-limit key of an email: lower-cased (D1), made storable and bounded."""
    return _storable_key(as_text(email).lower(), ACCOUNT_KEY_MAX_LENGTH)


def client_address(address: Any) -> str | None:
    """The rate-limit key of a client address; ``None`` when the caller does not know it."""
    if address is None or address == "":
        return None
    return _storable_key(as_text(address, strip=True), ADDRESS_MAX_LENGTH)


def _storable_key(value: str, limit: int) -> str:
    value = value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    return value[:limit]
