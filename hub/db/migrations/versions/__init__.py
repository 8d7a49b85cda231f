"""Alembic revisions, oldest first. Each one is frozen: explicit DDL, no imports of the models."""
