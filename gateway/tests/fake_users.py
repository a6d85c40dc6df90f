"""An in-memory stand-in for the users service behind a fake RPC client, so the gateway's HTTP and
GraphQL behaviour can be tested in-process. It mimics the service's RPC API and raises its domain
errors the way they arrive over RPC (``RemoteError`` with ``exc_type`` and ``exc_args``); it does not
reimplement the service's validation rules, which the service's own tests cover."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any

from gateway.rpc import RemoteError, RpcTimeout, ServiceUnavailable


def remote(exc_type: str, *args: Any) -> RemoteError:
    """The error as it arrives over RPC: nameko sends arguments that are neither strings nor
    iterables as ``str()`` (``False`` becomes ``"False"``)."""
    wire = [arg if isinstance(arg, (str, dict, list)) else str(arg) for arg in args]
    return RemoteError(exc_type, f"{exc_type}{args!r}", wire, f"common.errors.{exc_type}")


class FakeUsers:
    """The users service's RPC methods over a dict."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.passwords: dict[str, str] = {}
        self.failures: Counter[str] = Counter()

    def add(
        self,
        username: str,
        email: str,
        password: str = "pw",
        *,
        name: str = "Some One",
        is_active: bool = True,
        joined: float | None = None,
    ) -> dict[str, Any]:
        user_id = str(uuid.uuid4())
        joined = time.time() - 30 * 86400 if joined is None else joined
        self.users[user_id] = {
            "id": user_id,
            "username": username,
            "name": name,
            "bio": "",
            "avatar": "",
            "email": email,
            "is_active": is_active,
            "is_staff": False,
            "date_joined": "",
            "date_joined_ts": joined,
        }
        self.passwords[user_id] = password
        return dict(self.users[user_id])

    def _by_email(self, email: str) -> dict[str, Any] | None:
        return next((u for u in self.users.values() if u["email"].lower() == email.strip().lower()), None)

    def health(self) -> str:
        return "ok"

    def register(self, username: str, name: str, email: str, password1: str, password2: str) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        if not name.strip():
            errors["name"] = ["This field is required."]
        if self._by_email(email):
            errors["email"] = ["User with this Email already exists."]
        if password1 != password2:
            errors["password2"] = ["The two password fields didn\u2019t match."]
        if errors:
            raise remote("ValidationFailed", errors, False)
        slug = username.strip("-_").lower()
        if any(u["username"] == slug for u in self.users.values()):
            raise remote("ValidationFailed", {"username": ["User with this Username already exists."]}, True)
        return self.add(slug, email.strip(), password1, name=name, joined=time.time())

    def authenticate(self, email: str, password: str, client_address: str | None = None) -> dict[str, Any]:
        if self.failures[email.lower()] >= 3:
            raise remote("RateLimited", "Too many login attempts. Please try again later.")
        user = self._by_email(email)
        if user is None or self.passwords[user["id"]] != password or not user["is_active"]:
            self.failures[email.lower()] += 1
            raise remote("AuthenticationFailed", "Please enter valid credentials")
        return dict(user)

    def get_many(self, ids: list[str]) -> list[dict[str, Any] | None]:
        return [dict(self.users[i]) if i in self.users else None for i in ids]

    def get_by_username(self, username: str) -> dict[str, Any]:
        for user in self.users.values():
            if user["username"] == username:
                return dict(user)
        raise remote("NotFound", "User not found")

    def get_by_email(self, email: str) -> dict[str, Any] | None:
        user = self._by_email(email)
        return dict(user) if user else None

    def list_active(self, search: str | None = None, first: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        users = sorted((u for u in self.users.values() if u["is_active"]), key=lambda u: u["username"])
        if search:
            users = [u for u in users if search.lower() in u["username"].lower() or search.lower() in u["name"].lower()]
        users = users[offset:]
        return [dict(u) for u in (users if first is None else users[:first])]

    def update_profile(self, user_id: str, changes: dict[str, Any], extra_errors: dict[str, list[str]] | None = None):
        errors: dict[str, list[str]] = {}
        if "name" in changes and not (changes["name"] or "").strip():
            errors["name"] = ["This field is required."]
        if extra_errors:
            errors.update(extra_errors)
        if errors:
            raise remote("ValidationFailed", errors, False)
        user = self.users[user_id]
        previous = user["avatar"] if "avatar" in changes and changes["avatar"] != user["avatar"] else ""
        user.update({key: value or "" for key, value in changes.items()})
        return {"user": dict(user), "previous_avatar": previous}

    def delete_account(self, user_id: str, password: str, client_address: str | None = None) -> dict[str, str]:
        if self.passwords[user_id] != password:
            raise remote("ValidationFailed", {"password": ["Incorrect password."]}, False)
        user = self.users.pop(user_id)
        return {"previous_avatar": user["avatar"]}


class FakeRpc:
    """Quacks like ``gateway.rpc.RpcClient``, dispatching to in-memory services and recording calls."""

    def __init__(self, **services: Any) -> None:
        self.services = services
        self.calls: list[tuple[str, str, tuple[Any, ...], list[str] | None]] = []
        self.connected = True
        self.down: set[str] = set()
        self.slow: set[str] = set()

    async def call(
        self,
        service: str,
        method: str,
        *args: Any,
        timeout: float | None = None,
        call_id_stack: list[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        self.calls.append((service, method, args, call_id_stack))
        if service in self.slow:
            raise RpcTimeout(f"RPC {service}.{method} timed out", service=service, method=method)
        if service in self.down or service not in self.services:
            raise ServiceUnavailable(f"no service listens for {service}.{method}", service=service, method=method)
        return getattr(self.services[service], method)(*args, **kwargs)

    async def ping(self, service: str, timeout: float = 2.0) -> bool:
        return service in self.services and service not in self.down

    def methods_called(self) -> list[str]:
        return [f"{service}.{method}" for service, method, _args, _stack in self.calls]
