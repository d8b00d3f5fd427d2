"""Admin and ingest keys, compared in constant time."""

import hmac
from typing import Annotated

from fastapi import Depends, Request

from api.deps import AppState, StateDep
from api.errors import ApiError


def _bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def require_admin(request: Request, state: StateDep) -> None:
    expected = state.settings.ADMIN_API_KEY
    if not expected:
        # Refuse rather than open: an unset key must never expose participants' data.
        raise ApiError(403, "admin endpoints are disabled: ADMIN_API_KEY is not configured")
    token = _bearer_token(request)
    if not token or not hmac.compare_digest(token.encode(), expected.encode()):
        raise ApiError(401, "missing or wrong admin key: send Authorization: Bearer <ADMIN_API_KEY>",
                       headers={"WWW-Authenticate": "Bearer"})


async def require_ingest_key(request: Request, state: StateDep) -> None:
    check_ingest_key(request, state)


def check_ingest_key(request: Request, state: AppState) -> None:
    """Only when INGEST_API_KEYS is set. `?key=` exists because sendBeacon cannot set headers.

    An ingest key is public (it ships in the front end's JavaScript), so it grants writes only:
    `require_admin` never accepts one.
    """
    keys = state.settings.ingest_keys
    if not keys:
        return
    given = request.headers.get("x-api-key") or _bearer_token(request) or request.query_params.get("key", "")
    given_bytes = given.encode()
    # Compare against every key, so the time taken does not tell which one nearly matched.
    matches = [hmac.compare_digest(given_bytes, key) for key in keys]
    if not given or not any(matches):
        raise ApiError(401, "missing or wrong ingest key: send it as X-API-Key, Authorization: Bearer, or ?key=")


AdminDep = Annotated[None, Depends(require_admin)]
IngestKeyDep = Annotated[None, Depends(require_ingest_key)]
