"""Pagination arguments of B2, shared by every list field.

Negative values give ``Invalid data`` with one message per offending argument (in the order the
arguments are given); ``first``/``last`` above the cap N are clamped to N, and default to N.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.graphql import errors

NEGATIVE = "Ensure this value is greater than or equal to 0."


def check_non_negative(**values: int | None) -> None:
    """Raise ``Invalid data`` ``{"<arg>": ["Ensure this value is greater than or equal to 0."]}``
    for every negative argument (keys in the order passed)."""
    failures = {name: [NEGATIVE] for name, value in values.items() if value is not None and value < 0}
    if failures:
        raise errors.invalid_data(failures)


def clamp(limit: int | None, cap: int) -> int:
    """``first``/``last`` as sent to a service: default and upper bound ``cap``."""
    return cap if limit is None else min(limit, cap)


@dataclass(frozen=True)
class Page:
    """Checked ``first``/``offset``: skip ``offset`` items, then return at most ``first``."""

    first: int
    offset: int


def page(first: int | None, offset: int | None, cap: int) -> Page:
    """Validate and normalise ``first``/``offset`` (offset defaults to 0 and is not clamped: clamping
    it would return items the client asked to skip)."""
    check_non_negative(first=first, offset=offset)
    return Page(first=clamp(first, cap), offset=offset or 0)
