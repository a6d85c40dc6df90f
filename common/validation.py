"""Field rules every context builds its input checks from: Django's generic messages, text cleaning and
storability, the §8.1 slug, identifiers and paging. What a username, a room name or a message body may
be stays in that context's own ``validation.py``.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from typing import Any, overload

from common.errors import ValidationFailed

REQUIRED = "This field is required."
BLANK = "This field cannot be blank."
INVALID_VALUE = "Enter a valid value."
NULL_CHARACTERS = "Null characters are not allowed."
NOT_NEGATIVE = "Ensure this value is greater than or equal to 0."


def max_length(limit: int, length: int) -> str:
    """Django's ``MaxLengthValidator`` message."""
    return f"Ensure this value has at most {limit} characters (it has {length})."


# ---------------------------------------------------------------------------------------------------
# text


def as_text(value: Any, *, strip: bool = False) -> str:
    """Django's ``CharField.to_python``: ``None`` is empty, anything else becomes a string."""
    if value is None:
        return ""
    value = value if isinstance(value, str) else str(value)
    return value.strip() if strip else value


def storable(value: str) -> bool:
    """Whether PostgreSQL can hold (or compare) this text: no NUL character, valid UTF-8."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def text_errors(value: str, limit: int | None = None) -> list[str]:
    """The validators every text field carries after its own, in Django's order: the length, then
    storability (a NUL character, else a lone surrogate). Every failing one is reported."""
    errors = []
    if limit is not None and len(value) > limit:
        errors.append(max_length(limit, len(value)))
    if "\x00" in value:
        errors.append(NULL_CHARACTERS)
    elif not storable(value):
        errors.append(INVALID_VALUE)
    return errors


def slugify(value: str) -> str:
    """§8.1 (Django's ``slugify``): ASCII-fold (NFKD, drop the rest), keep ``[\\w\\s-]``, lowercase,
    collapse each run of whitespace and ``-`` into one ``-``, strip leading and trailing ``-`` and ``_``."""
    value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s-]", "", value.lower())
    return re.sub(r"[-\s]+", "-", value).strip("-_")


# ---------------------------------------------------------------------------------------------------
# identifiers and counts


def parse_uuid(value: Any) -> uuid.UUID | None:
    """A UUID from any form ``uuid.UUID`` accepts, or ``None`` (a malformed id is an unknown one)."""
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def check_not_negative(**counts: Any) -> None:
    """Each count given (``None``: absent) must be a non-negative integer. Anything but an ``int`` is
    the caller's bug (``TypeError``); negative ones give ``ValidationFailed({field: ["Ensure this value
    is greater than or equal to 0."]})``, fields in the order given."""
    for field, value in counts.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"{field} must be an integer, not {type(value).__name__}")
    errors = {field: [NOT_NEGATIVE] for field, value in counts.items() if value is not None and value < 0}
    if errors:
        raise ValidationFailed(errors)


@overload
def check_paging(first: Any, offset: Any, cap: None = None) -> tuple[int | None, int]: ...
@overload
def check_paging(first: Any, offset: Any, cap: int) -> tuple[int, int]: ...


def check_paging(first: Any, offset: Any, cap: int | None = None) -> tuple[int | None, int]:
    """``(limit, offset)`` of a list call: ``offset`` 0 when ``None``; without ``cap`` the limit is
    ``first`` (``None``: no limit), with one it is ``first`` clamped to ``cap`` (``None``: ``cap``).
    Negative values: form ``ValidationFailed``, keys ``first`` then ``offset``."""
    check_not_negative(first=first, offset=offset)
    if cap is not None:
        first = cap if first is None else min(first, cap)
    return first, offset or 0
