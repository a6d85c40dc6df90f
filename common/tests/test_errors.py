"""Domain errors survive nameko's serialisation, the ``raw`` flag included."""

from __future__ import annotations

import pytest
from nameko.exceptions import deserialize, get_module_path, registry, serialize

from common.errors import EXPECTED, Conflict, ValidationFailed


@pytest.mark.parametrize("error_class", [ValidationFailed, Conflict])
@pytest.mark.parametrize("raw", [True, False])
def test_field_errors_round_trip_with_their_style(monkeypatch, error_class, raw):
    for error in EXPECTED:
        monkeypatch.setitem(registry, get_module_path(error), error)
    sent = error_class({"name": ["This field is required."]}, raw=raw)
    wire = serialize(sent)
    assert wire["exc_args"] == [{"name": ["This field is required."]}, str(raw)]  # nameko stringifies it
    received = deserialize(wire)
    assert type(received) is error_class
    assert (received.errors, received.raw, received.args) == (sent.errors, raw, sent.args)


def test_raw_is_read_back_from_its_string_form_only():
    assert ValidationFailed({}, "True").raw is True
    assert ValidationFailed({}, "False").raw is False
    assert Conflict({}, "True").raw is True
    assert ValidationFailed({}).raw is False
