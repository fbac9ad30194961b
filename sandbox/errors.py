"""HubSpot's error body, as one exception type raised anywhere in a request."""

from __future__ import annotations

import uuid
from typing import Any


class ApiError(Exception):
    """An error answered as ``{status: "error", message, correlationId, category, ...}``.

    ``context`` values are lists of strings, as in HubSpot's (and the spec's) schema.
    ``extra`` adds top-level keys (the rate-limit body's ``errorType``/``policyName``).
    """

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        context: dict[str, list[str]] | None = None,
        sub_category: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.errors = errors
        self.context = context
        self.sub_category = sub_category
        self.extra = extra
        self.headers = headers

    def body(self, correlation_id: str) -> dict[str, Any]:
        """The response body for this error."""
        out: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": correlation_id,
            "category": self.category,
        }
        if self.sub_category is not None:
            out["subCategory"] = self.sub_category
        if self.errors is not None:
            out["errors"] = self.errors
        if self.context is not None:
            out["context"] = self.context
        if self.extra:
            out.update(self.extra)
        return out

    def batch_item(self) -> dict[str, Any]:
        """This error as one entry of a 207 response's ``errors`` list."""
        out: dict[str, Any] = {
            "status": "error",
            "category": self.category,
            "message": self.message,
            "context": self.context or {},
        }
        if self.sub_category is not None:
            out["subCategory"] = self.sub_category
        if self.errors is not None:
            out["errors"] = self.errors
        return out


def new_correlation_id() -> str:
    """A fresh correlation id (a UUID, as HubSpot's)."""
    return str(uuid.uuid4())


def validation_error(message: str, **kw: Any) -> ApiError:
    """A 400 ``VALIDATION_ERROR``."""
    return ApiError(400, "VALIDATION_ERROR", message, **kw)


def not_found(message: str, **kw: Any) -> ApiError:
    """A 404 ``OBJECT_NOT_FOUND``."""
    return ApiError(404, "OBJECT_NOT_FOUND", message, **kw)


def missing_scopes(scope: str) -> ApiError:
    """HubSpot's 403 for a token without a scope the operation needs."""
    return ApiError(
        403,
        "MISSING_SCOPES",
        "This app hasn't been granted all required scopes to make this call. "
        "Read more about required scopes here: https://developers.hubspot.com/scopes.",
        errors=[
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": [scope]},
            }
        ],
        extra={"links": {"scopes": "https://developers.hubspot.com/scopes"}},
    )
