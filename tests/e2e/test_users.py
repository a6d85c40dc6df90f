"""The users context through the gateway: registration, profiles, avatars, account deletion and the
user queries (CONTRACT §§5, 6.2, 8.2, 8.3, 13; B2, B4, C14, D1, D2, D10, D11)."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import PASSWORD, error_of, image_bytes, unique

REGISTER = """mutation($u: String!, $n: String!, $e: String!, $p1: String!, $p2: String!) {
  registerUser(username: $u, name: $n, email: $e, password1: $p1, password2: $p2) { success user { id username name } } }"""
UPDATE = """mutation($name: String, $bio: String, $remove: Boolean) {
  updateUser(name: $name, bio: $bio, removeAvatar: $remove) { user { id username name bio avatar } } }"""
LOGIN_REQUIRED = "You do not have permission to perform this action"


def register(api, username=None, name="Some One", email=None, password1=PASSWORD, password2=None):
    username = username if username is not None else unique()
    email = email if email is not None else f"{unique()}@example.com"
    return api.gql(REGISTER, {"u": username, "n": name, "e": email, "p1": password1,
                              "p2": password1 if password2 is None else password2})


def form_errors(body):
    error = error_of(body)
    assert error["message"] == "Invalid data", body
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    return error["extensions"]["errors"]


def test_register_user(api):
    """§12.5 and §6.2: success, a slugified username, no login."""
    username = unique("New")
    response = api.post(REGISTER, {"u": username, "n": "New User", "e": f"{username}@email.com",
                                   "p1": "securepassword123", "p2": "securepassword123"})
    body = response.json()
    assert "errors" not in body
    result = body["data"]["registerUser"]
    assert result["success"] is True
    assert result["user"]["username"] == username.lower()
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", result["user"]["id"])
    assert not [c for c in response.headers.get_list("set-cookie") if c.startswith("JWT=")]
    assert api.gql("query($u: String!) { user(userSlug: $u) { name } }", {"u": username.lower()})["data"] == {
        "user": {"name": "New User"}
    }


@pytest.mark.parametrize("typed, stored", [("a--b", "a-b"), ("_x_", "x")])
def test_usernames_are_slugified(api, typed, stored):
    suffix = unique("")
    body = register(api, username=typed.replace("a", "a" + suffix, 1).replace("x", "x" + suffix, 1))
    username = body["data"]["registerUser"]["user"]["username"]
    assert username == stored.replace("a", "a" + suffix, 1).replace("x", "x" + suffix, 1)


def test_registration_form_errors_in_contract_order(api):
    body = register(api, username="John Doe", name="   ", email="not-an-email", password1="", password2="")
    errors = form_errors(body)
    assert list(errors) == ["username", "name", "email", "password1", "password2"]
    assert errors["username"] == ["Enter a valid “slug” consisting of letters, numbers, underscores or hyphens."]
    assert errors["name"] == ["This field is required."]
    assert errors["email"] == ["Enter a valid email address."]
    assert errors["password1"] == ["This field is required."]
    assert errors["password2"] == ["This field is required."]


def test_password_mismatch_is_reported_alone(api):
    """§12.6."""
    errors = form_errors(register(api, password1="1qwerty23", password2="4asdfgh56"))
    assert errors == {"password2": ["The two password fields didn’t match."]}


@pytest.mark.parametrize(
    "username, email, password, expected",
    [
        (None, None, "123", ["This password is too short. It must contain at least 8 characters.",
                             "This password is too common.", "This password is entirely numeric."]),
        ("superman", None, "superman1", ["The password is too similar to the username.", "This password is too common."]),
        (None, "johnsmith@x.com", "johnsmith", ["The password is too similar to the email."]),
    ],
)
def test_password_validators(api, username, email, password, expected):
    errors = form_errors(register(api, username=username or unique(), email=email or f"{unique()}@example.com",
                                  password1=password))
    assert errors == {"password2": expected}


def test_lengths_are_enforced(api):
    errors = form_errors(register(api, username="a" * 201, name="n" * 201))
    assert errors["username"] == ["Ensure this value has at most 200 characters (it has 201)."]
    assert errors["name"] == ["Ensure this value has at most 200 characters (it has 201)."]


def test_duplicate_email_is_compared_lower_cased(api):
    """D1: emails are unique lower-cased and stored as typed."""
    local = unique("John.")
    first = register(api, email=f"{local}@Example.COM")
    assert "errors" not in first
    errors = form_errors(register(api, email=f"{local.lower()}@example.com"))
    assert errors == {"email": ["User with this Email already exists."]}


def test_duplicate_username_differing_in_case(api):
    username = unique()
    register(api, username=username)
    errors = form_errors(register(api, username=username.upper()))
    assert errors == {"username": ["User with this Username already exists."]}


def test_slug_collision_and_blank_slug_are_raw_errors(api):
    base = unique()
    register(api, username=base)
    body = register(api, username=f"-{base}-")
    error = error_of(body)
    assert error["message"] == "{'username': ['User with this Username already exists.']}"
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    error = error_of(register(api, username="---"))
    assert error["message"] == "{'username': ['This field cannot be blank.']}"
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}


def test_concurrent_duplicate_registrations(api):
    """C14: of concurrent duplicates exactly one succeeds; the other gets CONFLICT, never a database error."""
    for attempt in range(3):
        email = f"{unique()}@example.com"
        with ThreadPoolExecutor(4) as pool:
            bodies = list(pool.map(lambda _: register(api, email=email), range(4)))
        successes = [body for body in bodies if "errors" not in body]
        assert len(successes) == 1, bodies
        for body in bodies:
            if "errors" in body:
                error = error_of(body)
                assert error["message"] == "Invalid data"
                assert error["extensions"]["code"] in {"CONFLICT", "BAD_USER_INPUT"}
                assert error["extensions"]["errors"] == {"email": ["User with this Email already exists."]}


def test_me_requires_login(api):
    body = api.gql("{ me { username } }")
    assert body["data"] == {"me": None}
    error = error_of(body)
    assert error["message"] == LOGIN_REQUIRED
    assert error["path"] == ["me"]
    assert error["extensions"] == {"code": "UNAUTHENTICATED"}


def test_user_query(api):
    user = api.register()
    body = api.gql("query($u: String!) { user(userSlug: $u) { id username name bio avatar } }", {"u": user["username"]})
    assert body["data"]["user"] == {"id": user["id"], "username": user["username"], "name": user["name"],
                                    "bio": "", "avatar": ""}
    body = api.gql("query($u: String!) { user(userSlug: $u) { id } }", {"u": user["username"].upper()})
    assert body["data"] == {"user": None}
    error = error_of(body)
    assert (error["message"], error["extensions"]["code"]) == ("User not found", "NOT_FOUND")


def test_user_type_exposes_no_private_fields(api):
    body = api.post("{ users { email } }").json()
    assert body["errors"][0]["message"] == "Cannot query field 'email' on type 'UserType'."


def test_users_lists_active_users_by_username_with_paging(api):
    tag = unique("zz")
    names = [f"{tag}c", f"{tag}a", f"{tag}b"]
    for username in names:
        api.register(username=username)
    query = "query($s: String, $f: Int, $o: Int) { users(search: $s, first: $f, offset: $o) { username } }"
    listed = [u["username"] for u in api.gql(query, {"s": tag})["data"]["users"]]
    assert listed == sorted(names)
    assert [u["username"] for u in api.gql(query, {"s": tag.upper(), "f": 1, "o": 1})["data"]["users"]] == [f"{tag}b"]
    assert api.gql(query, {"s": tag, "f": 0})["data"]["users"] == []
    # search matches the display name too
    named = api.register(name=f"Display {tag} Name")
    assert named["username"] in [u["username"] for u in api.gql(query, {"s": f"{tag} name"})["data"]["users"]]


def test_users_lists_active_users_only(api, service_rpc):
    """D11."""
    tag = unique("act")
    active = api.register(username=f"{tag}a")
    inactive = api.register(username=f"{tag}b")
    service_rpc("users", "set_active", inactive["id"], False)
    listed = api.gql("query($s: String) { users(search: $s) { username } }", {"s": tag})["data"]["users"]
    assert listed == [{"username": active["username"]}]
    # The inactive user is still found by username.
    assert api.gql("query($u: String!) { user(userSlug: $u) { id } }", {"u": inactive["username"]})["data"]["user"]


@pytest.mark.parametrize("argument", ["first", "offset"])
def test_negative_paging_arguments_are_rejected(api, argument):
    body = api.gql(f"{{ users({argument}: -1) {{ id }} }}")
    assert body["data"] == {"users": None}
    assert form_errors(body) == {argument: ["Ensure this value is greater than or equal to 0."]}


def test_update_user_name_and_bio(api):
    """§12.7 and the null semantics of §6.2."""
    user = api.new_user()
    body = api.gql(UPDATE, {"name": "newusername", "bio": "hello"}, token=user["token"])
    assert body["data"]["updateUser"]["user"]["name"] == "newusername"
    assert body["data"]["updateUser"]["user"]["bio"] == "hello"
    # bio: null clears it; an absent name keeps the current one
    body = api.gql("mutation { updateUser(bio: null) { user { name bio } } }", token=user["token"])
    assert body["data"]["updateUser"]["user"] == {"name": "newusername", "bio": ""}
    # no arguments: unchanged
    body = api.gql("mutation { updateUser { user { name } } }", token=user["token"])
    assert body["data"]["updateUser"]["user"] == {"name": "newusername"}


@pytest.mark.parametrize(
    "variables, expected",
    [
        ({"name": None}, {"name": ["This field is required."]}),
        ({"name": "   "}, {"name": ["This field is required."]}),
        ({"name": "x" * 201}, {"name": ["Ensure this value has at most 200 characters (it has 201)."]}),
        ({"bio": "b" * 501}, {"bio": ["Ensure this value has at most 500 characters (it has 501)."]}),
    ],
)
def test_update_user_validation(api, variables, expected):
    user = api.new_user()
    arguments = ", ".join(f"{key}: {json.dumps(value)}" for key, value in variables.items())
    body = api.gql(f"mutation {{ updateUser({arguments}) {{ user {{ name }} }} }}", token=user["token"])
    assert form_errors(body) == expected


def test_login_required_mutations(api):
    for mutation in ("updateUser(name: \"x\") { user { id } }", "deleteAccount(password: \"x\") { success }"):
        body = api.gql(f"mutation {{ {mutation} }}")
        error = error_of(body)
        assert error["message"] == LOGIN_REQUIRED
        assert error["extensions"] == {"code": "UNAUTHENTICATED"}


def upload_avatar(api, token, content, filename="avatar.jpg", csrf=True, extra_variables=None, mutation=None):
    """A header-authenticated multipart updateUser, as §12.8 sends it."""
    query = mutation or "mutation($avatar: Upload) { updateUser(avatar: $avatar) { user { avatar } } }"
    operations = {"query": query, "variables": {"avatar": None, **(extra_variables or {})}}
    csrf_token = unique("").ljust(32, "x")[:32]
    headers = {"Authorization": f"JWT {token}", "X-Forwarded-For": api.address}
    cookies = {}
    if csrf:
        headers["X-CSRFToken"] = csrf_token
        cookies["csrftoken"] = csrf_token
    api.client.cookies.clear()
    return api.client.post(
        api.base_url + "/graphql/",
        data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.avatar"]})},
        files={"0": (filename, content, "application/octet-stream")},
        headers=headers,
        cookies=cookies,
    )


def test_avatar_upload_and_media_serving(api, stack):
    """§12.8, §13, D10: stored under avatars/, served with nosniff; a replaced file is deleted."""
    user = api.new_user()
    response = upload_avatar(api, user["token"], image_bytes("JPEG"), filename="my photo!.jpg")
    body = response.json()
    assert "errors" not in body, body
    avatar = body["data"]["updateUser"]["user"]["avatar"]
    assert re.fullmatch(r"avatars/my_photo(_[A-Za-z0-9]{7})?\.jpg", avatar)
    media = api.client.get(f"{api.base_url}/media/{avatar}")
    assert media.status_code == 200
    assert media.headers["content-type"] == "image/jpeg"
    assert media.headers["x-content-type-options"] == "nosniff"
    assert media.content == image_bytes("JPEG")
    # Replacing it deletes the old file.
    body = upload_avatar(api, user["token"], image_bytes("PNG"), filename="me.png").json()
    replacement = body["data"]["updateUser"]["user"]["avatar"]
    assert replacement.startswith("avatars/me") and replacement.endswith(".png")
    assert not (stack.media_root / avatar).exists()
    assert api.client.get(f"{api.base_url}/media/{avatar}").status_code == 404
    # removeAvatar clears it and deletes the file (B4).
    body = api.gql(UPDATE, {"remove": True}, token=user["token"])
    assert body["data"]["updateUser"]["user"]["avatar"] == ""
    assert not (stack.media_root / replacement).exists()


def test_media_never_serves_outside_its_root(api):
    for path in ("/media/../pyproject.toml", "/media/%2e%2e/pyproject.toml", "/media/avatars/nothing.png"):
        response = api.client.get(api.base_url + path)
        assert response.status_code == 404, path


@pytest.mark.parametrize(
    "filename, content, message",
    [
        ("a.gif", b"GIF89a", "File extension “gif” is not allowed. Allowed extensions are: svg, png, jpg, jpeg."),
        ("a.png", b"", "The submitted file is empty."),
        ("a.png", b"\x89PNG\r\n\x1a\n" + b"0" * 100, "Upload a valid image. The file you uploaded was either not an image or a corrupted image."),
        ("a.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "Upload a valid image. The file you uploaded was either not an image or a corrupted image."),
        ("a.jpg", b"\xff" * (2 * 1024 * 1024 + 1), "File too large. Size should not exceed 2 MiB."),
    ],
)
def test_invalid_avatars(api, filename, content, message):
    user = api.new_user()
    body = upload_avatar(api, user["token"], content, filename=filename).json()
    assert form_errors(body) == {"avatar": [message]}


def test_gif_content_is_rejected(api):
    user = api.new_user()
    body = upload_avatar(api, user["token"], image_bytes("GIF"), filename="a.png").json()
    assert form_errors(body) == {
        "avatar": ["Upload a valid image. The file you uploaded was either not an image or a corrupted image."]
    }


def test_avatar_must_be_a_file(api):
    user = api.new_user()
    body = api.gql('mutation { updateUser(avatar: "x.png") { user { avatar } } }', token=user["token"])
    assert form_errors(body) == {"avatar": ["No file was submitted. Check the encoding type on the form."]}


def test_upload_and_remove_together(api):
    user = api.new_user()
    mutation = "mutation($avatar: Upload, $r: Boolean) { updateUser(avatar: $avatar, removeAvatar: $r) { user { avatar } } }"
    body = upload_avatar(api, user["token"], image_bytes(), mutation=mutation, extra_variables={"r": True}).json()
    assert form_errors(body) == {"avatar": ["Cannot upload and remove an avatar at the same time."]}


def test_multipart_requires_the_csrf_header(api):
    """D3: every multipart request is CSRF-checked, however authenticated."""
    user = api.new_user()
    response = upload_avatar(api, user["token"], image_bytes(), csrf=False)
    assert response.status_code == 403
    assert response.json() == {"errors": [{"message": "CSRF verification failed.", "extensions": {"code": "FORBIDDEN"}}]}


def test_delete_account(api, stack):
    user = api.new_user()
    body = upload_avatar(api, user["token"], image_bytes()).json()
    avatar = body["data"]["updateUser"]["user"]["avatar"]
    assert (stack.media_root / avatar).exists()
    body = api.gql("mutation { deleteAccount(password: \"wrong\") { success } }", token=user["token"])
    assert form_errors(body) == {"password": ["Incorrect password."]}
    response = api.post("mutation($p: String!) { deleteAccount(password: $p) { success } }", {"p": PASSWORD},
                        token=user["token"])
    assert response.json() == {"data": {"deleteAccount": {"success": True}}}
    assert 'JWT=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/' in response.headers.get_list("set-cookie")
    assert not (stack.media_root / avatar).exists()
    body = api.gql("query($u: String!) { user(userSlug: $u) { id } }", {"u": user["username"]})
    assert error_of(body)["message"] == "User not found"
    assert api.gql("{ me { id } }", token=user["token"])["data"] == {"me": None}
    # The email is free again.
    assert "errors" not in register(api, email=user["email"])
