"""Time-series storage behind one `Store` interface: embedded by default, InfluxDB at scale."""
