"""The PostgreSQL backend (asyncpg): the storage interface's second implementation."""

from liveblog.storage.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
