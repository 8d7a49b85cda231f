"""The NOC dashboard: one static page that reads the REST API with the operator's token."""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
