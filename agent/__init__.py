"""The Outpost agent: polls devices next to it, scores every series, ships batches to the hub."""
