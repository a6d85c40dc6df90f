"""RPC entry points of the users service (``nameko run services.users.service``).

Thin glue: each entry point cleans its input (``validation``), calls storage verbs inside
``storage.transaction()``, emits its event in that same transaction (the outbox publishes it after the
commit), and returns JSON-able dicts (``schemas``). The commit happens before the entry point returns,
so a caller never sees a reply for a change that is not committed.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from nameko.dependency_providers import Config
from nameko.timer import timer

# Imported as a module, not by name: `nameko run services.users.service` starts every class of this
# module that has entrypoints, and ServiceBase (whose health() is one) has no service name.
from common import service as common_service
from common.db import Storage
from common.errors import (
    EXPECTED,
    AuthenticationFailed,
    Conflict,
    NotFound,
    RateLimited,
    ValidationFailed,
)
from common.rpc import rpc
from common.validation import check_paging, parse_uuid, storable
from services.users import events, passwords, schemas, validation
from services.users.models import metadata
from services.users.storage import DuplicateUser, UserStorage

log = logging.getLogger(__name__)

USER_NOT_FOUND = "User not found"

# D7 defaults, overridden by the nameko config keys of the same names.
LOGIN_MAX_FAILURES_PER_ACCOUNT = 10
LOGIN_MAX_ATTEMPTS_PER_ADDRESS = 100
LOGIN_WINDOW_SECONDS = 900

PRUNE_INTERVAL_SECONDS = 600


class UsersService(common_service.ServiceBase):
    """Accounts: registration, credentials (argon2id, D2), login rate limits (D7) and profiles."""

    name = "users"

    storage: UserStorage = Storage(UserStorage, metadata)
    config = Config()

    # --- accounts -----------------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def register(self, username: str, name: str, email: str, password1: str, password2: str) -> dict[str, Any]:
        """Create an account (``registerUser``, CONTRACT §6.2, §8.2) and return the new user.

        Form errors: ``ValidationFailed(errors)``, keys in the order username, name, email, password1,
        password2. The username is then slugified (``JohnDoe`` -> ``johndoe``); a taken or empty slug is
        a raw ``ValidationFailed({'username': [...]}, raw=True)``. A registration that loses a race with
        a concurrent one for the same email or username gets ``Conflict`` carrying exactly the error it
        would have got had the other committed first (C14). Emits ``user_registered``.
        """
        inputs = (username, name, email, password1, password2)
        with self.storage.transaction():  # read-only: releases its connection before the slow hash
            form, slug = self._check_registration(*inputs)
        password_hash = passwords.hash_password(form.password)
        try:
            with self.storage.transaction():
                row = self.storage.create_user(
                    username=slug, name=form.name, email=form.email, password_hash=password_hash
                )
                user = schemas.user(row)
                self.storage.emit(events.USER_REGISTERED, events.user_registered(user))
        except DuplicateUser as lost:
            raise self._registration_conflict(lost, form, slug, inputs) from None
        log.info("user registered", extra={"user_id": user["id"]})
        return user

    @rpc(expected_exceptions=EXPECTED)
    def authenticate(self, email: str, password: str, client_address: str | None = None) -> dict[str, Any]:
        """Check credentials (``tokenAuth``, CONTRACT §6.1) and return the user.

        The D7 limits are checked first, before any password work: ``RateLimited()`` when the
        lower-cased email has too many failed attempts in the window, or ``client_address`` too many
        attempts. Otherwise the attempt is recorded; an unknown email, a wrong password or an inactive
        user give ``AuthenticationFailed()`` and count as a failure of that account. The email is
        compared lower-cased (D1). Success updates the last login time.
        """
        account = validation.login_account(email)
        address = validation.client_address(client_address)
        with self.storage.transaction():
            self._check_login_limits(account, address)
            attempt = self.storage.record_login_attempt(account, address)
            row = self.storage.get_by_email(email) if _lookup_text(email) else None
        # An unknown email still costs one verification, so timing does not reveal which accounts exist.
        if not passwords.verify_password(row.password if row else None, password) or not row.is_active:
            log.info("login failed", extra={"user_id": str(row.id) if row else None, "address": address})
            raise AuthenticationFailed()
        new_hash = passwords.hash_password(password) if passwords.needs_rehash(row.password) else None
        with self.storage.transaction():
            self.storage.login_succeeded(attempt, row.id)
            if new_hash:
                self.storage.set_password(row.id, new_hash)
        log.info("user logged in", extra={"user_id": str(row.id)})
        return schemas.user(row)

    @rpc(expected_exceptions=EXPECTED)
    def delete_account(self, user_id: str, password: str, client_address: str | None = None) -> dict[str, str]:
        """Delete an account after checking its password (``deleteAccount``, CONTRACT §6.2, B3).

        Returns ``{"previous_avatar": <the avatar path the gateway must delete, "" if none>}``.
        A wrong password gives ``ValidationFailed({"password": ["Incorrect password."]})`` and counts
        as a failed login of the account and the address (D7); over a D7 limit the password is not
        checked and ``RateLimited()`` is raised. Unknown user: ``NotFound("User not found")``.
        Emits ``user_deleted`` (``{"id", "username"}``), on which the other services cascade.
        """
        user_uuid = _user_uuid(user_id)
        address = validation.client_address(client_address)
        with self.storage.transaction():
            row = self.storage.get(user_uuid)
            if row is None:
                raise NotFound(USER_NOT_FOUND)
            account = validation.login_account(row.email)
            self._check_login_limits(account, address)
            self.storage.record_login_attempt(account, address)
        if not passwords.verify_password(row.password, password):
            log.info("account deletion refused: wrong password", extra={"user_id": str(row.id)})
            raise ValidationFailed({"password": [validation.INCORRECT_PASSWORD]})
        with self.storage.transaction():
            deleted = self.storage.delete_user(user_uuid)
            if deleted is None:
                raise NotFound(USER_NOT_FOUND)
            self.storage.forget_login_account(account)
            self.storage.emit(events.USER_DELETED, events.user_deleted(schemas.user(deleted)))
        log.info("user deleted", extra={"user_id": str(deleted.id)})
        return {"previous_avatar": deleted.avatar}

    @rpc(expected_exceptions=EXPECTED)
    def set_active(self, user_id: str, is_active: bool) -> dict[str, Any]:
        """Activate or deactivate an account (an operator action, not in GraphQL) and return the user.
        An inactive user cannot log in, is not listed (D11) and its tokens fail with ``User is
        disabled``. Emits ``user_updated`` when the flag changes. Unknown user: ``NotFound``."""
        user_uuid = _user_uuid(user_id)
        with self.storage.transaction():
            row = self.storage.get(user_uuid, for_update=True)
            if row is None:
                raise NotFound(USER_NOT_FOUND)
            if row.is_active != bool(is_active):
                row = self.storage.update_user(user_uuid, {"is_active": bool(is_active)})
                self.storage.emit(events.USER_UPDATED, events.user_updated(schemas.user(row), ["is_active"]))
                log.info("user activation changed", extra={"user_id": str(row.id), "is_active": row.is_active})
        return schemas.user(row)

    # --- profiles -----------------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def update_profile(
        self, user_id: str, changes: dict[str, Any], extra_errors: dict[str, list[str]] | None = None
    ) -> dict[str, Any]:
        """Change a user's ``name``, ``bio`` and/or ``avatar`` (``updateUser``, CONTRACT §6.2, §8.3).

        A key present in ``changes`` sets that field, ``None`` included (``name: None`` fails as
        required; ``bio``/``avatar: None`` store ``""``). ``avatar`` is a stored media path, or ``""``
        to remove it. ``extra_errors`` are the gateway's errors about the uploaded file
        (``{"avatar": [...]}``); all errors are raised together as ``ValidationFailed``, keys in the
        order name, bio, avatar. No changes: success, nothing written.

        Returns ``{"user": <user>, "previous_avatar": <the avatar path this call replaced or removed,
        "" when the avatar did not change>}``: the file the gateway should delete. Emits
        ``user_updated`` when a value changed. Unknown user: ``NotFound("User not found")``.
        """
        user_uuid = _user_uuid(user_id)
        previous_avatar = ""
        with self.storage.transaction():
            row = self.storage.get(user_uuid, for_update=True)
            if row is None:
                raise NotFound(USER_NOT_FOUND)
            values = validation.check_profile_changes(changes or {}, extra_errors)
            changed = {field: value for field, value in values.items() if getattr(row, field) != value}
            if changed:
                previous_avatar = row.avatar if "avatar" in changed else ""
                row = self.storage.update_user(user_uuid, changed)
                self.storage.emit(events.USER_UPDATED, events.user_updated(schemas.user(row), changed))
                log.info("user updated", extra={"user_id": str(row.id), "changed": list(changed)})
        return {"user": schemas.user(row), "previous_avatar": previous_avatar}

    # --- reads --------------------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def get_many(self, ids: list[str]) -> list[dict[str, Any] | None]:
        """The users with these ids, aligned with ``ids``: ``None`` for an unknown or malformed id.
        One query, for the gateway's DataLoader."""
        wanted = [parse_uuid(user_id) for user_id in ids]
        rows = self.storage.get_many([user_uuid for user_uuid in wanted if user_uuid is not None])
        return [schemas.user(rows[user_uuid]) if user_uuid in rows else None for user_uuid in wanted]

    @rpc(expected_exceptions=EXPECTED)
    def get_by_username(self, username: str) -> dict[str, Any]:
        """The user with exactly this username (``"BOB"`` is not ``"bob"``), inactive users included,
        else ``NotFound("User not found")``."""
        row = self.storage.get_by_username(username) if _lookup_text(username) else None
        if row is None:
            raise NotFound(USER_NOT_FOUND)
        return schemas.user(row)

    @rpc(expected_exceptions=EXPECTED)
    def get_by_email(self, email: str) -> dict[str, Any] | None:
        """The user whose email equals this one compared lower-cased (D1: token lookup), or ``None``."""
        row = self.storage.get_by_email(email) if _lookup_text(email) else None
        return schemas.user(row) if row is not None else None

    @rpc(expected_exceptions=EXPECTED)
    def list_active(self, search: str | None = None, first: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """Active users only (D11), by username then id. ``search`` (ignored when ``None`` or ``""``)
        keeps users whose username or name contains it, case-insensitively. ``offset`` users are
        skipped, then at most ``first`` returned (``None``: all). A negative ``first`` or ``offset``
        gives ``ValidationFailed({"first": ["Ensure this value is greater than or equal to 0."]})``."""
        first, offset = check_paging(first, offset)
        if search and not _lookup_text(search):
            return []  # nothing stored can contain it
        return [schemas.user(row) for row in self.storage.list_active(search or None, first, offset)]

    # --- housekeeping -------------------------------------------------------------------------------

    @timer(interval=PRUNE_INTERVAL_SECONDS)
    def prune_login_attempts(self) -> int:
        """Delete login attempts older than the rate-limit window: they no longer count."""
        with self.storage.transaction():
            pruned = self.storage.prune_login_attempts(self._login_limits()["window_seconds"])
        if pruned:
            log.info("login attempts pruned", extra={"count": pruned})
        return pruned

    # --- helpers ------------------------------------------------------------------------------------

    def _check_registration(self, *inputs: Any) -> tuple[validation.Registration, str]:
        form = validation.check_registration(
            *inputs, username_taken=self.storage.username_taken, email_taken=self.storage.email_taken
        )
        slug = validation.username_slug(form.username)
        if self.storage.username_taken(slug):
            raise validation.username_taken_error(form.username, slug)
        return form, slug

    def _registration_conflict(
        self, lost: DuplicateUser, form: validation.Registration, slug: str, inputs: tuple[Any, ...]
    ) -> Conflict:
        """The error of a registration that lost a race: the winner has committed by now, so checking
        again yields exactly what a sequential duplicate gets, raised as ``Conflict`` in its style."""
        try:
            with self.storage.transaction():
                self._check_registration(*inputs)
        except ValidationFailed as sequential:
            log.info("registration lost a race", extra={"field": lost.field})
            return Conflict(sequential.errors, raw=sequential.raw)
        # The winner is gone again already: fall back on the constraint that fired.
        if lost.field == "email":
            return Conflict({"email": [validation.EMAIL_TAKEN]})
        error = validation.username_taken_error(form.username, slug)
        return Conflict(error.errors, raw=error.raw)

    def _login_limits(self) -> dict[str, Any]:
        return {
            "window_seconds": float(self.config.get("LOGIN_WINDOW_SECONDS", LOGIN_WINDOW_SECONDS)),
            "max_failures": int(self.config.get("LOGIN_MAX_FAILURES_PER_ACCOUNT", LOGIN_MAX_FAILURES_PER_ACCOUNT)),
            "max_attempts": int(self.config.get("LOGIN_MAX_ATTEMPTS_PER_ADDRESS", LOGIN_MAX_ATTEMPTS_PER_ADDRESS)),
        }

    def _check_login_limits(self, account: str, address: str | None) -> None:
        if self.storage.login_limited(account, address, **self._login_limits()):
            log.warning("login rate limited", extra={"address": address})
            raise RateLimited()


def _user_uuid(user_id: Any) -> uuid.UUID:
    user_uuid = parse_uuid(user_id)
    if user_uuid is None:
        raise NotFound(USER_NOT_FOUND)
    return user_uuid


def _lookup_text(value: Any) -> bool:
    """Whether ``value`` can be compared with stored text at all (a string without NUL characters or
    lone surrogates); anything else matches nothing."""
    return isinstance(value, str) and storable(value)
