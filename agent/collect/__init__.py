"""Collectors: each polls one target (this host, an SNMP device, a BMC) and returns a CollectResult."""
