"""Tables of the users context, all in the PostgreSQL schema ``users``.

The database repeats the input rules (slug usernames, non-blank names, lengths, lower-cased email
uniqueness), so a writer that bypasses the service still cannot store a bad row.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import UUID

from common.db import service_metadata
from common.outbox import outbox_table

metadata = service_metadata("users")

USERNAME_MAX_LENGTH = 200
NAME_MAX_LENGTH = 200
EMAIL_MAX_LENGTH = 254
BIO_MAX_LENGTH = 500
AVATAR_MAX_LENGTH = 100

# Constraint names the storage maps unique violations by (C14).
USERNAME_UNIQUE = "uq_users_username"
EMAIL_UNIQUE = "uq_users_email_lower"

users = Table(
    "users",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column("email", String(EMAIL_MAX_LENGTH), nullable=False),
    Column("username", String(USERNAME_MAX_LENGTH), nullable=False),
    Column("name", String(NAME_MAX_LENGTH), nullable=False),
    Column("bio", String(BIO_MAX_LENGTH), nullable=False, server_default=""),
    Column("avatar", String(AVATAR_MAX_LENGTH), nullable=False, server_default=""),
    Column("password", Text, nullable=False),
    Column("is_staff", Boolean, nullable=False, server_default=false()),
    Column("is_active", Boolean, nullable=False, server_default=true()),
    Column("date_joined", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_login", DateTime(timezone=True), nullable=True),
    UniqueConstraint("username", name=USERNAME_UNIQUE),
    # What slugify() can produce: lower-case ASCII letters, digits, "_" and "-".
    CheckConstraint("username ~ '^[-a-z0-9_]+$'", name="username_slug"),
    CheckConstraint("name ~ '[^[:space:]]'", name="name_not_blank"),
    CheckConstraint("email ~ '[^[:space:]]'", name="email_not_blank"),
)

# D1: emails are unique compared lower-cased, and stored as typed.
Index(EMAIL_UNIQUE, func.lower(users.c.email), unique=True)

# D7: login attempts live in the database, so the limits hold across every gateway and service process.
login_attempts = Table(
    "login_attempts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("account", Text, nullable=True),  # the lower-cased email tried; NULL once the account is deleted
    Column("address", Text, nullable=True),  # the client address, when the gateway knows it
    Column("succeeded", Boolean, nullable=False, server_default=false()),
    Column("attempted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_login_attempts_account_attempted_at", "account", "attempted_at"),
    Index("ix_login_attempts_address_attempted_at", "address", "attempted_at"),
    Index("ix_login_attempts_attempted_at", "attempted_at"),
)

outbox = outbox_table(metadata)
