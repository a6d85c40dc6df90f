"""Body rules (CONTRACT §8.1 Message, §7.3, C4) and the paging arguments (B2), as pure functions."""

from __future__ import annotations

import uuid

import pytest

from common.errors import ValidationFailed
from services.messages import validation

BLANK = {"body": ["This field cannot be blank."]}


@pytest.mark.parametrize("body", [None, "", " ", "\t\n", "\u3000\u2003", " " * 600])
def test_blank_bodies(body):
    with pytest.raises(ValidationFailed) as caught:
        validation.check_body(body)
    assert caught.value.errors == BLANK
    assert caught.value.raw is True


def test_body_over_500_characters_counts_code_points():
    with pytest.raises(ValidationFailed) as caught:
        validation.check_body("é" * 501)
    assert caught.value.errors == {"body": ["Ensure this value has at most 500 characters (it has 501)."]}
    assert caught.value.raw is True
    # 500 astral characters are 500 code points, however many UTF-16 units or bytes they take.
    assert validation.check_body("😀" * 500) == "😀" * 500


def test_body_is_kept_as_sent():
    assert validation.check_body("  hello  \n") == "  hello  \n"
    assert validation.check_body("x" * 500) == "x" * 500


@pytest.mark.parametrize(
    ("body", "message"),
    [("a\x00b", "Null characters are not allowed."), ("a\ud800b", "Enter a valid value.")],
)
def test_text_postgresql_cannot_hold_is_refused(body, message):
    with pytest.raises(ValidationFailed) as caught:
        validation.check_body(body)
    assert caught.value.errors == {"body": [message]}


def test_parse_uuid_accepts_every_form_and_refuses_the_rest():
    value = uuid.uuid4()
    for form in (str(value), str(value).upper(), value.hex, f"{{{value}}}", value.urn, value):
        assert validation.parse_uuid(form) == value
    for bad in (None, "", "nope", 42, ["x"], str(value)[:-1]):
        assert validation.parse_uuid(bad) is None


def test_last_is_clamped_and_not_negative():
    assert validation.check_last(None, 100) == 100
    assert validation.check_last(5, 100) == 5
    assert validation.check_last(0, 100) == 0
    assert validation.check_last(500, 100) == 100
    with pytest.raises(ValidationFailed) as caught:
        validation.check_last(-1, 100)
    assert caught.value.errors == {"last": ["Ensure this value is greater than or equal to 0."]}
    assert caught.value.raw is False


def test_paging():
    assert validation.check_paging(None, None, 10) == (10, 0)
    assert validation.check_paging(3, 2, 10) == (3, 2)
    assert validation.check_paging(30, 0, 10) == (10, 0)
    with pytest.raises(ValidationFailed) as caught:
        validation.check_paging(-1, -2, 10)
    assert caught.value.errors == {
        "first": ["Ensure this value is greater than or equal to 0."],
        "offset": ["Ensure this value is greater than or equal to 0."],
    }
    with pytest.raises(TypeError):
        validation.check_paging(True, 0, 10)


def test_since():
    assert validation.check_since(0) == 0
    with pytest.raises(ValidationFailed):
        validation.check_since(-1)
    with pytest.raises(TypeError):
        validation.check_since("3")
