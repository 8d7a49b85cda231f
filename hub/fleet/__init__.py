"""The fleet: which agents deliver, their counters, and the sequence gaps derived from what arrived."""
