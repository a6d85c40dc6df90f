"""Events the users service publishes on the ``users.events`` exchange (through the outbox, after commit).

Payloads carry public profile data only: never the email or the password hash.

* ``user_registered``: :func:`user_registered`
* ``user_updated``: :func:`user_updated` (profile edits and activation changes)
* ``user_deleted``: :func:`user_deleted`
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

USER_REGISTERED = "user_registered"
USER_UPDATED = "user_updated"
USER_DELETED = "user_deleted"

PUBLIC_FIELDS = ("id", "username", "name", "bio", "avatar", "is_active", "date_joined")


def _public(user: dict[str, Any]) -> dict[str, Any]:
    return {field: user[field] for field in PUBLIC_FIELDS}


def user_registered(user: dict[str, Any]) -> dict[str, Any]:
    """``{"id", "username", "name", "bio", "avatar", "is_active", "date_joined"}``."""
    return _public(user)


def user_updated(user: dict[str, Any], changed: Iterable[str]) -> dict[str, Any]:
    """The public fields after the change, plus ``changed``: the names of the fields that changed."""
    return {**_public(user), "changed": list(changed)}


def user_deleted(user: dict[str, Any]) -> dict[str, Any]:
    """``{"id", "username"}`` of the deleted user."""
    return {"id": user["id"], "username": user["username"]}
