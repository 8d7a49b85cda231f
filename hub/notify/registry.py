"""The receiver kinds a config's `kind:` can name, and the one function that builds them."""

from __future__ import annotations

from collections.abc import Callable

from hub.notify.alertmanager import AlertmanagerReceiver
from hub.notify.base import Receiver
from hub.notify.config import ReceiverConfig
from hub.notify.webhook import WebhookReceiver
from shared.clock import Clock

# Every receiver class takes (config, *, clock, external_url).
RECEIVERS: dict[str, Callable[..., Receiver]] = {
    "webhook": WebhookReceiver,
    "alertmanager": AlertmanagerReceiver,
}


def build_receiver(cfg: ReceiverConfig, *, clock: Clock | None = None, external_url: str = "") -> Receiver:
    """The receiver for one config entry (not started)."""
    return RECEIVERS[cfg.kind](cfg, clock=clock, external_url=external_url)
