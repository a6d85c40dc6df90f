"""Who wrote a message: the author's username and avatar for ``new`` frames, from the gateway's user
directory (:mod:`gateway.users.directory`), which serves the GraphQL side too. ``AuthorCache`` is its name
here."""

from __future__ import annotations

from gateway.users.directory import UserDirectory as AuthorCache

__all__ = ["AuthorCache"]
