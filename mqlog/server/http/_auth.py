"""The bearer token: with a token set, every route but ``/openapi.json`` and
the docs needs ``Authorization: Bearer <token>`` (401 otherwise, with
``WWW-Authenticate: Bearer``). Compared in constant time."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request


async def check_token(request: Request) -> None:
    """The dependency every route has: 401 unless the request carries the token.
    ``async`` so that it runs in the loop: FastAPI runs a plain ``def``
    dependency in a worker thread, a thread handoff per request."""
    expected: str | None = request.app.state.token
    if expected is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             expected.encode()):
        raise HTTPException(401, "a bearer token is required (Authorization: Bearer TOKEN)",
                            headers={"WWW-Authenticate": "Bearer"})
