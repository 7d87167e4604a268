"""The log API: topics as Kafka sees them (list, describe, produce, read),
groups with their lag, and dead letters.

Every route answers from the open log at the moment of the request; nothing is
cached between requests.
"""

from __future__ import annotations

import dataclasses

import pydantic
from fastapi import APIRouter, Request

from mqlog.log import Log

router = APIRouter(tags=["log"])


def log_of(request: Request) -> Log:
    """The open log the app serves."""
    log: Log = request.app.state.log
    return log


class TopicList(pydantic.BaseModel):
    topics: list[str]


class PartitionInfo(pydantic.BaseModel):
    partition: int
    start_offset: int
    end_offset: int
    records: int
    size_bytes: int
    segments: int


class TopicInfo(pydantic.BaseModel):
    name: str
    partitions: list[PartitionInfo]
    records: int
    size_bytes: int
    config: dict[str, object]


@router.get("/topics", response_model=TopicList, summary="List the topics")
async def list_topics(request: Request) -> TopicList:
    return TopicList(topics=log_of(request).topics())


@router.get("/topics/{topic}", response_model=TopicInfo, summary="Describe a topic")
async def describe_topic(request: Request, topic: str) -> TopicInfo:
    """The topic's partitions (offsets, records, bytes, segments) and config."""
    description = log_of(request).describe_topic(topic)
    return TopicInfo(
        name=description.name, records=description.record_count,
        size_bytes=description.size_bytes, config=dataclasses.asdict(description.config),
        partitions=[PartitionInfo(partition=p.partition, start_offset=p.start_offset,
                                  end_offset=p.end_offset, records=p.record_count,
                                  size_bytes=p.size_bytes, segments=p.segment_count)
                    for p in description.partitions])
