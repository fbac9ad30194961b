"""The HubSpot client: every Calls API operation (plus contacts search/read and v4
call→contact associations), async, typed, and paced to HubSpot's rate limits.

- :class:`HubSpotClient` — the methods (``client.py``), over one paced, retrying
  :class:`~service.hubspot.session.Session`.
- models (``models.py``) — msgspec Structs of the spec's request/response schemas.
- wire helpers (``wire.py``) — sans-I/O payload building, ``chunks``, ``outcomes``.
- errors (``errors.py``) — one exception per HubSpot error category that matters.
- pacing (``pacing.py``) — the rolling-window budget arithmetic.

See ``service/hubspot/README.md`` for a short example.
"""

from service.hubspot.client import HubSpotClient
from service.hubspot.errors import (
    HubSpotAuthError,
    HubSpotConflict,
    HubSpotDailyLimitExceeded,
    HubSpotError,
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
    Call,
    CallBatchResponse,
    CallCreateInput,
    CollectionResponse,
    Contact,
    CrmObject,
    ErrorBody,
    Filter,
    FilterGroup,
    SearchRequest,
    SearchResponse,
    Sort,
)
from service.hubspot.pacing import RollingWindow
from service.hubspot.wire import (
    MAX_BATCH,
    Dead,
    ItemOutcome,
    Ok,
    Retry,
    association,
    association_pair,
    chunks,
    create_input,
    outcomes,
    update_input,
)

__all__ = [
    "MAX_BATCH",
    "AssociatedObject",
    "AssociatedObjects",
    "AssociationBatchResponse",
    "AssociationInput",
    "AssociationResult",
    "AssociationSpec",
    "BatchError",
    "BatchResponse",
    "BatchUpdateInput",
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
    "HubSpotMissingScopes",
    "HubSpotNotFound",
    "HubSpotRateLimited",
    "HubSpotUnavailable",
    "HubSpotUnknownOutcome",
    "HubSpotValidationError",
    "ItemOutcome",
    "Ok",
    "Retry",
    "RollingWindow",
    "SearchRequest",
    "SearchResponse",
    "Sort",
    "association",
    "association_pair",
    "chunks",
    "create_input",
    "outcomes",
    "update_input",
]
