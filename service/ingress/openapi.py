"""``/openapi.json``: the ingress described from the typed generic event (msgspec schema),
so that the document and the decoder cannot drift apart; schemathesis fuzzes against it.

``/webhooks/generic`` is the ``default`` portal; ``/webhooks/generic/{portal}`` is the same
operation for one portal of ``CALLBRIDGE_PORTALS_FILE`` (every provider has both forms)."""

from __future__ import annotations

from typing import Any

import msgspec

from handlers.generic import Batch, GenericEvent

ERROR = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


PORTAL = {
    "name": "portal",
    "in": "path",
    "required": True,
    "description": "a portal id of CALLBRIDGE_PORTALS_FILE (default: the single-portal settings)",
    "schema": {"type": "string", "pattern": "^[a-z0-9-]{1,40}$"},
}


def document(version: str = "1") -> dict[str, Any]:
    """The OpenAPI 3.1 document of the webhook port."""
    (_, _), components = msgspec.json.schema_components(
        (GenericEvent, Batch), ref_template="#/components/schemas/{name}"
    )
    components["Error"] = ERROR
    health = {
        "get": {
            "responses": {
                "200": {"description": "ok", "content": {"application/json": {"schema": {}}}},
                "503": {"description": "Kafka unavailable (readyz)"},
            }
        }
    }
    generic: dict[str, Any] = {
        "operationId": "postGenericEvent",
        "summary": "One generic call event or a batch of them",
        "parameters": [
            _header("X-Callbridge-Timestamp", "Unix seconds (plain secret)"),
            _header("X-Callbridge-Signature", "v1=<hex HMAC-SHA256>"),
            _header("webhook-id", "Standard Webhooks message id (whsec_ key)"),
            _header("webhook-timestamp", "Standard Webhooks Unix seconds"),
            _header("webhook-signature", "v1,<base64> (space-separated)"),
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/GenericEvent"},
                            {"$ref": "#/components/schemas/Batch"},
                        ]
                    }
                }
            },
        },
        "responses": {
            "202": {
                "description": "every event is in Kafka",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "accepted": {"type": "integer"},
                                "keys": {"type": "array", "items": {"type": "string"}},
                            },
                        }
                    }
                },
            },
            "400": _error("the payload can never be a valid event"),
            "401": _error("bad, missing, stale or replayed signature"),
            "404": _error(
                "provider not enabled, or unknown portal (a portals file without a portal "
                "'default')"
            ),
            "408": _error("the body did not arrive in time"),
            "413": _error("body too large"),
            "415": _error("unsupported media type"),
            "503": _error("Kafka unavailable: retry"),
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "callbridge ingress",
            "version": version,
            "description": "Provider webhooks in, normalized call events durably in Kafka.",
        },
        "paths": {
            "/webhooks/generic": {"post": generic},
            "/webhooks/generic/{portal}": {
                "post": {
                    **generic,
                    "operationId": "postGenericPortalEvent",
                    "summary": "One generic call event or a batch of them, for one portal",
                    "parameters": [PORTAL, *generic["parameters"]],
                    "responses": {
                        **generic["responses"],
                        "401": _error(
                            "bad, missing, stale or replayed signature (another portal's "
                            "secret included)"
                        ),
                        "404": _error("unknown portal, or provider not enabled in this portal"),
                    },
                }
            },
            "/healthz": health,
            "/readyz": health,
        },
        "components": {"schemas": components},
    }
