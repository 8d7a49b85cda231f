"""Transports deliver envelope bytes to the hub and report what the hub said."""
