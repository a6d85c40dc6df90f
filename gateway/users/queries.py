"""Query fields of the users domain: ``users``, ``user``, ``authStatus``, ``me`` (§5)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from gateway.graphql.context import GraphQLContext
from gateway.graphql.pagination import page
from gateway.users.types import AuthStatusType, UserType


@strawberry.type
class UsersQuery:
    """Root query fields about users."""

    @strawberry.field(description="Active users, ordered by username; search matches username or name.")
    async def users(
        self,
        info: Info[GraphQLContext, None],
        search: str | None = strawberry.UNSET,
        first: int | None = strawberry.UNSET,
        offset: int | None = strawberry.UNSET,
    ) -> list[UserType | None] | None:
        """Active users only (D11); ``search`` is a case-insensitive substring of username or name;
        ``first``/``offset`` page the list (B2)."""
        context = info.context
        window = page(_value(first), _value(offset), context.settings.list_cap)  # type: ignore[arg-type]
        if window.first == 0:
            return []
        records = await context.call(
            "users", "list_active", search=_value(search) or None, first=window.first, offset=window.offset
        )
        for record in records:
            context.prime_user(record)
        return [UserType.from_record(record) for record in records]

    @strawberry.field(description="The user with exactly this username.")
    async def user(self, info: Info[GraphQLContext, None], user_slug: str) -> UserType | None:
        """Exact, case-sensitive username match, else ``User not found`` (``NOT_FOUND``)."""
        record = await info.context.user_by_username(user_slug)
        info.context.prime_user(record)
        return UserType.from_record(record)

    @strawberry.field(description="Whether the request is authenticated, and as whom.")
    async def auth_status(self, info: Info[GraphQLContext, None]) -> AuthStatusType | None:
        """Never fails by itself; only a bad credential does (§4.2)."""
        user = await info.context.current_user()
        return AuthStatusType(is_authenticated=user is not None, user=UserType.maybe(user))

    @strawberry.field(description="The authenticated user; login required.")
    async def me(self, info: Info[GraphQLContext, None]) -> UserType | None:
        """The caller, or the login-required error (§4.1)."""
        return UserType.from_record(await info.context.require_user())


def _value(argument: object) -> object:
    """An optional argument's value, ``None`` when it was not given."""
    return None if argument is strawberry.UNSET else argument
