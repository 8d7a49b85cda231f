"""Config models of SNMP targets: version, credentials (secrets or `*_file` references), timing, profile."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from shared.config_errors import InputDir, SecretFile

AuthProtocol = Literal["md5", "sha", "sha224", "sha256", "sha384", "sha512"]
PrivProtocol = Literal["des", "aes128", "aes192", "aes256"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def read_secret(value: SecretStr | None, file: Path | None) -> str | None:
    """Returns the secret given inline or read (stripped) from its file; never logs it.

    Raises:
        OSError: the referenced file cannot be read.
    """
    if value is not None:
        return value.get_secret_value()
    if file is not None:
        return file.read_text().strip()
    return None


def _one_of(value: object, file: object, what: str) -> None:
    if value is not None and file is not None:
        raise ValueError(f"give {what} or {what}_file, not both")


class UsmUser(_Frozen):
    """An SNMPv3 USM user. Security level follows from which protocols are set:
    none -> noAuthNoPriv, auth only -> authNoPriv, auth and priv -> authPriv."""

    username: str = Field(min_length=1)
    auth_protocol: AuthProtocol | None = None
    auth_key: SecretStr | None = None
    auth_key_file: SecretFile | None = None
    priv_protocol: PrivProtocol | None = None
    priv_key: SecretStr | None = None
    priv_key_file: SecretFile | None = None
    context_name: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> UsmUser:
        _one_of(self.auth_key, self.auth_key_file, "auth_key")
        _one_of(self.priv_key, self.priv_key_file, "priv_key")
        has_auth_key = self.auth_key is not None or self.auth_key_file is not None
        has_priv_key = self.priv_key is not None or self.priv_key_file is not None
        if (self.auth_protocol is None) != (not has_auth_key):
            raise ValueError("auth_protocol and auth_key (or auth_key_file) go together")
        if (self.priv_protocol is None) != (not has_priv_key):
            raise ValueError("priv_protocol and priv_key (or priv_key_file) go together")
        if self.priv_protocol is not None and self.auth_protocol is None:
            raise ValueError("privacy needs authentication (authPriv)")
        return self

    @property
    def security_level(self) -> str:
        if self.priv_protocol:
            return "authPriv"
        return "authNoPriv" if self.auth_protocol else "noAuthNoPriv"


class SnmpConfig(_Frozen):
    """One SNMP device. `community`/`community_file` for v1/v2c, `usm` for v3."""

    kind: Literal["snmp"] = "snmp"
    name: str = Field(min_length=1)
    address: str = Field(min_length=1)
    port: int = Field(default=161, ge=1, le=65535)
    version: Literal["1", "2c", "3"] = "2c"
    community: SecretStr | None = None
    community_file: SecretFile | None = None
    usm: UsmUser | None = None
    interval_s: float = Field(default=60.0, gt=0)
    timeout_s: float = Field(default=2.0, gt=0)
    retries: int = Field(default=1, ge=0, le=5)
    # Variables one GETBULK asks for, shared by the columns walked side by side. 50 keeps a response of
    # counters near one Ethernet frame; agents trim a GETBULK answer that would not fit (RFC 3416 4.2.3)
    # rather than fail it. Fewer, fuller responses cost the agent less CPU per OID.
    max_repetitions: int = Field(default=50, ge=1, le=200)
    # Pins a profile by name instead of matching sysObjectID.
    profile: str | None = None
    # Extra profile directory merged over the shipped profiles (same name overrides).
    profiles_dir: InputDir | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, v: object) -> object:
        return str(v) if isinstance(v, int) else v

    @model_validator(mode="after")
    def _credentials(self) -> SnmpConfig:
        _one_of(self.community, self.community_file, "community")
        if self.version == "3":
            if self.usm is None:
                raise ValueError("version 3 needs usm")
        elif self.community is None and self.community_file is None:
            raise ValueError(f"version {self.version} needs community or community_file")
        return self


class TrapV3User(UsmUser):
    """A v3 user whose traps are accepted; `engine_id` (hex) is the sender's authoritative engine ID."""

    engine_id: str = Field(pattern=r"^(0x)?[0-9a-fA-F]{10,64}$")


class TrapConfig(_Frozen):
    """The SNMP trap receiver; off unless `enabled`."""

    enabled: bool = False
    listen: str = Field(default="0.0.0.0:162", pattern=r"^[^:\s]+:\d{1,5}$")
    communities: list[SecretStr] = Field(default_factory=list)
    v3_users: list[TrapV3User] = Field(default_factory=list)
