"""The one place where failures become the contract's GraphQL errors (§4.3, §7, B1, C16, §16).

* Resolvers raise :class:`GatewayError` (built by the helpers below, or by :func:`from_rpc_error` from
  an RPC failure); its message and ``extensions`` are exactly what the client sees.
* :class:`ErrorCodes` is a schema extension that gives every other error its ``extensions.code`` by the
  phase it came from: parse → ``GRAPHQL_PARSE_FAILED``, validation → ``GRAPHQL_VALIDATION_FAILED``,
  variable coercion → ``BAD_USER_INPUT``; anything unexpected becomes ``Internal server error`` +
  ``INTERNAL_SERVER_ERROR`` and is logged with its traceback, never shown.
* :func:`format_error` is the transports' last line of defence: an error still lacking a code is masked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from gateway.rpc import RemoteError, RpcError

log = logging.getLogger("gateway.graphql")

# --- codes (§4.3) -------------------------------------------------------------------------------

BAD_USER_INPUT = "BAD_USER_INPUT"
UNAUTHENTICATED = "UNAUTHENTICATED"
NOT_FOUND = "NOT_FOUND"
PERMISSION_DENIED = "PERMISSION_DENIED"
CONFLICT = "CONFLICT"
RATE_LIMITED = "RATE_LIMITED"
FORBIDDEN = "FORBIDDEN"
BAD_REQUEST = "BAD_REQUEST"
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"

# --- messages -----------------------------------------------------------------------------------

INVALID_DATA = "Invalid data"
LOGIN_REQUIRED = "You do not have permission to perform this action"
INTERNAL_ERROR = "Internal server error"
SERVICE_UNAVAILABLE = "Service unavailable"
"""A service that times out or is not running: a clear error instead of a hang. The code stays
``INTERNAL_SERVER_ERROR`` because the contract's code list (§4.3) has no other fitting code."""


