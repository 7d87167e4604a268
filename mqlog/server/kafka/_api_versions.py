"""ApiVersions (key 18, v0-v4): the APIs and versions the server answers.

The answer is the server's API table (``_apis``), so what is advertised is
exactly what is registered. KIP-511: a client may open with an ApiVersions
version newer than the server knows; the server then answers in v0 (whose
header and body every client can read) with ``UNSUPPORTED_VERSION`` and the
supported ranges, and the client retries with the highest version both know.
"""

from __future__ import annotations

import datetime

from kio.schema.errors import ErrorCode

from mqlog.server.kafka._apis import ApiTable, api_table
from mqlog.server.kafka._codec import Entity, Request, build, encode_response, part, response_type
from mqlog.server.kafka._context import ServerState

API_KEY = 18
MIN_VERSION = 0
MAX_VERSION = 4


def _response(table: ApiTable, version: int, error: ErrorCode) -> Entity:
    cls = response_type(API_KEY, version)
    entry = part(cls, "ApiVersion")
    keys = tuple(entry(api_key=api.api_key, min_version=api.min_version,
                       max_version=api.max_version) for api in table)
    return build(cls, error_code=error, api_keys=keys, throttle_time=datetime.timedelta(0))


async def handle(server: ServerState, request: Request) -> Entity:
    """The registered APIs, in the version the client asked for."""
    return _response(api_table(server), request.api_version, ErrorCode.none)


def unsupported_version_frame(table: ApiTable, correlation_id: int) -> bytes:
    """The KIP-511 answer to an ApiVersions request in a version newer than the
    server knows: a v0 response frame with UNSUPPORTED_VERSION and the ranges."""
    body = _response(table, 0, ErrorCode.unsupported_version)
    return encode_response(API_KEY, 0, correlation_id, body)
