"""Config model of a Redfish BMC target."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from shared.config_errors import InputFile, SecretFile

# Named vendor workarounds (see quirks.py for what each does and which firmware needs it).
Quirk = Literal["ilo4-thermal", "no-sessions"]


class RedfishConfig(BaseModel):
    """One BMC. TLS verification is on unless `verify_tls: false` (self-signed BMCs; warned once)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["redfish"] = "redfish"
    name: str = Field(min_length=1)
    url: str = Field(pattern=r"^https?://[^/\s]+/?$")
    username: str | None = None
    password: SecretStr | None = None
    password_file: SecretFile | None = None
    verify_tls: bool = True
    ca_file: InputFile | None = None
    interval_s: float = Field(default=60.0, gt=0)
    # A full read (all systems, chassis, sensors, logs) gets this long; what was read by then is published.
    deadline_s: float = Field(default=30.0, gt=0)
    request_timeout_s: float = Field(default=10.0, gt=0)
    # Requests in flight to this BMC at once: BMCs are small computers that fall over under load.
    max_concurrent_requests: int = Field(default=2, ge=1, le=2)
    read_logs: bool = True
    # GETs per poll for processors, memory modules and their metrics (a 64-DIMM host needs ~190 without
    # $expand); what does not fit is read by the next polls, in turn. 0: not read.
    component_requests: int = Field(default=48, ge=0)
    quirks: tuple[Quirk, ...] = ()

    @model_validator(mode="after")
    def _credentials(self) -> RedfishConfig:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        has_password = self.password is not None or self.password_file is not None
        if has_password != (self.username is not None):
            raise ValueError("username and password (or password_file) go together")
        if self.username is not None and not self.url.startswith("https://"):
            raise ValueError("credentials are only sent over https:// (the url is plain http)")
        return self
