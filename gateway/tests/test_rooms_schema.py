"""The rooms part of the schema against the contract's SDL (§2.1, §2.2, §3): names and nullability."""

from __future__ import annotations

from graphql import GraphQLObjectType, parse, print_ast
from graphql.language import FieldDefinitionNode, ObjectTypeDefinitionNode

from gateway.graphql.schema import build_schema
from gateway.settings import Settings

# §2.1 and §2.2, restricted to what the rooms domain owns.
CONTRACT_SDL = """
type Query {
  rooms(hostSlug: String, search: String, topic: [String], first: Int, offset: Int): [RoomType]
  roomsParticipatedByUser(userSlug: String!, first: Int, offset: Int): [RoomType]
  roomsNotParticipatedByUser(userSlug: String!, first: Int, offset: Int): [RoomType]
  room(hostSlug: String!, roomSlug: String!): RoomType
  topics(search: String, minRooms: Int, first: Int, offset: Int): [TopicType]
}
type RoomType {
  id: UUID!
  name: String!
  slug: String!
  host: UserType!
  topic: TopicType!
  description: String!
  participants: [UserType!]!
  updated: DateTime!
  created: DateTime!
}
type TopicType { id: ID! name: String! }
type Mutation {
  createRoom(description: String!, name: String!, topicName: String!): CreateRoom
  deleteRoom(roomId: UUID!): DeleteRoom
  updateRoom(description: String, roomId: UUID!, topicName: String): UpdateRoom
  joinRoom(roomId: UUID!): JoinRoom
  leaveRoom(roomId: UUID!): LeaveRoom
}
type CreateRoom { room: RoomType }
type DeleteRoom { success: Boolean }
type UpdateRoom { room: RoomType }
type JoinRoom { room: RoomType }
type LeaveRoom { room: RoomType }
"""

SCHEMA = build_schema(Settings(env="test"))


def test_room_types_match_the_contract():
    for definition in parse(CONTRACT_SDL).definitions:
        assert isinstance(definition, ObjectTypeDefinitionNode)
        name = definition.name.value
        actual = SCHEMA._schema.type_map.get(name)
        assert isinstance(actual, GraphQLObjectType), f"missing type {name}"
        expected: dict[str, tuple[str, dict[str, str]]] = {}
        for field in definition.fields or ():
            assert isinstance(field, FieldDefinitionNode)
            expected[field.name.value] = (
                print_ast(field.type),
                {arg.name.value: print_ast(arg.type) for arg in field.arguments or ()},
            )
        for field_name, (type_str, args) in expected.items():
            field = actual.fields.get(field_name)
            assert field is not None, f"missing {name}.{field_name}"
            assert str(field.type) == type_str, f"{name}.{field_name}: {field.type} != {type_str}"
            assert {arg: str(a.type) for arg, a in field.args.items()} == args, f"{name}.{field_name} arguments"
        if name not in ("Query", "Mutation"):
            assert set(actual.fields) == set(expected), f"{name} has other fields than the contract's"


def test_topic_and_room_expose_nothing_else():
    """§3: no room count or rooms on a topic, no messages on a room."""
    assert set(SCHEMA._schema.type_map["TopicType"].fields) == {"id", "name"}
    assert "messages" not in SCHEMA._schema.type_map["RoomType"].fields


def test_optional_arguments_print_without_defaults():
    sdl = SCHEMA.as_str()
    assert "rooms(hostSlug: String, search: String, topic: [String], first: Int, offset: Int): [RoomType]" in sdl
    assert "topics(search: String, minRooms: Int, first: Int, offset: Int): [TopicType]" in sdl
