"""Redfish BMC polling: config, the redfish-library seam, vendor quirks and the collector."""
