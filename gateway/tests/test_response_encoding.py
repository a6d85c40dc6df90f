"""The bytes of a GraphQL response body."""

from __future__ import annotations

import json

from gateway.graphql import view

STDLIB = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def test_response_bytes_are_those_of_the_json_encoder():
    body = {
        "errors": [
            {"message": 'No "room" here\\', "locations": [{"line": 1, "column": 3}], "extensions": {"code": "NOT_FOUND"}}
        ],
        "data": {
            "rooms": [
                {"id": "0f8e2c1a-5b6d-4e7f-8a9b-0c1d2e3f4a5b", "name": "Étude € 😀", "count": 2**63 - 1, "open": True},
                {"id": None, "name": "".join(map(chr, range(32))) + "\u2028\x7f", "count": -3, "open": False},
            ],
            "empty": [],
            "nothing": {},
        },
    }
    assert view.encode_json(body) == STDLIB.encode(body).encode("utf-8")


def test_what_orjson_refuses_is_encoded_by_json(monkeypatch):
    assert view.encode_json({"data": {"big": 2**70, "n": 1}}) == b'{"data":{"big":1180591620717411303424,"n":1}}'

    class Unused:
        def encode(self, _body):
            raise AssertionError("a plain body is encoded by orjson")

    monkeypatch.setattr(view, "_ENCODER", Unused())
    assert view.encode_json({"data": {"topics": [{"name": "Maths", "roomCount": 3}]}}) == (
        b'{"data":{"topics":[{"name":"Maths","roomCount":3}]}}'
    )
