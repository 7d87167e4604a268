"""The APIs this server speaks: one line per handler module.

A new API is a module with ``API_KEY``, ``MIN_VERSION``, ``MAX_VERSION`` and
``async def handle(server, request)``, plus one line in :func:`default_table`.
"""

from __future__ import annotations

from mqlog.server.kafka import _api_versions, _metadata
from mqlog.server.kafka._apis import ApiTable


def default_table() -> ApiTable:
    """A table of every API this server implements."""
    table = ApiTable()
    for module, concurrent in (
        (_api_versions, True),
        (_metadata, True),
    ):
        table.register(module.API_KEY, module.MIN_VERSION, module.MAX_VERSION, module.handle,
                       concurrent=concurrent)
    return table
