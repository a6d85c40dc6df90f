"""Input rules of the rooms context (CONTRACT §6.2, §8.1, §8.4), as pure functions.

Two styles of error, as the reference implementation had them: a topic name is checked the way its
model was (``full_clean()`` → a *raw* error), room names and descriptions the way its form was
(``"Invalid data"`` + field map). Within a field, Django's validator order holds: the field's own
pattern, then the length, then the null-character check, and every failing one is reported.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from common.errors import ValidationFailed
from common.validation import BLANK, NULL_CHARACTERS, REQUIRED, as_text, max_length, storable, text_errors
from services.rooms.models import (
    DESCRIPTION_MAX_LENGTH,
    ROOM_NAME_MAX_LENGTH,
    ROOM_SLUG_MAX_LENGTH,
    TOPIC_NAME_MAX_LENGTH,
)
from services.rooms.schemas import ROOM_DETAILS

TOPIC_LETTERS_ONLY = "Topic name must consist of letters only."
ROOM_NAME_CHARACTERS = "Room name can only contain letters and numbers."
ROOM_NAME_TAKEN = "You already have a room with this name."

ROOM_CHANGES = ("description", "topic_name")

# fullmatch, not ``$``: Python's ``$`` also matches before a final newline.
_TOPIC_NAME_RE = re.compile(r"[A-Za-z]+")
_ROOM_NAME_RE = re.compile(r"[a-zA-Z0-9 ]+")


# ---------------------------------------------------------------------------------------------------
# topics (§6.2 step 2, §8.1)


def check_topic_name(value: Any) -> str:
    """The topic name to get or create, exactly as given (``python`` is not ``Python``).

    Raises the contract's raw errors, only the first that applies: ``{'name': ['This field cannot be
    blank.']}`` for ``""``; ``{'name': ['Ensure this value has at most 200 characters (it has N).']}``;
    ``{'__all__': ['Topic name must consist of letters only.']}`` for anything but ASCII letters.
    """
    name = as_text(value)
    if not name:
        raise ValidationFailed({"name": [BLANK]}, raw=True)
    if len(name) > TOPIC_NAME_MAX_LENGTH:
        raise ValidationFailed({"name": [max_length(TOPIC_NAME_MAX_LENGTH, len(name))]}, raw=True)
    if not _TOPIC_NAME_RE.fullmatch(name):
        raise ValidationFailed({"__all__": [TOPIC_LETTERS_ONLY]}, raw=True)
    return name


# ---------------------------------------------------------------------------------------------------
# room inputs (§8.4)


@dataclass(frozen=True)
class NewRoom:
    """A room that passed the form: values as they will be stored."""

    name: str
    description: str


def _name_errors(value: Any) -> tuple[str, list[str]]:
    """The room name stripped and with inner runs of spaces collapsed, and its errors."""
    name = as_text(value, strip=True)
    if not name:
        return "", [REQUIRED]
    errors = []
    if not _ROOM_NAME_RE.fullmatch(name):
        errors.append(ROOM_NAME_CHARACTERS)
    if len(name) > ROOM_NAME_MAX_LENGTH:
        errors.append(max_length(ROOM_NAME_MAX_LENGTH, len(name)))
    if "\x00" in name:
        errors.append(NULL_CHARACTERS)
    # Only spaces can be left inside a name that passed: "  My   First  Room " -> "My First Room".
    return re.sub(" +", " ", name), errors


def _description_errors(value: Any) -> tuple[str, list[str]]:
    """The description as sent (not stripped; ``None`` is ``""``), and its errors."""
    description = as_text(value)
    return description, text_errors(description, DESCRIPTION_MAX_LENGTH)


def check_new_room(name: Any, description: Any) -> NewRoom:
    """Run the ``createRoom`` form. Raises ``ValidationFailed`` (form style), keys in the order
    name, description."""
    errors: dict[str, list[str]] = {}
    name, name_errors = _name_errors(name)
    if name_errors:
        errors["name"] = name_errors
    description, description_errors = _description_errors(description)
    if description_errors:
        errors["description"] = description_errors
    if errors:
        raise ValidationFailed(errors)
    return NewRoom(name=name, description=description)


def check_room_changes(changes: Mapping[str, Any]) -> dict[str, str]:
    """Clean an ``updateRoom``'s changes: ``topic_name`` (absent or ``None``: keep the topic, C8;
    otherwise :func:`check_topic_name`'s raw errors, checked first) and ``description`` (``None``
    clears it to ``""``; form errors). Returns the present values: ``topic_name`` and/or
    ``description``."""
    unknown = [key for key in changes if key not in ROOM_CHANGES]
    if unknown:
        raise ValueError(f"update_room cannot change {unknown!r}; allowed: {ROOM_CHANGES!r}")
    cleaned: dict[str, str] = {}
    if changes.get("topic_name") is not None:
        cleaned["topic_name"] = check_topic_name(changes["topic_name"])
    if "description" in changes:
        description, errors = _description_errors(changes["description"])
        if errors:
            raise ValidationFailed({"description": errors})
        cleaned["description"] = description
    return cleaned


def room_name_taken() -> dict[str, list[str]]:
    """The raw error map of a second room with the same (host, name), sequential or raced (C14)."""
    return {"__all__": [ROOM_NAME_TAKEN]}


# ---------------------------------------------------------------------------------------------------
# slug suffixes (§6.2 step 4)


def slug_candidate(base: str, number: int) -> str:
    """The ``number``-th slug to try for ``base``: the base itself, then ``base-2``, ``base-3``, …,
    the base cut (and stripped of a dangling ``-``) so the whole slug stays within 200 characters."""
    if number == 1:
        return base[:ROOM_SLUG_MAX_LENGTH].rstrip("-")
    suffix = f"-{number}"
    return base[: ROOM_SLUG_MAX_LENGTH - len(suffix)].rstrip("-") + suffix


# Every candidate starts with this much of the base: suffixes of up to 100 characters never cut deeper.
SLUG_SHARED_PREFIX_LENGTH = 100


def free_slug(base: str, taken: Iterable[str]) -> str:
    """The first candidate for ``base`` that is not ``taken`` (the host's slugs sharing its prefix)."""
    taken = set(taken)
    for number in itertools.count(1):
        candidate = slug_candidate(base, number)
        if candidate not in taken:
            return candidate
    raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------------------------------------------
# identifiers and filters


def parse_topic_id(value: Any) -> int | None:
    """A topic id from an int or its decimal string (GraphQL ``ID``), or ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value < 2**63 else None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return parse_topic_id(int(value))
    return None


def search_text(value: Any) -> str | None:
    """A "contains" filter: ``None`` when it is to be ignored (``None`` or ``""``). Text no stored value
    can contain (a NUL character, a lone surrogate) stays as it is: callers check :func:`common.validation.storable`."""
    if value is None or value == "":
        return None
    return as_text(value)


def topic_filter(value: Any) -> list[str] | None:
    """The ``topic`` filter as a list of exact names, ``None`` when it is to be ignored (``None``,
    ``""`` or ``[]``). A single string counts as a one-name list. Names nothing stored can equal are
    dropped, so a filter of only such names matches no room."""
    if value is None or value == "" or value == []:
        return None
    names = [value] if isinstance(value, str) else list(value)
    return sorted({name for name in names if isinstance(name, str) and storable(name)})


def room_details(value: Any) -> frozenset[str]:
    """The ``include`` argument of the room reads as a set of :data:`~services.rooms.schemas.ROOM_DETAILS`
    names (``None`` or ``[]``: none; a single string counts as a one-name list). An unknown name is the
    caller's bug, not user input: ``ValueError``."""
    if value is None:
        return frozenset()
    names = frozenset([value] if isinstance(value, str) else value)
    unknown = names.difference(ROOM_DETAILS)
    if unknown:
        raise ValueError(f"include takes {', '.join(ROOM_DETAILS)}, not {', '.join(sorted(map(str, unknown)))}")
    return names
