"""Every query of the rooms context. The service calls the writes inside ``storage.transaction()``.

Participant counts: ``rooms.participant_count`` changes in the transaction that adds or removes the
membership, under a lock on the room row, so concurrent joins and leaves never lose an update and the
lists order by the true count (C10) straight from an index.

Membership versions: each join and each leave takes the next ``membership_versions`` number under that
same lock, so of one membership's changes the later-committed has the higher number.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Collection, Sequence

from sqlalchemy import (
    ColumnElement,
    Row,
    String,
    Text,
    and_,
    any_,
    bindparam,
    cast,
    delete,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID, aggregate_order_by, array_agg
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql import Select

from common.db import StorageBase, iso_utc, unique_violations
from services.rooms.models import (
    ROOM_NAME_UNIQUE,
    ROOM_SLUG_UNIQUE,
    membership_versions,
    participants,
    rooms,
    topics,
)
from services.rooms.schemas import PARTICIPANT_IDS, TOPIC


class DuplicateRoom(Exception):
    """An insert lost a uniqueness race on the host's ``"name"`` or ``"slug"`` (the transaction must
    then be rolled back)."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


_UNIQUE_FIELDS = {ROOM_NAME_UNIQUE: "name", ROOM_SLUG_UNIQUE: "slug"}

# Every room list: participant count DESC, created DESC, id ASC (CONTRACT §5, C10, C11).
_ROOM_ORDER = (rooms.c.participant_count.desc(), rooms.c.created.desc(), rooms.c.id.asc())


def _room_count():
    """Rooms per topic, as a subquery to outer-join topics with (topics without rooms count 0)."""
    return (
        select(rooms.c.topic_id, func.count().label("room_count"))
        .group_by(rooms.c.topic_id)
        .subquery("room_counts")
    )


def _topics_with_counts() -> tuple[Select, ColumnElement[int]]:
    """Topics with their room count, and the count expression (for filters and ordering)."""
    counts = _room_count()
    room_count = func.coalesce(counts.c.room_count, 0)
    query = select(topics.c.id, topics.c.name, room_count.label("room_count")).outerjoin(
        counts, counts.c.topic_id == topics.c.id
    )
    return query, room_count



# A room as the read replies carry it (``schemas.room``'s keys and order), ids and times already text.
_ROOM_REPLY = (
    cast(rooms.c.id, Text).label("id"),
    rooms.c.name,
    rooms.c.slug,
    cast(rooms.c.host_id, Text).label("host_id"),
    rooms.c.topic_id,
    rooms.c.description,
    iso_utc(rooms.c.created).label("created"),
    iso_utc(rooms.c.updated).label("updated"),
    rooms.c.participant_count,
)


def _like_escaped(text: str) -> str:
    """``text`` with LIKE's wildcards (and the escape character ``/``) escaped, for the ``ESCAPE '/'``
    searches of the cached statements (what ``autoescape=True`` does to a literal)."""
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def _paged(query: Select) -> Select:
    return query.order_by(*_ROOM_ORDER).offset(bindparam("offset")).limit(bindparam("limit"))


# The read statements are built once per shape (which filters, which details) with bound parameters for
# every value, so SQLAlchemy reuses each statement's memoized cache key and compiled form instead of
# rebuilding the statement and walking it for its key on every call.


@functools.cache
def _room_list_statement(details: frozenset[str], by_host: bool, searching: bool, by_topics: bool) -> Select:
    query = _with_details(select(*_ROOM_REPLY), details)
    if by_host:
        query = query.where(rooms.c.host_id == bindparam("host_id"))
    if searching:
        search = bindparam("search", type_=String)
        in_name_or_description = rooms.c.name.icontains(search, escape="/") | rooms.c.description.icontains(
            search, escape="/"
        )
        query = query.where(in_name_or_description)
    if by_topics:
        named = select(topics.c.id).where(topics.c.name == any_(bindparam("topic_names", type_=ARRAY(Text))))
        query = query.where(rooms.c.topic_id.in_(named))
    return _paged(query)


@functools.cache
def _rooms_by_id_statement(details: frozenset[str]) -> Select:
    room_ids = bindparam("room_ids", type_=ARRAY(UUID(as_uuid=True)))
    return _with_details(select(*_ROOM_REPLY), details).where(rooms.c.id == any_(room_ids))


