"""The Outpost hub: ingest, store, confirm, alert and serve what the agents send."""
