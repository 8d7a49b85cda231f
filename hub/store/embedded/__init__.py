"""The embedded store: columnar chunks in SQLite behind an ingest journal, with rollups and retention."""
