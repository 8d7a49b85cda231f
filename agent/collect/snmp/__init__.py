"""SNMP polling: config, the pysnmp seam, data-driven profiles and the collector."""