@functools.cache
def _room_by_host_slug_statement(details: frozenset[str]) -> Select:
    query = _with_details(select(*_ROOM_REPLY), details)
    return query.where(rooms.c.host_id == bindparam("host_id"), rooms.c.slug == bindparam("slug"))


@functools.cache
def _rooms_participated_by_statement(details: frozenset[str]) -> Select:
    query = _with_details(select(*_ROOM_REPLY), details).join(participants, participants.c.room_id == rooms.c.id)
    return _paged(query.where(participants.c.user_id == bindparam("user_id")))


@functools.cache
def _rooms_not_participated_by_statement(details: frozenset[str]) -> Select:
    member = exists().where(participants.c.room_id == rooms.c.id, participants.c.user_id == bindparam("user_id"))
    return _paged(_with_details(select(*_ROOM_REPLY), details).where(~member))


@functools.cache
def _topic_list_statement(searching: bool, by_room_count: bool) -> Select:
    query, room_count = _topics_with_counts()
    if searching:
        query = query.where(topics.c.name.icontains(bindparam("search", type_=String), escape="/"))
    if by_room_count:
        query = query.where(room_count >= bindparam("min_rooms"))
    query = query.order_by(room_count.desc(), func.lower(topics.c.name).collate("C"), topics.c.name.collate("C"))
    return query.offset(bindparam("offset")).limit(bindparam("limit"))


def _topics_by_id_statement() -> Select:
    query, _ = _topics_with_counts()
    return query.where(topics.c.id == any_(bindparam("topic_ids", type_=ARRAY(topics.c.id.type))))


_TOPICS_BY_ID = _topics_by_id_statement()


def _room_access_statement() -> Select:
    member = exists().where(participants.c.room_id == rooms.c.id, participants.c.user_id == bindparam("user_id"))
    query = select(*_ROOM_REPLY, member.label("participant"))
    return query.where(rooms.c.host_id == bindparam("host_id"), rooms.c.slug == bindparam("slug"))


_ROOM_ACCESS = _room_access_statement()

_IS_PARTICIPANT = select(
    exists().where(
        and_(participants.c.room_id == bindparam("room_id"), participants.c.user_id == bindparam("user_id"))
    )
)

_PARTICIPANTS_OF = (
    select(cast(participants.c.room_id, Text), cast(participants.c.user_id, Text))
    .where(participants.c.room_id == any_(bindparam("room_ids", type_=ARRAY(UUID(as_uuid=True)))))
    .order_by(participants.c.room_id, participants.c.joined, participants.c.user_id)
)


def _with_details(query: Select, details: Collection[str]) -> Select:
    """A rooms ``query`` with the columns the :data:`~services.rooms.schemas.ROOM_DETAILS` in ``details``
    need: ``participant_ids`` (as text, in joining order, then id; ``NULL`` for none) and ``topic_name``.

    Correlated subqueries rather than joins, so they fit every room query as it is (paged or not, with
    its own joins) and PostgreSQL evaluates them only for the rows the page returns."""
    if PARTICIPANT_IDS in details:
        joining_order = aggregate_order_by(
            cast(participants.c.user_id, Text), participants.c.joined, participants.c.user_id
        )
        member_ids = select(array_agg(joining_order)).where(participants.c.room_id == rooms.c.id).correlate(rooms)
        query = query.add_columns(member_ids.scalar_subquery().label(PARTICIPANT_IDS))
    if TOPIC in details:
        topic_name = select(topics.c.name).where(topics.c.id == rooms.c.topic_id).correlate(rooms)
        query = query.add_columns(topic_name.scalar_subquery().label("topic_name"))
    return query


