"""GraphQL types of the users and auth part of the schema, with the names and nullability of §2.1."""

from __future__ import annotations

from typing import Any

import strawberry

from gateway.graphql.scalars import CanonicalUUID, GenericScalar


@strawberry.type(name="UserType", description="A user's public profile.")
class UserType:
    """Only public fields: never email, flags, or dates (§3)."""

    id: CanonicalUUID = strawberry.field(description="The user's id (UUID4).")
    username: str = strawberry.field(description="The user's slug, unique; used in profile and room URLs.")
    name: str = strawberry.field(description="Display name.")
    bio: str = strawberry.field(description='Free text, "" by default.')
    avatar: str | None = strawberry.field(
        description='Stored file name relative to /media/ (e.g. "avatars/me.png"); "" when none, never null.'
    )

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> UserType:
        """Build from a users-service record."""
        return cls(
            id=record["id"],
            username=record["username"],
            name=record["name"],
            bio=record.get("bio") or "",
            avatar=record.get("avatar") or "",
        )

    @classmethod
    def maybe(cls, record: dict[str, Any] | None) -> UserType | None:
        """``from_record`` that passes ``None`` (a missing user) through."""
        return None if record is None else cls.from_record(record)


@strawberry.type(name="AuthStatusType", description="Whether the request is authenticated, and as whom.")
class AuthStatusType:
    """The answer of ``authStatus``."""

    is_authenticated: bool = strawberry.field(description="True when a valid credential came with the request.")
    user: UserType | None = strawberry.field(description="The authenticated user; null when anonymous.")


@strawberry.type(name="ObtainJSONWebToken", description="The result of a successful login.")
class ObtainJSONWebToken:
    """Returned by ``tokenAuth``."""

    payload: GenericScalar = strawberry.field(description='The token payload {"email", "exp", "origIat"}.')
    refresh_expires_in: int = strawberry.field(description="Epoch seconds after which refreshing stops working.")
    user: UserType | None = strawberry.field(description="The logged-in user.")
    success: bool | None = strawberry.field(description="Always true on success.")
    token: str = strawberry.field(description="The JWT, also set as the HttpOnly JWT cookie.")


@strawberry.type(name="Verify", description="The result of verifyToken.")
class Verify:
    """Returned by ``verifyToken``."""

    payload: GenericScalar = strawberry.field(description="The verified token's payload.")


@strawberry.type(name="Refresh", description="The result of refreshToken.")
class Refresh:
    """Returned by ``refreshToken``."""

    payload: GenericScalar = strawberry.field(description="The new token's payload (origIat unchanged).")
    refresh_expires_in: int = strawberry.field(description="origIat + the refresh window, epoch seconds.")
    token: str = strawberry.field(description="The new JWT, also set as the JWT cookie.")


@strawberry.type(name="DeleteJSONWebTokenCookie", description="The result of deleteToken (logout).")
class DeleteJSONWebTokenCookie:
    """Returned by ``deleteToken``."""

    deleted: bool = strawberry.field(description="Whether the request carried a JWT cookie.")


@strawberry.type(name="DeleteRefreshTokenCookie", description="The result of deleteRefreshToken.")
class DeleteRefreshTokenCookie:
    """Returned by ``deleteRefreshToken``."""

    deleted: bool = strawberry.field(description="Whether the request carried a JWT-refresh-token cookie.")


@strawberry.type(name="RegisterUser", description="The result of registerUser.")
class RegisterUser:
    """Returned by ``registerUser``."""

    user: UserType | None = strawberry.field(description="The new user (not logged in).")
    success: bool | None = strawberry.field(description="Always true on success.")


@strawberry.type(name="UpdateUser", description="The result of updateUser.")
class UpdateUser:
    """Returned by ``updateUser``."""

    user: UserType | None = strawberry.field(description="The updated current user.")


@strawberry.type(name="DeleteAccount", description="The result of deleteAccount.")
class DeleteAccount:
    """Returned by ``deleteAccount``."""

    success: bool | None = strawberry.field(description="Always true on success.")
