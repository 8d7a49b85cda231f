"""Who may call the hub and what they may do: users, API keys, JWT sessions, roles, rate limits, audit."""
