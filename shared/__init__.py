"""Code both the agent and the hub use: value types, the wire codec, TLS, clock and logging."""
