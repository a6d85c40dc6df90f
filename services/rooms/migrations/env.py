"""Alembic environment of the rooms service: its own schema and version table (``rooms.alembic_version``)."""

from common.migrations import run_env
from services.rooms.models import metadata

run_env(metadata)
