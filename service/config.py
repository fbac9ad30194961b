"""One typed settings object, read from ``CALLBRIDGE_*`` environment variables.

Names are part of the product's contract (see README "Configuration"): operators,
manifests and scripts rely on them. Secrets are ``SecretStr`` so that they never
appear in a repr, a log line or a traceback.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

#: provider name -> the settings attribute holding its secret (None = disabled).
PROVIDER_SECRETS: dict[str, str] = {
    "twilio": "twilio_auth_token",
    "aircall": "aircall_token",
    "zoom": "zoom_secret_token",
    "ringcentral": "ringcentral_verification_token",
    "vonage": "vonage_signature_secret",
    "dialpad": "dialpad_secret",
    "generic": "generic_secret",
}


class Settings(BaseSettings):
    """Every knob callbridge reads. Environment wins over defaults; CLI flags win over both."""

    model_config = SettingsConfigDict(env_prefix="CALLBRIDGE_", extra="ignore")

    # Kafka
    kafka_bootstrap: str = "127.0.0.1:9092"
    topic_events: str = "calls.events"
    topic_dlq: str = "calls.dlq"
    topic_ids: str = "calls.ids"
    topic_parked: str = "calls.dlq.parked"
    create_topics: bool = True
    topic_partitions: int = Field(default=6, ge=1)

    # HubSpot (the sandbox by default)
    hubspot_url: str = "http://127.0.0.1:8090"
    hubspot_token: SecretStr = SecretStr("sandbox-token")
    hubspot_rate: int = Field(default=100, ge=1)
    hubspot_search_rate: int = Field(default=5, ge=1)
    hubspot_timeout_s: float = Field(default=10.0, gt=0)

    # Ingress
    ingress_host: str = "127.0.0.1"
    ingress_port: int = 8080
    public_url: str | None = None
    max_body_bytes: int = 1024 * 1024
    #: answer 503 when Kafka has not acknowledged within this time (providers wait 3-15 s)
    produce_timeout_s: float = Field(default=2.5, gt=0)
    #: /metrics, /healthz and /readyz of the ingress (never /metrics on the webhook port)
    ingress_metrics_port: int = 9101
    #: a request body not received within this time is answered 408
    ingress_body_timeout_s: float = Field(default=10.0, gt=0)
    #: uvicorn's limit_concurrency (connections + tasks; beyond it uvicorn answers 503)
    ingress_limit_concurrency: int = Field(default=256, ge=1)
    #: uvicorn's listen backlog
    ingress_backlog: int = Field(default=512, ge=1)
    #: comma-separated IPs/CIDRs of proxies whose X-Forwarded-Proto/-Host/-Port are
    #: trusted to rebuild the public URL (Twilio signatures) when CALLBRIDGE_PUBLIC_URL is unset
    trusted_proxies: str = ""

    # Provider secrets: a provider without one is disabled.
    twilio_auth_token: SecretStr | None = None
    aircall_token: SecretStr | None = None
    zoom_secret_token: SecretStr | None = None
    ringcentral_verification_token: SecretStr | None = None
    vonage_signature_secret: SecretStr | None = None
    dialpad_secret: SecretStr | None = None
    generic_secret: SecretStr | None = None

    # Normalization
    default_region: str = "US"
    external_account_id: str | None = None
    owner_map: dict[str, str] = Field(default_factory=dict)
    disposition_map: dict[str, str] = Field(default_factory=dict)

    # Writer
    writer_group: str = "callbridge-writer"
    writer_health_port: int = 8081
    #: consumer-group session timeout: how soon a crashed writer's partitions move on
    writer_session_timeout_ms: int = Field(default=30_000, ge=6_000)
    writer_linger_ms: int = Field(default=500, ge=0)
    writer_max_buffer: int = Field(default=5000, ge=100)
    #: the buffer's bound in bytes of buffered records (the writer stops fetching beyond it)
    writer_max_buffer_bytes: int = Field(default=64 * 1024 * 1024, ge=1024 * 1024)
    #: how often the writer exports its partitions' true consumer lag
    writer_lag_interval_s: float = Field(default=10.0, gt=0)
    #: where the writer keeps its on-disk map of calls.ids (default: a fresh temp dir)
    writer_state_dir: str | None = None
    writer_flush_deadline_s: float = Field(default=20.0, gt=0)
    #: search mode only (no unique callbridge_call_key): the worst search-index lag to assume.
    #: A search miss for a create of unknown outcome is trusted once a call created after it
    #: is visible, or, with no such call, after this long (or twice the lag observed)
    writer_reconcile_after_s: float = Field(default=600.0, ge=0)
    #: calls.ids records untouched this long are dropped from memory (and the topic); an
    #: event of a call older than this is looked up in HubSpot before a create
    writer_ids_retention_days: float = Field(default=30.0, gt=0)
    #: how long to wait before trying again when HubSpot's daily budget is spent
    writer_daily_retry_s: float = Field(default=60.0, gt=0)
    contact_cache_ttl_s: float = 300.0
    contact_negative_ttl_s: float = 30.0

    # Contact matching (service/contacts; README "Contact matching")
    #: a number several contacts share: associate all of them, the most recently
    #: modified one, or none (logged as contact_match_shared and counted)
    contact_match: Literal["all", "latest", "none"] = "latest"
    #: a number no contact has: leave the call unassociated, or create a contact for it
    unknown_caller: Literal["ignore", "create"] = "ignore"
    #: custom contact properties holding phone numbers, comma-separated
    contact_phone_properties: str = ""
    #: where each portal's phone index (SQLite) lives; default ~/.local/state/callbridge/contacts
    contact_index_dir: Path | None = None
    #: one incremental search (lastmodifieddate > last seen) per this many seconds
    contact_index_refresh_s: float = Field(default=30.0, gt=0)
    #: re-list every contact this often, dropping deleted/merged ones (0: never)
    contact_index_rebuild_s: float = Field(default=86_400.0, ge=0)
    #: while the first build runs, a lookup waits for it up to this long after the writer
    #: starts, rather than spending searches (0: search at once)
    contact_index_warm_wait_s: float = Field(default=30.0, ge=0)
    #: requests per 10 s the index build may spend (0: only the client's own pacing)
    contact_index_build_rate: int = Field(default=0, ge=0)
    #: a contact that appears later is associated with its number's calls this recent
    contact_late_match_days: float = Field(default=7.0, ge=0)
    #: an unknown-caller create of unknown outcome is searched for after this long
    contact_create_reconcile_s: float = Field(default=10.0, ge=0)

    @property
    def contact_phone_property_list(self) -> list[str]:
        """``CALLBRIDGE_CONTACT_PHONE_PROPERTIES`` as a list."""
        return [p.strip() for p in self.contact_phone_properties.split(",") if p.strip()]

    # Dead letters
    dlq_max_attempts: int = Field(default=5, ge=1)
    #: how often the writer refreshes the DLQ depth/age gauges (0 disables)
    dlq_metrics_interval_s: float = Field(default=60.0, ge=0)

    # Logging
    log_level: str = "INFO"
    log_format: str = "auto"  # auto | json | console

    # Many portals (service/portals.py): without the file, the settings above are the
    # one portal "default"
    portals_file: Path | None = None
    #: Fernet key encrypting OAuth refresh tokens at rest (service/hubspot/secrets.py)
    secrets_key: SecretStr | None = None
    #: where rotated OAuth refresh tokens are kept, encrypted (needs secrets_key)
    secrets_file: Path | None = None

    def provider_secret(self, provider: str) -> str | None:
        """The secret enabling ``provider``, or None when the provider is disabled."""
        attr = PROVIDER_SECRETS.get(provider)
        if attr is None:
            return None
        value: SecretStr | None = getattr(self, attr)
        return value.get_secret_value() if value is not None else None

    def provider_secrets(self, provider: str) -> tuple[str, ...]:
        """Every configured secret of ``provider`` (rotation: comma-separated, any one
        verifies; blanks ignored); empty when the provider is disabled."""
        return split_secrets(self.provider_secret(provider))

    @cached_property
    def enabled_providers(self) -> list[str]:
        return sorted(p for p in PROVIDER_SECRETS if self.provider_secrets(p))


def split_secrets(raw: str | None) -> tuple[str, ...]:
    """Rotation: every comma-separated value of a secret (blanks ignored)."""
    return tuple(part.strip() for part in (raw or "").split(",") if part.strip())
