"""Error mapping (CONTRACT §4.3, §7, B1, C16, §16)."""

from __future__ import annotations

import logging

import pytest
from graphql import GraphQLError, Source

from gateway.graphql import errors
from gateway.rpc import BrokerUnavailable, RemoteError, RpcTimeout, ServiceUnavailable


def remote(exc_type: str, *args) -> RemoteError:
    return RemoteError(exc_type, "value", list(args), f"common.errors.{exc_type}", service="users", method="m")


@pytest.mark.parametrize(
    "exc_type, message, code",
    [
        ("NotFound", "Room not found", "NOT_FOUND"),
        ("NotFound", "User not found", "NOT_FOUND"),
        ("PermissionDenied", "Permission denied", "PERMISSION_DENIED"),
        ("AuthenticationFailed", "Please enter valid credentials", "UNAUTHENTICATED"),
        ("RateLimited", "Too many login attempts. Please try again later.", "RATE_LIMITED"),
    ],
)
def test_domain_errors(exc_type, message, code):
    error = errors.from_remote(remote(exc_type, message))
    assert (error.message, error.extensions) == (message, {"code": code})


def test_form_error():
    error = errors.from_remote(remote("ValidationFailed", {"name": ["This field is required."]}, False))
    assert error.message == "Invalid data"
    assert error.extensions == {"code": "BAD_USER_INPUT", "errors": {"name": ["This field is required."]}}


def test_raw_error_is_the_python_repr_without_errors_key():
    error = errors.from_remote(
        remote("ValidationFailed", {"username": ["User with this Username already exists."]}, True)
    )
    assert error.message == "{'username': ['User with this Username already exists.']}"
    assert error.extensions == {"code": "BAD_USER_INPUT"}


def test_raw_error_keeps_typographic_quotes_and_key_order():
    errors_map = {"__all__": ["Topic name must consist of letters only."], "name": ["It\u2019s \u201cx\u201d"]}
    error = errors.from_remote(remote("ValidationFailed", errors_map, True))
    assert (
        error.message
        == "{'__all__': ['Topic name must consist of letters only.'], 'name': ['It\u2019s \u201cx\u201d']}"
    )


def test_conflicts():
    form = errors.from_remote(remote("Conflict", {"email": ["User with this Email already exists."]}, False))
    assert form.message == "Invalid data"
    assert form.extensions == {"code": "CONFLICT", "errors": {"email": ["User with this Email already exists."]}}
    raw = errors.from_remote(remote("Conflict", {"__all__": ["You already have a room with this name."]}, True))
    assert raw.message == "{'__all__': ['You already have a room with this name.']}"
    assert raw.extensions == {"code": "CONFLICT"}


@pytest.mark.parametrize("raw, expected_raw", [("False", False), ("True", True), (False, False), (True, True)])
def test_raw_flag_as_nameko_serialises_it(raw, expected_raw):
    """nameko sends non-string, non-iterable exception arguments as ``str()``: False arrives as "False"."""
    error = errors.from_remote(remote("ValidationFailed", {"name": ["x"]}, raw))
    assert (error.message != "Invalid data") is expected_raw


def test_validation_failed_without_raw_flag_is_form_style():
    error = errors.from_remote(remote("ValidationFailed", {"first": ["x"]}))
    assert error.extensions["errors"] == {"first": ["x"]}


def test_unknown_remote_error_is_masked_and_logged(caplog):
    with caplog.at_level(logging.ERROR, logger="gateway.graphql"):
        error = errors.from_remote(remote("KeyError", "secret internals"))
    assert (error.message, error.extensions) == ("Internal server error", {"code": "INTERNAL_SERVER_ERROR"})
    assert "KeyError" in caplog.text


@pytest.mark.parametrize("failure", [RpcTimeout("t"), ServiceUnavailable("s"), BrokerUnavailable("b")])
def test_unavailable_services(failure):
    error = errors.from_rpc_error(failure)
    assert (error.message, error.extensions) == ("Service unavailable", {"code": "INTERNAL_SERVER_ERROR"})


def test_helpers():
    assert errors.login_required().message == "You do not have permission to perform this action"
    assert errors.login_required().extensions == {"code": "UNAUTHENTICATED"}
    assert errors.invalid_data({"a": ["b"]}).extensions == {"code": "BAD_USER_INPUT", "errors": {"a": ["b"]}}
    assert errors.error_body("CSRF verification failed.", "FORBIDDEN") == {
        "errors": [{"message": "CSRF verification failed.", "extensions": {"code": "FORBIDDEN"}}]
    }


def located(original: Exception | None, path=("me",), message="boom") -> GraphQLError:
    return GraphQLError(message, None, Source("{ me }"), [2], list(path) if path else None, original)


def test_phase_codes():
    parse_error = errors.with_code(located(None, path=None, message="Syntax Error: x"), errors.PHASE_PARSE)
    assert parse_error.extensions == {"code": "GRAPHQL_PARSE_FAILED"}
    validation = errors.with_code(located(ValueError("x"), path=None, message="Cannot query"), errors.PHASE_VALIDATE)
    assert validation.extensions == {"code": "GRAPHQL_VALIDATION_FAILED"}
    assert validation.message == "Cannot query"
    coercion = errors.with_code(located(None, path=None, message="Variable '$x' ..."), errors.PHASE_EXECUTE)
    assert coercion.extensions == {"code": "BAD_USER_INPUT"}


def test_gateway_errors_keep_their_code():
    raised = errors.GatewayError("User not found", "NOT_FOUND")
    error = GraphQLError(raised.message, None, None, None, ["user"], raised)
    assert errors.with_code(error, errors.PHASE_EXECUTE).extensions == {"code": "NOT_FOUND"}
    assert errors.format_error(error) == {
        "message": "User not found",
        "path": ["user"],
        "extensions": {"code": "NOT_FOUND"},
    }


def test_unexpected_errors_leak_nothing(caplog):
    error = located(RuntimeError("password=hunter2 at /srv/app.py"), message="password=hunter2 at /srv/app.py")
    with caplog.at_level(logging.ERROR, logger="gateway.graphql"):
        coded = errors.with_code(error, errors.PHASE_EXECUTE)
    assert coded.message == "Internal server error"
    assert coded.extensions == {"code": "INTERNAL_SERVER_ERROR"}
    assert coded.path == ["me"]
    formatted = errors.format_error(coded)
    assert "hunter2" not in str(formatted)
    assert "RuntimeError" in caplog.text  # the traceback goes to the log


def test_format_error_masks_anything_without_a_trusted_code():
    class Sneaky(Exception):
        extensions = {"code": "NOT_FOUND"}  # noqa: RUF012

    error = located(Sneaky("internal detail"), message="internal detail")
    assert errors.format_error(error)["message"] == "Internal server error"
    assert errors.format_error(located(None, message="no code"))["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
