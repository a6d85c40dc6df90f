"""The chat socket's wire format: client frame parsing (C3, C5), body rules (C4), server frames (§10.4, B7a)."""

from __future__ import annotations

import json

import pytest

from gateway.chat import frames
from gateway.chat.events import ChatEvent
from gateway.chat.frames import ClientFrame, InvalidFrame, parse_client_frame

MESSAGE_ID = "4a96f149-e353-471e-9137-8ea62fb13466"
ROOM_ID = "0d8f9c4e-5f56-4d77-9d0b-1d4f0a6f3c21"
USER_ID = "7c1d2b1e-3a4f-4f5e-8a9b-0c1d2e3f4a5b"
RECORD = {
    "id": MESSAGE_ID,
    "room_id": ROOM_ID,
    "user_id": USER_ID,
    "body": "Hello!",
    "edited": False,
    "created": "2025-08-20T12:01:11.853118+00:00",
    "updated": "2025-08-20T12:01:11.853118+00:00",
    "seq": 7,
}
AUTHOR = {"id": USER_ID, "username": "alice", "avatar": "", "name": "Alice", "bio": "", "is_active": True}


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"message": "hi", "type": "text", "timestamp": 1}', ClientFrame("text", "hi")),
        ('{"message": "hi"}', ClientFrame("text", "hi")),  # missing type means text
        ('{"type": "text"}', ClientFrame("text", None)),  # missing message: empty, not malformed
        ('{"type": "text", "message": null}', ClientFrame("text", None)),
        ('{"type": "text", "message": "  ", "extra": [1, 2]}', ClientFrame("text", "  ")),
        (
            f'{{"type": "update", "messageId": "{MESSAGE_ID.upper()}", "message": "x"}}',
            ClientFrame("update", "x", MESSAGE_ID),
        ),
        (f'{{"type": "delete", "messageId": "{{{MESSAGE_ID}}}"}}', ClientFrame("delete", None, MESSAGE_ID)),
        (
            f'{{"type": "delete", "messageId": "urn:uuid:{MESSAGE_ID}"}}',
            ClientFrame("delete", None, MESSAGE_ID),
        ),
        (f'{{"type": "update", "messageId": "{MESSAGE_ID.replace("-", "")}"}}', ClientFrame("update", None, MESSAGE_ID)),
        ('{"type": "text", "message": "hi", "messageId": 5}', ClientFrame("text", "hi")),  # ignored for text
    ],
)
def test_well_formed_frames(text, expected):
    assert parse_client_frame(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        None,  # a binary frame
        "",
        "not json",
        "{",
        "[1, 2]",
        '"text"',
        "42",
        "null",
        '{"type": "send_message", "body": "hi"}',
        '{"type": null, "message": "hi"}',
        '{"type": 1, "message": "hi"}',
        '{"type": ["text"], "message": "hi"}',
        '{"type": "text", "message": 5}',
        '{"type": "text", "message": {"a": 1}}',
        '{"type": "text", "message": ["a"]}',
        '{"type": "text", "message": true}',
        '{"type": "text", "message": "\\ud800"}',  # a lone surrogate is no text
        '{"type": "update", "message": "x"}',
        '{"type": "update", "messageId": "nope", "message": "x"}',
        '{"type": "delete"}',
        '{"type": "delete", "messageId": null}',
        '{"type": "delete", "messageId": 12}',
        '{"type": "delete", "messageId": ""}',
        f'{{"type": "update", "messageId": "{MESSAGE_ID}", "message": 3}}',
        "[" * 100_000,  # deeper than the JSON decoder goes
        "9" * 5000,
    ],
)
def test_malformed_frames(text):
    with pytest.raises(InvalidFrame):
        parse_client_frame(text)


@pytest.mark.parametrize(
    "body, error",
    [
        (None, frames.EMPTY),
        ("", frames.EMPTY),
        ("   \n\t", frames.EMPTY),
        ("\u3000", frames.EMPTY),  # Unicode whitespace, as the service strips it
        ("x" * 500, None),
        ("é" * 500, None),  # code points, not bytes
        ("x" * 501, frames.TOO_LONG),
        (" hi ", None),  # stored as sent, untrimmed
        ("a\x00b", frames.INVALID_FORMAT),
    ],
)
def test_body_rules(body, error):
    assert frames.body_error(body) == error


