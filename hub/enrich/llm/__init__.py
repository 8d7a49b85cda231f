"""LLM enrichment of incidents: redaction of what leaves the hub and validation of what comes back."""
