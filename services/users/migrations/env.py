"""Alembic environment of the users service: its own schema and version table (``users.alembic_version``)."""

from common.migrations import run_env
from services.users.models import metadata

run_env(metadata)
