"""What the agent keeps until the hub has it: batching, the disk spool, rollups under pressure, delivery."""
