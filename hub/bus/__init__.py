"""The hub's event bus: small typed messages (`messages`) between the stages that react to what happened.

Ingest says a batch was stored, detectors say a series turned anomalous, alerts say an alert changed;
each stage subscribes to the topics it reacts to under its own group name and reads what it needs from
the store. The same code runs in one process (`memory`, the default) or as `api` + N `worker` processes
sharing NATS JetStream (`nats`): `hub.bus.factory.build_bus` picks one from `hub.bus.config`. The
semantics both honour are in `hub.bus.base`; `hub.bus.metrics.BusCollector` exports the counters.
"""
