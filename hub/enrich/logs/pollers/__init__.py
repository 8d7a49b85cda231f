"""Hub pollers that pull log lines from remote log platforms (Datadog Logs, Splunk) into the log store."""
