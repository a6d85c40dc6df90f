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


class ValidationFailed(DomainError):
    """Field -> messages map. ``raw`` marks the contract's dict-repr style instead of "Invalid data"."""

    def __init__(self, errors: dict[str, list[str]], raw: bool = False) -> None:
        super().__init__(errors, raw)
        self.errors = errors
        self.raw = raw


class Conflict(DomainError):
    """A uniqueness race lost to a concurrent writer; carries the error a sequential duplicate would
    have got, in the same style (``raw`` or form)."""

    def __init__(self, errors: dict[str, list[str]], raw: bool = False) -> None:
        super().__init__(errors, raw)
        self.errors = errors
        self.raw = raw


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
