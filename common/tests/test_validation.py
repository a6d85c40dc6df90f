"""The field rules every context builds on: Django's generic messages, text, the §8.1 slug, identifiers
and paging."""

from __future__ import annotations

import uuid

import pytest

from common import validation
from common.errors import ValidationFailed
from common.validation import INVALID_VALUE, NOT_NEGATIVE, NULL_CHARACTERS


def failure(function, *args, **kwargs):
    with pytest.raises(ValidationFailed) as failed:
        function(*args, **kwargs)
    return failed.value.errors, failed.value.raw


def test_exact_message_strings():
    assert validation.REQUIRED == "This field is required."
    assert validation.BLANK == "This field cannot be blank."
    assert INVALID_VALUE == "Enter a valid value."
    assert NULL_CHARACTERS == "Null characters are not allowed."
    assert NOT_NEGATIVE == "Ensure this value is greater than or equal to 0."
    assert validation.max_length(500, 501) == "Ensure this value has at most 500 characters (it has 501)."


# --- text -------------------------------------------------------------------------------------------


def test_as_text():
    assert validation.as_text(None) == ""
    assert validation.as_text("  a ") == "  a "
    assert validation.as_text("  a ", strip=True) == "a"
    assert validation.as_text(42) == "42"


def test_storable():
    assert validation.storable("héllo 日本")
    assert not validation.storable("a\x00b")
    assert not validation.storable("\ud800")


def test_text_errors_report_the_length_then_storability():
    assert validation.text_errors("abc", 3) == []
    assert validation.text_errors("abcd", 3) == [validation.max_length(3, 4)]
    assert validation.text_errors("a\x00", 1) == [validation.max_length(1, 2), NULL_CHARACTERS]
    assert validation.text_errors("\ud800\x00") == [NULL_CHARACTERS]  # the NUL check comes first
    assert validation.text_errors("\ud800") == [INVALID_VALUE]


@pytest.mark.parametrize(
    ("typed", "slug"),
    [
        ("JohnDoe", "johndoe"),
        ("My First Room", "my-first-room"),
        ("  My   First  Room ", "my-first-room"),
        ("Room 2", "room-2"),
        ("a--b", "a-b"),
        ("_x_", "x"),
        ("-alice-", "alice"),
        ("---", ""),
        ("!!!", ""),
        ("Crème Brûlée", "creme-brulee"),
        ("Café au lait", "cafe-au-lait"),
        ("a - _ b", "a-_-b"),
        ("  spaced   out  ", "spaced-out"),
        ("hello!world?", "helloworld"),
        ("-Hello, World!-", "hello-world"),
        ("Ωmega", "mega"),
        ("日本語", ""),
    ],
)
def test_slugify(typed, slug):
    assert validation.slugify(typed) == slug


# --- identifiers and counts -------------------------------------------------------------------------


def test_parse_uuid_accepts_python_forms_only():
    value = uuid.uuid4()
    assert validation.parse_uuid(value) == value
    for form in (str(value), str(value).upper(), value.hex, f"{{{value}}}", f"urn:uuid:{value}"):
        assert validation.parse_uuid(form) == value
    for bad in ("", "nope", None, 42, "1234", str(value) + "0"):
        assert validation.parse_uuid(bad) is None


def test_not_negative():
    validation.check_not_negative(last=0, since=None)
    assert failure(validation.check_not_negative, last=-1) == ({"last": [NOT_NEGATIVE]}, False)
    assert list(failure(validation.check_not_negative, b=-1, a=-1)[0]) == ["b", "a"]
    for bad in ("5", 1.0, True):
        with pytest.raises(TypeError):
            validation.check_not_negative(count=bad)
    with pytest.raises(TypeError):  # a caller's bug outranks an input error
        validation.check_not_negative(first=-1, offset="x")


def test_paging_without_a_cap():
    assert validation.check_paging(None, 0) == (None, 0)
    assert validation.check_paging(5, None) == (5, 0)
    assert failure(validation.check_paging, -1, -2) == ({"first": [NOT_NEGATIVE], "offset": [NOT_NEGATIVE]}, False)


def test_paging_with_a_cap():
    assert validation.check_paging(None, None, 100) == (100, 0)
    assert validation.check_paging(5, 2, 100) == (5, 2)
    assert validation.check_paging(500, 0, 100) == (100, 0)
    assert validation.check_paging(0, 0, 100) == (0, 0)
    assert failure(validation.check_paging, -1, -2, 100) == (
        {"first": [NOT_NEGATIVE], "offset": [NOT_NEGATIVE]},
        False,
    )
    with pytest.raises(TypeError):
        validation.check_paging("5", 0, 100)
