"""One helper object per event loop per open engine (the append watch, the
flush cycles), kept with ``Engine.attachment``: it goes when the engine
closes or the loop is collected."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from mqlog.logstore.engine import Engine

Helper = TypeVar("Helper")


def per_loop(engine: Engine, name: str,
             make: Callable[[Engine, asyncio.AbstractEventLoop], Helper]) -> Helper:
    """The helper ``name`` of ``engine`` for the running event loop, made with
    ``make(engine, loop)`` on first use."""
    loop = asyncio.get_running_loop()
    helpers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Helper] = (
        engine.attachment(name, weakref.WeakKeyDictionary))
    found = helpers.get(loop)
    if found is None:
        found = helpers[loop] = make(engine, loop)
    return found