@pytest.mark.parametrize(
    "service_messages, error",
    [
        (["This field cannot be blank."], frames.EMPTY),
        (["Ensure this value has at most 500 characters (it has 501)."], frames.TOO_LONG),
        (["Null characters are not allowed."], frames.INVALID_FORMAT),
        ([], frames.INVALID_FORMAT),
        (None, frames.INVALID_FORMAT),
    ],
)
def test_service_body_errors(service_messages, error):
    assert frames.service_body_error(service_messages) == error


def test_new_frame_has_the_contract_keys_in_order_and_seq_last():
    event = ChatEvent.from_message_event("message_created", {"room_id": ROOM_ID, "seq": 7, "message": RECORD})
    frame = frames.event_frame(event, AUTHOR)
    assert list(frame) == [
        "type", "action", "id", "user", "user_id", "body", "created", "edited", "updated", "userAvatar", "seq",
    ]
    assert frame == {
        "type": "chat_message",
        "action": "new",
        "id": MESSAGE_ID,
        "user": "alice",
        "user_id": USER_ID,
        "body": "Hello!",
        "created": RECORD["created"],
        "edited": False,
        "updated": RECORD["updated"],
        "userAvatar": None,  # "" in GraphQL, null in frames
        "seq": 7,
    }
    assert frames.event_frame(event, {**AUTHOR, "avatar": "avatars/a.png"})["userAvatar"] == "avatars/a.png"


def test_update_and_delete_frames():
    edited = {**RECORD, "body": "Edited", "edited": True, "updated": "2025-08-20T12:05:00+00:00", "seq": 9}
    update = ChatEvent.from_message_event("message_updated", {"room_id": ROOM_ID, "seq": 9, "message": edited})
    assert list(frames.event_frame(update).items()) == [
        ("type", "chat_message"),
        ("action", "update"),
        ("id", MESSAGE_ID),
        ("body", "Edited"),
        ("edited", True),
        ("updated", "2025-08-20T12:05:00+00:00"),
        ("seq", 9),
    ]
    delete = ChatEvent.from_message_event("message_deleted", {"room_id": ROOM_ID, "seq": 10, "id": MESSAGE_ID.upper()})
    assert frames.event_frame(delete) == {"type": "chat_message", "action": "delete", "id": MESSAGE_ID, "seq": 10}


def test_encoding_matches_the_reference_json_dumps():
    assert frames.error_frame(frames.RATE_LIMITED) == '{"error": "Rate limit exceeded."}'
    assert json.loads(frames.encode({"a": "é"})) == {"a": "é"}


@pytest.mark.parametrize(
    "event_type, payload",
    [
        ("message_created", {"room_id": ROOM_ID, "seq": 1}),
        ("message_created", {"room_id": ROOM_ID, "seq": True, "message": RECORD}),
        ("message_created", {"room_id": "nope", "seq": 1, "message": RECORD}),
        ("message_updated", {"room_id": ROOM_ID, "seq": -1, "message": RECORD}),
        ("message_deleted", {"room_id": ROOM_ID, "seq": 1}),
        ("message_exploded", {"room_id": ROOM_ID, "seq": 1, "id": MESSAGE_ID}),
        ("message_deleted", ["not", "a", "dict"]),
    ],
)
def test_malformed_events_are_not_relayed(event_type, payload):
    assert ChatEvent.from_message_event(event_type, payload) is None


def test_catch_up_changes_become_events():
    new = ChatEvent.from_change(ROOM_ID, {"action": "new", "seq": 7, "message": RECORD})
    assert (new.action, new.message_id, new.seq, new.author_id) == ("new", MESSAGE_ID, 7, USER_ID)
    gone = ChatEvent.from_change(ROOM_ID, {"action": "delete", "id": MESSAGE_ID, "seq": 8})
    assert (gone.action, gone.message, gone.seq) == ("delete", None, 8)
    replayed = ChatEvent.replayed(RECORD)
    assert (replayed.action, replayed.room_id, replayed.seq) == ("new", ROOM_ID, 7)
