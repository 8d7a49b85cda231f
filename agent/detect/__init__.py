"""The agent's per-target wiring of the shared detector bank (shared.detect)."""