class RoomStorage(StorageBase):
    # --- topics -------------------------------------------------------------------------------------

    def get_or_create_topic(self, name: str) -> int:
        """The id of the topic named exactly ``name``, created when missing. Concurrent callers with
        the same new name all get the one topic: the insert waits for the other's commit, then does
        nothing, and the select (a new snapshot) sees the committed row."""
        self.session.execute(pg_insert(topics).values(name=name).on_conflict_do_nothing(index_elements=["name"]))
        return self.session.execute(select(topics.c.id).where(topics.c.name == name)).scalar_one()

    def list_topics(self, search: str | None, min_rooms: int | None, limit: int, offset: int) -> list[Row]:
        """Topics (with 0 rooms too) whose name contains ``search`` (case-insensitive) and that have at
        least ``min_rooms`` rooms, by room count DESC, lower-cased name, then name (C11)."""
        query = _topic_list_statement(bool(search), bool(min_rooms))
        values = {"search": _like_escaped(search) if search else None, "min_rooms": min_rooms}
        return self.session.execute(query, {**values, "limit": limit, "offset": offset}).all()

    def get_topics(self, topic_ids: Sequence[int]) -> dict[int, Row]:
        if not topic_ids:
            return {}
        rows = self.session.execute(_TOPICS_BY_ID, {"topic_ids": list(set(topic_ids))}).all()
        return {row.id: row for row in rows}

    # --- rooms: reads -------------------------------------------------------------------------------

    def get_room(self, room_id: uuid.UUID, *, lock: bool = False) -> Row | None:
        """One room; ``lock`` holds its row (``FOR NO KEY UPDATE``) until the transaction ends, which
        serialises membership changes of the room with its deletion."""
        query = select(rooms).where(rooms.c.id == room_id)
        if lock:
            query = query.with_for_update(key_share=True)
        return self.session.execute(query).one_or_none()

    # The room reads below return rows in reply form (``schemas.room_reply``): the columns of
    # ``_ROOM_REPLY``, then those of ``details`` (:func:`_with_details`).

    def get_rooms(self, room_ids: Sequence[uuid.UUID], details: frozenset[str] = frozenset()) -> dict[str, Row]:
        """The rooms with these ids, by their id as text; one query."""
        if not room_ids:
            return {}
        query = _rooms_by_id_statement(details)
        return {row.id: row for row in self.session.execute(query, {"room_ids": list(set(room_ids))}).all()}

    def get_room_by_host_slug(
        self, host_id: uuid.UUID, slug: str, details: frozenset[str] = frozenset()
    ) -> Row | None:
        query = _room_by_host_slug_statement(details)
        return self.session.execute(query, {"host_id": host_id, "slug": slug}).one_or_none()

    def host_has_room_named(self, host_id: uuid.UUID, name: str) -> bool:
        query = select(rooms.c.id).where(rooms.c.host_id == host_id, rooms.c.name == name).limit(1)
        return self.session.execute(query).first() is not None

    def host_slugs_starting_with(self, host_id: uuid.UUID, prefix: str) -> set[str]:
        """The host's slugs that start with ``prefix``: every one a new slug could collide with."""
        query = select(rooms.c.slug).where(
            rooms.c.host_id == host_id, rooms.c.slug.startswith(prefix, autoescape=True)
        )
        return set(self.session.execute(query).scalars())

    def list_rooms(
        self,
        *,
        host_id: uuid.UUID | None,
        search: str | None,
        topic_names: list[str] | None,
        limit: int,
        offset: int,
        details: frozenset[str] = frozenset(),
    ) -> list[Row]:
        """Rooms matching every given filter: ``host_id``; ``search`` contained (case-insensitive) in
        the name or the description; topic named exactly one of ``topic_names``."""
        query = _room_list_statement(details, host_id is not None, bool(search), topic_names is not None)
        values = {
            "host_id": host_id,
            "search": _like_escaped(search) if search else None,
            "topic_names": topic_names,
            "limit": limit,
            "offset": offset,
        }
        return self.session.execute(query, values).all()

    def rooms_participated_by(
        self, user_id: uuid.UUID, limit: int, offset: int, details: frozenset[str] = frozenset()
    ) -> list[Row]:
        query = _rooms_participated_by_statement(details)
        return self.session.execute(query, {"user_id": user_id, "limit": limit, "offset": offset}).all()

    def rooms_not_participated_by(
        self, user_id: uuid.UUID, limit: int, offset: int, details: frozenset[str] = frozenset()
    ) -> list[Row]:
        query = _rooms_not_participated_by_statement(details)
        return self.session.execute(query, {"user_id": user_id, "limit": limit, "offset": offset}).all()

    # --- participants: reads ------------------------------------------------------------------------

    def participants_of(self, room_ids: Sequence[uuid.UUID]) -> dict[str, list[str]]:
        """The user ids of each room's participants, in joining order (then id), by room id; ids as
        text; one query."""
        if not room_ids:
            return {}
        members: dict[str, list[str]] = {}
        for room_id, user_id in self.session.execute(_PARTICIPANTS_OF, {"room_ids": list(set(room_ids))}).all():
            members.setdefault(room_id, []).append(user_id)
        return members

    def is_participant(self, room_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        return bool(self.session.execute(_IS_PARTICIPANT, {"room_id": room_id, "user_id": user_id}).scalar())

    def room_access(self, host_id: uuid.UUID, slug: str, user_id: uuid.UUID | None) -> Row | None:
        """The host's room with exactly this slug, in reply form, plus a last ``participant`` column
        saying whether ``user_id`` participates in it, in one query; ``None`` when there is no such room.
        A ``None`` user participates in nothing (no membership has a null user id)."""
        values = {"host_id": host_id, "slug": slug, "user_id": user_id}
        return self.session.execute(_ROOM_ACCESS, values).one_or_none()

    # --- writes -------------------------------------------------------------------------------------

    def create_room(
        self, *, host_id: uuid.UUID, topic_id: int, name: str, slug: str, description: str
    ) -> Row:
        """Insert a room; raises :class:`DuplicateRoom` when a concurrent create took the host's name
        or slug first."""
        values = dict(
            id=uuid.uuid4(), host_id=host_id, topic_id=topic_id, name=name, slug=slug, description=description
        )
        with unique_violations(_UNIQUE_FIELDS, DuplicateRoom):
            return self.session.execute(pg_insert(rooms).values(**values).returning(*rooms.c)).one()

    def update_room(self, room_id: uuid.UUID, values: dict[str, object]) -> Row:
        """Set ``values`` and bump ``updated``; returns the room after the change."""
        query = update(rooms).where(rooms.c.id == room_id).values(**values, updated=func.now()).returning(*rooms.c)
        return self.session.execute(query).one()

    def delete_room(self, room_id: uuid.UUID) -> Row | None:
        """Delete a room (its memberships go by cascade); returns it, or ``None`` if already gone."""
        return self.session.execute(delete(rooms).where(rooms.c.id == room_id).returning(*rooms.c)).one_or_none()

    def add_participant(self, room_id: uuid.UUID, user_id: uuid.UUID) -> int | None:
        """Add a membership, counting it; returns the join's membership version, ``None`` when the
        membership already existed. Call with the room locked (:meth:`get_room` ``lock=True``)."""
        query = (
            pg_insert(participants)
            .values(room_id=room_id, user_id=user_id)
            .on_conflict_do_nothing(index_elements=["room_id", "user_id"])
            .returning(participants.c.version)
        )
        version = self.session.execute(query).scalar_one_or_none()
        if version is not None:
            self._count_participants([room_id], +1)
        return version

    def remove_participant(self, room_id: uuid.UUID, user_id: uuid.UUID) -> int | None:
        """Remove a membership, counting it; returns the leave's membership version, ``None`` when there
        was no membership. Call with the room locked."""
        query = (
            delete(participants)
            .where(participants.c.room_id == room_id, participants.c.user_id == user_id)
            .returning(membership_versions.next_value())
        )
        version = self.session.execute(query).scalar_one_or_none()
        if version is not None:
            self._count_participants([room_id], -1)
        return version

    def delete_rooms_hosted_by(self, host_id: uuid.UUID) -> list[Row]:
        """Delete every room of a host; returns the deleted rooms, by id."""
        query = delete(rooms).where(rooms.c.host_id == host_id).returning(rooms.c.id, rooms.c.host_id)
        return sorted(self.session.execute(query).all(), key=lambda row: row.id)

    def remove_memberships_of(self, user_id: uuid.UUID) -> list[tuple[uuid.UUID, int]]:
        """Remove every membership of a user; returns ``(room_id, membership version)`` of each leave,
        by room id. The rooms are locked first, in id order, like a join or leave locks its one room, so
        these never deadlock (and each leave's version is taken under its room's lock)."""
        member_of = select(participants.c.room_id).where(participants.c.user_id == user_id)
        locked = (
            select(rooms.c.id).where(rooms.c.id.in_(member_of)).order_by(rooms.c.id).with_for_update(key_share=True)
        )
        room_ids = list(self.session.execute(locked).scalars())
        if not room_ids:
            return []
        query = (
            delete(participants)
            .where(participants.c.user_id == user_id, participants.c.room_id.in_(room_ids))
            .returning(participants.c.room_id, membership_versions.next_value())
        )
        left = sorted((room_id, version) for room_id, version in self.session.execute(query).all())
        self._count_participants([room_id for room_id, _ in left], -1)
        return left

    def _count_participants(self, room_ids: Sequence[uuid.UUID], change: int) -> None:
        if room_ids:
            self.session.execute(
                update(rooms)
                .where(rooms.c.id.in_(room_ids))
                .values(participant_count=rooms.c.participant_count + change)
            )
