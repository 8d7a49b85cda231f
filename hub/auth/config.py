"""The `auth:` section of hub.yaml: token lifetimes, signing-key rotation and the rate limits."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BucketConfig(_Frozen):
    """A token bucket: `rate` requests a second sustained, `burst` at once."""

    rate: float = Field(gt=0, le=1_000_000)
    burst: int = Field(ge=1, le=1_000_000)


class RateLimitsConfig(_Frozen):
    """Per route group. Login is strict (password guessing): per client IP and per username."""

    login_per_ip: BucketConfig = BucketConfig(rate=0.2, burst=10)
    login_per_user: BucketConfig = BucketConfig(rate=0.1, burst=5)
    # Every API request, before its credential is checked (floods with bad credentials stop here). A NOC
    # whose dashboards share one address or key must not hit these: the store's own admission control
    # (QueryRunner) is what bounds the work of queries.
    api_per_ip: BucketConfig = BucketConfig(rate=1000, burst=2000)
    # Authenticated requests per principal: GETs (read) and changes (write).
    read_per_principal: BucketConfig = BucketConfig(rate=500, burst=1000)
    write_per_principal: BucketConfig = BucketConfig(rate=100, burst=200)


class AuthConfig(_Frozen):
    """Users, sessions and API keys (hub/auth)."""

    access_ttl_s: float = Field(default=900, ge=10, le=86_400)
    # A login session (its refresh tokens) ends this long after the login, refreshed or not.
    session_ttl_s: float = Field(default=7 * 86_400, ge=60, le=90 * 86_400)
    signing_key_rotate_s: float = Field(default=7 * 86_400, ge=60, le=365 * 86_400)
    rate_limits: RateLimitsConfig = RateLimitsConfig()
