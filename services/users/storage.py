"""Every query of the users context. The service calls these verbs inside ``storage.transaction()``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update

from common.db import StorageBase, unique_violations
from services.users.models import EMAIL_UNIQUE, USERNAME_UNIQUE, login_attempts, users


class DuplicateUser(Exception):
    """An insert lost a uniqueness race: ``field`` is ``"email"`` or ``"username"``."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


_UNIQUE_FIELDS = {USERNAME_UNIQUE: "username", EMAIL_UNIQUE: "email"}


class UserStorage(StorageBase):
    # --- reads --------------------------------------------------------------------------------------

    def get(self, user_id: uuid.UUID, *, for_update: bool = False) -> Row | None:
        query = select(users).where(users.c.id == user_id)
        if for_update:
            query = query.with_for_update()
        return self.session.execute(query).one_or_none()

    def get_many(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Row]:
        if not user_ids:
            return {}
        rows = self.session.execute(select(users).where(users.c.id.in_(set(user_ids)))).all()
        return {row.id: row for row in rows}

    def get_by_username(self, username: str) -> Row | None:
        return self.session.execute(select(users).where(users.c.username == username)).one_or_none()

    def get_by_email(self, email: str) -> Row | None:
        """Compared lower-cased on both sides (D1), which the unique index on lower(email) serves."""
        query = select(users).where(func.lower(users.c.email) == func.lower(email))
        return self.session.execute(query).one_or_none()

    def username_taken(self, username: str) -> bool:
        # Stored usernames are lower-case slugs (a check constraint), so lower-casing the candidate
        # makes this the case-insensitive comparison, on the unique index.
        query = select(users.c.id).where(users.c.username == username.lower()).limit(1)
        return self.session.execute(query).first() is not None

    def email_taken(self, email: str) -> bool:
        query = select(users.c.id).where(func.lower(users.c.email) == func.lower(email)).limit(1)
        return self.session.execute(query).first() is not None

    def list_active(self, search: str | None, first: int | None, offset: int) -> list[Row]:
        """Active users (D11) whose username or name contains ``search`` (case-insensitive), by
        username (code point order, whatever the database's locale), then id."""
        query = select(users).where(users.c.is_active)
        if search:
            query = query.where(
                users.c.username.icontains(search, autoescape=True) | users.c.name.icontains(search, autoescape=True)
            )
        query = query.order_by(users.c.username.collate("C"), users.c.id).offset(offset)
        if first is not None:
            query = query.limit(first)
        return list(self.session.execute(query).all())

    # --- writes -------------------------------------------------------------------------------------

    def create_user(self, *, username: str, name: str, email: str, password_hash: str) -> Row:
        """Insert a user; raises :class:`DuplicateUser` when a concurrent registration took the email
        or the username first (the transaction must then be rolled back)."""
        values = dict(id=uuid.uuid4(), username=username, name=name, email=email, password=password_hash)
        with unique_violations(_UNIQUE_FIELDS, DuplicateUser):
            return self.session.execute(insert(users).values(**values).returning(*users.c)).one()

    def update_user(self, user_id: uuid.UUID, values: dict[str, Any]) -> Row:
        query = update(users).where(users.c.id == user_id).values(**values).returning(*users.c)
        return self.session.execute(query).one()

    def delete_user(self, user_id: uuid.UUID) -> Row | None:
        """Delete a user; returns the deleted row, or ``None`` when it was already gone."""
        query = delete(users).where(users.c.id == user_id).returning(*users.c)
        return self.session.execute(query).one_or_none()

    def set_password(self, user_id: uuid.UUID, password_hash: str) -> None:
        self.session.execute(update(users).where(users.c.id == user_id).values(password=password_hash))

    # --- login attempts (D7) ------------------------------------------------------------------------

    def login_limited(
        self, account: str, address: str | None, *, window_seconds: float, max_failures: int, max_attempts: int
    ) -> bool:
        """Whether ``account`` has ``max_failures`` failed attempts, or ``address`` ``max_attempts``
        attempts of any outcome, within the last ``window_seconds``."""
        since = func.now() - timedelta(seconds=window_seconds)
        failures = (
            select(func.count())
            .select_from(login_attempts)
            .where(login_attempts.c.account == account, ~login_attempts.c.succeeded)
            .where(login_attempts.c.attempted_at > since)
            .scalar_subquery()
        )
        if address is None:
            attempts = select(0).scalar_subquery()
        else:
            attempts = (
                select(func.count())
                .select_from(login_attempts)
                .where(login_attempts.c.address == address, login_attempts.c.attempted_at > since)
                .scalar_subquery()
            )
        failed, tried = self.session.execute(select(failures, attempts)).one()
        return failed >= max_failures or (address is not None and tried >= max_attempts)

    def record_login_attempt(self, account: str, address: str | None) -> int:
        """Record an attempt as failed until :meth:`login_succeeded` says otherwise, so attempts still
        being checked already count against the limits."""
        query = insert(login_attempts).values(account=account, address=address).returning(login_attempts.c.id)
        return self.session.execute(query).scalar_one()

    def login_succeeded(self, attempt_id: int, user_id: uuid.UUID) -> None:
        self.session.execute(update(login_attempts).where(login_attempts.c.id == attempt_id).values(succeeded=True))
        self.session.execute(update(users).where(users.c.id == user_id).values(last_login=func.now()))

    def forget_login_account(self, account: str) -> None:
        """Drop a deleted account's link to its attempts. Attempts from a known address stay, anonymous,
        so they keep counting for that address."""
        of_account = login_attempts.c.account == account
        self.session.execute(delete(login_attempts).where(of_account, login_attempts.c.address.is_(None)))
        self.session.execute(update(login_attempts).where(of_account).values(account=None))

    def prune_login_attempts(self, older_than_seconds: float) -> int:
        since = func.now() - timedelta(seconds=older_than_seconds)
        return self.session.execute(delete(login_attempts).where(login_attempts.c.attempted_at < since)).rowcount
