"""The InfluxDB store: line-protocol writes, InfluxQL reads, a local ledger for batch ids and events."""
