"""Alembic environment of the messages service: its own schema and version table (``messages.alembic_version``)."""

from common.migrations import run_env
from services.messages.models import metadata

run_env(metadata)
