"""In-memory stand-ins for the rooms service behind a fake RPC client (see ``fake_users``), and the
in-process gateway harness the GraphQL view tests share: settings, an HTTP client over the ASGI app
and a ``gql`` helper."""

from __future__ import annotations

import itertools
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import Settings
from gateway.tests.fake_users import FakeRpc, remote
from gateway.tests.test_view import SECRET

ROOM_NAME_TAKEN = {"__all__": ["You already have a room with this name."]}
_clock = itertools.count()


class FakeRoomsBase:
    """Rooms and their members over dicts, and the rooms-service RPC methods every fake answers the same
    way; subclasses say how rooms are added and how topics are looked up."""

    def __init__(self) -> None:
        self.rooms: dict[str, dict[str, Any]] = {}
        self.members: dict[str, list[str]] = {}

    def _record(self, room_id: str) -> dict[str, Any]:
        return {**self.rooms[room_id], "participant_count": len(self.members[room_id])}

    def _including(self, record: dict[str, Any], include: list[str] | None) -> dict[str, Any]:
        """``record`` with what a room read's ``include`` asks for, as the service adds it."""
        for name in include or ():
            if name == "participant_ids":
                record["participant_ids"] = list(self.members[record["id"]])
            elif name == "topic":
                topic = self.get_topics([record["topic_id"]])[0]  # type: ignore[attr-defined]
                record["topic"] = {"id": topic["id"], "name": topic["name"]}
            else:
                raise ValueError(f"unknown include {name!r}")
        return record

    def health(self) -> str:
        return "ok"

    def get_room_by_host_slug(self, host_id: str, slug: str, include: list[str] | None = None) -> dict[str, Any]:
        for room_id, room in self.rooms.items():
            if room["host_id"] == host_id and room["slug"] == slug:
                return self._including(self._record(room_id), include)
        raise remote("NotFound", "Room not found")

    def get_many(self, ids: list[str], include: list[str] | None = None) -> list[dict[str, Any] | None]:
        return [self._including(self._record(i), include) if i in self.rooms else None for i in ids]

    def participants_of(self, room_ids: list[str]) -> dict[str, list[str]]:
        return {room_id: list(self.members.get(room_id, [])) for room_id in room_ids}

    def room_access(self, host_id: str, slug: str, user_id: str) -> dict[str, Any]:
        room = self.get_room_by_host_slug(host_id, slug)
        return {"room": room, "participant": user_id in self.members[room["id"]]}


