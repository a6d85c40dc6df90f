"""The users/auth part of the schema against the contract's SDL (§2.1, §2.2): names and nullability."""

from __future__ import annotations

from graphql import (
    FieldDefinitionNode,
    GraphQLObjectType,
    GraphQLScalarType,
    ObjectTypeDefinitionNode,
    ScalarTypeDefinitionNode,
    parse,
    print_ast,
)

from gateway.graphql.schema import build_schema
from gateway.settings import Settings

# §2.1 and §2.2, restricted to what the users domain owns (rooms and messages add theirs).
CONTRACT_SDL = """
type Query {
  users(search: String, first: Int, offset: Int): [UserType]
  user(userSlug: String!): UserType
  authStatus: AuthStatusType
  me: UserType
}
scalar UUID
type UserType { id: UUID! username: String! name: String! bio: String! avatar: String }
type AuthStatusType { isAuthenticated: Boolean! user: UserType }
type Mutation {
  tokenAuth(email: String!, password: String!): ObtainJSONWebToken
  verifyToken(token: String): Verify
  refreshToken(token: String): Refresh
  deleteToken: DeleteJSONWebTokenCookie
  deleteRefreshToken: DeleteRefreshTokenCookie
  registerUser(email: String!, name: String!, password1: String!, password2: String!, username: String!): RegisterUser
  updateUser(avatar: Upload, bio: String, name: String, removeAvatar: Boolean): UpdateUser
  deleteAccount(password: String!): DeleteAccount
}
type ObtainJSONWebToken {
  payload: GenericScalar! refreshExpiresIn: Int! user: UserType success: Boolean token: String!
}
scalar GenericScalar
type Verify { payload: GenericScalar! }
type Refresh { payload: GenericScalar! refreshExpiresIn: Int! token: String! }
type DeleteJSONWebTokenCookie { deleted: Boolean! }
type DeleteRefreshTokenCookie { deleted: Boolean! }
type RegisterUser { user: UserType success: Boolean }
type UpdateUser { user: UserType }
scalar Upload
type DeleteAccount { success: Boolean }
"""

SCHEMA = build_schema(Settings(env="test"))


def contract_types() -> dict[str, dict[str, tuple[str, dict[str, str]]] | None]:
    """Type name -> {field: (type, {arg: type})}; ``None`` for scalars."""
    types: dict[str, dict[str, tuple[str, dict[str, str]]] | None] = {}
    for definition in parse(CONTRACT_SDL).definitions:
        if isinstance(definition, ScalarTypeDefinitionNode):
            types[definition.name.value] = None
        elif isinstance(definition, ObjectTypeDefinitionNode):
            fields: dict[str, tuple[str, dict[str, str]]] = {}
            for field in definition.fields or ():
                assert isinstance(field, FieldDefinitionNode)
                args = {arg.name.value: print_ast(arg.type) for arg in field.arguments or ()}
                fields[field.name.value] = (print_ast(field.type), args)
            types[definition.name.value] = fields
    return types


def test_user_and_auth_types_match_the_contract():
    for name, fields in contract_types().items():
        actual = SCHEMA._schema.type_map.get(name)
        assert actual is not None, f"missing type {name}"
        if fields is None:
            assert isinstance(actual, GraphQLScalarType), name
            continue
        assert isinstance(actual, GraphQLObjectType), name
        for field_name, (type_str, args) in fields.items():
            field = actual.fields.get(field_name)
            assert field is not None, f"missing {name}.{field_name}"
            assert str(field.type) == type_str, f"{name}.{field_name}: {field.type} != {type_str}"
            assert {arg: str(a.type) for arg, a in field.args.items()} == args, f"{name}.{field_name} arguments"
        if name not in ("Query", "Mutation"):  # root types gain other domains' fields
            assert set(actual.fields) == set(fields), f"{name} has extra fields"


def test_user_type_exposes_nothing_private():
    user_type = SCHEMA._schema.type_map["UserType"]
    assert set(user_type.fields) == {"id", "username", "name", "bio", "avatar"}


def test_optional_arguments_print_without_defaults():
    sdl = SCHEMA.as_str()
    assert "verifyToken(token: String): Verify" in sdl
    assert "updateUser(avatar: Upload, bio: String, name: String, removeAvatar: Boolean): UpdateUser" in sdl
    assert "users(search: String, first: Int, offset: Int): [UserType]" in sdl


def test_every_root_field_is_nullable():
    for root in (SCHEMA._schema.query_type, SCHEMA._schema.mutation_type):
        for name, field in root.fields.items():
            assert not str(field.type).endswith("!"), name
