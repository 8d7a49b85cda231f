"""Ingest: turns delivered envelopes into durable store writes, whatever the transport."""
