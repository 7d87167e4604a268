"""``GET /metrics``: the Prometheus exposition of the log and of this server.

The page is built afresh at each scrape (:func:`mqlog.metrics.exposition`:
the log's topics and groups as they are now, then the server's request
counters and its engine's counters), in a worker thread: a wide log takes tens
of milliseconds to describe, which the event loop must not wait for.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response

from mqlog.metrics import CONTENT_TYPE, ServerMetrics, exposition

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, summary="Prometheus metrics",
            responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}},
                             "description": "The Prometheus text format (docs/metrics.md)."}})
async def metrics(request: Request) -> Response:
    """Every metric of docs/metrics.md, in the Prometheus text format."""
    server_metrics: ServerMetrics = request.app.state.metrics
    page = await asyncio.to_thread(exposition, request.app.state.log, server_metrics)
    return Response(page, media_type=CONTENT_TYPE)
