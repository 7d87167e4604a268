"""The log API's topics: list, describe, create and delete (the records, groups
and dead letters have modules of their own: ``_produce_api``, ``_read_api``,
``_groups_api``, ``_dead_letters_api``).

Every route answers from the open log at the moment of the request; nothing is
cached between requests. mqlog's internal topics (names starting ``__``:
committed offsets, replies) are listed and described but never created or
deleted here (``invalid_topic``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pydantic
from fastapi import APIRouter, Request, Response

from mqlog.errors import ConfigError, InvalidTopicError
from mqlog.log import Log
from mqlog.logstore import TopicConfig, TopicDescription
from mqlog.names import INTERNAL_PREFIX

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
    return topic_info(log_of(request).describe_topic(topic))


#: A topic setting's value as JSON gives it (each TopicConfig field checks its own).
SettingValue = int | float | str | bool | None


class NewTopic(pydantic.BaseModel):
    """A topic to create: ``config`` takes any TopicConfig setting (the others
    keep the log's defaults); ``exist_ok`` accepts a topic that exists with
    these partitions and settings (as ``mqlog topics create --if-not-exists``)."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True)

    name: str
    partitions: int = 1
    config: dict[str, SettingValue] = {}
    exist_ok: bool = False


@router.post("/topics", response_model=TopicInfo, status_code=201, summary="Create a topic",
             responses={200: {"model": TopicInfo,
                              "description": "exist_ok: the topic was there already"}})
async def create_topic(request: Request, response: Response, body: NewTopic) -> TopicInfo:
    """201 with the new topic's description; with ``exist_ok``, 200 when it existed
    already as asked. Unknown settings or bad values: 400 ``invalid_argument``,
    nothing created."""
    log = log_of(request)
    refuse_internal(body.name, "created")
    config = checked_settings(body.config)
    existed = body.exist_ok and log.engine.has_topic(body.name)
    description = await asyncio.to_thread(log.create_topic, body.name, body.partitions,
                                          exist_ok=body.exist_ok, **config)
    if existed:
        response.status_code = 200
    return topic_info(description)


@router.delete("/topics/{topic}", status_code=204, summary="Delete a topic",
               response_class=Response)
async def delete_topic(request: Request, topic: str) -> None:
    """Delete the topic and all its records (204)."""
    refuse_internal(topic, "deleted")
    await asyncio.to_thread(log_of(request).delete_topic, topic)


def refuse_internal(topic: str, action: str) -> None:
    """InvalidTopicError for mqlog's internal topics (``__`` names)."""
    if topic.startswith(INTERNAL_PREFIX):
        raise InvalidTopicError(f"{topic!r} is an internal topic: it is not {action} over HTTP")


def checked_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` if they make a valid TopicConfig; ConfigError naming an unknown
    setting or a bad value otherwise."""
    try:
        TopicConfig.from_options(**settings)
    except TypeError as error:  # an unknown setting
        raise ConfigError(str(error)) from None
    return settings


def topic_info(description: TopicDescription) -> TopicInfo:
    """A topic description as the API sends it."""
    return TopicInfo(
        name=description.name, records=description.record_count,
        size_bytes=description.size_bytes, config=dataclasses.asdict(description.config),
        partitions=[PartitionInfo(partition=p.partition, start_offset=p.start_offset,
                                  end_offset=p.end_offset, records=p.record_count,
                                  size_bytes=p.size_bytes, segments=p.segment_count)
                    for p in description.partitions])
