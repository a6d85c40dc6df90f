"""The ``/graphql/`` endpoint (§1.2): request decoding, CSRF (D3), status codes, cookies.

HTTP requests are handled here end to end (strawberry's own HTTP handling answers with other strings
and statuses than the contract's); WebSocket upgrades go to strawberry's subscription machinery.

Order of checks for an HTTP request:

1. method (GET/POST, else 405); GraphiQL for a browser GET when enabled (D5);
2. multipart: the CSRF check (D3) before the body is read;
3. body size (413 above ``MAX_BODY_BYTES``) and decoding (400 with the §1.2 strings);
4. document size (D6), then the operation's type: a mutation over GET is 405, a subscription over
   HTTP 400, and a cookie-authenticated mutation (a ``JWT`` cookie, no ``Authorization: JWT`` header)
   must pass the CSRF check (403) unless it selects only the credential-exempt auth fields;
5. execution: 400 with ``errors`` only when it did not run (parse, validation, variable coercion),
   else 200 with ``errors`` (if any) before ``data``.

Every response carries the ``csrftoken`` cookie (§1.2, §9.2), rotated when a login or refresh asked.
"""

from __future__ import annotations

import functools

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import OperationType as GraphQLOperationType
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from gateway.auth import cookies, csrf
from gateway.auth.credentials import header_token
from gateway.graphql import errors
from gateway.graphql.context import GraphQLContext, new_call_id
from gateway.graphql.limits import document_size_error
from gateway.graphql.parsing import selected_operation, try_parse
from gateway.graphql.schema import GatewaySchema
from gateway.logging import call_id_var, log_graphql_request
from gateway.proxy import is_secure
from gateway.settings import Settings

log = logging.getLogger("gateway.graphql")

INVALID_JSON = "POST body sent invalid JSON."
NOT_A_QUERY = "The received data is not a valid JSON query."
MUTATION_OVER_GET = "Can only perform a mutation operation from a POST request."
SUBSCRIPTION_OVER_HTTP = "Subscriptions are only available over WebSocket."
MISSING_QUERY = "Must provide query string."
INVALID_VARIABLES = "Variables are invalid JSON."
INVALID_OPERATION_NAME = "The operation name must be a string."
INVALID_MULTIPART = "Invalid multipart request."
MISSING_FILES = "File(s) missing in form data."
UNSUPPORTED_CONTENT_TYPE = "Unsupported content type."
BODY_TOO_LARGE = "Request body too large."
METHOD_NOT_ALLOWED = "GraphQL only supports GET and POST requests."

GRAPHIQL_FETCHER_HEADERS = "headers: defaultHeaders,"
GRAPHIQL_FRESH_CSRF = """
        fetch: (url, init) => fetch(url, {
          ...init,
          headers: { ...(init || {}).headers, "x-csrftoken": Cookies.get("csrftoken") || "" },
        }),"""

MAX_MULTIPART_FILES = 10
MAX_MULTIPART_FIELDS = 100


class RequestError(Exception):
    """A request refused before execution: HTTP ``status`` with a one-error body."""

    def __init__(self, status: int, message: str, code: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}


def _bad_request(message: str) -> RequestError:
    return RequestError(400, message, errors.BAD_REQUEST)


@dataclass
class GraphQLRequest:
    """A decoded GraphQL request."""

    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    multipart: bool = False
    document_operation_name: str | None = None  # the executed operation's own name, for the log


# Bodies are trees of plain values (graphql-core's results, our error dicts), never cyclic: skipping
# the cycle check takes about a third off encoding a large response.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def encode_json(body: dict[str, Any]) -> bytes:
    """``body`` as compact UTF-8 JSON: orjson (an order of magnitude faster on large lists) writes the
    same bytes as the ``json`` encoder for strings, integers and containers (a small float may be
    spelt ``1e-7`` rather than ``1e-07``, the same number); what it refuses (integers beyond 64 bits,
    other types) goes through ``json`` as before."""
    try:
        return orjson.dumps(body)
    except TypeError:
        return _ENCODER.encode(body).encode("utf-8")


