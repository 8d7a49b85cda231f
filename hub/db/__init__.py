"""The hub's relational state: one SQLAlchemy MetaData every package's tables join (SQLite or PostgreSQL)."""
