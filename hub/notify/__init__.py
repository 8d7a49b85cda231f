"""Notification delivery: receivers (webhook, Alertmanager) behind a durable, retrying dispatcher.

The alerts engine hands a `Notification` to `Dispatcher.submit` (or `submit_in` inside its own
transaction) and never waits on a receiver; see docs/notifications.md.
"""
