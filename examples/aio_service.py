"""An HTTP service on mqlog.aio: produce on POST, consume in a background task.

FastAPI with uvicorn, over a log directory::

    python examples/aio_service.py mqlog-data --port 8000
    curl -X POST localhost:8000/orders -H 'content-type: application/json' \\
         -d '{"customer": "acme", "amount": 12.5}'
    curl 'localhost:8000/totals?at_least=1'

``POST /orders`` appends the order to the ``orders`` topic (keyed by customer,
so one customer's orders stay in order) and answers once it is written, with
its partition and offset. A background task, a member of consumer group
``totals``, adds every order to its customer's total and commits after each
batch; ``GET /totals`` returns the totals (``at_least=N``: once N orders were
counted, waiting up to ``wait_s`` seconds). Any other process appending to
``orders`` -- ``mqlog produce``, a synchronous producer -- is counted too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

import mqlog.aio

TOPIC = "orders"
GROUP = "totals"


class Order(BaseModel):
    customer: str
    amount: float


class Totals:
    """Per-customer totals, and a way to wait until enough orders were counted."""

    def __init__(self) -> None:
        self.by_customer: dict[str, float] = {}
        self.orders = 0
        self.changed = asyncio.Condition()

    async def add(self, orders: list[dict]) -> None:
        async with self.changed:
            for order in orders:
                customer = order["customer"]
                self.by_customer[customer] = self.by_customer.get(customer, 0.0) + order["amount"]
            self.orders += len(orders)
            self.changed.notify_all()


async def count_orders(log: mqlog.aio.AsyncLog, totals: Totals) -> None:
    """The background consumer: count each batch, then commit it."""
    async with log.consumer(GROUP, [TOPIC], auto_offset_reset="earliest") as consumer:
        while True:
            messages = await consumer.poll(timeout=None)
            await totals.add([json.loads(message.value) for message in messages])
            await consumer.commit()


def make_app(directory: str, partitions: int = 3) -> FastAPI:
    """The service over the log directory ``directory``."""
    state: dict = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with mqlog.aio.open(directory) as log:
            await log.create_topic(TOPIC, partitions, exist_ok=True)
            state["producer"] = log.producer()
            state["totals"] = totals = Totals()
            consuming = asyncio.create_task(count_orders(log, totals))
            try:
                yield
            finally:
                consuming.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await consuming

    app = FastAPI(title="orders on mqlog.aio", lifespan=lifespan)

    @app.post("/orders")
    async def place(order: Order) -> dict:
        written = await state["producer"].send(TOPIC, order.model_dump_json(),
                                               key=order.customer)
        return {"partition": written.partition, "offset": written.offset}

    @app.get("/totals")
    async def totals(at_least: int = 0, wait_s: float = 10.0) -> dict:
        counted: Totals = state["totals"]
        async with counted.changed:
            try:
                await asyncio.wait_for(counted.changed.wait_for(
                    lambda: counted.orders >= at_least), wait_s)
            except TimeoutError:
                raise HTTPException(504, f"{counted.orders} orders counted, "
                                         f"not {at_least}, within {wait_s} s") from None
            return {"orders": counted.orders, "totals": counted.by_customer}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", help="the log directory (created if missing)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    arguments = parser.parse_args()
    uvicorn.run(make_app(arguments.directory), host=arguments.host, port=arguments.port)


if __name__ == "__main__":
    main()