class FakeRooms(FakeRoomsBase):
    """The rooms service's RPC methods over dicts, with its orders; it raises the service's domain
    errors as they arrive over RPC but does not reimplement its validation (the service's tests do)."""

    def __init__(self) -> None:
        super().__init__()
        self.topics: dict[int, str] = {}
        self.conflict_next = False

    # --- helpers ----------------------------------------------------------------------------------

    def _topic_id(self, name: str) -> int:
        for topic_id, topic_name in self.topics.items():
            if topic_name == name:
                return topic_id
        topic_id = len(self.topics) + 1
        self.topics[topic_id] = name
        return topic_id

    def _found(self, room_id: str) -> dict[str, Any]:
        if room_id not in self.rooms:
            raise remote("NotFound", "Room not found")
        return self.rooms[room_id]

    def _page(self, ids: list[str], first: int | None, offset: int) -> list[dict[str, Any]]:
        records = [self._record(i) for i in ids]
        records.sort(key=lambda r: r["id"])
        records.sort(key=lambda r: r["created"], reverse=True)
        records.sort(key=lambda r: r["participant_count"], reverse=True)
        records = records[offset:]
        return records if first is None else records[:first]

    def add(self, host_id: str, name: str, topic: str = "Python", participants: tuple[str, ...] = ()) -> dict[str, Any]:
        """A room created directly (fixtures), ``participants`` in joining order (the host not added)."""
        room_id = str(uuid.uuid4())
        moment = (datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=next(_clock))).isoformat()
        self.rooms[room_id] = {
            "id": room_id,
            "name": name,
            "slug": name.lower().replace(" ", "-"),
            "host_id": host_id,
            "topic_id": self._topic_id(topic),
            "description": "",
            "created": moment,
            "updated": moment,
        }
        self.members[room_id] = list(participants)
        return self._record(room_id)

    # --- RPC ----------------------------------------------------------------------------------------

    def create_room(self, host_id: str, name: str, topic_name: str, description: str) -> dict[str, Any]:
        if not re.fullmatch(r"[A-Za-z]+", topic_name):
            raise remote("ValidationFailed", {"__all__": ["Topic name must consist of letters only."]}, True)
        if not name.strip():
            raise remote("ValidationFailed", {"name": ["This field is required."]}, False)
        if self.conflict_next:
            self.conflict_next = False
            raise remote("Conflict", ROOM_NAME_TAKEN, True)
        if any(r["host_id"] == host_id and r["name"] == name for r in self.rooms.values()):
            raise remote("ValidationFailed", ROOM_NAME_TAKEN, True)
        record = self.add(host_id, name, topic_name, participants=(host_id,))
        self.rooms[record["id"]]["description"] = description
        return self._record(record["id"])

    def update_room(self, room_id: str, user_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        room = self._found(room_id)
        if room["host_id"] != user_id:
            raise remote("PermissionDenied", "Permission denied")
        if changes.get("topic_name") is not None:
            room["topic_id"] = self._topic_id(changes["topic_name"])
        if "description" in changes:
            room["description"] = changes["description"] or ""
        return self._record(room_id)

    def delete_room(self, room_id: str, user_id: str) -> dict[str, str]:
        room = self._found(room_id)
        if room["host_id"] != user_id:
            raise remote("PermissionDenied", "Permission denied")
        del self.rooms[room_id], self.members[room_id]
        return {"id": room_id}

    def join_room(self, room_id: str, user_id: str) -> dict[str, Any]:
        self._found(room_id)
        if user_id not in self.members[room_id]:
            self.members[room_id].append(user_id)
        return self._record(room_id)

    def leave_room(self, room_id: str, user_id: str) -> dict[str, Any]:
        self._found(room_id)
        if user_id in self.members[room_id]:
            self.members[room_id].remove(user_id)
        return self._record(room_id)

    def list_rooms(self, host_id=None, search=None, topics=None, first=None, offset=0, include=None) -> list[dict[str, Any]]:
        ids = [
            room_id
            for room_id, room in self.rooms.items()
            if (not host_id or room["host_id"] == host_id)
            and (not search or search.lower() in (room["name"] + "\n" + room["description"]).lower())
            and (not topics or self.topics[room["topic_id"]] in ([topics] if isinstance(topics, str) else topics))
        ]
        return [self._including(record, include) for record in self._page(ids, first, offset)]

    def rooms_participated_by(self, user_id: str, first=None, offset=0, include=None) -> list[dict[str, Any]]:
        ids = [i for i, members in self.members.items() if user_id in members]
        return [self._including(record, include) for record in self._page(ids, first, offset)]

    def rooms_not_participated_by(self, user_id: str, first=None, offset=0, include=None) -> list[dict[str, Any]]:
        ids = [i for i, members in self.members.items() if user_id not in members]
        return [self._including(record, include) for record in self._page(ids, first, offset)]

    def list_topics(self, search=None, min_rooms=None, first=None, offset=0) -> list[dict[str, Any]]:
        counts = Counter(room["topic_id"] for room in self.rooms.values())
        topics = [
            {"id": topic_id, "name": name, "room_count": counts[topic_id]}
            for topic_id, name in self.topics.items()
            if (not search or search.lower() in name.lower()) and (not min_rooms or counts[topic_id] >= min_rooms)
        ]
        topics.sort(key=lambda t: (-t["room_count"], t["name"].lower(), t["name"]))
        topics = topics[offset:]
        return topics if first is None else topics[:first]

    def get_topics(self, ids: list[int]) -> list[dict[str, Any] | None]:
        counts = Counter(room["topic_id"] for room in self.rooms.values())
        return [
            {"id": int(i), "name": self.topics[int(i)], "room_count": counts[int(i)]} if int(i) in self.topics else None
            for i in ids
        ]


# --- the in-process gateway (its fixtures are in conftest.py) ---------------------------------------------


def make_settings(tmp_path: Path, list_cap: int, services: tuple[str, ...]) -> Settings:
    return Settings(
        env="test",
        jwt_secret=SECRET,
        media_root=str(tmp_path / "media"),
        allowed_hosts=("testserver",),
        services=services,
        list_cap=list_cap,
    )


async def gateway_client(settings: Settings, rpc: FakeRpc) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    app.state.rpc = rpc
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


async def gql(client: httpx.AsyncClient, query: str, variables: dict | None = None, *, token: str | None = None,
              rpc: FakeRpc | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"JWT {token}"} if token else {}
    if rpc is not None:
        rpc.calls.clear()
    response = await client.post("/graphql/", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def includes_asked(rooms: FakeRooms, monkeypatch: pytest.MonkeyPatch, method: str) -> list[list[str] | None]:
    """The ``include`` of every call of the fake rooms service's ``method`` from now on."""
    asked: list[list[str] | None] = []
    original = getattr(rooms, method)

    def spy(*args: Any, include: list[str] | None = None, **kwargs: Any) -> Any:
        asked.append(include)
        return original(*args, include=include, **kwargs)

    monkeypatch.setattr(rooms, method, spy)
    return asked
