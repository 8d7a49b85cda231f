"""The `device` label: every series a collector emits names the configured device it came from.

Why one place: collectors label series with what the device tells them (`interface`, `sensor`, `index`),
so two devices of one profile produce identical keys that the hub would merge into one series whose
values alternate between devices. The scheduler passes every poll through `DeviceStamp`, so no
collector kind (nor a profile, nor a collector bug) can emit a series without it or with another
device's name: a `device` label already on a key is replaced by the configured name.
"""

from __future__ import annotations

from dataclasses import replace

from shared.model import CollectResult, SeriesKey

DEVICE_LABEL = "device"


class DeviceStamp:
    """Adds `device=<name>` to the keys of one target's polls and names it as its events' source.

    The labelled key of each collector key is remembered (a device's keys repeat every poll), so a poll
    costs one dict lookup per sample, not a new key; past `max_keys` distinct keys (a device whose
    label values churn) the memo starts over rather than grow without bound.
    """

    def __init__(self, device: str, max_keys: int = 100_000) -> None:
        self.device = device
        self._max_keys = max_keys
        self._keys: dict[SeriesKey, SeriesKey] = {}

    def key(self, key: SeriesKey) -> SeriesKey:
        """`key` with the device label set to this device."""
        stamped = self._keys.get(key)
        if stamped is None:
            if len(self._keys) >= self._max_keys:
                self._keys.clear()
            labels = dict(key.labels)
            labels[DEVICE_LABEL] = self.device
            stamped = self._keys[key] = SeriesKey.of(key.metric, labels)
        return stamped

    def result(self, result: CollectResult) -> CollectResult:
        """The poll with every sample and limit keyed per device and every event from this device."""
        return CollectResult(
            self.device,
            [replace(s, key=self.key(s.key)) for s in result.samples],
            [e if e.source == self.device else replace(e, source=self.device) for e in result.events],
            result.errors,
            {self.key(k): v for k, v in result.limits.items()},
        )
