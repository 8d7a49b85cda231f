"""The hub's REST API, WebSocket streams and dashboard (FastAPI)."""
