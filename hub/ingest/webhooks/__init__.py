"""Parsers of data pushed by other tools (InfluxDB line protocol, ...): bytes in, the hub's value types out.

Parsers only: authentication, limits and answers live in the API routes that call them.
"""
