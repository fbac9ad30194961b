"""The HubSpot client: every Calls API operation (plus contacts search/read and v4
call→contact associations), async, typed, and paced to HubSpot's rate limits.

- :class:`HubSpotClient` — the methods (``client.py``), over one paced, retrying
  :class:`~service.hubspot.session.Session`.
- models (``models.py``) — msgspec Structs of the spec's request/response schemas.
- wire helpers (``wire.py``) — sans-I/O payload building, ``chunks``, ``outcomes``.
- errors (``errors.py``) — one exception per HubSpot error category that matters.
- pacing (``pacing.py``) — the rolling-window budget arithmetic.
- setup (``setup.py``) — ``ensure_call_key_property``: the unique call-key property that
  makes creates idempotent (``callbridge hubspot setup``).

Never imports the writer, the app's settings or the event model (a test checks).

See ``service/hubspot/README.md`` for a short example.
"""

from service.hubspot.client import HubSpotClient
from service.hubspot.errors import (
    HubSpotAuthError,
    HubSpotConflict,
    HubSpotDailyLimitExceeded,
    HubSpotError,
    HubSpotFenced,
    HubSpotMissingScopes,
    HubSpotNotFound,
    HubSpotRateLimited,
    HubSpotUnavailable,
    HubSpotUnknownOutcome,
    HubSpotValidationError,
)
from service.hubspot.models import (
    AssociatedObject,
    AssociatedObjects,
    AssociationBatchResponse,
    AssociationInput,
    AssociationResult,
    AssociationSpec,
    BatchError,
    BatchResponse,
    BatchUpdateInput,
    BatchUpsertInput,
    Call,
    CallBatchResponse,
    CallCreateInput,
    CollectionResponse,
    Contact,
    CrmObject,
    ErrorBody,
    Filter,
    FilterGroup,
    Property,
    PropertyCreate,
    PropertyGroup,
    PropertyGroupCreate,
    SearchRequest,
    SearchResponse,
    Sort,
)
from service.hubspot.oauth import (
    OAuthRefreshError,
    OAuthTokenProvider,
    StaticToken,
    TokenProvider,
)
from service.hubspot.pacing import RollingWindow
from service.hubspot.paths import API_VERSIONS, ApiPaths
from service.hubspot.wire import (
    CALL_ASSOCIATION_TYPE_IDS,
    MAX_BATCH,
    Dead,
    ItemOutcome,
    Ok,
    Retry,
    UniqueConflict,
    association,
    association_pair,
    chunks,
    conflicts_by_trace,
    create_input,
    is_unique_conflict,
    outcomes,
    unique_conflict,
    update_input,
    upsert_input,
)

__all__ = [
    "API_VERSIONS",
    "CALL_ASSOCIATION_TYPE_IDS",
    "MAX_BATCH",
    "ApiPaths",
    "AssociatedObject",
    "AssociatedObjects",
    "AssociationBatchResponse",
    "AssociationInput",
    "AssociationResult",
    "AssociationSpec",
    "BatchError",
    "BatchResponse",
    "BatchUpdateInput",
    "BatchUpsertInput",
    "Call",
    "CallBatchResponse",
    "CallCreateInput",
    "CollectionResponse",
    "Contact",
    "CrmObject",
    "Dead",
    "ErrorBody",
    "Filter",
    "FilterGroup",
    "HubSpotAuthError",
    "HubSpotClient",
    "HubSpotConflict",
    "HubSpotDailyLimitExceeded",
    "HubSpotError",
    "HubSpotFenced",
    "HubSpotMissingScopes",
    "HubSpotNotFound",
    "HubSpotRateLimited",
    "HubSpotUnavailable",
    "HubSpotUnknownOutcome",
    "HubSpotValidationError",
    "ItemOutcome",
    "OAuthRefreshError",
    "OAuthTokenProvider",
    "Ok",
    "Property",
    "PropertyCreate",
    "PropertyGroup",
    "PropertyGroupCreate",
    "Retry",
    "RollingWindow",
    "SearchRequest",
    "SearchResponse",
    "Sort",
    "StaticToken",
    "TokenProvider",
    "UniqueConflict",
    "association",
    "association_pair",
    "chunks",
    "conflicts_by_trace",
    "create_input",
    "is_unique_conflict",
    "outcomes",
    "unique_conflict",
    "update_input",
    "upsert_input",
]