class GatewayError(Exception):
    """An error whose ``message`` and ``extensions`` (``code`` first) are safe to show as they are.

    graphql-core copies ``extensions`` from the original error when it locates it, so raising one in
    a resolver yields ``{"message", "locations", "path", "extensions"}`` with this content.
    """

    def __init__(self, message: str, code: str, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions: dict[str, Any] = {"code": code, **extensions}

    @property
    def code(self) -> str:
        """``extensions.code``."""
        return str(self.extensions["code"])


def invalid_data(errors: dict[str, list[str]], code: str = BAD_USER_INPUT) -> GatewayError:
    """Form style: ``Invalid data`` + ``extensions.errors``."""
    return GatewayError(INVALID_DATA, code, errors=errors)


def raw_error(errors: dict[str, list[str]], code: str = BAD_USER_INPUT) -> GatewayError:
    """Raw style: the Python ``repr`` of the map as the message and no ``extensions.errors`` (§16.1)."""
    return GatewayError(repr(errors), code)


def login_required() -> GatewayError:
    """§4.1: a login-required field called anonymously."""
    return GatewayError(LOGIN_REQUIRED, UNAUTHENTICATED)


def unauthenticated(message: str) -> GatewayError:
    """A credential error of §7.2 on an ordinary field."""
    return GatewayError(message, UNAUTHENTICATED)


def internal_error() -> GatewayError:
    """C16: what the client sees of anything unexpected."""
    return GatewayError(INTERNAL_ERROR, INTERNAL_SERVER_ERROR)


def _field_map(value: Any) -> dict[str, list[str]] | None:
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {key: [str(m) for m in (msgs if isinstance(msgs, list) else [msgs])] for key, msgs in value.items()}
    return None


def _flag(value: Any) -> bool:
    # nameko serialises exception arguments that are not strings or iterables with ``str()``, so a
    # ``raw=False`` argument arrives as the string "False".
    return value is True or (isinstance(value, str) and value.lower() == "true")


def from_remote(error: RemoteError) -> GatewayError:
    """Map a service's domain error (``exc_type`` + ``exc_args`` of ``common.errors``) onto the contract.

    Unknown types (a bug in a service) are logged and become ``Internal server error``.
    """
    args = list(error.exc_args)
    kind = error.exc_type
    if kind in ("NotFound", "PermissionDenied", "AuthenticationFailed", "RateLimited") and args:
        code = {
            "NotFound": NOT_FOUND,
            "PermissionDenied": PERMISSION_DENIED,
            "AuthenticationFailed": UNAUTHENTICATED,
            "RateLimited": RATE_LIMITED,
        }[kind]
        return GatewayError(str(args[0]), code)
    if kind in ("ValidationFailed", "Conflict") and args:
        errors = _field_map(args[0])
        if errors is not None:
            raw = _flag(args[1]) if len(args) > 1 else False
            code = BAD_USER_INPUT if kind == "ValidationFailed" else CONFLICT
            return raw_error(errors, code) if raw else invalid_data(errors, code)
    log.error(
        "unexpected remote error %s from %s.%s: %s",
        kind,
        error.service,
        error.method,
        error.value,
        extra={"call_id": error.call_id},
    )
    return internal_error()


def from_rpc_error(error: RpcError) -> GatewayError:
    """Map any RPC failure: domain errors via :func:`from_remote`; timeouts, unreachable services and a
    lost broker become ``Service unavailable`` (already logged by the RPC client)."""
    if isinstance(error, RemoteError):
        return from_remote(error)
    return GatewayError(SERVICE_UNAVAILABLE, INTERNAL_SERVER_ERROR)


# --- result formatting ----------------------------------------------------------------------------

PHASE_PARSE = "parse"
PHASE_VALIDATE = "validate"
PHASE_EXECUTE = "execute"


def _has_trusted_code(error: GraphQLError) -> bool:
    # Codes set by graphql-core never exist; a code comes from us (GatewayError, a limit rule, a
    # request-level error). A third-party exception with an ``extensions`` attribute is not trusted.
    original = error.original_error
    return bool(error.extensions and error.extensions.get("code")) and (
        original is None or isinstance(original, GatewayError)
    )


def with_code(error: GraphQLError, phase: str) -> GraphQLError:
    """The client-facing version of ``error`` raised during ``phase``, always with ``extensions.code``."""
    if _has_trusted_code(error):
        return error
    if phase == PHASE_PARSE:
        code = GRAPHQL_PARSE_FAILED
    elif phase == PHASE_VALIDATE:
        code = GRAPHQL_VALIDATION_FAILED
    elif error.path is None:
        # Raised before any resolver ran: variable coercion (§1.2). The message is graphql-core's (or
        # a scalar's GraphQLError), never an arbitrary exception's text.
        code = BAD_USER_INPUT
    else:
        return _masked(error)
    return GraphQLError(error.message, error.nodes, error.source, error.positions, error.path, None, {"code": code})


def _masked(error: GraphQLError) -> GraphQLError:
    original = error.original_error or error
    log.error(
        "unexpected error resolving %s: %s",
        ".".join(str(p) for p in error.path or ()) or "(operation)",
        type(original).__name__,
        exc_info=(type(original), original, original.__traceback__),
    )
    return GraphQLError(
        INTERNAL_ERROR,
        error.nodes,
        error.source,
        error.positions,
        error.path,
        None,
        {"code": INTERNAL_SERVER_ERROR},
    )


def format_error(error: GraphQLError) -> dict[str, Any]:
    """The wire form ``{"message", "locations", "path", "extensions"}`` of a coded error; anything
    reaching here without a trusted code is masked (C16)."""
    if not _has_trusted_code(error):
        error = _masked(error)
    return dict(error.formatted)


def error_body(message: str, code: str) -> dict[str, Any]:
    """A request-level error body: ``{"errors": [{"message", "extensions": {"code"}}]}``."""
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


class ErrorCodes(SchemaExtension):
    """Gives every error of an operation its contract code before any transport formats it."""

    def __init__(self) -> None:
        self.phase = PHASE_PARSE

    def on_parse(self) -> Iterator[None]:
        self.phase = PHASE_PARSE
        yield

    def on_validate(self) -> Iterator[None]:
        self.phase = PHASE_VALIDATE
        yield

    def on_execute(self) -> Iterator[None]:
        self.phase = PHASE_EXECUTE
        yield

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [with_code(error, self.phase) for error in result.errors]
