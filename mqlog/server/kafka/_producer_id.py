"""InitProducerId (API key 22): ids for idempotent producers.

A producer id is 63 random bits, as an embedded idempotent producer's, so ids
handed out by this server, by other servers and by embedded producers over
the same directory do not collide (the engine's producer table keys appends
by id). The epoch starts at 0; a client that re-initialises (``producer_id``
and ``producer_epoch`` of its old session given) keeps its id and gets the
next epoch, which fences its older incarnation. Transactional ids are
refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which clients treat as
fatal: the server has no transactions.
"""

from __future__ import annotations

import random

from kio.schema.errors import ErrorCode

from mqlog.server.kafka._codec import NO_THROTTLE, Entity, Request, build, response_type
from mqlog.server.kafka._context import ServerState

API_KEY = 22
MIN_VERSION = 0
MAX_VERSION = 5

#: Kafka's largest producer epoch; a client past it must take a new id.
EPOCH_MAX = 32767


async def handle(server: ServerState, request: Request) -> Entity:
    """A new producer id, or the next epoch of the one the client had."""
    body = request.body
    response = response_type(request.api_key, request.api_version)
    if body.transactional_id is not None:
        return build(response, throttle_time=NO_THROTTLE,
                     error_code=ErrorCode.transactional_id_authorization_failed,
                     producer_id=-1, producer_epoch=-1)
    old_id = getattr(body, "producer_id", -1)
    old_epoch = getattr(body, "producer_epoch", -1)
    if old_id >= 0 and 0 <= old_epoch < EPOCH_MAX:
        producer_id, epoch = old_id, old_epoch + 1
    else:
        producer_id, epoch = random.getrandbits(63), 0
    return build(response, throttle_time=NO_THROTTLE, error_code=ErrorCode.none,
                 producer_id=producer_id, producer_epoch=epoch)
