"""Input rules of CONTRACT §6.2 and §8.4 and the slug suffix: every message string."""

from __future__ import annotations

import pytest

from common.errors import ValidationFailed
from common.validation import BLANK, NULL_CHARACTERS, REQUIRED, slugify
from services.rooms import validation
from services.rooms.validation import ROOM_NAME_CHARACTERS, TOPIC_LETTERS_ONLY


def failure(function, *args):
    with pytest.raises(ValidationFailed) as failed:
        function(*args)
    return failed.value.errors, failed.value.raw


# --- topic names (raw errors) ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Python", "python", "A", "Z" * 200])
def test_topic_names_of_ascii_letters_pass_as_given(name):
    assert validation.check_topic_name(name) == name


@pytest.mark.parametrize(
    "name", ["Py thon", " Python", "Python ", "Python3", "Pythön", "C++", "Py-thon", "Python\n", "\x00", "日本"]
)
def test_topic_names_with_anything_but_letters_fail(name):
    assert failure(validation.check_topic_name, name) == ({"__all__": [TOPIC_LETTERS_ONLY]}, True)


def test_empty_topic_name_is_blank():
    assert failure(validation.check_topic_name, "") == ({"name": [BLANK]}, True)
    assert failure(validation.check_topic_name, None) == ({"name": [BLANK]}, True)


def test_long_topic_name_reports_only_its_length():
    expected = {"name": ["Ensure this value has at most 200 characters (it has 201).", ]}
    assert failure(validation.check_topic_name, "a" * 201) == (expected, True)
    # Over the limit and not letters: only the length, as the model's field check excludes the constraint.
    assert failure(validation.check_topic_name, "a1" * 150) == (
        {"name": ["Ensure this value has at most 200 characters (it has 300)."]},
        True,
    )


# --- room name and description (form errors) -------------------------------------------------------


def test_room_name_is_stripped_and_inner_spaces_collapse():
    room = validation.check_new_room("  My   First  Room ", "")
    assert (room.name, room.description) == ("My First Room", "")
    assert slugify(room.name) == "my-first-room"


@pytest.mark.parametrize("name", ["", "   ", None, "\t \n"])
def test_room_name_is_required(name):
    assert failure(validation.check_new_room, name, "") == ({"name": [REQUIRED]}, False)


@pytest.mark.parametrize("name", ["My\tRoom", "My-Room", "Hey!", "Café", "a_b", "Room\nTwo"])
def test_room_name_characters(name):
    assert failure(validation.check_new_room, name, "") == ({"name": [ROOM_NAME_CHARACTERS]}, False)


def test_room_name_length_counts_the_stripped_name():
    assert validation.check_new_room(" " + "a" * 200 + " ", "").name == "a" * 200
    assert failure(validation.check_new_room, "a" * 201, "") == (
        {"name": ["Ensure this value has at most 200 characters (it has 201)."]},
        False,
    )


def test_every_failing_room_name_rule_is_reported_in_order():
    assert failure(validation.check_new_room, "a-" * 101, "") == (
        {"name": [ROOM_NAME_CHARACTERS, "Ensure this value has at most 200 characters (it has 202)."]},
        False,
    )
    assert failure(validation.check_new_room, "a\x00b", "") == (
        {"name": [ROOM_NAME_CHARACTERS, NULL_CHARACTERS]},
        False,
    )


def test_description_may_be_empty_and_is_kept_as_sent():
    assert validation.check_new_room("Room", "").description == ""
    assert validation.check_new_room("Room", None).description == ""
    assert validation.check_new_room("Room", "  hi  ").description == "  hi  "
    assert validation.check_new_room("Room", "x" * 500).description == "x" * 500


def test_description_errors():
    expected = {"description": ["Ensure this value has at most 500 characters (it has 501)."]}
    assert failure(validation.check_new_room, "Room", "x" * 501) == (expected, False)
    assert failure(validation.check_new_room, "Room", "a\x00") == ({"description": [NULL_CHARACTERS]}, False)
    assert failure(validation.check_new_room, "Room", "\ud800") == (
        {"description": ["Enter a valid value."]},
        False,
    )


