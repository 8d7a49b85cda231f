"""Log lines at the hub: their store (search, retention), templates mined from them, semantic search."""
