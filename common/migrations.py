"""Per-service Alembic environments. Each service keeps its migrations in ``services/<name>/migrations``
with its version table inside its own schema, so it can be migrated and deployed alone.

``python -m common.migrations users rooms messages`` upgrades the named services to head.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text

from common.db import make_engine, sqlalchemy_url

SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"


def run_env(metadata: MetaData) -> None:
    """Body of a service's ``migrations/env.py``: migrate ``metadata.schema`` online."""
    schema = metadata.schema
    url = context.config.get_main_option("sqlalchemy.url")
    engine = make_engine(url)
    with engine.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        connection.commit()
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=True,
            include_name=lambda name, type_, parent: type_ != "schema" or name == schema,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def alembic_config(service: str, database_url: str) -> Config:
    folder = SERVICES_DIR / service / "migrations"
    config = Config()
    config.set_main_option("script_location", str(folder))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return config


def database_url(service: str) -> str:
    url = os.environ.get(f"{service.upper()}_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not url:
        sys.exit(f"set DATABASE_URL (or {service.upper()}_DATABASE_URL) to migrate {service}")
    return url


def upgrade(service: str, database_url: str, revision: str = "head") -> None:
    importlib.import_module(f"services.{service}.models")  # fail early on a broken service
    command.upgrade(alembic_config(service, database_url), revision)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("services", nargs="+")
    parser.add_argument("--revision", default="head")
    args = parser.parse_args(argv)
    for service in args.services:
        upgrade(service, database_url(service), args.revision)
        print(f"migrated {service} to {args.revision}")


if __name__ == "__main__":
    main()
