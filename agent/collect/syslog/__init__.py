"""The syslog receiver: RFC 5424 / RFC 3164 lines from devices become log records (parse only so far)."""
