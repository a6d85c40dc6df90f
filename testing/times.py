"""Stored timestamps of every shape the replies must spell (whole seconds, a fraction with trailing zeros,
one microsecond across a date change, half a second), with their spelling: Python's ``isoformat()`` of the
UTC value (CONTRACT §2.3)."""

TIMES = {
    # stored → as the replies spell it
    "2025-08-20 14:01:11+02": "2025-08-20T12:01:11+00:00",
    "2025-08-20 12:01:11.12+00": "2025-08-20T12:01:11.120000+00:00",
    "1999-12-31 23:59:59.000001-05": "2000-01-01T04:59:59.000001+00:00",
    "2026-03-29 01:30:00.5+00": "2026-03-29T01:30:00.500000+00:00",
}
