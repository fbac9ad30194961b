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
from service.hubspot.pacing import Clock


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
