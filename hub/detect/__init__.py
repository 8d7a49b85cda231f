"""Scoring pushed series at the hub with the agents' detector bank (`shared.detect`), in the worker role."""
