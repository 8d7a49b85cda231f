"""Who may call the hub's API: API tokens (stored hashed) and the caller they name."""
