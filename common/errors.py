"""Domain errors every service may raise; the gateway maps them onto the contract's error codes.

Each error keeps its payload in ``args`` so nameko's serialisation (``exc_type`` + ``exc_args``) carries
it to the caller intact.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of the errors a caller is expected to handle."""


class NotFound(DomainError):
    """``NotFound("Room not found")``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PermissionDenied(DomainError):
    def __init__(self, message: str = "Permission denied") -> None:
        super().__init__(message)
        self.message = message


def _flag(value: bool | str) -> bool:
    # nameko serialises every exception argument that is not a string or an iterable with ``str()``,
    # so a ``raw`` flag comes back from the wire as "True" / "False".
    return value is True or value == "True"


class FieldErrors(DomainError):
    """Field -> messages map. ``raw`` marks the contract's dict-repr style instead of "Invalid data";
    rebuilt from nameko's ``exc_args`` it may arrive as "True" / "False" and is read back as a bool."""

    def __init__(self, errors: dict[str, list[str]], raw: bool | str = False) -> None:
        raw = _flag(raw)
        super().__init__(errors, raw)
        self.errors = errors
        self.raw = raw


class ValidationFailed(FieldErrors):
    """Input the contract rejects, with the messages of each field."""


class Conflict(FieldErrors):
    """A uniqueness race lost to a concurrent writer; carries the error a sequential duplicate would
    have got, in the same style (``raw`` or form)."""


class AuthenticationFailed(DomainError):
    def __init__(self, message: str = "Please enter valid credentials") -> None:
        super().__init__(message)
        self.message = message


class RateLimited(DomainError):
    def __init__(self, message: str = "Too many login attempts. Please try again later.") -> None:
        super().__init__(message)
        self.message = message


EXPECTED = (NotFound, PermissionDenied, ValidationFailed, Conflict, AuthenticationFailed, RateLimited)
"""Pass as ``@rpc(expected_exceptions=EXPECTED)`` so these log as warnings, not tracebacks."""
