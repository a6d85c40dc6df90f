"""The HTTP surface of the gateway: endpoints, request formats, request-level errors, CSRF, CORS, cookies,
query limits and probes (CONTRACT §1, B1, D3, D4, D5, D6)."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import error_of

CSRF_FAILED = {"errors": [{"message": "CSRF verification failed.", "extensions": {"code": "FORBIDDEN"}}]}


@pytest.mark.parametrize("path", ["/graphql/", "/graphql"])
def test_both_spellings_answer_post_and_get_without_redirect(api, path):
    response = api.post("{ __typename }", path=path)
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}
    response = api.client.get(api.base_url + path, params={"query": "{ __typename }"}, follow_redirects=False)
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


def test_application_graphql_body(api):
    response = api.client.post(api.base_url + "/graphql/", content="{ __typename }",
                               headers={"Content-Type": "application/graphql"})
    assert response.json() == {"data": {"__typename": "Query"}}


def test_mutation_over_get_is_refused(api):
    response = api.client.get(api.base_url + "/graphql/", params={"query": "mutation { deleteToken { deleted } }"})
    assert response.status_code == 405
    assert response.json() == {"errors": [{"message": "Can only perform a mutation operation from a POST request.",
                                           "extensions": {"code": "BAD_REQUEST"}}]}


def test_batched_and_invalid_json_bodies(api):
    response = api.client.post(api.base_url + "/graphql/", json=[{"query": "{ __typename }"}])
    assert response.status_code == 400
    assert response.json() == {"errors": [{"message": "The received data is not a valid JSON query.",
                                           "extensions": {"code": "BAD_REQUEST"}}]}
    response = api.client.post(api.base_url + "/graphql/", content="{nope",
                                headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"errors": [{"message": "POST body sent invalid JSON.",
                                           "extensions": {"code": "BAD_REQUEST"}}]}


def test_parse_and_validation_errors_are_400(api):
    response = api.post("{ users { id ")
    assert response.status_code == 400
    body = response.json()
    assert "data" not in body
    assert error_of(body)["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"

    response = api.post("{ nosuch }")
    assert response.status_code == 400
    error = error_of(response.json())
    assert error["message"] == "Cannot query field 'nosuch' on type 'Query'."
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"

    response = api.post("mutation { registerUser(name: \"a\", password1: \"b\", password2: \"b\", username: \"c\") { success } }")
    assert response.status_code == 400
    assert error_of(response.json())["message"] == (
        "Field 'registerUser' argument 'email' of type 'String!' is required, but it was not provided."
    )


def test_variable_coercion_errors(api):
    response = api.post("query($u: String!) { user(userSlug: $u) { id } }", {})
    assert response.status_code == 400
    error = error_of(response.json())
    assert error["message"] == "Variable '$u' of required type 'String!' was not provided."
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


def test_errors_come_before_data(api):
    response = api.post("{ me { id } }")
    assert list(response.json()) == ["errors", "data"]


def test_csrf_endpoint_sets_the_cookie(api):
    response = api.client.get(api.base_url + "/api/csrf/")
    assert response.status_code == 200
    assert response.json() == {"SetCsrfToken": "X-CSRFToken"}
    (cookie,) = [c for c in response.headers.get_list("set-cookie") if c.startswith("csrftoken=")]
    assert re.fullmatch(r"csrftoken=\w{32}; expires=\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT; "
                        r"Max-Age=31449600; Path=/; SameSite=Lax", cookie), cookie


def test_every_graphql_response_sets_the_csrf_cookie_keeping_its_value(api):
    response = api.post("{ __typename }", cookies={"csrftoken": "a" * 32})
    (cookie,) = [c for c in response.headers.get_list("set-cookie") if c.startswith("csrftoken=")]
    assert cookie.startswith("csrftoken=" + "a" * 32 + ";")


def test_cookie_authenticated_mutations_need_the_csrf_header(api):
    user = api.new_user()
    mutation = 'mutation { updateUser(name: "Changed") { user { name } } }'
    response = api.post(mutation, cookies={"JWT": user["token"]}, csrf=False)
    assert response.status_code == 403
    assert response.json() == CSRF_FAILED
    response = api.post(mutation, cookies={"JWT": user["token"], "csrftoken": "b" * 32}, headers={"X-CSRFToken": "c" * 32})
    assert response.status_code == 403
    assert api.gql("{ me { name } }", token=user["token"])["data"]["me"]["name"] != "Changed"
    response = api.post(mutation, cookies={"JWT": user["token"], "csrftoken": "b" * 32}, headers={"X-CSRFToken": "b" * 32})
    assert response.json() == {"data": {"updateUser": {"user": {"name": "Changed"}}}}


def test_queries_and_header_authenticated_mutations_are_exempt(api):
    user = api.new_user()
    assert api.post("{ me { username } }", cookies={"JWT": user["token"]}, csrf=False).status_code == 200
    body = api.gql('mutation { updateUser(name: "Header") { user { name } } }', token=user["token"])
    assert body == {"data": {"updateUser": {"user": {"name": "Header"}}}}


def test_logout_by_cookie_is_csrf_checked_too(api):
    """D3 names no exception: logout and refresh by cookie need the header, which browsers send."""
    user = api.new_user()
    for mutation in ("mutation { deleteToken { deleted } }", "mutation { refreshToken { token } }"):
        response = api.post(mutation, cookies={"JWT": user["token"]}, csrf=False)
        assert response.status_code == 403
        assert response.json() == CSRF_FAILED


def test_cors(api):
    response = api.post("{ __typename }", headers={"Origin": "http://localhost"})
    assert response.headers["access-control-allow-origin"] == "http://localhost"
    assert response.headers["access-control-allow-credentials"] == "true"
    response = api.post("{ __typename }", headers={"Origin": "http://localhost:5173"})
    assert "access-control-allow-origin" not in response.headers
    assert response.status_code == 200
    preflight = api.client.options(api.base_url + "/graphql/", headers={
        "Origin": "http://127.0.0.1", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-csrftoken"})
    assert preflight.headers["access-control-allow-origin"] == "http://127.0.0.1"
    assert preflight.headers["access-control-allow-headers"] == (
        "accept, authorization, content-type, user-agent, x-csrftoken, x-requested-with")
    assert preflight.headers["access-control-allow-methods"] == "DELETE, GET, OPTIONS, PATCH, POST, PUT"
    assert preflight.headers["access-control-max-age"] == "86400"


def test_cookies_are_secure_behind_an_https_proxy(api):
    """D4: the trusted proxy says the request came over HTTPS."""
    response = api.post("{ __typename }", headers={"X-Forwarded-Proto": "https"})
    (cookie,) = [c for c in response.headers.get_list("set-cookie") if c.startswith("csrftoken=")]
    assert "; Secure" in cookie
    response = api.post("{ __typename }")
    (cookie,) = [c for c in response.headers.get_list("set-cookie") if c.startswith("csrftoken=")]
    assert "Secure" not in cookie


def test_graphiql_and_introspection_in_development(api):
    page = api.client.get(api.base_url + "/graphql/", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    body = api.gql("{ __schema { queryType { name } } }")
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


def test_query_limits(api):
    """D6: too deep, too large, too many fields or root fields → 400 before execution."""
    too_big = "{ __typename " + " " * 16 * 1024 + "}"
    response = api.post(too_big)
    assert response.status_code == 400
    assert error_of(response.json())["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"

    too_many_roots = "{ " + " ".join(f"a{i}: __typename" for i in range(11)) + " }"
    response = api.post(too_many_roots)
    assert response.status_code == 400
    assert error_of(response.json())["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"

    # 501 fields reached through a fragment spread twice: counted after expansion
    fragment = "fragment F on UserType { " + " ".join(f"f{i}: id" for i in range(251)) + " }"
    response = api.post("{ users { ...F } me { ...F } } " + fragment)
    assert response.status_code == 400
    assert error_of(response.json())["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"

    many = " ".join(f"f{i}: id" for i in range(501))
    response = api.post("{ users { " + many + " } }")
    assert response.status_code == 400
    assert error_of(response.json())["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_depth_limit(production_api):
    assert production_api.gql("{ authStatus { isAuthenticated } }")["data"]
    response = production_api.post("{ authStatus { user { id } } }")
    assert response.status_code == 400
    body = response.json()
    assert "data" not in body
    assert error_of(body)["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_graphiql_and_introspection_off_in_production(production_api):
    """D5: no GraphiQL page and no __schema/__type; __typename still works."""
    page = production_api.client.get(production_api.base_url + "/graphql/", headers={"Accept": "text/html"})
    assert "graphiql" not in page.text.lower()
    for query in ("{ __schema { queryType { name } } }", '{ __type(name: "Query") { name } }'):
        response = production_api.post(query)
        assert response.status_code == 400
        assert error_of(response.json())["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert production_api.gql("{ __typename }") == {"data": {"__typename": "Query"}}


def test_graphiqls_introspection_query_passes_the_limits_in_development(api):
    from graphql import get_introspection_query

    body = api.gql(get_introspection_query())
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


def test_reference_client_operations_pass_the_limits(api):
    user = api.new_user()
    query = """query UserWithRooms($userSlug: String!) {
      user(userSlug: $userSlug) { id username name avatar bio __typename }
      authStatus { user { id name username avatar __typename } isAuthenticated __typename } }"""
    body = api.gql(query, {"userSlug": user["username"]}, token=user["token"])
    assert "errors" not in body


def test_probes(api):
    assert api.client.get(api.base_url + "/healthz").status_code == 200
    assert api.client.get(api.base_url + "/readyz").status_code == 200
