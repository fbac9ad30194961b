"""Composition: building the parts from the app's :class:`~service.config.Settings`.

The parts take plain arguments and know nothing of the settings; this module is where
``CALLBRIDGE_*`` values become constructor arguments, so every process builds them the
same way.
"""

from __future__ import annotations

import time

import httpx

from service.config import Settings
from service.hubspot import HubSpotClient
from service.hubspot.oauth import OAuthTokenProvider
from service.hubspot.pacing import Clock
from service.hubspot.paths import LEGACY
from service.hubspot.secrets import RefreshTokenStore
from service.portals import Portal, load_portals

#: the OAuth API version date-versioned portals refresh through (``/oauth/2026-03/token``)
OAUTH_DATE_VERSION = "2026-03"


def hubspot_client(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    deadline_s: float = 60.0,
    clock: Clock = time.monotonic,
) -> HubSpotClient:
    """A client for ``CALLBRIDGE_HUBSPOT_URL``/``_TOKEN``/``_RATE``/``_SEARCH_RATE``/
    ``_TIMEOUT_S``; ``transport``, ``deadline_s`` and ``clock`` as for the client."""
    return HubSpotClient(
        settings.hubspot_url,
        settings.hubspot_token.get_secret_value(),
        rate=settings.hubspot_rate,
        search_rate=settings.hubspot_search_rate,
        timeout_s=settings.hubspot_timeout_s,
        transport=transport,
        deadline_s=deadline_s,
        clock=clock,
    )


def refresh_token_store(settings: Settings) -> RefreshTokenStore | None:
    """The encrypted store for rotated OAuth refresh tokens (``CALLBRIDGE_SECRETS_FILE``
    with ``CALLBRIDGE_SECRETS_KEY``), or None when either is unset."""
    if settings.secrets_file is None or settings.secrets_key is None:
        return None
    return RefreshTokenStore(settings.secrets_file, settings.secrets_key.get_secret_value())


def portal_client(
    settings: Settings,
    portal: Portal,
    *,
    store: RefreshTokenStore | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    deadline_s: float = 60.0,
    clock: Clock = time.monotonic,
) -> HubSpotClient:
    """``portal``'s client: its token or OAuth grant, its ``api_version`` and ``rate``, at
    ``CALLBRIDGE_HUBSPOT_URL``. An OAuth portal starts from the refresh token in
    ``store`` if one was stored (it may have been rotated since the file was written)
    and stores rotated ones there."""
    hs = portal.hubspot
    token: str | OAuthTokenProvider
    if hs.oauth is not None:
        stored = store.load(portal.id) if store is not None else None
        token = OAuthTokenProvider(
            settings.hubspot_url,
            hs.oauth.client_id,
            hs.oauth.client_secret.get_secret_value(),
            stored or hs.oauth.refresh_token.get_secret_value(),
            portal=portal.id,
            oauth_version="v1" if hs.api_version == LEGACY else OAUTH_DATE_VERSION,
            on_refresh_token=store.sink(portal.id) if store is not None else None,
            timeout_s=settings.hubspot_timeout_s,
            transport=transport,
            clock=clock,
        )
    else:
        assert hs.token is not None
        token = hs.token.get_secret_value()
    return HubSpotClient(
        settings.hubspot_url,
        token,
        rate=hs.rate,
        search_rate=hs.search_rate,
        timeout_s=settings.hubspot_timeout_s,
        transport=transport,
        deadline_s=deadline_s,
        clock=clock,
        api_version=hs.api_version,
        portal=portal.id,
    )


def portal_clients(
    settings: Settings,
    portals: list[Portal] | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    deadline_s: float = 60.0,
    clock: Clock = time.monotonic,
) -> dict[str, HubSpotClient]:
    """One client per portal (``portals``: default :func:`service.portals.load_portals`),
    by portal id, each with its own pacing budget and token."""
    store = refresh_token_store(settings)
    return {
        p.id: portal_client(
            settings, p, store=store, transport=transport, deadline_s=deadline_s, clock=clock
        )
        for p in (portals if portals is not None else load_portals(settings))
    }
