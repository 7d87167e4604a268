"""The APIs this server speaks: one line per handler module.

A new API is a module with ``API_KEY``, ``MIN_VERSION``, ``MAX_VERSION`` and
``async def handle(server, request)``, plus one line in :func:`default_table`.
"""

from __future__ import annotations

from mqlog.server.kafka import (
    _alter_configs,
    _api_versions,
    _create_partitions,
    _create_topics,
    _delete_records,
    _delete_topics,
    _describe_configs,
    _fetch,
    _group_admin,
    _group_handlers,
    _list_offsets,
    _metadata,
    _offset_commit,
    _offset_fetch,
    _produce,
    _producer_id,
)
from mqlog.server.kafka._apis import ApiTable


def default_table() -> ApiTable:
    """A table of every API this server implements."""
    table = ApiTable()
    for module, concurrent in (
        (_api_versions, True),
        (_metadata, True),
        (_produce, False),
        (_fetch, True),
        (_producer_id, True),
        (_list_offsets, True),
        (_describe_configs, True),
        (_create_topics, False),
        (_delete_topics, False),
        (_create_partitions, False),
        (_delete_records, False),
    ):
        table.register(module.API_KEY, module.MIN_VERSION, module.MAX_VERSION, module.handle,
                       concurrent=concurrent)
    # Consumer groups and committed offsets (key, versions, handler; concurrent: reads only).
    table.register(10, 0, 6, _group_handlers.find_coordinator, concurrent=True)
    table.register(11, 0, 9, _group_handlers.join_group)
    table.register(14, 0, 5, _group_handlers.sync_group)
    table.register(12, 0, 4, _group_handlers.heartbeat)
    table.register(13, 0, 5, _group_handlers.leave_group)
    table.register(8, 2, 9, _offset_commit.offset_commit)
    table.register(9, 1, 9, _offset_fetch.offset_fetch, concurrent=True)
    table.register(47, 0, 0, _offset_fetch.offset_delete)
    table.register(15, 0, 5, _group_admin.describe_groups, concurrent=True)
    table.register(16, 0, 5, _group_admin.list_groups, concurrent=True)
    table.register(42, 0, 2, _group_admin.delete_groups)
    # Topic settings (key, versions, handler).
    table.register(_alter_configs.INCREMENTAL_API_KEY, *_alter_configs.INCREMENTAL_VERSIONS,
                   _alter_configs.incremental_alter_configs)
    table.register(_alter_configs.LEGACY_API_KEY, *_alter_configs.LEGACY_VERSIONS,
                   _alter_configs.alter_configs)
    return table
