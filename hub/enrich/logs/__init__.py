"""Log enrichment: online template mining of syslog and agent log lines."""
