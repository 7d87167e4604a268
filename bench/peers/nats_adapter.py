"""NATS JetStream through nats-py (asyncio), over TCP to a nats-server on 127.0.0.1.

One stream, file storage, one subject; each case deletes and re-creates it.
Durability: the nats-server 2.9 that Debian ships writes JetStream messages
through the page cache and fsyncs its file store on its own timer only; it has
no per-write sync setting (the ``sync_interval`` option, which can be set to
``always``, came with 2.10, and 2.9 rejects it as an unknown field). Its rows
therefore belong to the relaxed class only.

The throughput consumers are durable pull consumers: the stream form fetches
1,000 messages and acknowledges them with one confirmed ack of the last one
(``AckPolicy.ALL``, ``ack_sync``); the queue form fetches one message at a time
and confirms each ack (``AckPolicy.EXPLICIT``). The latency consumer is a push
consumer: a pull ``fetch`` of more than one message waits until the batch is
full or the request expires, and ``fetch(1)`` pays a request round trip per
message, so neither measures delivery latency.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable

import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from peers import core

STREAM = "BENCH"
SUBJECT = "bench"
DURABILITY = "file store, fsync on a timer only (2.9 has no per-write sync)"


class NatsAdapter(core.Adapter):
    def __init__(self, url: str) -> None:
        self.setting = core.Setting("NATS JetStream", DURABILITY, core.RELAXED)
        self.latency_calls = ("js.publish (awaits the PubAck), 1 per call -> push consumer "
                              "next_msg + ack per message")
        self.url = url
        self.loop = asyncio.new_event_loop()
        self.nc = self.loop.run_until_complete(nats.connect(f"nats://{url}"))
        self.js = self.nc.jetstream(publish_async_max_pending=core.BATCH)

    def _run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    async def _fresh(self) -> None:
        try:
            await self.js.delete_stream(STREAM)
        except NotFoundError:
            pass
        await self.js.add_stream(StreamConfig(name=STREAM, subjects=[SUBJECT],
                                              storage=StorageType.FILE))

    async def _publish_async(self, values: list[bytes], records: int, deadline: float) -> int:
        """publish_async with at most BATCH PubAcks outstanding; waits for them all."""
        futures = []
        count, clock = len(values), time.perf_counter
        for number in range(records):
            if number % core.BATCH == 0 and clock() > deadline:
                break
            futures.append(await self.js.publish_async(SUBJECT, values[number % count]))
        await self.js.publish_async_completed()
        failed = [future.exception() for future in futures if future.exception()]
        if failed:
            raise RuntimeError(f"{len(failed)} publishes failed: {failed[0]!r}")
        return len(futures)

    def close(self) -> None:
        """Delete the stream and disconnect; after an interrupted run the server may
        not answer any more, so that is given 5 s and then the loop is torn down."""
        async def shut() -> None:
            try:
                await self.js.delete_stream(STREAM)
            except NotFoundError:
                pass
            await self.nc.close()

        try:
            self._run(asyncio.wait_for(shut(), 5.0))
        except Exception as error:  # the server is stopped next anyway
            print(f"closing the NATS connection: {error!r}", file=sys.stderr)
        finally:
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()

            async def drain() -> None:
                await asyncio.gather(*pending, return_exceptions=True)

            self._run(drain())
            self.loop.close()

    def cases(self, values: list[bytes]) -> list[core.Case]:
        count = len(values)
        subscription: list = []

        def prepare_empty(records: int) -> None:
            self._run(self._fresh())

        def prepare_backlog(ack_policy: AckPolicy) -> Callable[[int], None]:
            async def fill(records: int) -> None:
                await self._fresh()
                await self._publish_async(values, records, float("inf"))
                config = ConsumerConfig(ack_policy=ack_policy, max_ack_pending=-1)
                subscription[:] = [await self.js.pull_subscribe(SUBJECT, durable="bench",
                                                                config=config)]

            return lambda records: self._run(fill(records))

        async def publish_single(records: int, deadline: float) -> int:
            publish, clock = self.js.publish, time.perf_counter
            for number in range(records):
                if clock() > deadline:
                    return number
                await publish(SUBJECT, values[number % count])
            return records

        async def fetch_ack(records: int, deadline: float, per_fetch: int) -> int:
            pull, done = subscription[0], 0
            try:
                while done < records and time.perf_counter() <= deadline:
                    messages = await pull.fetch(min(per_fetch, records - done), timeout=5)
                    if per_fetch == 1:
                        await messages[0].ack_sync()
                    else:
                        await messages[-1].ack_sync()  # AckPolicy.ALL: acks the whole fetch
                    done += len(messages)
            finally:
                await pull.unsubscribe()
            return done

        return [
            core.Case("produce", "single", "js.publish (awaits the PubAck), 1 per call",
                      lambda records, deadline: self._run(publish_single(records, deadline)),
                      prepare_empty),
            core.Case("produce", "batch",
                      f"js.publish_async, up to {core.BATCH:,} PubAcks outstanding",
                      lambda records, deadline: self._run(
                          self._publish_async(values, records, deadline)),
                      prepare_empty),
            core.Case("consume", "stream",
                      f"pull fetch({core.BATCH:,}) + ack_sync of the last (AckPolicy.ALL)",
                      lambda records, deadline: self._run(
                          fetch_ack(records, deadline, core.BATCH)),
                      prepare_backlog(AckPolicy.ALL)),
            core.Case("consume", "queue", "pull fetch(1) + ack_sync, per message",
                      lambda records, deadline: self._run(fetch_ack(records, deadline, 1)),
                      prepare_backlog(AckPolicy.EXPLICIT)),
        ]

    def start_latency(self) -> None:
        self._run(self._fresh())

    def send_paced(self, rate: int, count: int, value_bytes: int) -> None:
        async def send(value: bytes) -> None:
            await self.js.publish(SUBJECT, value)

        self._run(core.paced_async(send, rate, count, value_bytes))

    def receiver(self) -> dict:
        return {"system": "nats", "url": self.url}


def receive(spec: dict, count: int, max_s: float, ready: Callable[[], object]) -> list[int]:
    """The latency consumer: a durable push consumer, ``next_msg`` + ``ack`` each."""

    async def consume() -> list[int]:
        nc = await nats.connect(f"nats://{spec['url']}")
        js = nc.jetstream()
        config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.NEW,
                                max_ack_pending=-1)
        sub = await js.subscribe(SUBJECT, durable="latency", manual_ack=True, config=config)
        latencies: list[int] = []
        ready()
        deadline = time.monotonic() + max_s
        while len(latencies) < count and time.monotonic() < deadline:
            try:
                message = await sub.next_msg(timeout=0.1)
            except nats.errors.TimeoutError:
                continue
            latencies.append(core.latency_ns(message.data, time.monotonic_ns()))
            await message.ack()
        await sub.unsubscribe()
        await nc.close()
        return latencies

    return asyncio.run(consume())
