"""Body rules (CONTRACT §8.1 Message, §7.3, C4) and the list and catch-up arguments (B2, B7b), as pure
functions. Ids and paging are :mod:`common.validation`'s, tested there."""

from __future__ import annotations

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


def test_a_body_reports_its_first_failure_only():
    # Over the limit and unstorable at once: the length alone, as a socket shows one message (C4).
    with pytest.raises(ValidationFailed) as caught:
        validation.check_body("x" * 501 + "\x00")
    assert caught.value.errors == {"body": ["Ensure this value has at most 500 characters (it has 502)."]}
    assert validation.body_errors("\ud800\x00") == ["Null characters are not allowed."]
    assert validation.check_body(42) == "42"


def test_last_is_clamped_and_not_negative():
    assert validation.check_last(None, 100) == 100
    assert validation.check_last(5, 100) == 5
    assert validation.check_last(0, 100) == 0
    assert validation.check_last(500, 100) == 100
    with pytest.raises(ValidationFailed) as caught:
        validation.check_last(-1, 100)
    assert caught.value.errors == {"last": ["Ensure this value is greater than or equal to 0."]}
    assert caught.value.raw is False


def test_cap():
    assert validation.check_cap(1) == 1
    for bad in (None, 0, -1):
        with pytest.raises(ValueError):
            validation.check_cap(bad)
    for bad in (True, "10", 1.5):
        with pytest.raises(TypeError):
            validation.check_cap(bad)


def test_since():
    assert validation.check_since(0) == 0
    with pytest.raises(ValidationFailed):
        validation.check_since(-1)
    for bad in ("3", None):
        with pytest.raises(TypeError):
            validation.check_since(bad)
