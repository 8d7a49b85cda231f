"""Webhook sources: the senders of `/webhooks/generic/{source_id}`, their secrets, signature schemes and
field mappings, stored by the hub and managed through `/api/v1/webhook-sources`."""
