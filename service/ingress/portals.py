"""The ingress's portals: one admission ``Policy`` per portal, and what stops the start.

``POST /webhooks/{provider}/{portal}`` verifies with that portal's secrets only
(``service.portals.load_portals``: the portals file, or the one ``default`` portal of the
``CALLBRIDGE_*`` secrets); ``POST /webhooks/{provider}`` is the ``default`` portal. The
portals are loaded once, at start: a request only looks its portal up in a dict (the
lookup happens before a byte of the body is read). Secrets keep their rotation form per
portal (comma-separated values, any one verifies; ``whsec_`` keys beside plain ones).

Metrics and logs label a request with its portal only when the portal exists
(``portal_label``): anything else is ``unknown``, so the label is bounded by the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final

from handlers import REGISTRY, stdwebhooks
from service.config import PROVIDER_SECRETS, Settings, split_secrets
from service.ingress.admission import Policy
from service.ingress.proxy import ConfigError, PublicUrl, check_public_url, parse_proxies
from service.portals import PORTAL_ID, PROVIDER_FIELDS, Portal, PortalsFileError, load_portals
from service.portals import secret_values as secret_values  # the ingress masks them

#: the metrics/log label of a request to a portal that does not exist
UNKNOWN: Final = "unknown"


def portal_secrets(portal: Portal) -> dict[str, tuple[str, ...]]:
    """Provider -> this portal's secrets (empty: the provider is off in this portal)."""
    return {name: split_secrets(portal.provider_secret(name)) for name in REGISTRY}


def policies(portals: list[Portal], base: Policy) -> dict[str, Policy]:
    """Portal id -> its admission policy: ``base`` (limits, normalization) with the
    portal's own secrets."""
    return {p.id: replace(base, secrets=portal_secrets(p)) for p in portals}


def known(portal: str, registry: Mapping[str, Policy]) -> bool:
    """Whether ``portal`` is a well-formed id of a configured portal."""
    return portal in registry and PORTAL_ID.fullmatch(portal) is not None


def portal_label(portal: str, registry: Mapping[str, Policy]) -> str:
    """The portal as a metrics/log label: its id if configured, else ``unknown``."""
    return portal if known(portal, registry) else UNKNOWN


@dataclass(frozen=True)
class Startup:
    """What the ingress starts with: its portals and how it knows its public URL."""

    portals: list[Portal]
    public: PublicUrl


def public_urls(settings: Settings) -> PublicUrl:
    """How this ingress knows its public URL (``ConfigError`` for unusable settings)."""
    base = check_public_url(settings.public_url) if settings.public_url else None
    return PublicUrl(base, parse_proxies(settings.trusted_proxies))


def prepare(settings: Settings) -> Startup:
    """The portals and public URL, or ``ConfigError`` saying what to set."""
    public = public_urls(settings)
    try:
        portals = load_portals(settings)
    except PortalsFileError as exc:
        raise ConfigError(str(exc)) from exc
    from_file = settings.portals_file is not None
    for portal in portals:
        problem = _portal_problem(portal, public, from_file)
        if problem is not None:
            raise ConfigError(problem)
    return Startup(portals, public)


def _portal_problem(portal: Portal, public: PublicUrl, from_file: bool) -> str | None:
    where = f"CALLBRIDGE_PORTALS_FILE portal {portal.id}: providers" if from_file else ""
    if (
        split_secrets(portal.provider_secret("twilio"))
        and public.base is None
        and not public.proxies
    ):
        off = (
            f"or remove twilio from portal {portal.id} in CALLBRIDGE_PORTALS_FILE"
            if from_file
            else "or unset CALLBRIDGE_TWILIO_AUTH_TOKEN"
        )
        return (
            "Twilio is enabled but the ingress cannot know its public URL (Twilio signs it): "
            "set CALLBRIDGE_PUBLIC_URL=https://<your host> or CALLBRIDGE_TRUSTED_PROXIES=<proxy "
            f"IPs/CIDRs> (forwarded headers), {off}"
        )
    for secret in split_secrets(portal.provider_secret("generic")):
        if secret.startswith(stdwebhooks.PREFIX):
            try:
                stdwebhooks.key_bytes(secret)
            except ValueError as exc:
                name = (
                    f"{where}.generic.{PROVIDER_FIELDS['generic']}"
                    if from_file
                    else f"CALLBRIDGE_{PROVIDER_SECRETS['generic'].upper()}"
                )
                return f"{name}: {exc}"
    return None