def json_response(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    """A compact JSON response."""
    return Response(encode_json(body), status_code=status, media_type="application/json", headers=headers)


def set_csrf_cookie(response: Response, connection: HTTPConnection, settings: Settings, rotate: bool) -> None:
    """Attach the ``csrftoken`` cookie: the request's own value, or a new one when rotating or missing."""
    token = csrf.new_token() if rotate else csrf.cookie_token(connection.cookies)
    response.headers.append(
        "set-cookie",
        cookies.csrf_cookie(token, now=int(time.time()), secure=is_secure(connection, settings)),
    )


class GraphQLView(GraphQL):
    """The strawberry ASGI view with the contract's HTTP behaviour."""

    def __init__(self, schema: GatewaySchema, settings: Settings) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            allow_queries_via_get=True,
            multipart_uploads_enabled=True,
        )
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            response = await self.handle_http(Request(scope, receive))
            await response(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    # --- context --------------------------------------------------------------------------------

    def make_context(self, connection: HTTPConnection, call_id: str | None = None) -> GraphQLContext:
        """A fresh context for one request (or one subscription connection)."""
        state = connection.app.state if "app" in connection.scope else None
        return GraphQLContext(
            settings=self.settings,
            rpc=getattr(state, "rpc", None),
            connection=connection,
            avatar_store=state.avatar_store if state is not None else None,  # type: ignore[arg-type]
            call_id=call_id,
        )

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> GraphQLContext:  # type: ignore[override]
        """Context of the WebSocket path (subscriptions)."""
        return self.make_context(request)

    # --- HTTP -------------------------------------------------------------------------------------

    async def handle_http(self, request: Request) -> Response:
        """Answer one HTTP request to ``/graphql/``."""
        started = time.perf_counter()
        call_id = new_call_id()
        token = call_id_var.set(call_id)
        operation: str | None = None
        rotate = False
        error_codes: list[str] = []
        form: FormData | None = None
        rpc_calls = 0
        try:
            try:
                if request.method not in ("GET", "POST"):
                    raise RequestError(405, METHOD_NOT_ALLOWED, errors.BAD_REQUEST, {"Allow": "GET, POST"})
                if self._wants_graphiql(request):
                    response: Response = HTMLResponse(self.graphql_ide_html)
                else:
                    data, form = await self._decode(request)
                    operation = data.operation_name
                    response, context, error_codes = await self._execute(request, data, call_id)
                    operation = data.operation_name or data.document_operation_name
                    rotate = context.response.rotate_csrf
                    rpc_calls = context.rpc_calls
                    for value in context.response.cookies:
                        response.headers.append("set-cookie", value)
            except RequestError as exc:
                response = json_response(errors.error_body(exc.message, exc.code), exc.status, exc.headers)
                error_codes = [exc.code]
            except Exception:  # C16: nothing unexpected leaks, whatever broke
                log.exception("unhandled error in the GraphQL view")
                response = json_response(errors.error_body(errors.INTERNAL_ERROR, errors.INTERNAL_SERVER_ERROR), 500)
                error_codes = [errors.INTERNAL_SERVER_ERROR]
            finally:
                if form is not None:
                    await form.close()
            set_csrf_cookie(response, request, self.settings, rotate)
            log_graphql_request(
                call_id=call_id,
                operation=operation,
                status=response.status_code,
                duration_ms=(time.perf_counter() - started) * 1000,
                error_codes=error_codes,
                rpc_calls=rpc_calls,
            )
            return response
        finally:
            call_id_var.reset(token)

    def _wants_graphiql(self, request: Request) -> bool:
        return (
            self.settings.graphiql
            and request.method == "GET"
            and "query" not in request.query_params
            and "text/html" in request.headers.get("accept", "")
        )

    @functools.cached_property
    def graphql_ide_html(self) -> str:
        """Strawberry's GraphiQL, sending the current ``csrftoken`` cookie with every request: the stock
        page reads it once at load, and tokenAuth rotates it, so mutations after a login would fail D3."""
        return super().graphql_ide_html.replace(GRAPHIQL_FETCHER_HEADERS, GRAPHIQL_FETCHER_HEADERS + GRAPHIQL_FRESH_CSRF, 1)

    async def _decode(self, request: Request) -> tuple[GraphQLRequest, FormData | None]:
        if request.method == "GET":
            params = request.query_params
            return self._request_from_mapping(
                {
                    "query": params.get("query"),
                    "variables": params.get("variables"),
                    "operationName": params.get("operationName"),
                }
            ), None
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "multipart/form-data":
            # D3: every multipart request, however authenticated; checked before the body is read.
            if not csrf.passes(request.cookies, request.headers):
                raise RequestError(403, csrf.CSRF_FAILED, errors.FORBIDDEN)
            return await self._decode_multipart(request)
        body = await self._read_body(request)
        if content_type in ("application/json", ""):
            return self._request_from_mapping(self._json_object(body)), None
        if content_type == "application/graphql":
            params = request.query_params
            return self._request_from_mapping(
                {
                    "query": self._text(body),
                    "variables": params.get("variables"),
                    "operationName": params.get("operationName"),
                }
            ), None
        if content_type == "application/x-www-form-urlencoded":
            form = await request.form()
            return self._request_from_mapping(
                {
                    "query": form.get("query"),
                    "variables": form.get("variables"),
                    "operationName": form.get("operationName"),
                }
            ), None
        raise _bad_request(UNSUPPORTED_CONTENT_TYPE)

    async def _read_body(self, request: Request) -> bytes:
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise RequestError(413, BODY_TOO_LARGE, errors.BAD_REQUEST)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RequestError(413, BODY_TOO_LARGE, errors.BAD_REQUEST)
            chunks.append(chunk)
        body = b"".join(chunks)
        request._body = body  # later readers (form parsing) reuse it instead of the spent stream
        return body

    @staticmethod
    def _text(body: bytes) -> str:
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise _bad_request(INVALID_JSON) from None

    def _json_object(self, body: bytes | str) -> dict[str, Any]:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            raise _bad_request(INVALID_JSON) from None
        if not isinstance(data, dict):  # there is no batching
            raise _bad_request(NOT_A_QUERY)
        return data

    async def _decode_multipart(self, request: Request) -> tuple[GraphQLRequest, FormData]:
        await self._read_body(request)
        try:
            form = await request.form(max_files=MAX_MULTIPART_FILES, max_fields=MAX_MULTIPART_FIELDS)
        except (MultiPartException, StarletteHTTPException):
            raise _bad_request(INVALID_MULTIPART) from None
        try:
            operations_part = form.get("operations")
            map_part = form.get("map", "{}")
            if not isinstance(operations_part, str) or not isinstance(map_part, str):
                raise _bad_request(INVALID_MULTIPART)
            operations = self._json_object(operations_part)
            try:
                files_map = json.loads(map_part)
            except ValueError:
                raise _bad_request(INVALID_JSON) from None
            _place_files(operations, files_map, form)
            data = self._request_from_mapping(operations)
        except BaseException:
            await form.close()
            raise
        data.multipart = True
        return data, form

    def _request_from_mapping(self, data: dict[str, Any]) -> GraphQLRequest:
        query = data.get("query")
        if not isinstance(query, str) or not query.strip():
            raise _bad_request(MISSING_QUERY)
        variables = data.get("variables")
        if isinstance(variables, str):
            try:
                variables = json.loads(variables) if variables.strip() else None
            except ValueError:
                raise _bad_request(INVALID_VARIABLES) from None
        if variables is not None and not isinstance(variables, dict):
            raise _bad_request(INVALID_VARIABLES)
        operation_name = data.get("operationName") or None
        if operation_name is not None and not isinstance(operation_name, str):
            raise _bad_request(INVALID_OPERATION_NAME)
        return GraphQLRequest(query=query, variables=variables, operation_name=operation_name)

    def _check_operation(self, request: Request, data: GraphQLRequest) -> None:
        size_error = document_size_error(data.query, self.settings.max_document_bytes)
        if size_error is not None:
            raise RequestError(400, size_error.message, errors.GRAPHQL_VALIDATION_FAILED)
        document = try_parse(data.query)
        operation = selected_operation(document, data.operation_name)
        if operation is None:
            return  # unparsable or ambiguous: execution reports why
        data.document_operation_name = operation.name.value if operation.name else None
        if operation.operation is GraphQLOperationType.SUBSCRIPTION:
            raise _bad_request(SUBSCRIPTION_OVER_HTTP)
        if operation.operation is GraphQLOperationType.MUTATION:
            if request.method == "GET":
                raise RequestError(405, MUTATION_OVER_GET, errors.BAD_REQUEST, {"Allow": "POST"})
            assert document is not None
            if data.multipart or not _cookie_authenticated(request):
                return
            if not csrf.passes(request.cookies, request.headers):
                raise RequestError(403, csrf.CSRF_FAILED, errors.FORBIDDEN)

    async def _execute(
        self, request: Request, data: GraphQLRequest, call_id: str
    ) -> tuple[Response, GraphQLContext, list[str]]:
        self._check_operation(request, data)
        context = self.make_context(request, call_id)
        allowed = {OperationType.QUERY} if request.method == "GET" else {OperationType.QUERY, OperationType.MUTATION}
        try:
            result = await self.schema.execute(
                data.query,
                variable_values=data.variables,
                context_value=context,
                operation_name=data.operation_name,
                allowed_operation_types=allowed,
            )
        except CannotGetOperationTypeError as exc:
            raise _bad_request(exc.as_http_error_reason()) from None
        except InvalidOperationTypeError as exc:
            if exc.operation_type is OperationType.MUTATION:
                raise RequestError(405, MUTATION_OVER_GET, errors.BAD_REQUEST, {"Allow": "POST"}) from None
            raise _bad_request(SUBSCRIPTION_OVER_HTTP) from None
        body: dict[str, Any] = {}
        if result.errors:
            body["errors"] = [errors.format_error(error) for error in result.errors]
        executed = result.data is not None
        if executed:
            body["data"] = result.data
        codes = [str(error["extensions"]["code"]) for error in body.get("errors", [])]
        return json_response(body, 200 if executed else 400), context, codes


def _cookie_authenticated(request: Request) -> bool:
    """A ``JWT`` cookie and no ``Authorization: JWT`` header: the cookie is the credential (D3)."""
    return cookies.JWT_COOKIE in request.cookies and header_token(request) is None


def _place_files(operations: dict[str, Any], files_map: Any, form: FormData) -> None:
    """Put each file part where the multipart request spec's ``map`` says (``variables.*`` only)."""
    if not isinstance(files_map, dict):
        raise _bad_request(INVALID_MULTIPART)
    for part_name, paths in files_map.items():
        upload = form.get(part_name)
        if not isinstance(upload, UploadFile):
            raise _bad_request(MISSING_FILES)
        if not isinstance(paths, list):
            raise _bad_request(INVALID_MULTIPART)
        for path in paths:
            if not isinstance(path, str) or not path.startswith("variables."):
                raise _bad_request(INVALID_MULTIPART)
            *parents, last = path.split(".")
            if operations.get("variables") is None:
                operations["variables"] = {}
            target: Any = operations
            try:
                for key in parents:
                    target = target[int(key)] if isinstance(target, list) else target[key]
                if isinstance(target, list):
                    target[int(last)] = upload
                elif isinstance(target, dict):
                    target[last] = upload
                else:
                    raise _bad_request(INVALID_MULTIPART)
            except (KeyError, IndexError, ValueError, TypeError):
                raise _bad_request(INVALID_MULTIPART) from None
