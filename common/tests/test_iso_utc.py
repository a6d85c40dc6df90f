"""``common.db.iso_utc`` on the real PostgreSQL: times formatted in SQL read exactly as Python's
``isoformat()`` of the UTC value, whatever the session's time zone."""

from __future__ import annotations

from datetime import timezone

import pytest
from sqlalchemy import literal, select, text
from sqlalchemy.types import DateTime

from common.db import iso_utc, make_engine
from testing.times import TIMES

SHAPES = {**TIMES, "0999-01-02 03:04:05.06+00": "0999-01-02T03:04:05.060000+00:00"}


@pytest.fixture(scope="module")
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/St_Johns"])
def test_times_are_spelled_as_isoformat_in_utc(engine, zone):
    with engine.connect() as conn:
        conn.execute(text(f"SET TIME ZONE '{zone}'"))
        for stored, spelled in SHAPES.items():
            moment = literal(stored, DateTime(timezone=True))
            assert conn.execute(select(iso_utc(moment))).scalar_one() == spelled
            assert conn.execute(select(moment)).scalar_one().astimezone(timezone.utc).isoformat() == spelled
