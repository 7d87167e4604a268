"""The API table: which Kafka APIs and versions this server answers, and how.

One :class:`ApiTable` per server, built by
:func:`mqlog.server.kafka._handlers.default_table` (one line per handler
module) and kept in ``ServerState.extensions`` so that ApiVersions can
advertise it. Invariants: what ApiVersions advertises is exactly what is
registered; every registered version has a schema in the codec, so a
registered request always decodes to a body of the version asked for.

``concurrent``: a request of a concurrent API (one that changes nothing a
later request on the same connection could read: ApiVersions, Metadata,
ListOffsets...) may run alongside the requests before and after it; any
other request runs alone, after every earlier request of its connection has
finished, and before any later one starts. Responses go out in request order
either way (see ``_connection``). A handler may return None: then no
response is written (the connection does so for Produce with ``acks=0``
itself).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterator

from kio.index import UnknownEntity, load_request_schema, load_response_schema

from mqlog.server.kafka._context import Handler, ServerState

#: Where a server keeps its table in ``ServerState.extensions``.
EXTENSION = "apis"


@dataclasses.dataclass(frozen=True)
class Api:
    """One registered API: versions ``min_version``..``max_version`` (inclusive).
    ``immediate``: the handler is a plain function, not ``async def`` (see
    ``_context``)."""

    api_key: int
    min_version: int
    max_version: int
    handler: Handler
    concurrent: bool = False
    immediate: bool = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "immediate", not inspect.iscoroutinefunction(self.handler))

    def supports(self, version: int) -> bool:
        """True when ``version`` is in the registered range."""
        return self.min_version <= version <= self.max_version


class ApiTable:
    """API key -> :class:`Api`; filled before the server starts."""

    def __init__(self) -> None:
        self._apis: dict[int, Api] = {}

    def register(self, api_key: int, min_version: int, max_version: int, handler: Handler,
                 *, concurrent: bool = False) -> None:
        """Serve ``api_key`` in versions ``min_version``..``max_version`` with
        ``handler``. ValueError if the key is registered already or a version in
        the range has no request or response schema."""
        if api_key in self._apis:
            raise ValueError(f"API key {api_key} is registered already")
        if not 0 <= min_version <= max_version:
            raise ValueError(f"bad version range {min_version}..{max_version}")
        for version in range(min_version, max_version + 1):
            try:
                load_request_schema(api_key, version)
                load_response_schema(api_key, version)
            except UnknownEntity as error:
                raise ValueError(f"API key {api_key} v{version} has no schema") from error
        self._apis[api_key] = Api(api_key, min_version, max_version, handler, concurrent)

    def get(self, api_key: int) -> Api | None:
        """The API registered under ``api_key``, or None."""
        return self._apis.get(api_key)

    def __iter__(self) -> Iterator[Api]:
        """The registered APIs in key order."""
        return iter(sorted(self._apis.values(), key=lambda api: api.api_key))

    def __len__(self) -> int:
        return len(self._apis)


def api_table(server: ServerState) -> ApiTable:
    """The table of the server ``server`` is the state of."""
    table = server.extensions[EXTENSION]
    assert isinstance(table, ApiTable)
    return table
