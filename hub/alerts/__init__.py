"""Alerts: rule signals become deduplicated alerts with a lifecycle, grouped into incidents and notified.

Data flow: bus messages → `rules/` (one module per source) → `Signal`s → `engine` (fingerprint, dedup,
flap, inhibition, silences and maintenance, auto-resolve) → `grouping` (Alertmanager's group_wait /
group_interval / repeat_interval per route) → notifications, and `incidents` (one per group) with a
timeline. `service` runs it as a hub component and is what the API calls.
"""