def test_name_and_description_errors_come_together_name_first():
    errors, raw = failure(validation.check_new_room, "", "x" * 501)
    assert list(errors) == ["name", "description"] and raw is False


# --- update changes --------------------------------------------------------------------------------


def test_room_changes():
    assert validation.check_room_changes({}) == {}
    assert validation.check_room_changes({"topic_name": None}) == {}  # C8: keep the topic
    assert validation.check_room_changes({"description": None}) == {"description": ""}
    assert validation.check_room_changes({"topic_name": "Go", "description": "d"}) == {
        "topic_name": "Go",
        "description": "d",
    }


def test_room_changes_check_the_topic_first():
    changes = {"topic_name": "Bad Topic", "description": "x" * 501}
    assert failure(validation.check_room_changes, changes) == ({"__all__": [TOPIC_LETTERS_ONLY]}, True)
    assert failure(validation.check_room_changes, {"topic_name": ""}) == ({"name": [BLANK]}, True)
    assert failure(validation.check_room_changes, {"description": "x" * 501}) == (
        {"description": ["Ensure this value has at most 500 characters (it has 501)."]},
        False,
    )


def test_room_changes_refuse_other_fields():
    with pytest.raises(ValueError):
        validation.check_room_changes({"name": "New"})


# --- slug suffixes ---------------------------------------------------------------------------------


def test_first_free_suffix():
    assert validation.free_slug("room", set()) == "room"
    assert validation.free_slug("room", {"room"}) == "room-2"
    assert validation.free_slug("room", {"room", "room-2", "room-4"}) == "room-3"
    assert validation.free_slug("room", {"room-2"}) == "room"


def test_suffix_cuts_the_base_to_stay_within_200_characters():
    base = "a" * 200
    assert validation.slug_candidate(base, 1) == base
    assert validation.slug_candidate(base, 2) == "a" * 198 + "-2"
    assert validation.slug_candidate(base, 10) == "a" * 197 + "-10"
    assert validation.free_slug(base, {base, "a" * 198 + "-2"}) == "a" * 198 + "-3"
    for number in (2, 9, 10, 99, 100, 12345):
        assert len(validation.slug_candidate(base, number)) == 200


def test_cut_base_never_leaves_a_double_dash():
    base = "a" * 197 + "-bc"  # cut to 198 for "-2" would end in "-"
    assert validation.slug_candidate(base, 2) == "a" * 197 + "-2"
    assert validation.slug_candidate("ab" * 50, 2) == "ab" * 50 + "-2"  # short bases are not cut


def test_every_candidate_shares_the_prefix_the_storage_looks_up():
    base = ("word " * 40).strip().replace(" ", "-")[:200]
    for number in range(1, 2000):
        assert validation.slug_candidate(base, number).startswith(base[: validation.SLUG_SHARED_PREFIX_LENGTH])


# --- identifiers and filters -----------------------------------------------------------------------


def test_parse_topic_id():
    assert validation.parse_topic_id(3) == 3
    assert validation.parse_topic_id("3") == 3
    for bad in ("", "x", "-1", 0, -1, True, None, 2**63, "٣", "1.0"):
        assert validation.parse_topic_id(bad) is None


def test_topic_filter():
    assert validation.topic_filter(None) is None
    assert validation.topic_filter("") is None
    assert validation.topic_filter([]) is None
    assert validation.topic_filter("Python") == ["Python"]
    assert validation.topic_filter(["Python", "Go", "Python"]) == ["Go", "Python"]
    assert validation.topic_filter(["\x00"]) == []  # matches nothing, rather than being ignored
    assert validation.topic_filter([""]) == [""]


# --- what a room read includes ---------------------------------------------------------------------


def test_room_details():
    assert validation.room_details(None) == validation.room_details([]) == frozenset()
    assert validation.room_details("topic") == {"topic"}
    assert validation.room_details(["participant_ids", "topic", "topic"]) == {"participant_ids", "topic"}
    for unknown in (["participants"], ["topic", "host"]):
        with pytest.raises(ValueError):
            validation.room_details(unknown)
