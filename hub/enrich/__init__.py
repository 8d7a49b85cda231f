"""Enrichment stages that add meaning to what the hub ingests (log templates, summaries)."""
