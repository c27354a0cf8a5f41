"""Opening the indexer database: a SQLite file by default, PostgreSQL by a `postgresql://` URL; migrated with
Alembic on open. One code path: everything else uses SQLAlchemy Core on the returned engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Engine

from attribution.errors import AttributionError

__all__ = ["IndexerDBError", "database_url", "open_engine", "migrate", "head_revision"]

MIGRATIONS = Path(__file__).with_name("migrations")


class IndexerDBError(AttributionError):
    """The indexer database cannot be opened or migrated; the message names the URL (without password)."""


def database_url(target: str | Path) -> str:
    """A SQLAlchemy URL: a path becomes `sqlite:///PATH`, `postgresql://` uses the psycopg (3) driver."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + text.split("://", 1)[1]
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser()}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL: the API reads while the follower writes; synchronous=NORMAL is durable across process crashes in WAL.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    # 64 MiB of page cache (default 2 MiB): index maintenance and the sorts of a deferred index rebuild stay in
    # memory; pages are only allocated as they are used
    cur.execute("PRAGMA cache_size=-65536")
    cur.close()


def open_engine(target: str | Path, *, migrate_schema: bool = True) -> Engine:
    """An engine on `target` (path or URL), migrated to the latest schema unless `migrate_schema` is False."""
    url = database_url(target)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = sa.create_engine(url, pool_pre_ping=True)
    except (sa.exc.ArgumentError, ImportError) as e:
        raise IndexerDBError(f"cannot use database URL {_safe(url)}: {e}; use a file path or postgresql://") from e
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if migrate_schema:
        migrate(engine)
    return engine


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Apply Alembic migrations up to `revision`."""
    from attribution.indexer.bulk import restore_indexes

    cfg = _config()
    try:
        with engine.begin() as conn:
            if revision != "head" or MigrationContext.configure(conn).get_current_revision() != head_revision():
                restore_indexes(conn)  # indexes dropped for a catch-up: a migration sees what its revision expects
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except sa.exc.OperationalError as e:
        raise IndexerDBError(f"cannot migrate {_safe(str(engine.url))}: {e.orig}; is the database up and "
                             "writable?") from e


def head_revision() -> str | None:
    """The newest revision shipped."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def _safe(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)
