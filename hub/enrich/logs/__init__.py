"""Log enrichment: templates mined from log lines and their semantic search."""
