"""The gateway's JSON log lines."""

from __future__ import annotations

import io
import json
import logging

from gateway import logging as gateway_logging


def record_line(**extra: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(gateway_logging.JsonFormatter())
    logger = logging.getLogger("gateway.test-json-lines")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.info("graphql %s %s", "Rooms", 200, extra=extra)
    return stream.getvalue()


def test_a_request_line_is_one_json_object_with_its_fields():
    line = record_line(call_id="gateway.1", operation="Rooms", status=200, error_codes=[], rpc_calls=1, note="é")
    assert line.endswith("\n") and line.count("\n") == 1
    assert '"note": "é"' in line  # not ASCII-escaped
    fields = json.loads(line)
    assert {key: fields[key] for key in ("level", "service", "logger", "msg", "call_id", "rpc_calls")} == {
        "level": "info",
        "service": "gateway",
        "logger": "gateway.test-json-lines",
        "msg": "graphql Rooms 200",
        "call_id": "gateway.1",
        "rpc_calls": 1,
    }
    assert json.loads(record_line(unserialisable=object()))["unserialisable"].startswith("<object object")


def test_a_line_does_not_build_a_json_encoder(monkeypatch):
    built = []
    real_init = json.JSONEncoder.__init__

    def counting_init(self, *args, **kwargs):
        built.append(kwargs)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(json.JSONEncoder, "__init__", counting_init)
    record_line(call_id="gateway.2", status=200)
    assert built == []
